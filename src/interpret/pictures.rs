//! The pictures of an interpretation: the slot masks of each image, the relation graph of
//! each image, and how often each edge takes each type over a data set.
//!
//! Images come in as bytes `[n, 3, 32, 32]` (channel-major, as the data sets store them,
//! or as [`denormalize`] makes them from normalized tensors); masks, edge types and
//! frequencies as flat row-major buffers, so that drawing needs no tensors.

use image::{Rgb, RgbImage};
use tch::{Kind, Tensor};

use super::canvas::{
    draw_segment, edge_type_colour, fill_disc, fill_rect, fill_triangle, outline_rect,
    sequential_colour, text_colour_on,
};
use super::error::InterpretError;
use super::font::{draw_text, draw_text_centred, text_height, text_width};
use super::graph::edge_pairs;

/// Side of the images and masks.
const SIDE: usize = 32;
/// Numbers per image `[3, 32, 32]`.
const IMAGE_LEN: usize = 3 * SIDE * SIDE;
/// Screen pixels per image pixel in `masks.png`.
pub const MASK_SCALE: u32 = 4;

const MARGIN: u32 = 12;
const GAP: u32 = 3;
const DARK: Rgb<u8> = Rgb([30, 38, 54]);
const LIGHT: Rgb<u8> = Rgb([236, 236, 236]);
const PAPER: Rgb<u8> = Rgb([252, 252, 252]);
const INK: Rgb<u8> = Rgb([30, 30, 30]);
const FAINT: Rgb<u8> = Rgb([205, 205, 205]);

/// Turns normalized images back into bytes: `[n, 3, 32, 32]` -> `n * 3072` bytes,
/// `round(255 * (x * std + mean))` clamped to 0..=255, channel-major.
pub fn denormalize(
    images: &Tensor,
    mean: [f32; 3],
    std: [f32; 3],
) -> Result<Vec<u8>, InterpretError> {
    let size = images.size();
    if size.len() != 4 || size[1..] != [3, SIDE as i64, SIDE as i64] {
        return Err(InterpretError::Shape {
            what: "images",
            found: size,
            expected: "[n, 3, 32, 32]".into(),
        });
    }
    let mean = Tensor::from_slice(&mean)
        .view([1, 3, 1, 1])
        .to_device(images.device());
    let std = Tensor::from_slice(&std)
        .view([1, 3, 1, 1])
        .to_device(images.device());
    let pixels = ((images.to_kind(Kind::Float) * std + mean) * 255.0)
        .round()
        .clamp(0.0, 255.0);
    Vec::<u8>::try_from(pixels.to_kind(Kind::Uint8).flatten(0, -1)).map_err(|source| {
        InterpretError::Tensor {
            what: "images",
            source,
        }
    })
}

/// Number of images in a byte buffer `[n, 3, 32, 32]`, checked.
fn image_count(images: &[u8]) -> Result<usize, InterpretError> {
    if images.is_empty() {
        return Err(InterpretError::Empty { what: "images" });
    }
    if !images.len().is_multiple_of(IMAGE_LEN) {
        return Err(InterpretError::Shape {
            what: "image bytes",
            found: vec![images.len() as i64],
            expected: format!("a multiple of {IMAGE_LEN} (3 x 32 x 32 per image)"),
        });
    }
    Ok(images.len() / IMAGE_LEN)
}

fn check_labels(labels: &[String], count: usize) -> Result<(), InterpretError> {
    if !labels.is_empty() && labels.len() != count {
        return Err(InterpretError::Shape {
            what: "row labels",
            found: vec![labels.len() as i64],
            expected: format!("none or one per image ({count})"),
        });
    }
    Ok(())
}

