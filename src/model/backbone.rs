//! The image encoder `g`: a choice of backbone, each mapping an image to 64 features.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Tensor};

use super::conv4::Conv4;
use super::resnet8::ResNet8;

/// Number of features a backbone produces per image.
pub const FEATURES: i64 = 64;
/// Rows `S` of the slot matrix `z` that the features are read as.
pub const SLOTS: i64 = 8;
/// Numbers `D` per slot: `FEATURES = SLOTS * SLOT_DIM`.
pub const SLOT_DIM: i64 = 8;

/// A name that is not one of the backbones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backbone `{0}`: expected one of conv4, resnet8")]
pub struct UnknownBackbone(pub String);

/// Which backbone to build; written `conv4` or `resnet8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BackboneKind {
    /// Four conv-BN-ReLU-pool blocks (the default).
    #[default]
    Conv4,
    /// A stem and three residual basic blocks.
    ResNet8,
}

impl BackboneKind {
    /// Every kind, in the order the error messages list them.
    pub const ALL: [BackboneKind; 2] = [BackboneKind::Conv4, BackboneKind::ResNet8];

    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Conv4 => "conv4",
            Self::ResNet8 => "resnet8",
        }
    }
}

impl FromStr for BackboneKind {
    type Err = UnknownBackbone;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| UnknownBackbone(s.to_string()))
    }
}

impl fmt::Display for BackboneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The encoder `g`: `[n, 3, 32, 32] -> [n, FEATURES]`.
#[derive(Debug)]
pub enum Backbone {
    /// See [`Conv4`].
    Conv4(Conv4),
    /// See [`ResNet8`].
    ResNet8(ResNet8),
}

impl Backbone {
    /// Creates a backbone of the given kind with its variables under `path`.
    pub fn new(kind: BackboneKind, path: &nn::Path) -> Self {
        match kind {
            BackboneKind::Conv4 => Self::Conv4(Conv4::new(path)),
            BackboneKind::ResNet8 => Self::ResNet8(ResNet8::new(path)),
        }
    }

    /// The kind this backbone was built as.
    pub fn kind(&self) -> BackboneKind {
        match self {
            Self::Conv4(_) => BackboneKind::Conv4,
            Self::ResNet8(_) => BackboneKind::ResNet8,
        }
    }

    /// `[n, 3, 32, 32] -> [n, 64]`; `train` selects batch statistics in BatchNorm (and
    /// updates its running statistics), otherwise the running statistics are used.
    ///
    /// On the CPU the images are laid out channels-last first (see [`channels_last`]):
    /// every layer after them keeps that layout. On other devices they are used as given.
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        let images = if images.device() == Device::Cpu {
            channels_last(images)
        } else {
            images.shallow_clone()
        };
        match self {
            Self::Conv4(net) => net.forward_t(&images, train),
            Self::ResNet8(net) => net.forward_t(&images, train),
        }
    }
}

