//! Random resized crop and horizontal flip: choose a rectangle of the image and resample
//! it bilinearly to 32x32, as torchvision's `RandomResizedCrop` and
//! `RandomHorizontalFlip` do.

use rand::Rng;

use super::cifar::{CHANNELS, IMAGE_SIDE};

/// Tries at drawing a crop that fits before falling back to a centre crop.
const CROP_TRIES: usize = 10;

/// A rectangle of a 32x32 image, in whole pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropBox {
    /// First row of the rectangle.
    pub top: usize,
    /// First column of the rectangle.
    pub left: usize,
    /// Rows in the rectangle, at least 1.
    pub height: usize,
    /// Columns in the rectangle, at least 1.
    pub width: usize,
}

impl CropBox {
    /// The whole image.
    pub fn whole() -> Self {
        CropBox {
            top: 0,
            left: 0,
            height: IMAGE_SIDE,
            width: IMAGE_SIDE,
        }
    }
}

/// A number drawn uniformly from `[low, high)` (`low` itself when the two are equal).
pub(crate) fn uniform<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.gen::<f64>()
}

/// Draws the rectangle of a random resized crop of a 32x32 image.
///
/// The area is a fraction of the image drawn uniformly from `scale`, the aspect ratio
/// (width / height) is drawn log-uniformly from `ratio`; sides are rounded to whole
/// pixels and the position is uniform over the places where the rectangle fits. After 10
/// draws that do not fit, the result is the largest centred rectangle whose ratio is
/// clamped to `ratio`.
pub fn sample_crop<R: Rng + ?Sized>(rng: &mut R, scale: [f32; 2], ratio: [f32; 2]) -> CropBox {
    let side = IMAGE_SIDE as f64;
    let area = side * side;
    let log_ratio = [f64::from(ratio[0]).ln(), f64::from(ratio[1]).ln()];

    for _ in 0..CROP_TRIES {
        let target_area = area * uniform(rng, f64::from(scale[0]), f64::from(scale[1]));
        let aspect = uniform(rng, log_ratio[0], log_ratio[1]).exp();
        let width = (target_area * aspect).sqrt().round_ties_even();
        let height = (target_area / aspect).sqrt().round_ties_even();

        if width >= 1.0 && width <= side && height >= 1.0 && height <= side {
            let (width, height) = (width as usize, height as usize);
            let top = rng.gen_range(0..=IMAGE_SIDE - height);
            let left = rng.gen_range(0..=IMAGE_SIDE - width);
            return CropBox {
                top,
                left,
                height,
                width,
            };
        }
    }

    centre_crop(ratio)
}

/// The largest centred rectangle whose aspect ratio lies in `ratio`.
fn centre_crop(ratio: [f32; 2]) -> CropBox {
    let side = IMAGE_SIDE as f64;
    let (low, high) = (f64::from(ratio[0]), f64::from(ratio[1]));
    let (height, width) = if 1.0 < low {
        (side / low, side)
    } else if 1.0 > high {
        (side, side * high)
    } else {
        (side, side)
    };
    let clamp_side = |x: f64| (x.round_ties_even() as usize).clamp(1, IMAGE_SIDE);
    let (height, width) = (clamp_side(height), clamp_side(width));

    CropBox {
        top: (IMAGE_SIDE - height) / 2,
        left: (IMAGE_SIDE - width) / 2,
        height,
        width,
    }
}

/// For each output position along one axis: the two source positions to blend and the
/// weight of the second, with half-pixel centres (`align_corners = false`).
fn axis_taps(start: usize, length: usize) -> [(usize, usize, f32); IMAGE_SIDE] {
    let step = length as f32 / IMAGE_SIDE as f32;
    let mut taps = [(0, 0, 0.0); IMAGE_SIDE];
    for (out, tap) in taps.iter_mut().enumerate() {
        let source = ((out as f32 + 0.5) * step - 0.5).max(0.0);
        let first = (source.floor() as usize).min(length - 1);
        let second = (first + 1).min(length - 1);
        let weight = if first == second {
            0.0
        } else {
            source - first as f32
        };
        *tap = (start + first, start + second, weight);
    }
    taps
}

/// Resamples the rectangle `crop` of `image` (`[3, 32, 32]` bytes) bilinearly to 32x32,
/// mirrored left to right when `flip` is set, into `out` (`[3, 32, 32]` values in [0,
/// 1]).
///
/// # Panics
/// If `image` or `out` does not hold 3,072 values, or `crop` does not lie inside the
/// image.
pub fn resized_crop(image: &[u8], crop: CropBox, flip: bool, out: &mut [f32]) {
    let plane = IMAGE_SIDE * IMAGE_SIDE;
    assert_eq!(
        image.len(),
        CHANNELS * plane,
        "image must hold [3, 32, 32] bytes"
    );
    assert_eq!(
        out.len(),
        CHANNELS * plane,
        "output must hold [3, 32, 32] values"
    );
    assert!(
        crop.height >= 1
            && crop.width >= 1
            && crop.top + crop.height <= IMAGE_SIDE
            && crop.left + crop.width <= IMAGE_SIDE,
        "crop {crop:?} does not lie inside a 32x32 image"
    );

    let rows = axis_taps(crop.top, crop.height);
    let mut columns = axis_taps(crop.left, crop.width);
    if flip {
        columns.reverse();
    }
    let span = crop.left..crop.left + crop.width;

    // Separable: blend the two source rows of an output row, then the two columns.
    let mut blended = [0.0f32; IMAGE_SIDE];
    for (source, target) in image.chunks_exact(plane).zip(out.chunks_exact_mut(plane)) {
        for (&(row0, row1, wy), target_row) in rows.iter().zip(target.chunks_exact_mut(IMAGE_SIDE))
        {
            let upper = &source[row0 * IMAGE_SIDE..(row0 + 1) * IMAGE_SIDE];
            let lower = &source[row1 * IMAGE_SIDE..(row1 + 1) * IMAGE_SIDE];
            for column in span.clone() {
                let top = UNIT[usize::from(upper[column])];
                let bottom = UNIT[usize::from(lower[column])];
                blended[column] = lerp(top, bottom, wy);
            }
            for (&(col0, col1, wx), value) in columns.iter().zip(target_row.iter_mut()) {
                *value = lerp(blended[col0], blended[col1], wx);
            }
        }
    }
}

