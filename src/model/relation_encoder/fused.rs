//! The relation encoder's training forward and its backward written out by hand, for fp32
//! on the CPU: the same function as [`RelationEncoder::forward`], with every element-wise
//! pass over the `[R, h]` edge tensors (`R = n S (S - 1)` edges) fused into one of
//! [`crate::model::kernels`].
//!
//! Autograd would run each ELU, BatchNorm, gather and sum as its own pass and keep each
//! result; here the edge section of a step keeps four `[R, h]` tensors (the inputs of the
//! two hidden products of `mlp2` and `mlp4` and the outputs of their last ELUs) and runs
//! four element-wise passes forward and six backward. Two identities keep BatchNorm
//! outputs off the edges: in training a BatchNorm is the per-channel affine map
//! `e = a y + c` (`a = gamma / sigma`, `c = beta - a mu`), so `mlp4`'s edge block
//! `e1 C^T` is computed as `y (C diag a)^T + C c`, the output layer likewise, and the
//! edge -> node sum of `e1` is `a` times the receivers' sums of `y` plus `(S - 1) c`.
//!
//! [`forward`] runs without autograd and returns the logits with a [`Saved`];
//! [`Saved::backward`] turns the logits' gradient into the input's and every
//! variable's. The BatchNorm running statistics are updated as `nn::BatchNorm` does.

use tch::{Device, Kind, Tensor};

use super::{pointwise_conv, Mlp, RelationEncoder};
use crate::model::batch_stats::BatchStats as Norm;
use crate::model::kernels::{self, floats, floats_mut, from_f64, to_vec, EdgeShape};

/// Whether [`forward`] computes `encoder` on `z`: fp32 on the CPU, no other compute kind.
pub(super) fn applies(encoder: &RelationEncoder, z: &Tensor) -> bool {
    z.device() == Device::Cpu
        && z.kind() == Kind::Float
        && encoder.compute.unwrap_or(Kind::Float) == Kind::Float
        && encoder.slots >= 2
}

/// What the backward pass needs of one forward pass.
#[derive(Debug)]
pub struct Saved {
    shape: EdgeShape,
    /// Shape of the input `z`, `[n, S, D]`.
    input_shape: Vec<i64>,
    mlp1: NodeSaved,
    /// `mlp1`'s output `[n S, h]`.
    h1: Tensor,
    /// `mlp2`'s first ELU output, `[R, h]`.
    u2: Tensor,
    /// `mlp2`'s second ELU output (before its BatchNorm), `[R, h]`.
    y2: Tensor,
    norm2: Norm,
    /// Sums of `y2` over each receiver's edges, `[n S, h]`.
    y2_receiver_sums: Tensor,
    mlp3: NodeSaved,
    /// `mlp3`'s output `[n S, h]`.
    h2: Tensor,
    /// `mlp4`'s first ELU output, `[R, h]`.
    u4: Tensor,
    /// `mlp4`'s second ELU output (before its BatchNorm), `[R, h]`.
    y4: Tensor,
    norm4: Norm,
    /// The encoder's variables, detached, in [`Grads::variables`] order.
    weights: Weights,
}

/// The gradients of one backward pass.
#[derive(Debug)]
pub struct Grads {
    /// Gradient of the input `z`, `[n, S, D]`.
    pub input: Tensor,
    /// `(variable, gradient)` for every trainable variable of the encoder.
    pub variables: Vec<(Tensor, Tensor)>,
}

/// The encoder's variables, detached from autograd.
#[derive(Debug)]
struct Weights {
    mlps: [MlpWeights; 4],
    out_weight: Tensor,
    out_bias: Tensor,
    /// The variables themselves (not detached), in the order of [`Self::flat`].
    originals: Vec<Tensor>,
}

