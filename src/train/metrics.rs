//! The per-step metrics file: CSV with a header, one row per step, that a spreadsheet or
//! pandas opens directly. Empty cells mark terms a run does not use.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::train::error::TrainError;

/// The columns, in order.
pub const COLUMNS: [&str; 10] = [
    "step",
    "epoch",
    "loss",
    "loss_xz",
    "loss_xa",
    "bound_xz",
    "bound_xa",
    "seconds",
    "images_per_s",
    "surrogate_accuracy",
];

/// One step's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepRecord {
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
    pub seconds: f64,
    /// Images (not views) per second of the step.
    pub images_per_s: f64,
    /// Training accuracy of the surrogate linear classifier, when measured at this step.
    pub surrogate_accuracy: Option<f64>,
}

impl StepRecord {
    fn to_row(&self) -> String {
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
        format!(
            "{},{},{:.6},{},{},{},{},{:.4},{:.1},{}",
            self.step,
            self.epoch,
            self.loss,
            opt(self.loss_xz),
            opt(self.loss_xa),
            opt(self.bound_xz),
            opt(self.bound_xa),
            self.seconds,
            self.images_per_s,
            opt(self.surrogate_accuracy),
        )
    }
}

/// Appends rows to a run's `metrics.csv`.
pub struct MetricsWriter {
    path: PathBuf,
    file: File,
}

impl MetricsWriter {
    /// Opens `path` for a run that has completed `resume_step` steps: a fresh file with a
    /// header when 0, else the existing file cut back to the rows up to that step (rows of
    /// steps after the last checkpoint are recomputed by the resumed run).
    pub fn open(path: &Path, resume_step: u64) -> Result<Self, TrainError> {
        let io = |source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut kept = vec![COLUMNS.join(",")];
        if resume_step > 0 && path.exists() {
            let reader = BufReader::new(File::open(path).map_err(io)?);
            for line in reader.lines().skip(1) {
                let line = line.map_err(io)?;
                let step = line.split(',').next().and_then(|s| s.parse::<u64>().ok());
                if matches!(step, Some(s) if s <= resume_step) {
                    kept.push(line);
                }
            }
        }
        let mut text = kept.join("\n");
        text.push('\n');
        crate::train::checkpoint::write_atomically(path, &text)?;
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one row and flushes it.
    pub fn write(&mut self, record: &StepRecord) -> Result<(), TrainError> {
        writeln!(self.file, "{}", record.to_row())
            .and_then(|_| self.file.flush())
            .map_err(|source| TrainError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_keeps_rows_up_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let mut w = MetricsWriter::open(&path, 0).unwrap();
        for step in 1..=5 {
            let r = StepRecord {
                step,
                epoch: 1,
                loss: -0.5,
                loss_xz: Some(1.0),
                ..Default::default()
            };
            w.write(&r).unwrap();
        }
        drop(w);
        let mut w = MetricsWriter::open(&path, 3).unwrap();
        w.write(&StepRecord {
            step: 4,
            epoch: 1,
            ..Default::default()
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], COLUMNS.join(","));
        assert_eq!(lines.len(), 5, "{text}");
        let steps: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(steps, ["1", "2", "3", "4"]);
        assert_eq!(lines[1].split(',').count(), COLUMNS.len());
        assert!(lines[1].contains(",-0.500000,1.000000,,"), "{}", lines[1]);
    }
}
