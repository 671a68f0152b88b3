//! Drawing primitives for the pictures: rectangles, anti-aliased segments, discs,
//! triangles, and the colour maps.

use image::{Rgb, RgbImage};

/// Fills the rectangle with top-left corner `(x, y)`, clipped to the image.
pub fn fill_rect(image: &mut RgbImage, x: i64, y: i64, width: u32, height: u32, colour: Rgb<u8>) {
    let (x0, y0) = (x.max(0), y.max(0));
    let x1 = (x + width as i64).min(image.width() as i64);
    let y1 = (y + height as i64).min(image.height() as i64);
    for py in y0..y1 {
        for px in x0..x1 {
            image.put_pixel(px as u32, py as u32, colour);
        }
    }
}

/// Outlines the rectangle with a line `thickness` pixels wide, inside its bounds.
pub fn outline_rect(
    image: &mut RgbImage,
    x: i64,
    y: i64,
    width: u32,
    height: u32,
    thickness: u32,
    colour: Rgb<u8>,
) {
    let t = thickness.min(width).min(height);
    fill_rect(image, x, y, width, t, colour);
    fill_rect(image, x, y + (height - t) as i64, width, t, colour);
    fill_rect(image, x, y, t, height, colour);
    fill_rect(image, x + (width - t) as i64, y, t, height, colour);
}

/// Mixes `colour` into the pixel at `(x, y)` with weight `alpha` in [0, 1]; outside the
/// image nothing happens.
pub fn blend(image: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>, alpha: f64) {
    if x < 0 || y < 0 || x >= image.width() as i64 || y >= image.height() as i64 {
        return;
    }
    let alpha = alpha.clamp(0.0, 1.0);
    let pixel = image.get_pixel_mut(x as u32, y as u32);
    for (old, new) in pixel.0.iter_mut().zip(colour.0) {
        *old = (*old as f64 * (1.0 - alpha) + new as f64 * alpha).round() as u8;
    }
}

/// Draws the segment from `a` to `b`, `width` pixels wide, with soft edges.
pub fn draw_segment(
    image: &mut RgbImage,
    a: (f64, f64),
    b: (f64, f64),
    width: f64,
    colour: Rgb<u8>,
) {
    let reach = width / 2.0 + 1.0;
    let x0 = (a.0.min(b.0) - reach).floor() as i64;
    let x1 = (a.0.max(b.0) + reach).ceil() as i64;
    let y0 = (a.1.min(b.1) - reach).floor() as i64;
    let y1 = (a.1.max(b.1) + reach).ceil() as i64;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let distance = distance_to_segment((x as f64 + 0.5, y as f64 + 0.5), a, b);
            let coverage = width / 2.0 + 0.5 - distance;
            if coverage > 0.0 {
                blend(image, x, y, colour, coverage);
            }
        }
    }
}

fn distance_to_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length_squared = dx * dx + dy * dy;
    let t = if length_squared == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / length_squared).clamp(0.0, 1.0)
    };
    let (nx, ny) = (a.0 + t * dx - p.0, a.1 + t * dy - p.1);
    (nx * nx + ny * ny).sqrt()
}

/// Fills the disc of `radius` around `centre`, with soft edges.
pub fn fill_disc(image: &mut RgbImage, centre: (f64, f64), radius: f64, colour: Rgb<u8>) {
    let x0 = (centre.0 - radius - 1.0).floor() as i64;
    let x1 = (centre.0 + radius + 1.0).ceil() as i64;
    let y0 = (centre.1 - radius - 1.0).floor() as i64;
    let y1 = (centre.1 + radius + 1.0).ceil() as i64;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (dx, dy) = (x as f64 + 0.5 - centre.0, y as f64 + 0.5 - centre.1);
            let coverage = radius + 0.5 - (dx * dx + dy * dy).sqrt();
            if coverage > 0.0 {
                blend(image, x, y, colour, coverage);
            }
        }
    }
}

