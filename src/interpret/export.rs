//! Files of an interpretation: raw masks as NumPy `.npy`, the objective per step as CSV,
//! pictures as PNG; each written to a temporary file beside its target, then renamed, so
//! that a file on disk is always whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use image::RgbImage;

use super::error::InterpretError;

/// The header of a version 1.0 `.npy` file holding little-endian f32 values of `shape`
/// in C order (see [`crate::files::npy_header`]).
pub fn npy_header(shape: &[usize]) -> Vec<u8> {
    crate::files::npy_header("<f4", shape)
}

/// Writes `values` of `shape` (C order) to `path` as a NumPy `.npy` file of `<f4`.
pub fn write_npy(path: &Path, shape: &[usize], values: &[f32]) -> Result<(), InterpretError> {
    let expected: usize = shape.iter().product();
    if values.len() != expected {
        return Err(InterpretError::Shape {
            what: "values for the .npy file",
            found: vec![values.len() as i64],
            expected: format!("{expected} values for shape {shape:?}"),
        });
    }
    write_atomically(path, |out| {
        out.write_all(&npy_header(shape))?;
        for value in values {
            out.write_all(&value.to_le_bytes())?;
        }
        Ok(())
    })
}

/// Writes the objective per step as CSV: a `step,objective` header, then one row per
/// step counting from 1.
pub fn write_objective_csv(path: &Path, objective: &[f64]) -> Result<(), InterpretError> {
    write_atomically(path, |out| {
        writeln!(out, "step,objective")?;
        for (step, value) in objective.iter().enumerate() {
            writeln!(out, "{},{value}", step + 1)?;
        }
        Ok(())
    })
}

/// Writes the edge-type frequencies as CSV: `receiver,sender,edge_type,frequency`, one row
/// per edge and type; `frequencies` `[E, types]` row-major, edges as in `pairs`.
pub fn write_frequency_csv(
    path: &Path,
    pairs: &[(usize, usize)],
    types: usize,
    frequencies: &[f64],
) -> Result<(), InterpretError> {
    if frequencies.len() != pairs.len() * types {
        return Err(InterpretError::Shape {
            what: "edge-type frequencies",
            found: vec![frequencies.len() as i64],
            expected: format!("{} x {types} values", pairs.len()),
        });
    }
    write_atomically(path, |out| {
        writeln!(out, "receiver,sender,edge_type,frequency")?;
        for (edge, (receiver, sender)) in pairs.iter().enumerate() {
            for edge_type in 0..types {
                let value = frequencies[edge * types + edge_type];
                writeln!(out, "{receiver},{sender},{edge_type},{value}")?;
            }
        }
        Ok(())
    })
}

/// Saves a picture as PNG.
pub fn save_png(path: &Path, picture: &RgbImage) -> Result<(), InterpretError> {
    let tmp = crate::files::temporary_path(path);
    picture
        .save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            InterpretError::Picture {
                path: path.to_path_buf(),
                source,
            }
        })?;
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        InterpretError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// [`crate::files::write_atomically`], its error naming `path`.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), InterpretError> {
    crate::files::write_atomically(path, fill).map_err(|source| InterpretError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_version_one_and_aligned_to_64_bytes() {
        let header = npy_header(&[64, 8, 32, 32]);
        assert_eq!(&header[..6], b"\x93NUMPY");
        assert_eq!(header[6..8], [1, 0]);
        let length = u16::from_le_bytes([header[8], header[9]]) as usize;
        assert_eq!(header.len(), 10 + length);
        assert_eq!(header.len() % 64, 0);
        let text = std::str::from_utf8(&header[10..]).unwrap();
        assert!(text
            .starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (64, 8, 32, 32), }"));
        assert!(text.ends_with(" \n"));
        let after_dictionary = &text[text.find('}').unwrap() + 1..text.len() - 1];
        assert!(
            after_dictionary.chars().all(|c| c == ' '),
            "{after_dictionary:?}"
        );
        let one = String::from_utf8_lossy(&npy_header(&[5])[10..]).into_owned();
        assert!(one.contains("'shape': (5,)"), "{one}");
    }

    #[test]
    fn npy_file_holds_the_header_then_little_endian_floats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("masks.npy");
        let values = [0.0f32, 0.25, 1.0, -2.5, 3.0, 7.125];
        write_npy(&path, &[2, 3], &values).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let header = npy_header(&[2, 3]);
        assert_eq!(&bytes[..header.len()], header.as_slice());
        let body: Vec<f32> = bytes[header.len()..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(body, values);
        assert!(!dir.path().join("masks.npy.tmp").exists());

        let err = write_npy(&path, &[4, 3], &values).unwrap_err().to_string();
        assert!(err.contains("12 values for shape [4, 3]"), "{err}");
    }

    #[test]
    fn csv_files_have_a_header_and_one_row_per_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mask-metrics.csv");
        write_objective_csv(&path, &[2.5, 1.25]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "step,objective\n1,2.5\n2,1.25\n"
        );

        let path = dir.path().join("edge-frequency.csv");
        write_frequency_csv(&path, &[(0, 1), (1, 0)], 2, &[0.75, 0.25, 0.5, 0.5]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "receiver,sender,edge_type,frequency");
        assert_eq!(lines[2], "0,1,1,0.25");
        assert_eq!(lines[3], "1,0,0,0.5");
    }

    #[test]
    fn a_missing_folder_is_named_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("mask-metrics.csv");
        let err = write_objective_csv(&path, &[1.0]).unwrap_err().to_string();
        assert!(err.contains("absent/mask-metrics.csv"), "{err}");
        let picture = RgbImage::new(3, 2);
        let err = save_png(&path.with_extension("png"), &picture)
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent/mask-metrics.png"), "{err}");

        let path = dir.path().join("tiny.png");
        save_png(&path, &picture).unwrap();
        let back = image::open(&path).unwrap();
        assert_eq!((back.width(), back.height()), (3, 2));
    }
}
