//! What can go wrong while measuring an encoder: mismatched features and labels, settings
//! out of range, a diverging loss, or a file that cannot be written.

use std::path::PathBuf;

/// A failure of an evaluation, naming the tensor, setting or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Features that are not a `[n, d]` matrix.
    #[error("{name} have shape {shape:?}, expected a matrix [n, d]")]
    NotAMatrix {
        /// Which features (`train features`, `test features`).
        name: &'static str,
        /// The shape found.
        shape: Vec<i64>,
    },
    /// Labels that are not a vector with one entry per row of the features.
    #[error(
        "{name} have shape {shape:?}, expected a vector of {rows} labels (one per feature row)"
    )]
    LabelShape {
        /// Which labels (`train labels`, `test labels`).
        name: &'static str,
        /// The shape found.
        shape: Vec<i64>,
        /// Rows of the matching features.
        rows: i64,
    },
    /// Training and test features of different widths.
    #[error("train features have {train} columns but test features have {test}")]
    WidthMismatch {
        /// Columns of the training features.
        train: i64,
        /// Columns of the test features.
        test: i64,
    },
    /// A label outside `0..classes`.
    #[error("{name} hold the label {label}, expected labels in 0..{classes}")]
    LabelOutOfRange {
        /// Which labels.
        name: &'static str,
        /// The offending label.
        label: i64,
        /// The number of classes.
        classes: usize,
    },
    /// A split with no example where at least one is needed.
    #[error("{name} are empty: at least one example is needed")]
    Empty {
        /// What is empty (`train features`, `training images`).
        name: &'static str,
    },
    /// A setting out of its allowed range.
    #[error("invalid value {value} for `{field}`: expected {expected}")]
    InvalidSetting {
        /// The setting at fault.
        field: &'static str,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// The training loss became NaN or infinite.
    #[error("{what}: the loss is {loss} at step {step}; lower the learning rate")]
    NonFiniteLoss {
        /// What was being trained (`linear probe`, `supervised reference`).
        what: &'static str,
        /// The step (1-based).
        step: u64,
        /// The value seen.
        loss: f64,
    },
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
