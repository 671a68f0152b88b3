//! Throughput of the view pipeline: one paper-sized view batch (M = 64 images, V = 32
//! views) from a synthetic in-memory data set, timed over a few repetitions.
//!
//! Prints `RESULT augment views=2048 threads=<rayon threads> views_per_s=<n>`.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use hssl::data::{epoch_order, view_batch, Augmenter, CifarKind, Dataset, IMAGE_BYTES};

const IMAGES: usize = 2048;
const BATCH_IMAGES: usize = 64;
const VIEWS: usize = 32;
const REPETITIONS: u64 = 8;

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut images = vec![0u8; IMAGES * IMAGE_BYTES];
    rng.fill(&mut images[..]);
    let dataset = Dataset {
        kind: CifarKind::Cifar10,
        images,
        labels: (0..IMAGES).map(|i| (i % 10) as u16).collect(),
        class_names: Vec::new(),
    };
    let augmenter = Augmenter::new(CifarKind::Cifar10);
    let order = epoch_order(IMAGES, 0, 0);

    // One batch to warm caches and the thread pool, then the timed ones.
    let batch = view_batch(&dataset, &augmenter, &order[..BATCH_IMAGES], VIEWS, 0);
    assert_eq!(batch.len(), BATCH_IMAGES * VIEWS * IMAGE_BYTES);

    let start = Instant::now();
    let mut checksum = 0.0f64;
    for repetition in 0..REPETITIONS {
        let at = (repetition as usize * BATCH_IMAGES) % (IMAGES - BATCH_IMAGES);
        let images = &order[at..at + BATCH_IMAGES];
        let batch = view_batch(&dataset, &augmenter, images, VIEWS, repetition + 1);
        checksum += f64::from(batch[repetition as usize]);
    }
    let seconds = start.elapsed().as_secs_f64();

    let views = BATCH_IMAGES * VIEWS;
    let views_per_s = (views as f64 * REPETITIONS as f64 / seconds).round();
    eprintln!("({REPETITIONS} batches in {seconds:.3} s, checksum {checksum:.3})");
    println!(
        "RESULT augment views={views} threads={} views_per_s={views_per_s}",
        rayon::current_num_threads()
    );
}
