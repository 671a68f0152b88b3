//! The relation head `f_delta`, the I(X,Z) critic on pairs of features.

use tch::nn;
use tch::Tensor;

use super::layers;

pub mod fused;

/// Hidden width of the relation head.
pub const RELATION_HEAD_HIDDEN: i64 = 256;

/// `f_delta`: Linear(2F, H) -> BatchNorm1d -> LeakyReLU(0.01) -> Linear(H, 1), applied to
/// `cat[f_anchor, f_partner]` (`F = 64`, `H = 256`).
///
/// Variables: `linear1`, `bn`, `linear2`.
#[derive(Debug)]
pub struct RelationHead {
    linear1: nn::Linear,
    bn: nn::BatchNorm,
    linear2: nn::Linear,
    features: i64,
}

impl RelationHead {
    /// Creates the head for pairs of `features`-wide vectors, `hidden` units wide.
    pub fn new(path: &nn::Path, features: i64, hidden: i64) -> Self {
        Self {
            linear1: layers::linear(path / "linear1", 2 * features, hidden),
            bn: layers::batch_norm1d(path / "bn", hidden),
            linear2: layers::linear(path / "linear2", hidden, 1),
            features,
        }
    }

    /// Everything after the first Linear: `[P, H] -> [P]`.
    fn tail(&self, hidden: &Tensor, train: bool) -> Tensor {
        let activated = hidden.apply_t(&self.bn, train).leaky_relu();
        activated
            .linear(&self.linear2.ws, self.linear2.bs.as_ref())
            .squeeze_dim(1)
    }

    /// The critic on concatenated pairs, the straightforward way: `[P, 2F] -> [P]`.
    pub fn forward_concat(&self, pairs: &Tensor, train: bool) -> Tensor {
        let hidden = pairs.linear(&self.linear1.ws, self.linear1.bs.as_ref());
        self.tail(&hidden, train)
    }

    /// The training-mode [`Self::forward_pairs`] without autograd, when it applies (fp32
    /// on the CPU; `None` otherwise): scores `[Q]` that require no gradient, and what
    /// [`fused::Saved::backward`] needs to turn their gradient into those of `features`
    /// and of the head's variables. Updates the BatchNorm's running statistics. See
    /// [`fused`].
    pub fn forward_pairs_fused(
        &self,
        features: &Tensor,
        anchor: &Tensor,
        partner: &Tensor,
    ) -> Option<(Tensor, fused::Saved)> {
        fused::applies(features).then(|| fused::forward(self, features, anchor, partner))
    }

