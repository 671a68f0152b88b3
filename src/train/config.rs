//! The pretraining configuration: every knob with its default, read from a TOML file,
//! overridden from the command line, validated before any work starts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::CifarKind;
use crate::device::DeviceChoice;
use crate::model::{BackboneKind, Precision};
use crate::objective::Estimator;
use crate::train::error::TrainError;
use crate::train::method::Method;

/// Everything that defines a pretraining run. Defaults follow the paper (SPEC.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    /// Encoder architecture (default `conv4`).
    pub backbone: BackboneKind,
    /// What is trained (default `xza`, the full method): `xz`, `xa`, `xza`, or the
    /// reference points `supervised` and `random`.
    pub objective: Method,
    /// Variational bound used for each term (default `nwj`).
    pub estimator: Estimator,
    /// Images per batch, `M` (default 64; at least 2).
    pub images: usize,
    /// Augmented views of each image, `V` (default 32; at least 2).
    pub views: usize,
    /// Passes over the training set (default 50).
    pub epochs: u64,
    /// Stop after this many steps in all, whatever `epochs` says (default: no limit).
    pub max_steps: Option<u64>,
    /// Adam learning rate (default 1e-3).
    pub learning_rate: f64,
    /// Gumbel-softmax temperature of the relation encoder (default 0.5).
    pub tau: f64,
    /// Hidden width of the relation encoder's MLPs (default 256).
    pub hidden: i64,
    /// Number of edge types `K` of the relation graph (default 2).
    pub edge_types: i64,
    /// Number format inside the relation encoder: `fp32` (default) or `bf16` (the
    /// matrix units; parameters, optimizer and losses stay fp32).
    pub precision: Precision,
    /// Seed of every random choice: weights, batch order, augmentation, Gumbel noise
    /// (default 0).
    pub seed: u64,
    /// Data set the encoder is trained on (default `cifar10`).
    pub dataset: CifarKind,
    /// Folder holding the data set's binary files (default `data/cifar-10-batches-bin`).
    pub data: PathBuf,
    /// Use only the first this-many training images (default: all).
    pub train_images: Option<usize>,
    /// Output folder of the run (default `runs/pretrain`).
    pub out: PathBuf,
    /// Where to compute: `cpu`, `cuda` or `auto` (default `auto`).
    pub device: DeviceChoice,
    /// CPU threads for libtorch and augmentation (default: all cores).
    pub threads: Option<usize>,
    /// Train a fresh linear classifier for one epoch on the training features every
    /// this-many steps and record its training accuracy (default 100, the paper's; 0:
    /// never).
    pub probe_every: u64,
    /// Training images the surrogate classifier sees (default 10,000).
    pub probe_images: usize,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        Self {
            backbone: BackboneKind::Conv4,
            objective: Method::Xza,
            estimator: Estimator::Nwj,
            images: 64,
            views: 32,
            epochs: 50,
            max_steps: None,
            learning_rate: 1e-3,
            tau: 0.5,
            hidden: 256,
            edge_types: 2,
            precision: Precision::Fp32,
            seed: 0,
            dataset: CifarKind::Cifar10,
            data: PathBuf::from("data/cifar-10-batches-bin"),
            train_images: None,
            out: PathBuf::from("runs/pretrain"),
            device: DeviceChoice::Auto,
            threads: None,
            probe_every: 100,
            probe_images: 10_000,
        }
    }
}

impl PretrainConfig {
    /// Reads a TOML file; fields it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, TrainError> {
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Parses TOML text; `origin` names it in error messages.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, TrainError> {
        toml::from_str(text).map_err(|source| TrainError::ConfigSyntax {
            path: origin.to_path_buf(),
            message: source.to_string(),
        })
    }

