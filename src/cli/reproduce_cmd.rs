//! `hssl reproduce`: every row of the paper's Table 1 for a budget preset, one command,
//! resumable: each run is a child `hssl pretrain` / `hssl probe` process, and a run whose
//! results are already on disk is not run again.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use hssl::model::{BackboneKind, Precision};
use hssl::train::Method;

/// A budget for the whole table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Under an hour on 2 CPU cores for Conv-4 on CIFAR-10 (2 seeds, 5 rows): the first
    /// 5,000 training images, 64 images x 8 views, 6 epochs (474 steps); supervised 15
    /// epochs on all 50,000 images; probes on all images, 100 epochs.
    Cpu,
    /// The paper's budget (a GPU): all images, 64 x 32 views, 50 epochs, 3 seeds, both
    /// backbones; supervised 50 epochs.
    Paper,
    /// A few minutes: for trying the command itself (numbers mean little).
    Smoke,
}

/// Flags of `hssl reproduce`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hssl reproduce --preset cpu --data data/cifar-10-batches-bin --out runs/table-cpu\n  \
    hssl reproduce --preset paper --data data/cifar-10-batches-bin \\\n      \
    --cifar100 data/cifar-100-binary --out runs/table-paper\n\n\
    Killed? Run the same command again: finished runs are kept, the interrupted one resumes\n\
    from its last checkpoint. The table and plots land in OUT/report.")]
pub struct ReproduceArgs {
    /// Budget: cpu, paper or smoke.
    #[arg(long, value_enum, default_value = "cpu")]
    pub preset: Preset,
    /// CIFAR-10 folder (pretraining and the C10 columns).
    #[arg(long, default_value = "data/cifar-10-batches-bin")]
    pub data: PathBuf,
    /// CIFAR-100 folder for the transfer columns (left out when not given).
    #[arg(long)]
    pub cifar100: Option<PathBuf>,
    /// Output folder: one subfolder per run, and `report/`.
    #[arg(long)]
    pub out: PathBuf,
    /// Seeds per row (default: the preset's).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Backbones, comma-separated (default: the preset's).
    #[arg(long, value_delimiter = ',')]
    pub backbones: Option<Vec<BackboneKind>>,
    /// Rows, comma-separated (default: all five).
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<Method>>,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Relation encoder number format of the self-supervised rows: fp32 (the paper's) or
    /// bf16 (faster on matrix units).
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
}

struct Budget {
    seeds: u64,
    backbones: Vec<BackboneKind>,
    pretrain: Vec<String>,
    supervised: Vec<String>,
    probe: Vec<String>,
}

fn budget(preset: Preset) -> Budget {
    let flags = |text: &str| {
        text.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    match preset {
        Preset::Cpu => Budget {
            seeds: 2,
            backbones: vec![BackboneKind::Conv4],
            pretrain: flags(
                "--images 64 --views 8 --epochs 6 --train-images 5000 --probe-every 50",
            ),
            supervised: flags("--epochs 15"),
            probe: flags("--epochs 100"),
        },
        Preset::Paper => Budget {
            seeds: 3,
            backbones: vec![BackboneKind::Conv4, BackboneKind::ResNet8],
            pretrain: flags("--images 64 --views 32 --epochs 50 --probe-every 100"),
            supervised: flags("--epochs 50"),
            probe: flags("--epochs 100"),
        },
        Preset::Smoke => Budget {
            seeds: 2,
            backbones: vec![BackboneKind::Conv4],
            pretrain: flags(
                "--images 16 --views 4 --max-steps 20 --train-images 2000 --probe-every 10",
            ),
            supervised: flags("--max-steps 20 --train-images 2000"),
            probe: flags("--epochs 3 --train-images 2000"),
        },
    }
}

/// Runs `hssl reproduce`.
pub fn run(args: ReproduceArgs) -> anyhow::Result<()> {
    let plan = budget(args.preset);
    let seeds = args.seeds.unwrap_or(plan.seeds);
    let backbones = args.backbones.clone().unwrap_or(plan.backbones.clone());
    let methods = args.methods.clone().unwrap_or(Method::ALL.to_vec());
    if !args.data.is_dir() {
        bail!(
            "--data {}: no such folder (expected CIFAR-10's binary files)",
            args.data.display()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let exe = std::env::current_exe().context("cannot find the hssl executable")?;
    let total = seeds as usize * backbones.len() * methods.len();
    let mut done = 0;
    for &backbone in &backbones {
        for &method in &methods {
            for seed in 0..seeds {
                done += 1;
                let run = args.out.join(format!("{backbone}-{method}-seed{seed}"));
                tracing::info!("run {done}/{total}: {}", run.display());
                pretrain_run(&exe, &args, &plan, &run, backbone, method, seed)?;
                probe_run(&exe, &args, &plan, &run, "cifar10", &args.data)?;
                if let Some(c100) = &args.cifar100 {
                    probe_run(&exe, &args, &plan, &run, "cifar100", c100)?;
                }
            }
        }
    }
    let status = Command::new(&exe).arg("report").arg(&args.out).status()?;
    if !status.success() {
        bail!("hssl report {} failed", args.out.display());
    }
    Ok(())
}

fn pretrain_run(
    exe: &Path,
    args: &ReproduceArgs,
    plan: &Budget,
    run: &Path,
    backbone: BackboneKind,
    method: Method,
    seed: u64,
) -> anyhow::Result<()> {
    if run.join("finished").exists() {
        return Ok(());
    }
    let mut cmd = Command::new(exe);
    cmd.arg("pretrain")
        .args([
            "--backbone",
            &backbone.to_string(),
            "--objective",
            &method.to_string(),
        ])
        .args(["--seed", &seed.to_string(), "--device", &args.device])
        .arg("--data")
        .arg(&args.data)
        .arg("--out")
        .arg(run);
    match method {
        Method::Supervised => cmd.args(&plan.supervised),
        Method::Random => &mut cmd,
        Method::Xz | Method::Xa | Method::Xza => cmd
            .args(&plan.pretrain)
            .args(["--precision", args.precision.name()]),
    };
    if run.join("checkpoint.ot").exists() {
        cmd.arg("--resume");
    }
    let status = cmd.status().context("cannot start hssl pretrain")?;
    if !status.success() {
        bail!(
            "pretraining {} failed (see above); run the command again to resume",
            run.display()
        );
    }
    std::fs::write(run.join("finished"), b"")
        .with_context(|| format!("cannot write {}", run.join("finished").display()))?;
    Ok(())
}

fn probe_run(
    exe: &Path,
    args: &ReproduceArgs,
    plan: &Budget,
    run: &Path,
    dataset: &str,
    data: &Path,
) -> anyhow::Result<()> {
    if run.join(format!("probe-{dataset}.json")).exists() {
        return Ok(());
    }
    let status = Command::new(exe)
        .arg("probe")
        .arg("--checkpoint")
        .arg(run.join("checkpoint.ot"))
        .args(["--dataset", dataset, "--device", &args.device])
        .arg("--data")
        .arg(data)
        .args(&plan.probe)
        .status()
        .context("cannot start hssl probe")?;
    if !status.success() {
        bail!("probing {} on {dataset} failed (see above)", run.display());
    }
    Ok(())
}
