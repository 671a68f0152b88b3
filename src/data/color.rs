//! Colour operations on planar RGB images `[3, H * W]` of values in [0, 1]: brightness,
//! contrast, saturation, hue and grayscale, with torchvision's definitions.
//!
//! Every operation clamps its result to [0, 1].

/// Weights of red, green and blue in the grayscale (luma) value.
pub const GRAY_WEIGHTS: [f32; 3] = [0.299, 0.587, 0.114];

/// Splits a planar image `[3, H * W]` into its three channel planes.
///
/// # Panics
/// If the length is not a multiple of 3.
fn planes(pixels: &mut [f32]) -> (&mut [f32], &mut [f32], &mut [f32]) {
    assert_eq!(
        pixels.len() % 3,
        0,
        "a planar RGB image holds 3 equal planes"
    );
    let plane = pixels.len() / 3;
    let (red, rest) = pixels.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    (red, green, blue)
}

fn gray(r: f32, g: f32, b: f32) -> f32 {
    GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b
}

/// `factor * x + (1 - factor) * other`, clamped to [0, 1].
fn blend(x: f32, other: f32, factor: f32) -> f32 {
    (factor * x + (1.0 - factor) * other).clamp(0.0, 1.0)
}

/// Multiplies every value by `factor` (0 gives black, 1 leaves the image as it is).
pub fn adjust_brightness(pixels: &mut [f32], factor: f32) {
    for value in pixels.iter_mut() {
        *value = (*value * factor).clamp(0.0, 1.0);
    }
}

/// Blends the image with the mean of its grayscale version (0 gives a flat gray image,
/// 1 leaves the image as it is).
pub fn adjust_contrast(pixels: &mut [f32], factor: f32) {
    let (red, green, blue) = planes(pixels);
    if red.is_empty() {
        return;
    }
    let total: f32 = red
        .iter()
        .zip(&*green)
        .zip(&*blue)
        .map(|((&r, &g), &b)| gray(r, g, b))
        .sum();
    let mean = total / red.len() as f32;

    for value in red
        .iter_mut()
        .chain(green.iter_mut())
        .chain(blue.iter_mut())
    {
        *value = blend(*value, mean, factor);
    }
}

/// Blends every pixel with its grayscale value (0 gives the grayscale image, 1 leaves the
/// image as it is).
pub fn adjust_saturation(pixels: &mut [f32], factor: f32) {
    let (red, green, blue) = planes(pixels);
    for ((r, g), b) in red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut()) {
        let luma = gray(*r, *g, *b);
        *r = blend(*r, luma, factor);
        *g = blend(*g, luma, factor);
        *b = blend(*b, luma, factor);
    }
}

/// Turns the hue of every pixel by `shift` of a full turn (in [-0.5, 0.5]) through HSV.
pub fn adjust_hue(pixels: &mut [f32], shift: f32) {
    let (red, green, blue) = planes(pixels);
    for ((r, g), b) in red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut()) {
        let (hue, saturation, value) = rgb_to_hsv(*r, *g, *b);
        let (r2, g2, b2) = hsv_to_rgb(wrap_turn(hue + shift), saturation, value);
        *r = r2.clamp(0.0, 1.0);
        *g = g2.clamp(0.0, 1.0);
        *b = b2.clamp(0.0, 1.0);
    }
}

/// Brings a hue within one turn of [0, 1) back into [0, 1) (cheaper than a remainder).
fn wrap_turn(hue: f32) -> f32 {
    if hue < 0.0 {
        hue + 1.0
    } else if hue >= 1.0 {
        hue - 1.0
    } else {
        hue
    }
}

/// Replaces every pixel by its grayscale value `0.299 R + 0.587 G + 0.114 B` in all three
/// channels.
pub fn to_grayscale(pixels: &mut [f32]) {
    let (red, green, blue) = planes(pixels);
    for ((r, g), b) in red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut()) {
        let luma = gray(*r, *g, *b).clamp(0.0, 1.0);
        (*r, *g, *b) = (luma, luma, luma);
    }
}

/// RGB in [0, 1] to (hue in [0, 1], saturation, value).
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    let saturation = if max > 0.0 { chroma / max } else { 0.0 };

    // Position on the colour wheel in sixths of a turn, in [0, 6].
    let sector = if chroma <= 0.0 {
        0.0
    } else if max == r {
        let sector = (g - b) / chroma;
        if sector < 0.0 {
            sector + 6.0
        } else {
            sector
        }
    } else if max == g {
        (b - r) / chroma + 2.0
    } else {
        (r - g) / chroma + 4.0
    };
    (sector / 6.0, saturation, max)
}

