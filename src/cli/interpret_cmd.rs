//! `hssl interpret`: slot masks (and, with `--graph`, relation graphs) of a trained
//! encoder on test images, written as pictures and raw numbers.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use hssl::data::{self, CifarKind, Dataset, Split};
use hssl::device::DeviceChoice;
use hssl::interpret::{self, MaskResult, MaskSettings};
use hssl::model::SLOTS;
use hssl::train::checkpoint::load_run;
use hssl::train::pretrain::set_threads;
use tch::{Device, Tensor};

/// Files written into the output folder.
mod files {
    pub const MASKS_PICTURE: &str = "masks.png";
    pub const MASKS: &str = "masks.npy";
    pub const MASK_METRICS: &str = "mask-metrics.csv";
    pub const GRAPH_PICTURE: &str = "graph.png";
    pub const FREQUENCY_PICTURE: &str = "edge-frequency.png";
    pub const FREQUENCIES: &str = "edge-frequency.csv";
}

/// Test images per forward pass when counting edge types over the whole split.
const FREQUENCY_BATCH: usize = 500;

/// Flags of `hssl interpret`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hssl interpret --checkpoint runs/xza/checkpoint.ot --out runs/xza/interpret\n  \
    hssl interpret --checkpoint runs/xza/checkpoint.ot --images 16 --steps 100 --graph\n  \
    hssl interpret --checkpoint runs/xza/checkpoint.ot --indices 3,17,256 --out masks\n  \
    hssl interpret --checkpoint runs/xza/checkpoint.ot --steps 20000 --device cuda\n\n\
    The output folder receives masks.png (one row per image: the image, then one mask per\n\
    slot, white = kept), masks.npy (the masks, [images, 8, 32, 32] float32),\n\
    mask-metrics.csv (the objective per step) and, with --graph, graph.png (the hard edge\n\
    types of each image), edge-frequency.png and edge-frequency.csv (how often each edge\n\
    takes each type over the test split). The paper optimizes the masks for 20,000 steps;\n\
    the default suits a CPU.")]