/// Draws image `index` of `images` with its top-left corner at `(x, y)`, each pixel a
/// `scale x scale` square.
fn draw_image(canvas: &mut RgbImage, images: &[u8], index: usize, x: u32, y: u32, scale: u32) {
    let image = &images[index * IMAGE_LEN..(index + 1) * IMAGE_LEN];
    let plane = SIDE * SIDE;
    for row in 0..SIDE {
        for column in 0..SIDE {
            let at = row * SIDE + column;
            let colour = Rgb([image[at], image[plane + at], image[2 * plane + at]]);
            let (px, py) = (x + column as u32 * scale, y + row as u32 * scale);
            fill_rect(canvas, px as i64, py as i64, scale, scale, colour);
        }
    }
}

/// `masks.png`: one row per image, the image then its `slots` masks in grey (black 0,
/// white 1), each 32 x 32 cell enlarged [`MASK_SCALE`] times, with a header row naming
/// the slots and, when `labels` is not empty, a label at the left of each row.
///
/// `images`: bytes `[n, 3, 32, 32]`; `masks`: `[n, slots, 32, 32]` row-major.
pub fn masks_picture(
    images: &[u8],
    masks: &[f32],
    slots: usize,
    labels: &[String],
) -> Result<RgbImage, InterpretError> {
    let count = image_count(images)?;
    if masks.len() != count * slots * SIDE * SIDE || slots == 0 {
        return Err(InterpretError::Shape {
            what: "masks",
            found: vec![masks.len() as i64],
            expected: format!("{count} x {slots} x 32 x 32 values, one mask per image and slot"),
        });
    }
    check_labels(labels, count)?;

    let cell = SIDE as u32 * MASK_SCALE;
    let header_scale = 3;
    let header = text_height(header_scale) + 2 * MARGIN;
    let label_scale = 2;
    let label_width = labels
        .iter()
        .map(|l| text_width(l, label_scale))
        .max()
        .unwrap_or(0);
    let label_column = if label_width > 0 {
        label_width + MARGIN
    } else {
        0
    };
    let image_gap = 4 * GAP;
    let first_mask = MARGIN + label_column + cell + image_gap;
    let width = first_mask + slots as u32 * (cell + GAP) - GAP + MARGIN;
    let height = header + count as u32 * (cell + GAP) - GAP + MARGIN;
    let mut canvas = RgbImage::from_pixel(width, height, DARK);

    let image_left = MARGIN + label_column;
    let header_centre = (MARGIN + text_height(header_scale) / 2) as i64;
    let centre_of = |left: u32| (left + cell / 2) as i64;
    draw_text_centred(
        &mut canvas,
        centre_of(image_left),
        header_centre,
        "IMAGE",
        header_scale,
        LIGHT,
    );
    for slot in 0..slots {
        let left = first_mask + slot as u32 * (cell + GAP);
        let title = format!("SLOT {slot}");
        draw_text_centred(
            &mut canvas,
            centre_of(left),
            header_centre,
            &title,
            header_scale,
            LIGHT,
        );
    }

    for index in 0..count {
        let top = header + index as u32 * (cell + GAP);
        if let Some(label) = labels.get(index) {
            let y = (top + cell / 2) as i64 - text_height(label_scale) as i64 / 2;
            draw_text(&mut canvas, MARGIN as i64, y, label, label_scale, LIGHT);
        }
        draw_image(&mut canvas, images, index, image_left, top, MASK_SCALE);
        for slot in 0..slots {
            let left = first_mask + slot as u32 * (cell + GAP);
            let mask = &masks[(index * slots + slot) * SIDE * SIDE..][..SIDE * SIDE];
            for (at, &value) in mask.iter().enumerate() {
                let grey = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
                let (x, y) = (
                    left + (at % SIDE) as u32 * MASK_SCALE,
                    top + (at / SIDE) as u32 * MASK_SCALE,
                );
                fill_rect(
                    &mut canvas,
                    x as i64,
                    y as i64,
                    MASK_SCALE,
                    MASK_SCALE,
                    Rgb([grey; 3]),
                );
            }
        }
    }
    Ok(canvas)
}

