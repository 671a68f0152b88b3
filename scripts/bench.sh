#!/usr/bin/env bash
# Benchmarks: the pretraining step beside the PyTorch reference (ratios), and the
# augmentation pipeline. Installs the reference's PyTorch (with its CUDA dependencies,
# about 4 GB, needed for `import torch`) into .deps/reference on first use.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ref="$here/.deps/reference"
if [ ! -f "$ref/.ready" ]; then
    python3 -m pip install --quiet --disable-pip-version-check --target "$ref" \
        torch==2.11.0 numpy
    touch "$ref/.ready"
fi
"$here/target/release/hssl" bench --augment --threads "${THREADS:-2}"
python3 "$here/scripts/bench.py" --threads "${THREADS:-2}" "$@"
