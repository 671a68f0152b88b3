//! Variational lower bounds on mutual information from critic scores of positive
//! (joint) and negative (product-of-marginals) pairs.
//!
//! - **NWJ** (Nguyen-Wainwright-Jordan): `I >= mean_pos T - mean_neg exp(T - 1)`. The
//!   exponential mean is evaluated as `exp(logsumexp(T) - log n - 1)`, which cannot
//!   overflow on the way. Its exponent `x` is used as is up to [`NWJ_EXPONENT_CAP`] (20:
//!   a negative mean of `e^20`, a bound of about `-5e8` nats, lies far outside any useful
//!   range) and continued linearly above it, `e^20 (1 + x - 20)`: the value is unchanged
//!   below the cap, and above it the loss grows only linearly in the scores, so that it
//!   and its gradient stay finite (in f32, for scores up to about `1e29`).
//! - **BCE**: binary cross-entropy with logits, positives labelled 1 and negatives 0,
//!   averaged over both kinds; `focal` weights each term by `(1 - p_t)^2`, `p_t` the
//!   probability given to the true label. Its optimal logit is the log density ratio
//!   `log p(x, y) / p(x) p(y)`, so the reported value is the NWJ bound of `T + 1`, a
//!   valid lower bound in nats for any `T`, tight at that optimum.
//! - **InfoNCE**: each positive is contrasted with the negatives that share its anchor
//!   row; the bound is `mean_pos [T_pos - log((e^T_pos + sum e^T_neg) / (1 + n_neg))]`,
//!   computed with per-anchor log-sum-exps. It can never exceed the mean of
//!   `log(1 + n_neg)` over the positives (at most `log V` for `V` views).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Above this exponent, the NWJ negative term grows linearly instead of exponentially.
pub const NWJ_EXPONENT_CAP: f64 = 20.0;

/// A name that is not one of the estimators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown estimator `{0}`: expected one of nwj, bce, bce-focal, infonce")]
pub struct UnknownEstimator(pub String);

/// Which bound to train with; written `nwj`, `bce`, `bce-focal` or `infonce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Estimator {
    /// The Nguyen-Wainwright-Jordan bound, the method's estimator (the default).
    #[default]
    Nwj,
    /// Binary cross-entropy of positives against negatives, optionally focal.
    Bce {
        /// Weight each term by `(1 - p_t)^2`.
        focal: bool,
    },
    /// The contrastive InfoNCE bound, each positive against its anchor's negatives.
    InfoNce,
}

/// A bound evaluated on one batch of pairs.
#[derive(Debug)]
pub struct Bound {
    /// The loss to minimise: scalar, differentiable.
    pub loss: Tensor,
    /// The mutual-information bound in nats: scalar, detached.
    pub value: Tensor,
}

impl Estimator {
    /// Every estimator, in the order the error messages list them.
    pub const ALL: [Estimator; 4] = [
        Self::Nwj,
        Self::Bce { focal: false },
        Self::Bce { focal: true },
        Self::InfoNce,
    ];

    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nwj => "nwj",
            Self::Bce { focal: false } => "bce",
            Self::Bce { focal: true } => "bce-focal",
            Self::InfoNce => "infonce",
        }
    }

    /// The bound on scores `t_pos` `[P]` of positive pairs and `t_neg` `[P]` of negative
    /// pairs, pair `p` of both kinds sharing the anchor row `anchor[p]` (i64 `[P]`, used
    /// by InfoNCE alone). `P` must be positive.
    pub fn evaluate(&self, t_pos: &Tensor, t_neg: &Tensor, anchor: &Tensor) -> Bound {
        match *self {
            Self::Nwj => {
                let bound = nwj_bound(t_pos, t_neg);
                Bound {
                    value: bound.detach(),
                    loss: -bound,
                }
            }
            Self::Bce { focal } => {
                let loss = binary_cross_entropy(t_pos, t_neg, focal);
                let value = nwj_bound(&(t_pos.detach() + 1.0), &(t_neg.detach() + 1.0));
                Bound { loss, value }
            }
            Self::InfoNce => {
                let bound = info_nce_bound(t_pos, t_neg, anchor);
                Bound {
                    value: bound.detach(),
                    loss: -bound,
                }
            }
        }
    }
}

