//! Run folders and the files in them: discovery under a root and plain structs that
//! mirror `config.toml`, `metrics.csv` and `probe-<dataset>.json`.
//!
//! The readers (`read_config`, `read_metrics`, `read_probe`) are strict: a bad or
//! partial file gives a [`ReportError`] naming the file and the line or field at fault.
//! [`load_runs`] is lenient where the rest of the report can still be made: a run whose
//! `config.toml` is bad is left out, a bad `metrics.csv` or probe file is dropped while
//! the rest of its run is kept; each such file is logged with `tracing::warn!` and
//! listed in [`RunSet::skipped`]. Only an unreadable root, or one without any run folder,
//! is an error.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::report::error::ReportError;

/// The name of the file that marks a run folder.
pub const CONFIG_FILE: &str = "config.toml";
/// The name of the per-step metrics file of a run.
pub const METRICS_FILE: &str = "metrics.csv";
/// The data sets a run may hold a linear-probe result for, as `probe-<name>.json`.
pub const PROBE_DATASETS: [&str; 2] = ["cifar10", "cifar100"];

/// What a run optimized: the rows of the paper's Table 1, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// Encoder trained with labels (cross-entropy).
    Supervised,
    /// Untrained encoder.
    Random,
    /// The I(X,Z) bound alone (the relational-reasoning baseline).
    Xz,
    /// The I(X,A) bound alone.
    Xa,
    /// Both bounds, I(X,Z) + I(X,A): the full method.
    Xza,
}

impl Method {
    /// Every method, in the row order of the paper's Table 1.
    pub const ALL: [Method; 5] = [
        Method::Supervised,
        Method::Random,
        Method::Xz,
        Method::Xa,
        Method::Xza,
    ];

    /// The name used in configuration files (`supervised`, `random`, `xz`, `xa`, `xza`).
    pub fn key(self) -> &'static str {
        match self {
            Method::Supervised => "supervised",
            Method::Random => "random",
            Method::Xz => "xz",
            Method::Xa => "xa",
            Method::Xza => "xza",
        }
    }

    /// The row label of the paper's table (`I(X,Z,A)` for `xza`).
    pub fn label(self) -> &'static str {
        match self {
            Method::Supervised => "Supervised",
            Method::Random => "Random",
            Method::Xz => "I(X,Z)",
            Method::Xa => "I(X,A)",
            Method::Xza => "I(X,Z,A)",
        }
    }

    /// Reads a configuration value, ignoring case.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|m| m.key() == text)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// The encoder architecture of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Backbone {
    /// Four convolutional blocks, 64 features.
    Conv4,
    /// A residual network of eight layers, 64 features.
    Resnet8,
}

impl Backbone {
    /// Both backbones, in the column order of the paper's Table 1.
    pub const ALL: [Backbone; 2] = [Backbone::Conv4, Backbone::Resnet8];

    /// The name used in configuration files and picture names (`conv4`, `resnet8`).
    pub fn key(self) -> &'static str {
        match self {
            Backbone::Conv4 => "conv4",
            Backbone::Resnet8 => "resnet8",
        }
    }

    /// The name used in tables and titles (`Conv-4`, `ResNet-8`).
    pub fn label(self) -> &'static str {
        match self {
            Backbone::Conv4 => "Conv-4",
            Backbone::Resnet8 => "ResNet-8",
        }
    }

    /// Reads a configuration value, ignoring case and dashes (`ResNet-8` is `resnet8`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = normalize(text);
        Self::ALL.into_iter().find(|b| b.key() == text)
    }
}

impl fmt::Display for Backbone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// Lower case without dashes, underscores or spaces: `CIFAR-10` reads as `cifar10`.
pub fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '-' | '_' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The keys of a run's `config.toml` that the report uses.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Encoder architecture.
    pub backbone: Backbone,
    /// What was optimized.
    pub objective: Method,
    /// Bound used for each term (absent for runs that need none).
    pub estimator: Option<String>,
    /// Images per batch, `M`.
    pub images: u64,
    /// Views per image, `V`.
    pub views: u64,
    /// Epochs asked for.
    pub epochs: u64,
    /// Step limit, when one was set.
    pub max_steps: Option<u64>,
    /// Seed of the run.
    pub seed: u64,
    /// Data set the encoder was trained on, normalized (`cifar10`).
    pub dataset: String,
    /// Number of training images used, when limited.
    pub train_images: Option<u64>,
    /// Folder of the training data, when recorded.
    pub data: Option<PathBuf>,
    /// Number format of the relation encoder (`fp32` when not recorded).
    pub precision: String,
}

