//! The supervised reference's augmentation: pad with black by a few pixels, crop a random
//! 32x32 window, flip horizontally with probability one half, then normalize.

use rand::Rng;
use rayon::prelude::*;

use super::inputs::seeded_rng;
use crate::data::{CifarKind, Dataset};

/// Side of a CIFAR image in pixels.
const SIDE: usize = 32;
/// Colour channels.
const CHANNELS: usize = 3;
/// Bytes (and floats) per image.
const IMAGE: usize = CHANNELS * SIDE * SIDE;

/// Padding on each side before the random crop (4 pixels, as in the usual CIFAR recipe).
pub const PADDING: usize = 4;

/// Where the crop window starts in the padded image and whether to mirror it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropFlip {
    /// Row of the window's top edge in the padded image, in `0..=2 * padding`.
    pub top: usize,
    /// Column of the window's left edge in the padded image, in `0..=2 * padding`.
    pub left: usize,
    /// Mirror left to right.
    pub flip: bool,
}

impl CropFlip {
    /// A uniformly random window and a fair coin for the flip.
    pub fn sample<R: Rng + ?Sized>(rng: &mut R, padding: usize) -> Self {
        Self {
            top: rng.gen_range(0..=2 * padding),
            left: rng.gen_range(0..=2 * padding),
            flip: rng.gen_bool(0.5),
        }
    }
}

/// Writes one augmented image: `image` `[3, 32, 32]` bytes -> `out` `[3, 32, 32]`
/// normalized floats with `kind`'s mean and standard deviation. Pixels that fall in the
/// padding are black (byte 0) before normalization, as when a picture is padded with zeros.
///
/// # Panics
/// If `image` or `out` do not hold 3,072 values.
pub fn pad_crop_flip(
    image: &[u8],
    kind: CifarKind,
    padding: usize,
    window: CropFlip,
    out: &mut [f32],
) {
    assert_eq!(image.len(), IMAGE, "an image holds {IMAGE} bytes");
    assert_eq!(out.len(), IMAGE, "an image holds {IMAGE} floats");
    let (mean, std) = (kind.mean(), kind.std());
    for channel in 0..CHANNELS {
        let scale = |byte: u8| (f32::from(byte) / 255.0 - mean[channel]) / std[channel];
        let black = scale(0);
        let plane = &image[channel * SIDE * SIDE..(channel + 1) * SIDE * SIDE];
        for row in 0..SIDE {
            let source_row = (row + window.top)
                .checked_sub(padding)
                .filter(|&r| r < SIDE);
            for col in 0..SIDE {
                let shown = if window.flip { SIDE - 1 - col } else { col };
                let source_col = (shown + window.left)
                    .checked_sub(padding)
                    .filter(|&c| c < SIDE);
                out[channel * SIDE * SIDE + row * SIDE + col] = match (source_row, source_col) {
                    (Some(r), Some(c)) => scale(plane[r * SIDE + c]),
                    _ => black,
                };
            }
        }
    }
}

/// Augmented images at `indices`: `[n, 3, 32, 32]` normalized floats. Image `p` of the
/// batch draws its window from `(seed, p)`, so the result does not depend on how the work
/// is spread over threads.
///
/// # Panics
/// If an index is not below `dataset.len()`.
pub fn augment_batch(dataset: &Dataset, indices: &[usize], padding: usize, seed: u64) -> Vec<f32> {
    let mut out = vec![0.0f32; indices.len() * IMAGE];
    out.par_chunks_mut(IMAGE)
        .zip(indices.par_iter())
        .enumerate()
        .for_each(|(position, (values, &index))| {
            let window = CropFlip::sample(&mut seeded_rng(seed, position as u64), padding);
            pad_crop_flip(dataset.image(index), dataset.kind, padding, window, values);
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image whose byte at (c, r, x) is `c * 64 + r + x` (below 256 for 32x32).
    fn gradient() -> Vec<u8> {
        (0..IMAGE)
            .map(|i| ((i / 1024) * 64 + (i / 32) % 32 + i % 32) as u8)
            .collect()
    }

    fn byte_of(value: f32, channel: usize) -> f32 {
        let kind = CifarKind::Cifar10;
        (value * kind.std()[channel] + kind.mean()[channel]) * 255.0
    }

    #[test]
    fn the_centred_window_without_flip_is_the_normalized_image() {
        let image = gradient();
        let mut out = vec![0.0; IMAGE];
        let window = CropFlip {
            top: 4,
            left: 4,
            flip: false,
        };
        pad_crop_flip(&image, CifarKind::Cifar10, 4, window, &mut out);
        for (i, (&o, &b)) in out.iter().zip(&image).enumerate() {
            assert!(
                (byte_of(o, i / 1024) - f32::from(b)).abs() < 1e-3,
                "pixel {i}"
            );
        }
    }

    #[test]
    fn a_shifted_flipped_window_moves_pixels_and_pads_with_black() {
        let image = gradient();
        let mut out = vec![0.0; IMAGE];
        // Top 0, left 8: output row r shows source row r - 4; output column x shows padded
        // column (31 - x) + 8, i.e. source column 35 - x, black for x < 4.
        let window = CropFlip {
            top: 0,
            left: 8,
            flip: true,
        };
        pad_crop_flip(&image, CifarKind::Cifar10, 4, window, &mut out);
        let at = |c: usize, r: usize, x: usize| byte_of(out[c * 1024 + r * 32 + x], c);
        assert!(at(0, 2, 10).abs() < 1e-3, "row 2 comes from the padding");
        assert!(at(1, 10, 2).abs() < 1e-3, "column 2 comes from the padding");
        let want = (2 * 64 + (10 - 4) + (35 - 7)) as f32;
        assert!(
            (at(2, 10, 7) - want).abs() < 1e-3,
            "{} vs {want}",
            at(2, 10, 7)
        );
    }

    #[test]
    fn batches_are_repeatable_and_differ_between_seeds() {
        let images: Vec<u8> = (0..4 * IMAGE).map(|i| (i * 13 % 256) as u8).collect();
        let data = Dataset {
            kind: CifarKind::Cifar10,
            images,
            labels: vec![0, 1, 2, 3],
            class_names: (0..10).map(|i| i.to_string()).collect(),
        };
        let a = augment_batch(&data, &[3, 0, 1], 4, 9);
        assert_eq!(a.len(), 3 * IMAGE);
        assert_eq!(a, augment_batch(&data, &[3, 0, 1], 4, 9));
        assert_ne!(a, augment_batch(&data, &[3, 0, 1], 4, 10));
        let mut one = vec![0.0; IMAGE];
        let window = CropFlip::sample(&mut seeded_rng(9, 1), 4);
        pad_crop_flip(data.image(0), data.kind, 4, window, &mut one);
        assert_eq!(&a[IMAGE..2 * IMAGE], &one[..]);
    }
}
