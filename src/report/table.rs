//! The Markdown tables of the report: linear-probe and kNN accuracy in the layout of the
//! paper's Table 1, the training budget behind each row, and notes on the data used.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};

use crate::report::runs::{Backbone, Method, Run, RunSet};

/// The data set every run in the accuracy tables was pretrained on.
pub const PRETRAIN_DATASET: &str = "cifar10";

/// Mean and spread of one cell, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellStats {
    /// Mean over the runs.
    pub mean: f64,
    /// Sample standard deviation (divided by `n - 1`); `None` for a single run.
    pub std: Option<f64>,
    /// Number of runs (seeds).
    pub n: usize,
}

impl CellStats {
    /// The mean and sample standard deviation of `values`; `None` when empty.
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n >= 2).then(|| {
            let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (squares / (n - 1) as f64).sqrt()
        });
        Some(Self { mean, std, n })
    }
}

impl fmt::Display for CellStats {
    /// `56.3 +- 0.8 (n=3)`, or `56.3 (n=1)` for a single run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.std {
            Some(std) => write!(f, "{:.1} +- {:.1} (n={})", self.mean, std, self.n),
            None => write!(f, "{:.1} (n={})", self.mean, self.n),
        }
    }
}

/// A column of the paper's Table 1: the data set probed and the backbone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Data set the probe was trained and tested on (`cifar10`, `cifar100`).
    pub probe_dataset: &'static str,
    /// Encoder architecture.
    pub backbone: Backbone,
    /// Header text.
    pub label: &'static str,
}

/// The four columns, in the paper's order.
pub const COLUMNS: [Column; 4] = [
    Column {
        probe_dataset: "cifar10",
        backbone: Backbone::Conv4,
        label: "C10 Conv-4",
    },
    Column {
        probe_dataset: "cifar10",
        backbone: Backbone::Resnet8,
        label: "C10 ResNet-8",
    },
    Column {
        probe_dataset: "cifar100",
        backbone: Backbone::Conv4,
        label: "C10->C100 Conv-4",
    },
    Column {
        probe_dataset: "cifar100",
        backbone: Backbone::Resnet8,
        label: "C10->C100 ResNet-8",
    },
];

/// Which accuracy of the probe files a table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Linear-probe top-1 test accuracy (the paper's Table 1).
    LinearProbe,
    /// k-nearest-neighbour test accuracy.
    Knn,
}

/// Accuracy in percent, one row per method and one cell per column of [`COLUMNS`].
#[derive(Debug, Clone, PartialEq)]
pub struct AccuracyTable {
    /// What the cells measure.
    pub metric: Metric,
    /// Rows in the order of [`Method::ALL`]; a cell is `None` where no run has a result.
    pub rows: Vec<(Method, [Option<CellStats>; 4])>,
}

/// Whether a run belongs in the accuracy and budget tables: pretrained on CIFAR-10.
pub fn in_table(run: &Run) -> bool {
    run.config.dataset == PRETRAIN_DATASET
}

/// Collects one table from the runs pretrained on CIFAR-10 (others are ignored).
pub fn accuracy_table(runs: &[Run], metric: Metric) -> AccuracyTable {
    let rows = Method::ALL
        .into_iter()
        .map(|method| {
            let cells = COLUMNS.map(|column| {
                let values: Vec<f64> = runs
                    .iter()
                    .filter(|r| in_table(r))
                    .filter(|r| r.config.objective == method)
                    .filter(|r| r.config.backbone == column.backbone)
                    .filter_map(|r| r.probe(column.probe_dataset))
                    .filter_map(|p| match metric {
                        Metric::LinearProbe => Some(p.test_accuracy),
                        Metric::Knn => p.knn_accuracy,
                    })
                    .map(|fraction| 100.0 * fraction)
                    .collect();
                CellStats::of(&values)
            });
            (method, cells)
        })
        .collect();
    AccuracyTable { metric, rows }
}

impl AccuracyTable {
    /// The table as Markdown, `-` in empty cells.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("| Method |");
        for column in COLUMNS {
            let _ = write!(out, " {} |", column.label);
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(COLUMNS.len()));
        out.push('\n');
        for (method, cells) in &self.rows {
            let _ = write!(out, "| {} |", method.label());
            for cell in cells {
                match cell {
                    Some(stats) => {
                        let _ = write!(out, " {stats} |");
                    }
                    None => out.push_str(" - |"),
                }
            }
            out.push('\n');
        }
        out
    }
}

