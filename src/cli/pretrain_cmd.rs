//! `hssl pretrain`: configuration from file and flags, then the training loop.

use std::path::PathBuf;

use clap::Args;
use hssl::data::CifarKind;
use hssl::device::DeviceChoice;
use hssl::model::{BackboneKind, Precision};
use hssl::objective::Estimator;
use std::time::Instant;

use hssl::data::{self, Split};
use hssl::eval::{
    supervised_head, surrogate_accuracy, train_supervised, SupervisedSettings, SupervisedStep,
};
use hssl::train::checkpoint::{save, write_atomically, Checkpoint, CheckpointMeta, FORMAT_VERSION};
use hssl::train::metrics::{MetricsWriter, StepRecord};
use hssl::train::pretrain::{build_network, files, prepare_output, set_threads};
use hssl::train::{pretrain, Method, PretrainConfig, PretrainSummary, TrainError};

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
    /// Relation encoder number format: fp32, or bf16 for the matrix units [default: fp32].
    #[arg(long)]
    pub precision: Option<Precision>,
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
    /// Surrogate linear-classifier accuracy every N steps (0: never) [default: 100].
    #[arg(long)]
    pub probe_every: Option<u64>,
    /// Continue the run in --out from its last checkpoint, with the settings saved in its
    /// config.toml (flags given here override them).
    #[arg(long)]
    pub resume: bool,
}

