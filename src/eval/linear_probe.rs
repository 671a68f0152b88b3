//! The linear probe of the paper's Table 1: a linear classifier trained with Adam on frozen
//! features, scored by top-1 accuracy on the test split.
//!
//! The features stay in one CPU tensor; each step gathers its batch with `index_select`
//! from a permutation drawn once per epoch, so an epoch over 50,000 features costs a few
//! hundred small matrix products and nothing per example. The 100 epochs of the paper over
//! 50,000 x 64 features take seconds.

use std::time::Instant;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::error::EvalError;
use super::inputs::{labelled, same_width, seeded_rng, Labelled};

/// How the linear probe is trained. Defaults follow the paper (SPEC.md, Evaluation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeSettings {
    /// Adam learning rate (default 1e-3).
    pub learning_rate: f64,
    /// Examples per step; the last batch of an epoch may be smaller (default 128).
    pub batch: usize,
    /// Passes over the training features (default 100).
    pub epochs: u64,
    /// Seed of the initial weights and of the order of the examples in each epoch
    /// (default 0).
    pub seed: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            batch: 128,
            epochs: 100,
            seed: 0,
        }
    }
}

impl ProbeSettings {
    /// Rejects settings the probe cannot use, naming the field.
    pub fn validate(&self) -> Result<(), EvalError> {
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(EvalError::InvalidSetting {
                field: "learning_rate",
                value: self.learning_rate.to_string(),
                expected: "a finite number above 0",
            });
        }
        if self.batch == 0 {
            return Err(EvalError::InvalidSetting {
                field: "batch",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        if self.epochs == 0 {
            return Err(EvalError::InvalidSetting {
                field: "epochs",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        Ok(())
    }
}

/// What a linear probe measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Top-1 accuracy on the training features after the last epoch, in [0, 1].
    pub train_accuracy: f64,
    /// Top-1 accuracy on the test features, in [0, 1].
    pub test_accuracy: f64,
    /// Mean cross-entropy over the last epoch's batches.
    pub final_loss: f64,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Wall-clock seconds of training and scoring.
    pub seconds: f64,
}

/// A linear classifier `[n, d] -> [n, classes]` on the CPU, trained by [`fit`](Self::fit).
///
/// The weights and biases are held together as one matrix `[d + 1, classes]` (the biases
/// in the last row, the features given a constant 1 column), so that a step is two matrix
/// products and Adam's update a handful of in-place operations. The gradient of the
/// cross-entropy is written out, `x^T (softmax(x W) - onehot(y)) / batch`, rather than
/// recorded by autograd: for a linear model it is exact and several times cheaper.
pub struct LinearClassifier {
    /// Weights `[d, classes]` over bias row `[1, classes]`: `[d + 1, classes]`.
    theta: Tensor,
    features: i64,
    classes: usize,
}

/// Adam's constants, as PyTorch's defaults.
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl LinearClassifier {
    /// A classifier over `features` inputs, initialised as PyTorch initialises `Linear`
    /// (weights and biases uniform in `±1/sqrt(features)`), from `seed` alone.
    pub fn new(features: i64, classes: usize, seed: u64) -> Self {
        let features = features.max(1);
        let bound = 1.0 / (features as f64).sqrt();
        let mut rng = seeded_rng(seed, 0);
        let mut uniform = |count: usize| -> Vec<f32> {
            (0..count)
                .map(|_| rng.gen_range(-bound..bound) as f32)
                .collect()
        };
        let weight = Tensor::from_slice(&uniform(classes * features as usize))
            .view([classes as i64, features]);
        let bias = Tensor::from_slice(&uniform(classes));
        Self::from_parts(&weight, &bias)
    }

    /// A classifier with the given weights `[classes, d]` and biases `[classes]`.
    ///
    /// # Panics
    /// If the shapes do not match.
    pub fn from_parts(weight: &Tensor, bias: &Tensor) -> Self {
        let (classes, features) = weight.size2().expect("weights [classes, d]");
        assert_eq!(bias.size(), [classes], "biases [classes]");
        let theta = Tensor::cat(&[weight.tr(), bias.view([1, classes])], 0)
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
        Self {
            theta,
            features,
            classes: classes as usize,
        }
    }

    /// The weights `[classes, d]` (a copy).
    pub fn weight(&self) -> Tensor {
        self.theta.narrow(0, 0, self.features).tr().contiguous()
    }

    /// The biases `[classes]` (a copy).
    pub fn bias(&self) -> Tensor {
        self.theta.get(self.features).copy()
    }

    /// Scores `[n, d] -> [n, classes]`.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        x.mm(&self.theta.narrow(0, 0, self.features)) + self.theta.get(self.features)
    }

    /// Trains on `x` `[n, d]` and labels `y` `[n]` with Adam (PyTorch's update, no weight
    /// decay) on the mean cross-entropy of each batch, for `settings.epochs` epochs; the
    /// last batch of an epoch may be smaller. Returns the mean loss over the last epoch's
    /// batches and the steps taken. The order of the examples in epoch `e` is drawn from
    /// `settings.seed` and `e`.
    pub fn fit(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        settings: &ProbeSettings,
    ) -> Result<(f64, u64), EvalError> {
        settings.validate()?;
        let Labelled { x, y } = labelled("train features", x, "train labels", y, self.classes)?;
        self.check_width(&x)?;

        let _single = SingleThread::enter();
        tch::no_grad(|| {
            let n = x.size()[0];
            let opts = (Kind::Float, Device::Cpu);
            let inputs = Tensor::cat(&[x, Tensor::ones([n, 1], opts)], 1);
            let targets = Tensor::zeros([n, self.classes as i64], opts).scatter_value(
                1,
                &y.unsqueeze(1),
                1.0,
            );
            let batch = settings.batch.min(n as usize) as i64;
            let mut first = self.theta.zeros_like();
            let mut second = self.theta.zeros_like();
            let mut order: Vec<i64> = (0..n).collect();
            let mut steps = 0u64;
            let mut epoch_loss = 0.0;

            for epoch in 0..settings.epochs {
                order.shuffle(&mut seeded_rng(settings.seed, 1 + epoch));
                let permutation = Tensor::from_slice(&order);
                let last_epoch = epoch + 1 == settings.epochs;
                let mut loss_sum = Tensor::zeros([], opts);
                let mut batches = 0;
                let mut start = 0;
                while start < n {
                    let size = batch.min(n - start);
                    let picked = permutation.narrow(0, start, size);
                    let xb = inputs.index_select(0, &picked);
                    let tb = targets.index_select(0, &picked);
                    let logits = xb.mm(&self.theta);
                    if last_epoch {
                        let log_p = logits.log_softmax(1, Kind::Float);
                        loss_sum -= (log_p * &tb).sum(Kind::Float) / size as f64;
                    }

                    let mut error = logits.softmax(1, Kind::Float);
                    let _ = error.g_sub_(&tb);
                    let mut gradient = xb.tr().mm(&error);
                    let _ = gradient.g_mul_scalar_(1.0 / size as f64);

                    steps += 1;
                    let t = steps as i32;
                    let step_size = settings.learning_rate / (1.0 - BETA1.powi(t));
                    let _ = first.lerp_(&gradient, 1.0 - BETA1);
                    let _ = second.lerp_(&gradient.square(), 1.0 - BETA2);
                    let mut denom = second.sqrt();
                    let _ = denom
                        .g_div_scalar_((1.0 - BETA2.powi(t)).sqrt())
                        .g_add_scalar_(EPS);
                    let _ = self.theta.addcdiv_(&(&first * -step_size), &denom);

                    batches += 1;
                    start += size;
                }
                let finite = self.theta.isfinite().all().int64_value(&[]) == 1;
                if last_epoch {
                    epoch_loss = loss_sum.double_value(&[]) / batches as f64;
                }
                if !finite || !epoch_loss.is_finite() {
                    let loss = if finite { epoch_loss } else { f64::NAN };
                    return Err(EvalError::NonFiniteLoss {
                        what: "linear probe",
                        step: steps,
                        loss,
                    });
                }
            }
            Ok((epoch_loss, steps))
        })
    }

    /// Fraction of the rows of `x` `[n, d]` whose highest score is their label in `y`
    /// `[n]`, in [0, 1].
    pub fn accuracy(&self, x: &Tensor, y: &Tensor) -> Result<f64, EvalError> {
        let Labelled { x, y } = labelled("features", x, "labels", y, self.classes)?;
        self.check_width(&x)?;
        let n = x.size()[0];
        let correct = tch::no_grad(|| {
            let mut correct = 0i64;
            for start in (0..n).step_by(SCORE_CHUNK as usize) {
                let size = SCORE_CHUNK.min(n - start);
                let predicted = self.logits(&x.narrow(0, start, size)).argmax(1, false);
                let hits = predicted.eq_tensor(&y.narrow(0, start, size));
                correct += hits.sum(Kind::Int64).int64_value(&[]);
            }
            correct
        });
        Ok(correct as f64 / n as f64)
    }

    fn check_width(&self, x: &Tensor) -> Result<(), EvalError> {
        let found = x.size()[1];
        if self.features != found {
            return Err(EvalError::WidthMismatch {
                train: self.features,
                test: found,
            });
        }
        Ok(())
    }
}

/// Runs libtorch on one thread while it lives, then restores the previous count.
///
/// A probe step is a dozen operations on matrices of a few thousand numbers; spreading
/// each over several threads costs more in hand-offs than it saves (measured: one thread
/// was 16 times faster than two on a busy two-core machine).
struct SingleThread {
    before: i32,
}

impl SingleThread {
    fn enter() -> Self {
        let before = tch::get_num_threads();
        tch::set_num_threads(1);
        Self { before }
    }
}

impl Drop for SingleThread {
    fn drop(&mut self) {
        tch::set_num_threads(self.before);
    }
}

/// Rows scored at once when measuring accuracy.
const SCORE_CHUNK: i64 = 8192;

/// Trains `Linear(d, classes)` on `train_x` `[n, d]` / `train_y` `[n]` and scores it on
/// `test_x` `[m, d]` / `test_y` `[m]`. Labels must lie in `0..classes`; features may be
/// on any device and are copied to the CPU.
pub fn linear_probe(
    train_x: &Tensor,
    train_y: &Tensor,
    test_x: &Tensor,
    test_y: &Tensor,
    classes: usize,
    settings: &ProbeSettings,
) -> Result<ProbeResult, EvalError> {
    let started = Instant::now();
    settings.validate()?;
    let train = labelled("train features", train_x, "train labels", train_y, classes)?;
    let test = labelled("test features", test_x, "test labels", test_y, classes)?;
    same_width(&train, &test)?;

    let mut classifier = LinearClassifier::new(train.x.size()[1], classes, settings.seed);
    let (final_loss, steps) = classifier.fit(&train.x, &train.y, settings)?;
    let train_accuracy = classifier.accuracy(&train.x, &train.y)?;
    let test_accuracy = classifier.accuracy(&test.x, &test.y)?;
    Ok(ProbeResult {
        train_accuracy,
        test_accuracy,
        final_loss,
        steps,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` points around `classes` well-separated centres: features `[n, 64]`, labels `[n]`.
    fn clusters(n: i64, classes: i64, seed: i64) -> (Tensor, Tensor) {
        tch::manual_seed(seed);
        let centres = Tensor::randn([classes, 64], (Kind::Float, Device::Cpu)) * 3.0;
        let y = Tensor::randint(classes, [n], (Kind::Int64, Device::Cpu));
        let x =
            centres.index_select(0, &y) + Tensor::randn([n, 64], (Kind::Float, Device::Cpu)) * 0.5;
        (x, y)
    }

    fn settings(epochs: u64) -> ProbeSettings {
        ProbeSettings {
            epochs,
            ..ProbeSettings::default()
        }
    }

    #[test]
    fn defaults_are_the_papers() {
        let s = ProbeSettings::default();
        assert_eq!(
            (s.learning_rate, s.batch, s.epochs, s.seed),
            (1e-3, 128, 100, 0)
        );
        let parsed: ProbeSettings = serde_json::from_str(r#"{"epochs": 3}"#).unwrap();
        assert_eq!(parsed, settings(3));
    }

    #[test]
    fn separable_clusters_are_learnt_almost_perfectly() {
        tch::manual_seed(0);
        let (x, y) = clusters(1200, 10, 1);
        let (train_x, test_x) = (x.narrow(0, 0, 1000), x.narrow(0, 1000, 200));
        let (train_y, test_y) = (y.narrow(0, 0, 1000), y.narrow(0, 1000, 200));
        let r = linear_probe(&train_x, &train_y, &test_x, &test_y, 10, &settings(10)).unwrap();
        assert!(r.train_accuracy > 0.99, "{r:?}");
        assert!(r.test_accuracy > 0.99, "{r:?}");
        assert_eq!(
            r.steps,
            10 * 8,
            "8 batches of at most 128 over 1000 examples"
        );
        assert!(r.final_loss < 0.2, "{r:?}");
    }

    #[test]
    fn random_labels_stay_near_chance_on_the_test_split() {
        tch::manual_seed(2);
        let opts = (Kind::Float, Device::Cpu);
        let train_x = Tensor::randn([2000, 64], opts);
        let train_y = Tensor::randint(10, [2000], (Kind::Int64, Device::Cpu));
        let test_x = Tensor::randn([2000, 64], opts);
        let test_y = Tensor::randint(10, [2000], (Kind::Int64, Device::Cpu));
        let r = linear_probe(&train_x, &train_y, &test_x, &test_y, 10, &settings(5)).unwrap();
        assert!((0.05..0.15).contains(&r.test_accuracy), "{r:?}");
    }

    #[test]
    fn the_first_step_moves_every_weight_by_the_learning_rate_against_its_gradient() {
        // Adam's first update is -lr * g / (|g| + eps): a step of lr against the sign.
        let x = Tensor::from_slice(&[1.0f32, 2.0, -1.0, 0.5]).view([2, 2]);
        let y = Tensor::from_slice(&[0i64, 1]);
        let mut c = LinearClassifier::new(2, 2, 7);
        let (w0, b0) = (c.weight(), c.bias());

        let logits = x.linear(&w0, Some(&b0));
        let p = logits.softmax(1, Kind::Float);
        let onehot = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let grad_logits = (&p - &onehot) / 2.0;
        let grad_w = grad_logits.tr().matmul(&x);
        let grad_b = grad_logits.sum_dim_intlist([0i64].as_slice(), false, Kind::Float);

        let s = ProbeSettings {
            learning_rate: 0.1,
            batch: 2,
            epochs: 1,
            seed: 0,
        };
        let (_, steps) = c.fit(&x, &y, &s).unwrap();
        assert_eq!(steps, 1);
        let want_w = &w0 - grad_w.sign() * 0.1;
        let want_b = &b0 - grad_b.sign() * 0.1;
        assert!(
            c.weight().allclose(&want_w, 1e-5, 1e-6, false),
            "{}",
            c.weight()
        );
        assert!(
            c.bias().allclose(&want_b, 1e-5, 1e-6, false),
            "{}",
            c.bias()
        );
    }

    #[test]
    fn accuracy_counts_the_rows_whose_best_score_is_the_label() {
        let weight = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let bias = Tensor::zeros([2], (Kind::Float, Device::Cpu));
        let c = LinearClassifier::from_parts(&weight, &bias);
        // Predictions: 0, 1, 1, 0; labels 0, 1, 0, 0: three right.
        let x = Tensor::from_slice(&[2.0f32, 1.0, 0.0, 3.0, -1.0, 1.0, 5.0, 4.0]).view([4, 2]);
        let y = Tensor::from_slice(&[0i64, 1, 0, 0]);
        assert_eq!(c.accuracy(&x, &y).unwrap(), 0.75);
        assert_eq!(c.logits(&x).size(), [4, 2]);
    }

    #[test]
    fn the_same_seed_gives_the_same_probe() {
        let (x, y) = clusters(300, 3, 4);
        let s = ProbeSettings {
            epochs: 2,
            seed: 11,
            ..ProbeSettings::default()
        };
        let mut a = LinearClassifier::new(64, 3, 11);
        let mut b = LinearClassifier::new(64, 3, 11);
        a.fit(&x, &y, &s).unwrap();
        b.fit(&x, &y, &s).unwrap();
        assert!(a.weight().equal(&b.weight()));
        let c = LinearClassifier::new(64, 3, 12);
        assert!(!a.weight().equal(&c.weight()));
    }

    #[test]
    fn bad_inputs_are_named() {
        let x = Tensor::zeros([4, 3], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 1]);
        let err = |r: Result<ProbeResult, EvalError>| r.unwrap_err().to_string();

        let e = err(linear_probe(
            &x,
            &y.narrow(0, 0, 3),
            &x,
            &y,
            3,
            &settings(1),
        ));
        assert!(e.contains("train labels") && e.contains("4 labels"), "{e}");
        let e = err(linear_probe(&x, &y, &x, &y, 2, &settings(1)));
        assert!(e.contains("label 2") && e.contains("0..2"), "{e}");
        let wide = Tensor::zeros([4, 5], (Kind::Float, Device::Cpu));
        let e = err(linear_probe(&x, &y, &wide, &y, 3, &settings(1)));
        assert!(e.contains("3 columns") && e.contains("5"), "{e}");
        let e = err(linear_probe(&x.view([12]), &y, &x, &y, 3, &settings(1)));
        assert!(e.contains("train features") && e.contains("[12]"), "{e}");
        let bad = ProbeSettings {
            batch: 0,
            ..ProbeSettings::default()
        };
        let e = err(linear_probe(&x, &y, &x, &y, 3, &bad));
        assert!(e.contains("`batch`"), "{e}");
    }

    /// The full-size workload: 50,000 x 64 features, 100 epochs, 10 and 100 classes.
    #[test]
    #[ignore = "timing of the full-size probe (about 39,000 steps); run with --ignored"]
    fn full_size_probe_is_fast() {
        tch::manual_seed(0);
        let opts = (Kind::Float, Device::Cpu);
        let train_x = Tensor::randn([50_000, 64], opts);
        let test_x = Tensor::randn([10_000, 64], opts);
        for classes in [10, 100] {
            let train_y = Tensor::randint(classes, [50_000], (Kind::Int64, Device::Cpu));
            let test_y = Tensor::randint(classes, [10_000], (Kind::Int64, Device::Cpu));
            let r = linear_probe(
                &train_x,
                &train_y,
                &test_x,
                &test_y,
                classes as usize,
                &settings(100),
            )
            .unwrap();
            eprintln!(
                "full-size probe, {classes} classes: {:.1} s, {} steps",
                r.seconds, r.steps
            );
            assert!(r.seconds < 60.0, "{r:?}");
        }
    }
}
