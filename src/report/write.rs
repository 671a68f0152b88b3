//! The whole report in one call: read the runs, write `table.md` and the pictures.

use std::path::{Path, PathBuf};

use crate::report::error::ReportError;
use crate::report::plots::write_plots;
use crate::report::runs::{load_runs, RunSet};
use crate::report::table::render_report;

/// The name of the Markdown file of the report.
pub const TABLE_FILE: &str = "table.md";

/// What [`write_report`] produced.
#[derive(Debug, Clone)]
pub struct ReportOutput {
    /// The runs as read, with the files that were skipped.
    pub runs: RunSet,
    /// The Markdown text written to `table.md`.
    pub markdown: String,
    /// Every file written, `table.md` first, then the pictures.
    pub files: Vec<PathBuf>,
}

/// Reads every run under `runs_dir` and writes `table.md` and the PNG pictures into `out`
/// (created if needed). Bad files inside run folders are skipped with a warning; see
/// [`crate::report::runs`].
pub fn write_report(runs_dir: &Path, out: &Path) -> Result<ReportOutput, ReportError> {
    let runs = load_runs(runs_dir)?;
    std::fs::create_dir_all(out).map_err(|source| ReportError::Io {
        path: out.to_path_buf(),
        source,
    })?;

    let markdown = render_report(&runs);
    let table = out.join(TABLE_FILE);
    std::fs::write(&table, &markdown).map_err(|source| ReportError::Io {
        path: table.clone(),
        source,
    })?;

    let mut files = vec![table];
    files.extend(write_plots(&runs, out)?);
    Ok(ReportOutput {
        runs,
        markdown,
        files,
    })
}
