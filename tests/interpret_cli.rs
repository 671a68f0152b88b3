//! End-to-end tests of `hssl interpret` on a tiny data set and a checkpoint that
//! `hssl pretrain` makes in a few steps.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{hssl, pretrain_tiny, text};

use hssl::data::write_cifar10;

/// A synthetic data set (64 training, 20 test images) and a checkpoint trained on it.
fn data_and_checkpoint(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("cifar-10-batches-bin");
    write_cifar10(&data, 64, 20, 11).unwrap();
    let run = dir.join("run");
    pretrain_tiny(&data, &run);
    (data, run.join("checkpoint.ot"))
}

fn interpret(checkpoint: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "interpret",
        "--checkpoint",
        checkpoint.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "3",
        "--marginal",
        "32",
        "--device",
        "cpu",
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    hssl(&args)
}

/// The shape in the header of a `.npy` file, and its f32 values.
fn read_npy(path: &Path) -> (String, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    let shape = header
        .split("'shape': ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let values = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (format!("{shape})"), values)
}

fn png_size(path: &Path) -> (u32, u32) {
    let picture = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (picture.width(), picture.height())
}

#[test]
fn interpret_writes_masks_metrics_and_graphs_and_names_a_bad_index() {
    let dir = tempfile::tempdir().unwrap();
    let (data, checkpoint) = data_and_checkpoint(dir.path());

    let out = dir.path().join("interpret");
    let result = interpret(&checkpoint, &data, &out, &["--images", "4", "--graph"]);
    assert!(result.status.success(), "{}", text(&result));
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(stdout.contains("interpretation summary"), "{stdout}");
    assert!(
        stdout.contains("4 x 8") && stdout.contains("collapsed masks"),
        "{stdout}"
    );

    let (shape, masks) = read_npy(&out.join("masks.npy"));
    assert_eq!(shape, "(4, 8, 32, 32)");
    assert_eq!(masks.len(), 4 * 8 * 32 * 32);
    assert!(masks.iter().all(|m| (0.0..=1.0).contains(m)));
    assert!(
        masks.iter().any(|&m| (m - 0.5).abs() > 1e-3),
        "the masks never moved"
    );

    let metrics = std::fs::read_to_string(out.join("mask-metrics.csv")).unwrap();
    let lines: Vec<&str> = metrics.lines().collect();
    assert_eq!(lines[0], "step,objective");
    assert_eq!(lines.len(), 4);
    for (step, line) in lines[1..].iter().enumerate() {
        let (number, value) = line.split_once(',').unwrap();
        assert_eq!(number, (step + 1).to_string());
        assert!(value.parse::<f64>().unwrap().is_finite(), "{line}");
    }

    // One row per image plus the header; the image then eight 128-pixel mask columns.
    let (width, height) = png_size(&out.join("masks.png"));
    assert!(
        width > 9 * 128 && width < 9 * 128 + 200,
        "masks.png is {width} wide"
    );
    assert!(
        height > 4 * 128 && height < 4 * 128 + 100,
        "masks.png is {height} high"
    );
    let (width, height) = png_size(&out.join("graph.png"));
    assert!(
        width > 4 * 200 && height > 150,
        "graph.png is {width} x {height}"
    );
    let (width, height) = png_size(&out.join("edge-frequency.png"));
    assert!(
        width > 2 * 8 * 40 && height > 8 * 40,
        "edge-frequency.png is {width} x {height}"
    );

    let frequencies = std::fs::read_to_string(out.join("edge-frequency.csv")).unwrap();
    let rows: Vec<Vec<f64>> = frequencies
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 56 * 2);
    for pair in rows.chunks(2) {
        assert_eq!(pair[0][..2], pair[1][..2]);
        assert!((pair[0][3] + pair[1][3] - 1.0).abs() < 1e-9, "{pair:?}");
        // Frequencies over the 20 test images are multiples of 1/20.
        assert!((pair[0][3] * 20.0 - (pair[0][3] * 20.0).round()).abs() < 1e-9);
    }

    // Chosen indices, and the same masks for the same seed and images.
    let chosen = dir.path().join("chosen");
    let result = interpret(&checkpoint, &data, &chosen, &["--indices", "0,19"]);
    assert!(result.status.success(), "{}", text(&result));
    let (shape, first) = read_npy(&chosen.join("masks.npy"));
    assert_eq!(shape, "(2, 8, 32, 32)");
    assert!(!chosen.join("graph.png").exists());
    let again = dir.path().join("again");
    let result = interpret(&checkpoint, &data, &again, &["--indices", "0,19"]);
    assert!(result.status.success(), "{}", text(&result));
    assert_eq!(read_npy(&again.join("masks.npy")).1, first);

    let result = interpret(
        &checkpoint,
        &data,
        &dir.path().join("bad"),
        &["--indices", "3,20"],
    );
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(
        err.contains("image index 20 is out of range: the test split holds 20 images"),
        "{err}"
    );
    let result = interpret(
        &checkpoint,
        &data,
        &dir.path().join("many"),
        &["--images", "21"],
    );
    assert!(!result.status.success());
    assert!(
        text(&result).contains("21 images asked for"),
        "{}",
        text(&result)
    );
}