#[derive(Deserialize)]
struct RawConfig {
    backbone: String,
    objective: String,
    #[serde(default)]
    estimator: Option<String>,
    images: u64,
    views: u64,
    epochs: u64,
    #[serde(default)]
    max_steps: Option<u64>,
    seed: u64,
    dataset: String,
    #[serde(default)]
    train_images: Option<u64>,
    #[serde(default)]
    data: Option<PathBuf>,
    #[serde(default)]
    precision: Option<String>,
}

/// Parses the text of a `config.toml`; `path` names it in errors. Keys the report does not
/// use are ignored.
pub fn parse_config(text: &str, path: &Path) -> Result<RunConfig, ReportError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| ReportError::ConfigSyntax {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let field = |field: &str, value: &str, expected: &str| ReportError::ConfigField {
        path: path.to_path_buf(),
        field: field.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    };
    let backbone = Backbone::parse(&raw.backbone)
        .ok_or_else(|| field("backbone", &raw.backbone, "conv4 or resnet8"))?;
    let objective = Method::parse(&raw.objective).ok_or_else(|| {
        field(
            "objective",
            &raw.objective,
            "supervised, random, xz, xa or xza",
        )
    })?;
    Ok(RunConfig {
        backbone,
        objective,
        estimator: raw.estimator,
        images: raw.images,
        views: raw.views,
        epochs: raw.epochs,
        max_steps: raw.max_steps,
        seed: raw.seed,
        dataset: normalize(&raw.dataset),
        train_images: raw.train_images,
        data: raw.data,
        precision: raw.precision.unwrap_or_else(|| "fp32".to_string()),
    })
}

/// Reads a run's `config.toml`.
pub fn read_config(path: &Path) -> Result<RunConfig, ReportError> {
    parse_config(&read_text(path)?, path)
}

/// One row of a `metrics.csv`: the figures of one training step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsRow {
    /// Step number, from 1.
    pub step: u64,
    /// Epoch the step belongs to, from 1.
    pub epoch: u64,
    /// Total loss.
    pub loss: f64,
    /// Loss of the I(X,Z) term, when used.
    pub loss_xz: Option<f64>,
    /// Loss of the I(X,A) term, when used.
    pub loss_xa: Option<f64>,
    /// Bound on I(X,Z) in nats, when used.
    pub bound_xz: Option<f64>,
    /// Bound on I(X,A) in nats, when used.
    pub bound_xa: Option<f64>,
    /// Wall-clock seconds of the step.
    pub seconds: Option<f64>,
    /// Images per second of the step.
    pub images_per_s: Option<f64>,
    /// Training accuracy of the surrogate linear classifier (fraction in [0, 1]), on the
    /// steps where it was measured.
    pub surrogate_accuracy: Option<f64>,
}

