//! The relation encoder `m_eta`: a factor-graph message-passing network from the slots
//! of `z` to the logits of the edge types of a fully connected slot graph.

use tch::nn;
use tch::{Device, Kind, Tensor};

use super::layers;

pub mod fused;

/// Linear -> ELU -> Linear -> ELU -> BatchNorm1d, the normalisation over all rows.
#[derive(Debug)]
struct Mlp {
    linear1: nn::Linear,
    linear2: nn::Linear,
    bn: nn::BatchNorm,
}

impl Mlp {
    fn new(path: nn::Path, in_features: i64, hidden: i64) -> Self {
        Self {
            linear1: layers::linear(&path / "linear1", in_features, hidden),
            linear2: layers::linear(&path / "linear2", hidden, hidden),
            bn: layers::batch_norm1d(&path / "bn", hidden),
        }
    }

    /// `[..., in] -> [..., hidden]`, computed in the kind of `xs`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let shape = xs.size();
        let rows = xs.reshape([-1, shape[shape.len() - 1]]);
        let pre = apply_linear(&rows, &self.linear1);
        let out_shape = with_last(shape, pre.size()[1]);
        self.tail(pre, train).view(out_shape.as_slice())
    }

    /// Everything after the first Linear: `pre` `[..., hidden]` -> `[..., hidden]`, the
    /// BatchNorm statistics taken over every row of the leading dimensions.
    ///
    /// Both ELUs run in place: a Linear's backward needs its input, not its output, and
    /// the ELU's backward is computed from its result, so overwriting the Linear's output
    /// keeps one tensor of the layer's size fewer alive for the backward pass. `pre` must
    /// own its storage (not be a view): an in-place change of a view makes autograd copy
    /// the whole gradient back through the base tensor.
    fn tail(&self, mut pre: Tensor, train: bool) -> Tensor {
        let shape = pre.size();
        let width = shape[shape.len() - 1];
        let _ = pre.elu_();
        let mut hidden = apply_linear(&pre.view([-1, width]), &self.linear2);
        let _ = hidden.elu_();
        let out_shape = with_last(shape, hidden.size()[1]);
        hidden.apply_t(&self.bn, train).view(out_shape.as_slice())
    }
}

/// `shape` with its last dimension replaced by `last`.
fn with_last(mut shape: Vec<i64>, last: i64) -> Vec<i64> {
    *shape.last_mut().expect("at least one dimension") = last;
    shape
}

/// `xs [rows, in] -> [rows, out]` through `linear`, in the kind of `xs`.
fn apply_linear(xs: &Tensor, linear: &nn::Linear) -> Tensor {
    linear_in_kind(xs, &linear.ws, linear.bs.as_ref())
}

/// `xs W^T + b` in the kind of `xs`: the variables stay fp32 and are cast for the product,
/// so their gradients arrive in fp32.
///
/// On the CPU the product runs as a 1x1 convolution (see [`pointwise_conv`]).
fn linear_in_kind(xs: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let kind = xs.kind();
    let bias = bias.map(|b| cast(b, kind));
    let weight = cast(weight, kind);
    if xs.device() == Device::Cpu {
        pointwise_conv(xs, &weight, bias.as_ref())
    } else {
        xs.linear(&weight, bias.as_ref())
    }
}

