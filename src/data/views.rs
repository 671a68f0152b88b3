//! View batches: `V` augmented views of `M` images laid out block by block, the epoch
//! order and batches of images, and a background thread that prepares the next step's
//! views.

use std::ops::Range;
use std::panic;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::augment::Augmenter;
use super::cifar::{Dataset, IMAGE_BYTES};

/// Steps whose views are prepared ahead of the one being trained.
const PREFETCH_DEPTH: usize = 2;

/// Domain tags that keep the seeds of views, steps and epochs apart.
const VIEW_TAG: u64 = 0x7669_6577;
const STEP_TAG: u64 = 0x7374_6570;
const EPOCH_TAG: u64 = 0x6570_6f63;

/// The SplitMix64 finalizer: a bijective mix of 64 bits.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The seed of the generator of view `block` of the image at `position` in a view batch.
pub fn view_seed(seed: u64, block: usize, position: usize) -> u64 {
    mix(mix(mix(seed ^ VIEW_TAG) ^ block as u64) ^ position as u64)
}

/// The view-batch seed of training step `step` of a run seeded with `seed`.
pub fn step_seed(seed: u64, step: u64) -> u64 {
    mix(mix(seed ^ STEP_TAG) ^ step)
}

/// `views` augmented views of each image at `images` in `dataset`:
/// `[views * M, 3, 32, 32]` values, `M = images.len()`, as `views` blocks of `M` views;
/// block `k` holds view `k` of every image, in the order of `images`.
///
/// View `k` of the image at position `m` draws from its own generator, seeded with
/// [`view_seed`]`(seed, k, m)`, so the result does not depend on the number of threads.
///
/// # Panics
/// If an index is not below `dataset.len()`.
pub fn view_batch(
    dataset: &Dataset,
    augmenter: &Augmenter,
    images: &[usize],
    views: usize,
    seed: u64,
) -> Vec<f32> {
    let batch = images.len();
    let mut out = vec![0.0f32; views * batch * IMAGE_BYTES];
    if batch == 0 {
        return out;
    }

    out.par_chunks_mut(IMAGE_BYTES)
        .enumerate()
        .for_each(|(slot, values)| {
            let (block, position) = (slot / batch, slot % batch);
            let mut rng = ChaCha8Rng::seed_from_u64(view_seed(seed, block, position));
            augmenter.view(dataset.image(images[position]), &mut rng, values);
        });
    out
}

/// A seeded permutation of `0..n`, different for every `epoch`.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(
        mix(seed ^ EPOCH_TAG) ^ epoch
    )));
    order
}

/// Cuts `order` into consecutive batches of `images` image indices. A batch needs two
/// images to form a pair, so a final batch with fewer than 2 images is dropped, and
/// `images < 2` gives no batch at all.
pub fn batches(order: &[usize], images: usize) -> Vec<Vec<usize>> {
    if images < 2 {
        return Vec::new();
    }
    let mut batches: Vec<Vec<usize>> = order.chunks(images).map(<[usize]>::to_vec).collect();
    if batches.last().is_some_and(|last| last.len() < 2) {
        batches.pop();
    }
    batches
}

/// Number of batches [`batches`] makes of `n` images, `images` at a time.
pub fn steps_per_epoch(n: usize, images: usize) -> usize {
    if images < 2 {
        return 0;
    }
    n / images + usize::from(n % images >= 2)
}

/// The images of every training step in a range of steps: step `s` is batch
/// `s % steps_per_epoch` of epoch `s / steps_per_epoch`, each epoch in the order of
/// [`epoch_order`]. A run resumed at any step sees the same images as an unbroken one.
#[derive(Debug, Clone)]
pub struct Schedule {
    n: usize,
    images: usize,
    seed: u64,
    steps: Range<u64>,
    /// The batches of the epoch last used, with its number.
    epoch: Option<(u64, Vec<Vec<usize>>)>,
}

impl Schedule {
    /// The steps `steps` over a data set of `n` images, `images` per batch.
    pub fn new(n: usize, images: usize, seed: u64, steps: Range<u64>) -> Self {
        Schedule {
            n,
            images,
            seed,
            steps,
            epoch: None,
        }
    }
}