/// Layout of one panel of `graph.png`.
mod panel {
    /// Screen pixels per image pixel.
    pub const IMAGE_SCALE: u32 = 2;
    /// Side of the square holding the circle of slots.
    pub const GRAPH_SIDE: u32 = 176;
    /// Radius of the circle the slot nodes sit on.
    pub const RING: f64 = 72.0;
    /// Radius of a slot node.
    pub const NODE: f64 = 10.5;
    /// Sideways shift of a directed edge, so that `i -> j` and `j -> i` do not overlap.
    pub const OFFSET: f64 = 2.5;
    /// Length and half-width of an arrowhead.
    pub const HEAD: (f64, f64) = (7.0, 3.5);
    /// Panels per row of the grid.
    pub const COLUMNS: usize = 8;
}

/// Where slot `slot` of `slots` sits on a circle of `radius` around `centre`, slot 0 at
/// the top and the others clockwise.
fn node_position(slot: usize, slots: usize, centre: (f64, f64), radius: f64) -> (f64, f64) {
    let angle = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * slot as f64 / slots as f64;
    (
        centre.0 + radius * angle.cos(),
        centre.1 + radius * angle.sin(),
    )
}

/// Draws the arrow of a directed edge from `from` to `to` between two nodes.
fn draw_arrow(canvas: &mut RgbImage, from: (f64, f64), to: (f64, f64), colour: Rgb<u8>) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let length = (dx * dx + dy * dy).sqrt();
    if length <= 2.0 * panel::NODE {
        return;
    }
    let (ux, uy) = (dx / length, dy / length);
    let (nx, ny) = (-uy, ux);
    let shift = |p: (f64, f64), along: f64, across: f64| {
        (
            p.0 + ux * along + nx * across,
            p.1 + uy * along + ny * across,
        )
    };
    let (head_length, head_width) = panel::HEAD;
    let start = shift(from, panel::NODE + 1.0, panel::OFFSET);
    let tip = shift(to, -(panel::NODE + 1.0), panel::OFFSET);
    let base = shift(tip, -head_length, 0.0);
    draw_segment(canvas, start, base, 1.3, colour);
    fill_triangle(
        canvas,
        tip,
        shift(base, 0.0, head_width),
        shift(base, 0.0, -head_width),
        colour,
    );
}