#[derive(Debug)]
struct MlpWeights {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

impl Weights {
    fn of(encoder: &RelationEncoder) -> Self {
        let mut originals = Vec::new();
        let mut take = |t: &Tensor| {
            originals.push(t.shallow_clone());
            t.detach()
        };
        let mut mlp = |m: &Mlp| {
            let weights = MlpWeights {
                w1: take(&m.linear1.ws),
                b1: take(m.linear1.bs.as_ref().expect("Linear with bias")),
                w2: take(&m.linear2.ws),
                b2: take(m.linear2.bs.as_ref().expect("Linear with bias")),
            };
            // The BatchNorm's variables, whose values `BatchStats` reads from the layer.
            let _ = take(m.bn.ws.as_ref().expect("affine BatchNorm"));
            let _ = take(m.bn.bs.as_ref().expect("affine BatchNorm"));
            weights
        };
        let mlps = [
            mlp(&encoder.mlp1),
            mlp(&encoder.mlp2),
            mlp(&encoder.mlp3),
            mlp(&encoder.mlp4),
        ];
        let out_weight = take(&encoder.out.ws);
        let out_bias = take(encoder.out.bs.as_ref().expect("Linear with bias"));
        Self {
            mlps,
            out_weight,
            out_bias,
            originals,
        }
    }
}

/// The gradients of one MLP's variables, in [`Weights::of`] order.
#[derive(Debug)]
struct MlpGrads {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
    gamma: Tensor,
    beta: Tensor,
}

impl MlpGrads {
    fn into_vec(self) -> Vec<Tensor> {
        vec![self.w1, self.b1, self.w2, self.b2, self.gamma, self.beta]
    }
}

/// The autograd-free forward of `encoder` (in training mode) on `z` `[n, S, D]`: logits
/// `[n, E, K]`, and what [`Saved::backward`] needs.
pub(super) fn forward(encoder: &RelationEncoder, z: &Tensor) -> (Tensor, Saved) {
    tch::no_grad(|| forward_inner(encoder, z))
}

fn forward_inner(encoder: &RelationEncoder, z: &Tensor) -> (Tensor, Saved) {
    let input_shape = z.size();
    let (n, s, h) = (input_shape[0], encoder.slots, encoder.hidden);
    let shape = EdgeShape {
        views: n as usize,
        slots: s as usize,
        width: h as usize,
    };
    let rows = shape.rows() as i64;
    let weights = Weights::of(encoder);
    let [w1, w2, w3, w4] = &weights.mlps;

    let z_rows = z.detach().reshape([n * s, -1]).contiguous();
    let (h1, mlp1) = node_forward(&encoder.mlp1, w1, &z_rows);

    // mlp2: sender and receiver blocks per node, then the edges.
    let (sender2, receiver2) = (w2.w1.narrow(1, 0, h), w2.w1.narrow(1, h, h));
    let from_sender = product(&h1, &sender2, None);
    let at_receiver = product(&h1, &receiver2, Some(&w2.b1));
    let mut u2 = Tensor::empty([rows, h], (Kind::Float, Device::Cpu));
    kernels::elu_of_node_terms(
        shape,
        floats(&from_sender),
        floats(&at_receiver),
        floats_mut(&mut u2),
        false,
    );
    let mut y2 = product(&u2, &w2.w2, Some(&w2.b2));
    let mut y2_receiver_sums = Tensor::empty([n * s, h], (Kind::Float, Device::Cpu));
    let sums = kernels::elu_with_moments(
        shape,
        floats_mut(&mut y2),
        floats_mut(&mut y2_receiver_sums),
    );
    let norm2 = Norm::from_sums(&sums, rows, &encoder.mlp2.bn);

    // Edge -> node: the mean of e1 = a y2 + c over each receiver's edges, divided by S.
    let incoming = (&y2_receiver_sums * &norm2.scale + &norm2.shift * (s - 1) as f64) / s as f64;
    let (h2, mlp3) = node_forward(&encoder.mlp3, w3, &incoming);

    // mlp4: node blocks, and the edge block on e1 = a y2 + c as y2 (C diag a)^T + C c.
    let (sender4, receiver4) = (w4.w1.narrow(1, 0, h), w4.w1.narrow(1, h, h));
    let edge4 = w4.w1.narrow(1, 2 * h, h);
    let from_sender = product(&h2, &sender4, None);
    let receiver_bias = &w4.b1 + edge4.mv(&norm2.shift);
    let at_receiver = product(&h2, &receiver4, Some(&receiver_bias));
    let mut u4 = product(&y2, &(&edge4 * norm2.scale.unsqueeze(0)), None);
    kernels::elu_of_node_terms(
        shape,
        floats(&from_sender),
        floats(&at_receiver),
        floats_mut(&mut u4),
        true,
    );
    let mut y4 = product(&u4, &w4.w2, Some(&w4.b2));
    let sums = kernels::elu_rows_with_moments(shape.width, floats_mut(&mut y4));
    let norm4 = Norm::from_sums(&sums, rows, &encoder.mlp4.bn);

    // The output layer on e2 = a y4 + c.
    let out_weight = &weights.out_weight * norm4.scale.unsqueeze(0);
    let out_bias = &weights.out_bias + weights.out_weight.mv(&norm4.shift);
    let logits = y4
        .linear(&out_weight, Some(&out_bias))
        .view([n, s * (s - 1), -1]);

    let saved = Saved {
        shape,
        input_shape,
        mlp1,
        h1,
        u2,
        y2,
        norm2,
        y2_receiver_sums,
        mlp3,
        h2,
        u4,
        y4,
        norm4,
        weights,
    };
    (logits, saved)
}

impl Saved {
    /// The gradients of the input and of every variable, given the logits' gradient
    /// `[n, E, K]`. Consumes the saved tensors (several are overwritten in place).
    pub fn backward(self, logits_grad: &Tensor) -> Grads {
        tch::no_grad(|| self.backward_inner(logits_grad))
    }

