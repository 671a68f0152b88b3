//! The pretraining objective of one batch: the I(X,Z) and I(X,A) bounds in use.

use tch::Tensor;

use super::estimator::{Bound, Estimator};
use super::objective::Objective;
use super::pairs::PairTensors;
use crate::model::{gumbel_softmax, Network, SLOTS, SLOT_DIM};

/// The objective of one batch.
#[derive(Debug)]
pub struct Terms {
    /// Sum of the losses in use: scalar, differentiable.
    pub total: Tensor,
    /// The I(X,Z) bound, when the objective uses it.
    pub xz: Option<Bound>,
    /// The I(X,A) bound, when the objective uses it.
    pub xa: Option<Bound>,
}

impl Terms {
    fn from_bounds(xz: Option<Bound>, xa: Option<Bound>) -> Self {
        let total = match (&xz, &xa) {
            (Some(xz), Some(xa)) => &xz.loss + &xa.loss,
            (Some(only), None) | (None, Some(only)) => only.loss.shallow_clone(),
            (None, None) => unreachable!("every objective uses at least one term"),
        };
        Self { total, xz, xa }
    }
}

/// The terms of `objective` on the features of one batch.
///
/// `features` `[N, 64]` are the encoder's outputs for the `N = M V` views (row
/// `k M + m` is view `k` of image `m`), `pairs` the batch's pairs. I(X,Z): the relation
/// head scores all positive and negative pairs as one batch (`[2P]`), through
/// [`crate::model::RelationHead::forward_pairs`]. I(X,A): every view's slots
/// `[N, 8, 8]` go once through the relation encoder, a soft Gumbel-softmax sample at
/// temperature `tau` gives `a` `[N, E, K]` (drawn from tch's generator, also when
/// `train` is false), the structure critic projects `a` once per view and scores each pair
/// (`[P]` per kind). `train` selects batch statistics in every BatchNorm.
pub fn evaluate(
    network: &Network,
    features: &Tensor,
    pairs: &PairTensors,
    objective: Objective,
    estimator: Estimator,
    tau: f64,
    train: bool,
) -> Terms {
    let xz = objective.uses_xz().then(|| {
        let head = &network.relation_head;
        let scores = head.forward_pairs(
            features,
            &pairs.stacked_anchor,
            &pairs.stacked_partner,
            train,
        );
        let (t_pos, t_neg) = split_stacked(&scores, pairs.len());
        estimator.evaluate(&t_pos, &t_neg, &pairs.anchor)
    });

    let xa = objective.uses_xa().then(|| {
        let views = features.size()[0];
        let z = features.reshape([views, SLOTS, SLOT_DIM]);
        let a = gumbel_softmax(&network.relation_encoder.forward(&z, train), tau);

        let critic = &network.structure_critic;
        let projected = critic.project(&a);
        let t_pos = critic.score(&a, &projected, &pairs.anchor, &pairs.positive);
        let t_neg = critic.score(&a, &projected, &pairs.anchor, &pairs.negative);
        estimator.evaluate(&t_pos, &t_neg, &pairs.anchor)
    });

    Terms::from_bounds(xz, xa)
}

/// The same function as [`evaluate`], computed the straightforward way: the relation
/// head on concatenated pairs `[2P, 128]`, [`crate::model::RelationEncoder::forward_plain`],
/// and the structure critic's projection per pair rather than per view. Slower; it
/// exists to check the fast path.
pub fn evaluate_plain(
    network: &Network,
    features: &Tensor,
    pairs: &PairTensors,
    objective: Objective,
    estimator: Estimator,
    tau: f64,
    train: bool,
) -> Terms {
    let gather = |rows: &Tensor| features.index_select(0, rows);
    let xz = objective.uses_xz().then(|| {
        let positives = Tensor::cat(&[gather(&pairs.anchor), gather(&pairs.positive)], 1);
        let negatives = Tensor::cat(&[gather(&pairs.anchor), gather(&pairs.negative)], 1);
        let scores = network
            .relation_head
            .forward_concat(&Tensor::cat(&[positives, negatives], 0), train);
        let (t_pos, t_neg) = split_stacked(&scores, pairs.len());
        estimator.evaluate(&t_pos, &t_neg, &pairs.anchor)
    });

    let xa = objective.uses_xa().then(|| {
        let views = features.size()[0];
        let z = features.reshape([views, SLOTS, SLOT_DIM]);
        let a = gumbel_softmax(&network.relation_encoder.forward_plain(&z, train), tau);

        let critic = &network.structure_critic;
        let score = |partner: &Tensor| {
            let projected = critic.project(&a.index_select(0, partner));
            (a.index_select(0, &pairs.anchor) * projected).sum_dim_intlist(
                [1i64, 2].as_slice(),
                false,
                None,
            )
        };
        estimator.evaluate(
            &score(&pairs.positive),
            &score(&pairs.negative),
            &pairs.anchor,
        )
    });

    Terms::from_bounds(xz, xa)
}

/// Splits `[2P]` scores of stacked positives and negatives into two `[P]` halves.
fn split_stacked(scores: &Tensor, pairs: i64) -> (Tensor, Tensor) {
    (scores.narrow(0, 0, pairs), scores.narrow(0, pairs, pairs))
}