/// `graph.png`: a grid of panels, one per image: the image and, beside it, its `slots`
/// slots on a circle with an arrow from sender to receiver for every edge, coloured by the
/// edge's hard type; a legend strip at the top gives the colour of each of the `types`.
///
/// `images`: bytes `[n, 3, 32, 32]`; `edge_types`: `[n, E]` row-major with the edges in
/// the order of [`edge_pairs`]; `labels`: none, or one caption per image.
pub fn graph_picture(
    images: &[u8],
    edge_types: &[i64],
    slots: usize,
    types: usize,
    labels: &[String],
) -> Result<RgbImage, InterpretError> {
    let count = image_count(images)?;
    let endpoints = edge_pairs(slots);
    if edge_types.len() != count * endpoints.len() || slots < 2 {
        return Err(InterpretError::Shape {
            what: "edge types",
            found: vec![edge_types.len() as i64],
            expected: format!(
                "{count} x {} values, one per image and edge",
                endpoints.len()
            ),
        });
    }
    if let Some((position, &value)) = edge_types
        .iter()
        .enumerate()
        .find(|(_, &t)| t < 0 || t >= types as i64)
    {
        return Err(InterpretError::EdgeTypeOutOfRange {
            value,
            position,
            types,
        });
    }
    check_labels(labels, count)?;

    let image_side = SIDE as u32 * panel::IMAGE_SCALE;
    let panel_width = MARGIN + image_side + MARGIN + panel::GRAPH_SIDE + MARGIN;
    let panel_height = panel::GRAPH_SIDE + 2 * MARGIN;
    let columns = count.min(panel::COLUMNS) as u32;
    let rows = count.div_ceil(panel::COLUMNS) as u32;
    let legend = text_height(2) + 2 * MARGIN;
    let width = (MARGIN + columns * (panel_width + GAP) - GAP + MARGIN).max(legend_width(types));
    let height = legend + rows * (panel_height + GAP) - GAP + MARGIN;
    let mut canvas = RgbImage::from_pixel(width, height, PAPER);

    draw_legend(&mut canvas, types);
    for index in 0..count {
        let left = MARGIN + (index as u32 % columns) * (panel_width + GAP);
        let top = legend + (index as u32 / columns) * (panel_height + GAP);
        outline_rect(
            &mut canvas,
            left as i64,
            top as i64,
            panel_width,
            panel_height,
            1,
            FAINT,
        );
        draw_image(
            &mut canvas,
            images,
            index,
            left + MARGIN,
            top + MARGIN,
            panel::IMAGE_SCALE,
        );
        if let Some(label) = labels.get(index) {
            let y = top + MARGIN + image_side + MARGIN;
            draw_text(&mut canvas, (left + MARGIN) as i64, y as i64, label, 2, INK);
        }

        let graph_left = left + MARGIN + image_side + MARGIN;
        let half = panel::GRAPH_SIDE as f64 / 2.0;
        let centre = (graph_left as f64 + half, (top + MARGIN) as f64 + half);
        let node = |slot| node_position(slot, slots, centre, panel::RING);
        let types_of_image = &edge_types[index * endpoints.len()..(index + 1) * endpoints.len()];
        for drawn_type in 0..types as i64 {
            for (&(receiver, sender), _) in endpoints
                .iter()
                .zip(types_of_image)
                .filter(|(_, &t)| t == drawn_type)
            {
                let colour = edge_type_colour(drawn_type as usize);
                draw_arrow(&mut canvas, node(sender), node(receiver), colour);
            }
        }
        for slot in 0..slots {
            fill_disc(&mut canvas, node(slot), panel::NODE, INK);
            fill_disc(&mut canvas, node(slot), panel::NODE - 1.5, PAPER);
            let (x, y) = node(slot);
            draw_text_centred(
                &mut canvas,
                x.round() as i64,
                y.round() as i64,
                &slot.to_string(),
                2,
                INK,
            );
        }
    }
    Ok(canvas)
}

/// Texts and spacing of the legend strip of `graph.png`.
mod legend {
    pub const TITLE: &str = "EDGE TYPE:";
    pub const DIRECTION: &str = "ARROW: SENDER > RECEIVER";
    pub const SCALE: u32 = 2;
    /// Length of a colour swatch, and the room it takes with its gap.
    pub const SWATCH: (f64, i64) = (26.0, 34);
    /// Space after the title and after each type's number.
    pub const SPACE: i64 = 20;
}

/// Width of the legend strip, margins included.
fn legend_width(types: usize) -> u32 {
    let numbers: i64 = (0..types)
        .map(|t| {
            legend::SWATCH.1 + text_width(&t.to_string(), legend::SCALE) as i64 + legend::SPACE
        })
        .sum();
    let title = text_width(legend::TITLE, legend::SCALE) as i64 + legend::SPACE;
    let direction = legend::SPACE + text_width(legend::DIRECTION, legend::SCALE) as i64;
    (2 * MARGIN as i64 + title + numbers + direction) as u32
}

fn draw_legend(canvas: &mut RgbImage, types: usize) {
    let scale = legend::SCALE;
    let y = MARGIN as i64;
    let middle = y as f64 + text_height(scale) as f64 / 2.0;
    let mut x = MARGIN as i64;
    draw_text(canvas, x, y, legend::TITLE, scale, INK);
    x += text_width(legend::TITLE, scale) as i64 + legend::SPACE;
    for edge_type in 0..types {
        let colour = edge_type_colour(edge_type);
        let swatch_end = x as f64 + legend::SWATCH.0;
        draw_segment(
            canvas,
            (x as f64, middle),
            (swatch_end, middle),
            4.0,
            colour,
        );
        x += legend::SWATCH.1;
        let name = edge_type.to_string();
        draw_text(canvas, x, y, &name, scale, INK);
        x += text_width(&name, scale) as i64 + legend::SPACE;
    }
    draw_text(canvas, x + legend::SPACE, y, legend::DIRECTION, scale, INK);
}

