//! Element-wise passes of the hand-written training passes (the relation encoder's and
//! the relation head's), each fused into one pass over its tensors, and the access to a
//! tensor's numbers that they work on.
//!
//! Edge tensors are `[n, S, S - 1, h]` row-major f32 (`R = n S (S - 1)` rows of `h`
//! numbers): row `(v, i, jj)` is the edge of view `v` into receiver `i` from sender
//! `j = jj` (`jj < i`) or `jj + 1` (`jj >= i`), the order of
//! [`super::relation_encoder::edge_endpoints`]. Node tensors are `[n, S, h]`; the relation
//! head's pass rows are gathered from per-view tables ([`PairRows`]). The passes run in
//! parallel over views (or blocks of rows) on rayon's pool; per-channel sums are kept in
//! f32 within a view and in f64 across views, added in a fixed order.
//!
//! ELU (alpha 1) is `x` for `x > 0` and `exp(x) - 1` otherwise; its derivative, read off
//! its result `y`, is 1 for `y > 0` and `y + 1` otherwise, as libtorch computes it.

use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

/// The numbers of a contiguous f32 CPU tensor.
pub(crate) fn floats(t: &Tensor) -> &[f32] {
    assert_float_buffer(t);
    if t.numel() == 0 {
        return &[];
    }
    // SAFETY: a non-empty contiguous f32 CPU tensor holds `numel` floats at `data_ptr`,
    // alive while `t` is borrowed.
    unsafe { std::slice::from_raw_parts(t.data_ptr() as *const f32, t.numel()) }
}

/// The numbers of a contiguous f32 CPU tensor, to write. The tensor must own its storage
/// alone (no other tensor viewing it is read meanwhile).
pub(crate) fn floats_mut(t: &mut Tensor) -> &mut [f32] {
    assert_float_buffer(t);
    if t.numel() == 0 {
        return &mut [];
    }
    // SAFETY: as in `floats`; `t` is borrowed mutably for the slice's life.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, t.numel()) }
}

fn assert_float_buffer(t: &Tensor) {
    assert!(
        t.kind() == Kind::Float && t.device() == Device::Cpu && t.is_contiguous(),
        "expected a contiguous f32 CPU tensor, got {:?} on {:?}",
        t.kind(),
        t.device()
    );
}

/// A tensor's numbers as a vector of f32.
pub(crate) fn to_vec(t: &Tensor) -> Vec<f32> {
    let t = t.contiguous();
    floats(&t).to_vec()
}

/// An f32 tensor of f64 numbers.
pub(crate) fn from_f64(v: &[f64]) -> Tensor {
    Tensor::from_slice(v).to_kind(Kind::Float)
}

/// `exp(x) - 1` for `x <= 0`, to a few units in the last place: `x = k ln 2 + r` with
/// `|r| <= ln 2 / 2`, `expm1(r)` from its Taylor series to `r^8` (truncation below
/// `3e-10`), then `2^k expm1(r) + (2^k - 1)`. Written without branches so that loops over
/// it vectorise.
#[inline(always)]
fn expm1_nonpositive<M: Madd>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let shifted = M::madd(x, LOG2E, ROUND);
    let k = shifted - ROUND;
    let k_int = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = M::madd(-k, LN2_LO, M::madd(-k, LN2_HI, x));
    let series = 1.0 / 40320.0;
    let series = M::madd(series, r, 1.0 / 5040.0);
    let series = M::madd(series, r, 1.0 / 720.0);
    let series = M::madd(series, r, 1.0 / 120.0);
    let series = M::madd(series, r, 1.0 / 24.0);
    let series = M::madd(series, r, 1.0 / 6.0);
    let series = M::madd(series, r, 0.5);
    let expm1_r = M::madd(series * r, r, r);
    let scale = f32::from_bits((k_int.wrapping_add(127) << 23) as u32);
    M::madd(scale, expm1_r, scale - 1.0)
}

/// ELU with alpha 1, as `max(x, 0) + expm1(min(x, 0))` (`expm1(0)` is exactly 0 here).
///
/// Arithmetic rather than a select: for `y = elu(x)` stored over `x`, a select lets the
/// compiler see that nothing changes where `x > 0` and emit masked stores, which are slow
/// on some CPUs.
#[inline(always)]
pub(crate) fn elu<M: Madd>(x: f32) -> f32 {
    x.max(0.0) + expm1_nonpositive::<M>(x.min(0.0))
}

/// `a b + c`, fused into one rounding ([`Fused`], where the CPU has FMA) or not
/// ([`Separate`]).
pub(crate) trait Madd {
    fn madd(a: f32, b: f32, c: f32) -> f32;
}

/// [`Madd`] with one rounding: only where the CPU has FMA (elsewhere a slow library call).
pub(crate) struct Fused;

/// [`Madd`] as a product and a sum.
pub(crate) struct Separate;

impl Madd for Fused {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl Madd for Separate {
    #[inline(always)]
    fn madd(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// The ELU's derivative from its result `y`: 1 for `y > 0`, `y + 1` otherwise.
#[inline(always)]
fn elu_slope(y: f32) -> f32 {
    y.min(0.0) + 1.0
}

/// Runs `$call` (a call of `#[inline(always)]` functions) compiled for AVX2 and FMA when
/// the CPU has them, else for the baseline; with `M => $call`, `M` names the [`Madd`] to
/// use ([`Fused`] or [`Separate`]).
macro_rules! with_simd {
    ($m:ident => $call:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx2,fma")]
            unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
                f()
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                #[allow(dead_code)]
                type $m = Fused;
                // SAFETY: the features were detected on this CPU.
                unsafe { wide(|| $call) }
            } else {
                #[allow(dead_code)]
                type $m = Separate;
                $call
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            #[allow(dead_code)]
            type $m = Separate;
            $call
        }
    }};
    ($call:expr) => {
        with_simd!(Unused => $call)
    };
}

/// The sizes of an edge tensor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgeShape {
    /// Views `n`.
    pub views: usize,
    /// Slots `S`.
    pub slots: usize,
    /// Channels `h`.
    pub width: usize,
}