impl Iterator for Schedule {
    type Item = (u64, Vec<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let per_epoch = steps_per_epoch(self.n, self.images) as u64;
        if per_epoch == 0 {
            return None;
        }
        let step = self.steps.next()?;
        let epoch = step / per_epoch;

        if self.epoch.as_ref().map(|(number, _)| *number) != Some(epoch) {
            let order = epoch_order(self.n, self.seed, epoch);
            self.epoch = Some((epoch, batches(&order, self.images)));
        }
        let (_, epoch_batches) = self.epoch.as_ref()?;
        Some((step, epoch_batches[(step % per_epoch) as usize].clone()))
    }
}

/// Prepares the view batch of the next steps on a background thread while the current
/// step trains, and yields `(step, [views * M, 3, 32, 32] values)` in step order.
///
/// The views of a step are [`view_batch`] with seed [`step_seed`]`(seed, step)`, so a
/// resumed run reproduces them. At most two batches wait ready. Dropping the prefetcher
/// stops the thread; a panic on the thread is raised again by the next call to `next`.
#[derive(Debug)]
pub struct Prefetcher {
    receiver: Option<Receiver<(u64, Vec<f32>)>>,
    worker: Option<JoinHandle<()>>,
}

impl Prefetcher {
    /// Starts preparing the view batches of `steps`, a sequence of `(step, image
    /// indices)`.
    ///
    /// # Panics
    /// If the operating system cannot start a thread.
    pub fn new<I>(
        dataset: Arc<Dataset>,
        augmenter: Augmenter,
        views: usize,
        seed: u64,
        steps: I,
    ) -> Self
    where
        I: IntoIterator<Item = (u64, Vec<usize>)>,
        I::IntoIter: Send + 'static,
    {
        let steps = steps.into_iter();
        let (sender, receiver) = sync_channel(PREFETCH_DEPTH);
        let worker = thread::Builder::new()
            .name("view-prefetch".to_string())
            .spawn(move || {
                for (step, images) in steps {
                    let batch =
                        view_batch(&dataset, &augmenter, &images, views, step_seed(seed, step));
                    if sender.send((step, batch)).is_err() {
                        break;
                    }
                }
            })
            .expect("cannot start the view-prefetch thread");
        Prefetcher {
            receiver: Some(receiver),
            worker: Some(worker),
        }
    }
}

impl Iterator for Prefetcher {
    type Item = (u64, Vec<f32>);

    fn next(&mut self) -> Option<Self::Item> {
        if let Ok(item) = self.receiver.as_ref()?.recv() {
            return Some(item);
        }
        self.receiver = None;
        if let Some(worker) = self.worker.take() {
            if let Err(payload) = worker.join() {
                panic::resume_unwind(payload);
            }
        }
        None
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the channel first makes a worker blocked on a full channel stop.
        self.receiver = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::CifarKind;
    use rand::Rng;
    use std::sync::mpsc;
    use std::time::Duration;

    fn dataset(n: usize) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let mut images = vec![0u8; n * IMAGE_BYTES];
        rng.fill(&mut images[..]);
        Dataset {
            kind: CifarKind::Cifar10,
            images,
            labels: (0..n).map(|i| (i % 10) as u16).collect(),
            class_names: vec![],
        }
    }

    #[test]
    fn block_k_holds_view_k_of_every_image() {
        let data = dataset(10);
        let augmenter = Augmenter::new(CifarKind::Cifar10);
        let images = [7, 2, 2, 9];
        let views = 3;
        let batch = view_batch(&data, &augmenter, &images, views, 5);
        assert_eq!(batch.len(), views * images.len() * IMAGE_BYTES);

        let mut single = vec![0.0; IMAGE_BYTES];
        for block in 0..views {
            for (position, &index) in images.iter().enumerate() {
                let mut rng = ChaCha8Rng::seed_from_u64(view_seed(5, block, position));
                augmenter.view(data.image(index), &mut rng, &mut single);
                let at = (block * images.len() + position) * IMAGE_BYTES;
                assert_eq!(
                    &batch[at..at + IMAGE_BYTES],
                    &single[..],
                    "block {block} m {position}"
                );
            }
        }
        // Same image at two positions still gets two different views.
        assert_ne!(
            &batch[IMAGE_BYTES..2 * IMAGE_BYTES],
            &batch[2 * IMAGE_BYTES..3 * IMAGE_BYTES]
        );
    }

