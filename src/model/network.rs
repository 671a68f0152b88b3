//! The whole network: encoder, relation head, relation encoder and structure critic.

use serde::{Deserialize, Serialize};
use tch::nn;

use super::backbone::{Backbone, BackboneKind, FEATURES, SLOTS, SLOT_DIM};
use super::precision::Precision;
use super::relation_encoder::RelationEncoder;
use super::relation_head::{RelationHead, RELATION_HEAD_HIDDEN};
use super::structure_critic::StructureCritic;

/// A network configuration that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkConfigError {
    /// `hidden` is not positive.
    #[error("network config field `hidden` is {0}: expected at least 1 (default 256)")]
    Hidden(i64),
    /// `edge_types` is not positive.
    #[error("network config field `edge_types` is {0}: expected at least 1 (default 2)")]
    EdgeTypes(i64),
}

/// What to build: the backbone and the sizes of the relation encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// The encoder `g` (default `conv4`).
    pub backbone: BackboneKind,
    /// Hidden width of the relation encoder's MLPs (default 256).
    pub hidden: i64,
    /// Number `K` of edge types (default 2).
    pub edge_types: i64,
    /// Number format inside the relation encoder (default `fp32`).
    pub precision: Precision,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            backbone: BackboneKind::Conv4,
            hidden: 256,
            edge_types: 2,
            precision: Precision::Fp32,
        }
    }
}

impl NetworkConfig {
    /// Checks that every size is positive.
    pub fn validate(&self) -> Result<(), NetworkConfigError> {
        if self.hidden < 1 {
            return Err(NetworkConfigError::Hidden(self.hidden));
        }
        if self.edge_types < 1 {
            return Err(NetworkConfigError::EdgeTypes(self.edge_types));
        }
        Ok(())
    }
}

/// Every learned part of the method, its variables in one store under the sub-paths
/// `encoder`, `relation_head`, `relation_encoder` and `structure_critic`.
///
/// Evaluation needs only `encoder`; the other parts exist for the pretraining objective.
#[derive(Debug)]
pub struct Network {
    /// `g`: images `[n, 3, 32, 32]` -> features `[n, 64]`.
    pub encoder: Backbone,
    /// `f_delta`, the I(X,Z) critic on pairs of features.
    pub relation_head: RelationHead,
    /// `m_eta`: slots `[n, 8, 8]` -> edge-type logits `[n, 56, K]`.
    pub relation_encoder: RelationEncoder,
    /// `T_omega`, the I(X,A) critic on pairs of edge-type maps.
    pub structure_critic: StructureCritic,
}

impl Network {
    /// Creates all parts under `root`.
    ///
    /// # Panics
    ///
    /// When `config` fails [`NetworkConfig::validate`]; see [`Self::try_new`].
    pub fn new(root: &nn::Path, config: &NetworkConfig) -> Self {
        match Self::try_new(root, config) {
            Ok(network) => network,
            Err(err) => panic!("{err}"),
        }
    }

    /// Creates all parts under `root`; fails on a config with a non-positive size.
    pub fn try_new(root: &nn::Path, config: &NetworkConfig) -> Result<Self, NetworkConfigError> {
        config.validate()?;
        let relation_encoder = RelationEncoder::new(
            &(root / "relation_encoder"),
            SLOT_DIM,
            config.hidden,
            config.edge_types,
            SLOTS,
        )
        .computing_in(config.precision.compute_kind());
        let (edges, edge_types) = (relation_encoder.edges(), config.edge_types);
        let head_path = root / "relation_head";
        let critic_path = root / "structure_critic";
        Ok(Self {
            encoder: Backbone::new(config.backbone, &(root / "encoder")),
            relation_head: RelationHead::new(&head_path, FEATURES, RELATION_HEAD_HIDDEN),
            relation_encoder,
            structure_critic: StructureCritic::new(&critic_path, edges, edge_types),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn parts_live_under_their_own_sub_paths() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _network = Network::new(&vs.root(), &NetworkConfig::default());
        let names: Vec<String> = vs.variables().into_keys().collect();
        for part in [
            "encoder.",
            "relation_head.",
            "relation_encoder.",
            "structure_critic.",
        ] {
            assert!(
                names.iter().any(|n| n.starts_with(part)),
                "no variable under {part}"
            );
        }
        assert!(names.iter().all(|n| n.split('.').next().is_some_and(|p| {
            [
                "encoder",
                "relation_head",
                "relation_encoder",
                "structure_critic",
            ]
            .contains(&p)
        })));
        assert!(names.contains(&"structure_critic.weight".to_string()));
        assert!(names.contains(&"relation_encoder.mlp4.linear1.weight".to_string()));
        assert!(names.contains(&"encoder.block1.bn.running_mean".to_string()));
    }

    #[test]
    fn config_defaults_and_validation() {
        let config: NetworkConfig = serde_json::from_str(r#"{"backbone": "resnet8"}"#).unwrap();
        assert_eq!(config.backbone, BackboneKind::ResNet8);
        assert_eq!((config.hidden, config.edge_types), (256, 2));
        let bad = NetworkConfig {
            hidden: 0,
            ..Default::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("`hidden`") && err.contains('0'), "{err}");
        let vs = nn::VarStore::new(Device::Cpu);
        let bad = NetworkConfig {
            edge_types: -1,
            ..Default::default()
        };
        assert_eq!(
            Network::try_new(&vs.root(), &bad).unwrap_err(),
            NetworkConfigError::EdgeTypes(-1)
        );
    }
}
