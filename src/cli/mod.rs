//! Argument parsing and the subcommands of the `hssl` binary.

mod bench_cmd;
mod data_cmd;
mod embed_cmd;
mod interpret_cmd;
pub mod openmp;
mod pretrain_cmd;
mod probe_cmd;
mod report_cmd;
mod reproduce_cmd;

use clap::{Parser, Subcommand};

/// Learns structured representations of images without labels, and measures them.
#[derive(Debug, Parser)]
#[command(
    name = "hssl",
    version,
    about,
    after_help = "Examples:\n  \
        hssl data download cifar10 --dir data\n  \
        hssl pretrain --data data/cifar-10-batches-bin --out runs/xza\n  \
        hssl pretrain --objective xz --backbone resnet8 --max-steps 200 --out runs/xz\n  \
        hssl pretrain --out runs/xza --resume\n  \
        hssl report runs\n\n\
        Set RUST_LOG=debug for more detail."
)]
pub struct Cli {
    /// Log more (debug level).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pretrain an encoder by maximizing the I(X,Z) and/or I(X,A) bound.
    Pretrain(pretrain_cmd::PretrainArgs),
    /// Learn slot masks (and, with --graph, draw relation graphs) of a trained encoder.
    Interpret(interpret_cmd::InterpretArgs),
    /// Time one pretraining step (or the augmentation) for comparison with PyTorch.
    Bench(bench_cmd::BenchArgs),
    /// Every row of the paper's Table 1 for a budget preset, resumable.
    Reproduce(reproduce_cmd::ReproduceArgs),
    /// Linear probe and kNN accuracy of a trained encoder (writes probe-<dataset>.json).
    Probe(probe_cmd::ProbeArgs),
    /// Features of a trained encoder as .npy files (features and .labels.npy).
    Embed(embed_cmd::EmbedArgs),
    /// Fetch data sets.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Tables and pictures from a folder of runs.
    Report(report_cmd::ReportArgs),
}

/// Logs to standard error: `info` by default, `debug` with `--verbose`, or `RUST_LOG`.
pub fn init_logging(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

impl Cli {
    /// Whether the command trains a network (pretraining, its benchmark, the table).
    pub fn trains(&self) -> bool {
        matches!(
            self.command,
            Command::Pretrain(_) | Command::Bench(_) | Command::Reproduce(_)
        )
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Pretrain(args) => pretrain_cmd::run(args),
        Command::Interpret(args) => interpret_cmd::run(args),
        Command::Data(cmd) => data_cmd::run(cmd),
        Command::Probe(args) => probe_cmd::run(args),
        Command::Embed(args) => embed_cmd::run(args),
        Command::Report(args) => report_cmd::run(args),
        Command::Bench(args) => bench_cmd::run(args),
        Command::Reproduce(args) => reproduce_cmd::run(args),
    }
}