impl PretrainArgs {
    /// The configuration: defaults, then the file, then the flags. With `--resume` and no
    /// `--config`, the file is the run folder's own `config.toml`, so that continuing a run
    /// needs only the flags that change (`--max-steps`, `--epochs`, ...).
    pub fn resolve(&self) -> anyhow::Result<PretrainConfig> {
        let saved = self.resume.then(|| {
            let out = self
                .out
                .clone()
                .unwrap_or_else(|| PretrainConfig::default().out);
            out.join(files::CONFIG)
        });
        let mut c = match (&self.config, saved) {
            (Some(path), _) => PretrainConfig::from_file(path)?,
            (None, Some(saved)) if saved.is_file() => PretrainConfig::from_file(&saved)?,
            (None, _) => PretrainConfig::default(),
        };
        macro_rules! set {
            ($($flag:ident => $field:ident),* $(,)?) => {
                $(if let Some(v) = self.$flag.clone() { c.$field = v; })*
            };
        }
        set!(backbone => backbone, objective => objective, estimator => estimator,
             images => images, views => views, epochs => epochs, lr => learning_rate,
             tau => tau, seed => seed, dataset => dataset, data => data, out => out,
             device => device, probe_every => probe_every, precision => precision);
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
    let summary = match config.objective {
        Method::Random => save_untrained(&config, args.resume)?,
        Method::Supervised => run_supervised(&config, args.resume)?,
        Method::Xz | Method::Xa | Method::Xza => run_pretrain(&config, args.resume)?,
    };
    print_summary(&config, &summary);
    Ok(())
}

fn run_pretrain(config: &PretrainConfig, resume: bool) -> anyhow::Result<PretrainSummary> {
    if config.probe_every == 0 {
        return Ok(pretrain(config, resume, None)?);
    }
    let mut dataset = data::load(&config.data, config.dataset, Split::Train)?;
    dataset.truncate(config.probe_images);
    let seed = config.seed;
    let mut probe = |network: &hssl::model::Network, device: tch::Device| {
        surrogate_accuracy(
            &network.encoder,
            &dataset,
            config.probe_images,
            device,
            seed,
        )
        .map_err(|e| TrainError::Probe(e.to_string()))
    };
    Ok(pretrain(config, resume, Some(&mut probe))?)
}

/// The random reference: the untrained encoder of the seed, saved as a checkpoint.
fn save_untrained(config: &PretrainConfig, resume: bool) -> anyhow::Result<PretrainSummary> {
    let started = Instant::now();
    let (checkpoint_path, config_path) = run_files(config);
    if resume && checkpoint_path.exists() {
        tracing::info!(
            "the random reference has nothing to resume: keeping {}",
            checkpoint_path.display()
        );
    } else {
        prepare_output(config, resume, &checkpoint_path, &config_path)?;
        let (vs, _network) = build_network(config, tch::Device::Cpu);
        write_atomically(&config_path, &config.to_toml())?;
        let meta = CheckpointMeta {
            format: FORMAT_VERSION,
            step: 0,
            epoch: 0,
            seed: config.seed,
            origin: "random".into(),
        };
        save(&checkpoint_path, &vs, None, &meta)?;
    }
    Ok(PretrainSummary {
        out: config.out.clone(),
        steps: 0,
        steps_this_run: 0,
        epochs: 0.0,
        first_loss: f64::NAN,
        last_loss: f64::NAN,
        bound_xz: None,
        bound_xa: None,
        seconds: started.elapsed().as_secs_f64(),
        device: "cpu".into(),
    })
}

/// The supervised reference: encoder + linear head trained with labels (SPEC.md's
/// recipe). `epochs` and `max_steps` count passes and steps of 128 images.
fn run_supervised(config: &PretrainConfig, resume: bool) -> anyhow::Result<PretrainSummary> {
    let (checkpoint_path, config_path) = run_files(config);
    if resume && checkpoint_path.exists() {
        let meta = Checkpoint::load(&checkpoint_path)?.meta;
        if meta.origin == "supervised" {
            tracing::info!(
                "the supervised reference already finished: keeping {}",
                checkpoint_path.display()
            );
            return Ok(PretrainSummary {
                out: config.out.clone(),
                steps: meta.step,
                steps_this_run: 0,
                epochs: meta.epoch as f64,
                first_loss: f64::NAN,
                last_loss: f64::NAN,
                bound_xz: None,
                bound_xa: None,
                seconds: 0.0,
                device: "-".into(),
            });
        }
    }
    // The supervised reference saves its checkpoint only when it finishes, so a resumed
    // one starts again; a folder holding a finished run of another kind is still refused.
    match prepare_output(config, false, &checkpoint_path, &config_path) {
        Err(TrainError::RunExists { .. }) if resume => {}
        other => {
            other?;
        }
    }
    set_threads(config.threads);
    let device = hssl::device::resolve(config.device).map_err(anyhow::Error::msg)?;
    let mut dataset = data::load(&config.data, config.dataset, Split::Train)?;
    if let Some(n) = config.train_images {
        dataset.truncate(n);
    }
    let (vs, network) = build_network(config, device);
    let head = supervised_head(&vs.root(), dataset.num_classes());
    let settings = SupervisedSettings {
        epochs: config.epochs,
        max_steps: config.max_steps,
        seed: config.seed,
        ..Default::default()
    };
    write_atomically(&config_path, &config.to_toml())?;
    let mut metrics = MetricsWriter::open(&config.out.join(files::METRICS), 0)?;
    let mut last = Instant::now();
    let mut write_error = None;
    let mut on_step = |s: &SupervisedStep| {
        let seconds = last.elapsed().as_secs_f64();
        last = Instant::now();
        let record = StepRecord {
            step: s.step,
            epoch: s.epoch + 1,
            loss: s.loss,
            seconds,
            images_per_s: 128.0 / seconds.max(1e-9),
            ..Default::default()
        };
        if let Err(e) = metrics.write(&record) {
            write_error.get_or_insert(e);
        }
        if s.step % 100 == 0 || s.step == s.total_steps {
            tracing::info!(
                step = s.step,
                total = s.total_steps,
                loss = s.loss,
                accuracy = s.accuracy,
                lr = s.learning_rate,
                "supervised reference"
            );
        }
    };
    let summary = train_supervised(
        &vs,
        &network.encoder,
        &head,
        &dataset,
        &settings,
        device,
        &mut on_step,
    )?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let meta = CheckpointMeta {
        format: FORMAT_VERSION,
        step: summary.steps,
        epoch: summary.epochs.floor() as u64,
        seed: config.seed,
        origin: "supervised".into(),
    };
    save(&checkpoint_path, &vs, None, &meta)?;
    Ok(PretrainSummary {
        out: config.out.clone(),
        steps: summary.steps,
        steps_this_run: summary.steps,
        epochs: summary.epochs,
        first_loss: summary.first_loss,
        last_loss: summary.last_loss,
        bound_xz: None,
        bound_xa: None,
        seconds: summary.seconds,
        device: format!("{device:?}").to_lowercase(),
    })
}

fn run_files(config: &PretrainConfig) -> (PathBuf, PathBuf) {
    (
        config.out.join(files::CHECKPOINT),
        config.out.join(files::CONFIG),
    )
}

/// Prints the final summary table on standard output.
pub fn print_summary(config: &PretrainConfig, s: &PretrainSummary) {
    let fmt_opt = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    let rows = [
        ("run folder", s.out.display().to_string()),
        (
            "backbone / objective",
            format!("{} / {}", config.backbone, config.objective),
        ),
        ("estimator", config.estimator.to_string()),
        ("precision", config.precision.to_string()),
        (
            "batch",
            format!("{} images x {} views", config.images, config.views),
        ),
        ("steps (epochs)", format!("{} ({:.2})", s.steps, s.epochs)),
        ("steps this run", s.steps_this_run.to_string()),
        (
            "mean loss, first -> last 10 steps",
            format!("{:.4} -> {:.4}", s.first_loss, s.last_loss),
        ),
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
