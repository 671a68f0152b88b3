#!/usr/bin/env bash
# Checks hssl end to end on a machine with an NVIDIA GPU, using the PyTorch 2.11.0 that
# the machine's python3 already has (nothing is built or fetched there): the pretraining
# step beside the PyTorch reference, both on the GPU (RATIO lines), then a short
# pretraining with a resume, a linear probe and an interpretation on a small random data
# set in CIFAR-10's layout. Takes a few minutes.
#
#   scripts/gpu-check.sh [--device cuda] [--reference PATH] [--out DIR] [--quick]
#
# Needs target/release/hssl built with `make build` (on this machine or one like it) and
# the reference step (default ../shared/bench/reference_step.py). --quick runs a smaller
# batch and fewer steps; with --device cpu it checks the script itself on any machine.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device=cuda
reference="$here/../shared/bench/reference_step.py"
out="${OUT:-$here/runs/gpu-check}"
quick=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --reference) reference="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --quick) quick=1; shift ;;
        *) echo "error: unknown argument $1 (expected --device, --reference, --out or --quick)" >&2
           exit 2 ;;
    esac
done

hssl="$here/target/release/hssl"
[ -x "$hssl" ] || { echo "error: $hssl not found: run make build first" >&2; exit 1; }
[ -f "$reference" ] || { echo "error: reference step $reference not found (--reference)" >&2; exit 1; }
python="${PYTHON:-python3}"

# The binary looks for libtorch in the project's .deps/python first; where that is absent,
# the machine's own torch package serves (the same 2.11.0 wheel).
if [ ! -d "$here/.deps/python/torch" ]; then
    read -r torch_dir torch_version < <("$python" -c \
        'import os, torch; print(os.path.dirname(torch.__file__), torch.__version__)')
    case "$torch_version" in
        2.11.0*) ;;
        *) echo "warning: this machine's torch is $torch_version; hssl was built against 2.11.0" >&2 ;;
    esac
    export LD_LIBRARY_PATH="$torch_dir/lib:$(dirname "$torch_dir")/nvidia/cu13/lib:${LD_LIBRARY_PATH:-}"
fi

mkdir -p "$out"
threads="$(nproc)"
if [ "$quick" = 1 ]; then
    batch=(--images 8 --views 4); steps=(--steps 2 --warmup 1 --rounds 1); pretrain_steps=6
else
    batch=(--images 64 --views 32); steps=(--steps 10 --warmup 3 --rounds 2); pretrain_steps=60
fi

echo "== device"
if [ "$device" = cuda ]; then nvidia-smi -L || true; fi
"$python" -c 'import torch; print("python torch", torch.__version__, "cuda", torch.cuda.is_available())'

echo "== step benchmark, ours and the reference on $device, $threads CPU threads"
PYTHONUNBUFFERED=1 "$python" "$here/scripts/bench.py" --device "$device" --threads "$threads" \
    --reference "$reference" --python-path /nonexistent "${batch[@]}" "${steps[@]}" \
    --configs conv4:xz,conv4:xa,conv4:xza,resnet8:xz,resnet8:xza,conv4:xza:bf16 \
    | tee "$out/ratios.txt"

echo "== pretraining, resume, probe and interpretation on random images"
data="$out/synthetic-cifar10"
"$python" "$here/scripts/synthetic_cifar.py" "$data" --per-batch 200
run="$out/pretrain"
rm -rf "$run"
"$hssl" pretrain --data "$data" --out "$run" --device "$device" --images 16 --views 8 \
    --max-steps $((pretrain_steps / 2)) --probe-every 10
"$hssl" pretrain --out "$run" --resume --max-steps "$pretrain_steps"
"$hssl" probe --checkpoint "$run/checkpoint.ot" --data "$data" --device "$device" --epochs 2
"$hssl" interpret --checkpoint "$run/checkpoint.ot" --data "$data" --device "$device" \
    --images 4 --steps 20 --marginal 256 --graph
ls -l "$run" "$run/interpret"
echo "== gpu-check passed"