impl EdgeShape {
    fn node_len(&self) -> usize {
        self.slots * self.width
    }

    fn edge_len(&self) -> usize {
        self.slots * (self.slots - 1) * self.width
    }

    /// Edge rows `R`.
    pub fn rows(&self) -> usize {
        self.views * self.slots * (self.slots - 1)
    }
}

/// Per-channel sums in f64: `[h]` each.
#[derive(Debug, Clone)]
pub(crate) struct ChannelSums {
    pub first: Vec<f64>,
    pub second: Vec<f64>,
}

/// Views summed together, in order, before blocks are added (in order): the sums do not
/// depend on how the blocks were spread over threads.
const VIEWS_PER_BLOCK: usize = 32;

/// Sums over views of `count` per-channel quantities, `[count, h]` flattened: `kernel`
/// adds one view's into `[count, h]` f32 accumulators, which are added into f64 totals.
fn per_view_totals<T: Send>(
    width: usize,
    count: usize,
    items: impl IndexedParallelIterator<Item = T>,
    kernel: impl Fn(T, &mut [f32]) + Sync + Send,
) -> Vec<f64> {
    let blocks: Vec<Vec<f64>> = items
        .chunks(VIEWS_PER_BLOCK)
        .map(|block| {
            let mut view = vec![0.0f32; count * width];
            let mut total = vec![0.0f64; count * width];
            for item in block {
                view.fill(0.0);
                kernel(item, &mut view);
                for (t, v) in total.iter_mut().zip(&view) {
                    *t += *v as f64;
                }
            }
            total
        })
        .collect();
    let mut total = vec![0.0f64; count * width];
    for block in blocks {
        for (t, b) in total.iter_mut().zip(block) {
            *t += b;
        }
    }
    total
}

/// [`per_view_totals`] of two quantities.
fn per_view_sums<T: Send>(
    width: usize,
    items: impl IndexedParallelIterator<Item = T>,
    kernel: impl Fn(T, &mut [f32], &mut [f32]) + Sync + Send,
) -> ChannelSums {
    let mut totals = per_view_totals(width, 2, items, |item, acc| {
        let (first, second) = acc.split_at_mut(width);
        kernel(item, first, second)
    });
    let second = totals.split_off(width);
    ChannelSums {
        first: totals,
        second,
    }
}

/// `gl^T (y - center)` `[K, h]` in f64: `gl` `[R, K]`, `y` an edge tensor, `center` `[h]`.
pub(crate) fn low_rank_moments(
    shape: EdgeShape,
    gl: &[f32],
    y: &[f32],
    center: &[f32],
) -> Vec<f64> {
    check(shape, &[y], &[]);
    assert_eq!(center.len(), shape.width, "center");
    let h = shape.width;
    let k = gl.len() / shape.rows();
    assert_eq!(gl.len(), shape.rows() * k, "output gradient");
    let edges = shape.edge_len() / h;
    let items = gl.par_chunks(edges * k).zip(y.par_chunks(shape.edge_len()));
    per_view_totals(h, k, items, |(gl, y), acc| {
        with_simd!(low_rank_moments_view(h, k, gl, y, center, acc))
    })
}

#[inline(always)]
fn low_rank_moments_view(
    h: usize,
    k: usize,
    gl: &[f32],
    y: &[f32],
    center: &[f32],
    acc: &mut [f32],
) {
    for (gl, y) in gl.chunks_exact(k).zip(y.chunks_exact(h)) {
        for (t, g) in gl.iter().enumerate() {
            for ((a, y), center) in acc[t * h..(t + 1) * h].iter_mut().zip(y).zip(center) {
                *a += g * (y - center);
            }
        }
    }
}

/// `out_(v,i,jj) = elu(sender_(v,j) + receiver_(v,i))`, or with `onto` set
/// `out = elu(out + sender_(v,j) + receiver_(v,i))`: the first ELU of an edge MLP whose
/// first Linear was split into per-node terms (and, with `onto`, a per-edge product
/// already in `out`). `sender`, `receiver` `[n, S, h]`, `out` `[n, S, S - 1, h]`.
pub(crate) fn elu_of_node_terms(
    shape: EdgeShape,
    sender: &[f32],
    receiver: &[f32],
    out: &mut [f32],
    onto: bool,
) {
    check(shape, &[sender, receiver], &[out]);
    let (s, h) = (shape.slots, shape.width);
    out.par_chunks_mut(shape.edge_len())
        .zip(sender.par_chunks(shape.node_len()))
        .zip(receiver.par_chunks(shape.node_len()))
        .for_each(|((out, sender), receiver)| {
            with_simd!(M => elu_of_node_terms_view::<M>(s, h, sender, receiver, out, onto))
        });
}

#[inline(always)]
fn elu_of_node_terms_view<M: Madd>(
    s: usize,
    h: usize,
    sender: &[f32],
    receiver: &[f32],
    out: &mut [f32],
    onto: bool,
) {
    for (row, out) in out.chunks_exact_mut(h).enumerate() {
        let (i, j) = endpoints(row, s);
        let sender = &sender[j * h..(j + 1) * h];
        let receiver = &receiver[i * h..(i + 1) * h];
        let terms = sender.iter().zip(receiver);
        if onto {
            for (o, (a, b)) in out.iter_mut().zip(terms) {
                *o = elu::<M>(*o + a + b);
            }
        } else {
            for (o, (a, b)) in out.iter_mut().zip(terms) {
                *o = elu::<M>(a + b);
            }
        }
    }
}

