//! The relation head's training forward over pairs and its backward written out by hand,
//! for fp32 on the CPU: the same function as [`RelationHead::forward_pairs`] in training
//! mode, without the `[Q, h]` hidden tensor of its `Q` pairs kept between the passes.
//!
//! The first Linear runs once per view (`a = f W_a^T + b`, `p = f W_p^T`, `[N, h]`); every
//! pass over the pairs gathers `x_r = a_(anchor_r) + p_(partner_r)` again from those
//! cache-sized terms: one pass for the BatchNorm statistics, one for the scores, and in
//! the backward one for the sums the BatchNorm and the last Linear need and one that
//! writes the hidden rows' gradient, which two index-adds return to the views.

use tch::{Device, Kind, Tensor};

use super::RelationHead;
use crate::model::batch_stats::BatchStats;
use crate::model::kernels::{self, floats, floats_mut, from_f64, to_vec, PairRows};

/// Whether [`forward`] computes `head` on `features`: fp32 on the CPU.
pub(super) fn applies(features: &Tensor) -> bool {
    features.device() == Device::Cpu && features.kind() == Kind::Float
}

/// What the backward pass needs of one forward pass.
#[derive(Debug)]
pub struct Saved {
    /// The features `[N, F]`, detached.
    features: Tensor,
    anchor: Tensor,
    partner: Tensor,
    /// The same indices, read once in the forward for both passes' kernels.
    anchor_index: Vec<i64>,
    partner_index: Vec<i64>,
    /// Per-view terms of the first Linear, `[N, h]` each (the anchor's with the bias).
    anchor_terms: Tensor,
    partner_terms: Tensor,
    stats: BatchStats,
    /// The head's variables, detached, and the variables themselves in gradient order.
    weight1: Tensor,
    weight2: Vec<f32>,
    originals: Vec<Tensor>,
}

/// The gradients of one backward pass.
#[derive(Debug)]
pub struct Grads {
    /// Gradient of the features, `[N, F]`.
    pub input: Tensor,
    /// `(variable, gradient)` for every trainable variable of the head.
    pub variables: Vec<(Tensor, Tensor)>,
}

/// The training-mode scores `[Q]` of the pairs `(anchor_r, partner_r)` of `features`
/// `[N, F]`, without autograd, and what [`Saved::backward`] needs. Updates the
/// BatchNorm's running statistics.
pub(super) fn forward(
    head: &RelationHead,
    features: &Tensor,
    anchor: &Tensor,
    partner: &Tensor,
) -> (Tensor, Saved) {
    let _guard = tch::no_grad_guard();
    let f = head.features;
    let features = features.detach().contiguous();
    let weight1 = head.linear1.ws.detach();
    let bias1 = head.linear1.bs.as_ref().expect("Linear with bias").detach();
    let anchor_terms = features
        .linear(&weight1.narrow(1, 0, f), Some(&bias1))
        .contiguous();
    let partner_terms = features
        .linear::<Tensor>(&weight1.narrow(1, f, f), None)
        .contiguous();
    let (anchor, partner) = (anchor.contiguous(), partner.contiguous());
    let (anchor_index, partner_index) = (indices(&anchor), indices(&partner));
    let rows = PairRows {
        width: anchor_terms.size()[1] as usize,
        anchor_terms: floats(&anchor_terms),
        partner_terms: floats(&partner_terms),
        anchor: &anchor_index,
        partner: &partner_index,
    }
    .checked();
    let pairs = anchor_index.len() as i64;
    let stats = BatchStats::from_sums(&kernels::pair_moments(rows), pairs, &head.bn);

    let weight2 = to_vec(&head.linear2.ws);
    let bias2 = head
        .linear2
        .bs
        .as_ref()
        .expect("Linear with bias")
        .double_value(&[0]);
    let mut scores = Tensor::empty([pairs], (Kind::Float, Device::Cpu));
    kernels::pair_scores(
        rows,
        &to_vec(&stats.scale),
        &to_vec(&stats.shift),
        &weight2,
        bias2 as f32,
        floats_mut(&mut scores),
    );
    let originals = [
        Some(&head.linear1.ws),
        head.linear1.bs.as_ref(),
        head.bn.ws.as_ref(),
        head.bn.bs.as_ref(),
        Some(&head.linear2.ws),
        head.linear2.bs.as_ref(),
    ]
    .into_iter()
    .map(|t| {
        t.expect("variables with biases and an affine BatchNorm")
            .shallow_clone()
    })
    .collect();
    let saved = Saved {
        features,
        anchor,
        partner,
        anchor_index,
        partner_index,
        anchor_terms,
        partner_terms,
        stats,
        weight1,
        weight2,
        originals,
    };
    (scores, saved)
}

impl Saved {
    /// The gradients of the features and of every variable, given the scores' gradient
    /// `[Q]`.
    pub fn backward(self, scores_grad: &Tensor) -> Grads {
        let _guard = tch::no_grad_guard();
        let d = scores_grad.contiguous();
        let (anchor_index, partner_index) = (&self.anchor_index, &self.partner_index);
        let h = self.anchor_terms.size()[1];
        let rows = PairRows {
            width: h as usize,
            anchor_terms: floats(&self.anchor_terms),
            partner_terms: floats(&self.partner_terms),
            anchor: anchor_index,
            partner: partner_index,
        };
        let pairs = anchor_index.len() as i64;
        let (scale, shift) = (to_vec(&self.stats.scale), to_vec(&self.stats.shift));
        let mean = to_vec(&self.stats.mean);
        let sums =
            kernels::pair_backward_moments(rows, &scale, &shift, &self.weight2, &mean, floats(&d));
        let sums = from_f64(&sums).view([3, h]);
        let weight2_grad = sums.get(0).unsqueeze(0);
        let bias2_grad = d.sum(Kind::Float).unsqueeze(0);
        let (gamma_grad, beta_grad) = self.stats.affine_grads(&sums.get(1), &sums.get(2));
        let affine = self.stats.backward_affine(&beta_grad, &gamma_grad, pairs);
        let mut hidden_grad = Tensor::empty([pairs, h], (Kind::Float, Device::Cpu));
        kernels::pair_hidden_grads(
            rows,
            &scale,
            &shift,
            &self.weight2,
            floats(&d),
            &affine,
            floats_mut(&mut hidden_grad),
        );
        let zeros = self.anchor_terms.zeros_like();
        let anchor_grad = zeros.index_add(0, &self.anchor, &hidden_grad);
        let partner_grad = zeros.index_add(0, &self.partner, &hidden_grad);
        drop(hidden_grad);

        let f = self.features.size()[1];
        let (weight_anchor, weight_partner) =
            (self.weight1.narrow(1, 0, f), self.weight1.narrow(1, f, f));
        let input = anchor_grad.mm(&weight_anchor) + partner_grad.mm(&weight_partner);
        let weight1_grad = Tensor::cat(
            &[
                anchor_grad.tr().mm(&self.features),
                partner_grad.tr().mm(&self.features),
            ],
            1,
        );
        let bias1_grad = anchor_grad.sum_dim_intlist(0, false, Kind::Float);
        let grads = [
            weight1_grad,
            bias1_grad,
            gamma_grad,
            beta_grad,
            weight2_grad,
            bias2_grad,
        ];
        Grads {
            input,
            variables: self.originals.into_iter().zip(grads).collect(),
        }
    }
}

/// The numbers of an i64 index tensor.
fn indices(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_device(Device::Cpu).view([-1])).expect("an i64 index tensor")
}
