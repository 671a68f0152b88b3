//! `hssl probe`: the linear probe and kNN accuracy of a trained encoder on CIFAR-10 or
//! CIFAR-100, saved as `probe-<dataset>.json` beside the checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use hssl::data::{self, CifarKind, Dataset, Split};
use hssl::device::DeviceChoice;
use hssl::eval::{
    embed, knn_accuracy, label_tensor, linear_probe, ProbeResult, ProbeSettings, DEFAULT_K,
    EMBED_BATCH,
};
use hssl::train::checkpoint::{load_run, write_atomically, LoadedRun};
use hssl::train::pretrain::set_threads;
use serde::Serialize;
use tracing::info;

/// Flags of `hssl probe`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hssl probe --checkpoint runs/xza/checkpoint.ot\n  \
    hssl probe --checkpoint runs/xza/checkpoint.ot --dataset cifar100 --data data/cifar-100-binary\n  \
    hssl probe --checkpoint runs/smoke/checkpoint.ot --epochs 2 --train-images 2000\n\n\
    The encoder is frozen (BatchNorm in inference mode); its features of the un-augmented\n\
    images are computed once. A linear classifier is trained on the training features and\n\
    scored on the test features; a k-nearest-neighbour vote (cosine similarity, majority,\n\
    ties to the smaller label) is scored too. Accuracies are printed in % and written as\n\
    fractions to probe-<dataset>.json beside the checkpoint.")]
pub struct ProbeArgs {
    /// Checkpoint of a run; the run's config.toml must lie beside it.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: PathBuf,
    /// Data set to probe on: cifar10, or cifar100 for transfer.
    #[arg(long, default_value = "cifar10")]
    pub dataset: CifarKind,
    /// Folder with the data set's binary files [default: data/cifar-10-batches-bin or
    /// data/cifar-100-binary].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Epochs of the linear classifier.
    #[arg(long, default_value_t = ProbeSettings::default().epochs)]
    pub epochs: u64,
    /// Features per step of the linear classifier.
    #[arg(long, default_value_t = ProbeSettings::default().batch)]
    pub batch: usize,
    /// Adam learning rate of the linear classifier.
    #[arg(long, default_value_t = ProbeSettings::default().learning_rate)]
    pub lr: f64,
    /// Seed of the classifier's initial weights and batch order.
    #[arg(long, default_value_t = ProbeSettings::default().seed)]
    pub seed: u64,
    /// Neighbours of the kNN classifier.
    #[arg(long, default_value_t = DEFAULT_K)]
    pub knn_k: usize,
    /// cpu, cuda or auto (used to compute the features).
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Use only the first N training images [default: all].
    #[arg(long, value_name = "N")]
    pub train_images: Option<usize>,
    /// CPU threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The record written to `probe-<dataset>.json`; the report reads these field names.
#[derive(Debug, Serialize)]
struct ProbeRecord<'a> {
    dataset: String,
    test_accuracy: f64,
    train_accuracy: f64,
    knn_accuracy: f64,
    knn_k: usize,
    settings: &'a ProbeSettings,
    checkpoint: String,
    data: String,
    backbone: String,
    objective: String,
    pretrain_dataset: String,
    origin: String,
    seed: u64,
    steps: u64,
    train_images: usize,
    test_images: usize,
    classes: usize,
    final_loss: f64,
    probe_steps: u64,
    device: String,
    seconds: f64,
}

/// The default data folder of a data set.
pub fn default_data_dir(kind: CifarKind) -> PathBuf {
    Path::new("data").join(kind.folder_name())
}

/// Loads the run of `checkpoint` on `device`, first checking that the file is there.
pub fn load_checkpoint(checkpoint: &Path, device: tch::Device) -> anyhow::Result<LoadedRun> {
    if !checkpoint.is_file() {
        bail!(
            "checkpoint {} does not exist: expected the checkpoint.ot of a run written by \
             hssl pretrain",
            checkpoint.display()
        );
    }
    Ok(load_run(checkpoint, device)?)
}

/// Loads one split, naming the folder and data set when it fails.
pub fn load_split(dir: &Path, kind: CifarKind, split: Split) -> anyhow::Result<Dataset> {
    data::load(dir, kind, split)
        .with_context(|| format!("cannot read {kind} from {}", dir.display()))
}

