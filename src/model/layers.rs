//! Layer constructors with the project's initialisation, shared by the networks.
//!
//! tch's defaults differ from PyTorch's: its BatchNorm weight starts uniform in `[0, 1]`
//! and its Linear weight uses a ReLU gain. These helpers restore the initialisation the
//! method is specified with (BatchNorm weight 1, bias 0; He-normal convolutions) and
//! PyTorch's Linear default (weight and bias uniform in `+-1/sqrt(in_features)`).

use tch::nn;

/// A bias-free square convolution, weight normal with std `sqrt(2 / (k * k * out))`.
pub(crate) fn conv2d(
    path: nn::Path,
    in_channels: i64,
    out_channels: i64,
    kernel: i64,
    stride: i64,
) -> nn::Conv2D {
    let stdev = (2.0 / (kernel * kernel * out_channels) as f64).sqrt();
    let config = nn::ConvConfig {
        stride,
        padding: kernel / 2,
        bias: false,
        ws_init: nn::Init::Randn { mean: 0.0, stdev },
        ..Default::default()
    };
    nn::conv2d(path, in_channels, out_channels, kernel, config)
}

fn batch_norm_config() -> nn::BatchNormConfig {
    nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    }
}

/// BatchNorm over `[batch, channels, height, width]`, weight 1 and bias 0.
pub(crate) fn batch_norm2d(path: nn::Path, channels: i64) -> nn::BatchNorm {
    nn::batch_norm2d(path, channels, batch_norm_config())
}

/// BatchNorm over `[rows, features]`, weight 1 and bias 0.
pub(crate) fn batch_norm1d(path: nn::Path, features: i64) -> nn::BatchNorm {
    nn::batch_norm1d(path, features, batch_norm_config())
}

/// A fully connected layer initialised as PyTorch does: weight and bias uniform in
/// `[-1/sqrt(in), 1/sqrt(in)]`.
pub(crate) fn linear(path: nn::Path, in_features: i64, out_features: i64) -> nn::Linear {
    let bound = 1.0 / (in_features as f64).sqrt();
    let init = nn::Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let config = nn::LinearConfig {
        ws_init: init,
        bs_init: Some(init),
        bias: true,
    };
    nn::linear(path, in_features, out_features, config)
}

/// Number of scalars in the trainable variables of a store.
#[cfg(test)]
pub(crate) fn trainable_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}
