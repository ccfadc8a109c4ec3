//! The wasmtime peer of the `interface-call` figures (cargo feature `wasmtime`): the same
//! trivial function called through wasmtime's typed calls, host to guest and guest to host, and
//! the interface calls measured against them in turn.
//!
//! - `interface-vs-wasm-host-to-guest`: the application's `bump(1)` through the `Remote` of
//!   `bench.plugin-counter` (as `interface-call-host-to-plugin`) against wasmtime's
//!   `TypedFunc::call` of a guest's `bump(1)`. Target: at least 5x cheaper (ratio ≤ 0.2).
//! - `interface-vs-wasm-guest-to-host`: the bench plugin's `bump(1)` through the `Remote` of
//!   `bench.host-counter` (as `interface-call-plugin-to-host`) against a guest calling its
//!   imported host function `bump(1)`, which calls [`Counter::bump`]. Target: no dearer
//!   (ratio ≤ 1).
//!
//! The guest is WAT text compiled when the figure starts (wasmtime's `wat` feature), so no
//! wasm toolchain is needed. Its `bump` is the trivial function in wasm: a load and store of a
//! counter (a mutable global) returning the new value. Its `call_host(n)` calls the host's
//! `bump(1)` `n` times in a loop; the figure is the time of one call divided by `n`.

use std::hint::black_box;
use std::sync::Arc;

use bench_api::{Counter, PluginCounter};
use plughost::PluginHost;
use wasmtime::{Engine, Instance, Linker, Module, Store, TypedFunc};

use crate::calls::{field, run};
use crate::report::{Figure, Target};
use crate::Settings;

/// The wasmtime release of this bench (`benches/Cargo.toml`).
const WASMTIME: &str = "29.0";

