//! `bench`: the plugin side of `plughost-bench`'s boundary figures. Not an example to follow for
//! anything but measuring.
//!
//! Commands:
//! - `bench-noop`: the trivial command that the host calls in `call-host-to-plugin`: one relaxed
//!   load and store of a counter in the plugin's state (a handler bound to it with
//!   `Host::command`), nothing else. The bench binary's baseline function does the same work.
//! - `bench-count`: prints how many times `bench-noop` ran.
//! - `bench-publish CALLS SAMPLES TOPIC`: times `Host::publish(TOPIC, b"")` against a direct call
//!   through a function pointer of this library with the same signature as the host service;
//!   prints `publish_ns=P direct_ns=D`, each the best of SAMPLES samples of CALLS calls.
//! - `bench-log CALLS SAMPLES`: times a `log::debug!` against a relaxed atomic load; prints
//!   `debug_enabled=B log_ns=L load_ns=A`, each the best of SAMPLES samples.
//! - `bench-interface CALLS SAMPLES`: times `bump(1)` of the interface `bench.host-counter` (the
//!   application provides it) against the same function of this library, `Counter::bump`,
//!   called directly inside a panic guard (`bench_api::bump_guarded`), and without a guard the
//!   optimiser keeps; prints `interface_ns=I direct_ns=D unguarded_ns=U host_counter=N`.
//!
//! It also provides `bench.plugin-counter`, which the application calls in
//! `interface-call-host-to-plugin`.

use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bench_api::{bump_guarded, bump_unguarded, Counter, HostCounter, PluginCounter};
use plugin_api::abi::{PhBytes, PhHostContext, PhResult, PhResultCode, PhStr};
use plugin_api::{Command, Error, Host, Plugin};

/// The plugin.
pub struct Bench {
    /// The calls of `bench-noop`, which `bench-count` prints: the state its handlers are bound to.
    calls: AtomicU64,
}

/// The signature of the host's `publish` service, for the direct-call baseline.
type PublishFn = unsafe extern "C" fn(*mut PhHostContext, PhStr, PhBytes) -> PhResultCode;

/// The direct-call baseline of `bench-publish`: a function of this library with the signature of
/// `publish`, doing nothing.
///
/// # Safety
///
/// None: it dereferences none of its arguments (`unsafe` only to have `publish`'s type).
#[inline(never)]
unsafe extern "C" fn direct_target(
    ctx: *mut PhHostContext,
    topic: PhStr,
    payload: PhBytes,
) -> PhResultCode {
    black_box((ctx, topic, payload));
    PhResult::Ok.code()
}

/// What the `log-filtered` baseline loads: the host's level, as `log` keeps its maximum level.
static LOAD_TARGET: AtomicUsize = AtomicUsize::new(3);

/// How many records (or loads) one iteration of the `log-filtered` loops holds. A loop of one
/// record is about one cycle, so where the compiler happens to place it against the processor's
/// 32-byte fetch blocks doubled or halved its time from build to build (ratios of 0.5 and 2.0 were
/// both measured, with the same instructions); eight per iteration make that placement matter
/// little, and both loops are written the same way.
const PER_ITERATION: u64 = 8;

/// `calls` filtered-out `log::debug!` records, each with an argument (`calls` is rounded down to
/// a multiple of [`PER_ITERATION`]).
#[inline(never)]
fn log_loop(calls: u64) {
    for i in 0..calls / PER_ITERATION {
        log::debug!("a filtered record {i}");
        log::debug!("a filtered record {i}");
        log::debug!("a filtered record {i}");
        log::debug!("a filtered record {i}");
        log::debug!("a filtered record {i}");
        log::debug!("a filtered record {i}");
        log::debug!("a filtered record {i}");
        log::debug!("a filtered record {i}");
    }
}

/// The `log-filtered` baseline: `calls` relaxed atomic loads, each compared as a level is, with
/// a call (never made) that takes the same argument.
#[inline(never)]
fn load_loop(calls: u64) {
    for i in 0..calls / PER_ITERATION {
        for _ in 0..PER_ITERATION {
            if LOAD_TARGET.load(Ordering::Relaxed) >= 4 {
                not_taken(&i);
            }
        }
    }
}

#[inline(never)]
#[cold]
fn not_taken(i: &u64) {
    black_box(i);
}

fn number(args: &[&str], i: usize, what: &str) -> Result<u64, Error> {
    args.get(i)
        .ok_or_else(|| Error::new(format!("missing {what}")))?
        .parse()
        .map_err(|_| Error::new(format!("{what} must be a whole number")))
}

