//! CIFAR-10 and CIFAR-100 in their official binary layouts: reading, checking,
//! normalizing.
//!
//! CIFAR-10 records are one label byte and 3,072 pixel bytes; CIFAR-100 records are a
//! coarse label byte, a fine label byte and 3,072 pixel bytes. Pixels are channel-major
//! (1,024 red, 1,024 green, 1,024 blue bytes, each plane row-major), which is also the
//! `[3, 32, 32]` layout the encoder takes.

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::DataError;

/// Side of a CIFAR image in pixels.
pub const IMAGE_SIDE: usize = 32;
/// Colour channels of a CIFAR image.
pub const CHANNELS: usize = 3;
/// Bytes (and values) of one image: `3 * 32 * 32`.
pub const IMAGE_BYTES: usize = CHANNELS * IMAGE_SIDE * IMAGE_SIDE;

const CIFAR10_TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
const CIFAR10_TEST_FILE: &str = "test_batch.bin";
const CIFAR10_META: &str = "batches.meta.txt";
const CIFAR100_TRAIN_FILE: &str = "train.bin";
const CIFAR100_TEST_FILE: &str = "test.bin";
const CIFAR100_FINE_META: &str = "fine_label_names.txt";
const CIFAR100_COARSE_META: &str = "coarse_label_names.txt";
const CIFAR100_COARSE_COUNT: usize = 20;

/// The CIFAR-10 class names, in label order.
#[rustfmt::skip]
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
    "truck",
];

/// The CIFAR-100 fine class names, in label order.
#[rustfmt::skip]
pub const CIFAR100_FINE_CLASSES: [&str; 100] = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest",
    "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower",
    "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear",
    "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine", "possum", "rabbit",
    "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower",
    "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor", "train",
    "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
];

/// The CIFAR-100 coarse class (superclass) names, in label order.
#[rustfmt::skip]
pub const CIFAR100_COARSE_CLASSES: [&str; 20] = [
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
    "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
];

/// Which CIFAR data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CifarKind {
    /// CIFAR-10: 10 classes, 50,000 training and 10,000 test images.
    Cifar10,
    /// CIFAR-100: 100 fine classes (20 coarse), 50,000 training and 10,000 test images.
    Cifar100,
}

impl CifarKind {
    /// Number of classes of the labels this crate uses (fine labels for CIFAR-100).
    pub fn num_classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }

    /// Per-channel (R, G, B) mean of the training images on the [0, 1] scale.
    pub fn mean(self) -> [f32; 3] {
        match self {
            CifarKind::Cifar10 => [0.491, 0.482, 0.447],
            CifarKind::Cifar100 => [0.507, 0.487, 0.441],
        }
    }

    /// Per-channel (R, G, B) standard deviation of the training images on the [0, 1]
    /// scale.
    pub fn std(self) -> [f32; 3] {
        match self {
            CifarKind::Cifar10 => [0.247, 0.243, 0.262],
            CifarKind::Cifar100 => [0.267, 0.256, 0.276],
        }
    }

    /// Name of the folder the official archive unpacks to, which holds the files
    /// directly.
    pub fn folder_name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar-10-batches-bin",
            CifarKind::Cifar100 => "cifar-100-binary",
        }
    }

    /// Size in bytes of one record: the label byte(s) and the 3,072 pixel bytes.
    pub fn record_bytes(self) -> usize {
        self.label_bytes() + IMAGE_BYTES
    }

    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100 => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "cifar10",
            CifarKind::Cifar100 => "cifar100",
        }
    }

    /// The record files of a split, in reading order.
    fn record_files(self, split: Split) -> &'static [&'static str] {
        match (self, split) {
            (CifarKind::Cifar10, Split::Train) => &CIFAR10_TRAIN_FILES,
            (CifarKind::Cifar10, Split::Test) => &[CIFAR10_TEST_FILE],
            (CifarKind::Cifar100, Split::Train) => &[CIFAR100_TRAIN_FILE],
            (CifarKind::Cifar100, Split::Test) => &[CIFAR100_TEST_FILE],
        }
    }

    /// A sentence naming the layout and its files, for error messages.
    fn layout(self) -> String {
        match self {
            CifarKind::Cifar10 => format!(
                "CIFAR-10 binary layout ({}, {CIFAR10_TEST_FILE} and {CIFAR10_META} \
                 directly inside the folder)",
                CIFAR10_TRAIN_FILES.join(", ")
            ),
            CifarKind::Cifar100 => format!(
                "CIFAR-100 binary layout ({CIFAR100_TRAIN_FILE}, {CIFAR100_TEST_FILE}, \
                 {CIFAR100_FINE_META} and {CIFAR100_COARSE_META} directly inside the folder)"
            ),
        }
    }
}

