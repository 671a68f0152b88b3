//! Writing files so that a file on disk is always whole: into a temporary file beside the
//! target, flushed to disk, then renamed over it; and the header of NumPy `.npy` files.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// The temporary file beside `path` that [`write_atomically`] fills: `<name>.tmp`.
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Runs `fill` on a buffered temporary file beside `path`, flushes it to disk, then renames
/// it to `path`. On failure (a full disk, say) the temporary file is removed and whatever
/// was at `path` before is left untouched.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let tmp = temporary_path(path);
    let result = (|| {
        let mut out = BufWriter::new(File::create(&tmp)?);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The header of a version 1.0 `.npy` file of C-ordered values of `shape`, whose
/// element type NumPy spells `descr` (`<f4`, `<i8`, `<u2`): the magic `\x93NUMPY`, the
/// version bytes `1 0`, the header length as a little-endian `u16`, then the header
/// dictionary padded with spaces and a newline to a multiple of 64 bytes in all.
pub fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    const PREAMBLE: usize = 10;
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = PREAMBLE + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');

    let mut out = Vec::with_capacity(PREAMBLE + dict.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn npy_header_is_version_one_and_aligned() {
        for shape in [vec![5], vec![3, 64], vec![2, 8, 32, 32]] {
            let h = npy_header("<f4", &shape);
            assert_eq!(&h[..8], b"\x93NUMPY\x01\x00");
            assert_eq!(h.len() % 64, 0);
            assert_eq!(u16::from_le_bytes([h[8], h[9]]) as usize, h.len() - 10);
            assert_eq!(*h.last().unwrap(), b'\n');
        }
        let text = String::from_utf8_lossy(&npy_header("<u2", &[5])).into_owned();
        assert!(
            text.contains("'descr': '<u2'") && text.contains("'shape': (5,)"),
            "{text}"
        );
        let text = String::from_utf8_lossy(&npy_header("<f4", &[3, 64])).into_owned();
        assert!(text.contains("'shape': (3, 64)"), "{text}");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, b"old").unwrap();
        let err = write_atomically(&path, |out| {
            out.write_all(b"new")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(!temporary_path(&path).exists());
        write_atomically(&path, |out| out.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