/// `mean(t_pos) - mean(exp(t_neg - 1))`, the exponential mean taken stably and continued
/// linearly above [`NWJ_EXPONENT_CAP`]: scalar.
fn nwj_bound(t_pos: &Tensor, t_neg: &Tensor) -> Tensor {
    let count = t_neg.size()[0] as f64;
    let exponent = t_neg.logsumexp(0, false) - (count.ln() + 1.0);
    let capped = exponent.clamp_max(NWJ_EXPONENT_CAP).exp();
    let negative_mean = capped * ((&exponent - NWJ_EXPONENT_CAP).relu() + 1.0);
    t_pos.mean(t_pos.kind()) - negative_mean
}

/// Mean binary cross-entropy with logits, positives labelled 1 and negatives 0: scalar.
fn binary_cross_entropy(t_pos: &Tensor, t_neg: &Tensor, focal: bool) -> Tensor {
    // -log sigmoid(t) for label 1 and -log(1 - sigmoid(t)) for label 0.
    let mut pos_terms = t_pos.neg().softplus();
    let mut neg_terms = t_neg.softplus();
    if focal {
        // 1 - p_t is sigmoid(-t) for a positive and sigmoid(t) for a negative.
        pos_terms = pos_terms * t_pos.neg().sigmoid().square();
        neg_terms = neg_terms * t_neg.sigmoid().square();
    }
    let count = (t_pos.size()[0] + t_neg.size()[0]) as f64;
    (pos_terms.sum(pos_terms.kind()) + neg_terms.sum(neg_terms.kind())) / count
}

/// The InfoNCE bound, each positive against the negatives of its anchor row: scalar.
fn info_nce_bound(t_pos: &Tensor, t_neg: &Tensor, anchor: &Tensor) -> Tensor {
    let groups = anchor.max().int64_value(&[]) + 1;
    let options = (t_neg.kind(), t_neg.device());

    // log sum exp of the negatives of each anchor row, shifted by the row's maximum.
    let peak = Tensor::full([groups], f64::NEG_INFINITY, options)
        .index_reduce(0, anchor, &t_neg.detach(), "amax", true)
        .clamp_min(-1e30);
    let shifted = (t_neg - peak.index_select(0, anchor)).exp();
    let sums = Tensor::zeros([groups], options).scatter_add(0, anchor, &shifted);
    // Rows without negatives have a zero sum; keep their logarithm finite.
    let log_sums = sums.clamp_min(1e-30).log() + &peak;

    let ones = Tensor::ones_like(&t_neg.detach());
    let negatives_per_row = Tensor::zeros([groups], options);
    let negatives_per_row = negatives_per_row.scatter_add(0, anchor, &ones);
    let log_contrast = (negatives_per_row.index_select(0, anchor) + 1.0).log();

    let log_partition = t_pos.logaddexp(&log_sums.index_select(0, anchor));
    (t_pos - log_partition + log_contrast).mean(t_pos.kind())
}

impl FromStr for Estimator {
    type Err = UnknownEstimator;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|estimator| estimator.name() == s)
            .ok_or_else(|| UnknownEstimator(s.to_string()))
    }
}

impl TryFrom<String> for Estimator {
    type Error = UnknownEstimator;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Estimator> for String {
    fn from(estimator: Estimator) -> Self {
        estimator.name().to_string()
    }
}

impl fmt::Display for Estimator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::{self, Module, OptimizerConfig};
    use tch::{Device, Kind};

    const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

    /// Correlated Gaussians `y = rho x + sqrt(1 - rho^2) e` in `dims` dimensions, as pairs
    /// grouped by anchor: `anchors` draws of `x`, each with `partners` positive partners
    /// drawn from `p(y | x)` and as many negatives, the positives of other anchors.
    struct GaussianPairs {
        x: Tensor,
        y_pos: Tensor,
        y_neg: Tensor,
        anchor: Tensor,
    }

