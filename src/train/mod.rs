//! The pretraining loop, its configuration, checkpoints and metrics.

pub mod bench;
pub mod ceiling;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod method;
pub mod metrics;
pub mod pretrain;

pub use config::PretrainConfig;
pub use error::TrainError;
pub use method::Method;
pub use pretrain::{pretrain, PretrainSummary};
