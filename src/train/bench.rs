//! Timing one pretraining step on random inputs, as the PyTorch reference does: the same
//! networks, batch and optimizer, forward + backward + Adam, no data loading.

use std::time::Instant;

use tch::{Device, Kind, Tensor};

use crate::model::{BackboneKind, Precision};
use crate::objective::{terms, Estimator, Objective, Pairs};
use crate::optim::Adam;
use crate::train::config::PretrainConfig;
use crate::train::error::TrainError;
use crate::train::method::Method;
use crate::train::pretrain::build_network;

/// What one timing run measured.
#[derive(Debug, Clone)]
pub struct StepTiming {
    /// Median seconds of a step.
    pub step_s: f64,
    /// Every timed step, in seconds.
    pub steps_s: Vec<f64>,
    /// Positive plus negative pairs of a step.
    pub pairs: usize,
    /// Floating-point operations of a step, counted analytically ([`step_flops`]).
    pub flops: f64,
}

/// Times `steps` steps after `warmup` untimed ones, the relation encoder computing in
/// `precision`.
#[allow(clippy::too_many_arguments)]
pub fn time_step(
    backbone: BackboneKind,
    objective: Objective,
    precision: Precision,
    images: usize,
    views: usize,
    warmup: usize,
    steps: usize,
    device: Device,
) -> Result<StepTiming, TrainError> {
    let method = match objective {
        Objective::Xz => Method::Xz,
        Objective::Xa => Method::Xa,
        Objective::Xza => Method::Xza,
    };
    let config = PretrainConfig {
        backbone,
        objective: method,
        images,
        views,
        precision,
        ..Default::default()
    };
    config.validate()?;
    let (vs, network) = build_network(&config, device);
    let mut adam = Adam::new(&vs, config.learning_rate);
    let n = (images * views) as i64;
    let x = Tensor::randn([n, 3, 32, 32], (Kind::Float, device));
    let pairs = Pairs::new(images, views)
        .map_err(|e| TrainError::InvalidConfig {
            field: "images".into(),
            value: images.to_string(),
            expected: e.to_string(),
        })?
        .to_tensors(device);

    let mut step = || {
        adam.zero_grad();
        let features = network.encoder.forward_t(&x, true);
        let mut t = terms::evaluate_fused(
            &network,
            &features,
            &pairs,
            objective,
            Estimator::Nwj,
            0.5,
            true,
        );
        t.backward();
        adam.step();
        t.total.double_value(&[])
    };
    for _ in 0..warmup {
        step();
    }
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let started = Instant::now();
        let loss = step();
        times.push(started.elapsed().as_secs_f64());
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                step: times.len() as u64,
                term: "total".into(),
                value: loss,
                last_checkpoint: 0,
            });
        }
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let step_s = sorted[sorted.len() / 2];
    Ok(StepTiming {
        step_s,
        steps_s: times,
        pairs: 2 * images * views * (views - 1) / 2,
        flops: step_flops(backbone, objective, images, views, 256, 2),
    })
}

/// Multiply-add work of one training step, counted as 2 FLOPs per multiply-add, forward
/// plus backward (taken as twice the forward), of the convolutions and matrix products
/// that this project's step computes. Element-wise work is left out.
pub fn step_flops(
    backbone: BackboneKind,
    objective: Objective,
    images: usize,
    views: usize,
    hidden: usize,
    edge_types: usize,
) -> f64 {
    let n = (images * views) as f64;
    let conv = |cin: f64, cout: f64, k: f64, side: f64| 2.0 * cin * cout * k * k * side * side;
    let encoder = match backbone {
        BackboneKind::Conv4 => {
            conv(3.0, 8.0, 3.0, 32.0)
                + conv(8.0, 16.0, 3.0, 16.0)
                + conv(16.0, 32.0, 3.0, 8.0)
                + conv(32.0, 64.0, 3.0, 4.0)
        }
        BackboneKind::ResNet8 => {
            conv(3.0, 16.0, 3.0, 32.0)
                + 2.0 * conv(16.0, 16.0, 3.0, 32.0)
                + conv(16.0, 32.0, 3.0, 16.0)
                + conv(32.0, 32.0, 3.0, 16.0)
                + conv(16.0, 32.0, 1.0, 16.0)
                + conv(32.0, 64.0, 3.0, 8.0)
                + conv(64.0, 64.0, 3.0, 8.0)
                + conv(32.0, 64.0, 1.0, 8.0)
        }
    };
    let mut forward = n * encoder;
    let pairs = images as f64 * (views * (views - 1) / 2) as f64;
    let h = hidden as f64;
    if objective.uses_xz() {
        // First layer once per view (two halves), second layer per pair.
        forward += n * 2.0 * 128.0 * 256.0 + 2.0 * pairs * 2.0 * 256.0;
    }
    if objective.uses_xa() {
        let (s, e, k) = (8.0, 56.0, edge_types as f64);
        let mm = |rows: f64, cin: f64, cout: f64| 2.0 * rows * cin * cout;
        let per_view = mm(s, 8.0, h) + mm(s, h, h)   // mlp1 on nodes
            + mm(s, h, 2.0 * h) + mm(e, h, h)        // mlp2: halves per node, second on edges
            + mm(s, h, h) + mm(s, h, h)              // mlp3 on nodes
            + mm(s, h, 2.0 * h) + mm(e, h, h) + mm(e, h, h) // mlp4: node halves, skip, second
            + mm(e, h, k)                            // edge logits
            + 2.0 * k * e * e; // W_k a_k
        forward += n * per_view + 2.0 * 2.0 * pairs * e * k;
    }
    3.0 * forward
}

/// Peak resident memory of this process so far, in bytes (Linux `VmHWM`).
pub fn peak_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv4_flops_match_a_hand_count() {
        // Conv-4 forward per view: 442,368 + 3 x 589,824 multiply-add FLOPs.
        let one = step_flops(BackboneKind::Conv4, Objective::Xz, 1, 2, 256, 2);
        let encoder = 2.0 * (442_368.0 + 3.0 * 589_824.0);
        let head = 2.0 * 2.0 * 128.0 * 256.0 + 2.0 * 1.0 * 2.0 * 256.0;
        assert!((one - 3.0 * (encoder + head)).abs() < 1.0, "{one}");
        let xza = step_flops(BackboneKind::Conv4, Objective::Xza, 64, 32, 256, 2);
        let xz = step_flops(BackboneKind::Conv4, Objective::Xz, 64, 32, 256, 2);
        assert!(xza > 2.0 * xz);
    }

    #[test]
    fn a_small_step_times_and_counts_pairs() {
        for precision in Precision::ALL {
            let t = time_step(
                BackboneKind::Conv4,
                Objective::Xza,
                precision,
                4,
                3,
                1,
                2,
                Device::Cpu,
            )
            .unwrap();
            assert_eq!(t.steps_s.len(), 2);
            assert_eq!(t.pairs, 2 * 4 * 3);
            assert!(t.step_s > 0.0);
        }
    }
}
