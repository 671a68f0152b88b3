//! End-to-end: pretrain a tiny run with the binary, then probe it on CIFAR-10 and on
//! CIFAR-100 (transfer), and export its features.

use std::path::Path;
mod common;
use common::{hssl, pretrain_tiny};

use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(args: &[&str]) -> String {
    let out = hssl(args);
    assert!(
        out.status.success(),
        "hssl {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("valid JSON")
}

/// The shape written in a `.npy` header, and the size of the data after it.
fn npy_shape(path: &Path) -> (String, usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = text(&bytes[10..10 + len]);
    let shape = header
        .split("'shape': ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    (format!("{shape})"), bytes.len() - 10 - len)
}

fn check_accuracies(record: &Value) {
    for field in ["test_accuracy", "train_accuracy", "knn_accuracy"] {
        let v = record[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} missing: {record}"));
        assert!((0.0..=1.0).contains(&v), "{field} = {v}");
    }
}

#[test]
fn a_pretrained_run_is_probed_on_both_data_sets_and_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let c10 = dir.path().join("c10");
    let c100 = dir.path().join("c100");
    hssl::data::write_cifar10(&c10, 80, 30, 1).unwrap();
    hssl::data::write_cifar100(&c100, 60, 25, 2).unwrap();
    let run = dir.path().join("run");
    let (c10s, c100s) = (c10.to_str().unwrap(), c100.to_str().unwrap());
    pretrain_tiny(&c10, &run);
    let checkpoint = run.join("checkpoint.ot");
    let checkpoints = checkpoint.to_str().unwrap();

    let stdout = ok(&[
        "probe",
        "--checkpoint",
        checkpoints,
        "--dataset",
        "cifar10",
        "--data",
        c10s,
        "--epochs",
        "2",
        "--train-images",
        "50",
        "--device",
        "cpu",
    ]);
    assert!(stdout.contains("kNN (cosine, k=20)"), "{stdout}");
    assert!(
        stdout.contains("test accuracy (top-1)") && stdout.contains('%'),
        "{stdout}"
    );
    let record = read_json(&run.join("probe-cifar10.json"));
    check_accuracies(&record);
    assert_eq!(record["dataset"], "cifar10");
    assert_eq!(record["knn_k"], 20);
    assert_eq!(record["settings"]["epochs"], 2);
    assert_eq!(record["settings"]["batch"], 128);
    assert_eq!(record["settings"]["learning_rate"], 1e-3);
    assert_eq!(record["train_images"], 50);
    assert_eq!(record["test_images"], 30);
    assert_eq!(record["backbone"], "conv4");
    assert_eq!(record["objective"], "xza");
    assert_eq!(record["seed"], 0);
    assert_eq!(record["steps"], 2);
    assert_eq!(record["checkpoint"], checkpoints);
    assert_eq!(record["data"], c10s);
    assert!(record["seconds"].as_f64().unwrap() > 0.0);
    assert!(!run.join("probe-cifar10.json.tmp").exists());

    ok(&[
        "probe",
        "--checkpoint",
        checkpoints,
        "--dataset",
        "cifar100",
        "--data",
        c100s,
        "--epochs",
        "2",
        "--knn-k",
        "5",
        "--seed",
        "3",
        "--device",
        "cpu",
    ]);
    let record = read_json(&run.join("probe-cifar100.json"));
    check_accuracies(&record);
    assert_eq!(record["dataset"], "cifar100");
    assert_eq!(record["pretrain_dataset"], "cifar10");
    assert_eq!(record["classes"], 100);
    assert_eq!(record["knn_k"], 5);
    assert_eq!(record["settings"]["seed"], 3);
    assert_eq!(
        (
            record["train_images"].as_u64(),
            record["test_images"].as_u64()
        ),
        (Some(60), Some(25))
    );

    let features = dir.path().join("out").join("test.npy");
    let stdout = ok(&[
        "embed",
        "--checkpoint",
        checkpoints,
        "--data",
        c10s,
        "--dataset",
        "cifar10",
        "--split",
        "test",
        "--out",
        features.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(stdout.contains("test.labels.npy"), "{stdout}");
    assert_eq!(npy_shape(&features), ("(30, 64)".to_string(), 30 * 64 * 4));
    let labels = dir.path().join("out").join("test.labels.npy");
    assert_eq!(npy_shape(&labels), ("(30,)".to_string(), 30 * 2));
}

#[test]
fn a_missing_checkpoint_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere").join("checkpoint.ot");
    let out = hssl(&[
        "probe",
        "--checkpoint",
        missing.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");

    let features = dir.path().join("f.npy");
    let out = hssl(&[
        "embed",
        "--checkpoint",
        missing.to_str().unwrap(),
        "--split",
        "train",
        "--out",
        features.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(missing.to_str().unwrap()));
    assert!(!features.exists());
}

#[test]
fn help_shows_examples() {
    for command in ["probe", "embed"] {
        let help = ok(&[command, "--help"]);
        assert!(
            help.contains("Examples:") && help.contains(&format!("hssl {command}")),
            "{help}"
        );
    }
    assert!(ok(&["embed", "--help"]).contains(".labels.npy"));
}