/// `edge-frequency.png`: for each of the `types` edge types, a `slots x slots` heat map of
/// the fraction of images in which the edge (row: receiver, column: sender) has that type,
/// the diagonal (no self edges) left blank, each cell also written as a number, and a
/// colour scale from 0 to 1.
///
/// `frequencies`: `[E, types]` row-major, edges in the order of [`edge_pairs`].
pub fn edge_frequency_picture(
    frequencies: &[f64],
    slots: usize,
    types: usize,
) -> Result<RgbImage, InterpretError> {
    let endpoints = edge_pairs(slots);
    if frequencies.len() != endpoints.len() * types || types == 0 || slots < 2 {
        return Err(InterpretError::Shape {
            what: "edge-type frequencies",
            found: vec![frequencies.len() as i64],
            expected: format!(
                "{} x {types} values, one per edge and type",
                endpoints.len()
            ),
        });
    }

    const CELL: u32 = 44;
    let scale = 2;
    let line = text_height(scale) + 8;
    let caption = 2 * line + MARGIN;
    let row_labels = text_width("7", scale) + 10;
    let grid = slots as u32 * CELL;
    let panel_width = row_labels + grid;
    let title = line;
    let column_labels = line;
    let bar_left = MARGIN + types as u32 * (panel_width + 3 * MARGIN);
    let bar_width = 22;
    let width = bar_left + bar_width + 10 + text_width("0.5", scale) + MARGIN;
    let width = width.max(MARGIN + text_width(CAPTION_LINES[0], scale) + MARGIN);
    let grid_top = MARGIN + caption + title + column_labels;
    let height = grid_top + grid + MARGIN;
    let mut canvas = RgbImage::from_pixel(width, height, PAPER);

    for (line_index, text) in CAPTION_LINES.iter().enumerate() {
        let y = MARGIN + line_index as u32 * line;
        draw_text(&mut canvas, MARGIN as i64, y as i64, text, scale, INK);
    }
    for edge_type in 0..types {
        let left = MARGIN + edge_type as u32 * (panel_width + 3 * MARGIN);
        let grid_left = left + row_labels;
        let title_y = MARGIN + caption;
        let name = format!("TYPE {edge_type}");
        draw_text(
            &mut canvas,
            grid_left as i64,
            title_y as i64,
            &name,
            scale,
            INK,
        );
        for slot in 0..slots {
            let centre = (grid_left + slot as u32 * CELL + CELL / 2) as i64;
            let label_y = (grid_top - column_labels / 2) as i64;
            draw_text_centred(&mut canvas, centre, label_y, &slot.to_string(), scale, INK);
            let row_centre = (grid_top + slot as u32 * CELL + CELL / 2) as i64;
            let label_x = (left + row_labels / 2) as i64 - 4;
            draw_text_centred(
                &mut canvas,
                label_x,
                row_centre,
                &slot.to_string(),
                scale,
                INK,
            );
        }
        for receiver in 0..slots {
            let x = grid_left as i64 + (receiver as u32 * CELL) as i64;
            let y = grid_top as i64 + (receiver as u32 * CELL) as i64;
            fill_rect(&mut canvas, x, y, CELL, CELL, FAINT);
        }
        for (edge, &(receiver, sender)) in endpoints.iter().enumerate() {
            let value = frequencies[edge * types + edge_type];
            let colour = sequential_colour(value);
            let x = grid_left + sender as u32 * CELL;
            let y = grid_top + receiver as u32 * CELL;
            fill_rect(&mut canvas, x as i64, y as i64, CELL, CELL, colour);
            let text = format!("{value:.2}");
            let (cx, cy) = ((x + CELL / 2) as i64, (y + CELL / 2) as i64);
            draw_text_centred(&mut canvas, cx, cy, &text, 1, text_colour_on(colour));
        }
        outline_rect(
            &mut canvas,
            grid_left as i64,
            grid_top as i64,
            grid,
            grid,
            1,
            INK,
        );
    }

    for offset in 0..grid {
        let value = 1.0 - offset as f64 / (grid - 1) as f64;
        let y = (grid_top + offset) as i64;
        fill_rect(
            &mut canvas,
            bar_left as i64,
            y,
            bar_width,
            1,
            sequential_colour(value),
        );
    }
    outline_rect(
        &mut canvas,
        bar_left as i64,
        grid_top as i64,
        bar_width,
        grid,
        1,
        INK,
    );
    for (text, fraction) in [("1", 0.0), ("0.5", 0.5), ("0", 1.0)] {
        let y = grid_top as f64 + fraction * (grid - 1) as f64 - text_height(scale) as f64 / 2.0;
        let y = (y.round() as i64).clamp(0, (height - text_height(scale)) as i64);
        draw_text(
            &mut canvas,
            (bar_left + bar_width + 8) as i64,
            y,
            text,
            scale,
            INK,
        );
    }
    Ok(canvas)
}

