//! Features and labels as NumPy `.npy` files (format version 1.0), for analysis elsewhere.
//!
//! A file is the magic `\x93NUMPY`, the version bytes `1 0`, the header length as a
//! little-endian `u16`, a header holding a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (n, d), }` padded with spaces and
//! ended by a newline so that the data starts at a multiple of 64 bytes, then the values
//! in C order, little-endian. Files are written to a temporary name and renamed, so a file
//! on disk is always whole.

use std::io::Write;
use std::path::Path;

use crate::files::npy_header;

use tch::{Device, Kind, Tensor};

use super::error::EvalError;

/// Writes `values` (any shape, usually features `[n, d]`) as 32-bit floats (`<f4`).
pub fn write_npy_f32(path: &Path, values: &Tensor) -> Result<(), EvalError> {
    let values = values
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .contiguous();
    let flat: Vec<f32> = Vec::try_from(values.flatten(0, -1))?;
    let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<f4", &values.size(), &bytes)
}

/// Writes `values` (any shape, usually labels `[n]`) as 64-bit integers (`<i8`).
pub fn write_npy_i64(path: &Path, values: &Tensor) -> Result<(), EvalError> {
    let values = values
        .detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Int64)
        .contiguous();
    let flat: Vec<i64> = Vec::try_from(values.flatten(0, -1))?;
    let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<i8", &values.size(), &bytes)
}

/// Writes labels `[n]` as 16-bit unsigned integers (`<u2`).
pub fn write_npy_u16(path: &Path, values: &[u16]) -> Result<(), EvalError> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    write_npy(path, "<u2", &[values.len() as i64], &bytes)
}

fn write_npy(path: &Path, descr: &str, shape: &[i64], data: &[u8]) -> Result<(), EvalError> {
    let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    crate::files::write_atomically(path, |out| {
        out.write_all(&npy_header(descr, &shape))?;
        out.write_all(data)
    })
    .map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a file into (header dict text, data bytes), checking the fixed fields.
    fn parse(bytes: &[u8]) -> (String, Vec<u8>) {
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + len) % 64, 0, "data must start on a 64-byte boundary");
        let dict = String::from_utf8(bytes[10..10 + len].to_vec()).unwrap();
        assert!(dict.ends_with('\n'));
        (dict.trim_end().to_string(), bytes[10 + len..].to_vec())
    }

    #[test]
    fn features_round_trip_through_the_header_and_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("features.npy");
        let x = Tensor::from_slice(&[1.5f32, -2.0, 0.25, 3.0, 4.0, -0.5]).view([3, 2]);
        write_npy_f32(&path, &x).unwrap();
        assert!(!dir.path().join("features.npy.tmp").exists());

        let (dict, data) = parse(&std::fs::read(&path).unwrap());
        assert_eq!(
            dict,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"
        );
        assert_eq!(data.len(), 6 * 4);
        let values: Vec<f32> = data
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(values, [1.5, -2.0, 0.25, 3.0, 4.0, -0.5]);
    }

    #[test]
    fn labels_are_written_as_vectors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.npy");
        write_npy_u16(&path, &[3, 0, 513]).unwrap();
        let (dict, data) = parse(&std::fs::read(&path).unwrap());
        assert_eq!(
            dict,
            "{'descr': '<u2', 'fortran_order': False, 'shape': (3,), }"
        );
        assert_eq!(data, [3, 0, 0, 0, 1, 2]);

        write_npy_i64(&path, &Tensor::from_slice(&[7i64, -1])).unwrap();
        let (dict, data) = parse(&std::fs::read(&path).unwrap());
        assert!(dict.contains("'<i8'") && dict.contains("(2,)"), "{dict}");
        assert_eq!(data.len(), 16);
        assert_eq!(i64::from_le_bytes(data[8..16].try_into().unwrap()), -1);
    }

    #[test]
    fn numpy_reads_the_file_when_it_is_installed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npy");
        write_npy_f32(
            &path,
            &Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]).view([2, 2]),
        )
        .unwrap();
        let script = format!(
            "import numpy as np; a = np.load({:?}); assert a.shape == (2, 2) and a[1, 0] == 3.0",
            path.display().to_string()
        );
        let Ok(out) = std::process::Command::new("python3")
            .args(["-c", "import numpy"])
            .output()
        else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let out = std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn an_unwritable_path_is_named() {
        let err = write_npy_u16(Path::new("/nonexistent-folder/x.npy"), &[1]).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-folder/x.npy"),
            "{err}"
        );
    }
}