impl fmt::Display for CifarKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CifarKind {
    type Err = DataError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "cifar10" => Ok(CifarKind::Cifar10),
            "cifar100" => Ok(CifarKind::Cifar100),
            _ => Err(DataError::UnknownDataset {
                name: name.to_string(),
            }),
        }
    }
}

/// Which part of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The 50,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

/// Images and labels of one split of a CIFAR data set, held in memory as raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Which data set the images come from (sets the normalization constants).
    pub kind: CifarKind,
    /// Pixels `[n, 3, 32, 32]` as bytes 0..=255, channel-major as in the files.
    pub images: Vec<u8>,
    /// One label per image, below `num_classes()` (fine labels for CIFAR-100).
    pub labels: Vec<u16>,
    /// Class names in label order.
    pub class_names: Vec<String>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the data set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The 3,072 bytes `[3, 32, 32]` of image `index`.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn image(&self, index: usize) -> &[u8] {
        &self.images[index * IMAGE_BYTES..(index + 1) * IMAGE_BYTES]
    }

    /// Number of classes of the labels.
    pub fn num_classes(&self) -> usize {
        self.kind.num_classes()
    }

    /// Keeps the first `n` images (all of them if there are fewer).
    pub fn truncate(&mut self, n: usize) {
        self.labels.truncate(n);
        self.images.truncate(self.labels.len() * IMAGE_BYTES);
    }
}

/// Reads one split of a CIFAR data set from `dir`, the folder that directly holds the
/// files (for example `.../cifar-10-batches-bin`).
///
/// Checks that every file is there, that record files hold whole records, that every
/// label is below the number of classes (both labels for CIFAR-100) and that the
/// class-name files hold exactly the expected number of non-empty names.
pub fn load(dir: &Path, kind: CifarKind, split: Split) -> Result<Dataset, DataError> {
    let class_names = match kind {
        CifarKind::Cifar10 => read_class_names(&dir.join(CIFAR10_META), kind, 10)?,
        CifarKind::Cifar100 => {
            read_class_names(&dir.join(CIFAR100_COARSE_META), kind, CIFAR100_COARSE_COUNT)?;
            read_class_names(&dir.join(CIFAR100_FINE_META), kind, 100)?
        }
    };

    let mut images = Vec::new();
    let mut labels = Vec::new();
    for file in kind.record_files(split) {
        read_records(&dir.join(file), kind, &mut images, &mut labels)?;
    }

    Ok(Dataset {
        kind,
        images,
        labels,
        class_names,
    })
}

/// Reads a whole file, telling a missing file apart from other I/O errors.
fn read_file(path: &Path, kind: CifarKind) -> Result<Vec<u8>, DataError> {
    fs::read(path).map_err(|cause| match cause.kind() {
        io::ErrorKind::NotFound => DataError::MissingFile {
            path: path.to_path_buf(),
            layout: kind.layout(),
        },
        _ => DataError::io(path, cause),
    })
}

