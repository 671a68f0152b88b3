//! Images in: CIFAR readers, download with checksum, augmentation and view batches.

pub mod augment;
pub mod cifar;
pub mod color;
pub mod crop;
pub mod download;
pub mod error;
pub mod views;

pub use augment::{AugmentParams, Augmenter};
pub use cifar::{
    load, normalize, write_cifar10, write_cifar100, CifarKind, Dataset, Split, IMAGE_BYTES,
};
pub use download::{download, Source};
pub use error::DataError;
pub use views::{
    batches, epoch_order, step_seed, steps_per_epoch, view_batch, view_seed, Prefetcher, Schedule,
};
