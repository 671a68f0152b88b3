//! Slot masks: for each image and slot, the soft mask over the pixels that makes the slot
//! read like a sample of its marginal, found by gradient descent on the mask logits.
//!
//! For a frozen encoder `g` and image `x_b`, one logit map `phi[b, i]` `[32, 32]` per slot
//! `i`, shared over the colour channels, gives the masked input `sigmoid(phi[b, i]) * x_b`
//! (on the normalized image, so a masked-out pixel becomes the data set's mean colour).
//! The logits minimize `|| z~_i - g(sigmoid(phi[b, i]) * x_b)_i ||^2`, the upper bound on
//! `I(X, Z_i)` of the method, where `z~_i` is slot `i` of the feature of an image drawn
//! afresh at every step from a set of images that samples the marginal of `Z`.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::error::InterpretError;
use crate::model::{Backbone, SLOTS, SLOT_DIM};

/// A mask whose mean is below this keeps less than 2% of the image (about 20 of its 1,024
/// pixels at full strength): the slot then sees the data set's mean image, the trivial
/// solution of the objective, and the mask says nothing about where the slot looks.
pub const COLLAPSE_LOW: f64 = 0.02;

/// A mask whose mean is above this removes less than 2% of the image: the slot sees the
/// whole image, and the mask singles out no region either.
pub const COLLAPSE_HIGH: f64 = 0.98;

/// Side of the (square) images and masks.
const SIDE: i64 = 32;

/// Marginal images encoded per forward pass when their features are precomputed.
const MARGINAL_CHUNK: i64 = 512;

/// How the mask logits are optimized.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskSettings {
    /// Adam steps [default: 1000]. The paper runs 20,000. On two CPU cores a step for 64
    /// images x 8 slots (512 masked images) through Conv-4 takes about 0.14 s, so the
    /// default finishes in about 2.5 minutes (20,000 steps: about 47 minutes); the
    /// objective flattens within the first few hundred steps and the masks then sharpen
    /// towards 0 or 1. Raise it on a GPU.
    pub steps: usize,
    /// Adam learning rate for the logits [default: 0.05]. Adam moves every logit by
    /// about this much per step whatever the size of its gradient, so a logit crosses the
    /// sigmoid's working range (-4 to 4) in about 160 steps, within the CPU default,
    /// while one step changes a mask value by at most 0.0125 (the sigmoid's slope is at
    /// most 1/4), small against the noise of the fresh marginal sample at every step.
    pub learning_rate: f64,
    /// Value of every logit at the start [default: 0, a mask of 0.5 everywhere: no pixel
    /// favoured]. Pixels that a slot does not depend on keep it.
    pub initial_logit: f64,
    /// Seed of the choice of marginal samples [default: 0].
    pub seed: u64,
}

impl Default for MaskSettings {
    fn default() -> Self {
        Self {
            steps: 1000,
            learning_rate: 0.05,
            initial_logit: 0.0,
            seed: 0,
        }
    }
}

impl MaskSettings {
    /// Checks that every setting is usable.
    pub fn validate(&self) -> Result<(), InterpretError> {
        if self.steps == 0 {
            return Err(InterpretError::InvalidSetting {
                field: "steps",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(InterpretError::InvalidSetting {
                field: "learning_rate",
                value: self.learning_rate.to_string(),
                expected: "a finite number above 0",
            });
        }
        if !self.initial_logit.is_finite() {
            return Err(InterpretError::InvalidSetting {
                field: "initial_logit",
                value: self.initial_logit.to_string(),
                expected: "a finite number",
            });
        }
        Ok(())
    }
}

/// The two ways a mask can collapse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollapseKind {
    /// Mean below [`COLLAPSE_LOW`]: everything masked out.
    AllZeros,
    /// Mean above [`COLLAPSE_HIGH`]: nothing masked out.
    AllOnes,
}

impl fmt::Display for CollapseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AllZeros => "all zeros",
            Self::AllOnes => "all ones",
        })
    }
}

/// A mask that collapsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CollapsedMask {
    /// Position of the image in the batch.
    pub image: usize,
    /// The slot.
    pub slot: usize,
    /// Which way it collapsed.
    pub kind: CollapseKind,
    /// The mask's mean value.
    pub mean: f64,
}