/// Nanoseconds per call of `f`, run `calls` times.
fn time<F: FnMut(u64)>(calls: u64, f: &mut F) -> f64 {
    let start = Instant::now();
    for i in 0..calls {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

/// Nanoseconds per call of `a` and of `b`: each the best of `samples` samples of `calls` calls,
/// the samples of `a` and `b` taken in turn so that both see the same machine.
fn best_of_pair(
    calls: u64,
    samples: u64,
    mut a: impl FnMut(u64),
    mut b: impl FnMut(u64),
) -> (f64, f64) {
    let (mut best_a, mut best_b) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..samples.max(1) {
        best_a = best_a.min(time(calls, &mut a));
        best_b = best_b.min(time(calls, &mut b));
    }
    (best_a, best_b)
}

impl Plugin for Bench {
    const NAME: &'static str = "bench";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Bench-only plugin for plughost-bench";
    const PROVIDES: &'static [plugin_api::abi::PhInterfaceVersion] =
        &[plugin_api::provides::<dyn PluginCounter>()];

    fn init(host: &Host) -> Result<Self, Error> {
        LOAD_TARGET.store(log::max_level() as usize, Ordering::Relaxed);

        // Bound to the plugin's state (`Host::command`): the path a plugin written as the guide
        // shows takes, which is what `call-host-to-plugin` measures.
        host.command(
            Command::new("bench-noop").about("Counts one call"),
            |me: &Self, (): (), _| {
                let c = &me.calls;
                c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            },
        )?;

        host.command("bench-count", |me: &Self, (): (), out| {
            Ok(writeln!(out, "{}", me.calls.load(Ordering::Relaxed))?)
        })?;

        let h = host.clone();
        host.register_command(
            Command::new("bench-publish").usage("CALLS SAMPLES TOPIC"),
            move |args, out| {
                let calls = number(args, 0, "CALLS")?;
                let samples = number(args, 1, "SAMPLES")?;
                let topic = *args.get(2).ok_or_else(|| Error::new("missing TOPIC"))?;
                let mut failed = None;
                let direct: PublishFn = direct_target;
                let ctx = std::ptr::null_mut();
                let (publish_ns, direct_ns) = best_of_pair(
                    calls,
                    samples,
                    |_| {
                        if let Err(e) = h.publish(black_box(topic), black_box(b"")) {
                            failed = Some(e);
                        }
                    },
                    |_| {
                        // SAFETY: `direct` is `direct_target` (`black_box` returns its
                        // argument), which dereferences none of its arguments, so the NULL
                        // context is never read.
                        let code = unsafe {
                            black_box(direct)(ctx, PhStr::new(black_box(topic)), PhBytes::EMPTY)
                        };
                        black_box(code);
                    },
                );
                if let Some(e) = failed {
                    return Err(e);
                }
                writeln!(out, "publish_ns={publish_ns:.3} direct_ns={direct_ns:.3}")?;
                Ok(())
            },
        )?;

        host.register_command(
            Command::new("bench-log").usage("CALLS SAMPLES"),
            move |args, out| {
                let calls = number(args, 0, "CALLS")? / PER_ITERATION * PER_ITERATION;
                let samples = number(args, 1, "SAMPLES")?;
                let (log_ns, load_ns) =
                    best_of_pair(1, samples, |_| log_loop(calls), |_| load_loop(calls));
                let (log_ns, load_ns) = (log_ns / calls as f64, load_ns / calls as f64);
                writeln!(
                    out,
                    "debug_enabled={} log_ns={log_ns:.3} load_ns={load_ns:.3}",
                    log::log_enabled!(log::Level::Debug)
                )?;
                Ok(())
            },
        )?;
        host.provide::<dyn PluginCounter>(Arc::new(Counter::default()))?;

        let h = host.clone();
        host.register_command(
            Command::new("bench-interface").usage("CALLS SAMPLES"),
            move |args, out| {
                let calls = number(args, 0, "CALLS")?;
                let samples = number(args, 1, "SAMPLES")?;
                let remote = h.query::<dyn HostCounter>()?;
                let local = Counter::default();
                let failed = std::cell::Cell::new(0u64);
                let (interface_ns, direct_ns) = best_of_pair(
                    calls,
                    samples,
                    |_| {
                        if remote.bump(black_box(1)).is_err() {
                            failed.set(failed.get() + 1);
                        }
                    },
                    |_| {
                        if !bump_guarded(&local, black_box(1)) {
                            failed.set(failed.get() + 1);
                        }
                    },
                );
                let (unguarded_ns, _) = best_of_pair(
                    calls,
                    samples / 3 + 1,
                    |_| {
                        if !bump_unguarded(&local, black_box(1)) {
                            failed.set(failed.get() + 1);
                        }
                    },
                    |_| {},
                );
                if failed.get() > 0 {
                    return Err(Error::new(format!("{} failed calls", failed.get())));
                }
                writeln!(
                    out,
                    "interface_ns={interface_ns:.3} direct_ns={direct_ns:.3} unguarded_ns={unguarded_ns:.3} host_counter={}",
                    remote.bump(0)?
                )?;
                Ok(())
            },
        )?;
        Ok(Bench {
            calls: AtomicU64::new(0),
        })
    }
}

plugin_api::export_plugin!(Bench);
