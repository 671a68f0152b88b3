//! End-to-end tests of `hssl pretrain` and `hssl data` on small data sets the tests write.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{hssl, text};

use hssl::data::write_cifar10;
use tch::Tensor;

fn tiny_data(dir: &Path) -> PathBuf {
    let data = dir.join("cifar-10-batches-bin");
    write_cifar10(&data, 40, 20, 7).unwrap();
    data
}

fn pretrain(data: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "pretrain",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--images",
        "8",
        "--views",
        "3",
        "--device",
        "cpu",
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    hssl(&args)
}

fn metrics_rows(out: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

fn model_tensors(path: &Path) -> Vec<(String, Tensor)> {
    let mut named: Vec<_> = Tensor::load_multi(path)
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n.starts_with("model.") || n.starts_with("adam."))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

#[test]
fn pretrain_writes_config_metrics_and_checkpoint_for_every_objective() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    for (objective, backbone) in [("xz", "conv4"), ("xa", "resnet8"), ("xza", "conv4")] {
        let out = dir.path().join(format!("run-{objective}"));
        let result = pretrain(
            &data,
            &out,
            &[
                "--objective",
                objective,
                "--backbone",
                backbone,
                "--max-steps",
                "3",
            ],
        );
        assert!(result.status.success(), "{}", text(&result));
        let rows = metrics_rows(&out);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2][0], "3");
        let (xz_used, xa_used) = (objective.contains('z'), objective.contains('a'));
        assert_eq!(
            !rows[0][3].is_empty(),
            xz_used,
            "loss_xz cell for {objective}"
        );
        assert_eq!(
            !rows[0][4].is_empty(),
            xa_used,
            "loss_xa cell for {objective}"
        );
        let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
        assert!(
            config.contains(&format!("objective = \"{objective}\"")),
            "{config}"
        );
        assert!(out.join("checkpoint.ot").is_file());
        assert!(text(&result).contains("pretraining summary"));
    }
}

#[test]
fn resumed_run_ends_with_the_weights_of_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let straight = dir.path().join("straight");
    let resumed = dir.path().join("resumed");
    // 40 images / 8 per batch = 5 steps an epoch: 7 steps cross an epoch boundary.
    let r = pretrain(&data, &straight, &["--max-steps", "7"]);
    assert!(r.status.success(), "{}", text(&r));
    let r = pretrain(&data, &resumed, &["--max-steps", "3"]);
    assert!(r.status.success(), "{}", text(&r));
    let r = pretrain(&data, &resumed, &["--max-steps", "7", "--resume"]);
    assert!(r.status.success(), "{}", text(&r));
    // Resuming with only the folder and the new budget: the rest comes from its config.toml.
    let brief = dir.path().join("brief");
    let r = pretrain(&data, &brief, &["--max-steps", "3"]);
    assert!(r.status.success(), "{}", text(&r));
    let out = brief.to_str().unwrap();
    let r = hssl(&["pretrain", "--out", out, "--resume", "--max-steps", "7"]);
    assert!(r.status.success(), "{}", text(&r));

    let a = model_tensors(&straight.join("checkpoint.ot"));
    assert!(!a.is_empty());
    for other in [&resumed, &brief] {
        let b = model_tensors(&other.join("checkpoint.ot"));
        assert_eq!(a.len(), b.len());
        for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
            assert_eq!(na, nb);
            assert!(
                ta.equal(tb),
                "{na} differs after resuming {}",
                other.display()
            );
        }
    }
    let (ra, rb) = (metrics_rows(&straight), metrics_rows(&resumed));
    assert_eq!(ra.len(), 7);
    assert_eq!(rb.len(), 7);
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x[..7], y[..7], "losses and bounds of step {} differ", x[0]);
    }
}

#[test]
fn existing_runs_are_protected_and_resume_needs_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let out = dir.path().join("run");
    let r = pretrain(&data, &out, &["--resume", "--max-steps", "1"]);
    assert!(!r.status.success());
    assert!(text(&r).contains("no checkpoint found"), "{}", text(&r));

    let r = pretrain(&data, &out, &["--max-steps", "1"]);
    assert!(r.status.success(), "{}", text(&r));
    let r = pretrain(&data, &out, &["--max-steps", "2"]);
    assert!(!r.status.success());
    assert!(text(&r).contains("already holds a run"), "{}", text(&r));

    let r = pretrain(
        &data,
        &out,
        &["--max-steps", "2", "--resume", "--seed", "9"],
    );
    assert!(!r.status.success());
    assert!(text(&r).contains("`seed` differs"), "{}", text(&r));
}

#[test]
fn bad_values_and_bad_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let out = dir.path().join("run");
    let r = hssl(&[
        "pretrain",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--views",
        "1",
    ]);
    assert!(!r.status.success());
    assert!(text(&r).contains("`views`"), "{}", text(&r));
    assert!(!out.join("checkpoint.ot").exists());

    let r = hssl(&["pretrain", "--objective", "xyz"]);
    assert!(!r.status.success());
    assert!(text(&r).contains("xyz"), "{}", text(&r));

    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "views = \"many\"\n").unwrap();
    let r = hssl(&["pretrain", "--config", config.to_str().unwrap()]);
    assert!(!r.status.success());
    assert!(text(&r).contains("bad.toml"), "{}", text(&r));

    // A training file cut in the middle of a record.
    let broken = dir.path().join("broken");
    write_cifar10(&broken, 40, 20, 7).unwrap();
    let file = broken.join("data_batch_2.bin");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let r = pretrain(&broken, &dir.path().join("r2"), &["--max-steps", "1"]);
    assert!(!r.status.success());
    let msg = text(&r);
    assert!(msg.contains("data_batch_2.bin"), "{msg}");
    assert!(!msg.contains("panicked"), "{msg}");

    let missing = dir.path().join("nowhere");
    let r = pretrain(&missing, &dir.path().join("r3"), &["--max-steps", "1"]);
    assert!(!r.status.success());
    assert!(text(&r).contains("nowhere"), "{}", text(&r));
}

#[test]
fn non_finite_loss_stops_the_run_naming_step_and_term_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let out = dir.path().join("run");
    let r = pretrain(&data, &out, &["--max-steps", "5", "--objective", "xz"]);
    assert!(r.status.success(), "{}", text(&r));
    let before = std::fs::read(out.join("checkpoint.ot")).unwrap();
    let r = pretrain(
        &data,
        &out,
        &[
            "--max-steps",
            "400",
            "--objective",
            "xz",
            "--resume",
            "--lr",
            "1e30",
        ],
    );
    let msg = text(&r);
    assert!(!r.status.success(), "{msg}");
    assert!(msg.contains("step ") && msg.contains("xz"), "{msg}");
    assert!(msg.contains("last good checkpoint"), "{msg}");
    assert!(!msg.contains("panicked"), "{msg}");
    let after = std::fs::read(out.join("checkpoint.ot")).unwrap();
    assert!(before == after, "the last good checkpoint was overwritten");
    assert!(!out.join("checkpoint.ot.tmp").exists());
}
