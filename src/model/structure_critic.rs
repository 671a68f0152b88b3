//! The structure critic `T_omega`, the bilinear I(X,A) critic on pairs of edge-type maps.

use tch::{nn, Tensor};

/// `T_omega(h, a) = sum_k h_k^T W_k a_k`, one learned `W_k` `[E, E]` per edge type.
///
/// Variable: `weight` `[K, E, E]`, initialised `randn / E`.
#[derive(Debug)]
pub struct StructureCritic {
    weight: Tensor,
}

impl StructureCritic {
    /// Creates the critic for `edges` edges and `edge_types` edge types.
    pub fn new(path: &nn::Path, edges: i64, edge_types: i64) -> Self {
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: 1.0 / edges as f64,
        };
        Self {
            weight: path.var("weight", &[edge_types, edges, edges], init),
        }
    }

    /// The bilinear weight `W`: `[K, E, E]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `W_k a_k` for every view: `[n, E, K] -> [n, E, K]`,
    /// `out[v, e, k] = sum_f W[k, e, f] a[v, f, k]`.
    pub fn project(&self, a: &Tensor) -> Tensor {
        // [K, E, E] x [K, E, n] -> [K, E, n]
        let projected = self.weight.bmm(&a.permute([2, 1, 0]));
        projected.permute([2, 1, 0]).contiguous()
    }

    /// The critic on pairs of views: `h [N, E, K]` (anchors' edge types),
    /// `projected [N, E, K]` (from [`Self::project`]), `anchor`, `partner` i64 `[P]`
    /// -> `[P]`, `T[p] = sum_{e,k} h[anchor[p], e, k] * projected[partner[p], e, k]`.
    pub fn score(
        &self,
        h: &Tensor,
        projected: &Tensor,
        anchor: &Tensor,
        partner: &Tensor,
    ) -> Tensor {
        let n = h.size()[0];
        let flat_h = h.reshape([n, -1]);
        let flat_projected = projected.reshape([n, -1]);
        let anchors = flat_h.index_select(0, anchor);
        let products = anchors * flat_projected.index_select(0, partner);
        products.sum_dim_intlist(1, false, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn projection_and_score_match_the_definition() {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let critic = StructureCritic::new(&vs.root(), 5, 2);
        let a = Tensor::rand([4, 5, 2], (Kind::Float, Device::Cpu));
        let projected = critic.project(&a);
        assert_eq!(projected.size(), [4, 5, 2]);

        let anchor = Tensor::from_slice(&[0i64, 1, 3]);
        let partner = Tensor::from_slice(&[2i64, 2, 0]);
        let scores = critic.score(&a, &projected, &anchor, &partner);
        assert_eq!(scores.size(), [3]);

        let w = critic.weight();
        for (p, (&i, &j)) in [0i64, 1, 3].iter().zip(&[2i64, 2, 0]).enumerate() {
            let mut expected = 0.0;
            for k in 0..2 {
                // h_k^T W_k a_k with column vectors.
                let h_k = a.get(i).select(1, k);
                let a_k = a.get(j).select(1, k);
                expected += h_k.dot(&w.get(k).mv(&a_k)).double_value(&[]);
            }
            let got = scores.double_value(&[p as i64]);
            assert!(
                (got - expected).abs() < 1e-5,
                "pair {p}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn weight_starts_at_randn_over_edges() {
        tch::manual_seed(8);
        let vs = nn::VarStore::new(Device::Cpu);
        let critic = StructureCritic::new(&vs.root(), 56, 2);
        assert_eq!(critic.weight().size(), [2, 56, 56]);
        let std = critic.weight().std(true).double_value(&[]);
        assert!((std * 56.0 - 1.0).abs() < 0.05, "std {std}");
    }
}