pub struct InterpretArgs {
    /// Checkpoint file inside a run folder (its config.toml says which network it holds).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Folder with the data set's binary files [default: the run's data folder].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Data set: cifar10 or cifar100 [default: the run's data set].
    #[arg(long)]
    pub dataset: Option<CifarKind>,
    /// Number of test images, drawn with --seed (ignored with --indices).
    #[arg(long, default_value_t = 64)]
    pub images: usize,
    /// Test images to interpret, by index (comma-separated), instead of a random draw.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub indices: Option<Vec<usize>>,
    /// Adam steps on the mask logits [default: 1000; the paper: 20,000].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Adam learning rate of the mask logits [default: 0.05].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Training images whose features sample the marginal of the slots.
    #[arg(long, default_value_t = 2048)]
    pub marginal: usize,
    /// Seed of the choice of images and of the marginal samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder [default: `interpret` beside the checkpoint].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also draw the relation graphs and the edge-type frequencies.
    #[arg(long)]
    pub graph: bool,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// CPU threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs `hssl interpret`.
pub fn run(args: InterpretArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    set_threads(args.threads);
    let device = hssl::device::resolve(args.device).map_err(anyhow::Error::msg)?;
    let defaults = MaskSettings::default();
    let settings = MaskSettings {
        steps: args.steps.unwrap_or(defaults.steps),
        learning_rate: args.lr.unwrap_or(defaults.learning_rate),
        seed: args.seed,
        ..defaults
    };
    settings.validate()?;

    let run = load_run(&args.checkpoint, device)?;
    let kind = args.dataset.unwrap_or(run.config.dataset);
    let data_dir = args.data.clone().unwrap_or_else(|| run.config.data.clone());
    let out = args.out.clone().unwrap_or_else(|| {
        args.checkpoint
            .parent()
            .unwrap_or(Path::new("."))
            .join("interpret")
    });
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    tracing::info!(
        "checkpoint {} (step {}, {} / {}) on {device:?}",
        args.checkpoint.display(),
        run.meta.step,
        run.config.backbone,
        run.config.objective
    );

    let test = data::load(&data_dir, kind, Split::Test)?;
    let chosen = Chosen::new(&test, &args, device)?;
    let indices = &chosen.indices;
    let marginal = marginal_images(&data_dir, kind, args.marginal, args.seed)?;
    tracing::info!(
        "{} test images x {SLOTS} slots, {} steps, marginal of {} training images",
        indices.len(),
        settings.steps,
        marginal.size()[0]
    );

    let encoder = interpret::frozen_encoder(&run.network.encoder);
    let result = optimize_with_progress(&encoder, &chosen.images, &marginal, &settings, device)?;
    let mut written = write_masks(&out, &result, &chosen)?;
    for c in &result.collapsed {
        tracing::warn!(
            "mask of test image {} slot {} collapsed to {} (mean {:.4})",
            indices[c.image],
            c.slot,
            c.kind,
            c.mean
        );
    }

    if args.graph {
        let trained = run
            .config
            .objective
            .objective()
            .is_some_and(|o| o.uses_xa());
        if !trained {
            tracing::warn!(
                "objective `{}` does not train the relation encoder: the graphs show an \
                 untrained one",
                run.config.objective
            );
        }
        let types = run.config.edge_types as usize;
        let logits = interpret::edge_logits(&run.network.encoder, &run.network.relation_encoder);
        written.extend(write_graphs(&out, &logits, &chosen, &test, types, device)?);
    }

    print_summary(
        &out,
        indices,
        &settings,
        &result,
        &written,
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// The test images to interpret.
struct Chosen {
    /// Their indices in the test split.
    indices: Vec<usize>,
    /// Normalized, `[n, 3, 32, 32]` on the device.
    images: Tensor,
    /// As stored, `[n, 3, 32, 32]` bytes, for the pictures.
    bytes: Vec<u8>,
    /// Their captions in the pictures: `#index`.
    labels: Vec<String>,
}

impl Chosen {
    /// The images named by `--indices`, or `--images` of them drawn with `--seed`.
    fn new(test: &Dataset, args: &InterpretArgs, device: Device) -> anyhow::Result<Self> {
        let indices = match &args.indices {
            Some(indices) => {
                interpret::check_indices(indices, test.len(), "test")?;
                indices.clone()
            }
            None => interpret::sample_indices(test.len(), args.images, args.seed, "test")?,
        };
        Ok(Self {
            images: image_tensor(test, &indices).to_device(device),
            bytes: indices
                .iter()
                .flat_map(|&i| test.image(i).to_vec())
                .collect(),
            labels: indices.iter().map(|i| format!("#{i}")).collect(),
            indices,
        })
    }
}

/// The normalized images at `indices`: `[n, 3, 32, 32]` on the CPU.
fn image_tensor(dataset: &Dataset, indices: &[usize]) -> Tensor {
    let values = data::normalize(dataset, indices);
    Tensor::from_slice(&values).view([indices.len() as i64, 3, 32, 32])
}

/// Up to `count` training images, drawn with a seed of their own, normalized.
fn marginal_images(dir: &Path, kind: CifarKind, count: usize, seed: u64) -> anyhow::Result<Tensor> {
    let train = data::load(dir, kind, Split::Train)?;
    let count = count.min(train.len());
    let indices = interpret::sample_indices(train.len(), count, seed.wrapping_add(1), "train")?;
    Ok(image_tensor(&train, &indices))
}

/// Runs the mask optimization with a progress bar on a terminal, log lines otherwise.
fn optimize_with_progress(
    encoder: &dyn Fn(&Tensor) -> Tensor,
    images: &Tensor,
    marginal: &Tensor,
    settings: &MaskSettings,
    device: Device,
) -> anyhow::Result<MaskResult> {
    let total = settings.steps;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        let style = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} steps ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar
    });
    let log_every = (total / 10).max(1);
    let mut on_step = |step: usize, objective: f64| match &bar {
        Some(bar) => {
            bar.set_position(step as u64);
            bar.set_message(format!("objective {objective:.4}"));
        }
        None if step.is_multiple_of(log_every) || step == total || step == 1 => {
            tracing::info!("mask step {step}/{total}: objective {objective:.4}");
        }
        None => {}
    };
    let result =
        interpret::optimize_masks(encoder, images, marginal, settings, device, &mut on_step);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(result?)
}

