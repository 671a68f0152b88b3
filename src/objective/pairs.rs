//! Positive and negative pairs of views, built from the block layout of a batch.
//!
//! A batch holds `V` blocks of `M` views; block `k` holds view `k` of every image, so
//! row `k * M + m` is view `k` of image `m`. For each block pair `(i, j)`, `i < j`, in
//! lexicographic order, image `m` gives one positive pair (view `i` of `m`, view `j` of
//! `m`) and one negative pair (view `i` of `m`, view `j` of `(m + s) mod M`). The shift
//! `s` starts at 1, grows by one for each block pair and wraps back to 1 when it reaches
//! `M`, so no image is ever paired with itself as a negative.

use tch::{Device, Tensor};

/// A batch layout that admits no pairs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairsError {
    /// Fewer than two images: there is no other image to draw negatives from.
    #[error("a batch of {0} image(s) has no negative pairs: expected at least 2 images")]
    TooFewImages(usize),
    /// Fewer than two views: there is no second view to pair with.
    #[error("{0} view(s) per image give no pairs: expected at least 2 views")]
    TooFewViews(usize),
}

/// Row indices of the pairs of one batch layout, `P = M V (V - 1) / 2` of each kind.
///
/// Positive `p` is `(anchor[p], positive[p])` and negative `p` is
/// `(anchor[p], negative[p])`: the two kinds share their anchors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairs {
    /// Anchor row (view `i` of image `m`) of pair `p`: `[P]`.
    pub anchor: Vec<i64>,
    /// Row of view `j` of the same image: `[P]`.
    pub positive: Vec<i64>,
    /// Row of view `j` of image `(m + s) mod M`: `[P]`.
    pub negative: Vec<i64>,
}

impl Pairs {
    /// The pairs of `images` images (`M`, at least 2) times `views` views (`V`, at
    /// least 2), in the order the module doc describes.
    pub fn new(images: usize, views: usize) -> Result<Self, PairsError> {
        if images < 2 {
            return Err(PairsError::TooFewImages(images));
        }
        if views < 2 {
            return Err(PairsError::TooFewViews(views));
        }
        let count = images * views * (views - 1) / 2;
        let mut pairs = Self {
            anchor: Vec::with_capacity(count),
            positive: Vec::with_capacity(count),
            negative: Vec::with_capacity(count),
        };
        let row = |view: usize, image: usize| (view * images + image) as i64;
        let mut shift = 1;
        for i in 0..views {
            for j in i + 1..views {
                for m in 0..images {
                    pairs.anchor.push(row(i, m));
                    pairs.positive.push(row(j, m));
                    pairs.negative.push(row(j, (m + shift) % images));
                }
                shift = if shift + 1 < images { shift + 1 } else { 1 };
            }
        }
        Ok(pairs)
    }

    /// Number of positive pairs `P` (also the number of negative pairs).
    pub fn len(&self) -> usize {
        self.anchor.len()
    }

    /// Whether there are no pairs (never, for a layout `new` accepts).
    pub fn is_empty(&self) -> bool {
        self.anchor.is_empty()
    }

    /// The indices as i64 tensors on `device`, plus the stacked `[2P]` forms that the
    /// relation head takes.
    pub fn to_tensors(&self, device: Device) -> PairTensors {
        let tensor = |rows: &[i64]| Tensor::from_slice(rows).to_device(device);
        let stacked_anchor: Vec<i64> = self.anchor.iter().chain(&self.anchor).copied().collect();
        let stacked_partner: Vec<i64> = self
            .positive
            .iter()
            .chain(&self.negative)
            .copied()
            .collect();
        PairTensors {
            anchor: tensor(&self.anchor),
            positive: tensor(&self.positive),
            negative: tensor(&self.negative),
            stacked_anchor: tensor(&stacked_anchor),
            stacked_partner: tensor(&stacked_partner),
        }
    }
}

