//! The per-view augmentation pipeline: random resized crop, horizontal flip, colour
//! jitter, grayscale and normalization, each view drawn independently.

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::cifar::{CifarKind, IMAGE_SIDE};
use super::color::{
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, to_grayscale,
};
use super::crop::{resized_crop, sample_crop, uniform};
use super::error::DataError;

/// Settings of the augmentation pipeline; the defaults are those of the method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentParams {
    /// Range of the crop's area as a fraction of the image; default `[0.08, 1.0]`.
    pub crop_scale: [f32; 2],
    /// Range of the crop's aspect ratio (width / height); default `[3/4, 4/3]`.
    pub crop_ratio: [f32; 2],
    /// Probability of a horizontal flip; default 0.5.
    pub flip_probability: f32,
    /// Probability of applying the colour jitter; default 0.8.
    pub jitter_probability: f32,
    /// Brightness strength: factor uniform in `[max(0, 1 - b), 1 + b]`; default 0.8.
    pub brightness: f32,
    /// Contrast strength: factor uniform in `[max(0, 1 - c), 1 + c]`; default 0.8.
    pub contrast: f32,
    /// Saturation strength: factor uniform in `[max(0, 1 - s), 1 + s]`; default 0.8.
    pub saturation: f32,
    /// Hue strength: shift uniform in `[-h, h]` of a turn, `h <= 0.5`; default 0.2.
    pub hue: f32,
    /// Probability of turning the view to grayscale; default 0.2.
    pub grayscale_probability: f32,
}

impl Default for AugmentParams {
    fn default() -> Self {
        AugmentParams {
            crop_scale: [0.08, 1.0],
            crop_ratio: [3.0 / 4.0, 4.0 / 3.0],
            flip_probability: 0.5,
            jitter_probability: 0.8,
            brightness: 0.8,
            contrast: 0.8,
            saturation: 0.8,
            hue: 0.2,
            grayscale_probability: 0.2,
        }
    }
}

impl AugmentParams {
    /// Checks every setting against its allowed range.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |field, value: String, expected| DataError::BadAugmentation {
            field,
            value,
            expected,
        };

        let [low, high] = self.crop_scale;
        if !(low > 0.0 && low <= high && high <= 1.0) {
            let expected = "0 < low <= high <= 1";
            return Err(bad("crop_scale", format!("[{low}, {high}]"), expected));
        }
        let [low, high] = self.crop_ratio;
        if !(low > 0.0 && low <= high && high.is_finite()) {
            let expected = "0 < low <= high, finite";
            return Err(bad("crop_ratio", format!("[{low}, {high}]"), expected));
        }

        let probabilities = [
            ("flip_probability", self.flip_probability),
            ("jitter_probability", self.jitter_probability),
            ("grayscale_probability", self.grayscale_probability),
        ];
        for (field, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(bad(field, value.to_string(), "a probability in [0, 1]"));
            }
        }

        let strengths = [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ];
        for (field, value) in strengths {
            if !(value >= 0.0 && value.is_finite()) {
                return Err(bad(field, value.to_string(), "a finite number >= 0"));
            }
        }
        if !(0.0..=0.5).contains(&self.hue) {
            return Err(bad("hue", self.hue.to_string(), "a number in [0, 0.5]"));
        }
        Ok(())
    }
}

/// One of the four colour-jitter operations, applied in a random order.
#[derive(Debug, Clone, Copy)]
enum Jitter {
    Brightness,
    Contrast,
    Saturation,
    Hue,
}

/// Draws augmented views of CIFAR images: `[3, 32, 32]` bytes -> `[3, 32, 32]` normalized
/// values.
#[derive(Debug, Clone)]
pub struct Augmenter {
    kind: CifarKind,
    params: AugmentParams,
    /// The kind's per-channel mean and standard deviation.
    mean: [f32; 3],
    std: [f32; 3],
}