    impl GaussianPairs {
        fn sample(anchors: i64, partners: i64, dims: i64, rho: f64, kind: Kind) -> Self {
            let options = (kind, Device::Cpu);
            let x =
                Tensor::randn([anchors, 1, dims], options).expand([anchors, partners, dims], false);
            let noise = Tensor::randn([anchors, partners, dims], options);
            let y_pos = &x * rho + noise * (1.0 - rho * rho).sqrt();
            // Partner k of anchor b borrows the positive of anchor b + 1 + k: never b.
            let rows = Tensor::arange(anchors, (Kind::Int64, Device::Cpu)).view([anchors, 1]);
            let shifts = Tensor::arange(partners, (Kind::Int64, Device::Cpu)).view([1, partners]);
            let donor = ((rows + shifts + 1).remainder(anchors)).view([-1]);
            let flat = |t: &Tensor| t.reshape([anchors * partners, dims]);
            let y_pos = flat(&y_pos);
            let column = Tensor::arange(partners, (Kind::Int64, Device::Cpu)).repeat([anchors]);
            let y_neg = y_pos.index_select(0, &(donor * partners + column));
            let anchor = Tensor::arange(anchors, (Kind::Int64, Device::Cpu))
                .repeat_interleave_self_int(partners, 0, None);
            Self {
                x: flat(&x),
                y_pos,
                y_neg,
                anchor,
            }
        }

        /// The true mutual information `-d/2 log(1 - rho^2)`.
        fn information(dims: i64, rho: f64) -> f64 {
            -(dims as f64) / 2.0 * (1.0 - rho * rho).ln()
        }

        /// The log density ratio `log p(x, y) / p(x) p(y)` of each row: `[P]`.
        fn log_ratio(x: &Tensor, y: &Tensor, rho: f64) -> Tensor {
            let var = 1.0 - rho * rho;
            let per_dim = (y - x * rho).square() / (-2.0 * var) + y.square() / 2.0 - var.ln() / 2.0;
            per_dim.sum_dim_intlist(1, false, None)
        }
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for estimator in Estimator::ALL {
            assert_eq!(estimator.to_string().parse::<Estimator>(), Ok(estimator));
            let json = serde_json::to_string(&estimator).unwrap();
            assert_eq!(json, format!("\"{estimator}\""));
            assert_eq!(serde_json::from_str::<Estimator>(&json).unwrap(), estimator);
        }
        assert_eq!(
            "bce-focal".parse::<Estimator>(),
            Ok(Estimator::Bce { focal: true })
        );
        let err = "mine".parse::<Estimator>().unwrap_err().to_string();
        assert!(
            err.contains("`mine`") && err.contains("nwj, bce, bce-focal, infonce"),
            "{err}"
        );
        assert!(serde_json::from_str::<Estimator>("\"jsd\"").is_err());
    }

    #[test]
    fn small_cases_match_hand_computed_values() {
        let t_pos = Tensor::from_slice(&[1.0f64, 2.0, 0.5, -1.0]);
        let t_neg = Tensor::from_slice(&[0.0f64, -1.0, 1.0, 0.5]);
        let anchor = Tensor::from_slice(&[0i64, 0, 1, 3]);
        let value = |e: Estimator| e.evaluate(&t_pos, &t_neg, &anchor).value.double_value(&[]);
        let (p, n) = ([1.0f64, 2.0, 0.5, -1.0], [0.0f64, -1.0, 1.0, 0.5]);

        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let exp_mean =
            |v: &[f64], shift: f64| mean(&v.iter().map(|t| (t + shift).exp()).collect::<Vec<_>>());
        let nwj = mean(&p) - exp_mean(&n, -1.0);
        assert!((value(Estimator::Nwj) - nwj).abs() < 1e-12);
        let bce_value = mean(&p) + 1.0 - exp_mean(&n, 0.0);
        assert!((value(Estimator::Bce { focal: false }) - bce_value).abs() < 1e-12);

        // Anchor 0 has negatives {0, -1}, anchor 1 has {1}, anchor 3 has {0.5}.
        let groups: [&[f64]; 4] = [&[0.0, -1.0], &[0.0, -1.0], &[1.0], &[0.5]];
        let info_nce = mean(
            &(0..4)
                .map(|i| {
                    let sum: f64 = p[i].exp() + groups[i].iter().map(|t| t.exp()).sum::<f64>();
                    p[i] - (sum / (1.0 + groups[i].len() as f64)).ln()
                })
                .collect::<Vec<_>>(),
        );
        assert!((value(Estimator::InfoNce) - info_nce).abs() < 1e-12);

        let sp = |x: f64| (1.0 + x.exp()).ln();
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let bce: f64 = p
            .iter()
            .map(|&t| sp(-t))
            .chain(n.iter().map(|&t| sp(t)))
            .sum::<f64>()
            / 8.0;
        let focal: f64 = p
            .iter()
            .map(|&t| sp(-t) * sig(-t).powi(2))
            .chain(n.iter().map(|&t| sp(t) * sig(t).powi(2)))
            .sum::<f64>()
            / 8.0;
        let loss = |e: Estimator| e.evaluate(&t_pos, &t_neg, &anchor).loss.double_value(&[]);
        assert!((loss(Estimator::Bce { focal: false }) - bce).abs() < 1e-12);
        assert!((loss(Estimator::Bce { focal: true }) - focal).abs() < 1e-12);
        assert!((loss(Estimator::Nwj) + nwj).abs() < 1e-12);
        assert!((loss(Estimator::InfoNce) + info_nce).abs() < 1e-12);
    }

