//! `hssl pretrain`: configuration from file and flags, then the training loop.

use std::path::PathBuf;

use clap::Args;
use hssl::data::CifarKind;
use hssl::device::DeviceChoice;
use hssl::model::BackboneKind;
use hssl::objective::Estimator;
use hssl::train::{pretrain, Method, PretrainConfig, PretrainSummary};

/// Flags of `hssl pretrain`; each overrides the configuration file, which overrides the
/// defaults.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hssl pretrain --data data/cifar-10-batches-bin --out runs/xza\n  \
    hssl pretrain --config configs/quick.toml --objective xz --out runs/xz\n  \
    hssl pretrain --images 32 --views 4 --max-steps 40 --out runs/smoke\n  \
    hssl pretrain --out runs/smoke --resume --max-steps 50\n\n\
    The run folder receives config.toml (the resolved configuration), metrics.csv (one row\n\
    per step) and checkpoint.ot (written at the end of every epoch and of the run).")]
pub struct PretrainArgs {
    /// TOML configuration file (fields as in the run folder's config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Encoder: conv4 or resnet8 [default: conv4].
    #[arg(long)]
    pub backbone: Option<BackboneKind>,
    /// What to train: xz (baseline), xa, xza (the full method), or the references
    /// supervised and random [default: xza].
    #[arg(long)]
    pub objective: Option<Method>,
    /// Bound: nwj, bce, bce-focal or infonce [default: nwj].
    #[arg(long)]
    pub estimator: Option<Estimator>,
    /// Images per batch, M [default: 64].
    #[arg(long)]
    pub images: Option<usize>,
    /// Augmented views per image, V [default: 32].
    #[arg(long)]
    pub views: Option<usize>,
    /// Epochs [default: 50].
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Stop after this many steps in all (a resumed run counts its earlier steps).
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Adam learning rate [default: 0.001].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Gumbel-softmax temperature [default: 0.5].
    #[arg(long)]
    pub tau: Option<f64>,
    /// Seed of every random choice [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Data set: cifar10 or cifar100 [default: cifar10].
    #[arg(long)]
    pub dataset: Option<CifarKind>,
    /// Folder with the data set's binary files [default: data/cifar-10-batches-bin].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Train on the first N training images only [default: all].
    #[arg(long)]
    pub train_images: Option<usize>,
    /// Output folder [default: runs/pretrain].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// cpu, cuda or auto [default: auto].
    #[arg(long)]
    pub device: Option<DeviceChoice>,
    /// CPU threads [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Surrogate linear-classifier accuracy every N steps (0: never).
    #[arg(long)]
    pub probe_every: Option<u64>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
}

impl PretrainArgs {
    /// The configuration: defaults, then the file, then the flags.
    pub fn resolve(&self) -> anyhow::Result<PretrainConfig> {
        let mut c = match &self.config {
            Some(path) => PretrainConfig::from_file(path)?,
            None => PretrainConfig::default(),
        };
        macro_rules! set {
            ($($flag:ident => $field:ident),* $(,)?) => {
                $(if let Some(v) = self.$flag.clone() { c.$field = v; })*
            };
        }
        set!(backbone => backbone, objective => objective, estimator => estimator,
             images => images, views => views, epochs => epochs, lr => learning_rate,
             tau => tau, seed => seed, dataset => dataset, data => data, out => out,
             device => device, probe_every => probe_every);
        if self.max_steps.is_some() {
            c.max_steps = self.max_steps;
        }
        if self.train_images.is_some() {
            c.train_images = self.train_images;
        }
        if self.threads.is_some() {
            c.threads = self.threads;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Runs `hssl pretrain`.
pub fn run(args: PretrainArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    let summary = pretrain(&config, args.resume, None)?;
    print_summary(&config, &summary);
    Ok(())
}

/// Prints the final summary table on standard output.
pub fn print_summary(config: &PretrainConfig, s: &PretrainSummary) {
    let fmt_opt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    let rows = [
        ("run folder", s.out.display().to_string()),
        ("backbone / objective", format!("{} / {}", config.backbone, config.objective)),
        ("estimator", config.estimator.to_string()),
        ("batch", format!("{} images x {} views", config.images, config.views)),
        ("steps (epochs)", format!("{} ({:.2})", s.steps, s.epochs)),
        ("steps this run", s.steps_this_run.to_string()),
        ("loss, first -> last", format!("{:.4} -> {:.4}", s.first_loss, s.last_loss)),
        ("bound I(X,Z)", fmt_opt(s.bound_xz)),
        ("bound I(X,A)", fmt_opt(s.bound_xa)),
        ("device", s.device.clone()),
        ("time", format!("{:.1} s", s.seconds)),
    ];
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("\npretraining summary");
    for (k, v) in rows {
        println!("  {k:<width$}  {v}");
    }
}