impl Augmenter {
    /// The method's pipeline (default [`AugmentParams`]) with `kind`'s normalization.
    pub fn new(kind: CifarKind) -> Self {
        Augmenter {
            kind,
            params: AugmentParams::default(),
            mean: kind.mean(),
            std: kind.std(),
        }
    }

    /// A pipeline with other settings, checked by [`AugmentParams::validate`].
    pub fn with_params(kind: CifarKind, params: AugmentParams) -> Result<Self, DataError> {
        params.validate()?;
        Ok(Augmenter {
            params,
            ..Augmenter::new(kind)
        })
    }

    /// The data set whose normalization the views use.
    pub fn kind(&self) -> CifarKind {
        self.kind
    }

    /// The settings in use.
    pub fn params(&self) -> &AugmentParams {
        &self.params
    }

    /// Writes one augmented view of `image` (`[3, 32, 32]` bytes) into `out`
    /// (`[3, 32, 32]` values), drawing every random choice from `rng`.
    ///
    /// Steps: random resized crop to 32x32 (bilinear), horizontal flip, colour jitter
    /// (brightness, contrast, saturation, hue in a random order, clamped to [0, 1] after
    /// each), grayscale, then `(x - mean) / std` per channel.
    ///
    /// # Panics
    /// If `image` or `out` does not hold 3,072 values.
    pub fn view<R: Rng>(&self, image: &[u8], rng: &mut R, out: &mut [f32]) {
        let params = &self.params;
        let crop = sample_crop(rng, params.crop_scale, params.crop_ratio);
        let flip = rng.gen::<f32>() < params.flip_probability;
        resized_crop(image, crop, flip, out);

        if rng.gen::<f32>() < params.jitter_probability {
            self.jitter(rng, out);
        }
        if rng.gen::<f32>() < params.grayscale_probability {
            to_grayscale(out);
        }

        let plane = IMAGE_SIDE * IMAGE_SIDE;
        for (channel, values) in out.chunks_exact_mut(plane).enumerate() {
            let (mean, scale) = (self.mean[channel], 1.0 / self.std[channel]);
            for value in values {
                *value = (*value - mean) * scale;
            }
        }
    }

    /// Colour jitter: draws the four factors and an order, then applies them.
    fn jitter<R: Rng>(&self, rng: &mut R, pixels: &mut [f32]) {
        let mut order = [
            Jitter::Brightness,
            Jitter::Contrast,
            Jitter::Saturation,
            Jitter::Hue,
        ];
        order.shuffle(rng);
        let mut factor = |strength: f32| {
            let strength = f64::from(strength);
            uniform(rng, (1.0 - strength).max(0.0), 1.0 + strength) as f32
        };
        let brightness = factor(self.params.brightness);
        let contrast = factor(self.params.contrast);
        let saturation = factor(self.params.saturation);
        let hue = f64::from(self.params.hue);
        let hue = uniform(rng, -hue, hue) as f32;

        for operation in order {
            match operation {
                Jitter::Brightness => adjust_brightness(pixels, brightness),
                Jitter::Contrast => adjust_contrast(pixels, contrast),
                Jitter::Saturation => adjust_saturation(pixels, saturation),
                Jitter::Hue => adjust_hue(pixels, hue),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::IMAGE_BYTES;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::data::cifar::normalization_table;

    /// The normalized, un-augmented image, for comparisons.
    fn plain(kind: CifarKind, image: &[u8]) -> Vec<f32> {
        let table = normalization_table(kind);
        image
            .iter()
            .enumerate()
            .map(|(i, &b)| table[i / 1024][usize::from(b)])
            .collect()
    }

    /// Crop of the whole image, nothing else.
    fn identity() -> AugmentParams {
        AugmentParams {
            crop_scale: [1.0, 1.0],
            crop_ratio: [1.0, 1.0],
            flip_probability: 0.0,
            jitter_probability: 0.0,
            grayscale_probability: 0.0,
            ..AugmentParams::default()
        }
    }

    fn random_image(seed: u64) -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..IMAGE_BYTES).map(|_| rng.gen()).collect()
    }

    /// Smooth images: a random colour per image plus a mild gradient, like natural
    /// photographs in that neighbouring pixels agree.
    fn smooth_image(rng: &mut ChaCha8Rng) -> Vec<u8> {
        let base: [f32; 3] = [rng.gen(), rng.gen(), rng.gen()];
        let slope: f32 = rng.gen_range(-0.3..0.3);
        (0..IMAGE_BYTES)
            .map(|i| {
                let (channel, column) = (i / 1024, i % 32);
                let value = base[channel] + slope * (column as f32 / 31.0 - 0.5);
                (value.clamp(0.0, 1.0) * 255.0).round() as u8
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32], tolerance: f32) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tolerance)
    }