/// `xs [n, c, h, w]` with the same shape and values, stored channels-last (strides of an
/// `[n, h, w, c]` tensor). libtorch's convolutions, BatchNorm and pooling on the CPU run
/// their vectorised channels-last kernels on such a tensor and hand the layout on to
/// their outputs; with these backbones' few channels that is markedly faster than the
/// default layout (measured in BENCHMARKS.md). Any other number of dimensions is returned
/// as it is.
fn channels_last(xs: &Tensor) -> Tensor {
    if xs.dim() != 4 {
        return xs.shallow_clone();
    }
    xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::trainable_count;
    use tch::{Device, Kind};

    fn build(kind: BackboneKind) -> (nn::VarStore, Backbone) {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = Backbone::new(kind, &vs.root());
        (vs, net)
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn parameter_counts_match_the_specification() {
        assert_eq!(trainable_count(&build(BackboneKind::Conv4).0), 24_648);
        assert_eq!(trainable_count(&build(BackboneKind::ResNet8).0), 77_392);
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for kind in BackboneKind::ALL {
            assert_eq!(kind.to_string().parse::<BackboneKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
        }
        let err = "resnet18".parse::<BackboneKind>().unwrap_err().to_string();
        assert!(
            err.contains("resnet18") && err.contains("conv4, resnet8"),
            "{err}"
        );
    }

    #[test]
    fn batch_norm_starts_at_weight_one_bias_zero_and_convs_are_he_normal() {
        let (vs, _) = build(BackboneKind::ResNet8);
        for (name, var) in vs.variables() {
            if name.contains("bn") && name.ends_with("weight") {
                assert_eq!(var.min().double_value(&[]), 1.0, "{name}");
                assert_eq!(var.max().double_value(&[]), 1.0, "{name}");
            } else if name.contains("bn") && name.ends_with("bias") {
                assert_eq!(var.abs().max().double_value(&[]), 0.0, "{name}");
            }
        }
        let variables = vs.variables();
        let conv = &variables["block3.conv2.weight"];
        let expected = (2.0f64 / (9.0 * 64.0)).sqrt();
        let std = conv.std(true).double_value(&[]);
        assert!(
            (std / expected - 1.0).abs() < 0.05,
            "std {std}, expected {expected}"
        );
    }

    #[test]
    fn channels_last_changes_the_layout_not_the_features() {
        let images = Tensor::randn([4, 3, 32, 32], (Kind::Float, Device::Cpu));
        let laid_out = channels_last(&images);
        assert_eq!(laid_out.size(), [4, 3, 32, 32]);
        assert_eq!(laid_out.stride(), [3 * 32 * 32, 1, 32 * 3, 3]);
        assert_eq!(max_abs_diff(&laid_out, &images), 0.0);
        for kind in BackboneKind::ALL {
            let (_vs, net) = build(kind);
            for train in [true, false] {
                let default_layout = match &net {
                    Backbone::Conv4(inner) => inner.forward_t(&images, train),
                    Backbone::ResNet8(inner) => inner.forward_t(&images, train),
                };
                let features = net.forward_t(&images, train);
                let gap = max_abs_diff(&features, &default_layout);
                assert!(gap < 1e-4, "{kind} train={train}: off by {gap}");
            }
        }
    }

    #[test]
    fn both_backbones_map_images_to_64_features() {
        for kind in BackboneKind::ALL {
            let (_vs, net) = build(kind);
            let images = Tensor::randn([5, 3, 32, 32], (Kind::Float, Device::Cpu));
            for train in [true, false] {
                assert_eq!(
                    net.forward_t(&images, train).size(),
                    [5, FEATURES],
                    "{kind}"
                );
            }
            assert_eq!(SLOTS * SLOT_DIM, FEATURES);
        }
    }

    #[test]
    fn train_and_eval_modes_differ_only_through_batch_norm() {
        for kind in BackboneKind::ALL {
            let (vs, net) = build(kind);
            let images = Tensor::randn([6, 3, 32, 32], (Kind::Float, Device::Cpu));
            let running = |vs: &nn::VarStore| {
                let mut v: Vec<_> = vs.variables().into_iter().collect();
                v.retain(|(name, _)| name.contains("running"));
                v.sort_by(|a, b| a.0.cmp(&b.0));
                Tensor::cat(&v.iter().map(|(_, t)| t.copy()).collect::<Vec<_>>(), 0)
            };

            // Eval mode: no cross-image dependence and no state change.
            let before = running(&vs);
            let batch = net.forward_t(&images, false);
            let alone = net.forward_t(&images.narrow(0, 2, 1), false);
            assert!(
                max_abs_diff(&batch.narrow(0, 2, 1), &alone) < 1e-5,
                "{kind}"
            );
            assert_eq!(max_abs_diff(&before, &running(&vs)), 0.0, "{kind}");

            // Train mode: deterministic (no dropout), images interact through the batch
            // statistics, and the running statistics move.
            let first = net.forward_t(&images, true);
            let second = net.forward_t(&images, true);
            assert_eq!(max_abs_diff(&first, &second), 0.0, "{kind}");
            let pair = net.forward_t(&images.narrow(0, 1, 2), true);
            assert!(max_abs_diff(&first.narrow(0, 1, 2), &pair) > 1e-3, "{kind}");
            assert!(max_abs_diff(&before, &running(&vs)) > 1e-4, "{kind}");
            assert!(max_abs_diff(&first, &batch) > 1e-3, "{kind}");
        }
    }
}
