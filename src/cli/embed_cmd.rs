//! `hssl embed`: the features of a trained encoder on one split, as NumPy files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use hssl::data::{CifarKind, Split};
use hssl::device::DeviceChoice;
use hssl::eval::{embed, write_npy_f32, write_npy_u16, EMBED_BATCH};
use hssl::train::pretrain::set_threads;

use super::probe_cmd::{default_data_dir, load_checkpoint, load_split};

/// Which split to embed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    /// The training images.
    Train,
    /// The test images.
    Test,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Train => Split::Train,
            SplitArg::Test => Split::Test,
        }
    }
}

/// Flags of `hssl embed`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hssl embed --checkpoint runs/xza/checkpoint.ot --split test --out features/xza-test.npy\n  \
    hssl embed --checkpoint runs/xza/checkpoint.ot --dataset cifar100 \\\n      \
    --data data/cifar-100-binary --split train --out c100-train.npy\n\n\
    Writes two NumPy files: the features [n, 64] as float32 to --out, and the labels [n] as\n\
    uint16 beside it, with .npy replaced by .labels.npy (features.npy ->\n\
    features.labels.npy). Features are those of the un-augmented, normalized images with\n\
    BatchNorm in inference mode, in the order of the data set's files.\n\
    In Python: x = numpy.load('features.npy'); y = numpy.load('features.labels.npy').")]
pub struct EmbedArgs {
    /// Checkpoint of a run; the run's config.toml must lie beside it.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: PathBuf,
    /// Data set: cifar10 or cifar100.
    #[arg(long, default_value = "cifar10")]
    pub dataset: CifarKind,
    /// Folder with the data set's binary files [default: data/cifar-10-batches-bin or
    /// data/cifar-100-binary].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Which split to embed.
    #[arg(long, value_enum)]
    pub split: SplitArg,
    /// Features file (.npy); the labels go to the same name ending in .labels.npy.
    #[arg(long, value_name = "FILE.npy")]
    pub out: PathBuf,
    /// Embed only the first N images of the split [default: all].
    #[arg(long, value_name = "N")]
    pub images: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = EMBED_BATCH)]
    pub batch: usize,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// CPU threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The labels file that goes with a features file: `x.npy` -> `x.labels.npy`.
pub fn labels_path(features: &Path) -> PathBuf {
    let name = features
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".npy").unwrap_or(&name);
    features.with_file_name(format!("{stem}.labels.npy"))
}

/// Runs `hssl embed`.
pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    if args.batch == 0 {
        anyhow::bail!("invalid value 0 for --batch: expected at least 1 image");
    }
    set_threads(args.threads);
    let device = hssl::device::resolve(args.device).map_err(anyhow::Error::msg)?;
    let run = load_checkpoint(&args.checkpoint, device)?;
    let data_dir = args
        .data
        .clone()
        .unwrap_or_else(|| default_data_dir(args.dataset));
    let mut dataset = load_split(&data_dir, args.dataset, args.split.into())?;
    if let Some(n) = args.images {
        dataset.truncate(n);
    }

    let features = embed(&run.network.encoder, &dataset, device, args.batch);
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    let labels = labels_path(&args.out);
    write_npy_f32(&args.out, &features)?;
    write_npy_u16(&labels, &dataset.labels)?;

    println!(
        "wrote features {:?} to {} and labels to {} ({:.1} s)",
        features.size(),
        args.out.display(),
        labels.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_lie_beside_the_features() {
        assert_eq!(
            labels_path(Path::new("out/f.npy")),
            Path::new("out/f.labels.npy")
        );
        assert_eq!(labels_path(Path::new("f")), Path::new("f.labels.npy"));
    }
}
