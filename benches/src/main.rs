//! `plughost-bench`: the cost of crossing the plugin boundary, each figure measured against its
//! limit in the same run.
//!
//! Prints one line per figure, `NAME value unit ratio=R target=T PASS|MISS (details)`, on
//! standard output; progress and the machine's state go to standard error. See `BENCHMARKS.md`
//! at the workspace root for what each figure measures and the recorded results.
//!
//! ```sh
//! cargo run --release -p plughost-bench              # every figure, wordfreq on 1 GiB
//! cargo run --release -p plughost-bench -- --quick   # under a minute, wordfreq on 64 MiB
//! cargo run --release -p plughost-bench -- event-fanout load-100   # some figures only
//! cargo run --release -p plughost-bench --features wasmtime -- interface-vs-wasm-host-to-guest
//! ```
//!
//! The `interface-vs-wasm-*` figures (wasmtime's typed calls) need the cargo feature `wasmtime`,
//! which the default build leaves out (wasmtime takes minutes to build).
//!
//! Every figure is the best of several samples, taken in turn with its limit (see
//! [`measure`]). It builds what it runs first: the `plughost` binary, the host's C library,
//! `wordfreq` and the Rust bench plugin with cargo, the C bench plugins with gcc.

mod calls;
mod embed;
mod fanout;
mod isolated;
mod load;
mod measure;
mod reload;
mod report;
mod setup;
#[cfg(feature = "wasmtime")]
mod wasm;
mod wordfreq;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use bench_api::{Counter, HostCounter};
use clap::Parser;
use plughost::PluginHost;

use crate::report::Figure;
use crate::setup::Paths;

/// The figures, in the order they run.
const FIGURES: &[&str] = &[
    "call-host-to-plugin",
    "call-plugin-to-host",
    "log-filtered",
    "embed-call",
    "interface-call-host-to-plugin",
    "interface-call-plugin-to-host",
    "interface-vs-wasm-host-to-guest",
    "interface-vs-wasm-guest-to-host",
    "event-fanout",
    "event-fanout-2-threads",
    "load-100",
    "reload",
    "reload-rss-100",
    "wordfreq",
    "isolated-call",
    "wordfreq-isolated",
];

/// Measures the cost of crossing the plugin boundary against its limits.
#[derive(Parser)]
#[command(about, long_about = None)]
struct Cli {
    /// Fewer samples and a 64 MiB wordfreq input: finishes in under a minute.
    #[arg(long)]
    quick: bool,

    /// The size of the wordfreq input in MiB [default: 1024, or 64 with --quick].
    #[arg(long, value_name = "MIB")]
    wordfreq_mib: Option<u64>,

    /// Do not run `cargo build` for the plugins and the `plughost` binary first.
    #[arg(long)]
    no_build: bool,

    /// Only these figures (default: all).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(FIGURES))]
    figures: Vec<String>,

    /// Internal: run one side of `load-100` in this fresh process.
    #[arg(long, hide = true, num_args = 2, value_names = ["KIND", "DIR"])]
    child: Option<Vec<String>>,
}

/// How long and on what the figures run.
pub struct Settings {
    /// `--quick`.
    pub quick: bool,
    /// The wordfreq input size, in MiB.
    pub wordfreq_mib: u64,
}

impl Settings {
    /// `n` iterations, halved in quick mode.
    pub fn scale(&self, n: u64) -> u64 {
        if self.quick {
            n / 2
        } else {
            n
        }
    }

