//! A tiny built-in 5 x 7 bitmap font (digits, a few capital letters and signs) for the
//! labels of the pictures, drawn at an integer scale.

use image::{Rgb, RgbImage};

/// Width of a glyph in font pixels.
pub const GLYPH_WIDTH: u32 = 5;
/// Height of a glyph in font pixels.
pub const GLYPH_HEIGHT: u32 = 7;
/// Font pixels between two glyphs.
const SPACING: u32 = 1;

/// The rows of a glyph, top first; bit 4 is the leftmost pixel. Characters without a
/// glyph are drawn as a hollow box so that a missing one is seen, not silently skipped.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        '1' => [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        '2' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        '3' => [0b11110, 0b00001, 0b00001, 0b01110, 0b00001, 0b00001, 0b11110],
        '4' => [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        '5' => [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        '6' => [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        '7' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        '8' => [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        '9' => [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        'A' => [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'B' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110],
        'C' => [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
        'D' => [0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110],
        'E' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        'F' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
        'G' => [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        'H' => [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'I' => [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        'K' => [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        'L' => [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        'M' => [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
        'N' => [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
        'O' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'P' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        'Q' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101],
        'R' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        'S' => [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        'T' => [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        'U' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'V' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        'W' => [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010],
        'X' => [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001],
        'Y' => [0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 0b01100, 0b01100],
        ',' => [0, 0, 0, 0, 0b01100, 0b00100, 0b01000],
        ':' => [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0],
        '-' => [0, 0, 0, 0b11111, 0, 0, 0],
        '>' => [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000],
        '(' => [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010],
        ')' => [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000],
        '%' => [0b11001, 0b11010, 0b00010, 0b00100, 0b01000, 0b01011, 0b10011],
        '#' => [0b01010, 0b01010, 0b11111, 0b01010, 0b11111, 0b01010, 0b01010],
        _ => [0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111],
    }
}

/// Width in image pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: u32) -> u32 {
    let count = text.chars().count() as u32;
    if count == 0 {
        return 0;
    }
    (count * (GLYPH_WIDTH + SPACING) - SPACING) * scale
}

/// Height in image pixels of a line of text drawn at `scale`.
pub fn text_height(scale: u32) -> u32 {
    GLYPH_HEIGHT * scale
}

/// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale x scale`
/// square of `colour`; whatever falls outside the image is clipped.
pub fn draw_text(image: &mut RgbImage, x: i64, y: i64, text: &str, scale: u32, colour: Rgb<u8>) {
    let scale = scale.max(1) as i64;
    let step = (GLYPH_WIDTH + SPACING) as i64 * scale;
    for (position, c) in text.chars().enumerate() {
        let left = x + position as i64 * step;
        for (row, bits) in glyph(c).iter().enumerate() {
            for column in 0..GLYPH_WIDTH as i64 {
                if bits & (1 << (GLYPH_WIDTH as i64 - 1 - column)) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        put(image, left + column * scale + dx, y + row as i64 * scale + dy, colour);
                    }
                }
            }
        }
    }
}

/// Draws `text` centred on `(cx, cy)`.
pub fn draw_text_centred(
    image: &mut RgbImage,
    cx: i64,
    cy: i64,
    text: &str,
    scale: u32,
    colour: Rgb<u8>,
) {
    let x = cx - text_width(text, scale) as i64 / 2;
    let y = cy - text_height(scale) as i64 / 2;
    draw_text(image, x, y, text, scale, colour);
}

fn put(image: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < image.width() && (y as u32) < image.height() {
        image.put_pixel(x as u32, y as u32, colour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(image: &RgbImage) -> usize {
        image.pixels().filter(|p| p.0 == [255, 255, 255]).count()
    }

    #[test]
    fn glyphs_cover_the_expected_pixels_at_each_scale() {
        let mut image = RgbImage::new(40, 20);
        draw_text(&mut image, 0, 0, "1", 1, Rgb([255, 255, 255]));
        // "1" has 1 + 2 + 1 + 1 + 1 + 1 + 3 = 10 lit font pixels.
        assert_eq!(lit(&image), 10);
        assert_eq!(image.get_pixel(2, 0).0, [255, 255, 255]);
        assert_eq!(image.get_pixel(0, 0).0, [0, 0, 0]);

        let mut image = RgbImage::new(40, 20);
        draw_text(&mut image, 0, 0, "1", 2, Rgb([255, 255, 255]));
        assert_eq!(lit(&image), 40);
    }

    #[test]
    fn every_label_character_has_its_own_glyph_and_widths_add_up() {
        let unknown = glyph('~');
        for c in "0123456789ABCDEFGHIKLMNOPQRSTUVWXY.,:->()%#".chars() {
            assert_ne!(glyph(c), unknown, "{c}");
        }
        assert_eq!(text_width("", 3), 0);
        assert_eq!(text_width("12", 1), 11);
        assert_eq!(text_width("12", 3), 33);
        assert_eq!(text_height(2), 14);
    }

    #[test]
    fn text_outside_the_image_is_clipped() {
        let mut image = RgbImage::new(4, 4);
        draw_text(&mut image, -3, -3, "8888", 2, Rgb([255, 255, 255]));
        draw_text(&mut image, 100, 100, "8", 2, Rgb([255, 255, 255]));
        assert!(lit(&image) > 0);
    }
}
