//! Pairs of views and the variational bounds on I(X,Z) and I(X,A).

pub mod estimator;
pub mod objective;
pub mod pairs;
pub mod terms;

pub use estimator::{Bound, Estimator, UnknownEstimator, NWJ_EXPONENT_CAP};
pub use objective::{Objective, UnknownObjective};
pub use pairs::{PairTensors, Pairs, PairsError};
pub use terms::{evaluate, evaluate_fused, evaluate_plain, Terms};
