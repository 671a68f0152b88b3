//! Optimizers over a `VarStore`: Adam and SGD with momentum, with state that checkpoints
//! can save.
//!
//! libtorch's optimizers keep their moments out of reach of the Rust bindings, so exact
//! resumption needs our own: the update is PyTorch's Adam without weight decay,
//! `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
//! `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use tch::{nn::VarStore, Tensor};

/// Adam with PyTorch's defaults (`betas = (0.9, 0.999)`, `eps = 1e-8`).
pub struct Adam {
    params: Vec<(String, Tensor)>,
    first: Vec<Tensor>,
    second: Vec<Tensor>,
    /// Updates taken so far.
    pub steps: u64,
    /// Learning rate.
    pub learning_rate: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl Adam {
    /// Adam over the trainable variables of `vs`, in name order.
    pub fn new(vs: &VarStore, learning_rate: f64) -> Self {
        let params = trainable(vs);
        let first = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let second = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            params,
            first,
            second,
            steps: 0,
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// Clears the gradients of all parameters.
    pub fn zero_grad(&mut self) {
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// One update from the current gradients.
    pub fn step(&mut self) {
        self.steps += 1;
        let t = self.steps as i32;
        let bias1 = 1.0 - self.beta1.powi(t);
        let bias2 = 1.0 - self.beta2.powi(t);
        let step_size = self.learning_rate / bias1;
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter().enumerate() {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let m = &mut self.first[i];
                let v = &mut self.second[i];
                let _ = m
                    .g_mul_scalar_(self.beta1)
                    .g_add_(&(&g * (1.0 - self.beta1)));
                let _ = v
                    .g_mul_scalar_(self.beta2)
                    .addcmul_(&g, &g.g_mul_scalar(1.0 - self.beta2));
                let denom = (v.sqrt() / bias2.sqrt()) + self.eps;
                let mut p = p.shallow_clone();
                let _ = p.addcdiv_(&(m.g_mul_scalar(-step_size)), &denom);
            }
        });
    }

    /// The moments as named tensors, for checkpoints: `m.<name>` and `v.<name>`.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.push((format!("m.{name}"), self.first[i].shallow_clone()));
            out.push((format!("v.{name}"), self.second[i].shallow_clone()));
        }
        out
    }

    /// Restores moments saved by [`Adam::state`]; names the first one missing or misshapen.
    pub fn load_state(&mut self, lookup: &dyn Fn(&str) -> Option<Tensor>) -> Result<(), String> {
        for (i, (name, _)) in self.params.iter().enumerate() {
            for (prefix, slot) in [("m", &mut self.first[i]), ("v", &mut self.second[i])] {
                let key = format!("{prefix}.{name}");
                let saved =
                    lookup(&key).ok_or_else(|| format!("optimizer state `{key}` missing"))?;
                if saved.size() != slot.size() {
                    return Err(format!(
                        "optimizer state `{key}` has shape {:?}, expected {:?}",
                        saved.size(),
                        slot.size()
                    ));
                }
                tch::no_grad(|| slot.copy_(&saved));
            }
        }
        Ok(())
    }
}

/// SGD with momentum (PyTorch's form: `b = mu b + g`, `p -= lr b`) and optional weight
/// decay, used by the supervised reference.
pub struct Sgd {
    params: Vec<(String, Tensor)>,
    momentum_buffers: Vec<Tensor>,
    /// Learning rate (the schedule changes it between steps).
    pub learning_rate: f64,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    /// SGD over the trainable variables of `vs`.
    pub fn new(vs: &VarStore, learning_rate: f64, momentum: f64, weight_decay: f64) -> Self {
        let params = trainable(vs);
        let momentum_buffers = params.iter().map(|(_, p)| p.zeros_like()).collect();
        Self {
            params,
            momentum_buffers,
            learning_rate,
            momentum,
            weight_decay,
        }
    }

    /// Clears the gradients of all parameters.
    pub fn zero_grad(&mut self) {
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// One update from the current gradients.
    pub fn step(&mut self) {
        tch::no_grad(|| {
            for (i, (_, p)) in self.params.iter().enumerate() {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                if self.weight_decay != 0.0 {
                    g = &g + p * self.weight_decay;
                }
                let b = &mut self.momentum_buffers[i];
                let _ = b.g_mul_scalar_(self.momentum).g_add_(&g);
                let mut p = p.shallow_clone();
                let _ = p.g_add_(&(b.g_mul_scalar(-self.learning_rate)));
            }
        });
    }
}

/// The variables of `vs` that require a gradient, with their names, in name order.
pub(crate) fn trainable(vs: &VarStore) -> Vec<(String, Tensor)> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    /// Two Adam steps on f(p) = sum(c * p^2), checked against the formula by hand.
    #[test]
    fn adam_matches_the_formula() {
        let vs = VarStore::new(Device::Cpu);
        let p = vs
            .root()
            .var_copy("p", &Tensor::from_slice(&[1.0f32, -2.0, 0.5]));
        let c = Tensor::from_slice(&[1.0f32, 3.0, -2.0]);
        let mut adam = Adam::new(&vs, 0.1);
        let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
        let mut want = [1.0f64, -2.0, 0.5];
        let cs = [1.0f64, 3.0, -2.0];
        for t in 1..=2 {
            adam.zero_grad();
            (&c * &p * &p).sum(Kind::Float).backward();
            adam.step();
            for i in 0..3 {
                let g = 2.0 * cs[i] * want[i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                let mh = m[i] / (1.0 - 0.9f64.powi(t));
                let vh = v[i] / (1.0 - 0.999f64.powi(t));
                want[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
            }
        }
        let got: Vec<f32> = Vec::try_from(&p.detach()).unwrap();
        for i in 0..3 {
            assert!(
                (got[i] as f64 - want[i]).abs() < 1e-5,
                "{got:?} vs {want:?}"
            );
        }
    }

    #[test]
    fn adam_state_round_trips() {
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "l", 3, 2, Default::default());
        let mut adam = Adam::new(&vs, 0.01);
        let x = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
        let w = vs.variables();
        let loss = x.matmul(&w["l.weight"].tr()).sum(Kind::Float);
        loss.backward();
        adam.step();
        let state: std::collections::HashMap<_, _> = adam.state().into_iter().collect();
        let mut fresh = Adam::new(&vs, 0.01);
        fresh
            .load_state(&|k| state.get(k).map(|t| t.copy()))
            .unwrap();
        for (k, t) in fresh.state() {
            assert!(t.equal(&state[&k]), "{k}");
        }
        let err = fresh.load_state(&|_| None).unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn sgd_momentum_matches_the_formula() {
        let vs = VarStore::new(Device::Cpu);
        let p = vs.root().var_copy("p", &Tensor::from_slice(&[1.0f32]));
        let mut sgd = Sgd::new(&vs, 0.1, 0.9, 0.0);
        let (mut want, mut b) = (1.0f64, 0.0f64);
        for _ in 0..3 {
            sgd.zero_grad();
            (&p * &p).sum(Kind::Float).backward();
            sgd.step();
            b = 0.9 * b + 2.0 * want;
            want -= 0.1 * b;
        }
        let got = p.double_value(&[0]);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