/// The two lines above the heat maps.
const CAPTION_LINES: [&str; 2] = [
    "FRACTION OF IMAGES IN WHICH AN EDGE HAS EACH TYPE",
    "ROW: RECEIVER SLOT, COLUMN: SENDER SLOT",
];

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn images(count: usize) -> Vec<u8> {
        (0..count * IMAGE_LEN)
            .map(|i| (i * 7 % 256) as u8)
            .collect()
    }

    #[test]
    fn masks_picture_has_one_row_per_image_and_one_column_per_slot() {
        let (count, slots) = (3, 8);
        let mut masks = vec![0.5f32; count * slots * SIDE * SIDE];
        // Image 1, slot 2: white everywhere.
        masks[(slots + 2) * SIDE * SIDE..(slots + 3) * SIDE * SIDE].fill(1.0);
        let picture = masks_picture(&images(count), &masks, slots, &[]).unwrap();

        let cell = 128;
        let header = text_height(3) + 2 * MARGIN;
        let first_mask = MARGIN + cell + 4 * GAP;
        assert_eq!(
            picture.width(),
            first_mask + 8 * (cell + GAP) - GAP + MARGIN
        );
        assert_eq!(picture.height(), header + 3 * (cell + GAP) - GAP + MARGIN);

        let centre_of = |image: u32, slot: u32| {
            let x = first_mask + slot * (cell + GAP) + cell / 2;
            picture
                .get_pixel(x, header + image * (cell + GAP) + cell / 2)
                .0
        };
        assert_eq!(centre_of(1, 2), [255, 255, 255]);
        assert_eq!(centre_of(0, 2), [128, 128, 128]);
        // Image pixel (0, 0) of image 0 fills the top-left 4 x 4 square of its cell.
        assert_eq!(picture.get_pixel(MARGIN + 3, header + 3).0, [0, 0, 0]);
        assert_eq!(picture.get_pixel(MARGIN + 4, header).0, [7, 7, 7]);
    }

    #[test]
    fn row_labels_widen_the_masks_picture_and_bad_lengths_are_named() {
        let masks = vec![0.0f32; 2 * 8 * SIDE * SIDE];
        let plain = masks_picture(&images(2), &masks, 8, &[]).unwrap();
        let labels = vec!["#12".to_string(), "#9999".to_string()];
        let labelled = masks_picture(&images(2), &masks, 8, &labels).unwrap();
        assert_eq!(
            labelled.width(),
            plain.width() + text_width("#9999", 2) + MARGIN
        );

        let err = masks_picture(&images(2), &masks[1..], 8, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("masks") && err.contains("2 x 8 x 32 x 32"),
            "{err}"
        );
        let err = masks_picture(&images(2)[1..], &masks, 8, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("multiple of 3072"), "{err}");
        let err = masks_picture(&images(2), &masks, 8, &labels[..1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("row labels"), "{err}");
    }

    #[test]
    fn graph_picture_lays_panels_in_rows_of_eight_and_colours_edges_by_type() {
        let (slots, edges) = (8, 56);
        let count = 10;
        let mut types = vec![0i64; count * edges];
        types[..edges].fill(1);
        let picture = graph_picture(&images(count), &types, slots, 2, &[]).unwrap();
        let panel_width = MARGIN + 64 + MARGIN + panel::GRAPH_SIDE + MARGIN;
        let panel_height = panel::GRAPH_SIDE + 2 * MARGIN;
        assert_eq!(
            picture.width(),
            MARGIN + 8 * (panel_width + GAP) - GAP + MARGIN
        );
        let legend = text_height(2) + 2 * MARGIN;
        assert_eq!(
            picture.height(),
            legend + 2 * (panel_height + GAP) - GAP + MARGIN
        );

        // Count pixels of each edge colour in the first two panels.
        let count_colour = |panel: u32, colour: Rgb<u8>| {
            let left = MARGIN + panel * (panel_width + GAP);
            let mut n = 0;
            for y in legend..legend + panel_height {
                for x in left..left + panel_width {
                    n += usize::from(picture.get_pixel(x, y) == &colour);
                }
            }
            n
        };
        let (zero, one) = (edge_type_colour(0), edge_type_colour(1));
        assert!(count_colour(0, one) > 500 && count_colour(0, zero) == 0);
        assert!(count_colour(1, zero) > 500 && count_colour(1, one) == 0);

        let mut bad = types.clone();
        bad[70] = 2;
        let err = graph_picture(&images(count), &bad, slots, 2, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("edge type 2 at position 70") && err.contains("0..2"),
            "{err}"
        );
    }

    #[test]
    fn frequency_picture_puts_each_edge_in_its_cell_and_blanks_the_diagonal() {
        let slots = 8;
        let endpoints = edge_pairs(slots);
        // Type 1 frequency 1 for the edge (receiver 2, sender 5), 0 elsewhere.
        let mut frequencies = vec![0.0; endpoints.len() * 2];
        for (edge, &(receiver, sender)) in endpoints.iter().enumerate() {
            let hot = (receiver, sender) == (2, 5);
            frequencies[edge * 2] = if hot { 0.0 } else { 1.0 };
            frequencies[edge * 2 + 1] = if hot { 1.0 } else { 0.0 };
        }
        let picture = edge_frequency_picture(&frequencies, slots, 2).unwrap();

        let line = text_height(2) + 8;
        let grid_top = MARGIN + 2 * line + MARGIN + line + line;
        let panel_width = text_width("7", 2) + 10 + 8 * 44;
        let grid_left = |edge_type: u32| {
            MARGIN + edge_type * (panel_width + 3 * MARGIN) + text_width("7", 2) + 10
        };
        let cell_corner = |edge_type: u32, receiver: u32, sender: u32| {
            picture
                .get_pixel(
                    grid_left(edge_type) + sender * 44 + 3,
                    grid_top + receiver * 44 + 3,
                )
                .0
        };
        assert_eq!(cell_corner(1, 2, 5), sequential_colour(1.0).0);
        assert_eq!(cell_corner(1, 5, 2), sequential_colour(0.0).0);
        assert_eq!(cell_corner(0, 5, 2), sequential_colour(1.0).0);
        assert_eq!(cell_corner(1, 3, 3), FAINT.0);
        assert_eq!(picture.height(), grid_top + 8 * 44 + MARGIN);

        let err = edge_frequency_picture(&frequencies[2..], slots, 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("56 x 2 values"), "{err}");
    }

    #[test]
    fn denormalize_inverts_the_normalization() {
        let bytes = images(2);
        let (mean, std) = ([0.491f32, 0.482, 0.447], [0.247f32, 0.243, 0.262]);
        let values: Vec<f32> = bytes
            .iter()
            .enumerate()
            .map(|(i, &b)| (b as f32 / 255.0 - mean[i / 1024 % 3]) / std[i / 1024 % 3])
            .collect();
        let tensor = Tensor::from_slice(&values)
            .view([2, 3, 32, 32])
            .to_device(Device::Cpu);
        assert_eq!(denormalize(&tensor, mean, std).unwrap(), bytes);
    }
}
