//! What can go wrong while configuring, running, saving or resuming a pretraining run.

use std::path::PathBuf;

use crate::data::DataError;

/// A failure of a pretraining run, naming the file, field or step at fault.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid TOML for this configuration.
    #[error("{path}: invalid configuration: {message}")]
    ConfigSyntax {
        /// The configuration file.
        path: PathBuf,
        /// What the parser said, with the field and line.
        message: String,
    },
    /// A configuration value is out of its allowed range.
    #[error("invalid value {value} for `{field}`: expected {expected}")]
    InvalidConfig {
        /// The field at fault.
        field: String,
        /// The value given.
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// The output folder already holds a run that this one would overwrite.
    #[error(
        "{path} already holds a run (checkpoint.ot); pass --resume to continue it, \
         or choose another --out"
    )]
    RunExists {
        /// The output folder.
        path: PathBuf,
    },
    /// `--resume` was given but there is nothing to resume.
    #[error("--resume: no checkpoint found at {path}")]
    NothingToResume {
        /// The checkpoint path looked for.
        path: PathBuf,
    },
    /// The output folder holds a run trained with a different configuration.
    #[error(
        "{path} holds a run whose `{field}` differs from this configuration; \
         resume it with the same settings or choose another --out"
    )]
    ConfigMismatch {
        /// The saved configuration file.
        path: PathBuf,
        /// The first field that differs.
        field: String,
    },
    /// A checkpoint file cannot be used.
    #[error("{path}: not a usable checkpoint: {reason}")]
    BadCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A loss or bound became NaN or infinite.
    #[error(
        "step {step}: the {term} loss is {value}; training stopped, the last good \
         checkpoint (step {last_checkpoint}) is kept. Lower the learning rate or check the data"
    )]
    NonFinite {
        /// The step at which it happened (1-based).
        step: u64,
        /// The loss term (`xz`, `xa` or `total`).
        term: String,
        /// The value seen.
        value: f64,
        /// The step of the checkpoint left on disk (0: none).
        last_checkpoint: u64,
    },
    /// The data set could not be read.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The requested device cannot be used.
    #[error("{0}")]
    Device(String),
    /// A batch would not fit in memory.
    #[error(
        "a batch of {images} images x {views} views needs about {needed_gib:.1} GiB, \
         more than the {limit_gib:.1} GiB available; lower `images` or `views`"
    )]
    TooLarge {
        /// Images per batch.
        images: usize,
        /// Views per image.
        views: usize,
        /// Estimated memory of one step.
        needed_gib: f64,
        /// Memory available.
        limit_gib: f64,
    },
    /// The surrogate classifier called during training failed.
    #[error("surrogate classifier: {0}")]
    Probe(String),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