/// (hue in [0, 1], saturation, value) to RGB; a hue of 1 is the same as 0.
pub fn hsv_to_rgb(hue: f32, saturation: f32, value: f32) -> (f32, f32, f32) {
    let scaled = hue.clamp(0.0, 1.0) * 6.0;
    // Truncation is the floor here, since `scaled` is not negative.
    let sector = scaled as i32;
    let fraction = scaled - sector as f32;
    let p = value * (1.0 - saturation);
    let q = value * (1.0 - saturation * fraction);
    let t = value * (1.0 - saturation * (1.0 - fraction));

    match sector {
        0 | 6 => (value, t, p),
        1 => (q, value, p),
        2 => (p, value, t),
        3 => (p, q, value),
        4 => (t, p, value),
        _ => (value, p, q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A planar image of the given pixels.
    fn image(pixels: &[[f32; 3]]) -> Vec<f32> {
        (0..3)
            .flat_map(|c| pixels.iter().map(move |p| p[c]))
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
    }

    #[test]
    fn grayscale_weights() {
        let mut pixels = image(&[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5; 3]]);
        to_grayscale(&mut pixels);
        let expected = [0.299, 0.587, 0.114, 0.5];
        let expected: Vec<f32> = (0..3).flat_map(|_| expected).collect();
        assert!(close(&pixels, &expected), "{pixels:?}");
    }

    #[test]
    fn brightness_scales_and_clamps() {
        let mut pixels = image(&[[0.2, 0.4, 0.6], [0.8, 1.0, 0.0]]);
        adjust_brightness(&mut pixels, 0.5);
        assert!(close(&pixels, &image(&[[0.1, 0.2, 0.3], [0.4, 0.5, 0.0]])));
        adjust_brightness(&mut pixels, 3.0);
        assert!(close(&pixels, &image(&[[0.3, 0.6, 0.9], [1.0, 1.0, 0.0]])));
    }

    #[test]
    fn contrast_blends_with_gray_mean() {
        let original = image(&[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]);
        let mut pixels = original.clone();
        adjust_contrast(&mut pixels, 0.0);
        assert!(close(&pixels, &[0.5; 6]));

        let mut pixels = original.clone();
        adjust_contrast(&mut pixels, 0.5);
        assert!(close(&pixels, &image(&[[0.75; 3], [0.25; 3]])));

        let mut pixels = original.clone();
        adjust_contrast(&mut pixels, 1.0);
        assert!(close(&pixels, &original));
    }

    #[test]
    fn saturation_blends_with_gray() {
        let mut pixels = image(&[[1.0, 0.0, 0.0]]);
        adjust_saturation(&mut pixels, 0.0);
        assert!(close(&pixels, &[0.299; 3]));

        let mut pixels = image(&[[0.6, 0.2, 0.4]]);
        let luma = gray(0.6, 0.2, 0.4);
        adjust_saturation(&mut pixels, 2.0);
        let expected = [2.0 * 0.6 - luma, 2.0 * 0.2 - luma, 2.0 * 0.4 - luma];
        let expected: Vec<f32> = expected.iter().map(|v| v.clamp(0.0, 1.0)).collect();
        assert!(close(&pixels, &expected), "{pixels:?} vs {expected:?}");
    }

    #[test]
    fn hue_turns_colours() {
        let mut pixels = image(&[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
        adjust_hue(&mut pixels, 1.0 / 3.0);
        assert!(
            close(&pixels, &image(&[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])),
            "{pixels:?}"
        );

        let mut pixels = image(&[[1.0, 0.0, 0.0]]);
        adjust_hue(&mut pixels, -0.5);
        assert!(close(&pixels, &[0.0, 1.0, 1.0]), "{pixels:?}");

        // Gray pixels have no hue to turn.
        let mut pixels = image(&[[0.3; 3]]);
        adjust_hue(&mut pixels, 0.2);
        assert!(close(&pixels, &[0.3; 3]));
    }

    #[test]
    fn hsv_round_trip() {
        for r in 0..6 {
            for g in 0..6 {
                for b in 0..6 {
                    let rgb = [r as f32 / 5.0, g as f32 / 5.0, b as f32 / 5.0];
                    let (h, s, v) = rgb_to_hsv(rgb[0], rgb[1], rgb[2]);
                    assert!((0.0..=1.0).contains(&h) && (0.0..=1.0).contains(&s));
                    let back = hsv_to_rgb(h, s, v);
                    assert!(
                        close(&[back.0, back.1, back.2], &rgb),
                        "{rgb:?} -> {back:?}"
                    );
                }
            }
        }
        let (h, s, v) = rgb_to_hsv(1.0, 0.5, 0.0);
        assert!((h - 1.0 / 12.0).abs() < 1e-6 && s == 1.0 && v == 1.0);
    }
}
