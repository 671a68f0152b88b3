//! Features of a frozen encoder: the normalized, un-augmented images through the backbone
//! with BatchNorm in inference mode, computed in batches without gradients.

use tch::{Device, Kind, Tensor};

use crate::data::{self, Dataset};
use crate::model::Backbone;

/// Images per forward pass when computing features (a suggestion for callers).
pub const EMBED_BATCH: usize = 1000;

/// Features of every image of `dataset`: `[n, 3, 32, 32] -> [n, 64]`, float, on the CPU.
/// `batch` images go through `encoder` on `device` at a time (0 counts as 1).
pub fn embed(encoder: &Backbone, dataset: &Dataset, device: Device, batch: usize) -> Tensor {
    let indices: Vec<usize> = (0..dataset.len()).collect();
    embed_indices(encoder, dataset, &indices, device, batch)
}

/// Features of the images at `indices`, in that order: `[n, 64]`, float, on the CPU.
///
/// # Panics
/// If an index is not below `dataset.len()`.
pub fn embed_indices(
    encoder: &Backbone,
    dataset: &Dataset,
    indices: &[usize],
    device: Device,
    batch: usize,
) -> Tensor {
    let batch = batch.max(1);
    tch::no_grad(|| {
        let parts: Vec<Tensor> = indices
            .chunks(batch)
            .map(|chunk| {
                let pixels = data::normalize(dataset, chunk);
                let images = Tensor::from_slice(&pixels)
                    .view([chunk.len() as i64, 3, 32, 32])
                    .to_device(device);
                encoder
                    .forward_t(&images, false)
                    .to_kind(Kind::Float)
                    .to_device(Device::Cpu)
            })
            .collect();
        if parts.is_empty() {
            let width = encoder
                .forward_t(&Tensor::zeros([1, 3, 32, 32], (Kind::Float, device)), false)
                .size()[1];
            Tensor::zeros([0, width], (Kind::Float, Device::Cpu))
        } else {
            Tensor::cat(&parts, 0)
        }
    })
}

/// The labels of `dataset` as an int64 tensor `[n]` on the CPU.
pub fn label_tensor(dataset: &Dataset) -> Tensor {
    let labels: Vec<i64> = dataset.labels.iter().map(|&l| i64::from(l)).collect();
    Tensor::from_slice(&labels)
}

/// The labels of the images at `indices`, as an int64 tensor `[n]` on the CPU.
///
/// # Panics
/// If an index is not below `dataset.len()`.
pub fn labels_at(dataset: &Dataset, indices: &[usize]) -> Tensor {
    let labels: Vec<i64> = indices
        .iter()
        .map(|&i| i64::from(dataset.labels[i]))
        .collect();
    Tensor::from_slice(&labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::CifarKind;
    use crate::model::BackboneKind;
    use tch::nn::VarStore;

    fn dataset(n: usize) -> Dataset {
        let images = (0..n * 3072).map(|i| (i * 7 % 251) as u8).collect();
        let labels = (0..n).map(|i| (i % 10) as u16).collect();
        let class_names = (0..10).map(|i| format!("c{i}")).collect();
        Dataset {
            kind: CifarKind::Cifar10,
            images,
            labels,
            class_names,
        }
    }

    fn encoder() -> (VarStore, Backbone) {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let net = Backbone::new(BackboneKind::Conv4, &(vs.root() / "encoder"));
        (vs, net)
    }

    #[test]
    fn batches_do_not_change_the_features() {
        let (_vs, net) = encoder();
        let d = dataset(7);
        let whole = embed(&net, &d, Device::Cpu, 100);
        let pieces = embed(&net, &d, Device::Cpu, 3);
        assert_eq!(whole.size(), [7, 64]);
        assert_eq!(whole.kind(), Kind::Float);
        assert!(whole.allclose(&pieces, 1e-5, 1e-6, false));

        let two = embed_indices(&net, &d, &[4, 1], Device::Cpu, 0);
        assert!(two.get(0).allclose(&whole.get(4), 1e-5, 1e-6, false));
        assert!(two.get(1).allclose(&whole.get(1), 1e-5, 1e-6, false));
        assert!(!two.requires_grad());
    }

    #[test]
    fn features_are_those_of_the_normalized_images_in_inference_mode() {
        let (_vs, net) = encoder();
        let d = dataset(2);
        let pixels = data::normalize(&d, &[0, 1]);
        let images = Tensor::from_slice(&pixels).view([2, 3, 32, 32]);
        let want = tch::no_grad(|| net.forward_t(&images, false));
        let got = embed(&net, &d, Device::Cpu, 1);
        assert!(got.allclose(&want, 1e-5, 1e-6, false));
        let batch_statistics = tch::no_grad(|| net.forward_t(&images, true));
        assert!(!got.allclose(&batch_statistics, 1e-3, 1e-3, false));
    }

    #[test]
    fn an_empty_split_gives_no_rows_and_labels_are_int64() {
        let (_vs, net) = encoder();
        assert_eq!(embed(&net, &dataset(0), Device::Cpu, 10).size(), [0, 64]);
        let y = label_tensor(&dataset(3));
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), [0, 1, 2]);
        let y = labels_at(&dataset(13), &[12, 0]);
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), [2, 0]);
    }
}