/// `x = elu(x)` in place over an edge tensor, returning the per-channel sums of the
/// result and of its square (the BatchNorm statistics that follow), and writing into
/// `receiver_sums` `[n, S, h]` the sum of the result over each receiver's `S - 1` edges.
/// (Without the receivers' sums, [`elu_rows_with_moments`] serves.)
pub(crate) fn elu_with_moments(
    shape: EdgeShape,
    x: &mut [f32],
    receiver_sums: &mut [f32],
) -> ChannelSums {
    check(shape, &[], &[x, receiver_sums]);
    let (s, h) = (shape.slots, shape.width);
    let items = x
        .par_chunks_mut(shape.edge_len())
        .zip(receiver_sums.par_chunks_mut(shape.node_len()));
    per_view_sums(
        h,
        items,
        |(x, node), sum, square| with_simd!(M => elu_with_moments_view::<M>(s, h, x, node, sum, square)),
    )
}

#[inline(always)]
fn elu_with_moments_view<M: Madd>(
    s: usize,
    h: usize,
    x: &mut [f32],
    node: &mut [f32],
    sum: &mut [f32],
    square: &mut [f32],
) {
    for (receiver, node) in x
        .chunks_exact_mut((s - 1) * h)
        .zip(node.chunks_exact_mut(h))
    {
        elu_rows_with_moments_block::<M>(h, receiver, sum, square);
        node.fill(0.0);
        for row in receiver.chunks_exact(h) {
            for (n, y) in node.iter_mut().zip(row) {
                *n += y;
            }
        }
    }
}

#[inline(always)]
fn moments_against_view(
    h: usize,
    g: &[f32],
    y: &[f32],
    center: &[f32],
    sum: &mut [f32],
    product: &mut [f32],
) {
    for (g, y) in g.chunks_exact(h).zip(y.chunks_exact(h)) {
        let sums = sum.iter_mut().zip(product.iter_mut());
        for (((g, y), center), (sum, product)) in g.iter().zip(y).zip(center).zip(sums) {
            *sum += g;
            *product += g * (y - center);
        }
    }
}

/// The per-channel affine map of a BatchNorm backward (through an ELU, in the edge and
/// row passes): `dv = (alpha * g + beta + gamma * (y - center)) * elu'(y)`, `[h]` each.
/// The input is centred before it is scaled, so that a large mean does not cancel.
#[derive(Debug, Clone)]
pub(crate) struct BackwardAffine {
    pub alpha: Vec<f32>,
    pub beta: Vec<f32>,
    pub gamma: Vec<f32>,
    pub center: Vec<f32>,
}

/// `g = (alpha * (g + q_(v,i)) + beta + gamma * (y - center)) * elu'(y)` in place, `q` `[n, S, h]`
/// broadcast over each receiver's edges; returns the per-channel sums of the new `g`
/// (in `first`; `second` is zero).
pub(crate) fn affine_backward_broadcast(
    shape: EdgeShape,
    g: &mut [f32],
    y: &[f32],
    q: &[f32],
    affine: &BackwardAffine,
) -> ChannelSums {
    check(shape, &[y, q], &[g]);
    let (s, h) = (shape.slots, shape.width);
    let items = g
        .par_chunks_mut(shape.edge_len())
        .zip(y.par_chunks(shape.edge_len()))
        .zip(q.par_chunks(shape.node_len()));
    per_view_sums(h, items, |((g, y), q), sum, _| {
        with_simd!(affine_backward_broadcast_view(s, h, g, y, q, affine, sum))
    })
}

#[inline(always)]
fn affine_backward_broadcast_view(
    s: usize,
    h: usize,
    g: &mut [f32],
    y: &[f32],
    q: &[f32],
    affine: &BackwardAffine,
    sum: &mut [f32],
) {
    let (alpha, beta, gamma) = (&affine.alpha[..h], &affine.beta[..h], &affine.gamma[..h]);
    let center = &affine.center[..h];
    for (row, (g, y)) in g.chunks_exact_mut(h).zip(y.chunks_exact(h)).enumerate() {
        let i = row / (s - 1);
        let q = &q[i * h..(i + 1) * h];
        let coefficients = alpha.iter().zip(beta).zip(gamma.iter().zip(center));
        for ((((g, y), q), ((alpha, beta), (gamma, center))), sum) in g
            .iter_mut()
            .zip(y)
            .zip(q)
            .zip(coefficients)
            .zip(sum.iter_mut())
        {
            let dv = (alpha * (*g + q) + beta + gamma * (y - center)) * elu_slope(*y);
            *g = dv;
            *sum += dv;
        }
    }
}

/// `y = (sum_k gl_(r,k) w_(k,:) + beta + gamma * (y - center)) * elu'(y)` in place, `gl` `[R, K]`,
/// `w` `[K, h]`: the backward of BatchNorm and ELU under an output Linear with `K` outputs
/// whose gradient `gl` is given (`w` already scaled by the BatchNorm's `alpha`). Returns the
/// per-channel sums of the result (in `first`).
pub(crate) fn affine_backward_low_rank(
    shape: EdgeShape,
    y: &mut [f32],
    gl: &[f32],
    w: &[f32],
    affine: &BackwardAffine,
) -> ChannelSums {
    check(shape, &[], &[y]);
    let h = shape.width;
    let k = w.len() / h;
    assert_eq!(w.len(), k * h, "output weight");
    assert_eq!(gl.len(), shape.rows() * k, "output gradient");
    let items = y
        .par_chunks_mut(shape.edge_len())
        .zip(gl.par_chunks(shape.edge_len() / h * k));
    per_view_sums(h, items, |(y, gl), sum, _| {
        with_simd!(affine_backward_low_rank_view(h, k, y, gl, w, affine, sum))
    })
}

#[inline(always)]
fn affine_backward_low_rank_view(
    h: usize,
    k: usize,
    y: &mut [f32],
    gl: &[f32],
    w: &[f32],
    affine: &BackwardAffine,
    sum: &mut [f32],
) {
    let (beta, gamma, center) = (&affine.beta[..h], &affine.gamma[..h], &affine.center[..h]);
    for (y, gl) in y.chunks_exact_mut(h).zip(gl.chunks_exact(k)) {
        if let [g0, g1] = *gl {
            // Two edge types, the method's setting: one pass over the channels.
            let (w0, w1) = w.split_at(h);
            let rows = w0.iter().zip(w1).zip(beta.iter().zip(gamma).zip(center));
            for ((y, ((w0, w1), ((beta, gamma), center))), sum) in
                y.iter_mut().zip(rows).zip(sum.iter_mut())
            {
                let g = g0 * w0 + g1 * w1 + beta + gamma * (*y - center);
                let dv = g * elu_slope(*y);
                *y = dv;
                *sum += dv;
            }
        } else {
            for c in 0..h {
                let mut g = beta[c] + gamma[c] * (y[c] - center[c]);
                for (t, gl) in gl.iter().enumerate() {
                    g += gl * w[t * h + c];
                }
                let dv = g * elu_slope(y[c]);
                y[c] = dv;
                sum[c] += dv;
            }
        }
    }
}

