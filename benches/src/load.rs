//! `load-100`: discover, open, check and init 100 C plugin libraries with distinct names,
//! against opening the same files with plain `dlopen`. Each side runs in a fresh process (the
//! dynamic loader caches a library that is already open) and times itself.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use plughost::PluginHost;

use crate::report::{Figure, Target};
use crate::Settings;

/// How many libraries are loaded.
pub const COUNT: usize = 100;

/// The plugin names of the libraries.
pub fn names() -> Vec<String> {
    (0..COUNT).map(|i| format!("load{i:03}")).collect()
}

/// In a child process: loads every plugin in `dir` through the host; prints the nanoseconds.
pub fn child_host(dir: &Path) -> Result<(), String> {
    let start = Instant::now();
    let mut host = PluginHost::new();
    host.load_dir(dir).map_err(|e| e.to_string())?;
    let elapsed = start.elapsed();
    if let Some(refused) = host.refused().first() {
        return Err(format!("refused: {refused}"));
    }
    let loaded = host.commands().len();
    if loaded != COUNT {
        return Err(format!("{loaded} plugins' commands, expected {COUNT}"));
    }
    println!("{}", elapsed.as_nanos());
    // Leave without shutting the plugins down: not part of the figure.
    std::process::exit(0)
}

/// In a child process: `dlopen`s every library in `dir` (listed before the clock starts) with
/// the host's flags, `RTLD_NOW | RTLD_LOCAL`; prints the nanoseconds.
pub fn child_dlopen(dir: &Path) -> Result<(), String> {
    let paths: Vec<CString> = plughost::discover(dir)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|p| CString::new(p.as_os_str().as_bytes()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    for path in &paths {
        // SAFETY: `path` is a NUL-terminated `CString` that outlives the call, and the library is
        // one of the bench's own C plugins: opening it runs none of its plugin code (it
        // defines no initialisers). The handle is never closed or used, so nothing can dangle.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("dlopen {path:?} failed"));
        }
    }
    let elapsed = start.elapsed();
    if paths.len() != COUNT {
        return Err(format!("{} libraries, expected {COUNT}", paths.len()));
    }
    println!("{}", elapsed.as_nanos());
    std::process::exit(0)
}

/// Runs this binary as `--child KIND DIR` and returns the nanoseconds it printed.
fn run_child(kind: &str, dir: &Path) -> Result<f64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .arg("--child")
        .arg(kind)
        .arg(dir)
        .output()
        .map_err(|e| format!("running the {kind} child: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{kind} child failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("{kind} child printed no number: {e}"))
}

/// The figure, with the plugins in `dir`.
pub fn figure(dir: &Path, settings: &Settings) -> Result<Figure, String> {
    let samples = settings.samples(11, 21);
    let (mut host_ns, mut dlopen_ns) = (f64::INFINITY, f64::INFINITY);
    // A first run of each, not counted, so that both find the files in the page cache.
    run_child("load-host", dir)?;
    run_child("load-dlopen", dir)?;
    for _ in 0..samples {
        host_ns = host_ns.min(run_child("load-host", dir)?);
        dlopen_ns = dlopen_ns.min(run_child("load-dlopen", dir)?);
    }
    let ms = |ns: f64| ns / 1e6;
    Ok(Figure {
        name: "load-100",
        value: ms(host_ns),
        unit: "ms",
        ratio: host_ns / dlopen_ns,
        target: Target::RatioAtMost(1.3),
        bound: None,
        details: format!(
            "plain dlopen {:.2} ms; {:.1} us per plugin; best of {samples} fresh processes each",
            ms(dlopen_ns),
            host_ns / 1e3 / COUNT as f64
        ),
    })
}
