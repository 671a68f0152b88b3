//! A tiny built-in 5 x 7 bitmap font (digits, a few capital letters and signs) for the
//! labels of the pictures, drawn at an integer scale.

use image::{Rgb, RgbImage};

/// Width of a glyph in font pixels.
pub const GLYPH_WIDTH: u32 = 5;
/// Height of a glyph in font pixels.
pub const GLYPH_HEIGHT: u32 = 7;
/// Font pixels between two glyphs.
const SPACING: u32 = 1;

/// The glyphs: each as seven rows of five pixels, top first, `#` lit and `.` dark.
const GLYPHS: [(char, &str); 44] = [
    ('0', ".###. #...# #..## #.#.# ##..# #...# .###."),
    ('1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."),
    ('2', ".###. #...# ....# ...#. ..#.. .#... #####"),
    ('3', "####. ....# ....# .###. ....# ....# ####."),
    ('4', "...#. ..##. .#.#. #..#. ##### ...#. ...#."),
    ('5', "##### #.... ####. ....# ....# #...# .###."),
    ('6', "..##. .#... #.... ####. #...# #...# .###."),
    ('7', "##### ....# ...#. ..#.. .#... .#... .#..."),
    ('8', ".###. #...# #...# .###. #...# #...# .###."),
    ('9', ".###. #...# #...# .#### ....# ...#. .##.."),
    ('A', ".###. #...# #...# ##### #...# #...# #...#"),
    ('B', "####. #...# #...# ####. #...# #...# ####."),
    ('C', ".###. #...# #.... #.... #.... #...# .###."),
    ('D', "####. #...# #...# #...# #...# #...# ####."),
    ('E', "##### #.... #.... ####. #.... #.... #####"),
    ('F', "##### #.... #.... ####. #.... #.... #...."),
    ('G', ".###. #...# #.... #.### #...# #...# .####"),
    ('H', "#...# #...# #...# ##### #...# #...# #...#"),
    ('I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
    ('K', "#...# #..#. #.#.. ##... #.#.. #..#. #...#"),
    ('L', "#.... #.... #.... #.... #.... #.... #####"),
    ('M', "#...# ##.## #.#.# #.#.# #...# #...# #...#"),
    ('N', "#...# #...# ##..# #.#.# #..## #...# #...#"),
    ('O', ".###. #...# #...# #...# #...# #...# .###."),
    ('P', "####. #...# #...# ####. #.... #.... #...."),
    ('Q', ".###. #...# #...# #...# #.#.# #..#. .##.#"),
    ('R', "####. #...# #...# ####. #.#.. #..#. #...#"),
    ('S', ".#### #.... #.... .###. ....# ....# ####."),
    ('T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."),
    ('U', "#...# #...# #...# #...# #...# #...# .###."),
    ('V', "#...# #...# #...# #...# #...# .#.#. ..#.."),
    ('W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#."),
    ('X', "#...# #...# .#.#. ..#.. .#.#. #...# #...#"),
    ('Y', "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.."),
    (' ', "..... ..... ..... ..... ..... ..... ....."),
    ('.', "..... ..... ..... ..... ..... .##.. .##.."),
    (',', "..... ..... ..... ..... .##.. ..#.. .#..."),
    (':', "..... .##.. .##.. ..... .##.. .##.. ....."),
    ('-', "..... ..... ..... ##### ..... ..... ....."),
    ('>', ".#... ..#.. ...#. ....# ...#. ..#.. .#..."),
    ('(', "...#. ..#.. .#... .#... .#... ..#.. ...#."),
    (')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#..."),
    ('%', "##..# ##.#. ...#. ..#.. .#... .#.## #..##"),
    ('#', ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#."),
];

/// Drawn for a character without a glyph: a hollow box, so that a missing glyph is seen,
/// not silently skipped.
const UNKNOWN: &str = "##### #...# #...# #...# #...# #...# #####";

/// The rows of the glyph of `c` (letters in either case), top first; bit 4 is the
/// leftmost pixel.
fn glyph(c: char) -> [u8; 7] {
    let upper = c.to_ascii_uppercase();
    let pattern = GLYPHS
        .iter()
        .find(|(g, _)| *g == upper)
        .map_or(UNKNOWN, |(_, p)| p);
    let mut rows = [0u8; 7];
    for (row, bits) in rows.iter_mut().zip(pattern.split(' ')) {
        *row = bits
            .bytes()
            .fold(0, |acc, b| (acc << 1) | u8::from(b == b'#'));
    }
    rows
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
                        put(
                            image,
                            left + column * scale + dx,
                            y + row as i64 * scale + dy,
                            colour,
                        );
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
