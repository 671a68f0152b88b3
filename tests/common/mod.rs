//! What the end-to-end tests share: running the binary and a tiny pretrained run.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `hssl` binary with `args` and logs at `info`.
pub fn hssl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hssl"))
        .args(args)
        .env("RUST_LOG", "info")
        .output()
        .expect("the hssl binary runs")
}

/// Standard output then standard error, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Pretrains 2 steps (8 images x 2 views, the first 64 training images) on `data` into
/// `run`, on the CPU; panics with the binary's output when that fails.
pub fn pretrain_tiny(data: &Path, run: &Path) {
    let out = hssl(&[
        "pretrain",
        "--data",
        data.to_str().unwrap(),
        "--images",
        "8",
        "--views",
        "2",
        "--max-steps",
        "2",
        "--train-images",
        "64",
        "--out",
        run.to_str().unwrap(),
        "--device",
        "cpu",
        "--threads",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out));
}
