//! The pretraining loop: views in, bound up, checkpoints out.
//!
//! Every random choice is a function of the seed and the step number (the weights' init
//! of the seed; the batch order of the seed and the epoch; the views and the Gumbel noise
//! of the seed and the step), so a run resumed from its checkpoint on the CPU takes
//! exactly the steps that an uninterrupted run would have taken.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tch::{nn::VarStore, Device, Tensor};
use tracing::info;

use crate::data::{self, Augmenter, Prefetcher, Split};
use crate::model::{Network, NetworkConfig};
use crate::objective::{terms, PairTensors, Pairs};
use crate::optim::Adam;
use crate::train::checkpoint::{self, Checkpoint, CheckpointMeta, FORMAT_VERSION};
use crate::train::config::PretrainConfig;
use crate::train::error::TrainError;
use crate::train::metrics::{MetricsWriter, StepRecord};

/// File names inside a run's output folder.
pub mod files {
    /// The latest checkpoint.
    pub const CHECKPOINT: &str = "checkpoint.ot";
    /// The resolved configuration.
    pub const CONFIG: &str = "config.toml";
    /// The per-step metrics.
    pub const METRICS: &str = "metrics.csv";
}

/// Without a terminal, a progress line is logged at most this often (and at every epoch).
const PLAIN_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Called every `probe_every` steps with the network; returns the surrogate accuracy.
pub type SurrogateProbe<'a> = dyn FnMut(&Network, Device) -> Result<f64, TrainError> + 'a;

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone)]
pub struct PretrainSummary {
    /// The output folder.
    pub out: PathBuf,
    /// Steps completed in all (a resumed run counts its earlier steps).
    pub steps: u64,
    /// Steps taken by this invocation.
    pub steps_this_run: u64,
    /// Epochs completed.
    pub epochs: f64,
    /// Mean loss over this invocation's first ten steps.
    pub first_loss: f64,
    /// Mean loss over this invocation's last ten steps.
    pub last_loss: f64,
    /// Last bound on I(X,Z), when used.
    pub bound_xz: Option<f64>,
    /// Last bound on I(X,A), when used.
    pub bound_xa: Option<f64>,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
    /// The device used.
    pub device: String,
}

/// Sets libtorch's and rayon's thread counts (`None`: all cores).
pub fn set_threads(threads: Option<usize>) {
    let n = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    tch::set_num_threads(n as i32);
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
}

