//! hssl: self-supervised learning of structured image representations.
//!
//! An encoder maps an image to 64 features, read as `S = 8` slots of `D = 8` numbers.
//! Pretraining maximizes a variational bound on `I(X,Z) + I(X,A)`: the mutual information
//! between images and their features (the relational-reasoning baseline) and between
//! images and a latent relation graph `A` between the slots, predicted by a
//! message-passing relation encoder with Gumbel-softmax edges.
//!
//! The modules follow the data: [`data`] reads and augments images, [`model`] encodes
//! them, [`objective`] pairs views and scores the bound, [`train`] optimizes it, [`eval`]
//! and [`interpret`] measure and picture what was learnt, and [`report`] turns run
//! folders into tables and plots.
#![warn(missing_docs)]

pub mod data;
pub mod device;
pub mod eval;
pub mod files;
pub mod interpret;
pub mod model;
pub mod objective;
pub mod optim;
pub mod report;
#[cfg(test)]
mod test_compare;
#[cfg(test)]
mod test_rng;
pub mod train;
