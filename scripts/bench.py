#!/usr/bin/env python3
"""Runs hssl's step benchmark beside the PyTorch reference, alternating, on the same
threads, and prints one ratio line per configuration:

    RATIO backbone=conv4 objective=xza ratio=3.12 hssl_step_s=... reference_step_s=...

The ratio is our step rate over the reference's (above 1: faster). On the CPU a first
line gives the machine's fp32 multiply-add ceiling (`hssl bench --ceiling`), and each
ratio line the fraction of it that our step's counted FLOPs reach. Each side runs
`--rounds` times in alternation, each run timing `--steps` steps after a warm-up; the
median over all runs is compared. Peak memory is each process's maximum resident size.

    python3 scripts/bench.py                       # the paper's batch, all configurations
    python3 scripts/bench.py --configs conv4:xza --rounds 2
    python3 scripts/bench.py --configs conv4:xza:bf16      # ours in bf16, the reference fp32
    python3 scripts/bench.py --device cuda --threads 16    # both on the GPU
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_REFERENCE = os.path.join(ROOT, "..", "shared", "bench", "reference_step.py")


def run(cmd, env):
    """Runs a command; returns (its RESULT fields, peak resident MiB)."""
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read()
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{out}\n{err}")
    line = next((l for l in out.splitlines() if l.startswith("RESULT")), None)
    if line is None:
        sys.exit(f"no RESULT line from {' '.join(cmd)}:\n{out}\n{err}")
    fields = dict(re.findall(r"(\w+)=([^\s]+)", line))
    fields["wall_s"] = time.time() - start
    return fields, usage.ru_maxrss / 1024.0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", default="conv4:xz,conv4:xa,conv4:xza,resnet8:xz,resnet8:xza",
                   help="comma-separated backbone:objective[:precision] (precision of ours: "
                        "fp32, the default, or bf16; the reference is always fp32)")
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--views", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--device", default="cpu",
                   help="cpu, or cuda: both sides on the GPU (the reference through "
                        "scripts/reference_on_device.py); peak memory is then the host's")
    p.add_argument("--no-reference", action="store_true", help="time ours only")
    p.add_argument("--hssl", default=os.path.join(ROOT, "target", "release", "hssl"))
    p.add_argument("--reference", default=DEFAULT_REFERENCE)
    p.add_argument("--python-path", default=os.path.join(ROOT, ".deps", "reference"),
                   help="where the reference's torch is installed (scripts/bench.sh sets it up)")
    args = p.parse_args()

    env = dict(os.environ)
    if os.path.isdir(args.python_path):
        env["PYTHONPATH"] = args.python_path + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = str(args.threads)

    ceiling = None
    if args.device == "cpu":
        fields, _ = run([args.hssl, "bench", "--ceiling", "--threads", str(args.threads)], env)
        ceiling = float(fields["fp32_gflop_per_s"])
        print(f"CEILING threads={args.threads} fp32_gflop_per_s={ceiling:.1f}", flush=True)

    for config in args.configs.split(","):
        parts = config.split(":")
        if len(parts) not in (2, 3):
            sys.exit(f"--configs: `{config}` is not backbone:objective[:precision]")
        backbone, objective = parts[:2]
        precision = parts[2] if len(parts) == 3 else "fp32"
        common = ["--backbone", backbone, "--objective", objective, "--images",
                  str(args.images), "--views", str(args.views), "--steps", str(args.steps),
                  "--warmup", str(args.warmup), "--threads", str(args.threads)]
        ours_cmd = [args.hssl, "bench", *common, "--device", args.device,
                    "--precision", precision]
        if args.device == "cpu":
            ref_cmd = [sys.executable, args.reference, *common]
        else:
            ref_cmd = [sys.executable, os.path.join(ROOT, "scripts", "reference_on_device.py"),
                       "--device", args.device, "--reference", args.reference, *common]
        ours, ref, ours_mem, ref_mem = [], [], [], []
        extra = {}
        for _ in range(args.rounds):
            fields, mem = run(ours_cmd, env)
            ours.append(float(fields["step_s"]))
            ours_mem.append(mem)
            extra = fields
            if not args.no_reference:
                fields, mem = run(ref_cmd, env)
                ref.append(float(fields["step_s"]))
                ref_mem.append(mem)
        o = statistics.median(ours)
        line = (f"RATIO backbone={backbone} objective={objective}")
        if ref:
            r = statistics.median(ref)
            line += f" ratio={r / o:.2f} hssl_step_s={o:.4f} reference_step_s={r:.4f}"
            line += f" hssl_peak_mib={max(ours_mem):.0f} reference_peak_mib={max(ref_mem):.0f}"
        else:
            line += f" hssl_step_s={o:.4f} hssl_peak_mib={max(ours_mem):.0f}"
        rate = float(extra.get("gflop", 0)) / o
        line += f" gflop={extra.get('gflop')} hssl_gflop_per_s={rate:.1f}"
        if ceiling:
            line += f" of_ceiling={rate / ceiling:.2f}"
        line += f" precision={precision}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
