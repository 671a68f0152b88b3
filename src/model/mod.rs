//! The networks: backbones, relation head, relation encoder, Gumbel-softmax, critic.

pub mod backbone;
mod batch_stats;
pub mod conv4;
pub mod gumbel;
mod kernels;
mod layers;
pub mod network;
pub mod precision;
pub mod relation_encoder;
pub mod relation_head;
pub mod resnet8;
pub mod structure_critic;

pub use backbone::{Backbone, BackboneKind, UnknownBackbone, FEATURES, SLOTS, SLOT_DIM};
pub use conv4::Conv4;
pub use gumbel::{gumbel_softmax, gumbel_softmax_from_uniform, hard_edge_types};
pub use network::{Network, NetworkConfig, NetworkConfigError};
pub use precision::{Precision, UnknownPrecision};
pub use relation_encoder::RelationEncoder;
pub use relation_head::{RelationHead, RELATION_HEAD_HIDDEN};
pub use resnet8::ResNet8;
pub use structure_critic::StructureCritic;
