//! End-to-end test of `hssl report` on a folder of hand-made runs.

use std::fs;
use std::path::Path;
use std::process::Command;

const HEADER: &str = "step,epoch,loss,loss_xz,loss_xa,bound_xz,bound_xa,seconds,images_per_s,\
                      surrogate_accuracy";

struct FakeRun<'a> {
    dir: &'a str,
    backbone: &'a str,
    objective: &'a str,
    seed: u64,
    c10: Option<f64>,
    c100: Option<f64>,
    metrics: Option<String>,
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn metrics(steps: u64, objective: &str, surrogate: bool, level: f64) -> String {
    let mut text = format!("{HEADER}\n");
    for step in 1..=steps {
        let t = step as f64;
        let bound = 0.5 * (1.0 - (-t / 30.0).exp()) + if step % 2 == 0 { 0.05 } else { -0.05 };
        let (xz, xa) = match objective {
            "xz" => (Some(bound), None),
            "xa" => (None, Some(bound)),
            _ => (Some(bound), Some(0.5 * bound)),
        };
        let cell = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        let loss = -(xz.unwrap_or(0.0) + xa.unwrap_or(0.0));
        let accuracy = if surrogate && step % 25 == 0 {
            format!("{:.4}", level * t / steps as f64)
        } else {
            String::new()
        };
        text += &format!(
            "{step},1,{loss:.6},{},{},{},{},0.05,1280.0,{accuracy}\n",
            cell(xz.map(|v| -v)),
            cell(xa.map(|v| -v)),
            cell(xz),
            cell(xa)
        );
    }
    text
}

fn make_run(root: &Path, run: &FakeRun) {
    let dir = root.join(run.dir);
    write(
        &dir.join("config.toml"),
        &format!(
            "backbone = \"{}\"\nobjective = \"{}\"\nestimator = \"nwj\"\nimages = 16\n\
             views = 4\nepochs = 50\nmax_steps = 100\nlearning_rate = 0.001\nseed = {}\n\
             dataset = \"cifar10\"\ndata = \"data/cifar-10-batches-bin\"\ntrain_images = 1000\n",
            run.backbone, run.objective, run.seed
        ),
    );
    for (dataset, accuracy) in [("cifar10", run.c10), ("cifar100", run.c100)] {
        if let Some(acc) = accuracy {
            let text = format!(
                "{{\n  \"dataset\": \"{dataset}\",\n  \"test_accuracy\": {acc},\n  \
                 \"train_accuracy\": 0.7,\n  \"knn_accuracy\": {},\n  \"knn_k\": 20,\n  \
                 \"steps\": 100,\n  \"seed\": {},\n  \"backbone\": \"{}\",\n  \
                 \"objective\": \"{}\",\n  \"settings\": {{\"epochs\": 100}}\n}}\n",
                acc - 0.1,
                run.seed,
                run.backbone,
                run.objective
            );
            write(&dir.join(format!("probe-{dataset}.json")), &text);
        }
    }
    if let Some(text) = &run.metrics {
        write(&dir.join("metrics.csv"), text);
    }
    write(&dir.join("checkpoint.ot"), "not a real checkpoint");
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let image = image::load_from_memory(&bytes).unwrap();
    (image.width(), image.height())
}

