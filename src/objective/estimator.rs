//! Variational lower bounds on mutual information from critic scores of positive
//! (joint) and negative (product-of-marginals) pairs.
//!
//! - **NWJ** (Nguyen-Wainwright-Jordan): `I >= mean_pos T - mean_neg exp(T - 1)`. The
//!   exponential mean is evaluated as `exp(logsumexp(T) - log n - 1)`, which cannot
//!   overflow on the way. Its exponent `x` is used as is up to [`NWJ_EXPONENT_CAP`] (20:
//!   a negative mean of `e^20`, a bound of about `-5e8` nats, lies far outside any useful
//!   range) and continued linearly above it, `e^20 (1 + x - 20)`, so that the loss and its
//!   gradient stay finite for any finite scores while the value is unchanged below the cap.
//! - **BCE**: binary cross-entropy with logits, positives labelled 1 and negatives 0,
//!   averaged over both kinds; `focal` weights each term by `(1 - p_t)^2`, `p_t` the
//!   probability given to the true label. Its optimal logit is the log density ratio
//!   `log p(x, y) / p(x) p(y)`, so the reported value is the NWJ bound of `T + 1`, a valid
//!   lower bound in nats for any `T`, tight at that optimum.
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
        .scatter_reduce(0, anchor, &t_neg.detach(), "amax")
        .clamp_min(-1e30);
    let shifted = (t_neg - peak.index_select(0, anchor)).exp();
    let sums = Tensor::zeros([groups], options).scatter_add(0, anchor, &shifted);
    // Rows without negatives have a zero sum; keep their logarithm finite.
    let log_sums = sums.clamp_min(1e-30).log() + &peak;

    let ones = Tensor::ones_like(&t_neg.detach());
    let negatives_per_row = Tensor::zeros([groups], options).scatter_add(0, anchor, &ones);
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