    #[test]
    fn whole_crop_reproduces_normalized_image() {
        let augmenter = Augmenter::with_params(CifarKind::Cifar10, identity()).unwrap();
        let image = random_image(1);
        let mut out = vec![0.0; IMAGE_BYTES];
        augmenter.view(&image, &mut ChaCha8Rng::seed_from_u64(0), &mut out);
        assert!(close(&out, &plain(CifarKind::Cifar10, &image), 1e-5));
    }

    #[test]
    fn forced_flip_mirrors_rows() {
        let params = AugmentParams {
            flip_probability: 1.0,
            ..identity()
        };
        let augmenter = Augmenter::with_params(CifarKind::Cifar100, params).unwrap();
        let image = random_image(2);
        let mut out = vec![0.0; IMAGE_BYTES];
        augmenter.view(&image, &mut ChaCha8Rng::seed_from_u64(0), &mut out);

        let mirrored: Vec<u8> = image
            .chunks(32)
            .flat_map(|row| row.iter().rev().copied())
            .collect();
        assert!(close(&out, &plain(CifarKind::Cifar100, &mirrored), 1e-5));
    }

    #[test]
    fn forced_grayscale_equalizes_channels_before_normalization() {
        let params = AugmentParams {
            grayscale_probability: 1.0,
            ..identity()
        };
        let augmenter = Augmenter::with_params(CifarKind::Cifar10, params).unwrap();
        let image = random_image(3);
        let mut out = vec![0.0; IMAGE_BYTES];
        augmenter.view(&image, &mut ChaCha8Rng::seed_from_u64(0), &mut out);

        let (mean, std) = (CifarKind::Cifar10.mean(), CifarKind::Cifar10.std());
        for pixel in [0, 100, 1023] {
            let rgb: Vec<f32> = (0..3)
                .map(|c| f32::from(image[c * 1024 + pixel]) / 255.0)
                .collect();
            let luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
            for channel in 0..3 {
                let got = out[channel * 1024 + pixel] * std[channel] + mean[channel];
                assert!((got - luma).abs() < 1e-5, "pixel {pixel} channel {channel}");
            }
        }
    }