/// Mixes a seed and a counter into a well-spread 64-bit value (SplitMix64 finalizer).
pub fn mix_seed(seed: u64, counter: u64) -> u64 {
    let mut z = seed ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Builds the network of a configuration on `device`, initialised from its seed.
pub fn build_network(config: &PretrainConfig, device: Device) -> (VarStore, Network) {
    tch::manual_seed(config.seed as i64);
    let vs = VarStore::new(device);
    let net_config = NetworkConfig {
        backbone: config.backbone,
        hidden: config.hidden,
        edge_types: config.edge_types,
        precision: config.precision,
    };
    let network = Network::new(&vs.root(), &net_config);
    (vs, network)
}

/// Rough peak memory of one step, in bytes: activations kept for the backward pass of
/// the encoder over all views, plus the pair-level tensors of the critics.
pub fn estimate_step_bytes(config: &PretrainConfig) -> f64 {
    let views = (config.images * config.views) as f64;
    let per_view_encoder = match config.backbone {
        crate::model::BackboneKind::Conv4 => 8.0 * 32.0 * 32.0 * 4.0,
        crate::model::BackboneKind::ResNet8 => 16.0 * 32.0 * 32.0 * 12.0,
    };
    let pairs = config.images as f64 * (config.views * (config.views - 1)) as f64;
    let edges = 56.0;
    let mut floats = views * (3.0 * 32.0 * 32.0 + per_view_encoder);
    let Some(objective) = config.objective.objective() else {
        return floats * 4.0;
    };
    if objective.uses_xz() {
        floats += pairs * config.hidden as f64 * 4.0;
    }
    if objective.uses_xa() {
        floats += views * edges * config.hidden as f64 * 10.0;
        floats += pairs * edges * config.edge_types as f64 * 4.0;
    }
    floats * 4.0
}

fn available_memory_bytes() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Runs (or resumes) pretraining as `config` says.
pub fn pretrain(
    config: &PretrainConfig,
    resume: bool,
    mut probe: Option<&mut SurrogateProbe<'_>>,
) -> Result<PretrainSummary, TrainError> {
    config.validate()?;
    let objective = config
        .objective
        .objective()
        .ok_or_else(|| TrainError::InvalidConfig {
            field: "objective".into(),
            value: config.objective.to_string(),
            expected: "a self-supervised objective (xz, xa or xza) for this loop".into(),
        })?;
    set_threads(config.threads);
    let device = crate::device::resolve(config.device).map_err(TrainError::Device)?;
    if device == Device::Cpu {
        if let Some(limit) = available_memory_bytes() {
            let needed = estimate_step_bytes(config);
            if needed > limit {
                return Err(TrainError::TooLarge {
                    images: config.images,
                    views: config.views,
                    needed_gib: needed / f64::powi(1024.0, 3),
                    limit_gib: limit / f64::powi(1024.0, 3),
                });
            }
        }
    }

    let out = config.out.clone();
    let checkpoint_path = out.join(files::CHECKPOINT);
    let config_path = out.join(files::CONFIG);
    let resume_from = prepare_output(config, resume, &checkpoint_path, &config_path)?;

    let mut dataset = data::load(&config.data, config.dataset, Split::Train)?;
    if let Some(n) = config.train_images {
        dataset.truncate(n);
    }
    if dataset.len() < config.images {
        return Err(TrainError::InvalidConfig {
            field: "images".into(),
            value: config.images.to_string(),
            expected: format!("at most the {} training images available", dataset.len()),
        });
    }
    let dataset = Arc::new(dataset);
    let steps_per_epoch = data::steps_per_epoch(dataset.len(), config.images) as u64;
    let total_steps = {
        let by_epochs = config.epochs * steps_per_epoch;
        config.max_steps.map_or(by_epochs, |m| m.min(by_epochs))
    };

    let (mut vs, network) = build_network(config, device);
    let mut adam = Adam::new(&vs, config.learning_rate);
    let mut start_step = 0;
    if let Some(ck) = &resume_from {
        ck.restore(&mut vs, "")?;
        ck.restore_optimizer(&mut adam)?;
        start_step = ck.meta.step;
        info!(step = start_step, path = %ck.path.display(), "resuming");
    }
    checkpoint::write_atomically(&config_path, &config.to_toml())?;
    let mut metrics = MetricsWriter::open(&out.join(files::METRICS), start_step)?;

    info!(
        backbone = %config.backbone, objective = %config.objective,
        estimator = %config.estimator, images = config.images, views = config.views,
        train_images = dataset.len(), steps_per_epoch, total_steps, device = ?device,
        "pretraining"
    );

    let plan = data::Schedule::new(
        dataset.len(),
        config.images,
        config.seed,
        start_step..total_steps,
    );
    let prefetcher = Prefetcher::new(
        dataset.clone(),
        Augmenter::new(config.dataset),
        config.views,
        config.seed,
        plan,
    );

    let progress = progress_bar(start_step, total_steps);
    let started = Instant::now();
    let mut last_line = Instant::now();
    let mut pairs_cache: Option<(usize, PairTensors)> = None;
    let mut losses: Vec<f64> = Vec::new();
    let mut last = StepRecord::default();
    let mut last_checkpoint = start_step;
    let mut epoch_loss = (0.0, 0u64);

    for (step, batch) in prefetcher {
        let step_started = Instant::now();
        let views = config.views;
        let n_views = batch.len() / (3 * 32 * 32);
        let images = n_views / views;
        if pairs_cache.as_ref().map(|(m, _)| *m) != Some(images) {
            let pairs = Pairs::new(images, views).map_err(|e| TrainError::InvalidConfig {
                field: "images".into(),
                value: images.to_string(),
                expected: e.to_string(),
            })?;
            pairs_cache = Some((images, pairs.to_tensors(device)));
        }
        let pairs = &pairs_cache.as_ref().expect("pairs built above").1;

        let x = Tensor::from_slice(&batch)
            .view([n_views as i64, 3, 32, 32])
            .to_device(device);
        tch::manual_seed(mix_seed(config.seed, step) as i64 & i64::MAX);
        adam.zero_grad();
        let features = network.encoder.forward_t(&x, true);
        let mut terms = terms::evaluate_fused(
            &network,
            &features,
            pairs,
            objective,
            config.estimator,
            config.tau,
            true,
        );

        let number = step + 1;
        let value = |t: &Tensor| t.double_value(&[]);
        let record_term = |name: &str, bound: &Option<crate::objective::Bound>| {
            bound
                .as_ref()
                .map(|b| (name.to_string(), value(&b.loss), value(&b.value)))
        };
        let xz = record_term("xz", &terms.xz);
        let xa = record_term("xa", &terms.xa);
        let total = value(&terms.total);
        for (term, loss, bound) in xz.iter().chain(xa.iter()) {
            for v in [loss, bound] {
                if !v.is_finite() {
                    return Err(TrainError::NonFinite {
                        step: number,
                        term: term.clone(),
                        value: *v,
                        last_checkpoint,
                    });
                }
            }
        }
        if !total.is_finite() {
            return Err(TrainError::NonFinite {
                step: number,
                term: "total".into(),
                value: total,
                last_checkpoint,
            });
        }
        terms.backward();
        adam.step();

        let epoch = step / steps_per_epoch + 1;
        let mut record = StepRecord {
            step: number,
            epoch,
            loss: total,
            loss_xz: xz.as_ref().map(|t| t.1),
            loss_xa: xa.as_ref().map(|t| t.1),
            bound_xz: xz.as_ref().map(|t| t.2),
            bound_xa: xa.as_ref().map(|t| t.2),
            seconds: 0.0,
            images_per_s: 0.0,
            surrogate_accuracy: None,
        };
        if let Some(probe) = probe.as_deref_mut() {
            if config.probe_every > 0 && number % config.probe_every == 0 {
                let accuracy = probe(&network, device)?;
                info!(step = number, accuracy, "surrogate linear classifier");
                record.surrogate_accuracy = Some(accuracy);
            }
        }
        record.seconds = step_started.elapsed().as_secs_f64();
        record.images_per_s = images as f64 / record.seconds.max(1e-9);
        metrics.write(&record)?;
        losses.push(total);
        epoch_loss = (epoch_loss.0 + total, epoch_loss.1 + 1);

        let epoch_done = number % steps_per_epoch == 0;
        if epoch_done || number == total_steps {
            let meta = CheckpointMeta {
                format: FORMAT_VERSION,
                step: number,
                epoch: number / steps_per_epoch,
                seed: config.seed,
                origin: "pretrain".into(),
            };
            checkpoint::save(&checkpoint_path, &vs, Some(&adam), &meta)?;
            last_checkpoint = number;
            let line = format!(
                "epoch {epoch} step {number}/{total_steps} mean loss {:.4}{}{} ({:.1} s)",
                epoch_loss.0 / epoch_loss.1.max(1) as f64,
                record
                    .bound_xz
                    .map(|b| format!(" I(X,Z)>={b:.3}"))
                    .unwrap_or_default(),
                record
                    .bound_xa
                    .map(|b| format!(" I(X,A)>={b:.3}"))
                    .unwrap_or_default(),
                started.elapsed().as_secs_f64(),
            );
            match &progress {
                Some(bar) => bar.println(line),
                None => info!("{line}"),
            }
            epoch_loss = (0.0, 0);
        }
        match &progress {
            Some(bar) => {
                bar.set_message(format!("loss {total:.4}"));
                bar.inc(1);
            }
            None if last_line.elapsed() >= PLAIN_LOG_EVERY => {
                let rate = (number - start_step) as f64 / started.elapsed().as_secs_f64();
                info!(
                    "step {number}/{total_steps} loss {total:.4} ({rate:.2} steps/s, about {:.0} s left)",
                    (total_steps - number) as f64 / rate.max(1e-9)
                );
                last_line = Instant::now();
            }
            None => {}
        }
        last = record;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len().max(1) as f64;
    let k = losses.len().min(10);
    Ok(PretrainSummary {
        out,
        steps: last.step.max(start_step),
        steps_this_run: losses.len() as u64,
        epochs: last.step.max(start_step) as f64 / steps_per_epoch as f64,
        first_loss: mean(&losses[..k]),
        last_loss: mean(&losses[losses.len() - k..]),
        bound_xz: last.bound_xz,
        bound_xa: last.bound_xa,
        seconds: started.elapsed().as_secs_f64(),
        device: format!("{device:?}").to_lowercase(),
    })
}

/// Checks the output folder against `resume` and returns the checkpoint to resume from.
pub fn prepare_output(
    config: &PretrainConfig,
    resume: bool,
    checkpoint_path: &std::path::Path,
    config_path: &std::path::Path,
) -> Result<Option<Checkpoint>, TrainError> {
    let out = &config.out;
    std::fs::create_dir_all(out).map_err(|source| TrainError::Io {
        path: out.clone(),
        source,
    })?;
    let exists = checkpoint_path.exists();
    if config_path.exists() && (exists || resume) {
        let saved = PretrainConfig::from_file(config_path)?;
        if let Some(field) = saved.first_difference(config) {
            return Err(TrainError::ConfigMismatch {
                path: config_path.to_path_buf(),
                field,
            });
        }
    }
    match (exists, resume) {
        (true, false) => Err(TrainError::RunExists { path: out.clone() }),
        (false, true) => Err(TrainError::NothingToResume {
            path: checkpoint_path.to_path_buf(),
        }),
        (true, true) => Ok(Some(Checkpoint::load(checkpoint_path)?)),
        (false, false) => Ok(None),
    }
}

fn progress_bar(start: u64, total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_position(start);
    let style = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{bar:30}] {pos}/{len} steps ({per_sec}, eta {eta}) {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    Some(bar)
}
