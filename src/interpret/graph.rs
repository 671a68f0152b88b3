//! The relation graph of an image: the hard edge types that the relation encoder `m_eta`
//! gives the slots of its un-augmented features, and how often each edge takes each type
//! over a whole split.

use tch::{Device, Kind, Tensor};

use super::error::InterpretError;
use crate::data::{self, Dataset};
use crate::model::relation_encoder::edge_endpoints;
use crate::model::{hard_edge_types, Backbone, RelationEncoder, SLOTS, SLOT_DIM};

/// The edges of a graph of `slots` nodes as `(receiver, sender)` pairs, `receiver !=
/// sender`, in the order of the relation encoder's output: row-major over the
/// off-diagonal of a `slots x slots` grid.
pub fn edge_pairs(slots: usize) -> Vec<(usize, usize)> {
    let (receivers, senders) = edge_endpoints(slots as i64);
    receivers
        .into_iter()
        .zip(senders)
        .map(|(r, s)| (r as usize, s as usize))
        .collect()
}

/// The network's edge-type logits in inference mode (BatchNorm on its running
/// statistics): images `[n, 3, 32, 32]` -> features `[n, 64]` -> slots `[n, S, D]` ->
/// logits `[n, E, K]`.
pub fn edge_logits<'a>(
    encoder: &'a Backbone,
    relation_encoder: &'a RelationEncoder,
) -> impl Fn(&Tensor) -> Tensor + 'a {
    move |images| {
        let features = encoder.forward_t(images, false);
        let slots = features.view([-1, SLOTS, SLOT_DIM]);
        relation_encoder.forward(&slots, false)
    }
}

/// Hard (argmax) edge types of `images`: `edge_logits` maps `[n, 3, 32, 32]` to
/// `[n, E, K]` (see [`edge_logits`]); returns i64 `[n, E]` on the CPU. No gradients.
pub fn edge_types(
    edge_logits: &dyn Fn(&Tensor) -> Tensor,
    images: &Tensor,
) -> Result<Tensor, InterpretError> {
    let logits = checked_logits(edge_logits, images)?;
    Ok(hard_edge_types(&logits).to_device(Device::Cpu))
}

fn checked_logits(
    edge_logits: &dyn Fn(&Tensor) -> Tensor,
    images: &Tensor,
) -> Result<Tensor, InterpretError> {
    let size = images.size();
    if size.len() != 4 || size[1..] != [3, 32, 32] {
        return Err(InterpretError::Shape {
            what: "images",
            found: size,
            expected: "[n, 3, 32, 32]".into(),
        });
    }
    let logits = tch::no_grad(|| edge_logits(images));
    let found = logits.size();
    if found.len() != 3 || found[0] != size[0] || found[2] < 1 {
        return Err(InterpretError::Shape {
            what: "edge logits",
            found,
            expected: format!("[{}, edges, edge_types]", size[0]),
        });
    }
    Ok(logits)
}

