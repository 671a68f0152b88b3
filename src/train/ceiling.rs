//! This CPU's fp32 multiply-add ceiling: the rate at which independent chains of fused
//! multiply-adds run on every thread at once, the bound that no matrix product exceeds.

use std::time::Instant;

/// Chains per thread: more than the FMA units' latency times their count, so that the
/// units never wait for a result.
const CHAINS: usize = 12;

/// Multiply-adds of 8-lane vectors per chain in one timed run.
const ROUNDS: u64 = 40_000_000;

/// GFLOP/s (a multiply-add counted as two) of `threads` threads each running independent
/// fp32 FMA chains, the widest vectors the CPU has (AVX-512 or AVX2); `None` on CPUs
/// without FMA. The best of three runs of about a second each.
pub fn fp32_fma_ceiling(threads: usize) -> Option<f64> {
    let width = vector_width()?;
    let threads = threads.max(1);
    let rounds = ROUNDS * 8 / width as u64;
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| std::hint::black_box(chains(width, rounds)));
            }
        });
        let flops = 2.0 * (threads * CHAINS * width) as f64 * rounds as f64;
        best = best.max(flops / started.elapsed().as_secs_f64() / 1e9);
    }
    Some(best)
}

/// Lanes of the widest FMA vectors this CPU runs (16 or 8), if any.
fn vector_width() -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return Some(16);
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Some(8);
        }
    }
    None
}

/// Runs `CHAINS` chains of `rounds` multiply-adds on vectors of `width` lanes.
fn chains(width: usize, rounds: u64) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `vector_width` found the features each width needs.
        unsafe {
            if width == 16 {
                return x86::chains_avx512(rounds);
            }
            return x86::chains_avx2(rounds);
        }
    }
    #[allow(unreachable_code)]
    {
        let _ = (width, rounds);
        0.0
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::CHAINS;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn chains_avx512(rounds: u64) -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..rounds {
            for chain in acc.iter_mut() {
                *chain = _mm512_fmadd_ps(*chain, a, b);
            }
        }
        acc.iter().map(|v| _mm512_reduce_add_ps(*v)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn chains_avx2(rounds: u64) -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..rounds {
            for chain in acc.iter_mut() {
                *chain = _mm256_fmadd_ps(*chain, a, b);
            }
        }
        let mut lanes = [0.0f32; 8];
        let mut total = 0.0;
        for v in acc {
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            total += lanes.iter().sum::<f32>();
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_compute_the_recurrence() {
        // Every lane of every chain runs x -> 0.999999 x + 1e-7 from 1.
        if let Some(width) = vector_width() {
            let mut x = 1.0f32;
            for _ in 0..1000 {
                x = x.mul_add(0.999_999, 1e-7);
            }
            let total = chains(width, 1000);
            let expected = (CHAINS * width) as f32 * x;
            assert!(
                (total - expected).abs() < 1e-5 * expected,
                "{total} vs {expected}"
            );
            assert!(x < 0.9995, "the chain moved");
        }
    }
}