/// The outcome of [`optimize_masks`].
#[derive(Debug)]
pub struct MaskResult {
    /// The masks `sigmoid(phi)`: `[batch, slots, 32, 32]`, values in [0, 1], on the CPU.
    pub masks: Tensor,
    /// The objective after each step (mean over images and slots of the squared distance,
    /// measured before that step's update), one value per step.
    pub objective: Vec<f64>,
    /// Every mask that collapsed, in image then slot order.
    pub collapsed: Vec<CollapsedMask>,
}

/// The encoder's forward pass in inference mode (BatchNorm uses its running statistics and
/// leaves them alone): `[n, 3, 32, 32] -> [n, 64]`.
pub fn frozen_encoder(backbone: &Backbone) -> impl Fn(&Tensor) -> Tensor + '_ {
    move |images| backbone.forward_t(images, false)
}

/// Learns one mask per image and slot.
///
/// - `encoder`: `[n, 3, 32, 32] -> [n, SLOTS * SLOT_DIM]`, in inference mode and with no
///   interaction between the images of a batch (see [`frozen_encoder`]); gradients reach
///   only the mask logits, never the encoder's variables.
/// - `images`: `[batch, 3, 32, 32]` normalized images to interpret.
/// - `marginal`: `[n, 3, 32, 32]` normalized images whose features sample the marginal of
///   `Z`; they are encoded once. Each step draws, for every image and slot, one of them
///   uniformly (with the seeded generator of `settings`) and takes its slot as `z~_i`.
/// - `on_step(step, objective)` is called after every step, `step` counting from 1.
///
/// Every step sends all `batch * SLOTS` masked images through the encoder at once.
/// tch's generator is seeded with `settings.seed` too, for encoders that draw from it.
pub fn optimize_masks(
    encoder: &dyn Fn(&Tensor) -> Tensor,
    images: &Tensor,
    marginal: &Tensor,
    settings: &MaskSettings,
    device: Device,
    on_step: &mut dyn FnMut(usize, f64),
) -> Result<MaskResult, InterpretError> {
    settings.validate()?;
    check_images("images", images)?;
    check_images("marginal", marginal)?;
    tch::manual_seed(settings.seed as i64);
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);

    let images = images.to_kind(Kind::Float).to_device(device).detach();
    let batch = images.size()[0];
    let marginal_slots = encode_marginal(encoder, marginal, device)?;
    let marginal_len = marginal_slots.size()[0];
    let marginal_rows = marginal_slots.view([marginal_len * SLOTS, SLOT_DIM]);
    let slot_of_row = Tensor::arange(SLOTS, (Kind::Int64, device)).repeat([batch]);

    let phi = Tensor::full(
        [batch, SLOTS, SIDE, SIDE],
        settings.initial_logit,
        (Kind::Float, device),
    )
    .set_requires_grad(true);
    let mut adam = LogitAdam::new(&phi, settings.learning_rate);
    let mut objective = Vec::with_capacity(settings.steps);

    for step in 1..=settings.steps {
        let drawn: Vec<i64> = (0..batch * SLOTS)
            .map(|_| rng.gen_range(0..marginal_len))
            .collect();
        let drawn = Tensor::from_slice(&drawn).to_device(device);
        let targets = marginal_rows.index_select(0, &(drawn * SLOTS + &slot_of_row));
        let targets = targets.view([batch, SLOTS, SLOT_DIM]);

        let distances = squared_distances(encoder, &images, &phi, &targets)?;
        let loss = distances.sum(Kind::Float);
        let value = distances.mean(Kind::Float).double_value(&[]);
        if !value.is_finite() {
            return Err(InterpretError::NonFinite { step, value });
        }
        let gradient =
            Tensor::f_run_backward(&[&loss], &[&phi], false, false).map_err(|source| {
                InterpretError::Tensor {
                    what: "mask gradient",
                    source,
                }
            })?;
        adam.step(&phi, &gradient[0]);

        objective.push(value);
        on_step(step, value);
    }

    let masks = phi.detach().sigmoid().to_device(Device::Cpu);
    let collapsed = find_collapsed(&masks)?;
    Ok(MaskResult {
        masks,
        objective,
        collapsed,
    })
}