/// Runs `hssl probe`.
pub fn run(args: ProbeArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let settings = ProbeSettings {
        learning_rate: args.lr,
        batch: args.batch,
        epochs: args.epochs,
        seed: args.seed,
    };
    settings.validate()?;
    if args.knn_k == 0 {
        bail!("invalid value 0 for --knn-k: expected at least 1 neighbour");
    }
    if args.train_images == Some(0) {
        bail!("invalid value 0 for --train-images: expected at least 1 image");
    }
    set_threads(args.threads);
    let device = hssl::device::resolve(args.device).map_err(anyhow::Error::msg)?;
    let run = load_checkpoint(&args.checkpoint, device)?;

    let data_dir = args
        .data
        .clone()
        .unwrap_or_else(|| default_data_dir(args.dataset));
    let mut train = load_split(&data_dir, args.dataset, Split::Train)?;
    if let Some(n) = args.train_images {
        train.truncate(n);
    }
    let test = load_split(&data_dir, args.dataset, Split::Test)?;
    info!(
        train = train.len(),
        test = test.len(),
        device = ?device,
        "computing features of the frozen encoder"
    );
    let encoder = &run.network.encoder;
    let (train_x, test_x) = (
        embed(encoder, &train, device, EMBED_BATCH),
        embed(encoder, &test, device, EMBED_BATCH),
    );
    let (train_y, test_y) = (label_tensor(&train), label_tensor(&test));
    let classes = args.dataset.num_classes();

    info!(epochs = settings.epochs, "training the linear classifier");
    let probe = linear_probe(&train_x, &train_y, &test_x, &test_y, classes, &settings)?;
    let knn = knn_accuracy(&train_x, &train_y, &test_x, &test_y, classes, args.knn_k)?;

    let record = ProbeRecord {
        dataset: args.dataset.to_string(),
        test_accuracy: probe.test_accuracy,
        train_accuracy: probe.train_accuracy,
        knn_accuracy: knn,
        knn_k: args.knn_k,
        settings: &settings,
        checkpoint: args.checkpoint.display().to_string(),
        data: data_dir.display().to_string(),
        backbone: run.config.backbone.to_string(),
        objective: run.config.objective.to_string(),
        pretrain_dataset: run.config.dataset.to_string(),
        origin: run.meta.origin.clone(),
        seed: run.config.seed,
        steps: run.meta.step,
        train_images: train.len(),
        test_images: test.len(),
        classes,
        final_loss: probe.final_loss,
        probe_steps: probe.steps,
        device: format!("{device:?}").to_lowercase(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let out = args
        .checkpoint
        .with_file_name(format!("probe-{}.json", args.dataset));
    let json = serde_json::to_string_pretty(&record)?;
    write_atomically(&out, &format!("{json}\n"))?;
    print_summary(&record, &probe, &out);
    Ok(())
}

fn print_summary(r: &ProbeRecord<'_>, probe: &ProbeResult, out: &Path) {
    let s = r.settings;
    let knn_label = format!("kNN (cosine, k={})", r.knn_k);
    let rows = [
        ("checkpoint", format!("{} (step {})", r.checkpoint, r.steps)),
        (
            "encoder",
            format!("{} / {}, seed {}", r.backbone, r.objective, r.seed),
        ),
        (
            "probed on",
            format!("{} ({} classes) from {}", r.dataset, r.classes, r.data),
        ),
        (
            "images",
            format!("{} train, {} test", r.train_images, r.test_images),
        ),
        (
            "linear probe",
            format!(
                "Adam lr {}, batch {}, {} epochs, seed {}",
                s.learning_rate, s.batch, s.epochs, s.seed
            ),
        ),
        (
            "train accuracy",
            format!("{:.2} %", 100.0 * r.train_accuracy),
        ),
        (
            "test accuracy (top-1)",
            format!("{:.2} %", 100.0 * r.test_accuracy),
        ),
        (
            knn_label.as_str(),
            format!("{:.2} %", 100.0 * r.knn_accuracy),
        ),
        ("final loss", format!("{:.4}", probe.final_loss)),
        ("time", format!("{:.1} s on {}", r.seconds, r.device)),
        ("written", out.display().to_string()),
    ];
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("\nlinear probe");
    for (k, v) in rows {
        println!("  {k:<width$}  {v}");
    }
}
