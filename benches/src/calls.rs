//! `call-host-to-plugin`, `call-plugin-to-host`, `log-filtered` and the two `interface-call`
//! figures: single calls across the boundary, each against the cheapest thing that does the same
//! work without crossing it.

use std::ffi::c_void;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bench_api::{bump_guarded, bump_unguarded, Counter, PluginCounter};
use plughost::PluginHost;
use plugin_api::abi::{
    PhBytes, PhCommandCallback, PhCommandOutput, PhResult, PhResultCode, PhSetErrorFn, PhStr,
    PhWriteFn,
};

use crate::report::{Figure, Target};
use crate::Settings;

/// The baseline of `call-host-to-plugin`: a function of this binary with the signature of a
/// command callback, doing what the bench plugin's `bench-noop` does (one relaxed load and store
/// of a counter).
///
/// # Safety
///
/// `user_data` must point to an `AtomicU64` that stays alive for the call; the other arguments
/// are not read.
#[inline(never)]
unsafe extern "C" fn baseline_command(
    user_data: *mut c_void,
    _args: *const PhStr,
    _arg_count: usize,
    _output: *const PhCommandOutput,
) -> PhResultCode {
    // SAFETY: the caller guarantees `user_data` points to a live `AtomicU64`; a shared reference
    // is enough, since it is only accessed atomically.
    let counter = unsafe { &*user_data.cast::<AtomicU64>() };
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    PhResult::Ok.code()
}

/// [`baseline_command`] inside a panic guard, as the safe layer's trampoline has one: what the
/// guard alone costs (the floor of `call-host-to-plugin`, with no host logic at all).
///
/// # Safety
///
/// As for [`baseline_command`]: `user_data` must point to an `AtomicU64` that stays alive for
/// the call.
#[inline(never)]
unsafe extern "C" fn guarded_baseline_command(
    user_data: *mut c_void,
    args: *const PhStr,
    arg_count: usize,
    output: *const PhCommandOutput,
) -> PhResultCode {
    std::panic::catch_unwind(|| {
        // SAFETY: the arguments are our caller's, unchanged, and our contract is the one of
        // `baseline_command`: `user_data` points to a live `AtomicU64`.
        unsafe { baseline_command(user_data, args, arg_count, output) }
    })
    .unwrap_or(PhResult::Panicked.code())
}

/// The output's `write` of the direct calls: discards the bytes.
///
/// # Safety
///
/// None: it reads none of its arguments (`unsafe` only because [`PhWriteFn`] is).
unsafe extern "C" fn ignore_write(_context: *mut c_void, _bytes: PhBytes) -> PhResultCode {
    PhResult::Ok.code()
}

/// The output's `set_error` of the direct calls: discards the message.
///
/// # Safety
///
/// None: it reads none of its arguments (`unsafe` only because [`PhSetErrorFn`] is).
unsafe extern "C" fn ignore_error(_context: *mut c_void, _message: PhStr) {}