/// Parses the text of a `metrics.csv`; `path` names it in errors. Columns are found by
/// their header name, so their order does not matter; `step`, `epoch` and `loss` are
/// required, the others may be absent or empty. Blank lines are ignored.
pub fn parse_metrics(text: &str, path: &Path) -> Result<Vec<MetricsRow>, ReportError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = match lines.next() {
        Some((_, h)) => h,
        None => {
            return Err(ReportError::MetricsHeader {
                path: path.to_path_buf(),
                column: "step".into(),
                found: String::new(),
            })
        }
    };
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| names.iter().position(|n| *n == name);
    let required = |name: &str| {
        column(name).ok_or_else(|| ReportError::MetricsHeader {
            path: path.to_path_buf(),
            column: name.to_string(),
            found: header.to_string(),
        })
    };
    let (step_col, epoch_col, loss_col) =
        (required("step")?, required("epoch")?, required("loss")?);
    let optional = [
        "loss_xz",
        "loss_xa",
        "bound_xz",
        "bound_xa",
        "seconds",
        "images_per_s",
    ]
    .map(|name| (name, column(name)));
    let surrogate_col = column("surrogate_accuracy");

    let mut rows = Vec::new();
    for (index, line) in lines {
        let line_no = index + 1;
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != names.len() {
            return Err(ReportError::MetricsWidth {
                path: path.to_path_buf(),
                line: line_no,
                found: cells.len(),
                expected: names.len(),
            });
        }
        let bad = |col: usize, expected: &str| ReportError::MetricsCell {
            path: path.to_path_buf(),
            line: line_no,
            column: names[col].to_string(),
            value: cells[col].to_string(),
            expected: expected.to_string(),
        };
        let integer = |col: usize| {
            cells[col]
                .parse::<u64>()
                .map_err(|_| bad(col, "a whole number of at least 0"))
        };
        let number = |col: usize| -> Result<Option<f64>, ReportError> {
            match cells[col] {
                "" => Ok(None),
                text => text
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| bad(col, "a number or empty")),
            }
        };
        let step = integer(step_col)?;
        let epoch = integer(epoch_col)?;
        let loss = number(loss_col)?.ok_or_else(|| bad(loss_col, "a number"))?;
        let [loss_xz, loss_xa, bound_xz, bound_xa, seconds, images_per_s] =
            optional.map(|(_, col)| col.map(number).transpose().map(Option::flatten));
        let surrogate_accuracy = match surrogate_col {
            Some(col) => match number(col)? {
                Some(v) if !(0.0..=1.0).contains(&v) => {
                    return Err(bad(col, "a fraction between 0 and 1"))
                }
                v => v,
            },
            None => None,
        };
        rows.push(MetricsRow {
            step,
            epoch,
            loss,
            loss_xz: loss_xz?,
            loss_xa: loss_xa?,
            bound_xz: bound_xz?,
            bound_xa: bound_xa?,
            seconds: seconds?,
            images_per_s: images_per_s?,
            surrogate_accuracy,
        });
    }
    Ok(rows)
}

/// Reads a run's `metrics.csv`.
pub fn read_metrics(path: &Path) -> Result<Vec<MetricsRow>, ReportError> {
    parse_metrics(&read_text(path)?, path)
}

/// A linear-probe result, `probe-<dataset>.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeResult {
    /// Data set probed, normalized (`cifar10`, `cifar100`).
    pub dataset: String,
    /// Top-1 accuracy of the probe on the test set (fraction).
    pub test_accuracy: f64,
    /// Top-1 accuracy of the probe on the training set (fraction), when recorded.
    pub train_accuracy: Option<f64>,
    /// Test accuracy of a k-nearest-neighbour classifier on the features (fraction).
    pub knn_accuracy: Option<f64>,
    /// The `k` of the nearest-neighbour classifier.
    pub knn_k: Option<u64>,
    /// Training steps of the encoder that was probed.
    pub steps: Option<u64>,
    /// Seed of the run.
    pub seed: u64,
    /// Encoder architecture.
    pub backbone: Backbone,
    /// What the encoder optimized.
    pub objective: Method,
    /// The probe's settings, as written.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct RawProbe {
    dataset: String,
    test_accuracy: f64,
    #[serde(default)]
    train_accuracy: Option<f64>,
    #[serde(default)]
    knn_accuracy: Option<f64>,
    #[serde(default)]
    knn_k: Option<u64>,
    #[serde(default)]
    steps: Option<u64>,
    seed: u64,
    backbone: String,
    objective: String,
    #[serde(default)]
    settings: serde_json::Map<String, serde_json::Value>,
}