    /// The critic on the pairs `(features[anchor[p]], features[partner[p]])`:
    /// `features [N, F]`, `anchor`, `partner` i64 `[P]` -> `[P]`.
    ///
    /// Equal to `forward_concat` on the concatenated pairs, but the first Linear
    /// `W cat[f_a, f_b] + b = W_a f_a + W_b f_b + b` runs once per view (`[N, H]` for
    /// each half) and each pair only gathers and adds two rows. BatchNorm sees all `P`
    /// pairs as one batch, so pass positives and negatives together.
    pub fn forward_pairs(
        &self,
        features: &Tensor,
        anchor: &Tensor,
        partner: &Tensor,
        train: bool,
    ) -> Tensor {
        let weight_anchor = self.linear1.ws.narrow(1, 0, self.features);
        let weight_partner = self.linear1.ws.narrow(1, self.features, self.features);
        let anchor_part = features.linear(&weight_anchor, self.linear1.bs.as_ref());
        let partner_part = features.linear::<Tensor>(&weight_partner, None);

        let hidden = anchor_part.index_select(0, anchor) + partner_part.index_select(0, partner);
        self.tail(&hidden, train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_compare::relative;
    use tch::{Device, Kind};

    #[test]
    fn pair_path_matches_concatenated_pairs_in_value_and_gradient() {
        tch::manual_seed(11);
        let vs = nn::VarStore::new(Device::Cpu);
        let head = RelationHead::new(&vs.root(), 6, 16);
        let features = Tensor::randn([7, 6], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let anchor = Tensor::from_slice(&[0i64, 1, 2, 3, 0, 1, 2, 3]);
        let partner = Tensor::from_slice(&[4i64, 5, 6, 4, 5, 6, 0, 1]);

        let run = |fast: bool| {
            let out = if fast {
                head.forward_pairs(&features, &anchor, &partner, true)
            } else {
                let pairs = Tensor::cat(
                    &[
                        features.index_select(0, &anchor),
                        features.index_select(0, &partner),
                    ],
                    1,
                );
                head.forward_concat(&pairs, true)
            };
            assert_eq!(out.size(), [8]);
            let weights = Tensor::linspace(-1.0, 1.0, 8, (Kind::Float, Device::Cpu));
            let grad =
                Tensor::run_backward(&[(&out * weights).sum(None)], &[&features], false, false);
            (out.detach(), grad[0].copy())
        };
        let (fast, fast_grad) = run(true);
        let (plain, plain_grad) = run(false);
        assert!(fast.allclose(&plain, 1e-5, 1e-5, false));
        assert!(fast_grad.allclose(&plain_grad, 1e-5, 1e-5, false));
        assert!(plain_grad.abs().sum(None).double_value(&[]) > 0.0);
    }
    #[test]
    fn fused_pairs_match_autograd_in_value_gradient_and_statistics() {
        let make = || {
            let vs = nn::VarStore::new(Device::Cpu);
            let head = RelationHead::new(&vs.root(), 6, 20);
            (vs, head)
        };
        let (plain_vs, plain) = crate::test_rng::seeded(12, make);
        let (mut fused_vs, fused) = make();
        fused_vs.copy(&plain_vs).unwrap();
        let (features, anchor, partner, probe) = crate::test_rng::seeded(13, || {
            let opts = (Kind::Float, Device::Cpu);
            (
                Tensor::randn([9, 6], opts) * 3.0,
                Tensor::randint(9, [150], (Kind::Int64, Device::Cpu)),
                Tensor::randint(9, [150], (Kind::Int64, Device::Cpu)),
                Tensor::randn([150], opts),
            )
        });
        let leaf = features.set_requires_grad(true);
        let scores = plain.forward_pairs(&leaf, &anchor, &partner, true);
        let mut inputs = vec![leaf.shallow_clone()];
        inputs.extend(plain_vs.trainable_variables());
        let expected = Tensor::run_backward(&[(&scores * &probe).sum(None)], &inputs, false, false);

        let (ours, saved) = fused
            .forward_pairs_fused(&features, &anchor, &partner)
            .unwrap();
        assert!(relative(&ours, &scores.detach()) < 1e-5);
        let grads = saved.backward(&probe);
        assert!(relative(&grads.input, &expected[0]) < 1e-4, "features");
        let names = fused_vs.variables();
        let plain_names = plain_vs.variables();
        let trainable = plain_vs.trainable_variables();
        assert_eq!(grads.variables.len(), trainable.len());
        for (variable, grad) in &grads.variables {
            let name = names
                .iter()
                .find(|(_, t)| t.data_ptr() == variable.data_ptr())
                .unwrap()
                .0;
            let plain_variable = &plain_names[name];
            let index = trainable
                .iter()
                .position(|t| t.data_ptr() == plain_variable.data_ptr());
            let reference = &expected[index.unwrap() + 1];
            assert_eq!(grad.size(), variable.size(), "{name}");
            if name == "linear1.bias" {
                // A bias right before a BatchNorm: zero in exact arithmetic, rounding here.
                let scale = expected[0].norm().double_value(&[]);
                assert!(grad.norm().double_value(&[]) < 1e-5 * scale, "{name}");
                assert!(reference.norm().double_value(&[]) < 1e-5 * scale, "{name}");
                continue;
            }
            let error = relative(grad, reference);
            assert!(error < 1e-4, "{name}: relative gradient error {error}");
        }
        for name in ["bn.running_mean", "bn.running_var"] {
            assert!(relative(&names[name], &plain_names[name]) < 1e-5, "{name}");
        }
    }
}