/// Runs `command` with `args` and returns its output.
pub(crate) fn run(host: &PluginHost, command: &str, args: &[&str]) -> Result<String, String> {
    let mut out = Vec::new();
    host.run_command(command, args, &mut out)
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// The number after `key=` in `text`.
pub(crate) fn field(text: &str, key: &str) -> Result<f64, String> {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .ok_or_else(|| format!("no {key}= in {text:?}"))?
        .parse()
        .map_err(|e| format!("{key} in {text:?}: {e}"))
}

/// `call-host-to-plugin`: [`plughost::CommandHandle::run`] of a trivial command (through the
/// safe layer's trampoline and panic guard) against a direct call of
/// [`guarded_baseline_command`], the same work inside a panic guard.
pub fn host_to_plugin(host: &PluginHost, settings: &Settings) -> Result<Figure, String> {
    let iters = settings.scale(2_000_000);
    let samples = settings.samples(15, 30);
    let command = host.command("bench-noop").map_err(|e| e.to_string())?;
    let before: u64 = run(host, "bench-count", &[])?
        .trim()
        .parse()
        .map_err(|e| format!("bench-count: {e}"))?;

    let no_args: [&str; 0] = [];
    let mut sink = std::io::sink();
    let failures = std::cell::Cell::new(0u64);
    let counter = AtomicU64::new(0);
    let output = PhCommandOutput {
        struct_size: std::mem::size_of::<PhCommandOutput>() as u32,
        context: std::ptr::null_mut(),
        write: PhWriteFn(ignore_write),
        set_error: PhSetErrorFn(ignore_error),
    };
    let guarded = PhCommandCallback(guarded_baseline_command);
    let user_data = (&counter as *const AtomicU64).cast_mut().cast::<c_void>();
    // The limit is the direct call inside a panic guard (issue #15's words): no call that must
    // not unwind across the boundary can cost less.
    let (host_ns, guarded_ns) = crate::measure::best_pair(
        iters,
        samples,
        || {
            if command.run(black_box(&no_args), &mut sink).is_err() {
                failures.set(failures.get() + 1);
            }
        },
        || {
            // SAFETY: `guarded` is `guarded_baseline_command` (`black_box` returns its
            // argument), whose only requirement is that of `baseline_command`: `user_data`
            // points to `counter`, an `AtomicU64` alive until this function returns, after the
            // measurement.
            let code = unsafe {
                (black_box(guarded).0)(user_data, std::ptr::null(), 0, black_box(&output))
            };
            if code != PhResult::Ok.code() {
                failures.set(failures.get() + 1);
            }
        },
    );
    // For the record: the same call without the guard, and the same command by name, with a
    // lookup per call.
    let baseline = PhCommandCallback(baseline_command);
    let (direct_ns, _) = crate::measure::best_pair(
        iters,
        samples / 3 + 1,
        || {
            // SAFETY: `baseline` is `baseline_command`, which reads only `user_data`: a pointer
            // to `counter`, alive until this function returns.
            let code = unsafe {
                (black_box(baseline).0)(user_data, std::ptr::null(), 0, black_box(&output))
            };
            if code != PhResult::Ok.code() {
                failures.set(failures.get() + 1);
            }
        },
        || {},
    );
    let by_name_ns = crate::measure::best_of(samples / 3 + 1, || {
        crate::measure::ns_per_iter(iters / 4, &mut || {
            if host.run_command("bench-noop", &no_args, &mut sink).is_err() {
                failures.set(failures.get() + 1);
            }
        })
    });
    let after: u64 = run(host, "bench-count", &[])?
        .trim()
        .parse()
        .map_err(|e| format!("bench-count: {e}"))?;
    if failures.get() > 0 || after <= before || counter.load(Ordering::Relaxed) == 0 {
        return Err(format!(
            "call-host-to-plugin: {} failed calls, counter {before} -> {after}",
            failures.get()
        ));
    }
    Ok(Figure {
        name: "call-host-to-plugin",
        value: host_ns,
        unit: "ns",
        ratio: host_ns / guarded_ns,
        target: Target::RatioAtMost(1.5),
        bound: None,
        details: format!(
            "direct call in a panic guard {guarded_ns:.2} ns; without the guard {direct_ns:.2} ns; run_command by name {by_name_ns:.2} ns; best of {samples}x{iters}"
        ),
    })
}

/// `call-plugin-to-host`: the bench plugin times `Host::publish` to a topic without subscribers
/// against a direct call through a function pointer of its own library. Target: at most 10 ns
/// (issue #15), whatever the ratio: the limit does no work at all, and the publish checks its
/// topic, hashes it and consults the topic filter.
///
/// The details also give the same publish while the application subscribes a no-op closure to
/// `*`: each publish then delivers to it, but still need not search the topics (a subscriber of
/// `*` does not switch off the topic filter for the others).
pub fn plugin_to_host(host: &PluginHost, settings: &Settings) -> Result<Figure, String> {
    let iters = settings.scale(1_000_000);
    let samples = settings.samples(15, 30);
    let publish = |iters: u64, samples: u32| {
        let out = run(
            host,
            "bench-publish",
            &[
                &iters.to_string(),
                &samples.to_string(),
                "bench.nobody.listens",
            ],
        )?;
        Ok::<_, String>((field(&out, "publish_ns")?, field(&out, "direct_ns")?))
    };
    let (publish_ns, direct_ns) = publish(iters, samples)?;

    let delivered = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&delivered);
    let wildcard = host
        .subscribe(plughost::ALL_TOPICS, move |_, _| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .map_err(|e| e.to_string())?;
    let with_wildcard = publish(iters / 2, samples / 3 + 1);
    host.unregister(wildcard).map_err(|e| e.to_string())?;
    let (wildcard_ns, _) = with_wildcard?;
    if delivered.load(Ordering::Relaxed) == 0 {
        return Err("call-plugin-to-host: the subscriber of `*` received nothing".into());
    }
    Ok(Figure {
        name: "call-plugin-to-host",
        value: publish_ns,
        unit: "ns",
        ratio: publish_ns / direct_ns,
        target: Target::ValueAtMost(10.0),
        bound: None,
        details: format!(
            "direct call {direct_ns:.2} ns; with a no-op subscriber of `*` {wildcard_ns:.2} ns; best of {samples}x{iters}"
        ),
    })
}

/// `log-filtered`: the bench plugin times `log::debug!` (filtered out: the host is at `info`)
/// against a relaxed atomic load.
pub fn log_filtered(host: &PluginHost, settings: &Settings) -> Result<Figure, String> {
    let iters = settings.scale(5_000_000);
    let samples = settings.samples(15, 30);
    let out = run(
        host,
        "bench-log",
        &[&iters.to_string(), &samples.to_string()],
    )?;
    if !out.contains("debug_enabled=false") {
        return Err(format!(
            "log-filtered: debug records are not filtered out: {out:?}"
        ));
    }
    let log_ns = field(&out, "log_ns")?;
    let load_ns = field(&out, "load_ns")?;
    Ok(Figure {
        name: "log-filtered",
        value: log_ns,
        unit: "ns",
        ratio: log_ns / load_ns,
        target: Target::RatioAtMost(2.0),
        bound: None,
        details: format!("relaxed atomic load {load_ns:.2} ns; best of {samples}x{iters}"),
    })
}

/// `interface-call-host-to-plugin`: the application calls `bump(1)` of `bench.plugin-counter`,
/// which the bench plugin provides, through the [`plugin_api::Remote`] of
/// [`PluginHost::interface`], against the same function ([`Counter::bump`], compiled into this
/// binary) called directly inside a panic guard.
pub fn interface_host_to_plugin(host: &PluginHost, settings: &Settings) -> Result<Figure, String> {
    let iters = settings.scale(4_000_000);
    let samples = settings.samples(15, 30);
    let remote = host
        .interface::<dyn PluginCounter>()
        .map_err(|e| e.to_string())?;
    let before = remote.bump(0).map_err(|e| e.to_string())?;
    let local = Counter::default();
    let failures = std::cell::Cell::new(0u64);
    let (interface_ns, direct_ns) = crate::measure::best_pair(
        iters,
        samples,
        || {
            if remote.bump(black_box(1)).is_err() {
                failures.set(failures.get() + 1);
            }
        },
        || {
            if !bump_guarded(&local, black_box(1)) {
                failures.set(failures.get() + 1);
            }
        },
    );
    let (unguarded_ns, _) = crate::measure::best_pair(
        iters,
        samples / 3 + 1,
        || {
            if !bump_unguarded(&local, black_box(1)) {
                failures.set(failures.get() + 1);
            }
        },
        || {},
    );
    let after = remote.bump(0).map_err(|e| e.to_string())?;
    if failures.get() > 0 || after <= before || local.get() == 0 {
        return Err(format!(
            "interface-call-host-to-plugin: {} failed calls, counter {before} -> {after}",
            failures.get()
        ));
    }
    Ok(Figure {
        name: "interface-call-host-to-plugin",
        value: interface_ns,
        unit: "ns",
        ratio: interface_ns / direct_ns,
        target: Target::RatioAtMost(1.2),
        bound: None,
        details: format!(
            "direct call in a panic guard {direct_ns:.2} ns; inlinable direct call, guard optimised away, {unguarded_ns:.2} ns; best of {samples}x{iters}"
        ),
    })
}

/// `interface-call-plugin-to-host`: the bench plugin calls `bump(1)` of `bench.host-counter`,
/// which this application provides with [`PluginHost::provide`], against the same function
/// compiled into the plugin, called directly inside a panic guard (`bench-interface`).
pub fn interface_plugin_to_host(
    host: &PluginHost,
    counter: &Counter,
    settings: &Settings,
) -> Result<Figure, String> {
    let iters = settings.scale(4_000_000);
    let samples = settings.samples(15, 30);
    let before = counter.get();
    let out = run(
        host,
        "bench-interface",
        &[&iters.to_string(), &samples.to_string()],
    )?;
    let interface_ns = field(&out, "interface_ns")?;
    let direct_ns = field(&out, "direct_ns")?;
    let unguarded_ns = field(&out, "unguarded_ns")?;
    if counter.get() <= before {
        return Err(format!(
            "interface-call-plugin-to-host: the application's counter did not move: {out:?}"
        ));
    }
    Ok(Figure {
        name: "interface-call-plugin-to-host",
        value: interface_ns,
        unit: "ns",
        ratio: interface_ns / direct_ns,
        target: Target::RatioAtMost(1.2),
        bound: None,
        details: format!(
            "direct call in a panic guard {direct_ns:.2} ns; inlinable direct call, guard optimised away, {unguarded_ns:.2} ns; best of {samples}x{iters}"
        ),
    })
}