/// Reads a class-name file: one name per line, blank lines ignored.
fn read_class_names(
    path: &Path,
    kind: CifarKind,
    expected: usize,
) -> Result<Vec<String>, DataError> {
    let bytes = read_file(path, kind)?;
    let bad_meta = |found: String| DataError::BadMeta {
        path: path.to_path_buf(),
        expected: format!("exactly {expected} non-empty class names, one per line"),
        found,
    };

    let text = String::from_utf8(bytes).map_err(|err| {
        bad_meta(format!(
            "bytes that are not UTF-8 text (at byte {})",
            err.utf8_error().valid_up_to()
        ))
    })?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect();

    if names.len() != expected {
        return Err(bad_meta(format!("{} non-empty names", names.len())));
    }
    Ok(names)
}

/// Appends the records of one file to `images` and `labels`, checking size and labels.
fn read_records(
    path: &Path,
    kind: CifarKind,
    images: &mut Vec<u8>,
    labels: &mut Vec<u16>,
) -> Result<(), DataError> {
    let bytes = read_file(path, kind)?;
    let record_size = kind.record_bytes();
    if bytes.len() % record_size != 0 {
        return Err(DataError::PartialRecord {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            record_size,
        });
    }

    let records = bytes.len() / record_size;
    images.reserve(records * IMAGE_BYTES);
    labels.reserve(records);
    let label_out_of_range = |index, field, label, classes| DataError::LabelOutOfRange {
        path: path.to_path_buf(),
        index,
        field,
        label,
        classes,
    };

    for (index, record) in bytes.chunks_exact(record_size).enumerate() {
        let (label_bytes, pixels) = record.split_at(kind.label_bytes());
        let (field, label) = match kind {
            CifarKind::Cifar10 => ("class", label_bytes[0]),
            CifarKind::Cifar100 => {
                let coarse = label_bytes[0];
                if usize::from(coarse) >= CIFAR100_COARSE_COUNT {
                    return Err(label_out_of_range(
                        index,
                        "coarse",
                        coarse,
                        CIFAR100_COARSE_COUNT,
                    ));
                }
                ("fine", label_bytes[1])
            }
        };
        if usize::from(label) >= kind.num_classes() {
            return Err(label_out_of_range(index, field, label, kind.num_classes()));
        }
        labels.push(u16::from(label));
        images.extend_from_slice(pixels);
    }
    Ok(())
}

/// Builds a per-channel table mapping a byte to its normalized value.
pub(crate) fn normalization_table(kind: CifarKind) -> [[f32; 256]; CHANNELS] {
    let (mean, std) = (kind.mean(), kind.std());
    let mut table = [[0.0; 256]; CHANNELS];
    for (channel, row) in table.iter_mut().enumerate() {
        for (byte, value) in row.iter_mut().enumerate() {
            *value = (byte as f32 / 255.0 - mean[channel]) / std[channel];
        }
    }
    table
}

/// The un-augmented images at `indices`, scaled to [0, 1] and normalized with the data
/// set's per-channel mean and standard deviation: `[n, 3, 32, 32]` values, `n =
/// indices.len()`, in the order of `indices`.
///
/// # Panics
/// If an index is not below `dataset.len()`.
pub fn normalize(dataset: &Dataset, indices: &[usize]) -> Vec<f32> {
    let table = normalization_table(dataset.kind);
    let plane = IMAGE_SIDE * IMAGE_SIDE;
    let mut out = vec![0.0f32; indices.len() * IMAGE_BYTES];

    out.par_chunks_mut(IMAGE_BYTES)
        .zip(indices.par_iter())
        .for_each(|(values, &index)| {
            let image = dataset.image(index);
            for (channel, row) in table.iter().enumerate() {
                let range = channel * plane..(channel + 1) * plane;
                for (value, &byte) in values[range.clone()].iter_mut().zip(&image[range]) {
                    *value = row[usize::from(byte)];
                }
            }
        });
    out
}

