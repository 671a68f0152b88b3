#!/usr/bin/env python3
"""Measures this machine's fp32 (and bf16) matrix-multiply rate through libtorch, at the
shapes that dominate a pretraining step: the relation encoder's per-edge products
(2,048 views x 56 edges = 114,688 rows, 256 x 256 weights, forward and weight-gradient
forms), its per-node products (16,384 rows) and a square product for comparison.

    python3 scripts/gemm_rate.py                 # 2 threads, the median of 7 runs each

prints one line per shape:

    GEMM shape=114688x256x256 form=forward dtype=fp32 ms=95.1 gflop_per_s=162.3

Run it with the reference's PyTorch (scripts/bench.sh installs it into .deps/reference):

    PYTHONPATH=.deps/reference python3 scripts/gemm_rate.py
"""

import argparse
import statistics
import time

import torch


def rate(a, b, transpose_a, repeats):
    """Median seconds of one product `a @ b` (or `a.T @ b`), after two untimed ones.

    The product is written into one preallocated result, so that the figure is the
    multiply alone, without the page faults of a fresh allocation."""
    left = a.t() if transpose_a else a
    out = torch.empty(left.shape[0], b.shape[1], dtype=a.dtype)
    torch.mm(left, b, out=out)
    torch.mm(left, b, out=out)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(left, b, out=out)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    # (rows, inner, cols, form): forward = [rows, inner] @ [inner, cols]; weight-gradient
    # = [inner, rows]^T-shaped reduction over the rows, as a Linear's backward computes.
    shapes = [
        (114688, 256, 256, "forward"),
        (114688, 256, 256, "weight-gradient"),
        (16384, 256, 256, "forward"),
        (2048, 2048, 2048, "forward"),
    ]
    for dtype, name in [(torch.float32, "fp32"), (torch.bfloat16, "bf16")]:
        for rows, inner, cols, form in shapes:
            if form == "forward":
                a = torch.randn(rows, inner, dtype=dtype)
                b = torch.randn(inner, cols, dtype=dtype)
                seconds = rate(a, b, False, args.repeats)
                label = f"{rows}x{inner}x{cols}"
            else:
                a = torch.randn(rows, inner, dtype=dtype)
                b = torch.randn(rows, cols, dtype=dtype)
                seconds = rate(a, b, True, args.repeats)
                label = f"{inner}x{rows}x{cols}"
            flops = 2.0 * rows * inner * cols
            print(f"GEMM shape={label} form={form} dtype={name} ms={seconds * 1e3:.1f} "
                  f"gflop_per_s={flops / seconds / 1e9:.1f}", flush=True)


if __name__ == "__main__":
    main()
