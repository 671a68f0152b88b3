#!/usr/bin/env python3
"""Measures this machine's fp32 (and bf16) matrix-multiply rate through libtorch, at the
shapes that dominate a pretraining step: the relation encoder's per-edge products
(2,048 views x 56 edges = 114,688 rows, 256 x 256 weights, forward and weight-gradient
forms), its per-node products (16,384 rows) and a square product for comparison.

    python3 scripts/gemm_rate.py                 # 2 threads, the median of 7 runs each

prints one line per shape:

    GEMM shape=114688x256x256 form=forward dtype=fp32 ms=95.1 gflop_per_s=162.3

and, for the per-edge shape, a whole layer (forward, then the gradients of its input and
weight) as a Linear and as the 1x1 convolution over a channels-last view that the
relation encoder runs on the CPU:

    LAYER shape=114688x256x256 form=conv1x1 dtype=fp32 ms=242.0 gflop_per_s=186.2

and the edge block of the relation encoder's last edge MLP, whose product is added to
per-node terms gathered by sender and broadcast by receiver (2,048 views x 8 slots), as
an `addmm` onto their sum and as a 1x1 convolution onto which they are added in place:

    EDGE-BLOCK form=conv1x1+add dtype=fp32 ms=320.1

and the weight gradient of that layer three ways: MKL's matrix product of the transposed
gradient, oneDNN's 1x1 convolution backward (weight only), and a convolution that takes
the rows as input channels:

    WEIGHT-GRADIENT form=mm dtype=fp32 ms=88.0 gflop_per_s=170.8

Run it with the reference's PyTorch (scripts/bench.sh installs it into .deps/reference):

    PYTHONPATH=.deps/reference python3 scripts/gemm_rate.py
"""

import argparse
import os
import statistics
import sys
import time

import torch


def median_seconds(once, repeats):
    """Median seconds of `once()` over `repeats` calls, after two untimed ones."""
    once()
    once()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rate(a, b, transpose_a, repeats):
    """Median seconds of one product `a @ b` (or `a.T @ b`), after two untimed ones.

    The product is written into one preallocated result, so that the figure is the
    multiply alone, without the page faults of a fresh allocation."""
    left = a.t() if transpose_a else a
    out = torch.empty(left.shape[0], b.shape[1], dtype=a.dtype)
    return median_seconds(lambda: torch.mm(left, b, out=out), repeats)


def layer_rate(rows, inner, cols, dtype, form, repeats):
    """Median seconds of one layer's forward and backward (input and weight gradients),
    `[rows, inner] -> [rows, cols]`, as a Linear or as a 1x1 convolution whose input is
    the channels-last `[1, inner, rows, 1]` view of the rows."""
    x = torch.randn(rows, inner, dtype=dtype, requires_grad=True)
    w = torch.randn(cols, inner, dtype=dtype, requires_grad=True)
    g = torch.randn(rows, cols, dtype=dtype)

    def once():
        if form == "linear":
            out = torch.nn.functional.linear(x, w)
        else:
            view = x.view(1, rows, 1, inner).permute(0, 3, 1, 2)
            out = torch.nn.functional.conv2d(view, w.view(cols, inner, 1, 1))
            out = out.permute(0, 2, 3, 1).reshape(rows, cols)
        torch.autograd.grad(out, (x, w), g)

    return median_seconds(once, repeats)


def edge_block_rate(views, slots, width, dtype, form, repeats):
    """Median seconds of the forward and backward of `x_ij W^T + s_j + r_i` over every
    edge (receiver i, sender j != i), receiver-major, the gradients of all four inputs."""
    edges = slots * (slots - 1)
    senders = torch.tensor([j for i in range(slots) for j in range(slots) if j != i])
    sender = torch.randn(views, slots, width, dtype=dtype, requires_grad=True)
    receiver = torch.randn(views, slots, width, dtype=dtype, requires_grad=True)
    x = torch.randn(views * edges, width, dtype=dtype, requires_grad=True)
    w = torch.randn(width, width, dtype=dtype, requires_grad=True)
    g = torch.randn(views * edges, width, dtype=dtype)
    grid = [views, slots, slots - 1, width]

    def once():
        gathered = sender.index_select(1, senders).view(grid)
        if form == "addmm":
            nodes = (gathered + receiver.unsqueeze(2)).view(-1, width)
            out = nodes.addmm(x, w.t())
        else:
            view = x.view(1, -1, 1, width).permute(0, 3, 1, 2)
            out = torch.nn.functional.conv2d(view, w.view(width, width, 1, 1))
            out = torch.ops.aten._unsafe_view(out.permute(0, 2, 3, 1), grid)
            out.add_(gathered)
            out.add_(receiver.unsqueeze(2))
        torch.autograd.grad(out, (sender, receiver, x, w), g.view(out.shape))

    return median_seconds(once, repeats)


def weight_gradient_rate(rows, inner, cols, dtype, form, repeats):
    """Median seconds of `g^T x` (`[cols, inner]`, summed over the rows) in one form."""
    x = torch.randn(rows, inner, dtype=dtype)
    g = torch.randn(rows, cols, dtype=dtype)
    if form == "mm":
        return median_seconds(lambda: torch.mm(g.t(), x), repeats)
    if form == "conv-backward":
        view = x.view(1, rows, 1, inner).permute(0, 3, 1, 2)
        w = torch.randn(cols, inner, 1, 1, dtype=dtype, requires_grad=True)
        out = torch.nn.functional.conv2d(view, w)
        grad = g.view(1, rows, 1, cols).permute(0, 3, 1, 2)
        return median_seconds(lambda: torch.autograd.grad(out, w, grad, retain_graph=True),
                              repeats)
    # Rows as input channels: `x` is `[1, rows, 1, inner]`, the kernel `g^T`.
    return median_seconds(
        lambda: torch.nn.functional.conv2d(x.view(1, rows, 1, inner),
                                           g.t().contiguous().view(cols, rows, 1, 1)),
        repeats)


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
        rows, inner, cols = shapes[0][:3]
        for form in ["linear", "conv1x1"]:
            seconds = layer_rate(rows, inner, cols, dtype, form, args.repeats)
            flops = 3 * 2.0 * rows * inner * cols
            print(f"LAYER shape={rows}x{inner}x{cols} form={form} dtype={name} "
                  f"ms={seconds * 1e3:.1f} gflop_per_s={flops / seconds / 1e9:.1f}", flush=True)
        for form in ["mm", "conv-backward", "rows-as-channels"]:
            seconds = weight_gradient_rate(rows, inner, cols, dtype, form, args.repeats)
            flops = 2.0 * rows * inner * cols
            print(f"WEIGHT-GRADIENT form={form} dtype={name} ms={seconds * 1e3:.1f} "
                  f"gflop_per_s={flops / seconds / 1e9:.1f}", flush=True)
        for form in ["addmm", "conv1x1+add"]:
            seconds = edge_block_rate(2048, 8, 256, dtype, form, args.repeats)
            print(f"EDGE-BLOCK form={form} dtype={name} ms={seconds * 1e3:.1f}", flush=True)


if __name__ == "__main__":
    # glibc hands tensors this large back to the system when they are freed and faults
    # their pages in again on the next allocation, which would be timed with the layer;
    # these settings keep freed memory for reuse, as the hssl binary's allocator does.
    keep = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 34)}
    if any(os.environ.get(k) != v for k, v in keep.items()):
        os.environ.update(keep)
        os.execv(sys.executable, [sys.executable] + sys.argv)
    main()