/// `|| z~_i - g(sigmoid(phi[b, i]) * x_b)_i ||^2` for every image `b` and slot `i`:
/// `images [B, 3, 32, 32]`, `phi [B, S, 32, 32]`, `targets [B, S, D]` -> `[B, S]`.
fn squared_distances(
    encoder: &dyn Fn(&Tensor) -> Tensor,
    images: &Tensor,
    phi: &Tensor,
    targets: &Tensor,
) -> Result<Tensor, InterpretError> {
    let batch = images.size()[0];
    let masked = phi.sigmoid().unsqueeze(2) * images.unsqueeze(1);
    let masked = masked.view([batch * SLOTS, 3, SIDE, SIDE]);

    let features = encoder(&masked);
    check_features(&features, batch * SLOTS)?;

    // [b, mask i, slot j, d]: mask i is judged by slot i only.
    let features = features.view([batch, SLOTS, SLOTS, SLOT_DIM]);
    let own_slot = features.diagonal(0, 1, 2).permute([0, 2, 1]);
    Ok((own_slot - targets)
        .square()
        .sum_dim_intlist(-1, false, Kind::Float))
}

/// The marginal's slots, computed once without gradients: `[n, 3, 32, 32] -> [n, S, D]`.
fn encode_marginal(
    encoder: &dyn Fn(&Tensor) -> Tensor,
    marginal: &Tensor,
    device: Device,
) -> Result<Tensor, InterpretError> {
    let total = marginal.size()[0];
    let mut parts = Vec::new();
    let mut start = 0;
    while start < total {
        let len = MARGINAL_CHUNK.min(total - start);
        let chunk = marginal
            .narrow(0, start, len)
            .to_kind(Kind::Float)
            .to_device(device);
        let features = tch::no_grad(|| encoder(&chunk));
        check_features(&features, len)?;
        parts.push(features.detach());
        start += len;
    }
    Ok(Tensor::cat(&parts, 0).view([total, SLOTS, SLOT_DIM]))
}

fn check_images(what: &'static str, images: &Tensor) -> Result<(), InterpretError> {
    let size = images.size();
    if size.len() != 4 || size[1..] != [3, SIDE, SIDE] {
        return Err(InterpretError::Shape {
            what,
            found: size,
            expected: "[n, 3, 32, 32]".into(),
        });
    }
    if size[0] == 0 {
        return Err(InterpretError::Empty { what });
    }
    Ok(())
}

fn check_features(features: &Tensor, rows: i64) -> Result<(), InterpretError> {
    let size = features.size();
    if size != [rows, SLOTS * SLOT_DIM] {
        return Err(InterpretError::Shape {
            what: "encoder output",
            found: size,
            expected: format!("[{rows}, {}] (slots x slot_dim)", SLOTS * SLOT_DIM),
        });
    }
    Ok(())
}

/// The masks whose mean lies below [`COLLAPSE_LOW`] or above [`COLLAPSE_HIGH`]:
/// `masks [batch, slots, H, W]`.
pub fn find_collapsed(masks: &Tensor) -> Result<Vec<CollapsedMask>, InterpretError> {
    let size = masks.size();
    if size.len() != 4 {
        return Err(InterpretError::Shape {
            what: "masks",
            found: size,
            expected: "[batch, slots, height, width]".into(),
        });
    }
    let slots = size[1] as usize;
    let means = masks
        .to_kind(Kind::Double)
        .mean_dim([2, 3].as_slice(), false, Kind::Double);
    let means: Vec<f64> =
        Vec::try_from(means.flatten(0, -1)).map_err(|source| InterpretError::Tensor {
            what: "mask means",
            source,
        })?;

    let mut collapsed = Vec::new();
    for (position, &mean) in means.iter().enumerate() {
        let kind = if mean < COLLAPSE_LOW {
            CollapseKind::AllZeros
        } else if mean > COLLAPSE_HIGH {
            CollapseKind::AllOnes
        } else {
            continue;
        };
        collapsed.push(CollapsedMask {
            image: position / slots,
            slot: position % slots,
            kind,
            mean,
        });
    }
    Ok(collapsed)
}

/// Adam on the mask logits alone (PyTorch's update and defaults, no weight decay).
struct LogitAdam {
    first: Tensor,
    second: Tensor,
    steps: i32,
    learning_rate: f64,
}

impl LogitAdam {
    const BETA1: f64 = 0.9;
    const BETA2: f64 = 0.999;
    const EPS: f64 = 1e-8;

    fn new(logits: &Tensor, learning_rate: f64) -> Self {
        Self {
            first: logits.zeros_like().detach(),
            second: logits.zeros_like().detach(),
            steps: 0,
            learning_rate,
        }
    }