/// Writes `records` random records of `kind`'s layout to `path`.
fn write_records(
    path: &Path,
    kind: CifarKind,
    records: usize,
    rng: &mut ChaCha8Rng,
) -> io::Result<()> {
    let mut bytes = vec![0u8; records * kind.record_bytes()];
    for record in bytes.chunks_exact_mut(kind.record_bytes()) {
        match kind {
            CifarKind::Cifar10 => record[0] = rng.gen_range(0..10),
            CifarKind::Cifar100 => {
                record[0] = rng.gen_range(0..CIFAR100_COARSE_COUNT as u8);
                record[1] = rng.gen_range(0..100);
            }
        }
        rng.fill(&mut record[kind.label_bytes()..]);
    }
    fs::write(path, bytes)
}

fn write_names(path: &Path, names: &[&str]) -> io::Result<()> {
    let mut text = names.join("\n");
    text.push_str("\n\n");
    fs::write(path, text)
}

/// Writes a small synthetic data set in the official CIFAR-10 layout, for tests and
/// examples: random pixels and labels, `train_records` training records spread as evenly
/// as possible over the five training files, `test_records` test records, and the class
/// names. Creates `dir` if needed.
pub fn write_cifar10(
    dir: &Path,
    train_records: usize,
    test_records: usize,
    seed: u64,
) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let files = CIFAR10_TRAIN_FILES.len();
    for (i, file) in CIFAR10_TRAIN_FILES.iter().enumerate() {
        let records = train_records / files + usize::from(i < train_records % files);
        write_records(&dir.join(file), CifarKind::Cifar10, records, &mut rng)?;
    }
    write_records(
        &dir.join(CIFAR10_TEST_FILE),
        CifarKind::Cifar10,
        test_records,
        &mut rng,
    )?;
    write_names(&dir.join(CIFAR10_META), &CIFAR10_CLASSES)
}

