//! ResNet-8: a stem and three basic blocks of 16, 32 and 64 channels (77,392 parameters).

use tch::nn;
use tch::Tensor;

use super::layers;

/// conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus a shortcut, then ReLU.
#[derive(Debug)]
struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    /// 1x1 convolution and BatchNorm where the shape changes; identity otherwise.
    shortcut: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl BasicBlock {
    fn new(path: nn::Path, in_channels: i64, out_channels: i64, stride: i64) -> Self {
        let conv1 = layers::conv2d(&path / "conv1", in_channels, out_channels, 3, stride);
        let bn1 = layers::batch_norm2d(&path / "bn1", out_channels);
        let conv2 = layers::conv2d(&path / "conv2", out_channels, out_channels, 3, 1);
        let bn2 = layers::batch_norm2d(&path / "bn2", out_channels);
        let shortcut = (stride != 1 || in_channels != out_channels).then(|| {
            let conv = layers::conv2d(
                &path / "shortcut_conv",
                in_channels,
                out_channels,
                1,
                stride,
            );
            (
                conv,
                layers::batch_norm2d(&path / "shortcut_bn", out_channels),
            )
        });
        Self {
            conv1,
            bn1,
            conv2,
            bn2,
            shortcut,
        }
    }

    /// `[n, c_in, h, w] -> [n, c_out, h / stride, w / stride]`.
    /// The ReLUs and the shortcut sum run in place on BatchNorm outputs, which the
    /// BatchNorm backward does not need (it keeps its input); the ReLU backward reads its
    /// result. This keeps two activations per block fewer alive for the backward pass.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut residual = xs.apply(&self.conv1).apply_t(&self.bn1, train);
        let _ = residual.relu_();
        let mut residual = residual.apply(&self.conv2).apply_t(&self.bn2, train);
        match &self.shortcut {
            Some((conv, bn)) => residual += xs.apply(conv).apply_t(bn, train),
            None => residual += xs,
        }
        let _ = residual.relu_();
        residual
    }
}

/// The ResNet-8 backbone: `[n, 3, 32, 32] -> [n, 64]`.
///
/// Variables: `stem_conv`, `stem_bn`, then `block1` .. `block3` (strides 1, 2, 2), each
/// with `conv1`, `bn1`, `conv2`, `bn2` and, where the shape changes, `shortcut_conv`
/// and `shortcut_bn`.
#[derive(Debug)]
pub struct ResNet8 {
    stem_conv: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    blocks: Vec<BasicBlock>,
}

impl ResNet8 {
    /// Creates the backbone's variables under `path`.
    pub fn new(path: &nn::Path) -> Self {
        let stem_conv = layers::conv2d(path / "stem_conv", 3, 16, 3, 1);
        let stem_bn = layers::batch_norm2d(path / "stem_bn", 16);
        let stages = [(16, 16, 1), (16, 32, 2), (32, 64, 2)];
        let blocks = stages
            .iter()
            .enumerate()
            .map(|(index, &(cin, cout, stride))| {
                BasicBlock::new(path / format!("block{}", index + 1), cin, cout, stride)
            })
            .collect();
        Self {
            stem_conv,
            stem_bn,
            blocks,
        }
    }

    /// `[n, 3, 32, 32] -> [n, 64]`; `train` selects batch statistics in BatchNorm.
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        let mut xs = images.apply(&self.stem_conv).apply_t(&self.stem_bn, train);
        let _ = xs.relu_();
        for block in &self.blocks {
            xs = block.forward_t(&xs, train);
        }
        xs.mean_dim([2i64, 3].as_slice(), false, None)
    }
}