fn hssl(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hssl"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn report_builds_tables_and_pictures_from_runs() {
    let root = tempfile::tempdir().unwrap();
    let runs = [
        // Conv-4, I(X,Z,A), three seeds: C10 56.0 / 57.0 / 55.5, C100 27.0 / 28.0 on two.
        (
            "conv4/xza/s0",
            "conv4",
            "xza",
            0,
            Some(0.560),
            Some(0.270),
            true,
        ),
        (
            "conv4/xza/s1",
            "conv4",
            "xza",
            1,
            Some(0.570),
            Some(0.280),
            true,
        ),
        ("conv4/xza/s2", "conv4", "xza", 2, Some(0.555), None, true),
        // Conv-4, I(X,Z), two seeds; seed 1 has a broken metrics file.
        (
            "conv4/xz/s0",
            "conv4",
            "xz",
            0,
            Some(0.540),
            Some(0.270),
            true,
        ),
        (
            "conv4/xz/s1",
            "conv4",
            "xz",
            1,
            Some(0.544),
            Some(0.276),
            true,
        ),
        // ResNet-8, I(X,A), one seed, no surrogate measurements.
        (
            "resnet8/xa/s0",
            "resnet8",
            "xa",
            0,
            Some(0.600),
            Some(0.284),
            false,
        ),
        // Random encoders: probes only.
        (
            "random/conv4-s0",
            "conv4",
            "random",
            0,
            Some(0.332),
            Some(0.110),
            false,
        ),
        (
            "random/conv4-s1",
            "conv4",
            "random",
            1,
            Some(0.316),
            Some(0.106),
            false,
        ),
    ];
    for (dir, backbone, objective, seed, c10, c100, surrogate) in runs {
        let metrics = (objective != "random")
            .then(|| metrics(100, objective, surrogate, 0.3 + 0.1 * seed as f64));
        make_run(
            root.path(),
            &FakeRun {
                dir,
                backbone,
                objective,
                seed,
                c10,
                c100,
                metrics,
            },
        );
    }
    let broken = format!("{HEADER}\n1,1,-0.1,0.1,,-0.1,,0.05,1280.0,\n2,1,oops,,,,,0.05,1280.0,\n");
    write(&root.path().join("conv4/xz/s1/metrics.csv"), &broken);

    let out = root.path().join("out");
    let output = hssl(&[
        "report",
        root.path().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // The table: hand-computed means and sample standard deviations.
    // xza C10: mean 56.1667, std 0.7638; C100: mean 27.5, std 0.7071.
    // xz C10: 54.0, 54.4 -> 54.2 +- 0.2828; C100: 27.0, 27.6 -> 27.3 +- 0.4243.
    // random C10: 33.2, 31.6 -> 32.4 +- 1.1314; C100: 11.0, 10.6 -> 10.8 +- 0.2828.
    let table = fs::read_to_string(out.join("table.md")).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    let expected = [
        "| Method | C10 Conv-4 | C10 ResNet-8 | C10->C100 Conv-4 | C10->C100 ResNet-8 |",
        "|---|---|---|---|---|",
        "| Supervised | - | - | - | - |",
        "| Random | 32.4 +- 1.1 (n=2) | - | 10.8 +- 0.3 (n=2) | - |",
        "| I(X,Z) | 54.2 +- 0.3 (n=2) | - | 27.3 +- 0.4 (n=2) | - |",
        "| I(X,A) | - | 60.0 (n=1) | - | 28.4 (n=1) |",
        "| I(X,Z,A) | 56.2 +- 0.8 (n=3) | - | 27.5 +- 0.7 (n=2) | - |",
    ];
    let start = lines
        .iter()
        .position(|l| *l == expected[0])
        .expect("linear-probe table");
    assert_eq!(&lines[start..start + expected.len()], expected, "\n{table}");

    // kNN: every accuracy 10 points lower.
    let knn = table
        .find("## kNN test accuracy (%, k = 20)")
        .expect("kNN table");
    assert!(table[knn..].contains("| I(X,Z,A) | 46.2 +- 0.8 (n=3) | - | 17.5 +- 0.7 (n=2) | - |"));

    assert!(
        table.contains(
            "| I(X,Z,A) | Conv-4 | 16 images x 4 views | 100 | 1 of 50 | 1000 | fp32 | 3 |"
        ),
        "{table}"
    );
    assert!(
        table.contains("| Random | Conv-4 | - (untrained) | 100 | - | - | fp32 | 2 |"),
        "{table}"
    );
    assert!(
        table.contains("Data folders: `data/cifar-10-batches-bin`"),
        "{table}"
    );
    assert!(
        table.contains("conv4/xz/s1/metrics.csv") && table.contains("line 3"),
        "{table}"
    );
    assert!(
        stdout.contains(expected[6]),
        "the table is printed:\n{stdout}"
    );
    assert!(
        stderr.contains("conv4/xz/s1/metrics.csv"),
        "a warning names the bad file:\n{stderr}"
    );

    // Pictures: surrogate curves per backbone with measurements, a loss picture per run
    // with metrics (not the broken one, not the random encoders).
    let mut pngs: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    pngs.sort();
    assert_eq!(
        pngs,
        [
            "conv4-xz-s0-loss.png",
            "conv4-xza-s0-loss.png",
            "conv4-xza-s1-loss.png",
            "conv4-xza-s2-loss.png",
            "resnet8-xa-s0-loss.png",
            "surrogate-conv4.png",
        ]
    );
    for name in &pngs {
        assert_eq!(png_size(&out.join(name)), (900, 600), "{name}");
        assert!(
            stdout.contains(name.as_str()),
            "{name} is listed:\n{stdout}"
        );
    }
}

#[test]
fn report_defaults_to_a_folder_inside_the_runs_and_fails_clearly_without_runs() {
    let root = tempfile::tempdir().unwrap();
    let run = FakeRun {
        dir: "only",
        backbone: "resnet8",
        objective: "supervised",
        seed: 4,
        c10: Some(0.861),
        c100: None,
        metrics: Some("step,epoch,loss\n1,1,2.3\n2,1,2.0\n3,1,1.8\n".into()),
    };
    make_run(root.path(), &run);
    let output = hssl(&["report", root.path().to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = fs::read_to_string(root.path().join("report/table.md")).unwrap();
    assert!(
        table.contains("| Supervised | - | 86.1 (n=1) | - | - |"),
        "{table}"
    );
    assert_eq!(
        png_size(&root.path().join("report/only-loss.png")),
        (900, 600)
    );

    let empty = tempfile::tempdir().unwrap();
    let output = hssl(&["report", empty.path().to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no run folders") && stderr.contains("config.toml"),
        "{stderr}"
    );
}

#[test]
fn report_help_has_examples() {
    let output = hssl(&["report", "--help"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        stdout.contains("Examples:") && stdout.contains("hssl report runs --out"),
        "{stdout}"
    );
}