    /// `quick` samples in quick mode, else `full`.
    pub fn samples(&self, quick: u32, full: u32) -> u32 {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

/// The host's logger: shows warnings and errors; the host's level is `info`, so plugins filter
/// out `debug` and `trace` on their side.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{} {}: {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: StderrLogger = StderrLogger;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.child {
        Some(child) => run_child(child),
        None => run(&cli),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("plughost-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_child(args: &[String]) -> Result<ExitCode, String> {
    let [kind, dir] = args else {
        return Err("--child KIND DIR".into());
    };
    let dir = PathBuf::from(dir);
    match kind.as_str() {
        "load-host" => load::child_host(&dir)?,
        "load-dlopen" => load::child_dlopen(&dir)?,
        "reload-rss" => reload::child_reloads(&dir)?,
        "dlopen-rss" => reload::child_dlopens(&dir)?,
        "pingpong" => isolated::child_pingpong()?,
        _ => return Err(format!("unknown child {kind}")),
    }
    Ok(ExitCode::SUCCESS)
}

/// The 1-minute load average and the core count, for the record.
fn machine_state() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cores} cores, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn run(cli: &Cli) -> Result<ExitCode, String> {
    log::set_logger(&LOGGER).map_err(|e| e.to_string())?;
    log::set_max_level(log::LevelFilter::Info);
    let settings = Settings {
        quick: cli.quick,
        wordfreq_mib: cli
            .wordfreq_mib
            .unwrap_or(if cli.quick { 64 } else { 1024 }),
    };
    let wanted = |name: &str| cli.figures.is_empty() || cli.figures.iter().any(|f| f == name);
    let started = std::time::Instant::now();
    eprintln!(
        "# plughost-bench{}: {}",
        if cli.quick { " --quick" } else { "" },
        machine_state()
    );

    let paths = Paths::new()?;
    if !cli.no_build {
        setup::build_rust(&paths)?;
    }
    let fanout_dir = setup::c_plugins(&paths, "fanout", &fanout::names(), fanout::PER_PLUGIN)?;

    let mut figures: Vec<Figure> = Vec::new();
    let mut report = |figure: Figure| {
        println!("{figure}");
        let _ = std::io::stdout().flush();
        figures.push(figure);
    };

    if FIGURES[..8].iter().any(|f| wanted(f)) {
        // The bench plugin, next to the fanout plugins, so that the host's maps are not empty.
        let mut host = PluginHost::new();
        // What the bench plugin calls in interface-call-plugin-to-host.
        let counter = Arc::new(Counter::default());
        host.provide::<dyn HostCounter>(Arc::clone(&counter))
            .map_err(|e| e.to_string())?;
        host.load_dir(&fanout_dir).map_err(|e| e.to_string())?;
        host.load(&paths.bench_plugin())
            .map_err(|e| e.to_string())?;
        if wanted("call-host-to-plugin") {
            report(calls::host_to_plugin(&host, &settings)?);
        }
        if wanted("call-plugin-to-host") {
            report(calls::plugin_to_host(&host, &settings)?);
        }
        if wanted("log-filtered") {
            report(calls::log_filtered(&host, &settings)?);
        }
        if wanted("interface-call-host-to-plugin") {
            report(calls::interface_host_to_plugin(&host, &settings)?);
        }
        if wanted("interface-call-plugin-to-host") {
            report(calls::interface_plugin_to_host(&host, &counter, &settings)?);
        }
        let wasm = [
            "interface-vs-wasm-host-to-guest",
            "interface-vs-wasm-guest-to-host",
        ];
        #[cfg(feature = "wasmtime")]
        {
            if wanted(wasm[0]) {
                report(wasm::host_to_guest(&host, &settings)?);
            }
            if wanted(wasm[1]) {
                report(wasm::guest_to_host(&host, &counter, &settings)?);
            }
        }
        #[cfg(not(feature = "wasmtime"))]
        if !cli.figures.is_empty() && wasm.iter().any(|f| wanted(f)) {
            eprintln!(
                "# {}: built without the feature `wasmtime` (--features wasmtime)",
                wasm.join(", ")
            );
        }
    }
    if wanted("embed-call") {
        report(embed::figure(&paths, &settings)?);
    }
    if wanted("event-fanout") || wanted("event-fanout-2-threads") {
        for figure in fanout::figures(&fanout_dir, &settings)? {
            if wanted(figure.name) {
                report(figure);
            }
        }
    }
    if wanted("load-100") {
        let dir = setup::c_plugins(&paths, "load", &load::names(), 0)?;
        report(load::figure(&dir, &settings)?);
    }
    if wanted("reload") {
        report(reload::reload_figure(&paths, &settings)?);
    }
    if wanted("reload-rss-100") {
        report(reload::rss_figure(&paths)?);
    }
    if wanted("wordfreq") {
        for figure in wordfreq::figures(&paths, &settings)? {
            report(figure);
        }
    }
    if wanted("isolated-call") {
        report(isolated::call_figure(&paths, &settings)?);
    }
    if wanted("wordfreq-isolated") {
        report(isolated::wordfreq_figure(&paths, &settings)?);
    }

    let missed = figures.iter().filter(|f| !f.passes()).count();
    eprintln!(
        "# {} of {} figures meet their targets; {:.1} s; {}",
        figures.len() - missed,
        figures.len(),
        started.elapsed().as_secs_f64(),
        machine_state()
    );
    Ok(ExitCode::SUCCESS)
}
