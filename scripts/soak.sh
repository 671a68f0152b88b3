#!/usr/bin/env bash
# Long reliability runs: many fuzzed inputs for the readers and the configuration parser,
# and many SIGKILLs of a pretraining run, each resumed; prints the counts it tried.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export HSSL_FUZZ_CASES="${HSSL_FUZZ_CASES:-20000}"
export HSSL_KILLS="${HSSL_KILLS:-25}"
cargo test --release --test reliability -- --nocapture --test-threads 1 2>&1 \
    | grep -E "inputs|kill loop|^test |test result"