/// The backward of `u = elu(sender_j + receiver_i (+ x_ij))`: `dpre = du * elu'(u)`,
/// written over `du` when `write` is set, summed over each receiver's edges into
/// `receiver_grad` and over each sender's edges into `sender_grad` (`[n, S, h]` each).
pub(crate) fn elu_backward_to_nodes(
    shape: EdgeShape,
    du: &mut [f32],
    u: &[f32],
    write: bool,
    sender_grad: &mut [f32],
    receiver_grad: &mut [f32],
) {
    check(shape, &[u], &[du, sender_grad, receiver_grad]);
    let (s, h) = (shape.slots, shape.width);
    du.par_chunks_mut(shape.edge_len())
        .zip(u.par_chunks(shape.edge_len()))
        .zip(sender_grad.par_chunks_mut(shape.node_len()))
        .zip(receiver_grad.par_chunks_mut(shape.node_len()))
        .for_each(|(((du, u), sender), receiver)| {
            with_simd!(elu_backward_to_nodes_view(
                s, h, write, du, u, sender, receiver
            ))
        });
}

#[inline(always)]
fn elu_backward_to_nodes_view(
    s: usize,
    h: usize,
    write: bool,
    du: &mut [f32],
    u: &[f32],
    sender: &mut [f32],
    receiver: &mut [f32],
) {
    sender.fill(0.0);
    receiver.fill(0.0);
    for (row, (du, u)) in du.chunks_exact_mut(h).zip(u.chunks_exact(h)).enumerate() {
        let (i, j) = endpoints(row, s);
        let receiver = &mut receiver[i * h..(i + 1) * h];
        let sender = &mut sender[j * h..(j + 1) * h];
        if write {
            for (((du, u), r), s) in du.iter_mut().zip(u).zip(receiver).zip(sender) {
                let d = *du * elu_slope(*u);
                *du = d;
                *r += d;
                *s += d;
            }
        } else {
            for (((du, u), r), s) in du.iter().zip(u).zip(receiver).zip(sender) {
                let d = *du * elu_slope(*u);
                *r += d;
                *s += d;
            }
        }
    }
}

/// Rows per parallel block of the row passes below (node tensors `[r, h]`).
const ROWS_PER_BLOCK: usize = 64;

/// `x = elu(x)` in place over rows of `width`.
pub(crate) fn elu_rows(width: usize, x: &mut [f32]) {
    check_rows(width, &[x]);
    x.par_chunks_mut(ROWS_PER_BLOCK * width)
        .for_each(|x| with_simd!(M => elu_slice::<M>(x)));
}

#[inline(always)]
fn elu_slice<M: Madd>(x: &mut [f32]) {
    for x in x.iter_mut() {
        *x = elu::<M>(*x);
    }
}

/// `x = elu(x)` in place over rows of `width`, returning the per-channel sums of the
/// result and of its square.
pub(crate) fn elu_rows_with_moments(width: usize, x: &mut [f32]) -> ChannelSums {
    check_rows(width, &[x]);
    per_view_sums(
        width,
        x.par_chunks_mut(ROWS_PER_BLOCK * width),
        |x, sum, square| with_simd!(M => elu_rows_with_moments_block::<M>(width, x, sum, square)),
    )
}

#[inline(always)]
fn elu_rows_with_moments_block<M: Madd>(
    h: usize,
    x: &mut [f32],
    sum: &mut [f32],
    square: &mut [f32],
) {
    for row in x.chunks_exact_mut(h) {
        for ((x, sum), square) in row.iter_mut().zip(sum.iter_mut()).zip(square.iter_mut()) {
            let y = elu::<M>(*x);
            *x = y;
            *sum += y;
            *square += y * y;
        }
    }
}

/// `out = scale * y + shift` per channel over rows of `width`.
pub(crate) fn affine_rows(width: usize, y: &[f32], scale: &[f32], shift: &[f32], out: &mut [f32]) {
    check_rows(width, &[y, out]);
    assert!(
        scale.len() == width && shift.len() == width,
        "per-channel map of {width}"
    );
    out.par_chunks_mut(ROWS_PER_BLOCK * width)
        .zip(y.par_chunks(ROWS_PER_BLOCK * width))
        .for_each(|(out, y)| {
            with_simd!(
                for (out, y) in out.chunks_exact_mut(width).zip(y.chunks_exact(width)) {
                    for (((o, y), a), c) in out.iter_mut().zip(y).zip(scale).zip(shift) {
                        *o = a * y + c;
                    }
                }
            )
        });
}

/// Per-channel sums of `g` and of `g * (y - center)` over rows of `width`.
pub(crate) fn moments_against_rows(
    width: usize,
    g: &[f32],
    y: &[f32],
    center: &[f32],
) -> ChannelSums {
    check_rows(width, &[g, y]);
    assert_eq!(center.len(), width, "center");
    let block = ROWS_PER_BLOCK * width;
    let items = g.par_chunks(block).zip(y.par_chunks(block));
    per_view_sums(width, items, |(g, y), sum, product| {
        with_simd!(moments_against_view(width, g, y, center, sum, product))
    })
}

