//! The error type of the data layer: every failure names the file (and record) at fault.

use std::io;
use std::path::PathBuf;

/// What can go wrong while reading, downloading or augmenting CIFAR data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// Reading or writing a file or folder failed.
    #[error("I/O error on {path}: {cause}")]
    Io {
        /// The file or folder being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        cause: io::Error,
    },

    /// A file of the data set layout is not there.
    #[error("missing file {path}: expected the {layout}")]
    MissingFile {
        /// The file that was looked for.
        path: PathBuf,
        /// The layout that was expected, with the files it holds.
        layout: String,
    },

    /// A record file whose size is not a whole number of records.
    #[error(
        "{path}: size {size} bytes is not a whole number of {record_size}-byte records \
         (the file is truncated or not in the expected layout)"
    )]
    PartialRecord {
        /// The record file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The size of one record in bytes.
        record_size: usize,
    },

    /// A record whose label is not below the number of classes.
    #[error("{path}: record {index} has {field} label {label}, expected a label below {classes}")]
    LabelOutOfRange {
        /// The record file.
        path: PathBuf,
        /// Index of the record within the file, from 0.
        index: usize,
        /// Which label of the record (`label`, `fine` or `coarse`).
        field: &'static str,
        /// The label found.
        label: u8,
        /// The number of classes, one more than the largest allowed label.
        classes: usize,
    },

    /// A class-name file that does not hold what the layout requires.
    #[error("{path}: expected {expected}, found {found}")]
    BadMeta {
        /// The class-name file.
        path: PathBuf,
        /// What the layout requires.
        expected: String,
        /// What the file holds.
        found: String,
    },

    /// The server answered a download request with an HTTP error status.
    #[error("download of {url} failed: HTTP status {status}")]
    HttpStatus {
        /// The address requested.
        url: String,
        /// The HTTP status code received.
        status: u16,
    },

    /// A download failed before it was complete (connection, timeout, short body).
    #[error("download of {url} failed: {cause}")]
    Download {
        /// The address requested.
        url: String,
        /// What went wrong.
        cause: String,
    },

    /// A downloaded file whose MD5 digest is not the published one.
    #[error(
        "checksum mismatch for {path} (from {url}): expected MD5 {expected}, found {actual}; \
         the download was removed"
    )]
    Checksum {
        /// Where the download was written.
        path: PathBuf,
        /// The address it came from.
        url: String,
        /// The published digest, lowercase hex.
        expected: String,
        /// The digest of the bytes received, lowercase hex.
        actual: String,
    },

    /// An archive that cannot be unpacked, or that lacks the expected folder.
    #[error("bad archive {path}: {cause}")]
    Archive {
        /// The archive file.
        path: PathBuf,
        /// What is wrong with it.
        cause: String,
    },

    /// A data set name that is not one of the supported ones.
    #[error("unknown data set `{name}`: expected one of cifar10, cifar100")]
    UnknownDataset {
        /// The name given.
        name: String,
    },

    /// An augmentation setting outside its allowed range.
    #[error("augmentation setting {field} = {value}: expected {expected}")]
    BadAugmentation {
        /// The setting at fault.
        field: &'static str,
        /// Its value, as written.
        value: String,
        /// The allowed range.
        expected: &'static str,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, cause: io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            cause,
        }
    }
}