/// Writes masks.npy, mask-metrics.csv and masks.png; returns the files written.
fn write_masks(out: &Path, result: &MaskResult, chosen: &Chosen) -> anyhow::Result<Vec<PathBuf>> {
    let shape: Vec<usize> = result.masks.size().iter().map(|&d| d as usize).collect();
    let values = Vec::<f32>::try_from(result.masks.flatten(0, -1)).context("reading the masks")?;

    let npy = out.join(files::MASKS);
    interpret::write_npy(&npy, &shape, &values)?;
    let metrics = out.join(files::MASK_METRICS);
    interpret::write_objective_csv(&metrics, &result.objective)?;
    let picture_path = out.join(files::MASKS_PICTURE);
    let picture = interpret::masks_picture(&chosen.bytes, &values, shape[1], &chosen.labels)?;
    interpret::save_png(&picture_path, &picture)?;
    Ok(vec![picture_path, npy, metrics])
}

/// Writes graph.png, edge-frequency.png and edge-frequency.csv; returns the files written.
fn write_graphs(
    out: &Path,
    logits: &dyn Fn(&Tensor) -> Tensor,
    chosen: &Chosen,
    test: &Dataset,
    types: usize,
    device: Device,
) -> anyhow::Result<Vec<PathBuf>> {
    let slots = SLOTS as usize;
    let edge_types = interpret::edge_types(logits, &chosen.images)?;
    let edge_types =
        Vec::<i64>::try_from(edge_types.flatten(0, -1)).context("reading edge types")?;
    let graph_path = out.join(files::GRAPH_PICTURE);
    let picture =
        interpret::graph_picture(&chosen.bytes, &edge_types, slots, types, &chosen.labels)?;
    interpret::save_png(&graph_path, &picture)?;

    tracing::info!("counting edge types over the {} test images", test.len());
    let frequencies = interpret::edge_type_frequencies(logits, test, FREQUENCY_BATCH, device)?;
    let frequencies = Vec::<f64>::try_from(frequencies.flatten(0, -1))
        .context("reading edge-type frequencies")?;
    let csv_path = out.join(files::FREQUENCIES);
    interpret::write_frequency_csv(
        &csv_path,
        &interpret::edge_pairs(slots),
        types,
        &frequencies,
    )?;
    let frequency_path = out.join(files::FREQUENCY_PICTURE);
    let picture = interpret::edge_frequency_picture(&frequencies, slots, types)?;
    interpret::save_png(&frequency_path, &picture)?;
    Ok(vec![graph_path, frequency_path, csv_path])
}

/// Prints the final summary on standard output.
fn print_summary(
    out: &Path,
    indices: &[usize],
    settings: &MaskSettings,
    result: &MaskResult,
    written: &[PathBuf],
    seconds: f64,
) {
    let first = result.objective.first().copied().unwrap_or(f64::NAN);
    let last = result.objective.last().copied().unwrap_or(f64::NAN);
    let rows = [
        ("output folder", out.display().to_string()),
        ("images x slots", format!("{} x {SLOTS}", indices.len())),
        (
            "steps (learning rate)",
            format!("{} ({})", settings.steps, settings.learning_rate),
        ),
        (
            "objective, first -> last",
            format!("{first:.4} -> {last:.4}"),
        ),
        ("collapsed masks", result.collapsed.len().to_string()),
        ("time", format!("{seconds:.1} s")),
    ];
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("\ninterpretation summary");
    for (key, value) in rows {
        println!("  {key:<width$}  {value}");
    }
    for c in &result.collapsed {
        println!(
            "    test image {} slot {}: {} (mean {:.4})",
            indices[c.image], c.slot, c.kind, c.mean
        );
    }
    println!("  files");
    for path in written {
        println!("    {}", path.display());
    }
}
