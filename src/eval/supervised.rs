//! The supervised reference of the paper's Table 1: the encoder and a linear head trained
//! together on the labels, with SGD and a step schedule, on padded-crop-and-flip images.

use std::time::Instant;

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, nn::VarStore, Device, Tensor};

use super::error::EvalError;
use super::inputs::seeded_rng;
use super::pad_crop::{augment_batch, PADDING};
use crate::data::Dataset;
use crate::model::{Backbone, FEATURES};
use crate::optim::Sgd;

/// Name of the head's sub-path under the root of the `VarStore` that holds the encoder.
pub const HEAD_PATH: &str = "supervised_head";

/// How the supervised reference is trained. Defaults follow SPEC.md (Evaluation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisedSettings {
    /// Initial SGD learning rate, divided by 10 after 50% and again after 75% of the steps
    /// (default 0.1).
    pub learning_rate: f64,
    /// SGD momentum (default 0.9).
    pub momentum: f64,
    /// L2 weight decay added to the gradients; the specification names none (default 0).
    pub weight_decay: f64,
    /// Images per step (default 128). A last batch of a single image is skipped, since
    /// BatchNorm cannot take batch statistics from one example.
    pub batch: usize,
    /// Passes over the training images (default 50, the pretraining budget of the paper).
    pub epochs: u64,
    /// Stop after this many steps whatever `epochs` says; the schedule then spans these
    /// steps (default: no limit).
    pub max_steps: Option<u64>,
    /// Zero padding in pixels before the random 32x32 crop (default 4).
    pub padding: usize,
    /// Seed of the batch order and of the crops and flips (default 0). The initial weights
    /// are the caller's.
    pub seed: u64,
}

impl Default for SupervisedSettings {
    fn default() -> Self {
        Self {
            learning_rate: 0.1,
            momentum: 0.9,
            weight_decay: 0.0,
            batch: 128,
            epochs: 50,
            max_steps: None,
            padding: PADDING,
            seed: 0,
        }
    }
}

impl SupervisedSettings {
    /// Rejects settings that cannot be used, naming the field.
    pub fn validate(&self) -> Result<(), EvalError> {
        let bad = |field, value: String, expected| {
            Err(EvalError::InvalidSetting {
                field,
                value,
                expected,
            })
        };
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "learning_rate",
                self.learning_rate.to_string(),
                "a finite number above 0",
            );
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum", self.momentum.to_string(), "a number in [0, 1)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                self.weight_decay.to_string(),
                "a finite number >= 0",
            );
        }
        if self.batch < 2 {
            return bad(
                "batch",
                self.batch.to_string(),
                "at least 2 (BatchNorm needs two)",
            );
        }
        if self.epochs == 0 {
            return bad("epochs", "0".into(), "at least 1");
        }
        if self.max_steps == Some(0) {
            return bad("max_steps", "0".into(), "at least 1, or no limit");
        }
        if self.padding > 32 {
            return bad("padding", self.padding.to_string(), "at most 32 pixels");
        }
        Ok(())
    }

    /// The learning rate of step `step` (0-based) of `total`: the initial rate until half
    /// of the steps, a tenth of it until three quarters, a hundredth after.
    pub fn learning_rate_at(&self, step: u64, total: u64) -> f64 {
        let passed = [total / 2, total * 3 / 4]
            .iter()
            .filter(|&&m| step >= m)
            .count();
        self.learning_rate * 0.1f64.powi(passed as i32)
    }
}

/// One step as reported to the caller's callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupervisedStep {
    /// Steps completed (1-based).
    pub step: u64,
    /// Steps the run will take in all.
    pub total_steps: u64,
    /// Epoch of this step (0-based).
    pub epoch: u64,
    /// Cross-entropy of the batch.
    pub loss: f64,
    /// Fraction of the batch classified right, before the update.
    pub accuracy: f64,
    /// Learning rate used by this step.
    pub learning_rate: f64,
}