/// The training budget of the runs of one method and backbone.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetRow {
    /// What was optimized.
    pub method: Method,
    /// Encoder architecture.
    pub backbone: Backbone,
    /// Distinct `(images, views)` per batch.
    pub batches: BTreeSet<(u64, u64)>,
    /// Distinct numbers of training steps taken (runs that recorded none are left out).
    pub steps: BTreeSet<u64>,
    /// Distinct `(epochs reached, epochs asked for)`; the first is `None` for runs
    /// without metrics.
    pub epochs: BTreeSet<(Option<u64>, u64)>,
    /// Distinct training-set limits (`None`: the whole set).
    pub train_images: BTreeSet<Option<u64>>,
    /// Distinct number formats of the relation encoder.
    pub precisions: BTreeSet<String>,
    /// Number of runs.
    pub runs: usize,
}

/// One row per method and backbone that has runs pretrained on CIFAR-10, in table order.
pub fn budget_rows(runs: &[Run]) -> Vec<BudgetRow> {
    let mut rows = Vec::new();
    for method in Method::ALL {
        for backbone in Backbone::ALL {
            let group: Vec<&Run> = runs
                .iter()
                .filter(|r| in_table(r))
                .filter(|r| r.config.objective == method && r.config.backbone == backbone)
                .collect();
            if group.is_empty() {
                continue;
            }
            rows.push(BudgetRow {
                method,
                backbone,
                batches: group
                    .iter()
                    .map(|r| (r.config.images, r.config.views))
                    .collect(),
                steps: group.iter().filter_map(|r| r.steps()).collect(),
                epochs: group
                    .iter()
                    .map(|r| (r.epochs_reached(), r.config.epochs))
                    .collect(),
                train_images: group.iter().map(|r| r.config.train_images).collect(),
                precisions: group.iter().map(|r| r.config.precision.clone()).collect(),
                runs: group.len(),
            });
        }
    }
    rows
}

fn joined<T>(values: impl IntoIterator<Item = T>, show: impl Fn(T) -> String) -> String {
    let parts: Vec<String> = values.into_iter().map(show).collect();
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(" / ")
    }
}

