//! Measuring what an encoder learnt: linear probe, kNN, the surrogate curve, the supervised
//! reference, and feature export for other tools.
//!
//! Every function here takes an encoder, data and a device; none reads checkpoints or
//! parses arguments. Features are computed once with BatchNorm in inference mode and the
//! classifiers on top of them run on the CPU, where 50,000 x 64 features are small.

pub mod error;
pub mod export;
pub mod features;
pub mod knn;
pub mod linear_probe;
pub mod pad_crop;
pub mod supervised;
pub mod surrogate;

mod inputs;

pub use error::EvalError;
pub use export::{write_npy_f32, write_npy_i64, write_npy_u16};
pub use features::{embed, embed_indices, label_tensor, EMBED_BATCH};
pub use knn::{knn_accuracy, DEFAULT_K};
pub use linear_probe::{linear_probe, LinearClassifier, ProbeResult, ProbeSettings};
pub use supervised::{
    supervised_head, train_supervised, SupervisedSettings, SupervisedStep, SupervisedSummary,
    HEAD_PATH,
};
pub use surrogate::surrogate_accuracy;