/// The guest: `bump` (the trivial function) and `call_host` (a loop of calls to the host's).
const GUEST: &str = r#"
(module
  (import "host" "bump" (func $host_bump (param i64) (result i64)))
  (global $counter (mut i64) (i64.const 0))
  (func (export "bump") (param $by i64) (result i64)
    (global.set $counter (i64.add (global.get $counter) (local.get $by)))
    (global.get $counter))
  (func (export "call_host") (param $n i64) (result i64)
    (local $last i64)
    (block $done
      (loop $next
        (br_if $done (i64.eqz (local.get $n)))
        (local.set $last (call $host_bump (i64.const 1)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $next)))
    (local.get $last)))
"#;

/// A guest instance with its store and typed functions.
struct Guest {
    store: Store<()>,
    bump: TypedFunc<i64, i64>,
    call_host: TypedFunc<i64, i64>,
}

/// Compiles the guest and instantiates it with the host function `bump`, which calls
/// `counter`'s [`Counter::bump`].
fn guest(counter: &Arc<Counter>) -> Result<Guest, String> {
    let fail = |e: wasmtime::Error| format!("wasmtime: {e:#}");
    let engine = Engine::default();
    let module = Module::new(&engine, GUEST).map_err(fail)?;
    let mut linker = Linker::new(&engine);
    let host_counter = Arc::clone(counter);
    linker
        .func_wrap("host", "bump", move |by: i64| -> i64 {
            match host_counter.bump(by as u64) {
                Ok(value) => value as i64,
                Err(_) => -1,
            }
        })
        .map_err(fail)?;
    let mut store = Store::new(&engine, ());
    let instance: Instance = linker.instantiate(&mut store, &module).map_err(fail)?;
    let bump = instance
        .get_typed_func::<i64, i64>(&mut store, "bump")
        .map_err(fail)?;
    let call_host = instance
        .get_typed_func::<i64, i64>(&mut store, "call_host")
        .map_err(fail)?;
    Ok(Guest {
        store,
        bump,
        call_host,
    })
}

/// `interface-vs-wasm-host-to-guest`: the interface call from the application into the bench
/// plugin against wasmtime's typed call into the guest, sampled in turn.
pub fn host_to_guest(host: &PluginHost, settings: &Settings) -> Result<Figure, String> {
    let iters = settings.scale(2_000_000);
    let samples = settings.samples(15, 30);
    let counter = Arc::new(Counter::default());
    let mut guest = guest(&counter)?;
    let remote = host
        .interface::<dyn PluginCounter>()
        .map_err(|e| e.to_string())?;
    let failures = std::cell::Cell::new(0u64);
    let (interface_ns, wasm_ns) = crate::measure::best_pair(
        iters,
        samples,
        || {
            if remote.bump(black_box(1)).is_err() {
                failures.set(failures.get() + 1);
            }
        },
        || {
            if guest.bump.call(&mut guest.store, black_box(1)).is_err() {
                failures.set(failures.get() + 1);
            }
        },
    );
    let guest_counter = guest
        .bump
        .call(&mut guest.store, 0)
        .map_err(|e| format!("wasmtime: {e:#}"))?;
    if failures.get() > 0 || guest_counter <= 0 {
        return Err(format!(
            "interface-vs-wasm-host-to-guest: {} failed calls, guest counter {guest_counter}",
            failures.get()
        ));
    }
    Ok(Figure {
        name: "interface-vs-wasm-host-to-guest",
        value: interface_ns,
        unit: "ns",
        ratio: interface_ns / wasm_ns,
        target: Target::RatioAtMost(0.2),
        bound: None,
        details: format!(
            "wasmtime {WASMTIME} TypedFunc::call host->guest {wasm_ns:.2} ns; interface call host->plugin {interface_ns:.2} ns; best of {samples}x{iters}"
        ),
    })
}

/// `interface-vs-wasm-guest-to-host`: the interface call from the bench plugin into the
/// application (its `bench-interface` command) against the guest's calls of its imported host
/// function, sampled in turn.
pub fn guest_to_host(
    host: &PluginHost,
    host_counter: &Counter,
    settings: &Settings,
) -> Result<Figure, String> {
    let iters = settings.scale(2_000_000);
    let samples = settings.samples(15, 30);
    let counter = Arc::new(Counter::default());
    let mut guest = guest(&counter)?;
    let mut wasm_sample = || -> Result<f64, String> {
        let start = std::time::Instant::now();
        let last = guest
            .call_host
            .call(&mut guest.store, black_box(iters as i64))
            .map_err(|e| format!("wasmtime: {e:#}"))?;
        let ns = start.elapsed().as_nanos() as f64 / iters as f64;
        if last <= 0 {
            return Err(format!("the host function returned {last}"));
        }
        Ok(ns)
    };
    wasm_sample()?;
    // The plugin's side times its own samples (best of `rounds`); each round here runs a few of
    // them, then as many wasm samples, so that both see the same machine.
    let rounds = 5;
    let per_round = (samples / rounds).max(1);
    let before = host_counter.get();
    let (mut interface_ns, mut wasm_ns) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..rounds {
        let out = run(
            host,
            "bench-interface",
            &[&iters.to_string(), &per_round.to_string()],
        )?;
        interface_ns = interface_ns.min(field(&out, "interface_ns")?);
        for _ in 0..per_round {
            wasm_ns = wasm_ns.min(wasm_sample()?);
        }
    }
    if host_counter.get() <= before || counter.get() == 0 {
        return Err("interface-vs-wasm-guest-to-host: a counter did not move".into());
    }
    Ok(Figure {
        name: "interface-vs-wasm-guest-to-host",
        value: interface_ns,
        unit: "ns",
        ratio: interface_ns / wasm_ns,
        target: Target::RatioAtMost(1.0),
        bound: None,
        details: format!(
            "wasmtime {WASMTIME} guest->host call {wasm_ns:.2} ns; interface call plugin->host {interface_ns:.2} ns; best of {}x{iters}",
            rounds * per_round
        ),
    })
}
