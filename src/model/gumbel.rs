//! Gumbel-softmax samples of relaxed one-hot edge types, and hard edge types.

use tch::Tensor;

/// Keeps both logarithms of the Gumbel noise finite when `u` is 0 or 1.
const EPS: f64 = 1e-10;

/// A soft Gumbel-softmax sample: `[..., K] -> [..., K]`, each row summing to 1.
///
/// Draws `u ~ U[0, 1)` of the shape of `logits` from tch's generator, forms the Gumbel
/// noise `g = -log(eps - log(u + eps))` and returns `softmax((logits + g) / tau)` over
/// the last dimension. Lower `tau` gives samples closer to one-hot.
pub fn gumbel_softmax(logits: &Tensor, tau: f64) -> Tensor {
    gumbel_softmax_from_uniform(logits, &logits.detach().rand_like(), tau)
}

/// [`gumbel_softmax`] with the uniform draws given: `logits [..., K]`, `uniform` of the
/// same shape with entries in `[0, 1)` -> `[..., K]`.
pub fn gumbel_softmax_from_uniform(logits: &Tensor, uniform: &Tensor, tau: f64) -> Tensor {
    let noise = -((uniform + EPS).log().neg() + EPS).log();
    ((logits + noise) / tau).softmax(-1, logits.kind())
}

/// The most likely edge type of each edge: `[..., K] -> [...]` (i64 indices in `0..K`).
pub fn hard_edge_types(logits: &Tensor) -> Tensor {
    logits.argmax(-1, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    fn logits() -> Tensor {
        Tensor::from_slice(&[1.0f32, 0.0, -1.0, 0.5]).view([1, 4])
    }

    #[test]
    fn samples_are_distributions_and_sharpen_as_tau_falls() {
        tch::manual_seed(5);
        let logits = logits().expand([4000, 4], false);
        let warm = gumbel_softmax(&logits, 2.0);
        let cold = gumbel_softmax(&logits, 0.1);
        assert_eq!(cold.size(), [4000, 4]);
        for sample in [&warm, &cold] {
            let sums = sample.sum_dim_intlist(-1, false, Kind::Float);
            assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-5);
            assert!(sample.min().double_value(&[]) >= 0.0);
        }
        let peak = |s: &Tensor| s.amax(-1, false).mean(Kind::Float).double_value(&[]);
        assert!(peak(&cold) > 0.95, "cold peak {}", peak(&cold));
        assert!(peak(&warm) < 0.6, "warm peak {}", peak(&warm));
    }

    #[test]
    fn argmax_frequencies_follow_the_softmax_of_the_logits() {
        tch::manual_seed(9);
        let samples = 20_000;
        let logits = logits();
        let drawn = gumbel_softmax(&logits.expand([samples, 4], false), 0.5);
        let winners = hard_edge_types(&drawn);
        let counts = winners.bincount::<Tensor>(None, 4).to_kind(Kind::Double) / samples as f64;
        let expected = logits.softmax(-1, Kind::Double).view([4]);
        // The standard error of each frequency is below 0.0036 at this sample size.
        let worst = (counts - &expected).abs().max().double_value(&[]);
        assert!(worst < 0.015, "frequencies off by {worst}");
    }

    #[test]
    fn given_uniform_draws_give_the_closed_form_sample() {
        let logits = Tensor::from_slice(&[0.0f64, 1.0]);
        let uniform = Tensor::from_slice(&[0.5f64, 0.25]);
        let sample = gumbel_softmax_from_uniform(&logits, &uniform, 0.5);
        let g = |u: f64| -(1e-10 - (u + 1e-10).ln()).ln();
        let (y0, y1) = ((0.0 + g(0.5)) / 0.5, (1.0 + g(0.25)) / 0.5);
        let expected = y1.exp() / (y0.exp() + y1.exp());
        assert!((sample.double_value(&[1]) - expected).abs() < 1e-12);
    }

    #[test]
    fn hard_edge_types_pick_the_largest_logit() {
        let logits = Tensor::from_slice(&[0.1f32, 2.0, 3.0, -1.0, 0.0, 0.0]).view([3, 2]);
        let types = hard_edge_types(&logits);
        assert_eq!(types.kind(), Kind::Int64);
        assert_eq!(Vec::<i64>::try_from(&types).unwrap(), vec![1, 0, 0]);
    }
}
