//! The surrogate curve of the paper's Figure 3: during pretraining, how well a fresh linear
//! classifier fits the current features after a single epoch.

use tch::Device;

use super::error::EvalError;
use super::features::{embed_indices, labels_at, EMBED_BATCH};
use super::linear_probe::{LinearClassifier, ProbeSettings};
use crate::data::Dataset;
use crate::model::Backbone;

/// Training accuracy, in [0, 1], of a fresh `Linear(64, classes)` trained for one epoch
/// (Adam 1e-3, batch 128, order and initial weights from `seed`) on the features of the
/// first `images` training images of `dataset` (all of them if there are fewer), measured
/// on those same images after the epoch.
pub fn surrogate_accuracy(
    encoder: &Backbone,
    dataset: &Dataset,
    images: usize,
    device: Device,
    seed: u64,
) -> Result<f64, EvalError> {
    let n = images.min(dataset.len());
    if n == 0 {
        return Err(EvalError::Empty {
            name: "training images for the surrogate classifier",
        });
    }
    let indices: Vec<usize> = (0..n).collect();
    let x = embed_indices(encoder, dataset, &indices, device, EMBED_BATCH);
    let y = labels_at(dataset, &indices);

    let settings = ProbeSettings {
        epochs: 1,
        seed,
        ..ProbeSettings::default()
    };
    let mut classifier = LinearClassifier::new(x.size()[1], dataset.num_classes(), seed);
    classifier.fit(&x, &y, &settings)?;
    classifier.accuracy(&x, &y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::CifarKind;
    use crate::model::BackboneKind;
    use tch::nn::VarStore;

    /// Images of one flat colour per class (two classes used of ten).
    fn coloured(n: usize) -> Dataset {
        let mut images = Vec::with_capacity(n * 3072);
        let mut labels = Vec::with_capacity(n);
        for i in 0..n {
            let label = (i % 2) as u16;
            let value = if label == 0 { 20 } else { 235 };
            images.extend(std::iter::repeat_n(value, 3072));
            labels.push(label);
        }
        let class_names = (0..10).map(|i| format!("c{i}")).collect();
        Dataset {
            kind: CifarKind::Cifar10,
            images,
            labels,
            class_names,
        }
    }

    #[test]
    fn it_is_one_epoch_of_the_probe_on_the_first_images() {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let encoder = Backbone::new(BackboneKind::Conv4, &(vs.root() / "encoder"));
        let mut data = coloured(300);
        for (i, byte) in data.images.iter_mut().enumerate() {
            *byte = byte.wrapping_add((i * 31 % 97) as u8);
        }
        let got = surrogate_accuracy(&encoder, &data, 200, Device::Cpu, 3).unwrap();

        let indices: Vec<usize> = (0..200).collect();
        let x = embed_indices(&encoder, &data, &indices, Device::Cpu, 64);
        let y = labels_at(&data, &indices);
        let mut classifier = LinearClassifier::new(64, 10, 3);
        let settings = ProbeSettings {
            epochs: 1,
            seed: 3,
            ..ProbeSettings::default()
        };
        let (_, steps) = classifier.fit(&x, &y, &settings).unwrap();
        assert_eq!(steps, 2, "one epoch of 200 images in batches of 128");
        assert_eq!(got, classifier.accuracy(&x, &y).unwrap());

        // Images past the first 200 play no part.
        data.labels[250] = 9;
        data.images[260 * 3072] = 0;
        assert_eq!(
            surrogate_accuracy(&encoder, &data, 200, Device::Cpu, 3).unwrap(),
            got
        );
        assert_eq!(
            got,
            surrogate_accuracy(&encoder, &data, 200, Device::Cpu, 3).unwrap()
        );
    }

    #[test]
    fn no_images_is_an_error() {
        let vs = VarStore::new(Device::Cpu);
        let encoder = Backbone::new(BackboneKind::Conv4, &(vs.root() / "encoder"));
        let err = surrogate_accuracy(&encoder, &coloured(4), 0, Device::Cpu, 0).unwrap_err();
        assert!(err.to_string().contains("surrogate"), "{err}");
    }
}