/// `g = (alpha * g + beta + gamma * (y - center)) * elu'(y)` in place over rows of `width`; returns
/// the per-channel sums of the new `g` (in `first`).
pub(crate) fn affine_backward_rows(
    width: usize,
    g: &mut [f32],
    y: &[f32],
    affine: &BackwardAffine,
) -> ChannelSums {
    check_rows(width, &[g, y]);
    let block = ROWS_PER_BLOCK * width;
    let items = g.par_chunks_mut(block).zip(y.par_chunks(block));
    per_view_sums(width, items, |(g, y), sum, _| {
        with_simd!(affine_backward_rows_block(width, g, y, affine, sum))
    })
}

#[inline(always)]
fn affine_backward_rows_block(
    h: usize,
    g: &mut [f32],
    y: &[f32],
    affine: &BackwardAffine,
    sum: &mut [f32],
) {
    let (alpha, beta, gamma) = (&affine.alpha[..h], &affine.beta[..h], &affine.gamma[..h]);
    let center = &affine.center[..h];
    for (g, y) in g.chunks_exact_mut(h).zip(y.chunks_exact(h)) {
        let coefficients = alpha.iter().zip(beta).zip(gamma.iter().zip(center));
        for (((g, y), ((alpha, beta), (gamma, center))), sum) in
            g.iter_mut().zip(y).zip(coefficients).zip(sum.iter_mut())
        {
            let dv = (alpha * *g + beta + gamma * (y - center)) * elu_slope(*y);
            *g = dv;
            *sum += dv;
        }
    }
}

/// `du = du * elu'(u)` in place over rows of `width`; returns the per-channel sums of the
/// new `du` (in `first`).
pub(crate) fn elu_backward_rows(width: usize, du: &mut [f32], u: &[f32]) -> ChannelSums {
    check_rows(width, &[du, u]);
    let block = ROWS_PER_BLOCK * width;
    let items = du.par_chunks_mut(block).zip(u.par_chunks(block));
    per_view_sums(width, items, |(du, u), sum, _| {
        with_simd!(
            for (du, u) in du.chunks_exact_mut(width).zip(u.chunks_exact(width)) {
                for ((du, u), sum) in du.iter_mut().zip(u).zip(sum.iter_mut()) {
                    let d = *du * elu_slope(*u);
                    *du = d;
                    *sum += d;
                }
            }
        )
    })
}

/// Panics unless every slice holds whole rows of `width`, all as many.
fn check_rows(width: usize, slices: &[&[f32]]) {
    assert!(width > 0, "rows of no width");
    let len = slices[0].len();
    for s in slices {
        assert!(
            s.len() == len && len.is_multiple_of(width),
            "{} numbers for rows of {width}",
            s.len()
        );
    }
}

/// The relation head's hidden rows before its BatchNorm, `a_(anchor_r) + p_(partner_r)`
/// for each pair `r`: per-view terms `a`, `p` `[N, h]` and the pairs' views `[Q]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PairRows<'a> {
    pub width: usize,
    pub anchor_terms: &'a [f32],
    pub partner_terms: &'a [f32],
    pub anchor: &'a [i64],
    pub partner: &'a [i64],
}

/// The relation head's LeakyReLU slope below zero.
const LEAKY_SLOPE: f32 = 0.01;

/// Pairs per parallel block of the pair passes.
const PAIRS_PER_BLOCK: usize = 64;

impl<'a> PairRows<'a> {
    /// Panics unless the terms hold whole rows and every index names one of them.
    pub fn checked(self) -> Self {
        let h = self.width;
        let views = self.anchor_terms.len() / h.max(1);
        assert!(
            h > 0 && self.anchor_terms.len() == views * h,
            "anchor terms"
        );
        assert_eq!(self.partner_terms.len(), views * h, "partner terms");
        assert_eq!(self.anchor.len(), self.partner.len(), "pair indices");
        let valid = |i: &i64| (0..views as i64).contains(i);
        assert!(
            self.anchor.iter().chain(self.partner).all(valid),
            "pair index out of range"
        );
        self
    }

    fn pairs(&self) -> usize {
        self.anchor.len()
    }

    /// The anchor's and the partner's terms of pair `r`.
    #[inline(always)]
    fn terms(&self, r: usize) -> (&'a [f32], &'a [f32]) {
        let h = self.width;
        let (a, p) = (self.anchor[r] as usize, self.partner[r] as usize);
        (
            &self.anchor_terms[a * h..(a + 1) * h],
            &self.partner_terms[p * h..(p + 1) * h],
        )
    }

    /// Blocks of pair indices, in order.
    fn blocks(&self) -> impl IndexedParallelIterator<Item = std::ops::Range<usize>> + '_ {
        let pairs = self.pairs();
        (0..pairs.div_ceil(PAIRS_PER_BLOCK))
            .into_par_iter()
            .map(move |b| b * PAIRS_PER_BLOCK..((b + 1) * PAIRS_PER_BLOCK).min(pairs))
    }
}

#[inline(always)]
fn leaky(x: f32) -> f32 {
    x.max(0.0) + LEAKY_SLOPE * x.min(0.0)
}

#[inline(always)]
fn leaky_slope(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else {
        LEAKY_SLOPE
    }
}

/// Per-channel sums of the hidden rows and of their squares (the BatchNorm statistics).
pub(crate) fn pair_moments(rows: PairRows) -> ChannelSums {
    let h = rows.width;
    per_view_sums(h, rows.blocks(), |block, sum, square| {
        with_simd!(for r in block {
            let (a, p) = rows.terms(r);
            for (((a, p), sum), square) in
                a.iter().zip(p).zip(sum.iter_mut()).zip(square.iter_mut())
            {
                let x = a + p;
                *sum += x;
                *square += x * x;
            }
        })
    })
}

/// `out_r = bias + sum_c w_c leaky(scale_c x_rc + shift_c)`, `x` the hidden rows: the
/// head's scores, `[Q]`.
pub(crate) fn pair_scores(
    rows: PairRows,
    scale: &[f32],
    shift: &[f32],
    w: &[f32],
    bias: f32,
    out: &mut [f32],
) {
    let h = rows.width;
    assert!(
        scale.len() == h && shift.len() == h && w.len() == h,
        "per-channel vectors"
    );
    assert_eq!(out.len(), rows.pairs(), "scores");
    out.par_chunks_mut(PAIRS_PER_BLOCK)
        .zip(rows.blocks())
        .for_each(|(out, block)| {
            with_simd!(for (out, r) in out.iter_mut().zip(block) {
                let (a, p) = rows.terms(r);
                *out = bias + leaky_dot(a, p, scale, shift, w);
            })
        });
}