    #[test]
    fn brightness_only_jitter_scales_values() {
        // Brightness strength 0.5 draws factors in [0.5, 1.5]; no other change.
        let params = AugmentParams {
            jitter_probability: 1.0,
            brightness: 0.5,
            contrast: 0.0,
            saturation: 0.0,
            hue: 0.0,
            ..identity()
        };
        let augmenter = Augmenter::with_params(CifarKind::Cifar10, params).unwrap();
        // Values at most 0.6 so that no factor clamps them.
        let image: Vec<u8> = random_image(4).iter().map(|&b| b / 2 + 20).collect();
        let (mean, std) = (CifarKind::Cifar10.mean(), CifarKind::Cifar10.std());
        let mut out = vec![0.0; IMAGE_BYTES];
        let mut factors = Vec::new();
        for seed in 0..20 {
            augmenter.view(&image, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            let raw: Vec<f32> = out
                .iter()
                .enumerate()
                .map(|(i, v)| v * std[i / 1024] + mean[i / 1024])
                .collect();
            let factor = raw[0] / (f32::from(image[0]) / 255.0);
            assert!((0.5..=1.5).contains(&factor), "factor {factor}");
            for (value, byte) in raw.iter().zip(&image) {
                assert!((value - factor * f32::from(*byte) / 255.0).abs() < 1e-4);
            }
            factors.push(factor);
        }
        assert!(factors.iter().any(|&f| f < 0.9) && factors.iter().any(|&f| f > 1.1));
    }

    #[test]
    fn views_are_reproducible_and_vary() {
        let augmenter = Augmenter::new(CifarKind::Cifar10);
        let image = random_image(5);
        let draw = |seed| {
            let mut out = vec![0.0; IMAGE_BYTES];
            augmenter.view(&image, &mut ChaCha8Rng::seed_from_u64(seed), &mut out);
            out
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn view_statistics_match_normalization() {
        let kind = CifarKind::Cifar10;
        let augmenter = Augmenter::new(kind);
        let (mean, std) = (kind.mean(), kind.std());
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut out = vec![0.0; IMAGE_BYTES];
        // Per channel: sum and sum of squares of the views, sum of the plain images.
        let mut sums = [[0.0f64; 3]; 3];
        let views = 600;

        for _ in 0..views {
            let image = smooth_image(&mut rng);
            augmenter.view(&image, &mut rng, &mut out);
            let reference = plain(kind, &image);
            for (channel, values) in out.chunks(1024).enumerate() {
                let low = -mean[channel] / std[channel] - 1e-4;
                let high = (1.0 - mean[channel]) / std[channel] + 1e-4;
                for &v in values {
                    assert!(
                        v.is_finite() && v >= low && v <= high,
                        "value {v} out of range"
                    );
                    sums[channel][0] += f64::from(v);
                    sums[channel][1] += f64::from(v * v);
                }
                let plain_values = &reference[channel * 1024..(channel + 1) * 1024];
                sums[channel][2] += plain_values.iter().map(|&v| f64::from(v)).sum::<f64>();
            }
        }

        // Source pixels are about uniform on [0, 1] (std 0.29), so normalized views have
        // a std near 1.2, and a mean near that of the plain normalized images; the jitter
        // (clamping, pulls towards gray) lowers it by about 0.1-0.2. A missing
        // normalization gives a std near 0.3, a doubled one a mean far below.
        let count = (views * 1024) as f64;
        for (channel, [sum, squares, plain_sum]) in sums.iter().enumerate() {
            let (m, expected) = (sum / count, plain_sum / count);
            let s = (squares / count - m * m).sqrt();
            assert!(
                (m - expected).abs() < 0.3,
                "channel {channel}: mean {m} vs {expected}"
            );
            assert!((0.8..1.6).contains(&s), "channel {channel}: std {s}");
        }
    }

    #[test]
    fn bad_params_are_rejected() {
        let cases = [
            (
                AugmentParams {
                    crop_scale: [0.0, 1.0],
                    ..AugmentParams::default()
                },
                "crop_scale",
            ),
            (
                AugmentParams {
                    crop_scale: [0.5, 1.2],
                    ..AugmentParams::default()
                },
                "crop_scale",
            ),
            (
                AugmentParams {
                    crop_ratio: [2.0, 1.0],
                    ..AugmentParams::default()
                },
                "crop_ratio",
            ),
            (
                AugmentParams {
                    flip_probability: 1.5,
                    ..AugmentParams::default()
                },
                "flip_probability",
            ),
            (
                AugmentParams {
                    contrast: -0.1,
                    ..AugmentParams::default()
                },
                "contrast",
            ),
            (
                AugmentParams {
                    hue: 0.6,
                    ..AugmentParams::default()
                },
                "hue",
            ),
        ];
        for (params, field) in cases {
            let err = Augmenter::with_params(CifarKind::Cifar10, params).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
        assert!(AugmentParams::default().validate().is_ok());
    }
}