    #[test]
    fn the_true_log_density_ratio_recovers_the_information() {
        tch::manual_seed(17);
        let (dims, rho) = (2, 0.8);
        let truth = GaussianPairs::information(dims, rho);
        let data = GaussianPairs::sample(4000, 32, dims, rho, Kind::Double);
        let t_pos = GaussianPairs::log_ratio(&data.x, &data.y_pos, rho);
        let t_neg = GaussianPairs::log_ratio(&data.x, &data.y_neg, rho);
        let value = |e: Estimator, shift: f64| {
            e.evaluate(&(&t_pos + shift), &(&t_neg + shift), &data.anchor)
                .value
                .double_value(&[])
        };
        // NWJ is tight at T = 1 + log ratio, the BCE value at its optimum T = log ratio.
        let nwj = value(Estimator::Nwj, 1.0);
        assert!((nwj - truth).abs() < 0.03, "NWJ {nwj} vs I = {truth}");
        let bce = value(Estimator::Bce { focal: false }, 0.0);
        assert!((bce - truth).abs() < 0.03, "BCE value {bce} vs I = {truth}");
        // InfoNCE with 32 negatives is a lower bound, close to I when I << log 33.
        let info_nce = value(Estimator::InfoNce, 0.0);
        assert!(
            info_nce < truth + 0.02 && info_nce > truth - 0.15,
            "InfoNCE {info_nce}"
        );
        // Any other critic gives less.
        assert!(value(Estimator::Nwj, 0.0) < nwj - 0.1);
    }

    #[test]
    fn info_nce_is_capped_by_the_log_of_the_contrast_set() {
        let anchor = Tensor::from_slice(&[0i64, 0, 0, 1, 1, 1]);
        let t_pos = Tensor::full([6], 40.0, F64);
        let t_neg = Tensor::full([6], -40.0, F64);
        let value = Estimator::InfoNce
            .evaluate(&t_pos, &t_neg, &anchor)
            .value
            .double_value(&[]);
        assert!((value - 4f64.ln()).abs() < 1e-9, "{value}");
    }

