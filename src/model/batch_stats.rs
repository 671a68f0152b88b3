//! A training-mode BatchNorm written out by hand: its batch statistics as a per-channel
//! affine map, the running-statistics update of `nn::BatchNorm`, and the per-channel
//! coefficients of its backward pass.

use tch::{nn, Tensor};

use super::kernels::{from_f64, to_vec, BackwardAffine, ChannelSums};

/// `nn::BatchNorm`'s defaults, which the project's BatchNorms are built with.
const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

/// A BatchNorm's training statistics, and the layer as the affine map `a y + c`:
/// `[h]` each.
#[derive(Debug)]
pub(crate) struct BatchStats {
    /// Per-channel mean of the input.
    pub mean: Tensor,
    /// `1 / sqrt(variance + eps)`, the biased variance.
    pub inv_std: Tensor,
    /// `a = gamma / sigma`.
    pub scale: Tensor,
    /// `c = beta - a mean`.
    pub shift: Tensor,
}

impl BatchStats {
    /// From the per-channel mean and biased variance over `count` rows; updates `bn`'s
    /// running statistics as `nn::BatchNorm` does in training (momentum 0.1, the unbiased
    /// variance).
    pub fn new(mean: Tensor, variance: Tensor, count: i64, bn: &nn::BatchNorm) -> Self {
        let _guard = tch::no_grad_guard();
        let unbiased = &variance * (count as f64 / (count - 1).max(1) as f64);
        let mut running_mean = bn.running_mean.shallow_clone();
        let mut running_var = bn.running_var.shallow_clone();
        let _ = running_mean
            .g_mul_scalar_(1.0 - MOMENTUM)
            .g_add_(&(&mean * MOMENTUM));
        let _ = running_var
            .g_mul_scalar_(1.0 - MOMENTUM)
            .g_add_(&(unbiased * MOMENTUM));
        let inv_std = (variance + EPS).rsqrt();
        let gamma = bn.ws.as_ref().expect("affine BatchNorm").detach();
        let beta = bn.bs.as_ref().expect("affine BatchNorm").detach();
        let scale = gamma * &inv_std;
        let shift = beta - &mean * &scale;
        Self {
            mean,
            inv_std,
            scale,
            shift,
        }
    }

    /// From the per-channel sums of the input (`first`) and of its square (`second`)
    /// over `count` rows.
    pub fn from_sums(sums: &ChannelSums, count: i64, bn: &nn::BatchNorm) -> Self {
        let n = count as f64;
        let mean: Vec<f64> = sums.first.iter().map(|s| s / n).collect();
        let variance: Vec<f64> = sums
            .second
            .iter()
            .zip(&mean)
            .map(|(sq, m)| (sq / n - m * m).max(0.0))
            .collect();
        Self::new(from_f64(&mean), from_f64(&variance), count, bn)
    }

    /// The gradients of `gamma` and `beta` from the sums over rows of the output's gradient
    /// `g` (`sum_g`) and of `g` times the centred input (`sum_g_centred`, `y - mean`):
    /// `(sum g xhat, sum g)`.
    pub fn affine_grads(&self, sum_g: &Tensor, sum_g_centred: &Tensor) -> (Tensor, Tensor) {
        (sum_g_centred * &self.inv_std, sum_g.shallow_clone())
    }

    /// The input's gradient as the per-channel map `a g + beta + gamma (y - mean)` of the
    /// output's gradient `g` and the input `y`, given `sum g` and `sum g xhat` over the
    /// `count` rows: `a (g - mean(g) - xhat mean(g xhat))`.
    pub fn backward_affine(
        &self,
        sum_g: &Tensor,
        sum_g_xhat: &Tensor,
        count: i64,
    ) -> BackwardAffine {
        let m1 = sum_g / count as f64;
        let m2 = sum_g_xhat / count as f64;
        let beta = -(&self.scale * m1);
        let gamma = -(&self.scale * &m2 * &self.inv_std);
        BackwardAffine {
            alpha: to_vec(&self.scale),
            beta: to_vec(&beta),
            gamma: to_vec(&gamma),
            center: to_vec(&self.mean),
        }
    }
}
