//! Checks shared by the classifiers: features are `[n, d]` matrices, labels one per row and
//! in range; and the seeded random streams they draw from.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use super::error::EvalError;

/// Features and labels checked and moved to the CPU: `x` `[n, d]` float, `y` `[n]` int64.
pub(crate) struct Labelled {
    pub x: Tensor,
    pub y: Tensor,
}

/// Checks that `x` is `[n, d]` with `n >= 1` and `y` holds `n` labels in `0..classes`.
pub(crate) fn labelled(
    x_name: &'static str,
    x: &Tensor,
    y_name: &'static str,
    y: &Tensor,
    classes: usize,
) -> Result<Labelled, EvalError> {
    let shape = x.size();
    if shape.len() != 2 {
        return Err(EvalError::NotAMatrix {
            name: x_name,
            shape,
        });
    }
    let rows = shape[0];
    if rows == 0 {
        return Err(EvalError::Empty { name: x_name });
    }
    if y.size() != [rows] {
        return Err(EvalError::LabelShape {
            name: y_name,
            shape: y.size(),
            rows,
        });
    }
    if classes == 0 {
        return Err(EvalError::InvalidSetting {
            field: "classes",
            value: "0".into(),
            expected: "at least 1",
        });
    }
    let x = x
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let y = y
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Int64)
        .contiguous();
    let (low, high) = (y.min().int64_value(&[]), y.max().int64_value(&[]));
    for label in [low, high] {
        if label < 0 || label >= classes as i64 {
            return Err(EvalError::LabelOutOfRange {
                name: y_name,
                label,
                classes,
            });
        }
    }
    Ok(Labelled { x, y })
}

/// Checks that training and test features have the same width.
pub(crate) fn same_width(train: &Labelled, test: &Labelled) -> Result<(), EvalError> {
    let (a, b) = (train.x.size()[1], test.x.size()[1]);
    if a != b {
        return Err(EvalError::WidthMismatch { train: a, test: b });
    }
    Ok(())
}

/// An independent random stream for each `(seed, stream)` pair.
pub(crate) fn seeded_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}
