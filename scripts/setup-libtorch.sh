#!/usr/bin/env bash
# Installs libtorch (the PyTorch 2.11.0 wheel from PyPI) and the two CUDA runtime libraries
# that libtorch_cpu links against into the project-local folder .deps/python.
# Nothing is installed system-wide. Safe to run again: it does nothing when already done.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="$here/.deps/python"
stamp="$target/.hssl-libtorch-2.11.0"
python="${PYTHON:-python3}"

# On a machine with an NVIDIA GPU (or with HSSL_CUDA=1), libtorch_cuda.so also needs the
# CUDA libraries that the wheel declares as dependencies (cuBLAS, cuDNN, ...; about 3 GB).
# They land beside torch/ in the same folder, where the wheel's own library paths look.
want_cuda=0
if [ "${HSSL_CUDA:-}" = "1" ] || { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
    want_cuda=1
fi
cuda_stamp="$target/.hssl-cuda-2.11.0"

if [ -f "$stamp" ] && { [ "$want_cuda" = 0 ] || [ -f "$cuda_stamp" ]; }; then
    exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: $python not found; install Python 3 with pip (python3-pip), then run again" >&2
    exit 1
fi

if [ "$want_cuda" = 1 ]; then
    # The full wheel with its dependencies is a superset of the CPU-only install below
    # (its nvidia/ folder holds cudart and cupti too). That install must not run after
    # this one: `pip --target --upgrade` replaces whole top-level folders, nvidia/ included,
    # and would leave only the two runtime libraries of the CPU-only set.
    echo "installing libtorch with its CUDA libraries (PyTorch 2.11.0 and dependencies) into $target ..."
    mkdir -p "$target"
    "$python" -m pip install --quiet --disable-pip-version-check --target "$target" --upgrade \
        torch==2.11.0
    if ! "$python" -c 'import ctypes, sys; ctypes.CDLL(sys.argv[1])' \
        "$target/torch/lib/libtorch_cuda.so"; then
        echo "error: $target/torch/lib/libtorch_cuda.so does not load (above: the library it lacks)" >&2
        exit 1
    fi
    touch "$cuda_stamp" "$stamp"
    echo "libtorch with CUDA ready in $target"
    exit 0
fi

echo "installing libtorch (PyTorch 2.11.0 wheel) into $target ..."
mkdir -p "$target"
"$python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$target" \
    torch==2.11.0
"$python" -m pip install --quiet --disable-pip-version-check --target "$target" --upgrade \
    "cuda-toolkit[cudart,cupti]==13.0.2"

for lib in "$target/torch/lib/libtorch_cpu.so" "$target/nvidia/cu13/lib/libcudart.so.13"; do
    if [ ! -f "$lib" ]; then
        echo "error: expected $lib after installing; the wheel layout is not the one expected" >&2
        exit 1
    fi
done
touch "$stamp"
echo "libtorch ready in $target"