    fn backward_inner(mut self, logits_grad: &Tensor) -> Grads {
        let shape = self.shape;
        let (s, h) = (shape.slots as i64, shape.width as i64);
        let rows = shape.rows() as i64;
        let weights = &self.weights;
        let [w1, w2, w3, w4] = &weights.mlps;
        let (norm2, norm4) = (&self.norm2, &self.norm4);

        // Output layer and mlp4's BatchNorm: the logits' gradient gl [R, K] is of rank K
        // per row, so the BatchNorm's sums come from gl^T (y4 - mean) [K, h], and
        // e2 = a (y4 - mean) + beta.
        let gl = logits_grad.reshape([rows, -1]).contiguous();
        let sum_gl = gl.sum_dim_intlist(0, false, Kind::Float);
        let mean4 = to_vec(&norm4.mean);
        let gl_y4 = from_f64(&kernels::low_rank_moments(
            shape,
            floats(&gl),
            floats(&self.y4),
            &mean4,
        ))
        .view([-1, h]);
        let beta4 = &norm4.shift + &norm4.scale * &norm4.mean;
        let out_weight_grad = &gl_y4 * norm4.scale.unsqueeze(0) + sum_gl.outer(&beta4);
        let out_bias_grad = sum_gl.shallow_clone();
        let w_out = &weights.out_weight;
        let beta4_grad = sum_gl.unsqueeze(0).mm(w_out).squeeze_dim(0);
        let gamma4_grad = (&gl_y4 * w_out).sum_dim_intlist(0, false, Kind::Float) * &norm4.inv_std;
        let affine = norm4.backward_affine(&beta4_grad, &gamma4_grad, rows);
        let scaled_out = (w_out * norm4.scale.unsqueeze(0)).contiguous();
        let sums = kernels::affine_backward_low_rank(
            shape,
            floats_mut(&mut self.y4),
            floats(&gl),
            floats(&scaled_out),
            &affine,
        );
        let dv4 = self.y4;
        let b2_4_grad = from_f64(&sums.first);
        let w2_4_grad = dv4.tr().mm(&self.u4);
        let mut du4 = product_t(&dv4, &w4.w2);
        drop(dv4);

        // mlp4's first ELU, then its first Linear's sender, receiver and edge blocks.
        let (sender4_grad, receiver4_grad) = node_term_grads(shape, &mut du4, &self.u4, true);
        drop(self.u4);
        let dpre4 = du4;
        let edge4 = w4.w1.narrow(1, 2 * h, h);
        let b1_4_grad = receiver4_grad.sum_dim_intlist(0, false, Kind::Float);
        let edge4_grad =
            dpre4.tr().mm(&self.y2) * norm2.scale.unsqueeze(0) + b1_4_grad.outer(&norm2.shift);
        let w1_4_grad = Tensor::cat(
            &[
                sender4_grad.tr().mm(&self.h2),
                receiver4_grad.tr().mm(&self.h2),
                edge4_grad,
            ],
            1,
        );
        // e1's gradient from the edge block (its part from mlp3 is added in the pass below).
        let mut e1_grad = product_t(&dpre4, &edge4);
        drop(dpre4);
        let h2_grad = product_t(&sender4_grad, &w4.w1.narrow(1, 0, h))
            + product_t(&receiver4_grad, &w4.w1.narrow(1, h, h));
        let (incoming_grad, mlp3_grads) = node_backward(w3, &self.mlp3, h2_grad);
        // incoming_i = sum_j e1_ij / S: each edge into i receives q_i = incoming_grad_i / S.
        let q = (incoming_grad / s as f64).contiguous();

        // mlp2's BatchNorm, with g = e1_grad + q broadcast over each receiver's edges.
        let moments = kernels::moments_against_rows(
            shape.width,
            floats(&e1_grad),
            floats(&self.y2),
            &to_vec(&norm2.mean),
        );
        let (gamma_edges, beta_edges) =
            norm2.affine_grads(&from_f64(&moments.first), &from_f64(&moments.second));
        let sum_q = q.sum_dim_intlist(0, false, Kind::Float);
        let beta2_grad = beta_edges + &sum_q * (s - 1) as f64;
        let receiver_xhat =
            (&self.y2_receiver_sums - &norm2.mean * (s - 1) as f64) * &norm2.inv_std;
        let gamma2_grad = gamma_edges + (&q * receiver_xhat).sum_dim_intlist(0, false, Kind::Float);
        let affine = norm2.backward_affine(&beta2_grad, &gamma2_grad, rows);
        let sums = kernels::affine_backward_broadcast(
            shape,
            floats_mut(&mut e1_grad),
            floats(&self.y2),
            floats(&q),
            &affine,
        );
        drop(self.y2);
        let dv2 = e1_grad;
        let b2_2_grad = from_f64(&sums.first);
        let w2_2_grad = dv2.tr().mm(&self.u2);
        let mut du2 = product_t(&dv2, &w2.w2);
        drop(dv2);

        // mlp2's first ELU and its first Linear's sender and receiver blocks.
        let (sender2_grad, receiver2_grad) = node_term_grads(shape, &mut du2, &self.u2, false);
        drop(du2);
        let b1_2_grad = receiver2_grad.sum_dim_intlist(0, false, Kind::Float);
        let w1_2_grad = Tensor::cat(
            &[
                sender2_grad.tr().mm(&self.h1),
                receiver2_grad.tr().mm(&self.h1),
            ],
            1,
        );
        let h1_grad = product_t(&sender2_grad, &w2.w1.narrow(1, 0, h))
            + product_t(&receiver2_grad, &w2.w1.narrow(1, h, h));
        let (z_grad, mlp1_grads) = node_backward(w1, &self.mlp1, h1_grad);

        let mlp2_grads = MlpGrads {
            w1: w1_2_grad,
            b1: b1_2_grad,
            w2: w2_2_grad,
            b2: b2_2_grad,
            gamma: gamma2_grad,
            beta: beta2_grad,
        };
        let mlp4_grads = MlpGrads {
            w1: w1_4_grad,
            b1: b1_4_grad,
            w2: w2_4_grad,
            b2: b2_4_grad,
            gamma: gamma4_grad,
            beta: beta4_grad,
        };
        let mut grads = Vec::new();
        for mlp in [mlp1_grads, mlp2_grads, mlp3_grads, mlp4_grads] {
            grads.extend(mlp.into_vec());
        }
        grads.push(out_weight_grad);
        grads.push(out_bias_grad);
        let variables = weights
            .originals
            .iter()
            .map(Tensor::shallow_clone)
            .zip(grads)
            .collect();
        Grads {
            input: z_grad.view(self.input_shape.as_slice()),
            variables,
        }
    }
}

/// The gradients `[n S, h]` of the sender and receiver terms under `u = elu(pre)`, given
/// `du` `[R, h]`; with `write`, `du` becomes `pre`'s gradient.
fn node_term_grads(shape: EdgeShape, du: &mut Tensor, u: &Tensor, write: bool) -> (Tensor, Tensor) {
    let nodes = (shape.views * shape.slots) as i64;
    let options = (Kind::Float, Device::Cpu);
    let mut sender = Tensor::empty([nodes, shape.width as i64], options);
    let mut receiver = Tensor::empty([nodes, shape.width as i64], options);
    kernels::elu_backward_to_nodes(
        shape,
        floats_mut(du),
        floats(u),
        write,
        floats_mut(&mut sender),
        floats_mut(&mut receiver),
    );
    (sender, receiver)
}

/// What a node MLP's backward needs: its input, both ELU outputs and the BatchNorm.
#[derive(Debug)]
struct NodeSaved {
    input: Tensor,
    u: Tensor,
    y: Tensor,
    norm: Norm,
}

/// An MLP over node rows `x` `[r, in]` in training mode, without autograd: `[r, h]`.
fn node_forward(mlp: &Mlp, w: &MlpWeights, x: &Tensor) -> (Tensor, NodeSaved) {
    let mut u = product(x, &w.w1, Some(&w.b1));
    let width = u.size()[1];
    kernels::elu_rows(width as usize, floats_mut(&mut u));
    let mut y = product(&u, &w.w2, Some(&w.b2));
    let sums = kernels::elu_rows_with_moments(width as usize, floats_mut(&mut y));
    let rows = y.size()[0];
    let norm = Norm::from_sums(&sums, rows, &mlp.bn);
    let mut out = Tensor::empty([rows, width], (Kind::Float, Device::Cpu));
    kernels::affine_rows(
        width as usize,
        floats(&y),
        &to_vec(&norm.scale),
        &to_vec(&norm.shift),
        floats_mut(&mut out),
    );
    let saved = NodeSaved {
        input: x.shallow_clone(),
        u,
        y,
        norm,
    };
    (out, saved)
}

/// The backward of [`node_forward`] given its output's gradient `[r, h]` (overwritten):
/// the input's gradient `[r, in]` and the MLP's variables' gradients.
fn node_backward(w: &MlpWeights, saved: &NodeSaved, mut out_grad: Tensor) -> (Tensor, MlpGrads) {
    let (rows, width) = (out_grad.size()[0], out_grad.size()[1] as usize);
    let norm = &saved.norm;
    let moments = kernels::moments_against_rows(
        width,
        floats(&out_grad),
        floats(&saved.y),
        &to_vec(&norm.mean),
    );
    let (gamma, beta) = norm.affine_grads(&from_f64(&moments.first), &from_f64(&moments.second));
    let affine = norm.backward_affine(&beta, &gamma, rows);
    let sums =
        kernels::affine_backward_rows(width, floats_mut(&mut out_grad), floats(&saved.y), &affine);
    let v_grad = out_grad;
    let w2 = v_grad.tr().mm(&saved.u);
    let b2 = from_f64(&sums.first);
    let mut p_grad = product_t(&v_grad, &w.w2);
    let sums = kernels::elu_backward_rows(width, floats_mut(&mut p_grad), floats(&saved.u));
    let w1 = p_grad.tr().mm(&saved.input);
    let b1 = from_f64(&sums.first);
    let input = product_t(&p_grad, &w.w1);
    let grads = MlpGrads {
        w1,
        b1,
        w2,
        b2,
        gamma,
        beta,
    };
    (input, grads)
}

/// `x W^T (+ b)`: `x` `[r, in]`, `w` `[out, in]` -> `[r, out]`, contiguous.
fn product(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Tensor {
    pointwise_conv(&x.contiguous(), &w.contiguous(), bias).contiguous()
}

/// `g W`: `g` `[r, out]`, `w` `[out, in]` -> `[r, in]`, contiguous.
fn product_t(g: &Tensor, w: &Tensor) -> Tensor {
    product(g, &w.tr(), None)
}