/// Fills the triangle with corners `a`, `b`, `c` (pixels whose centre lies inside).
pub fn fill_triangle(
    image: &mut RgbImage,
    a: (f64, f64),
    b: (f64, f64),
    c: (f64, f64),
    colour: Rgb<u8>,
) {
    let edge = |p: (f64, f64), q: (f64, f64), r: (f64, f64)| {
        (q.0 - p.0) * (r.1 - p.1) - (q.1 - p.1) * (r.0 - p.0)
    };
    let area = edge(a, b, c);
    if area == 0.0 {
        return;
    }
    let x0 = a.0.min(b.0).min(c.0).floor() as i64;
    let x1 = a.0.max(b.0).max(c.0).ceil() as i64;
    let y0 = a.1.min(b.1).min(c.1).floor() as i64;
    let y1 = a.1.max(b.1).max(c.1).ceil() as i64;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let p = (x as f64 + 0.5, y as f64 + 0.5);
            let (w0, w1, w2) = (
                edge(b, c, p) / area,
                edge(c, a, p) / area,
                edge(a, b, p) / area,
            );
            if w0 >= 0.0 && w1 >= 0.0 && w2 >= 0.0 {
                blend(image, x, y, colour, 1.0);
            }
        }
    }
}

/// A perceptually ordered colour map from dark purple (0) through teal to yellow (1),
/// in the manner of viridis: `value` outside [0, 1] is clamped, NaN gives grey.
pub fn sequential_colour(value: f64) -> Rgb<u8> {
    const STOPS: [[f64; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    if value.is_nan() {
        return Rgb([128, 128, 128]);
    }
    let position = value.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let low = (position.floor() as usize).min(STOPS.len() - 2);
    let t = position - low as f64;
    let mix = |k: usize| (STOPS[low][k] * (1.0 - t) + STOPS[low + 1][k] * t).round() as u8;
    Rgb([mix(0), mix(1), mix(2)])
}

/// One clearly distinct colour per edge type (repeating after ten types).
pub fn edge_type_colour(edge_type: usize) -> Rgb<u8> {
    const PALETTE: [[u8; 3]; 10] = [
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [127, 127, 127],
        [188, 189, 34],
        [23, 190, 207],
    ];
    Rgb(PALETTE[edge_type % PALETTE.len()])
}

/// Black or white, whichever reads better on `background`.
pub fn text_colour_on(background: Rgb<u8>) -> Rgb<u8> {
    let [r, g, b] = background.0.map(f64::from);
    if 0.299 * r + 0.587 * g + 0.114 * b > 140.0 {
        Rgb([0, 0, 0])
    } else {
        Rgb([255, 255, 255])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_land_where_they_should() {
        let mut image = RgbImage::new(20, 20);
        let white = Rgb([255, 255, 255]);
        fill_rect(&mut image, 18, 18, 5, 5, white);
        assert_eq!(image.pixels().filter(|p| p.0 == white.0).count(), 4);

        let mut image = RgbImage::new(20, 20);
        draw_segment(&mut image, (2.0, 10.5), (17.0, 10.5), 1.0, white);
        assert_eq!(image.get_pixel(10, 10).0, [255, 255, 255]);
        assert_eq!(image.get_pixel(10, 9).0, [0, 0, 0]);
        assert_eq!(image.get_pixel(10, 2).0, [0, 0, 0]);

        let mut image = RgbImage::new(20, 20);
        fill_disc(&mut image, (10.0, 10.0), 4.0, white);
        assert_eq!(image.get_pixel(10, 10).0, [255, 255, 255]);
        assert_eq!(image.get_pixel(1, 1).0, [0, 0, 0]);

        let mut image = RgbImage::new(20, 20);
        fill_triangle(&mut image, (0.0, 0.0), (19.0, 0.0), (0.0, 19.0), white);
        assert_eq!(image.get_pixel(2, 2).0, [255, 255, 255]);
        assert_eq!(image.get_pixel(18, 18).0, [0, 0, 0]);
    }

    #[test]
    fn colour_maps_run_from_dark_to_light_and_types_differ() {
        assert_eq!(sequential_colour(0.0).0, [68, 1, 84]);
        assert_eq!(sequential_colour(1.0).0, [253, 231, 37]);
        assert_eq!(sequential_colour(7.0).0, [253, 231, 37]);
        assert_ne!(edge_type_colour(0), edge_type_colour(1));
        assert_eq!(text_colour_on(Rgb([253, 231, 37])).0, [0, 0, 0]);
        assert_eq!(text_colour_on(Rgb([68, 1, 84])).0, [255, 255, 255]);
    }
}