    #[test]
    fn huge_scores_keep_the_losses_and_gradients_finite() {
        let anchor = Tensor::from_slice(&[0i64, 1, 2, 3]);
        for scale in [1e2, 1e4, 1e20] {
            for estimator in Estimator::ALL {
                let t_pos =
                    (Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.0]) * scale).set_requires_grad(true);
                let t_neg =
                    (Tensor::from_slice(&[2.0f32, -1.0, 1.5, 0.5]) * scale).set_requires_grad(true);
                let bound = estimator.evaluate(&t_pos, &t_neg, &anchor);
                let loss = bound.loss.double_value(&[]);
                assert!(loss.is_finite(), "{estimator} loss {loss} at scale {scale}");
                bound.loss.backward();
                for grad in [t_pos.grad(), t_neg.grad()] {
                    let worst = grad.abs().max().double_value(&[]);
                    assert!(worst.is_finite(), "{estimator} gradient at scale {scale}");
                }
            }
        }
        // Below the cap the NWJ value is the plain formula.
        let t_neg = Tensor::from_slice(&[10.0f32, 15.0]);
        let bound = Estimator::Nwj.evaluate(
            &Tensor::from_slice(&[0.0f32, 0.0]),
            &t_neg,
            &anchor.narrow(0, 0, 2),
        );
        let expected = -((9f64).exp() + (14f64).exp()) / 2.0;
        assert!((bound.value.double_value(&[]) / expected - 1.0).abs() < 1e-5);
    }

    #[test]
    fn loss_gradients_match_finite_differences() {
        tch::manual_seed(23);
        let anchor = Tensor::from_slice(&[0i64, 0, 1, 2, 2, 2]);
        let t_pos = Tensor::randn([6], F64);
        let t_neg = Tensor::randn([6], F64);
        let h = 1e-6;
        for estimator in Estimator::ALL {
            let loss_at = |pos: &Tensor, neg: &Tensor| estimator.evaluate(pos, neg, &anchor).loss;
            let pos = t_pos.copy().set_requires_grad(true);
            let neg = t_neg.copy().set_requires_grad(true);
            loss_at(&pos, &neg).backward();
            for (which, base, grad) in [(0, &t_pos, pos.grad()), (1, &t_neg, neg.grad())] {
                for i in 0..6 {
                    let bump = |delta: f64| {
                        let moved = base.copy();
                        let _ = moved.get(i).fill_(base.double_value(&[i]) + delta);
                        let loss = if which == 0 {
                            loss_at(&moved, &t_neg)
                        } else {
                            loss_at(&t_pos, &moved)
                        };
                        loss.double_value(&[])
                    };
                    let numeric = (bump(h) - bump(-h)) / (2.0 * h);
                    let analytic = grad.double_value(&[i]);
                    assert!(
                        (numeric - analytic).abs() < 1e-6,
                        "{estimator}: d loss / d t[{which}][{i}] {analytic} vs {numeric}"
                    );
                }
            }
        }
    }

    /// Trains a small critic on `cat[x, y]` with `estimator` and returns its value on fresh
    /// pairs.
    fn trained_value(estimator: Estimator, dims: i64, rho: f64, steps: usize) -> f64 {
        tch::manual_seed(31);
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let critic = nn::seq()
            .add(nn::linear(&root / "l1", 2 * dims, 64, Default::default()))
            .add_fn(|x| x.elu())
            .add(nn::linear(&root / "l2", 64, 64, Default::default()))
            .add_fn(|x| x.elu())
            .add(nn::linear(&root / "l3", 64, 1, Default::default()));
        let score =
            |x: &Tensor, y: &Tensor| critic.forward(&Tensor::cat(&[x, y], 1)).squeeze_dim(1);
        let mut adam = nn::Adam::default().build(&vs, 3e-3).unwrap();
        for _ in 0..steps {
            let batch = GaussianPairs::sample(64, 16, dims, rho, Kind::Float);
            let bound = estimator.evaluate(
                &score(&batch.x, &batch.y_pos),
                &score(&batch.x, &batch.y_neg),
                &batch.anchor,
            );
            adam.backward_step(&bound.loss);
        }
        let fresh = GaussianPairs::sample(2000, 16, dims, rho, Kind::Float);
        tch::no_grad(|| {
            let t_pos = score(&fresh.x, &fresh.y_pos);
            let t_neg = score(&fresh.x, &fresh.y_neg);
            estimator
                .evaluate(&t_pos, &t_neg, &fresh.anchor)
                .value
                .double_value(&[])
        })
    }

    /// Checks that a critic trained with `estimator` on `d = 2`, `rho = 0.8`
    /// (`I = 1.02` nats) gives a value in `[0.8 I, I + 0.1]` on fresh pairs.
    fn check_trained(estimator: Estimator) {
        // Small tensors: one thread avoids contention with the tests running beside.
        tch::set_num_threads(1);
        let (dims, rho) = (2, 0.8);
        let truth = GaussianPairs::information(dims, rho);
        let value = trained_value(estimator, dims, rho, 150);
        assert!(
            value < truth + 0.1 && value > 0.8 * truth,
            "{estimator}: {value} vs I = {truth}"
        );
    }

    #[test]
    fn a_critic_trained_with_nwj_bounds_the_information_from_below() {
        check_trained(Estimator::Nwj);
    }

    #[test]
    fn a_critic_trained_with_bce_bounds_the_information_from_below() {
        check_trained(Estimator::Bce { focal: false });
    }

    #[test]
    fn a_critic_trained_with_info_nce_bounds_the_information_from_below() {
        // 16 negatives per anchor cap InfoNCE at log 17 = 2.83 nats, above I.
        check_trained(Estimator::InfoNce);
    }
}
