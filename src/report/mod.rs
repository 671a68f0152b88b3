//! Tables and pictures from the files that runs wrote (`config.toml`, `metrics.csv`,
//! `probe-<dataset>.json`): the paper's Table 1 of linear-probe accuracy, its Figure 3 of
//! surrogate accuracy, and per-run loss curves. Reads files only; needs no model.

pub mod error;
pub mod plots;
pub mod runs;
pub mod table;
pub mod write;

pub use error::ReportError;
pub use plots::{
    draw_loss, draw_surrogate, moving_average, surrogate_curves, write_plots, PLOT_SIZE,
    SMOOTHING_WINDOW,
};
pub use runs::{
    find_run_dirs, load_runs, read_config, read_metrics, read_probe, Backbone, Method, MetricsRow,
    ProbeResult, Run, RunConfig, RunSet, SkippedFile,
};
pub use table::{accuracy_table, budget_rows, render_report, AccuracyTable, CellStats, Metric};
pub use write::{write_report, ReportOutput, TABLE_FILE};