/// What a supervised run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisedSummary {
    /// Steps taken.
    pub steps: u64,
    /// Epochs covered, counting a partial epoch as a fraction.
    pub epochs: f64,
    /// Mean loss over the first ten steps (or all, if fewer).
    pub first_loss: f64,
    /// Mean loss over the last ten steps.
    pub last_loss: f64,
    /// Mean batch accuracy over the first ten steps.
    pub first_accuracy: f64,
    /// Mean batch accuracy over the last ten steps.
    pub last_accuracy: f64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// The linear head `Linear(64, classes)`, with its variables under `root / HEAD_PATH`.
pub fn supervised_head(root: &nn::Path, classes: usize) -> nn::Linear {
    nn::linear(
        root / HEAD_PATH,
        FEATURES,
        classes as i64,
        Default::default(),
    )
}

/// Trains `encoder` and `head` (both with variables in `vs`, on `device`) with labels:
/// cross-entropy on padded-crop-and-flip images `[batch, 3, 32, 32] -> [batch, 64] ->
/// [batch, classes]`, BatchNorm in training mode, SGD over every trainable variable of `vs`
/// that receives a gradient. `on_step` sees every step. Stops with an error if a loss is
/// NaN or infinite.
pub fn train_supervised(
    vs: &VarStore,
    encoder: &Backbone,
    head: &nn::Linear,
    dataset: &Dataset,
    settings: &SupervisedSettings,
    device: Device,
    on_step: &mut dyn FnMut(&SupervisedStep),
) -> Result<SupervisedSummary, EvalError> {
    let started = Instant::now();
    settings.validate()?;
    let n = dataset.len();
    if n < 2 {
        return Err(EvalError::Empty {
            name: "training images (at least two are needed)",
        });
    }
    let classes = head.ws.size()[0];
    if let Some(&label) = dataset.labels.iter().find(|&&l| i64::from(l) >= classes) {
        return Err(EvalError::LabelOutOfRange {
            name: "training labels",
            label: i64::from(label),
            classes: classes as usize,
        });
    }

    let batch = settings.batch.min(n);
    let full = (n / batch) as u64;
    let per_epoch = full + u64::from(n % batch >= 2);
    let planned = per_epoch * settings.epochs;
    let total = settings.max_steps.map_or(planned, |m| m.min(planned));
    let mut sgd = Sgd::new(
        vs,
        settings.learning_rate,
        settings.momentum,
        settings.weight_decay,
    );
    let mut history: Vec<(f64, f64)> = Vec::with_capacity(total as usize);

    let mut order: Vec<usize> = (0..n).collect();
    let mut step = 0u64;
    'epochs: for epoch in 0..settings.epochs {
        order.shuffle(&mut seeded_rng(settings.seed, 2 * epoch));
        for chunk in order.chunks(batch) {
            if step == total {
                break 'epochs;
            }
            if chunk.len() < 2 {
                continue;
            }
            let pixels = augment_batch(dataset, chunk, settings.padding, view_seed(settings, step));
            let images = Tensor::from_slice(&pixels)
                .view([chunk.len() as i64, 3, 32, 32])
                .to_device(device);
            let labels: Vec<i64> = chunk
                .iter()
                .map(|&i| i64::from(dataset.labels[i]))
                .collect();
            let labels = Tensor::from_slice(&labels).to_device(device);

            let learning_rate = settings.learning_rate_at(step, total);
            sgd.learning_rate = learning_rate;
            let logits = head.forward(&encoder.forward_t(&images, true));
            let loss = logits.cross_entropy_for_logits(&labels);
            sgd.zero_grad();
            loss.backward();
            sgd.step();

            step += 1;
            let loss = loss.double_value(&[]);
            if !loss.is_finite() {
                return Err(EvalError::NonFiniteLoss {
                    what: "supervised reference",
                    step,
                    loss,
                });
            }
            let accuracy = logits
                .detach()
                .accuracy_for_logits(&labels)
                .double_value(&[]);
            history.push((loss, accuracy));
            on_step(&SupervisedStep {
                step,
                total_steps: total,
                epoch,
                loss,
                accuracy,
                learning_rate,
            });
        }
    }

    let mean = |rows: &[(f64, f64)], pick: fn(&(f64, f64)) -> f64| {
        rows.iter().map(pick).sum::<f64>() / rows.len().max(1) as f64
    };
    let first = &history[..history.len().min(10)];
    let last = &history[history.len().saturating_sub(10)..];
    Ok(SupervisedSummary {
        steps: step,
        epochs: step as f64 / per_epoch.max(1) as f64,
        first_loss: mean(first, |r| r.0),
        last_loss: mean(last, |r| r.0),
        first_accuracy: mean(first, |r| r.1),
        last_accuracy: mean(last, |r| r.1),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The seed of step `step`'s crops and flips: odd streams, apart from the batch orders'.
fn view_seed(settings: &SupervisedSettings, step: u64) -> u64 {
    use rand::RngCore;
    seeded_rng(settings.seed, 2 * step + 1).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::CifarKind;
    use crate::model::BackboneKind;

    /// `n` images, each one flat colour chosen by its label (10 distinct colours).
    fn flat_colours(n: usize) -> Dataset {
        let mut images = Vec::with_capacity(n * 3072);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let label = (i * 7 % 10) as u16;
            let c = label as u8;
            let rgb = [c * 25, 250 - c * 25, (c % 3) * 120];
            for value in rgb {
                images.extend(std::iter::repeat_n(value, 1024));
            }
            labels.push(label);
        }
        let class_names = (0..10).map(|i| format!("colour{i}")).collect();
        Dataset {
            kind: CifarKind::Cifar10,
            images,
            labels,
            class_names,
        }
    }

    #[test]
    fn defaults_follow_the_specification_and_the_schedule_steps_down_twice() {
        let s = SupervisedSettings::default();
        assert_eq!(
            (s.learning_rate, s.momentum, s.batch, s.padding),
            (0.1, 0.9, 128, 4)
        );
        let rates: Vec<f64> = [0, 49, 50, 74, 75, 99]
            .iter()
            .map(|&t| s.learning_rate_at(t, 100))
            .collect();
        let want = [0.1, 0.1, 0.01, 0.01, 0.001, 0.001];
        for (got, want) in rates.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{rates:?}");
        }
        let bad = SupervisedSettings { momentum: 1.5, ..s };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`momentum`"));
    }

    #[test]
    fn flat_colours_are_learnt_in_a_few_steps() {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let encoder = Backbone::new(BackboneKind::Conv4, &(vs.root() / "encoder"));
        let head = supervised_head(&vs.root(), 10);
        assert!(vs.variables().contains_key("supervised_head.weight"));

        let data = flat_colours(200);
        let settings = SupervisedSettings {
            learning_rate: 0.05,
            batch: 50,
            epochs: 100,
            max_steps: Some(40),
            ..SupervisedSettings::default()
        };
        let mut seen = Vec::new();
        let summary = train_supervised(
            &vs,
            &encoder,
            &head,
            &data,
            &settings,
            Device::Cpu,
            &mut |s| seen.push(*s),
        )
        .unwrap();
        assert_eq!(summary.steps, 40);
        assert_eq!(seen.len(), 40);
        assert_eq!(seen[0].step, 1);
        assert_eq!(seen[39].total_steps, 40);
        assert_eq!(seen[4].epoch, 1, "four steps of 50 make an epoch of 200");
        assert!((seen[25].learning_rate - 0.005).abs() < 1e-12);
        assert!((summary.epochs - 10.0).abs() < 1e-9);
        assert!(summary.last_accuracy > 0.6, "{summary:?}");
        assert!(summary.last_loss < summary.first_loss, "{summary:?}");
    }

    #[test]
    fn labels_beyond_the_head_are_refused() {
        let vs = VarStore::new(Device::Cpu);
        let encoder = Backbone::new(BackboneKind::Conv4, &(vs.root() / "encoder"));
        let head = supervised_head(&vs.root(), 5);
        let err = train_supervised(
            &vs,
            &encoder,
            &head,
            &flat_colours(20),
            &SupervisedSettings::default(),
            Device::Cpu,
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("training labels") && err.contains("0..5"),
            "{err}"
        );
    }
}
