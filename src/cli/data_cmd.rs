//! `hssl data`: fetching the data sets.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use hssl::data::{download, CifarKind, Source};

/// Data-set commands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download an official CIFAR archive, check its published MD5 and unpack it.
    #[command(after_help = "Example:\n  hssl data download cifar10 --dir data")]
    Download {
        /// Which data set: cifar10 or cifar100.
        dataset: CifarKind,
        /// Folder to unpack into (the data set lands in a subfolder).
        #[arg(long, default_value = "data")]
        dir: PathBuf,
        /// Fetch from this URL instead of the official one (a mirror).
        #[arg(long)]
        url: Option<String>,
    },
}

/// Runs a data command.
pub fn run(cmd: DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Download { dataset, dir, url } => {
            let mut source = Source::official(dataset);
            if let Some(url) = url {
                source.url = url;
            }
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = download(&source, &dir)?;
            println!("{}", path.display());
            Ok(())
        }
    }
}