    #[test]
    fn view_batch_is_independent_of_threads_and_follows_seed() {
        let data = dataset(16);
        let augmenter = Augmenter::new(CifarKind::Cifar10);
        let images: Vec<usize> = (0..16).rev().collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| view_batch(&data, &augmenter, &images, 4, 11))
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert!(one.iter().all(|v| v.is_finite()));
        assert_ne!(one, view_batch(&data, &augmenter, &images, 4, 12));
        assert!(view_batch(&data, &augmenter, &[], 4, 1).is_empty());
    }

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let order = epoch_order(1000, 3, 0);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(order, epoch_order(1000, 3, 0));
        assert_ne!(order, epoch_order(1000, 3, 1));
        assert_ne!(order, epoch_order(1000, 4, 0));
    }

    #[test]
    fn paper_budget_has_782_steps() {
        let order = epoch_order(50_000, 0, 0);
        let steps = batches(&order, 64);
        assert_eq!(steps.len(), 782);
        assert_eq!(steps_per_epoch(50_000, 64), 782);
        assert!(steps[..781].iter().all(|b| b.len() == 64));
        assert_eq!(steps[781].len(), 16);
        assert_eq!(steps.concat(), order);
    }

    #[test]
    fn single_image_tail_is_dropped() {
        let order: Vec<usize> = (0..129).collect();
        let steps = batches(&order, 64);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1], (64..128).collect::<Vec<_>>());
        for n in 0..200 {
            for m in [0, 1, 2, 3, 7, 64] {
                let order: Vec<usize> = (0..n).collect();
                assert_eq!(
                    batches(&order, m).len(),
                    steps_per_epoch(n, m),
                    "n {n}, m {m}"
                );
            }
        }
    }

    #[test]
    fn schedule_resumes_where_it_left_off() {
        // 10 images in batches of 4: steps of 4, 4, 2 images per epoch.
        let full: Vec<_> = Schedule::new(10, 4, 8, 0..7).collect();
        assert_eq!(full.len(), 7);
        assert_eq!(
            full.iter().map(|(_, b)| b.len()).collect::<Vec<_>>(),
            [4, 4, 2, 4, 4, 2, 4]
        );
        let epoch: Vec<usize> = full[..3].iter().flat_map(|(_, b)| b.clone()).collect();
        assert_eq!(epoch, epoch_order(10, 8, 0));
        let resumed: Vec<_> = Schedule::new(10, 4, 8, 4..7).collect();
        assert_eq!(resumed, full[4..]);
        assert_eq!(Schedule::new(1, 4, 8, 0..7).count(), 0);
    }

    #[test]
    fn prefetcher_yields_steps_in_order_and_reproduces_views() {
        let data = Arc::new(dataset(12));
        let augmenter = Augmenter::new(CifarKind::Cifar10);
        let steps: Vec<_> = Schedule::new(12, 4, 1, 0..5).collect();
        let fetched: Vec<_> =
            Prefetcher::new(data.clone(), augmenter.clone(), 2, 21, steps.clone()).collect();

        assert_eq!(
            fetched.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        for ((step, batch), (_, images)) in fetched.iter().zip(&steps) {
            let expected = view_batch(&data, &augmenter, images, 2, step_seed(21, *step));
            assert_eq!(batch, &expected);
        }

        // A run resumed at step 3 gets the same views for step 3.
        let resumed = Schedule::new(12, 4, 1, 3..5);
        let mut prefetcher = Prefetcher::new(data, augmenter, 2, 21, resumed);
        assert_eq!(prefetcher.next().as_ref(), Some(&fetched[3]));
    }

    #[test]
    fn dropping_prefetcher_stops_its_thread() {
        let data = Arc::new(dataset(8));
        let augmenter = Augmenter::new(CifarKind::Cifar10);
        let endless = (0u64..).map(|step| (step, vec![0, 1, 2, 3]));
        let mut prefetcher = Prefetcher::new(data, augmenter, 2, 0, endless);
        assert_eq!(prefetcher.next().map(|(s, _)| s), Some(0));
        assert_eq!(prefetcher.next().map(|(s, _)| s), Some(1));

        let (done, finished) = mpsc::channel();
        thread::spawn(move || {
            drop(prefetcher);
            let _ = done.send(());
        });
        assert!(
            finished.recv_timeout(Duration::from_secs(20)).is_ok(),
            "drop did not return"
        );
    }

    #[test]
    #[should_panic(expected = "out of range for slice")]
    fn worker_panic_reaches_the_consumer() {
        let data = Arc::new(dataset(2));
        let augmenter = Augmenter::new(CifarKind::Cifar10);
        let steps = vec![(0u64, vec![0, 1]), (1, vec![0, 5])];
        let prefetcher = Prefetcher::new(data, augmenter, 1, 0, steps);
        for _ in prefetcher {}
    }
}
