//! Interpreting a trained encoder: which pixels each slot depends on (slot masks), the
//! relation graph the relation encoder sees between the slots, and the pictures and files
//! that show them.
//!
//! [`masks`] learns, for a batch of images, one soft mask per image and slot that makes
//! the slot read like a sample of its marginal (the method's upper bound on `I(X, Z_i)`);
//! [`graph`] extracts hard edge types and their frequencies over a split; [`pictures`]
//! draws `masks.png`, `graph.png` and `edge-frequency.png`; [`export`] writes the raw
//! masks (`.npy`) and the objective per step (CSV).

pub mod canvas;
pub mod error;
pub mod export;
pub mod font;
pub mod graph;
pub mod masks;
pub mod pictures;
pub mod selection;

pub use error::InterpretError;
pub use export::{save_png, write_frequency_csv, write_npy, write_objective_csv};
pub use graph::{edge_logits, edge_pairs, edge_type_frequencies, edge_types};
pub use masks::{
    find_collapsed, frozen_encoder, optimize_masks, CollapseKind, CollapsedMask, MaskResult,
    MaskSettings, COLLAPSE_HIGH, COLLAPSE_LOW,
};
pub use pictures::{denormalize, edge_frequency_picture, graph_picture, masks_picture};
pub use selection::{check_indices, sample_indices};