/// Parses the text of a probe result; `path` names it in errors. Accuracies must be
/// fractions in [0, 1].
pub fn parse_probe(text: &str, path: &Path) -> Result<ProbeResult, ReportError> {
    let raw: RawProbe = serde_json::from_str(text).map_err(|e| ReportError::ProbeSyntax {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let field = |field: &str, value: String, expected: &str| ReportError::ProbeField {
        path: path.to_path_buf(),
        field: field.to_string(),
        value,
        expected: expected.to_string(),
    };
    let accuracies = [
        ("test_accuracy", Some(raw.test_accuracy)),
        ("train_accuracy", raw.train_accuracy),
        ("knn_accuracy", raw.knn_accuracy),
    ];
    for (name, value) in accuracies {
        if let Some(v) = value.filter(|v| !(0.0..=1.0).contains(v)) {
            return Err(field(name, v.to_string(), "a fraction between 0 and 1"));
        }
    }
    let backbone = Backbone::parse(&raw.backbone).ok_or_else(|| {
        field(
            "backbone",
            format!("{:?}", raw.backbone),
            "conv4 or resnet8",
        )
    })?;
    let objective = Method::parse(&raw.objective).ok_or_else(|| {
        field(
            "objective",
            format!("{:?}", raw.objective),
            "supervised, random, xz, xa or xza",
        )
    })?;
    Ok(ProbeResult {
        dataset: normalize(&raw.dataset),
        test_accuracy: raw.test_accuracy,
        train_accuracy: raw.train_accuracy,
        knn_accuracy: raw.knn_accuracy,
        knn_k: raw.knn_k,
        steps: raw.steps,
        seed: raw.seed,
        backbone,
        objective,
        settings: raw.settings,
    })
}

/// Reads a probe result file.
pub fn read_probe(path: &Path) -> Result<ProbeResult, ReportError> {
    parse_probe(&read_text(path)?, path)
}

/// Checks that a probe result belongs to the run in whose folder it lies and to the data
/// set its file name says.
pub fn check_probe(
    probe: &ProbeResult,
    config: &RunConfig,
    dataset: &str,
    path: &Path,
) -> Result<(), ReportError> {
    let field = |field: &str, value: String, expected: String| ReportError::ProbeField {
        path: path.to_path_buf(),
        field: field.to_string(),
        value,
        expected,
    };
    if probe.dataset != dataset {
        return Err(field(
            "dataset",
            probe.dataset.clone(),
            format!("{dataset} (the file name)"),
        ));
    }
    if probe.backbone != config.backbone {
        let expected = format!("{} (the run's config.toml)", config.backbone);
        return Err(field("backbone", probe.backbone.to_string(), expected));
    }
    if probe.objective != config.objective {
        let expected = format!("{} (the run's config.toml)", config.objective);
        return Err(field("objective", probe.objective.to_string(), expected));
    }
    if probe.seed != config.seed {
        let expected = format!("{} (the run's config.toml)", config.seed);
        return Err(field("seed", probe.seed.to_string(), expected));
    }
    Ok(())
}

/// One run folder, as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// The folder's path below the root, with `-` between components (`xza-seed0`); used
    /// to name the run's pictures.
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// Its configuration.
    pub config: RunConfig,
    /// Its per-step metrics; `None` when the file is missing or was skipped.
    pub metrics: Option<Vec<MetricsRow>>,
    /// Its probe results, keyed by data set (`cifar10`, `cifar100`).
    pub probes: BTreeMap<String, ProbeResult>,
}

impl Run {
    /// The probe result on `dataset` (`cifar10` or `cifar100`), if any.
    pub fn probe(&self, dataset: &str) -> Option<&ProbeResult> {
        self.probes.get(dataset)
    }

    /// The surrogate accuracies as `(step, fraction)`, in file order; empty when the run
    /// measured none.
    pub fn surrogate_points(&self) -> Vec<(u64, f64)> {
        self.metrics
            .iter()
            .flatten()
            .filter_map(|r| r.surrogate_accuracy.map(|a| (r.step, a)))
            .collect()
    }

    /// Training steps taken: the last metrics row, else what a probe recorded, else the
    /// step limit of the configuration.
    pub fn steps(&self) -> Option<u64> {
        let from_metrics = self
            .metrics
            .as_ref()
            .and_then(|m| m.iter().map(|r| r.step).max());
        let from_probe = self.probes.values().filter_map(|p| p.steps).max();
        from_metrics.or(from_probe).or(self.config.max_steps)
    }

    /// Epochs reached (the epoch of the last metrics row), when the metrics are there.
    pub fn epochs_reached(&self) -> Option<u64> {
        self.metrics
            .as_ref()
            .and_then(|m| m.iter().map(|r| r.epoch).max())
    }
}

/// A file the report could not use, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// The error message.
    pub reason: String,
}

