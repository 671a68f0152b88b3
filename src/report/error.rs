//! What can go wrong while reading run folders and drawing the report.

use std::path::PathBuf;

/// An error of the report, naming the file and the line or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file or folder could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The runs folder holds no run folder (a folder with a `config.toml`).
    #[error("no run folders under {root}: expected folders holding a config.toml")]
    NoRuns {
        /// The folder searched.
        root: PathBuf,
    },
    /// A `config.toml` is not valid TOML or lacks a required key.
    #[error("{path}: invalid run configuration: {message}")]
    ConfigSyntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and column.
        message: String,
    },
    /// A `config.toml` key holds a value the report does not know.
    #[error("{path}: field `{field}` is {value:?}, expected {expected}")]
    ConfigField {
        /// The file.
        path: PathBuf,
        /// The key at fault.
        field: String,
        /// The value found.
        value: String,
        /// What the report accepts.
        expected: String,
    },
    /// The header of a `metrics.csv` lacks a required column.
    #[error("{path}: line 1 (header) lacks the column `{column}`; found {found:?}")]
    MetricsHeader {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// The header as read.
        found: String,
    },
    /// A row of a `metrics.csv` has a cell that cannot be read.
    #[error("{path}: line {line}, column `{column}`: {value:?} is not {expected}")]
    MetricsCell {
        /// The file.
        path: PathBuf,
        /// Line number, from 1 (the header is line 1).
        line: usize,
        /// Name of the column.
        column: String,
        /// The cell's text.
        value: String,
        /// What the cell should hold.
        expected: String,
    },
    /// A row of a `metrics.csv` has a different number of cells than the header.
    #[error("{path}: line {line} has {found} cells, the header has {expected}")]
    MetricsWidth {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// Cells in the row.
        found: usize,
        /// Cells in the header.
        expected: usize,
    },
    /// A probe result file is not valid JSON or lacks a required field.
    #[error("{path}: invalid probe result: {message}")]
    ProbeSyntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and column.
        message: String,
    },
    /// A probe result field holds a value that is out of range or disagrees with the run.
    #[error("{path}: field `{field}` is {value}, expected {expected}")]
    ProbeField {
        /// The file.
        path: PathBuf,
        /// The field at fault.
        field: String,
        /// The value found.
        value: String,
        /// What the report accepts.
        expected: String,
    },
    /// The embedded font could not be loaded for drawing text.
    #[error("cannot load the embedded font `{family}` for the plots")]
    Font {
        /// The font family name.
        family: String,
    },
    /// A plot could not be drawn or saved.
    #[error("cannot draw {path}: {message}")]
    Plot {
        /// The picture being drawn.
        path: PathBuf,
        /// What the drawing library said.
        message: String,
    },
}