/// `xs [..., in] W^T + b -> [..., out]` as a 1x1 convolution over an `[1, in, rows, 1]`
/// channels-last view of `xs`, `rows` the product of the leading dimensions.
///
/// The same function as a Linear. On the CPU libtorch hands a channels-last convolution to
/// oneDNN, whose kernels run the relation encoder's `[rows, 256] x [256, 256]` products
/// (forward and both gradients, fp32 and bf16) faster than the matrix product behind a
/// Linear (see BENCHMARKS.md). The result owns the convolution's output without being an
/// autograd view of it, so an in-place ELU on it does not make autograd copy its gradient
/// back through the view. No rows: a plain Linear (a convolution needs a non-empty input).
fn pointwise_conv(xs: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Tensor {
    let shape = xs.size();
    let (in_features, out_features) = (shape[shape.len() - 1], weight.size()[0]);
    let rows = xs.numel() as i64 / in_features.max(1);
    if rows == 0 {
        return xs.linear(weight, bias);
    }
    // `[rows, in]` row-major is `[1, in, rows, 1]` channels-last.
    let input = xs.reshape([1, rows, 1, in_features]).permute([0, 3, 1, 2]);
    let kernel = weight.reshape([out_features, in_features, 1, 1]);
    let out = input.conv2d(&kernel, bias, [1, 1], [0, 0], [1, 1], 1);
    // The output is channels-last too, so `[1, rows, 1, out]` after the permutation is
    // contiguous (`contiguous` copies only where libtorch chose another layout).
    out.permute([0, 2, 3, 1])
        .contiguous()
        .internal_unsafe_view(with_last(shape, out_features).as_slice())
}

/// `t` in `kind` (the same tensor when it already is).
fn cast(t: &Tensor, kind: Kind) -> Tensor {
    if t.kind() == kind {
        t.shallow_clone()
    } else {
        t.to_kind(kind)
    }
}

/// The edges `(receiver i, sender j)`, `i != j`, in row-major order of the off-diagonal
/// entries of an `S x S` matrix: `(receivers, senders)`, each of length `S (S - 1)`.
pub fn edge_endpoints(slots: i64) -> (Vec<i64>, Vec<i64>) {
    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    for receiver in 0..slots {
        for sender in (0..slots).filter(|&sender| sender != receiver) {
            receivers.push(receiver);
            senders.push(sender);
        }
    }
    (receivers, senders)
}

/// `m_eta`: slots `z` `[n, S, D]` -> edge-type logits `[n, E, K]`, `E = S (S - 1)`.
///
/// With `h` the hidden width and edges ordered as [`edge_endpoints`]:
/// 1. `h1_i = mlp1(z_i)` (nodes);
/// 2. `e1_ij = mlp2(cat[h1_j, h1_i])` for the edge into receiver `i` from sender `j`;
/// 3. `h2_i = mlp3(sum_j e1_ij / S)`;
/// 4. `e2_ij = mlp4(cat[h2_j, h2_i, e1_ij])`;
/// 5. `logits_ij = out(e2_ij)`, a Linear(h, K).
///
/// Each MLP is Linear -> ELU -> Linear -> ELU -> BatchNorm1d over all its rows.
/// Variables: `mlp1` .. `mlp4` (each `linear1`, `linear2`, `bn`) and `out`.
#[derive(Debug)]
pub struct RelationEncoder {
    mlp1: Mlp,
    mlp2: Mlp,
    mlp3: Mlp,
    mlp4: Mlp,
    out: nn::Linear,
    slots: i64,
    hidden: i64,
    /// Receiver slot of each edge, i64 `[E]`.
    receivers: Tensor,
    /// Sender slot of each edge, i64 `[E]`.
    senders: Tensor,
    /// The kind [`Self::forward`] computes in; `None`: the kind of its input.
    compute: Option<Kind>,
}

impl RelationEncoder {
    /// Creates the encoder for `slots` (at least 2) slots of `slot_dim` numbers, `hidden`
    /// units wide, predicting `edge_types` edge types. The edge indices live on the
    /// path's device and are moved to the input's device when they differ.
    pub fn new(path: &nn::Path, slot_dim: i64, hidden: i64, edge_types: i64, slots: i64) -> Self {
        let (receivers, senders) = edge_endpoints(slots);
        let device = path.device();
        Self {
            mlp1: Mlp::new(path / "mlp1", slot_dim, hidden),
            mlp2: Mlp::new(path / "mlp2", 2 * hidden, hidden),
            mlp3: Mlp::new(path / "mlp3", hidden, hidden),
            mlp4: Mlp::new(path / "mlp4", 3 * hidden, hidden),
            out: layers::linear(path / "out", hidden, edge_types),
            slots,
            hidden,
            receivers: Tensor::from_slice(&receivers).to_device(device),
            senders: Tensor::from_slice(&senders).to_device(device),
            compute: None,
        }
    }

    /// The same encoder, [`Self::forward`] computing in `compute` (see
    /// [`Self::forward_in`]; `None`: in the kind of its input).
    pub fn computing_in(self, compute: Option<Kind>) -> Self {
        Self { compute, ..self }
    }

    /// Number of slots `S` (graph nodes).
    pub fn slots(&self) -> i64 {
        self.slots
    }

    /// Number of edges `E = S (S - 1)`.
    pub fn edges(&self) -> i64 {
        self.slots * (self.slots - 1)
    }

    /// `[n, S, D] -> [n, E, K]`, computed as the layers read: gathered and concatenated
    /// node features per edge, and a one-hot matrix product for the edge -> node sum.
    pub fn forward_plain(&self, z: &Tensor, train: bool) -> Tensor {
        let h1 = self.mlp1.forward_t(z, train);

        let (senders, receivers) = self.endpoints(z.device());
        let edges = Tensor::cat(
            &[h1.index_select(1, &senders), h1.index_select(1, &receivers)],
            -1,
        );
        let e1 = self.mlp2.forward_t(&edges, train);

        let one_hot = self.receiver_one_hot(z.device(), e1.kind());
        let incoming = one_hot.tr().matmul(&e1) / self.slots as f64;
        let h2 = self.mlp3.forward_t(&incoming, train);

        let edges = Tensor::cat(
            &[
                h2.index_select(1, &senders),
                h2.index_select(1, &receivers),
                e1,
            ],
            -1,
        );
        let e2 = self.mlp4.forward_t(&edges, train);
        e2.linear(&self.out.ws, self.out.bs.as_ref())
    }

    /// `[n, S, D] -> [n, E, K]`: the same function as [`Self::forward_plain`], faster.
    ///
    /// The first Linear of `mlp2` on `cat[h1_j, h1_i]` is `A h1_j + B h1_i + b`, so
    /// `A h1` and `B h1 + b` are computed once per node (`[n, S, h]`), then gathered
    /// (senders) and broadcast (receivers) per edge; `mlp4`'s first Linear is split
    /// likewise into sender, receiver and edge blocks, only the edge block a product per
    /// edge. Edges into one receiver are contiguous, so the edge -> node sum is a reshape
    /// and a sum over `S - 1` edges.
    ///
    /// Computes in the kind chosen by [`Self::computing_in`] (by default, that of `z`).
    pub fn forward(&self, z: &Tensor, train: bool) -> Tensor {
        self.forward_in(z, train, self.compute.unwrap_or(z.kind()))
    }

    /// [`Self::forward`] with the activations and matrix products in `compute` (`Float`,
    /// or `BFloat16` for the matrix units of CPUs and GPUs that have them); parameters,
    /// BatchNorm statistics and the returned logits stay in the kind of `z`.
    pub fn forward_in(&self, z: &Tensor, train: bool, compute: Kind) -> Tensor {
        let n = z.size()[0];
        let h1 = self.mlp1.forward_t(&cast(z, compute), train);

        let e1 = self
            .mlp2
            .tail(self.edge_linear(&self.mlp2.linear1, &h1, None), train);

        let per_receiver = e1.view([n, self.slots, self.slots - 1, self.hidden]);
        let incoming = per_receiver.sum_dim_intlist(2, false, None) / self.slots as f64;
        let h2 = self.mlp3.forward_t(&incoming, train);

        let e2 = self
            .mlp4
            .tail(self.edge_linear(&self.mlp4.linear1, &h2, Some(&e1)), train);
        apply_linear(&e2, &self.out)
            .to_kind(z.kind())
            .view([n, self.edges(), -1])
    }

    /// The training-mode [`Self::forward`] without autograd, when it applies (fp32 on the
    /// CPU; `None` otherwise): logits `[n, E, K]` that require no gradient, and what
    /// [`fused::Saved::backward`] needs to turn their gradient into those of `z` and of
    /// the encoder's variables. Updates the BatchNorm running statistics, as the
    /// training-mode forward does. See [`fused`].
    pub fn forward_fused(&self, z: &Tensor) -> Option<(Tensor, fused::Saved)> {
        fused::applies(self, z).then(|| fused::forward(self, z))
    }

    /// A Linear on `cat[node_j, node_i(, skip_ij)]` for every edge, without forming the
    /// concatenation: `nodes [n, S, h]`, `skip` (any shape holding `[n E, h]` in edge
    /// order) -> `[n, S, S - 1, out]` without `skip`, `[n E, out]` with it (edges in
    /// order, receiver-major in both).
    ///
    /// The sender block runs per node and is gathered per edge; the receiver block (with
    /// the bias) runs per node and is broadcast over the `S - 1` contiguous edges of each
    /// receiver; the edge block, when present, is one matrix product per edge onto which
    /// both node terms are added in place.
    fn edge_linear(&self, linear: &nn::Linear, nodes: &Tensor, skip: Option<&Tensor>) -> Tensor {
        let (n, s, h) = (nodes.size()[0], self.slots, self.hidden);
        let sender_weight = linear.ws.narrow(1, 0, h);
        let receiver_weight = linear.ws.narrow(1, h, h);
        let from_sender = linear_in_kind(nodes, &sender_weight, None);
        let at_receiver = linear_in_kind(nodes, &receiver_weight, linear.bs.as_ref());
        let width = from_sender.size()[2];

        let senders = self.senders.to_device(nodes.device());
        let per_receiver = from_sender
            .index_select(1, &senders)
            .view([n, s, s - 1, width]);
        match skip {
            Some(skip) => {
                // The edge block's product, then the node terms added onto it in place:
                // `[n E, out]`, which owns its storage like the sum below.
                let skip_weight = linear.ws.narrow(1, 2 * h, h);
                let mut edges = linear_in_kind(&skip.view([-1, h]), &skip_weight, None)
                    .internal_unsafe_view([n, s, s - 1, width]);
                let _ = edges.g_add_(&per_receiver);
                let _ = edges.g_add_(&at_receiver.unsqueeze(2));
                edges.internal_unsafe_view([n * self.edges(), width])
            }
            // `[n, S, S - 1, out]`, which owns its storage: the ELU after it runs in place.
            None => per_receiver + at_receiver.unsqueeze(2),
        }
    }

    /// Sender and receiver slot of each edge on `device`: i64 `[E]` each.
    fn endpoints(&self, device: Device) -> (Tensor, Tensor) {
        (
            self.senders.to_device(device),
            self.receivers.to_device(device),
        )
    }

    /// One-hot receiver of each edge, in `kind`: `[E, S]`.
    fn receiver_one_hot(&self, device: Device, kind: Kind) -> Tensor {
        self.receivers
            .to_device(device)
            .one_hot(self.slots)
            .to_kind(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_compare::relative;

    #[test]
    fn edges_are_the_row_major_off_diagonal() {
        let (receivers, senders) = edge_endpoints(3);
        assert_eq!(receivers, vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(senders, vec![1, 2, 0, 2, 0, 1]);
        assert_eq!(edge_endpoints(8).0.len(), 56);
    }

    #[test]
    fn pointwise_conv_is_a_linear_in_value_and_gradient() {
        let (xs, weight, bias, probe) = crate::test_rng::seeded(8, || {
            let opts = (Kind::Float, Device::Cpu);
            (
                Tensor::randn([3, 7, 5], opts).set_requires_grad(true),
                Tensor::randn([4, 5], opts).set_requires_grad(true),
                Tensor::randn([4], opts).set_requires_grad(true),
                Tensor::randn([3, 7, 4], opts),
            )
        });
        let inputs = [&xs, &weight, &bias];
        // An in-place ELU after the product, as the MLPs run it: its backward must reach
        // the convolution's inputs unchanged.
        let run = |conv: bool| {
            let mut out = if conv {
                pointwise_conv(&xs, &weight, Some(&bias))
            } else {
                xs.linear(&weight, Some(&bias))
            };
            assert_eq!(out.size(), [3, 7, 4]);
            let _ = out.elu_();
            let grads = Tensor::run_backward(&[(&out * &probe).sum(None)], &inputs, false, false);
            (out.detach(), grads)
        };
        let (conv, conv_grads) = run(true);
        let (linear, linear_grads) = run(false);
        assert!(relative(&conv, &linear) < 1e-6);
        for (a, b) in conv_grads.iter().zip(&linear_grads) {
            assert_eq!(a.size(), b.size());
            assert!(relative(a, b) < 1e-6, "gradient off by {}", relative(a, b));
        }
        // Two dimensions, no bias: the plain matrix product.
        let rows = xs.detach().view([21, 5]);
        let product = pointwise_conv(&rows, &weight.detach(), None);
        assert_eq!(product.size(), [21, 4]);
        assert!(relative(&product, &rows.matmul(&weight.detach().tr())) < 1e-6);
        let empty = pointwise_conv(&rows.narrow(0, 0, 0), &weight.detach(), None);
        assert_eq!(empty.size(), [0, 4]);
    }

    #[test]
    fn fast_and_plain_paths_agree_in_value_and_gradient() {
        let (vs, encoder, z, probe) = crate::test_rng::seeded(21, || {
            let vs = nn::VarStore::new(Device::Cpu);
            let encoder = RelationEncoder::new(&vs.root(), 3, 16, 2, 4);
            let z = Tensor::randn([5, 4, 3], (Kind::Float, Device::Cpu));
            let probe = Tensor::randn([5, 12, 2], (Kind::Float, Device::Cpu));
            (vs, encoder, z.set_requires_grad(true), probe)
        });
        assert_eq!(encoder.edges(), 12);

        let mut inputs: Vec<Tensor> = vec![z.shallow_clone()];
        inputs.extend(vs.trainable_variables());
        let run = |fast: bool| {
            let logits = if fast {
                encoder.forward(&z, true)
            } else {
                encoder.forward_plain(&z, true)
            };
            assert_eq!(logits.size(), [5, 12, 2]);
            let grads =
                Tensor::run_backward(&[(&logits * &probe).sum(None)], &inputs, false, false);
            (logits.detach(), grads)
        };
        let (fast, fast_grads) = run(true);
        let (plain, plain_grads) = run(false);
        assert!(fast.allclose(&plain, 1e-5, 1e-5, false));
        for (a, b) in fast_grads.iter().zip(&plain_grads) {
            let scale = b.norm().double_value(&[]).max(1e-6);
            let error = (a - b).norm().double_value(&[]) / scale;
            assert!(error < 1e-4, "relative gradient error {error}");
        }
    }

    /// The fused forward and backward against autograd through the plain forward: logits,
    /// the input's and every variable's gradient, and the running statistics.
    fn check_fused_against_plain(views: i64, slot_dim: i64, hidden: i64, slots: i64, seed: i64) {
        let make = || {
            crate::test_rng::seeded(seed, || {
                let vs = nn::VarStore::new(Device::Cpu);
                let encoder = RelationEncoder::new(&vs.root(), slot_dim, hidden, 2, slots);
                (vs, encoder)
            })
        };
        let (z, probe) = crate::test_rng::seeded(seed + 1, || {
            let opts = (Kind::Float, Device::Cpu);
            let edges = slots * (slots - 1);
            (
                Tensor::randn([views, slots, slot_dim], opts) * 2.0 + 0.5,
                Tensor::randn([views, edges, 2], opts),
            )
        });
        let (plain_vs, plain_encoder) = make();
        let (mut fused_vs, fused_encoder) = make();
        // The same values, whatever other tests drew from the generator meanwhile.
        fused_vs.copy(&plain_vs).unwrap();

        let z_leaf = z.set_requires_grad(true);
        let logits = plain_encoder.forward_plain(&z_leaf, true);
        let mut inputs = vec![z_leaf.shallow_clone()];
        inputs.extend(plain_vs.trainable_variables());
        let plain_grads =
            Tensor::run_backward(&[(&logits * &probe).sum(None)], &inputs, false, false);

        let (fused_logits, saved) = fused_encoder.forward_fused(&z).expect("fp32 on the CPU");
        assert!(!fused_logits.requires_grad());
        assert!(relative(&fused_logits, &logits.detach()) < 1e-5);
        let grads = saved.backward(&probe);
        assert!(
            relative(&grads.input, &plain_grads[0]) < 1e-4,
            "input gradient"
        );
        let plain_names: Vec<(String, Tensor)> = plain_vs.variables().into_iter().collect();
        let fused_names: Vec<(String, Tensor)> = fused_vs.variables().into_iter().collect();
        let trainable = plain_vs.trainable_variables();
        assert_eq!(grads.variables.len(), trainable.len());
        for (variable, grad) in &grads.variables {
            let (name, _) = fused_names
                .iter()
                .find(|(_, t)| t.data_ptr() == variable.data_ptr())
                .expect("a variable of the store");
            let index = trainable
                .iter()
                .position(|t| {
                    plain_names
                        .iter()
                        .any(|(n, p)| n == name && p.data_ptr() == t.data_ptr())
                })
                .expect("the same variable in the plain store");
            let error = relative(grad, &plain_grads[index + 1]);
            assert_eq!(grad.size(), variable.size(), "{name}");
            assert!(error < 1e-4, "{name}: relative gradient error {error}");
        }
        for (name, plain) in &plain_names {
            if name.contains("running") {
                let fused = &fused_names.iter().find(|(n, _)| n == name).unwrap().1;
                assert!(relative(fused, plain) < 1e-5, "{name}");
            }
        }
    }

    #[test]
    fn fused_training_pass_matches_autograd() {
        check_fused_against_plain(5, 3, 16, 4, 51);
        check_fused_against_plain(3, 8, 32, 8, 52);
        check_fused_against_plain(16, 4, 8, 2, 53);
    }

    #[test]
    fn bf16_follows_fp32_and_keeps_fp32_gradients() {
        let (vs, encoder, z) = crate::test_rng::seeded(33, || {
            let vs = nn::VarStore::new(Device::Cpu);
            let encoder = RelationEncoder::new(&vs.root(), 8, 64, 2, 8);
            let z = Tensor::randn([16, 8, 8], (Kind::Float, Device::Cpu));
            (vs, encoder, z)
        });
        let variables = vs.trainable_variables();
        let run = |compute: Kind| {
            let logits = encoder.forward_in(&z, true, compute);
            assert_eq!(logits.kind(), Kind::Float);
            assert_eq!(logits.size(), [16, 56, 2]);
            let loss = (&logits * &logits).mean(Kind::Float);
            let grads = Tensor::run_backward(&[loss], &variables, false, false);
            (logits.detach(), grads)
        };
        let (full, full_grads) = run(Kind::Float);
        let (half, half_grads) = run(Kind::BFloat16);
        // bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9); through five layers
        // the logits stay within a few percent of fp32, never equal to it.
        let error = relative(&half, &full);
        assert!(error > 1e-5 && error < 5e-2, "logits off by {error}");
        let (mut diff_sq, mut full_sq) = (0.0, 0.0);
        for (h, f) in half_grads.iter().zip(&full_grads) {
            assert_eq!(h.kind(), Kind::Float, "parameter gradients are fp32");
            diff_sq += (h - f).norm().double_value(&[]).powi(2);
            full_sq += f.norm().double_value(&[]).powi(2);
        }
        let error = (diff_sq / full_sq).sqrt();
        assert!(error < 0.1, "gradient off by {error}");
    }

    #[test]
    fn eval_mode_is_per_view() {
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let encoder = RelationEncoder::new(&vs.root(), 8, 32, 2, 8);
        let z = Tensor::randn([3, 8, 8], (Kind::Float, Device::Cpu));
        let batch = encoder.forward(&z, false);
        let alone = encoder.forward(&z.narrow(0, 1, 1), false);
        assert_eq!(batch.size(), [3, 56, 2]);
        assert!(batch.narrow(0, 1, 1).allclose(&alone, 1e-5, 1e-5, false));
    }
}
