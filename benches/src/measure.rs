//! Timing helpers.
//!
//! Every figure is the best (lowest time, highest rate) of several samples. The machine is shared
//! and noisy, and noise only ever slows a sample down, so the best sample is the closest to the
//! real cost. A figure and its limit are sampled in turn, so that both see the same machine.

use std::time::Instant;

/// Nanoseconds per iteration of `f`, run `iters` times.
#[inline(always)]
pub fn ns_per_iter<F: FnMut()>(iters: u64, f: &mut F) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// The best nanoseconds per iteration of `a` and of `b` over `samples` samples of `iters`
/// iterations each, sampled in turn, after one warm-up sample of each.
pub fn best_pair<A: FnMut(), B: FnMut()>(
    iters: u64,
    samples: u32,
    mut a: A,
    mut b: B,
) -> (f64, f64) {
    ns_per_iter(iters / 10 + 1, &mut a);
    ns_per_iter(iters / 10 + 1, &mut b);
    let (mut best_a, mut best_b) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..samples.max(1) {
        best_a = best_a.min(ns_per_iter(iters, &mut a));
        best_b = best_b.min(ns_per_iter(iters, &mut b));
    }
    (best_a, best_b)
}

/// The lowest of `samples` values returned by `sample` (each a time).
pub fn best_of(samples: u32, mut sample: impl FnMut() -> f64) -> f64 {
    (0..samples.max(1))
        .map(|_| sample())
        .fold(f64::INFINITY, f64::min)
}