/// `sum_c w_c leaky(scale_c (a_c + p_c) + shift_c)`, in eight lanes.
#[inline(always)]
fn leaky_dot(a: &[f32], p: &[f32], scale: &[f32], shift: &[f32], w: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let chunks = a.chunks_exact(8).zip(p.chunks_exact(8));
    let coefficients = scale
        .chunks_exact(8)
        .zip(shift.chunks_exact(8))
        .zip(w.chunks_exact(8));
    for ((a, p), ((scale, shift), w)) in chunks.zip(coefficients) {
        for l in 0..8 {
            lanes[l] += w[l] * leaky(scale[l] * (a[l] + p[l]) + shift[l]);
        }
    }
    let tail = a.len() - a.len() % 8;
    let mut total: f32 = lanes.iter().sum();
    for c in tail..a.len() {
        total += w[c] * leaky(scale[c] * (a[c] + p[c]) + shift[c]);
    }
    total
}

/// The sums over pairs of the head's backward, given the scores' gradient `d` `[Q]`:
/// `[sum_r d_r act_r, sum_r g_r, sum_r g_r (x_r - center)]` flattened (`3 h`), where
/// `act = leaky(bn)`, `bn = scale x + shift` and `g = d w leaky'(bn)` is the gradient of
/// the BatchNorm's output.
pub(crate) fn pair_backward_moments(
    rows: PairRows,
    scale: &[f32],
    shift: &[f32],
    w: &[f32],
    center: &[f32],
    d: &[f32],
) -> Vec<f64> {
    let h = rows.width;
    assert_eq!(d.len(), rows.pairs(), "score gradient");
    assert_eq!(center.len(), h, "center");
    per_view_totals(h, 3, rows.blocks(), |block, acc| {
        let (act_sum, rest) = acc.split_at_mut(h);
        let (g_sum, gx_sum) = rest.split_at_mut(h);
        with_simd!(for r in block {
            let (a, p) = rows.terms(r);
            let d = d[r];
            let coefficients = scale.iter().zip(shift).zip(w.iter().zip(center));
            let sums = act_sum
                .iter_mut()
                .zip(g_sum.iter_mut())
                .zip(gx_sum.iter_mut());
            for (((a, p), ((scale, shift), (w, center))), ((act_sum, g_sum), gx_sum)) in
                a.iter().zip(p).zip(coefficients).zip(sums)
            {
                let x = a + p;
                let bn = scale * x + shift;
                *act_sum += d * leaky(bn);
                let g = d * w * leaky_slope(bn);
                *g_sum += g;
                *gx_sum += g * (x - center);
            }
        })
    })
}

/// The gradient of the hidden rows, `alpha g + beta + gamma (x - center)` with `g` as in
/// [`pair_backward_moments`], into `out` `[Q, h]`.
pub(crate) fn pair_hidden_grads(
    rows: PairRows,
    scale: &[f32],
    shift: &[f32],
    w: &[f32],
    d: &[f32],
    affine: &BackwardAffine,
    out: &mut [f32],
) {
    let h = rows.width;
    assert_eq!(d.len(), rows.pairs(), "score gradient");
    assert_eq!(out.len(), rows.pairs() * h, "hidden gradient");
    let (alpha, beta, gamma) = (&affine.alpha[..h], &affine.beta[..h], &affine.gamma[..h]);
    let center = &affine.center[..h];
    out.par_chunks_mut(PAIRS_PER_BLOCK * h)
        .zip(rows.blocks())
        .for_each(|(out, block)| {
            with_simd!(for (out, r) in out.chunks_exact_mut(h).zip(block) {
                let (a, p) = rows.terms(r);
                let d = d[r];
                let bn_map = scale.iter().zip(shift).zip(w);
                let grad_map = alpha.iter().zip(beta).zip(gamma.iter().zip(center));
                for ((((a, p), ((scale, shift), w)), ((alpha, beta), (gamma, center))), out) in a
                    .iter()
                    .zip(p)
                    .zip(bn_map)
                    .zip(grad_map)
                    .zip(out.iter_mut())
                {
                    let x = a + p;
                    let g = d * w * leaky_slope(scale * x + shift);
                    *out = alpha * g + beta + gamma * (x - center);
                }
            })
        });
}

/// `(receiver i, sender j)` of edge row `row` within a view.
#[inline(always)]
fn endpoints(row: usize, s: usize) -> (usize, usize) {
    let i = row / (s - 1);
    let jj = row % (s - 1);
    (i, if jj < i { jj } else { jj + 1 })
}

