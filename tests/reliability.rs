//! Reliability: arbitrary bytes never panic the readers or the configuration parser,
//! killed runs resume to the same weights with no half-written checkpoint, a full disk
//! keeps the previous checkpoint, and an impossible batch is refused up front.
//!
//! `HSSL_FUZZ_CASES` and `HSSL_KILLS` raise the budgets (`make soak` does).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hssl::data::{load, write_cifar10, write_cifar100, CifarKind, Split};
use hssl::train::PretrainConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

fn budget(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn hssl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hssl"));
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Mutates valid bytes: flips, truncations, extensions, random replacements.
fn mutate(rng: &mut ChaCha8Rng, valid: &[u8]) -> Vec<u8> {
    let mut bytes = valid.to_vec();
    match rng.gen_range(0..5) {
        0 => bytes.truncate(rng.gen_range(0..=bytes.len())),
        1 => {
            let extra = rng.gen_range(1..5000);
            bytes.extend((0..extra).map(|_| rng.gen::<u8>()));
        }
        2 => {
            for _ in 0..rng.gen_range(1..50) {
                if !bytes.is_empty() {
                    let i = rng.gen_range(0..bytes.len());
                    bytes[i] = rng.gen();
                }
            }
        }
        3 => bytes = (0..rng.gen_range(0..10_000)).map(|_| rng.gen()).collect(),
        _ => bytes.clear(),
    }
    bytes
}

#[test]
fn readers_never_panic_on_arbitrary_bytes() {
    let cases = budget("HSSL_FUZZ_CASES", 300);
    let dir = tempfile::tempdir().unwrap();
    let c10 = dir.path().join("c10");
    let c100 = dir.path().join("c100");
    write_cifar10(&c10, 10, 5, 1).unwrap();
    write_cifar100(&c100, 10, 5, 1).unwrap();
    let files: Vec<(PathBuf, CifarKind, Split)> = vec![
        (
            c10.join("data_batch_1.bin"),
            CifarKind::Cifar10,
            Split::Train,
        ),
        (c10.join("test_batch.bin"), CifarKind::Cifar10, Split::Test),
        (
            c10.join("batches.meta.txt"),
            CifarKind::Cifar10,
            Split::Test,
        ),
        (c100.join("train.bin"), CifarKind::Cifar100, Split::Train),
        (c100.join("test.bin"), CifarKind::Cifar100, Split::Test),
        (
            c100.join("fine_label_names.txt"),
            CifarKind::Cifar100,
            Split::Test,
        ),
        (
            c100.join("coarse_label_names.txt"),
            CifarKind::Cifar100,
            Split::Test,
        ),
    ];
    let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(&f.0).unwrap()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut accepted, mut rejected) = (0, 0);
    for case in 0..cases {
        let which = case % files.len();
        let (path, kind, split) = &files[which];
        std::fs::write(path, mutate(&mut rng, &originals[which])).unwrap();
        let folder = path.parent().unwrap();
        let result = std::panic::catch_unwind(|| load(folder, *kind, *split));
        match result {
            Ok(Ok(dataset)) => {
                accepted += 1;
                assert!(dataset
                    .labels
                    .iter()
                    .all(|&l| (l as usize) < dataset.num_classes()));
                assert_eq!(dataset.images.len(), dataset.len() * 3072);
            }
            Ok(Err(err)) => {
                rejected += 1;
                let msg = err.to_string();
                assert!(
                    msg.contains(folder.to_str().unwrap()),
                    "error names no file: {msg}"
                );
            }
            Err(_) => panic!("the reader panicked on case {case} ({})", path.display()),
        }
        std::fs::write(path, &originals[which]).unwrap();
    }
    assert_eq!(accepted + rejected, cases);
    assert!(
        rejected > cases / 2,
        "most mutations must be rejected ({rejected}/{cases})"
    );
    eprintln!("readers: {cases} inputs, {accepted} accepted, {rejected} rejected");
}