/// Every run found under a root.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSet {
    /// The folder searched.
    pub root: PathBuf,
    /// The runs, ordered by folder path.
    pub runs: Vec<Run>,
    /// Files that were bad and left out, in the order met.
    pub skipped: Vec<SkippedFile>,
}

/// Every folder at or below `root` that holds a `config.toml`, sorted. Symbolic links are
/// not followed.
pub fn find_run_dirs(root: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        if dir.join(CONFIG_FILE).is_file() {
            found.push(dir.clone());
        }
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            if entry.file_type().map_err(io(&entry.path()))?.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Finds and reads every run under `root`; see the module docs for which bad files are
/// skipped (with a warning) and which are errors.
pub fn load_runs(root: &Path) -> Result<RunSet, ReportError> {
    let dirs = find_run_dirs(root)?;
    if dirs.is_empty() {
        return Err(ReportError::NoRuns {
            root: root.to_path_buf(),
        });
    }
    let mut set = RunSet {
        root: root.to_path_buf(),
        runs: Vec::new(),
        skipped: Vec::new(),
    };
    for dir in dirs {
        if let Some(run) = load_run(root, &dir, &mut set.skipped) {
            set.runs.push(run);
        }
    }
    Ok(set)
}

fn load_run(root: &Path, dir: &Path, skipped: &mut Vec<SkippedFile>) -> Option<Run> {
    let mut skip = |path: PathBuf, error: ReportError, consequence: &str| {
        tracing::warn!("{error} (skipped: {consequence})");
        skipped.push(SkippedFile {
            path,
            reason: error.to_string(),
        });
    };

    let config_path = dir.join(CONFIG_FILE);
    let config = match read_config(&config_path) {
        Ok(c) => c,
        Err(e) => {
            skip(config_path, e, "the run is left out");
            return None;
        }
    };

    let metrics_path = dir.join(METRICS_FILE);
    let metrics = if metrics_path.is_file() {
        match read_metrics(&metrics_path) {
            Ok(rows) => Some(rows),
            Err(e) => {
                skip(metrics_path, e, "the run has no curves");
                None
            }
        }
    } else {
        None
    };

    let mut probes = BTreeMap::new();
    for dataset in PROBE_DATASETS {
        let path = dir.join(format!("probe-{dataset}.json"));
        if !path.is_file() {
            continue;
        }
        let probe =
            read_probe(&path).and_then(|p| check_probe(&p, &config, dataset, &path).map(|_| p));
        match probe {
            Ok(p) => {
                probes.insert(dataset.to_string(), p);
            }
            Err(e) => skip(path, e, "the run has no result on this data set"),
        }
    }

    Some(Run {
        name: run_name(root, dir),
        dir: dir.to_path_buf(),
        config,
        metrics,
        probes,
    })
}

/// The name of a run: its path below the root with `-` between components, or the root's
/// own name when the root is the run.
pub fn run_name(root: &Path, dir: &Path) -> String {
    let parts: Vec<String> = dir
        .strip_prefix(root)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        root.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into())
    } else {
        parts.join("-")
    }
}