/// For every edge and type, the fraction of the images of `dataset` in which the edge
/// has that hard type: `[E, K]` f64 on the CPU, each row summing to 1. The images are
/// normalized and sent through `edge_logits` on `device` `batch_size` at a time.
pub fn edge_type_frequencies(
    edge_logits: &dyn Fn(&Tensor) -> Tensor,
    dataset: &Dataset,
    batch_size: usize,
    device: Device,
) -> Result<Tensor, InterpretError> {
    if dataset.is_empty() {
        return Err(InterpretError::Empty { what: "data set" });
    }
    if batch_size == 0 {
        return Err(InterpretError::InvalidSetting {
            field: "batch_size",
            value: "0".into(),
            expected: "at least 1",
        });
    }
    let indices: Vec<usize> = (0..dataset.len()).collect();
    let mut counts: Option<Tensor> = None;
    for chunk in indices.chunks(batch_size) {
        let values = data::normalize(dataset, chunk);
        let images = Tensor::from_slice(&values)
            .view([chunk.len() as i64, 3, 32, 32])
            .to_device(device);
        let logits = checked_logits(edge_logits, &images)?;
        let types = logits.size()[2];
        let one_hot =
            hard_edge_types(&logits)
                .one_hot(types)
                .sum_dim_intlist(0, false, Kind::Int64);
        counts = Some(match counts {
            Some(total) => total + one_hot,
            None => one_hot,
        });
    }
    let counts = counts.ok_or(InterpretError::Empty { what: "data set" })?;
    Ok(counts.to_device(Device::Cpu).to_kind(Kind::Double) / dataset.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{CifarKind, Split};
    use crate::model::{Network, NetworkConfig};

    #[test]
    fn edge_pairs_follow_the_relation_encoder_order() {
        let pairs = edge_pairs(8);
        assert_eq!(pairs.len(), 56);
        assert_eq!(pairs[..3], [(0, 1), (0, 2), (0, 3)]);
        assert_eq!(pairs[7], (1, 0));
        assert_eq!(pairs[55], (7, 6));
        assert!(pairs.iter().all(|(r, s)| r != s));
    }

    /// Logits over 3 edges and 2 types: edge `e` takes type 1 when the image's first
    /// pixel (normalized) exceeds `e - 1`.
    fn threshold_logits(images: &Tensor) -> Tensor {
        let n = images.size()[0];
        let first = images.view([n, -1]).narrow(1, 0, 1);
        let margins = first - Tensor::from_slice(&[-1.0f32, 0.0, 1.0]).view([1, 3]);
        Tensor::stack(&[-&margins, margins], 2)
    }

    #[test]
    fn frequencies_count_hard_types_over_every_batch() {
        let dir = tempfile::tempdir().unwrap();
        data::write_cifar10(dir.path(), 5, 7, 3).unwrap();
        let dataset = data::load(dir.path(), CifarKind::Cifar10, Split::Test).unwrap();
        let values = data::normalize(&dataset, &(0..7).collect::<Vec<_>>());
        let first: Vec<f32> = (0..7).map(|i| values[i * 3072]).collect();

        let frequencies =
            edge_type_frequencies(&threshold_logits, &dataset, 3, Device::Cpu).unwrap();
        assert_eq!(frequencies.size(), [3, 2]);
        for (edge, threshold) in [-1.0f32, 0.0, 1.0].into_iter().enumerate() {
            let above = first.iter().filter(|&&v| v > threshold).count() as f64 / 7.0;
            let row = frequencies.get(edge as i64);
            assert!(
                (row.double_value(&[1]) - above).abs() < 1e-12,
                "edge {edge}"
            );
            assert!(
                (row.double_value(&[0]) - (1.0 - above)).abs() < 1e-12,
                "edge {edge}"
            );
        }

        let err = edge_type_frequencies(&threshold_logits, &dataset, 0, Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("batch_size"), "{err}");
    }

    #[test]
    fn a_network_gives_one_hard_type_per_edge_and_frequencies_agree_with_them() {
        tch::manual_seed(2);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let network = Network::new(&vs.root(), &NetworkConfig::default());
        let logits = edge_logits(&network.encoder, &network.relation_encoder);

        let dir = tempfile::tempdir().unwrap();
        data::write_cifar10(dir.path(), 5, 6, 4).unwrap();
        let dataset = data::load(dir.path(), CifarKind::Cifar10, Split::Test).unwrap();
        let values = data::normalize(&dataset, &(0..6).collect::<Vec<_>>());
        let images = Tensor::from_slice(&values).view([6, 3, 32, 32]);

        let types = edge_types(&logits, &images).unwrap();
        assert_eq!(types.size(), [6, 56]);
        assert_eq!(types.kind(), Kind::Int64);
        assert!(types.min().int64_value(&[]) >= 0 && types.max().int64_value(&[]) < 2);

        // Inference mode: an image's types do not depend on its batch.
        let alone = edge_types(&logits, &images.narrow(0, 4, 1)).unwrap();
        assert!(alone.equal(&types.narrow(0, 4, 1)));

        let frequencies = edge_type_frequencies(&logits, &dataset, 4, Device::Cpu).unwrap();
        let expected = types
            .one_hot(2)
            .to_kind(Kind::Double)
            .mean_dim(0, false, Kind::Double);
        assert_eq!(frequencies.size(), [56, 2]);
        assert!((frequencies - expected).abs().max().double_value(&[]) < 1e-12);
    }

    #[test]
    fn misshapen_images_and_logits_are_named() {
        let small = Tensor::zeros([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        let err = edge_types(&threshold_logits, &small)
            .unwrap_err()
            .to_string();
        assert!(err.contains("images has shape [2, 3, 8, 8]"), "{err}");
        let flat = |images: &Tensor| images.view([images.size()[0], -1]);
        let images = Tensor::zeros([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let err = edge_types(&flat, &images).unwrap_err().to_string();
        assert!(err.contains("edge logits has shape [2, 3072]"), "{err}");
    }
}