/// The pair indices of [`Pairs`] as i64 tensors on one device.
#[derive(Debug)]
pub struct PairTensors {
    /// Anchor rows: `[P]`.
    pub anchor: Tensor,
    /// Positive partner rows: `[P]`.
    pub positive: Tensor,
    /// Negative partner rows: `[P]`.
    pub negative: Tensor,
    /// `cat[anchor, anchor]`: `[2P]`.
    pub stacked_anchor: Tensor,
    /// `cat[positive, negative]`: `[2P]`.
    pub stacked_partner: Tensor,
}

impl PairTensors {
    /// Number of positive pairs `P`.
    pub fn len(&self) -> i64 {
        self.anchor.size()[0]
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_batch_has_31744_pairs_of_each_kind() {
        let pairs = Pairs::new(64, 32).unwrap();
        assert_eq!(pairs.len(), 31_744);
        assert_eq!(pairs.positive.len(), 31_744);
        assert_eq!(pairs.negative.len(), 31_744);
        for (images, views) in [(2, 2), (5, 3), (3, 7)] {
            let pairs = Pairs::new(images, views).unwrap();
            assert_eq!(pairs.len(), images * views * (views - 1) / 2);
        }
    }

    #[test]
    fn positives_join_two_views_of_one_image_and_negatives_two_images() {
        for (images, views) in [(2, 5), (4, 3), (7, 6), (64, 32)] {
            let pairs = Pairs::new(images, views).unwrap();
            let m = images as i64;
            for p in 0..pairs.len() {
                let (a, pos, neg) = (pairs.anchor[p], pairs.positive[p], pairs.negative[p]);
                assert_eq!(a % m, pos % m, "positive {p} joins two images");
                assert!(a / m < pos / m, "positive {p} stays within one block");
                assert_eq!(pos / m, neg / m, "negative {p} is in the positive's block");
                assert_ne!(
                    a % m,
                    neg % m,
                    "negative {p} joins image {} to itself",
                    a % m
                );
            }
        }
    }

    #[test]
    fn shifts_follow_the_block_pairs_and_wrap_to_one() {
        // M = 3, V = 3: block pairs (0,1), (0,2), (1,2) use shifts 1, 2, then 1 again.
        let pairs = Pairs::new(3, 3).unwrap();
        assert_eq!(pairs.anchor, vec![0, 1, 2, 0, 1, 2, 3, 4, 5]);
        assert_eq!(pairs.positive, vec![3, 4, 5, 6, 7, 8, 6, 7, 8]);
        assert_eq!(pairs.negative, vec![4, 5, 3, 8, 6, 7, 7, 8, 6]);

        // M = 2: the shift is always 1, the other image.
        let pairs = Pairs::new(2, 3).unwrap();
        assert_eq!(pairs.anchor, vec![0, 1, 0, 1, 2, 3]);
        assert_eq!(pairs.negative, vec![3, 2, 5, 4, 5, 4]);

        // M = 4, V = 4: six block pairs with shifts 1, 2, 3, 1, 2, 3.
        let pairs = Pairs::new(4, 4).unwrap();
        let shifts: Vec<i64> = (0..6)
            .map(|b| (pairs.negative[4 * b] - pairs.positive[4 * b]).rem_euclid(4))
            .collect();
        assert_eq!(shifts, vec![1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn degenerate_layouts_are_errors() {
        let err = Pairs::new(1, 8).unwrap_err();
        assert_eq!(err, PairsError::TooFewImages(1));
        assert!(err.to_string().contains("at least 2 images"), "{err}");
        assert_eq!(Pairs::new(8, 1).unwrap_err(), PairsError::TooFewViews(1));
    }

    #[test]
    fn tensors_hold_the_same_rows_and_the_stacked_forms() {
        let pairs = Pairs::new(3, 3).unwrap();
        let t = pairs.to_tensors(Device::Cpu);
        assert_eq!(t.len(), 9);
        assert_eq!(Vec::<i64>::try_from(&t.negative).unwrap(), pairs.negative);
        let stacked = Vec::<i64>::try_from(&t.stacked_partner).unwrap();
        assert_eq!(stacked[..9], pairs.positive[..]);
        assert_eq!(stacked[9..], pairs.negative[..]);
        let anchors = Vec::<i64>::try_from(&t.stacked_anchor).unwrap();
        assert_eq!(anchors[..9], anchors[9..]);
    }
}