/// Writes a small synthetic data set in the official CIFAR-100 layout, for tests and
/// examples: random pixels, coarse and fine labels, `train_records` training records,
/// `test_records` test records, and both class-name files. Creates `dir` if needed.
pub fn write_cifar100(
    dir: &Path,
    train_records: usize,
    test_records: usize,
    seed: u64,
) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    write_records(
        &dir.join(CIFAR100_TRAIN_FILE),
        CifarKind::Cifar100,
        train_records,
        &mut rng,
    )?;
    write_records(
        &dir.join(CIFAR100_TEST_FILE),
        CifarKind::Cifar100,
        test_records,
        &mut rng,
    )?;
    write_names(&dir.join(CIFAR100_FINE_META), &CIFAR100_FINE_CLASSES)?;
    write_names(&dir.join(CIFAR100_COARSE_META), &CIFAR100_COARSE_CLASSES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The first record file of a split, for tests that damage one file on purpose.
    fn record_file(dir: &Path, kind: CifarKind, split: Split) -> PathBuf {
        dir.join(kind.record_files(split)[0])
    }

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("temporary folder")
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in [CifarKind::Cifar10, CifarKind::Cifar100] {
            assert_eq!(kind.to_string().parse::<CifarKind>().unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<CifarKind>(&json).unwrap(), kind);
        }
        let err = "cifar-10".parse::<CifarKind>().unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("cifar-10") && message.contains("cifar10, cifar100"),
            "{message}"
        );
        assert_eq!(CifarKind::Cifar100.folder_name(), "cifar-100-binary");
        assert_eq!(CifarKind::Cifar10.record_bytes(), 3073);
        assert_eq!(CifarKind::Cifar100.record_bytes(), 3074);
    }

    #[test]
    fn cifar10_round_trip() {
        let dir = temp();
        write_cifar10(dir.path(), 23, 7, 1).unwrap();
        let train = load(dir.path(), CifarKind::Cifar10, Split::Train).unwrap();
        let test = load(dir.path(), CifarKind::Cifar10, Split::Test).unwrap();

        assert_eq!(train.len(), 23);
        assert_eq!(test.len(), 7);
        assert_eq!(train.images.len(), 23 * IMAGE_BYTES);
        assert_eq!(train.class_names, CIFAR10_CLASSES);
        assert!(train.labels.iter().all(|&l| l < 10));

        // The first record of data_batch_1.bin, byte for byte.
        let bytes = fs::read(dir.path().join("data_batch_1.bin")).unwrap();
        assert_eq!(bytes.len(), 5 * 3073);
        assert_eq!(train.labels[0], u16::from(bytes[0]));
        assert_eq!(train.image(0), &bytes[1..3073]);
        // Records of the second file follow those of the first.
        let second = fs::read(dir.path().join("data_batch_2.bin")).unwrap();
        assert_eq!(train.image(5), &second[1..3073]);
    }

    #[test]
    fn cifar100_round_trip_keeps_fine_labels() {
        let dir = temp();
        write_cifar100(dir.path(), 12, 4, 2).unwrap();
        let train = load(dir.path(), CifarKind::Cifar100, Split::Train).unwrap();
        let test = load(dir.path(), CifarKind::Cifar100, Split::Test).unwrap();

        assert_eq!((train.len(), test.len()), (12, 4));
        assert_eq!(train.num_classes(), 100);
        assert_eq!(train.class_names.len(), 100);
        assert_eq!(train.class_names[99], "worm");

        let bytes = fs::read(dir.path().join("train.bin")).unwrap();
        for i in 0..12 {
            let record = &bytes[i * 3074..(i + 1) * 3074];
            assert_eq!(train.labels[i], u16::from(record[1]));
            assert_eq!(train.image(i), &record[2..]);
        }
    }

    #[test]
    fn truncate_keeps_first_records() {
        let dir = temp();
        write_cifar10(dir.path(), 10, 0, 3).unwrap();
        let full = load(dir.path(), CifarKind::Cifar10, Split::Train).unwrap();
        let mut small = full.clone();
        small.truncate(4);
        assert_eq!(small.len(), 4);
        assert_eq!(small.images.len(), 4 * IMAGE_BYTES);
        assert_eq!(small.image(3), full.image(3));
        small.truncate(100);
        assert_eq!(small.len(), 4);
    }

    #[test]
    fn missing_file_names_file_and_layout() {
        let dir = temp();
        write_cifar10(dir.path(), 10, 2, 4).unwrap();
        fs::remove_file(dir.path().join("data_batch_3.bin")).unwrap();
        let err = load(dir.path(), CifarKind::Cifar10, Split::Train).unwrap_err();
        assert!(matches!(err, DataError::MissingFile { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("data_batch_3.bin"), "{message}");
        assert!(message.contains("CIFAR-10 binary layout"), "{message}");
        // The test split does not need the training files.
        assert_eq!(
            load(dir.path(), CifarKind::Cifar10, Split::Test)
                .unwrap()
                .len(),
            2
        );

        let err = load(dir.path(), CifarKind::Cifar100, Split::Test).unwrap_err();
        assert!(err.to_string().contains("CIFAR-100 binary layout"), "{err}");
    }

    #[test]
    fn truncated_file_is_partial_record() {
        for kind in [CifarKind::Cifar10, CifarKind::Cifar100] {
            let dir = temp();
            match kind {
                CifarKind::Cifar10 => write_cifar10(dir.path(), 5, 3, 5).unwrap(),
                CifarKind::Cifar100 => write_cifar100(dir.path(), 5, 3, 5).unwrap(),
            }
            let path = record_file(dir.path(), kind, Split::Test);
            let bytes = fs::read(&path).unwrap();
            fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();

            let err = load(dir.path(), kind, Split::Test).unwrap_err();
            match &err {
                DataError::PartialRecord {
                    path: p,
                    size,
                    record_size,
                } => {
                    assert_eq!(p, &path);
                    assert_eq!(*size, (3 * kind.record_bytes() - 100) as u64);
                    assert_eq!(*record_size, kind.record_bytes());
                }
                other => panic!("expected PartialRecord, got {other:?}"),
            }
            assert!(err.to_string().contains(&path.display().to_string()));
        }
    }

    #[test]
    fn label_out_of_range_names_record() {
        let dir = temp();
        write_cifar10(dir.path(), 0, 6, 6).unwrap();
        let path = dir.path().join("test_batch.bin");
        let mut bytes = fs::read(&path).unwrap();
        bytes[4 * 3073] = 10;
        fs::write(&path, &bytes).unwrap();

        let err = load(dir.path(), CifarKind::Cifar10, Split::Test).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 4,
                    label: 10,
                    classes: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("test_batch.bin") && message.contains("record 4"),
            "{message}"
        );
    }

    #[test]
    fn cifar100_checks_both_labels() {
        let dir = temp();
        write_cifar100(dir.path(), 4, 0, 7).unwrap();
        let path = dir.path().join("train.bin");
        let original = fs::read(&path).unwrap();

        let mut bytes = original.clone();
        bytes[2 * 3074] = 20;
        fs::write(&path, &bytes).unwrap();
        let err = load(dir.path(), CifarKind::Cifar100, Split::Train).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 2,
                    field: "coarse",
                    classes: 20,
                    ..
                }
            ),
            "{err:?}"
        );

        let mut bytes = original;
        bytes[3 * 3074 + 1] = 100;
        fs::write(&path, &bytes).unwrap();
        let err = load(dir.path(), CifarKind::Cifar100, Split::Train).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 3,
                    field: "fine",
                    label: 100,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("train.bin"), "{err}");
    }

    #[test]
    fn wrong_meta_files() {
        let dir = temp();
        write_cifar10(dir.path(), 2, 2, 8).unwrap();
        let meta = dir.path().join("batches.meta.txt");
        fs::write(&meta, "airplane\nautomobile\n\nbird\n").unwrap();
        let err = load(dir.path(), CifarKind::Cifar10, Split::Test).unwrap_err();
        assert!(matches!(err, DataError::BadMeta { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("batches.meta.txt"), "{message}");
        assert!(
            message.contains("exactly 10") && message.contains("found 3"),
            "{message}"
        );

        fs::write(&meta, [0xff, 0xfe, b'\n']).unwrap();
        let err = load(dir.path(), CifarKind::Cifar10, Split::Test).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");

        let dir = temp();
        write_cifar100(dir.path(), 2, 2, 9).unwrap();
        let coarse = dir.path().join("coarse_label_names.txt");
        fs::write(&coarse, CIFAR100_FINE_CLASSES.join("\n")).unwrap();
        let err = load(dir.path(), CifarKind::Cifar100, Split::Test).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("coarse_label_names.txt"), "{message}");
        assert!(
            message.contains("exactly 20") && message.contains("found 100"),
            "{message}"
        );

        fs::write(&coarse, CIFAR100_COARSE_CLASSES.join("\r\n")).unwrap();
        fs::write(dir.path().join("fine_label_names.txt"), "apple\n").unwrap();
        let err = load(dir.path(), CifarKind::Cifar100, Split::Test).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("fine_label_names.txt"), "{message}");
        assert!(
            message.contains("exactly 100") && message.contains("found 1"),
            "{message}"
        );
    }

    #[test]
    fn normalize_uses_kind_constants() {
        let dataset = Dataset {
            kind: CifarKind::Cifar100,
            images: (0..2 * IMAGE_BYTES).map(|i| (i % 256) as u8).collect(),
            labels: vec![0, 1],
            class_names: vec![],
        };
        let values = normalize(&dataset, &[1, 0, 1]);
        assert_eq!(values.len(), 3 * IMAGE_BYTES);

        let (mean, std) = (CifarKind::Cifar100.mean(), CifarKind::Cifar100.std());
        for (slot, &index) in [1usize, 0, 1].iter().enumerate() {
            for j in [0, 1023, 1024, 2047, 2048, 3071] {
                let channel = j / 1024;
                let byte = dataset.image(index)[j];
                let expected = (f32::from(byte) / 255.0 - mean[channel]) / std[channel];
                let got = values[slot * IMAGE_BYTES + j];
                assert!((got - expected).abs() < 1e-6, "slot {slot}, value {j}");
            }
        }
        // A byte of 0 in the red channel maps to -mean/std.
        assert!((values[IMAGE_BYTES] + mean[0] / std[0]).abs() < 1e-6);
    }
}
