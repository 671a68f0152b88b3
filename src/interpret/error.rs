//! What can go wrong while interpreting a trained encoder.

use std::path::PathBuf;

/// Failures of mask optimization, graph extraction, pictures and exports.
#[derive(Debug, thiserror::Error)]
pub enum InterpretError {
    /// A setting is outside the range it must lie in.
    #[error("interpretation setting `{field}` is {value}: expected {expected}")]
    InvalidSetting {
        /// The setting's name.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },

    /// A tensor or buffer does not have the shape the operation needs.
    #[error("{what} has shape {found:?}: expected {expected}")]
    Shape {
        /// Which input.
        what: &'static str,
        /// Its actual shape (or length, for flat buffers).
        found: Vec<i64>,
        /// The shape asked for.
        expected: String,
    },

    /// No image to work on.
    #[error("{what} is empty: at least one image is needed")]
    Empty {
        /// Which input.
        what: &'static str,
    },

    /// An image index beyond the end of the split.
    #[error("image index {index} is out of range: the {split} split holds {len} images \
             (valid indices 0..={last})", last = .len.saturating_sub(1))]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// Number of images available.
        len: usize,
        /// Which split the index points into.
        split: &'static str,
    },

    /// More images asked for than the split holds.
    #[error("{requested} images asked for, but the {split} split holds only {len}")]
    TooManyImages {
        /// Number asked for.
        requested: usize,
        /// Number available.
        len: usize,
        /// Which split.
        split: &'static str,
    },

    /// An edge type outside `0..types`.
    #[error("edge type {value} at position {position} is out of range: expected 0..{types}")]
    EdgeTypeOutOfRange {
        /// The value found.
        value: i64,
        /// Its position in the flat `[batch, edges]` list.
        position: usize,
        /// Number of edge types.
        types: usize,
    },

    /// The mask objective became NaN or infinite.
    #[error("mask objective is {value} at step {step}: try a lower learning rate")]
    NonFinite {
        /// The step (1-based) at which it happened.
        step: usize,
        /// The value.
        value: f64,
    },

    /// Reading or writing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// Encoding a picture failed.
    #[error("cannot encode the picture {}: {source}", path.display())]
    Picture {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: image::ImageError,
    },

    /// A tensor could not be read back into host memory.
    #[error("cannot read {what} from the tensor: {source}")]
    Tensor {
        /// Which tensor.
        what: &'static str,
        /// The underlying error.
        source: tch::TchError,
    },
}