    fn step(&mut self, logits: &Tensor, gradient: &Tensor) {
        self.steps += 1;
        let bias1 = 1.0 - Self::BETA1.powi(self.steps);
        let bias2 = 1.0 - Self::BETA2.powi(self.steps);
        tch::no_grad(|| {
            self.first = &self.first * Self::BETA1 + gradient * (1.0 - Self::BETA1);
            self.second = &self.second * Self::BETA2 + gradient.square() * (1.0 - Self::BETA2);
            let denominator = (&self.second / bias2).sqrt() + Self::EPS;
            let update = &self.first / denominator * (self.learning_rate / bias1);
            let mut logits = logits.shallow_clone();
            let _ = logits.g_sub_(&update);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Block `i` of the 2 x 4 grid of 16 x 8 pixel blocks.
    fn block(slot: i64) -> (i64, i64) {
        (slot / 4 * 16, slot % 4 * 8)
    }

    /// An encoder whose slot `i` is `tanh(gain_d * mean(block i) - 0.3)` for `d` in
    /// `0..8`: slot `i` depends on block `i` and on nothing else.
    fn block_encoder(images: &Tensor) -> Tensor {
        let n = images.size()[0];
        let means =
            images
                .view([n, 3, 2, 16, 4, 8])
                .mean_dim([1, 3, 5].as_slice(), false, Kind::Float);
        let gains = Tensor::from_slice(&[0.5f32, 0.8, 1.1, 1.4, 1.7, 2.0, 2.3, 2.6]);
        (means.view([n, SLOTS, 1]) * gains.view([1, 1, SLOT_DIM]) - 0.3)
            .tanh()
            .view([n, 64])
    }

    /// Images whose blocks are flat at a random level in [0.6, 1.0], plus pixel noise.
    fn block_images(n: i64, seed: i64) -> Tensor {
        tch::manual_seed(seed);
        let levels = Tensor::rand([n, 1, 2, 1, 4, 1], (Kind::Float, Device::Cpu)) * 0.4 + 0.6;
        let levels = levels
            .expand([n, 3, 2, 16, 4, 8], false)
            .reshape([n, 3, SIDE, SIDE]);
        levels + Tensor::randn([n, 3, SIDE, SIDE], (Kind::Float, Device::Cpu)) * 0.05
    }

    #[test]
    fn masks_recover_the_block_each_slot_depends_on() {
        let images = block_images(4, 1);
        let marginal = block_images(64, 2);
        // Start below 0.5 so that pixels no slot depends on, which keep their start
        // value, are not tied with the threshold.
        let settings = MaskSettings {
            steps: 150,
            learning_rate: 0.05,
            initial_logit: -1.0,
            seed: 3,
        };
        let mut calls = 0;
        let result = optimize_masks(
            &block_encoder,
            &images,
            &marginal,
            &settings,
            Device::Cpu,
            &mut |step, _| {
                calls += 1;
                assert_eq!(step, calls);
            },
        )
        .unwrap();

        assert_eq!(calls, 150);
        assert_eq!(result.objective.len(), 150);
        assert_eq!(result.masks.size(), [4, SLOTS, SIDE, SIDE]);
        let first = result.objective[0];
        let last = result.objective[140..].iter().sum::<f64>() / 10.0;
        assert!(last < first / 5.0, "objective {first} -> {last}");

        let kept = result.masks.gt(0.5);
        for image in 0..4 {
            for slot in 0..SLOTS {
                let (top, left) = block(slot);
                let truth = Tensor::zeros([SIDE, SIDE], (Kind::Bool, Device::Cpu));
                let _ = truth.narrow(0, top, 16).narrow(1, left, 8).fill_(1);
                let mask = kept.get(image).get(slot);
                let intersection = mask.logical_and(&truth).sum(Kind::Float).double_value(&[]);
                let union = mask.logical_or(&truth).sum(Kind::Float).double_value(&[]);
                let iou = intersection / union;
                assert!(iou > 0.95, "image {image} slot {slot}: IoU {iou}");
            }
        }
        assert!(result.collapsed.is_empty(), "{:?}", result.collapsed);
    }

    #[test]
    fn the_same_seed_gives_the_same_masks_and_another_seed_other_ones() {
        let images = block_images(2, 4);
        let marginal = block_images(16, 5);
        let run = |seed| {
            let settings = MaskSettings {
                steps: 5,
                seed,
                ..MaskSettings::default()
            };
            optimize_masks(
                &block_encoder,
                &images,
                &marginal,
                &settings,
                Device::Cpu,
                &mut |_, _| {},
            )
            .unwrap()
        };
        let (a, b, c) = (run(7), run(7), run(8));
        assert!(a.masks.equal(&b.masks));
        assert_eq!(a.objective, b.objective);
        assert_ne!(a.objective, c.objective);
    }

    #[test]
    fn the_encoder_stays_frozen() {
        tch::manual_seed(0);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let backbone = Backbone::new(crate::model::BackboneKind::Conv4, &vs.root());
        let before: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.copy()))
            .collect();
        let images = Tensor::randn([2, 3, SIDE, SIDE], (Kind::Float, Device::Cpu));
        let marginal = Tensor::randn([6, 3, SIDE, SIDE], (Kind::Float, Device::Cpu));
        let settings = MaskSettings {
            steps: 2,
            ..MaskSettings::default()
        };
        let encoder = frozen_encoder(&backbone);
        let result = optimize_masks(
            &encoder,
            &images,
            &marginal,
            &settings,
            Device::Cpu,
            &mut |_, _| {},
        )
        .unwrap();

        assert_eq!(result.masks.size(), [2, SLOTS, SIDE, SIDE]);
        let moved = (result.masks - 0.5).abs().max().double_value(&[]);
        assert!(moved > 0.01, "masks did not move ({moved})");
        let after = vs.variables();
        for (name, value) in before {
            assert!(value.equal(&after[&name]), "{name} changed");
            assert!(!after[&name].grad().defined(), "{name} received a gradient");
        }
    }

    #[test]
    fn collapsed_masks_are_found_with_their_kind() {
        let masks = Tensor::full([2, 3, 4, 4], 0.5, (Kind::Float, Device::Cpu));
        let _ = masks.get(0).get(1).fill_(0.01);
        let _ = masks.get(1).get(2).fill_(0.99);
        // Mean 0.0203: just above the threshold, not collapsed.
        let _ = masks.get(1).get(0).fill_(0.0);
        let _ = masks
            .get(1)
            .get(0)
            .narrow(0, 0, 1)
            .narrow(1, 0, 1)
            .fill_(0.325);
        let _ = masks.get(0).get(2).fill_(1.0);

        let found = find_collapsed(&masks).unwrap();
        let summary: Vec<_> = found.iter().map(|c| (c.image, c.slot, c.kind)).collect();
        assert_eq!(
            summary,
            vec![
                (0, 1, CollapseKind::AllZeros),
                (0, 2, CollapseKind::AllOnes),
                (1, 2, CollapseKind::AllOnes)
            ]
        );
        assert!((found[0].mean - 0.01).abs() < 1e-6);
        assert_eq!(CollapseKind::AllZeros.to_string(), "all zeros");
    }

    #[test]
    fn bad_settings_and_shapes_are_named() {
        let images = block_images(1, 0);
        let run = |settings: &MaskSettings, images: &Tensor, marginal: &Tensor| {
            optimize_masks(
                &block_encoder,
                images,
                marginal,
                settings,
                Device::Cpu,
                &mut |_, _| {},
            )
            .unwrap_err()
            .to_string()
        };
        let zero_steps = MaskSettings {
            steps: 0,
            ..MaskSettings::default()
        };
        let err = run(&zero_steps, &images, &images);
        assert!(
            err.contains("`steps` is 0") && err.contains("at least 1"),
            "{err}"
        );
        let bad_rate = MaskSettings {
            learning_rate: f64::NAN,
            ..MaskSettings::default()
        };
        assert!(run(&bad_rate, &images, &images).contains("learning_rate"));

        let settings = MaskSettings::default();
        let small = Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu));
        let err = run(&settings, &small, &images);
        assert!(err.contains("images has shape [1, 3, 16, 16]"), "{err}");
        let empty = Tensor::zeros([0, 3, SIDE, SIDE], (Kind::Float, Device::Cpu));
        let err = run(&settings, &images, &empty);
        assert!(err.contains("marginal is empty"), "{err}");

        let narrow = |x: &Tensor| block_encoder(x).narrow(1, 0, 32);
        let err = optimize_masks(
            &narrow,
            &images,
            &images,
            &settings,
            Device::Cpu,
            &mut |_, _| {},
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("encoder output has shape [1, 32]"), "{err}");
    }
}