/// The budget table as Markdown: one line per [`BudgetRow`]. The batch column shows what
/// each row trains on: `M x V` views for the self-supervised rows, labelled batches of
/// 128 for the supervised reference, nothing for the untrained one (nor epochs or training
/// images: it never trains).
pub fn budget_markdown(rows: &[BudgetRow]) -> String {
    let mut out = String::from(
        "| Method | Backbone | batch | steps | epochs | training images | precision | runs |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let steps = joined(&row.steps, |s| s.to_string());
        let epochs = || {
            joined(&row.epochs, |(reached, asked)| match reached {
                Some(r) if *r != *asked => format!("{r} of {asked}"),
                _ => asked.to_string(),
            })
        };
        let images = || {
            joined(&row.train_images, |n| match n {
                Some(n) => n.to_string(),
                None => "all".to_string(),
            })
        };
        let dash = || "-".to_string();
        let (batches, epochs, images, precisions) = match row.method {
            Method::Supervised => (
                "128 labelled images".to_string(),
                epochs(),
                images(),
                "fp32".to_string(),
            ),
            Method::Random => (
                "- (untrained)".to_string(),
                dash(),
                dash(),
                "fp32".to_string(),
            ),
            Method::Xz | Method::Xa | Method::Xza => (
                joined(&row.batches, |(m, v)| format!("{m} images x {v} views")),
                epochs(),
                images(),
                joined(&row.precisions, |p| p.clone()),
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {batches} | {steps} | {epochs} | {images} | {precisions} | {} |",
            row.method.label(),
            row.backbone.label(),
            row.runs
        );
    }
    out
}

/// Data folders named by the runs: the `data` key of each `config.toml`, and string
/// settings of the probe files whose key is `data` or starts or ends with `data_`/`_data`.
pub fn data_folders(runs: &[Run]) -> BTreeSet<String> {
    let mut folders = BTreeSet::new();
    for run in runs {
        if let Some(data) = &run.config.data {
            folders.insert(data.display().to_string());
        }
        for probe in run.probes.values() {
            for (key, value) in &probe.settings {
                let is_data = key == "data" || key.starts_with("data_") || key.ends_with("_data");
                if let (true, Some(text)) = (is_data, value.as_str()) {
                    folders.insert(text.to_string());
                }
            }
        }
    }
    folders
}

/// The whole `table.md`: both accuracy tables, the budget table, the data folders, and
/// notes on runs left out and files skipped.
pub fn render_report(set: &RunSet) -> String {
    let runs = &set.runs;
    let mut out = String::from("# Results\n\n");
    let _ = writeln!(
        out,
        "{} run(s) under `{}`, pretrained on CIFAR-10; cells are mean +- sample standard \
         deviation over seeds, in percent (n = number of runs).\n",
        runs.iter().filter(|r| in_table(r)).count(),
        set.root.display()
    );

    out.push_str("## Linear-probe test accuracy (%)\n\n");
    out.push_str(&accuracy_table(runs, Metric::LinearProbe).to_markdown());

    out.push_str("\n## Training budget\n\n");
    out.push_str(&budget_markdown(&budget_rows(runs)));
    let folders = data_folders(runs);
    let folders = joined(&folders, |f| format!("`{f}`"));
    let _ = writeln!(out, "\nData folders: {folders}");

    let ks: BTreeSet<u64> = runs
        .iter()
        .filter(|r| in_table(r))
        .flat_map(|r| r.probes.values())
        .filter_map(|p| p.knn_k)
        .collect();
    let ks = if ks.is_empty() {
        String::new()
    } else {
        format!(", k = {}", joined(&ks, |k| k.to_string()))
    };
    let _ = writeln!(out, "\n## kNN test accuracy (%{ks})\n");
    out.push_str(&accuracy_table(runs, Metric::Knn).to_markdown());

    let left_out: Vec<&Run> = runs.iter().filter(|r| !in_table(r)).collect();
    let no_probe: Vec<&Run> = runs
        .iter()
        .filter(|r| in_table(r) && r.probes.is_empty())
        .collect();
    if !left_out.is_empty() || !no_probe.is_empty() || !set.skipped.is_empty() {
        out.push_str("\n## Notes\n\n");
    }
    for run in left_out {
        let _ = writeln!(
            out,
            "- `{}`: pretrained on {}, not CIFAR-10; not in the tables.",
            run.dir.display(),
            run.config.dataset
        );
    }
    for run in no_probe {
        let _ = writeln!(out, "- `{}`: no probe result yet.", run.dir.display());
    }
    for skipped in &set.skipped {
        let _ = writeln!(out, "- skipped: {}", skipped.reason);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::runs::tests::{config_text, probe_text};
    use crate::report::runs::{parse_config, parse_probe};
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    fn run(backbone: &str, objective: &str, seed: u64, c10: Option<f64>, c100: Option<f64>) -> Run {
        let path = Path::new("t");
        let mut probes = BTreeMap::new();
        for (dataset, acc) in [("cifar10", c10), ("cifar100", c100)] {
            if let Some(acc) = acc {
                let text = probe_text(dataset, backbone, objective, seed, acc, acc / 2.0);
                probes.insert(dataset.to_string(), parse_probe(&text, path).unwrap());
            }
        }
        Run {
            name: format!("{objective}-{backbone}-{seed}"),
            dir: PathBuf::from(format!("runs/{objective}-{backbone}-{seed}")),
            config: parse_config(&config_text(backbone, objective, seed), path).unwrap(),
            metrics: None,
            probes,
        }
    }

    #[test]
    fn stats_by_hand() {
        // 54.0, 54.2, 54.4: mean 54.2, squares 0.04 + 0 + 0.04, / 2 -> 0.04, std 0.2.
        let s = CellStats::of(&[54.0, 54.2, 54.4]).unwrap();
        assert!((s.mean - 54.2).abs() < 1e-12 && (s.std.unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(s.to_string(), "54.2 +- 0.2 (n=3)");
        // 10, 20: mean 15, squares 25 + 25 = 50, / 1 -> std sqrt(50) = 7.0711.
        assert_eq!(
            CellStats::of(&[10.0, 20.0]).unwrap().to_string(),
            "15.0 +- 7.1 (n=2)"
        );
        assert_eq!(CellStats::of(&[33.25]).unwrap().to_string(), "33.2 (n=1)");
        assert_eq!(
            CellStats::of(&[1.0, 1.0]).unwrap().to_string(),
            "1.0 +- 0.0 (n=2)"
        );
        assert_eq!(CellStats::of(&[]), None);
    }

    #[test]
    fn table_layout_and_values() {
        let runs = vec![
            run("conv4", "xza", 0, Some(0.56), Some(0.27)),
            run("conv4", "xza", 1, Some(0.57), Some(0.28)),
            run("conv4", "xza", 2, Some(0.555), None),
            run("resnet8", "xz", 0, Some(0.569), None),
            run("conv4", "random", 0, Some(0.332), Some(0.11)),
        ];
        let table = accuracy_table(&runs, Metric::LinearProbe).to_markdown();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| Method | C10 Conv-4 | C10 ResNet-8 | C10->C100 Conv-4 | C10->C100 ResNet-8 |"
        );
        assert_eq!(lines[1], "|---|---|---|---|---|");
        assert_eq!(lines[2], "| Supervised | - | - | - | - |");
        assert_eq!(lines[3], "| Random | 33.2 (n=1) | - | 11.0 (n=1) | - |");
        assert_eq!(lines[4], "| I(X,Z) | - | 56.9 (n=1) | - | - |");
        assert_eq!(lines[5], "| I(X,A) | - | - | - | - |");
        // C10: 56.0, 57.0, 55.5 -> mean 56.1667, deviations -0.1667, 0.8333, -0.6667,
        // squares 0.02778 + 0.69444 + 0.44444 = 1.16667, / 2 = 0.58333, std 0.7638.
        // C100: 27, 28 -> mean 27.5, std sqrt(0.5) = 0.7071.
        assert_eq!(
            lines[6],
            "| I(X,Z,A) | 56.2 +- 0.8 (n=3) | - | 27.5 +- 0.7 (n=2) | - |"
        );
        assert_eq!(lines.len(), 7);

        let knn = accuracy_table(&runs, Metric::Knn);
        let cell = knn.rows[4].1[0].unwrap();
        assert!((cell.mean - 28.0833333).abs() < 1e-6, "{cell:?}");
    }

    #[test]
    fn runs_pretrained_elsewhere_are_left_out() {
        let mut other = run("conv4", "xz", 0, Some(0.9), None);
        other.config.dataset = "cifar100".into();
        let table = accuracy_table(&[other.clone()], Metric::LinearProbe);
        assert!(table
            .rows
            .iter()
            .all(|(_, cells)| cells.iter().all(Option::is_none)));
        let set = RunSet {
            root: "runs".into(),
            runs: vec![other],
            skipped: vec![],
        };
        let text = render_report(&set);
        assert!(
            text.contains("pretrained on cifar100, not CIFAR-10"),
            "{text}"
        );
    }

    #[test]
    fn budget_rows_group_by_method_and_backbone() {
        let mut a = run("conv4", "xza", 0, Some(0.5), None);
        let b = run("conv4", "xza", 1, Some(0.5), None);
        a.config.views = 4;
        let c = run("resnet8", "supervised", 0, None, None);
        let d = run("conv4", "random", 0, None, None);
        let rows = budget_rows(&[a, b, c, d]);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].method, rows[0].backbone),
            (Method::Supervised, Backbone::Resnet8)
        );
        let xza = rows.iter().find(|r| r.method == Method::Xza).unwrap();
        assert_eq!(xza.runs, 2);
        let text = budget_markdown(&rows);
        assert!(
            text.contains(
                "| Supervised | ResNet-8 | 128 labelled images | 100 | 50 | all | fp32 | 1 |"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "| I(X,Z,A) | Conv-4 | 64 images x 4 views / 64 images x 32 views | 100 | 50 \
                 | all | fp32 | 2 |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| Random | Conv-4 | - (untrained) | 100 | - | - | fp32 | 1 |"),
            "{text}"
        );
    }

    #[test]
    fn report_names_data_folders_and_k() {
        let set = RunSet {
            root: "runs".into(),
            runs: vec![run("conv4", "xz", 0, Some(0.5), Some(0.25))],
            skipped: vec![],
        };
        let text = render_report(&set);
        assert!(
            text.contains(
                "Data folders: `data/cifar-10-batches-bin` / `data/cifar10` / `data/cifar100`"
            ),
            "{text}"
        );
        assert!(text.contains("## kNN test accuracy (%, k = 200)"), "{text}");
        assert!(
            text.contains("| I(X,Z) | 25.0 (n=1) | - | 12.5 (n=1) | - |"),
            "{text}"
        );
    }
}