    /// The configuration as TOML text, as saved beside every checkpoint.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# not serializable: {e}\n"))
    }

    /// Rejects values the run cannot use, naming the field and what is allowed.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |field: &str, value: String, expected: &str| TrainError::InvalidConfig {
            field: field.to_string(),
            value,
            expected: expected.to_string(),
        };
        if self.images < 2 {
            return Err(bad(
                "images",
                self.images.to_string(),
                "an integer of at least 2",
            ));
        }
        if self.views < 2 {
            return Err(bad(
                "views",
                self.views.to_string(),
                "an integer of at least 2",
            ));
        }
        if self.epochs == 0 {
            return Err(bad("epochs", "0".into(), "an integer of at least 1"));
        }
        if self.max_steps == Some(0) {
            return Err(bad("max_steps", "0".into(), "an integer of at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(bad(
                "learning_rate",
                self.learning_rate.to_string(),
                "a finite number above 0",
            ));
        }
        if !(self.tau.is_finite() && self.tau > 0.0) {
            return Err(bad("tau", self.tau.to_string(), "a finite number above 0"));
        }
        if self.hidden < 1 {
            return Err(bad(
                "hidden",
                self.hidden.to_string(),
                "an integer of at least 1",
            ));
        }
        if self.edge_types < 1 {
            return Err(bad(
                "edge_types",
                self.edge_types.to_string(),
                "an integer of at least 1",
            ));
        }
        if let Some(n) = self.train_images {
            if n < self.images.max(2) {
                return Err(bad(
                    "train_images",
                    n.to_string(),
                    "at least `images` (one full batch)",
                ));
            }
        }
        if self.threads == Some(0) {
            return Err(bad("threads", "0".into(), "an integer of at least 1"));
        }
        if self.probe_every > 0 && self.probe_images < 10 {
            return Err(bad(
                "probe_images",
                self.probe_images.to_string(),
                "at least 10",
            ));
        }
        Ok(())
    }

    /// The fields that define what is trained; a resumed run must agree on all of them.
    /// Budget, place and speed knobs (epochs, max_steps, out, device, threads, probe
    /// settings) and the learning rate (to continue more gently after a blow-up) may
    /// change between a run and its resumption.
    pub fn identity(&self) -> Self {
        Self {
            learning_rate: 0.0,
            epochs: 0,
            max_steps: None,
            out: PathBuf::new(),
            device: DeviceChoice::Auto,
            threads: None,
            probe_every: 0,
            probe_images: 0,
            data: PathBuf::new(),
            ..self.clone()
        }
    }

    /// Names the first field in which two configurations differ in what they train.
    pub fn first_difference(&self, other: &Self) -> Option<String> {
        let (a, b) = (self.identity(), other.identity());
        if a == b {
            return None;
        }
        let (ta, tb) = (to_table(&a), to_table(&b));
        ta.iter()
            .find(|(k, v)| tb.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .or_else(|| tb.keys().find(|k| !ta.contains_key(*k)).cloned())
    }
}

fn to_table(config: &PretrainConfig) -> toml::Table {
    toml::Table::try_from(config).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_paper() {
        let c = PretrainConfig::default();
        assert_eq!((c.images, c.views, c.epochs), (64, 32, 50));
        assert_eq!(c.probe_every, 100);
        assert_eq!(c.learning_rate, 1e-3);
        assert_eq!(c.objective, Method::Xza);
        assert_eq!(c.estimator, Estimator::Nwj);
        c.validate().unwrap();
    }

    #[test]
    fn toml_overrides_only_named_fields() {
        let c = PretrainConfig::from_toml("views = 4\nbackbone = \"resnet8\"\n", Path::new("x"))
            .unwrap();
        assert_eq!(c.views, 4);
        assert_eq!(c.backbone, BackboneKind::ResNet8);
        assert_eq!(c.images, 64);
    }

    #[test]
    fn round_trip_through_toml() {
        let c = PretrainConfig {
            max_steps: Some(7),
            seed: 3,
            ..Default::default()
        };
        let back = PretrainConfig::from_toml(&c.to_toml(), Path::new("x")).unwrap();
        assert_eq!(c, back);
    }

    #[test]
    fn unknown_fields_and_names_are_rejected_with_the_field() {
        let err = PretrainConfig::from_toml("veiws = 4\n", Path::new("run.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("run.toml") && msg.contains("veiws"), "{msg}");
        let err =
            PretrainConfig::from_toml("objective = \"xyz\"\n", Path::new("run.toml")).unwrap_err();
        assert!(err.to_string().contains("xyz"), "{err}");
    }

    #[test]
    fn invalid_values_name_field_and_allowed_values() {
        let cases = [
            PretrainConfig {
                views: 1,
                ..Default::default()
            },
            PretrainConfig {
                images: 1,
                ..Default::default()
            },
            PretrainConfig {
                learning_rate: -1.0,
                ..Default::default()
            },
            PretrainConfig {
                tau: 0.0,
                ..Default::default()
            },
            PretrainConfig {
                max_steps: Some(0),
                ..Default::default()
            },
        ];
        let fields = ["views", "images", "learning_rate", "tau", "max_steps"];
        for (config, field) in cases.iter().zip(fields) {
            let msg = config.validate().unwrap_err().to_string();
            assert!(msg.contains(field), "{msg} should name {field}");
            assert!(msg.contains("expected"), "{msg}");
        }
    }

    #[test]
    fn precision_is_read_checked_and_part_of_the_run() {
        let c = PretrainConfig::from_toml("precision = \"bf16\"\n", Path::new("x")).unwrap();
        assert_eq!(c.precision, Precision::Bf16);
        assert_eq!(PretrainConfig::default().precision, Precision::Fp32);
        let err = PretrainConfig::from_toml("precision = \"fp16\"\n", Path::new("run.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("run.toml") && err.contains("fp16"), "{err}");
        assert!(err.contains("fp32") && err.contains("bf16"), "{err}");
        // A run resumed in another precision would not continue the same computation.
        assert_eq!(
            PretrainConfig::default().first_difference(&c).as_deref(),
            Some("precision")
        );
    }

    #[test]
    fn difference_names_training_fields_only() {
        let a = PretrainConfig::default();
        let b = PretrainConfig {
            epochs: 3,
            out: "elsewhere".into(),
            ..a.clone()
        };
        assert_eq!(a.first_difference(&b), None);
        let c = PretrainConfig {
            views: 4,
            ..a.clone()
        };
        assert_eq!(a.first_difference(&c).as_deref(), Some("views"));
    }
}
