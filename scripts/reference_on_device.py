#!/usr/bin/env python3
"""Runs the PyTorch reference step (`reference_step.py`, which builds everything on the
CPU) on another device, by making that device torch's default for every tensor and
module it creates. Every argument after the options goes to the reference unchanged.

    python3 scripts/reference_on_device.py --device cuda --reference PATH --objective xza
"""

import argparse
import runpy
import sys

import torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--reference", required=True, help="path of reference_step.py")
    args, rest = parser.parse_known_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"--device {args.device}: this PyTorch sees no CUDA GPU")
    torch.set_default_device(args.device)
    sys.argv = [args.reference, *rest]
    runpy.run_path(args.reference, run_name="__main__")


if __name__ == "__main__":
    main()
