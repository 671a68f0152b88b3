//! Conv-4: four convolution blocks, 3 -> 8 -> 16 -> 32 -> 64 channels (24,648 weights).

use tch::nn;
use tch::Tensor;

use super::layers;

/// Channels after each of the four blocks.
const CHANNELS: [i64; 4] = [8, 16, 32, 64];

/// One block: conv3x3 (no bias) -> BatchNorm2d -> ReLU -> pooling.
#[derive(Debug)]
struct ConvBlock {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    /// 2x2 average pooling with stride 2 when true, global average pooling when false.
    halve: bool,
}

impl ConvBlock {
    fn new(path: nn::Path, in_channels: i64, out_channels: i64, halve: bool) -> Self {
        let conv = layers::conv2d(&path / "conv", in_channels, out_channels, 3, 1);
        let bn = layers::batch_norm2d(&path / "bn", out_channels);
        Self { conv, bn, halve }
    }

    /// `[n, c_in, h, w] -> [n, c_out, h / 2, w / 2]`, or `[n, c_out]` for the last block.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let ys = xs.apply(&self.conv).apply_t(&self.bn, train).relu();
        if self.halve {
            ys.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None)
        } else {
            ys.mean_dim([2i64, 3].as_slice(), false, None)
        }
    }
}

/// The Conv-4 backbone: `[n, 3, 32, 32] -> [n, 64]`.
///
/// Blocks `block1` .. `block4`, each holding `conv` and `bn`; blocks 1-3 end with 2x2
/// average pooling, block 4 with global average pooling.
#[derive(Debug)]
pub struct Conv4 {
    blocks: Vec<ConvBlock>,
}

impl Conv4 {
    /// Creates the backbone's variables under `path`.
    pub fn new(path: &nn::Path) -> Self {
        let mut in_channels = 3;
        let mut blocks = Vec::with_capacity(CHANNELS.len());
        for (index, &out_channels) in CHANNELS.iter().enumerate() {
            let halve = index + 1 < CHANNELS.len();
            let block_path = path / format!("block{}", index + 1);
            blocks.push(ConvBlock::new(block_path, in_channels, out_channels, halve));
            in_channels = out_channels;
        }
        Self { blocks }
    }

    /// `[n, 3, 32, 32] -> [n, 64]`; `train` selects batch statistics in BatchNorm.
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        let mut xs = images.shallow_clone();
        for block in &self.blocks {
            xs = block.forward_t(&xs, train);
        }
        xs
    }
}