#[test]
fn config_parser_never_panics_on_arbitrary_text() {
    let cases = budget("HSSL_FUZZ_CASES", 300) * 10;
    let valid = PretrainConfig::default().to_toml();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut rejected = 0;
    for case in 0..cases {
        let bytes = mutate(&mut rng, valid.as_bytes());
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let result = std::panic::catch_unwind(|| {
            PretrainConfig::from_toml(&text, Path::new("fuzz.toml"))
                .and_then(|c| c.validate().map(|_| c))
        });
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                rejected += 1;
                assert!(!err.to_string().is_empty());
            }
            Err(_) => panic!("the configuration parser panicked on case {case}: {text:?}"),
        }
    }
    assert!(rejected > 0);
    eprintln!("config parser: {cases} inputs, {rejected} rejected");
}

fn tiny_data(dir: &Path) -> PathBuf {
    let data = dir.join("cifar-10-batches-bin");
    write_cifar10(&data, 48, 10, 3).unwrap();
    data
}

fn pretrain_cmd(data: &Path, out: &Path, steps: u64, resume: bool) -> Command {
    let mut cmd = hssl();
    cmd.args([
        "pretrain",
        "--images",
        "8",
        "--views",
        "3",
        "--device",
        "cpu",
        "--threads",
        "1",
    ])
    .arg("--data")
    .arg(data)
    .arg("--out")
    .arg(out)
    .args(["--max-steps", &steps.to_string(), "--objective", "xza"]);
    if resume {
        cmd.arg("--resume");
    }
    cmd
}

fn model_tensors(path: &Path) -> Vec<(String, Tensor)> {
    let mut named: Vec<_> = Tensor::load_multi(path)
        .unwrap()
        .into_iter()
        .filter(|(n, _)| n != "meta")
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

#[test]
fn killed_runs_resume_to_the_weights_of_an_unbroken_run() {
    let kills = budget("HSSL_KILLS", 3);
    let steps = 24; // 48 images / 8 = 6 steps an epoch: 4 checkpoints.
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let straight = dir.path().join("straight");
    let r = pretrain_cmd(&data, &straight, steps, false)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));

    let broken = dir.path().join("broken");
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut killed = 0;
    let started = Instant::now();
    while killed < kills && started.elapsed() < Duration::from_secs(600) {
        let resume = broken.join("checkpoint.ot").exists();
        let mut child = pretrain_cmd(&data, &broken, steps, resume)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..1200)));
        if child.try_wait().unwrap().is_some() {
            // Finished before the kill: start the broken run again from nothing.
            std::fs::remove_dir_all(&broken).unwrap();
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        killed += 1;
        if broken.join("checkpoint.ot").exists() {
            let whole = std::panic::catch_unwind(|| model_tensors(&broken.join("checkpoint.ot")));
            assert!(
                whole.is_ok(),
                "a checkpoint on disk is not whole after kill {killed}"
            );
        }
    }
    let resume = broken.join("checkpoint.ot").exists();
    let r = pretrain_cmd(&data, &broken, steps, resume)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    let a = model_tensors(&straight.join("checkpoint.ot"));
    let b = model_tensors(&broken.join("checkpoint.ot"));
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs after {killed} kills");
    }
    eprintln!("kill loop: {killed} kills, final weights equal");
}

#[test]
fn a_full_disk_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let out = dir.path().join("run");
    let r = pretrain_cmd(&data, &out, 6, false).output().unwrap();
    assert!(r.status.success(), "{}", text(&r));
    let before = std::fs::read(out.join("checkpoint.ot")).unwrap();

    // The file-size limit makes every write past 64 KiB fail as a full disk would.
    let mut cmd = pretrain_cmd(&data, &out, 12, true);
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let r = cmd.output().unwrap();
    let msg = text(&r);
    assert!(!r.status.success(), "{msg}");
    assert!(
        msg.contains("checkpoint.ot"),
        "the error names the file: {msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");
    let after = std::fs::read(out.join("checkpoint.ot")).unwrap();
    assert!(before == after, "the previous checkpoint was damaged");
    assert!(
        !out.join("checkpoint.ot.tmp").exists(),
        "a partial file was left behind"
    );
}

#[test]
fn a_batch_that_cannot_fit_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path());
    let out = dir.path().join("run");
    let r = hssl()
        .args([
            "pretrain", "--images", "100000", "--views", "1000", "--device", "cpu",
        ])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let msg = text(&r);
    assert!(!r.status.success());
    assert!(
        msg.contains("GiB") && msg.contains("lower `images` or `views`"),
        "{msg}"
    );
    assert!(!out.join("checkpoint.ot").exists());
}