fn read_text(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `config.toml` as the training command writes it (with keys the report ignores).
    pub(crate) fn config_text(backbone: &str, objective: &str, seed: u64) -> String {
        format!(
            "backbone = \"{backbone}\"\nobjective = \"{objective}\"\nestimator = \"nwj\"\n\
             images = 64\nviews = 32\nepochs = 50\nmax_steps = 100\nlearning_rate = 0.001\n\
             seed = {seed}\ndataset = \"cifar10\"\ndata = \"data/cifar-10-batches-bin\"\n"
        )
    }

    /// A probe result file.
    pub(crate) fn probe_text(
        dataset: &str,
        backbone: &str,
        objective: &str,
        seed: u64,
        test: f64,
        knn: f64,
    ) -> String {
        format!(
            "{{\"dataset\": \"{dataset}\", \"test_accuracy\": {test}, \"train_accuracy\": 0.9,\
             \"knn_accuracy\": {knn}, \"knn_k\": 200, \"steps\": 100, \"seed\": {seed},\
             \"backbone\": \"{backbone}\", \"objective\": \"{objective}\",\
             \"settings\": {{\"epochs\": 100, \"data\": \"data/{dataset}\"}}}}"
        )
    }

    const HEADER: &str = "step,epoch,loss,loss_xz,loss_xa,bound_xz,bound_xa,seconds,\
                          images_per_s,surrogate_accuracy";

    #[test]
    fn config_keys_are_read_and_unknown_keys_ignored() {
        let c = parse_config(&config_text("resnet8", "xza", 3), Path::new("c.toml")).unwrap();
        assert_eq!(c.backbone, Backbone::Resnet8);
        assert_eq!(c.objective, Method::Xza);
        assert_eq!((c.images, c.views, c.epochs, c.seed), (64, 32, 50, 3));
        assert_eq!(c.max_steps, Some(100));
        assert_eq!(c.train_images, None);
        assert_eq!(c.dataset, "cifar10");
        assert_eq!(c.data, Some(PathBuf::from("data/cifar-10-batches-bin")));
    }

    #[test]
    fn config_errors_name_file_and_field() {
        let text = config_text("vgg", "xz", 0);
        let e = parse_config(&text, Path::new("runs/a/config.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("runs/a/config.toml") && msg.contains("`backbone`"),
            "{msg}"
        );
        assert!(
            msg.contains("\"vgg\"") && msg.contains("conv4 or resnet8"),
            "{msg}"
        );

        let text = config_text("conv4", "xz", 0).replace("seed = 0\n", "");
        let msg = parse_config(&text, Path::new("x/config.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("x/config.toml") && msg.contains("seed"),
            "{msg}"
        );

        let msg = parse_config("images = [", Path::new("y.toml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("y.toml") && msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn metrics_rows_with_empty_cells() {
        let text = format!(
            "{HEADER}\n1,1,-0.5,0.2,,-0.2,,0.1,640.0,\n2,1,-0.75,0.25,,-0.25,,0.1,640.0,0.42\n\n"
        );
        let rows = parse_metrics(&text, Path::new("m.csv")).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].step, 1);
        assert_eq!(rows[0].loss, -0.5);
        assert_eq!(rows[0].loss_xz, Some(0.2));
        assert_eq!(rows[0].loss_xa, None);
        assert_eq!(rows[0].bound_xz, Some(-0.2));
        assert_eq!(rows[0].surrogate_accuracy, None);
        assert_eq!(rows[1].surrogate_accuracy, Some(0.42));
        assert_eq!(rows[1].images_per_s, Some(640.0));
    }

    #[test]
    fn metrics_columns_found_by_name() {
        let text = "loss,step,epoch\n1.5,7,2\n";
        let rows = parse_metrics(text, Path::new("m.csv")).unwrap();
        assert_eq!((rows[0].step, rows[0].epoch, rows[0].loss), (7, 2, 1.5));
        assert_eq!(rows[0].bound_xz, None);
    }

    #[test]
    fn metrics_errors_name_file_line_and_column() {
        let path = Path::new("runs/b/metrics.csv");
        let text = format!("{HEADER}\n1,1,-0.5,,,,,0.1,640.0,\n2,1,abc,,,,,0.1,640.0,\n");
        let msg = parse_metrics(&text, path).unwrap_err().to_string();
        assert!(
            msg.contains("runs/b/metrics.csv") && msg.contains("line 3"),
            "{msg}"
        );
        assert!(msg.contains("`loss`") && msg.contains("\"abc\""), "{msg}");

        let text = format!("{HEADER}\n1,1,-0.5,,,,\n");
        let e = parse_metrics(&text, path).unwrap_err();
        assert!(matches!(
            e,
            ReportError::MetricsWidth {
                line: 2,
                found: 7,
                expected: 10,
                ..
            }
        ));

        let msg = parse_metrics("step,loss\n1,0.5\n", path)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`epoch`") && msg.contains("line 1"), "{msg}");

        let text = format!("{HEADER}\n1,1,-0.5,,,,,0.1,640.0,42.0\n");
        let msg = parse_metrics(&text, path).unwrap_err().to_string();
        assert!(
            msg.contains("surrogate_accuracy") && msg.contains("fraction"),
            "{msg}"
        );

        assert!(matches!(
            parse_metrics("", path),
            Err(ReportError::MetricsHeader { .. })
        ));
    }

    #[test]
    fn probe_is_read_and_checked_against_the_run() {
        let path = Path::new("runs/c/probe-cifar100.json");
        let text = probe_text("CIFAR-100", "conv4", "xa", 2, 0.262, 0.2);
        let p = parse_probe(&text, path).unwrap();
        assert_eq!(p.dataset, "cifar100");
        assert_eq!(p.test_accuracy, 0.262);
        assert_eq!(p.knn_k, Some(200));
        assert_eq!(p.objective, Method::Xa);
        assert_eq!(p.settings.get("epochs"), Some(&serde_json::json!(100)));

        let config = parse_config(&config_text("conv4", "xa", 2), path).unwrap();
        assert!(check_probe(&p, &config, "cifar100", path).is_ok());
        let msg = check_probe(&p, &config, "cifar10", path)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`dataset`") && msg.contains("cifar100"),
            "{msg}"
        );
        let other = parse_config(&config_text("conv4", "xa", 5), path).unwrap();
        let msg = check_probe(&p, &other, "cifar100", path)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`seed` is 2, expected 5"), "{msg}");
    }

    #[test]
    fn probe_errors_name_file_and_field() {
        let path = Path::new("p.json");
        let msg = parse_probe("{\"dataset\": \"cifar10\"}", path)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("p.json") && msg.contains("test_accuracy"),
            "{msg}"
        );
        let msg = parse_probe("{\"dataset\": ", path).unwrap_err().to_string();
        assert!(msg.contains("line 1"), "{msg}");
        let text = probe_text("cifar10", "conv4", "xz", 0, 54.2, 0.5);
        let msg = parse_probe(&text, path).unwrap_err().to_string();
        assert!(
            msg.contains("`test_accuracy` is 54.2") && msg.contains("fraction"),
            "{msg}"
        );
    }

    #[test]
    fn runs_are_found_at_any_depth_and_bad_files_skipped() {
        let root = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = root.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("conv4/xz/s0/config.toml", &config_text("conv4", "xz", 0));
        write(
            "conv4/xz/s0/metrics.csv",
            &format!("{HEADER}\n1,1,0.5,,,,,0.1,1.0,0.3\n"),
        );
        write(
            "conv4/xz/s0/probe-cifar10.json",
            &probe_text("cifar10", "conv4", "xz", 0, 0.5, 0.4),
        );
        write("conv4/xz/s0/probe-cifar100.json", "{ not json");
        write("xa1/config.toml", &config_text("conv4", "xa", 1));
        write("xa1/metrics.csv", "step,epoch,loss\n1,1,x\n");
        write("bad/config.toml", "backbone = 3");
        write("empty/notes.txt", "nothing");

        let set = load_runs(root.path()).unwrap();
        let names: Vec<&str> = set.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["conv4-xz-s0", "xa1"]);
        let first = &set.runs[0];
        assert_eq!(first.metrics.as_ref().map(Vec::len), Some(1));
        assert_eq!(first.surrogate_points(), vec![(1, 0.3)]);
        assert!(first.probe("cifar10").is_some() && first.probe("cifar100").is_none());
        assert_eq!(first.steps(), Some(1));
        assert_eq!(set.runs[1].metrics, None);
        assert_eq!(set.runs[1].steps(), Some(100));

        let skipped: Vec<String> = set
            .skipped
            .iter()
            .map(|s| {
                s.path
                    .strip_prefix(root.path())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(
            skipped,
            [
                "bad/config.toml",
                "conv4/xz/s0/probe-cifar100.json",
                "xa1/metrics.csv"
            ]
        );
    }

    #[test]
    fn a_root_without_runs_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        assert!(matches!(
            load_runs(root.path()),
            Err(ReportError::NoRuns { .. })
        ));
        let missing = root.path().join("nope");
        let msg = load_runs(&missing).unwrap_err().to_string();
        assert!(msg.contains("nope"), "{msg}");
    }

    #[test]
    fn run_names_follow_the_folder_path() {
        assert_eq!(run_name(Path::new("/r"), Path::new("/r/a/b")), "a-b");
        assert_eq!(run_name(Path::new("/r/xz"), Path::new("/r/xz")), "xz");
    }
}
