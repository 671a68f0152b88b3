//! Test support: how far one tensor is from another.

use tch::Tensor;

/// `|a - b| / |b|` in the Frobenius norm (`|b|` at least `1e-12`).
pub(crate) fn relative(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).norm().double_value(&[]) / b.norm().double_value(&[]).max(1e-12)
}