/// Panics unless every slice has the length its shape implies (edge or node tensors).
fn check(shape: EdgeShape, inputs: &[&[f32]], outputs: &[&[f32]]) {
    assert!(shape.slots >= 2 && shape.width > 0, "edge shape {shape:?}");
    let (edges, nodes) = (
        shape.views * shape.edge_len(),
        shape.views * shape.node_len(),
    );
    for len in inputs.iter().chain(outputs).map(|s| s.len()) {
        assert!(
            len == edges || len == nodes,
            "slice of {len} numbers for {shape:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_compare::relative;

    /// A copy of `t`'s numbers through tch, independent of [`super::floats`].
    fn to_vec(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.contiguous().view([-1])).unwrap()
    }

    fn tensor(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    const SHAPE: EdgeShape = EdgeShape {
        views: 3,
        slots: 4,
        width: 5,
    };

    /// Random `[n, S, h]` nodes and `[n, S, S - 1, h]` edges, and the edge endpoints.
    fn inputs(seed: i64) -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
        crate::test_rng::seeded(seed, || {
            let opts = (Kind::Float, Device::Cpu);
            let (n, s, h) = (SHAPE.views as i64, SHAPE.slots as i64, SHAPE.width as i64);
            let (receivers, senders) = crate::model::relation_encoder::edge_endpoints(s);
            (
                Tensor::randn([n, s, h], opts),
                Tensor::randn([n, s, h], opts),
                Tensor::randn([n, s * (s - 1), h], opts) * 2.0,
                Tensor::from_slice(&receivers),
                Tensor::from_slice(&senders),
            )
        })
    }

    #[test]
    fn elu_matches_libtorch_to_a_few_ulp() {
        let xs: Vec<f32> = (-20000..2000)
            .map(|i| i as f32 * 5e-3)
            .chain([-1e-30, -1e-7, -90.0, -1e4])
            .collect();
        let theirs = to_vec(&Tensor::from_slice(&xs).elu());
        let fused: Vec<f32> = xs.iter().map(|&x| elu::<Fused>(x)).collect();
        let separate: Vec<f32> = xs.iter().map(|&x| elu::<Separate>(x)).collect();
        for ours in [fused, separate] {
            for ((x, a), b) in xs.iter().zip(&ours).zip(&theirs) {
                let error = (a - b).abs() / b.abs().max(1e-30);
                assert!(error < 4e-7, "elu({x}) = {a}, libtorch {b}");
            }
        }
    }

    #[test]
    fn node_term_elus_equal_gathered_sums() {
        let (sender, receiver, edges, receivers, senders) = inputs(1);
        let expected =
            (sender.index_select(1, &senders) + receiver.index_select(1, &receivers)).elu();
        let mut out = vec![0.0; edges.numel()];
        elu_of_node_terms(SHAPE, &to_vec(&sender), &to_vec(&receiver), &mut out, false);
        assert!(relative(&tensor(&out, &expected.size()), &expected) < 1e-6);

        let expected =
            (&edges + sender.index_select(1, &senders) + receiver.index_select(1, &receivers))
                .elu();
        let mut x = to_vec(&edges);
        elu_of_node_terms(SHAPE, &to_vec(&sender), &to_vec(&receiver), &mut x, true);
        assert!(relative(&tensor(&x, &expected.size()), &expected) < 1e-6);
    }

    #[test]
    fn moments_and_receiver_sums_are_the_sums() {
        let (_, _, edges, _, _) = inputs(2);
        let y = edges.elu();
        let mut x = to_vec(&edges);
        let mut nodes = vec![7.0; SHAPE.views * SHAPE.slots * SHAPE.width];
        let sums = elu_with_moments(SHAPE, &mut x, &mut nodes);
        assert!(relative(&tensor(&x, &y.size()), &y) < 1e-6);
        let flat = y.view([-1, SHAPE.width as i64]);
        let first = Tensor::from_slice(&sums.first);
        let second = Tensor::from_slice(&sums.second);
        assert!(relative(&first, &flat.sum_dim_intlist(0, false, Kind::Double)) < 1e-6);
        assert!(
            relative(
                &second,
                &flat.square().sum_dim_intlist(0, false, Kind::Double)
            ) < 1e-6
        );
        let per_receiver = y.view([3, 4, 3, 5]).sum_dim_intlist(2, false, None);
        assert!(relative(&tensor(&nodes, &[3, 4, 5]), &per_receiver) < 1e-6);
        // Without the receivers' sums: the row pass, the same moments.
        let mut again = to_vec(&edges);
        let rows = elu_rows_with_moments(SHAPE.width, &mut again);
        assert_eq!(again, x);
        let rows_first = Tensor::from_slice(&rows.first);
        assert!(relative(&rows_first, &first) < 1e-6);

        // The BatchNorm backward's moments over an edge tensor, as rows.
        let g = y.randn_like();
        let center = [0.5f32, -0.25, 1.0, 0.0, 2.0];
        let moments = moments_against_rows(SHAPE.width, &to_vec(&g), &to_vec(&y), &center);
        let expected = (&g * (&y - Tensor::from_slice(&center)))
            .view([-1, 5])
            .sum_dim_intlist(0, false, Kind::Double);
        assert!(relative(&Tensor::from_slice(&moments.second), &expected) < 1e-6);
    }

    #[test]
    fn affine_backward_passes_follow_their_formulas() {
        let (_, q, edges, receivers, _) = inputs(3);
        let y = edges.elu();
        let g = y.randn_like();
        let affine = BackwardAffine {
            alpha: vec![0.5, -1.0, 2.0, 0.25, 1.5],
            beta: vec![0.1, 0.2, -0.3, 0.0, 1.0],
            gamma: vec![-0.2, 0.3, 0.0, 1.0, 0.5],
            center: vec![0.5, -0.25, 1.0, 0.0, 2.0],
        };
        let row = |v: &[f32]| Tensor::from_slice(v);
        let slope = y.clamp_max(0.0) + 1.0;
        let centred = &y - row(&affine.center);
        let expected = ((&g + q.index_select(1, &receivers)) * row(&affine.alpha)
            + row(&affine.beta)
            + &centred * row(&affine.gamma))
            * &slope;
        let mut out = to_vec(&g);
        let sums = affine_backward_broadcast(SHAPE, &mut out, &to_vec(&y), &to_vec(&q), &affine);
        assert!(relative(&tensor(&out, &expected.size()), &expected) < 1e-6);
        let total = expected
            .view([-1, 5])
            .sum_dim_intlist(0, false, Kind::Double);
        assert!(relative(&Tensor::from_slice(&sums.first), &total) < 1e-5);

        let gl = Tensor::randn([3, 12, 2], (Kind::Float, Device::Cpu));
        let w = Tensor::randn([2, 5], (Kind::Float, Device::Cpu));
        let moments = low_rank_moments(SHAPE, &to_vec(&gl), &to_vec(&y), &affine.center);
        let expected = gl
            .view([-1, 2])
            .tr()
            .mm(&centred.view([-1, 5]))
            .to_kind(Kind::Double);
        assert!(relative(&Tensor::from_slice(&moments).view([2, 5]), &expected) < 1e-6);
        let expected = (gl.matmul(&w) + row(&affine.beta) + &centred * row(&affine.gamma)) * &slope;
        let mut out = to_vec(&y);
        let sums = affine_backward_low_rank(SHAPE, &mut out, &to_vec(&gl), &to_vec(&w), &affine);
        assert!(relative(&tensor(&out, &expected.size()), &expected) < 1e-6);
        let total = expected
            .view([-1, 5])
            .sum_dim_intlist(0, false, Kind::Double);
        assert!(relative(&Tensor::from_slice(&sums.first), &total) < 1e-5);
    }

    #[test]
    fn elu_backward_reaches_both_endpoints() {
        let (sender, receiver, edges, receivers, senders) = inputs(4);
        let sender = sender.set_requires_grad(true);
        let receiver = receiver.set_requires_grad(true);
        let u = (sender.index_select(1, &senders) + receiver.index_select(1, &receivers)).elu();
        let du = u.randn_like();
        let grads =
            Tensor::run_backward(&[(&u * &du).sum(None)], &[&sender, &receiver], false, false);
        let u = u.detach();
        for write in [false, true] {
            let mut d = to_vec(&du);
            let (mut s, mut r) = (vec![9.0; sender.numel()], vec![9.0; receiver.numel()]);
            elu_backward_to_nodes(SHAPE, &mut d, &to_vec(&u), write, &mut s, &mut r);
            assert!(relative(&tensor(&s, &[3, 4, 5]), &grads[0]) < 1e-6);
            assert!(relative(&tensor(&r, &[3, 4, 5]), &grads[1]) < 1e-6);
            let expected = if write {
                &du * (u.clamp_max(0.0) + 1.0)
            } else {
                du.shallow_clone()
            };
            assert!(relative(&tensor(&d, &du.size()), &expected) < 1e-6);
        }
        let _ = edges;
    }
    #[test]
    fn row_passes_follow_their_formulas() {
        // 131 rows: two whole blocks and a partial one.
        let (x, g) = crate::test_rng::seeded(5, || {
            let opts = (Kind::Float, Device::Cpu);
            (
                Tensor::randn([131, 5], opts) * 2.0,
                Tensor::randn([131, 5], opts),
            )
        });
        let y = x.elu();
        let mut ours = to_vec(&x);
        elu_rows(5, &mut ours);
        assert!(relative(&tensor(&ours, &[131, 5]), &y) < 1e-6);
        let mut ours = to_vec(&x);
        let sums = elu_rows_with_moments(5, &mut ours);
        assert!(relative(&tensor(&ours, &[131, 5]), &y) < 1e-6);
        let sum = y.sum_dim_intlist(0, false, Kind::Double);
        let square = y.square().sum_dim_intlist(0, false, Kind::Double);
        assert!(relative(&Tensor::from_slice(&sums.first), &sum) < 1e-6);
        assert!(relative(&Tensor::from_slice(&sums.second), &square) < 1e-6);

        let (scale, shift) = (
            [0.5f32, -1.0, 2.0, 0.25, 1.5],
            [0.1f32, 0.2, -0.3, 0.0, 1.0],
        );
        let mut out = vec![0.0; 131 * 5];
        affine_rows(5, &to_vec(&y), &scale, &shift, &mut out);
        let expected = &y * Tensor::from_slice(&scale) + Tensor::from_slice(&shift);
        assert!(relative(&tensor(&out, &[131, 5]), &expected) < 1e-6);

        let moments = moments_against_rows(5, &to_vec(&g), &to_vec(&y), &shift);
        let expected =
            (&g * (&y - Tensor::from_slice(&shift))).sum_dim_intlist(0, false, Kind::Double);
        assert!(relative(&Tensor::from_slice(&moments.second), &expected) < 1e-6);

        let affine = BackwardAffine {
            alpha: scale.to_vec(),
            beta: shift.to_vec(),
            gamma: vec![-0.2, 0.3, 0.0, 1.0, 0.5],
            center: vec![1.0, 0.0, -0.5, 0.25, 0.5],
        };
        let row = |v: &[f32]| Tensor::from_slice(v);
        let slope = y.clamp_max(0.0) + 1.0;
        let centred = &y - row(&affine.center);
        let expected =
            (&g * row(&affine.alpha) + row(&affine.beta) + centred * row(&affine.gamma)) * &slope;
        let mut ours = to_vec(&g);
        let sums = affine_backward_rows(5, &mut ours, &to_vec(&y), &affine);
        assert!(relative(&tensor(&ours, &[131, 5]), &expected) < 1e-6);
        let total = expected.sum_dim_intlist(0, false, Kind::Double);
        assert!(relative(&Tensor::from_slice(&sums.first), &total) < 1e-5);

        let mut ours = to_vec(&g);
        let sums = elu_backward_rows(5, &mut ours, &to_vec(&y));
        let expected = &g * &slope;
        assert!(relative(&tensor(&ours, &[131, 5]), &expected) < 1e-6);
        let total = expected.sum_dim_intlist(0, false, Kind::Double);
        assert!(relative(&Tensor::from_slice(&sums.first), &total) < 1e-5);
    }

    #[test]
    #[should_panic(expected = "numbers for rows of 5")]
    fn row_passes_refuse_partial_rows() {
        elu_rows(5, &mut [0.0; 12]);
    }

    #[test]
    fn empty_tensors_read_as_empty_slices() {
        let mut t = Tensor::empty([0, 5], (Kind::Float, Device::Cpu));
        assert!(super::floats(&t).is_empty());
        assert!(super::floats_mut(&mut t).is_empty());
        elu_rows(5, super::floats_mut(&mut t));
    }

    #[test]
    #[should_panic(expected = "expected a contiguous f32 CPU tensor")]
    fn other_tensors_are_refused() {
        let _ = super::floats(&Tensor::zeros([3, 2], (Kind::Double, Device::Cpu)));
    }
}
