//! `hssl report`: tables and pictures from a folder of finished runs.

use std::path::PathBuf;

use clap::Args;
use hssl::report::write_report;

/// Arguments of `hssl report`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hssl report runs\n  \
    hssl report runs --out results/2024-06\n\n\
    Every folder under RUNS_DIR that holds a config.toml is a run; its metrics.csv and\n\
    probe-cifar10.json / probe-cifar100.json are read when present. Written into the output\n\
    folder: table.md (linear-probe and kNN accuracy in the layout of the paper's Table 1,\n\
    the training budget, the data folders; also printed here), surrogate-<backbone>.png\n\
    (surrogate accuracy against steps, one curve per objective) and <run>-loss.png (loss\n\
    and bounds of each run). Bad files are skipped with a warning and listed in table.md.")]
pub struct ReportArgs {
    /// Folder holding the run folders (searched at any depth).
    pub runs_dir: PathBuf,
    /// Output folder [default: RUNS_DIR/report].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `hssl report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.runs_dir.join("report"));
    let report = write_report(&args.runs_dir, &out)?;
    println!("{}", report.markdown);
    println!("wrote {} file(s):", report.files.len());
    for file in &report.files {
        println!("  {}", file.display());
    }
    if !report.runs.skipped.is_empty() {
        println!(
            "skipped {} bad file(s); see the notes in table.md",
            report.runs.skipped.len()
        );
    }
    Ok(())
}
