//! `hssl bench`: times one pretraining step (or the augmentation pipeline) the way
//! `scripts/bench.py` compares it with the PyTorch reference.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use hssl::data::{view_batch, Augmenter, CifarKind, Dataset};
use hssl::device::DeviceChoice;
use hssl::model::{BackboneKind, Precision};
use hssl::objective::Objective;
use hssl::train::bench::{peak_memory_bytes, time_step};
use hssl::train::pretrain::set_threads;

/// Flags of `hssl bench`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hssl bench --backbone conv4 --objective xza --images 64 --views 32 --threads 2\n  \
    hssl bench --augment --threads 2\n  \
    hssl bench --ceiling --threads 2\n\n\
    Prints one line: RESULT hssl backbone=.. objective=.. step_s=<median> views_per_s=..\n\
    scripts/bench.py runs it beside the PyTorch reference and prints the ratios.")]
pub struct BenchArgs {
    /// Encoder: conv4 or resnet8.
    #[arg(long, default_value = "conv4")]
    pub backbone: BackboneKind,
    /// Terms: xz, xa or xza.
    #[arg(long, default_value = "xza")]
    pub objective: Objective,
    /// Relation encoder number format: fp32 or bf16.
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    pub images: usize,
    /// Views per image.
    #[arg(long, default_value_t = 32)]
    pub views: usize,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// CPU threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// cpu, cuda or auto.
    #[arg(long, default_value = "cpu")]
    pub device: DeviceChoice,
    /// Time the augmentation pipeline (views per second) instead of a step.
    #[arg(long)]
    pub augment: bool,
    /// Measure this CPU's fp32 multiply-add ceiling (GFLOP/s on --threads threads) instead
    /// of a step.
    #[arg(long, conflicts_with = "augment")]
    pub ceiling: bool,
}

/// Runs `hssl bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    set_threads(Some(args.threads));
    if args.augment {
        return bench_augment(&args);
    }
    if args.ceiling {
        let gflops = hssl::train::ceiling::fp32_fma_ceiling(args.threads)
            .ok_or_else(|| anyhow::anyhow!("this CPU has no FMA vectors (AVX2 or AVX-512)"))?;
        println!(
            "RESULT hssl ceiling threads={} fp32_gflop_per_s={gflops:.1}",
            args.threads
        );
        return Ok(());
    }
    let device = hssl::device::resolve(args.device).map_err(anyhow::Error::msg)?;
    let t = time_step(
        args.backbone,
        args.objective,
        args.precision,
        args.images,
        args.views,
        args.warmup,
        args.steps,
        device,
    )?;
    let n = (args.images * args.views) as f64;
    let peak = peak_memory_bytes()
        .map(|b| b as f64 / 1048576.0)
        .unwrap_or(f64::NAN);
    println!(
        "RESULT hssl backbone={} objective={} precision={} images={} views={} threads={} \
         step_s={:.4} views_per_s={:.0} pairs={} gflop={:.2} gflop_per_s={:.1} peak_mib={:.0}",
        args.backbone,
        args.objective,
        args.precision,
        args.images,
        args.views,
        args.threads,
        t.step_s,
        n / t.step_s,
        t.pairs,
        t.flops / 1e9,
        t.flops / 1e9 / t.step_s,
        peak,
    );
    Ok(())
}

fn bench_augment(args: &BenchArgs) -> anyhow::Result<()> {
    let n = 4096;
    let mut images = vec![0u8; n * 3072];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for px in images.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *px = (state >> 56) as u8;
    }
    let dataset = Arc::new(Dataset {
        kind: CifarKind::Cifar10,
        images,
        labels: vec![0; n],
        class_names: (0..10).map(|i| format!("class{i}")).collect(),
    });
    let augmenter = Augmenter::new(CifarKind::Cifar10);
    let batch: Vec<usize> = (0..args.images).collect();
    let _ = view_batch(&dataset, &augmenter, &batch, args.views, 0);
    let mut times = Vec::new();
    for rep in 0..args.steps.max(3) {
        let started = Instant::now();
        let out = view_batch(&dataset, &augmenter, &batch, args.views, rep as u64 + 1);
        times.push(started.elapsed().as_secs_f64());
        std::hint::black_box(out);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let views = (args.images * args.views) as f64;
    println!(
        "RESULT hssl augment images={} views={} threads={} batch_s={:.4} views_per_s={:.0}",
        args.images,
        args.views,
        args.threads,
        median,
        views / median
    );
    Ok(())
}