/// Byte values on the [0, 1] scale: `UNIT[b] = b / 255`.
static UNIT: [f32; 256] = unit_table();

const fn unit_table() -> [f32; 256] {
    let mut table = [0.0; 256];
    let mut byte = 0;
    while byte < 256 {
        table[byte] = byte as f32 / 255.0;
        byte += 1;
    }
    table
}

fn lerp(a: f32, b: f32, weight: f32) -> f32 {
    a + (b - a) * weight
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// An image whose value at (channel, row, column) is `column + 32 * channel`.
    fn column_ramp() -> Vec<u8> {
        (0..3 * 1024)
            .map(|i| ((i % 32) + 32 * (i / 1024)) as u8)
            .collect()
    }

    #[test]
    fn whole_crop_reproduces_image() {
        let image: Vec<u8> = (0..3072).map(|i| (i * 7 % 256) as u8).collect();
        let mut out = vec![0.0; 3072];
        resized_crop(&image, CropBox::whole(), false, &mut out);
        for (value, byte) in out.iter().zip(&image) {
            assert_eq!(*value, f32::from(*byte) / 255.0);
        }
    }

    #[test]
    fn flip_mirrors_columns() {
        let image = column_ramp();
        let mut out = vec![0.0; 3072];
        resized_crop(&image, CropBox::whole(), true, &mut out);
        for channel in 0..3 {
            for row in [0, 17, 31] {
                for column in 0..32 {
                    let got = out[channel * 1024 + row * 32 + column];
                    let expected = (31 - column + 32 * channel) as f32 / 255.0;
                    assert_eq!(got, expected, "channel {channel} row {row} column {column}");
                }
            }
        }
    }

    #[test]
    fn upsampling_uses_half_pixel_centres() {
        // The left half (16 columns) stretched to 32: output column x samples source
        // position (x + 0.5) / 2 - 0.5, clamped to [0, 15]; a ramp makes that the value.
        let image = column_ramp();
        let crop = CropBox {
            top: 8,
            left: 0,
            height: 16,
            width: 16,
        };
        let mut out = vec![0.0; 3072];
        resized_crop(&image, crop, false, &mut out);
        for column in 0..32 {
            let source = ((column as f32 + 0.5) / 2.0 - 0.5).clamp(0.0, 15.0);
            let got = out[5 * 32 + column] * 255.0;
            assert!(
                (got - source).abs() < 1e-4,
                "column {column}: {got} vs {source}"
            );
        }
        // Offsets apply: a crop starting at column 10 starts from value 10 in channel 2.
        let crop = CropBox {
            top: 0,
            left: 10,
            height: 32,
            width: 11,
        };
        resized_crop(&image, crop, false, &mut out);
        assert!((out[2048] * 255.0 - 74.0).abs() < 1e-4);
    }

    #[test]
    fn sampled_crops_fit_and_follow_scale_and_ratio() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut areas = Vec::new();
        for _ in 0..2000 {
            let crop = sample_crop(&mut rng, [0.08, 1.0], [0.75, 4.0 / 3.0]);
            assert!(crop.height >= 1 && crop.width >= 1);
            assert!(
                crop.top + crop.height <= 32 && crop.left + crop.width <= 32,
                "{crop:?}"
            );
            let ratio = crop.width as f32 / crop.height as f32;
            // Rounding to whole pixels can move the ratio a little past the bounds.
            assert!((0.6..=1.6).contains(&ratio), "{crop:?}");
            areas.push((crop.width * crop.height) as f32 / 1024.0);
        }
        let mean = areas.iter().sum::<f32>() / areas.len() as f32;
        // Uniform area fraction in [0.08, 1] has mean 0.54; large draws that do not fit
        // are redrawn, which pulls the mean down a little.
        assert!((0.40..0.56).contains(&mean), "mean area fraction {mean}");
        assert!(areas.iter().any(|&a| a < 0.12) && areas.iter().any(|&a| a > 0.95));
    }

    #[test]
    fn impossible_draws_fall_back_to_clamped_centre_crop() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        // Full area at ratio 2 never fits: the fallback keeps the width, halves the
        // height.
        let crop = sample_crop(&mut rng, [1.0, 1.0], [2.0, 2.0]);
        assert_eq!(
            crop,
            CropBox {
                top: 8,
                left: 0,
                height: 16,
                width: 32
            }
        );
        let crop = sample_crop(&mut rng, [1.0, 1.0], [0.25, 0.5]);
        assert_eq!(
            crop,
            CropBox {
                top: 0,
                left: 8,
                height: 32,
                width: 16
            }
        );
        // Scale 1 with ratio 1 is always the whole image.
        assert_eq!(
            sample_crop(&mut rng, [1.0, 1.0], [1.0, 1.0]),
            CropBox::whole()
        );
    }
}
