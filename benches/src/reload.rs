//! `reload` and `reload-rss-100`: hot reload of the `journal` example plugin (a release build of a
//! plugin written with the safe layer, `libjournal.so`). Not the bench plugin: it provides
//! interfaces, and reloading a provider of interfaces is not supported yet.
//!
//! - `reload`: from the moment a new build has been renamed over the plugin's file (as cargo puts
//!   a build in place) to the new version having served its first command: [`PluginHost::reload`]
//!   (a private copy of the file, every check, `init`, the swap, two grace periods and the old
//!   version's `shutdown`) and one command. Its limit: copying the new build aside and loading
//!   the copy into a host for the first time (checks, `dlopen`, `init`), then one command; that
//!   is the reload without its staging, swap, grace periods and shutdown. The details give the
//!   first load alone, without the copy.
//! - `reload-rss-100`: what 100 reloads of the same plugin add to the resident memory of the
//!   process (libraries are never unloaded), against what `dlopen` of 100 copies of the library
//!   adds (the dynamic loader's own cost for a library that stays mapped). Each side runs in a
//!   fresh process. The details also give the descriptors the process holds (none more after the
//!   reloads) and the disk its copies hold.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use plughost::PluginHost;

use crate::report::{Figure, Target};
use crate::setup::Paths;
use crate::Settings;

/// The plugin's name and its cheapest command (with no event seen, it prints nothing).
const PLUGIN: &str = "journal";
const COMMAND: &str = "journal";

/// Reloads (and `dlopen`s) of `reload-rss-100`.
pub const RSS_RELOADS: usize = 100;

/// The library file name of the plugin.
fn library_name() -> String {
    format!(
        "{}journal{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// Copies `from` to `to` as a new file (a new inode, so that the dynamic loader sees a new
/// library).
fn fresh_copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

/// Runs `command` of `host` once, into nothing.
fn serve(host: &PluginHost) -> Result<(), String> {
    host.run_command(COMMAND, &[] as &[&str], &mut std::io::sink())
        .map_err(|e| e.to_string())
}

/// The `reload` figure.
pub fn reload_figure(paths: &Paths, settings: &Settings) -> Result<Figure, String> {
    let samples = settings.samples(15, 30) as usize;
    let built = paths.rust_plugin("journal");
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let plugins = work.path().join("plugins");
    let incoming = work.path().join("incoming");
    let fresh = work.path().join("fresh");
    for dir in [&plugins, &incoming, &fresh] {
        std::fs::create_dir(dir).map_err(|e| e.to_string())?;
    }
    let file = plugins.join(library_name());
    fresh_copy(&built, &file)?;
    // New builds, prepared before the clock starts: distinct files for each sample of each side.
    let mut builds = Vec::new();
    let mut firsts = Vec::new();
    for i in 0..=samples {
        let build = incoming.join(format!("build-{i}"));
        fresh_copy(&built, &build)?;
        builds.push(build);
        let folder = fresh.join(i.to_string());
        std::fs::create_dir(&folder).map_err(|e| e.to_string())?;
        let first = folder.join(library_name());
        fresh_copy(&built, &first)?;
        firsts.push(first);
    }
    let mut host = PluginHost::new();
    host.load(&file).map_err(|e| e.to_string())?;
    serve(&host)?;

    let (mut reload_ns, mut limit_ns, mut load_ns) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for (i, (build, first)) in builds.iter().zip(&firsts).enumerate() {
        // The file changes...
        std::fs::rename(build, &file).map_err(|e| e.to_string())?;
        // ... and from then on.
        let start = Instant::now();
        host.reload(PLUGIN).map_err(|e| e.to_string())?;
        serve(&host)?;
        let took = start.elapsed().as_nanos() as f64;

        // The limit: the new build copied aside and loaded for the first time.
        let aside = fresh.join(format!("aside-{i}"));
        std::fs::create_dir(&aside).map_err(|e| e.to_string())?;
        let mut fresh_host = PluginHost::new();
        let start = Instant::now();
        std::fs::copy(&file, aside.join(library_name())).map_err(|e| e.to_string())?;
        fresh_host
            .load(&aside.join(library_name()))
            .map_err(|e| e.to_string())?;
        serve(&fresh_host)?;
        let limit_took = start.elapsed().as_nanos() as f64;
        drop(fresh_host);

        // For the record: the first load alone.
        let mut fresh_host = PluginHost::new();
        let start = Instant::now();
        fresh_host.load(first).map_err(|e| e.to_string())?;
        serve(&fresh_host)?;
        let first_took = start.elapsed().as_nanos() as f64;
        drop(fresh_host);
        // The first sample of each warms the caches; not counted.
        if i > 0 {
            reload_ns = reload_ns.min(took);
            limit_ns = limit_ns.min(limit_took);
            load_ns = load_ns.min(first_took);
        }
    }
    let size = std::fs::metadata(&built).map_err(|e| e.to_string())?.len();
    let ms = |ns: f64| ns / 1e6;
    Ok(Figure {
        name: "reload",
        value: ms(reload_ns),
        unit: "ms",
        ratio: reload_ns / limit_ns,
        target: Target::RatioAtMost(1.5),
        bound: None,
        details: format!(
            "copy aside, first load and one command {:.2} ms; first load and one command alone {:.2} ms; a {:.1} MB library; best of {samples} each; `plughost shell --watch` waits {} ms of quiet first",
            ms(limit_ns),
            ms(load_ns),
            size as f64 / 1e6,
            300
        ),
    })
}

/// This process's resident memory: (anonymous, file-backed), in KiB, from `/proc/self/status`.
fn resident() -> Result<(u64, u64), String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
    let field = |name: &str| -> Result<u64, String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/self/status"))
    };
    Ok((field("RssAnon:")?, field("RssFile:")?))
}

/// The number of open descriptors of this process.
fn descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// In a child process: loads the plugin from `dir`, reloads it once (not counted), then
/// [`RSS_RELOADS`] times, each followed by a command; prints the growth of the resident memory
/// (anonymous and file-backed KiB) and of the open descriptors.
pub fn child_reloads(dir: &Path) -> Result<(), String> {
    let mut host = PluginHost::new();
    host.load(&dir.join(library_name()))
        .map_err(|e| e.to_string())?;
    host.reload(PLUGIN).map_err(|e| e.to_string())?;
    serve(&host)?;
    let (anon, file) = resident()?;
    let fds = descriptors();
    for _ in 0..RSS_RELOADS {
        host.reload(PLUGIN).map_err(|e| e.to_string())?;
        serve(&host)?;
    }
    let (anon_after, file_after) = resident()?;
    let fds_after = descriptors();
    println!(
        "{} {} {}",
        anon_after.saturating_sub(anon),
        file_after.saturating_sub(file),
        fds_after as i64 - fds as i64
    );
    // The host's copies go with it.
    drop(host);
    std::process::exit(0)
}

/// In a child process: `dlopen`s `copy-0` of `dir` (not counted), then `copy-1` to
/// `copy-RSS_RELOADS`, with the host's flags; prints the growth of the resident memory as
/// [`child_reloads`] does.
pub fn child_dlopens(dir: &Path) -> Result<(), String> {
    let open = |i: usize| -> Result<(), String> {
        let path = dir.join(format!("copy-{i}{}", std::env::consts::DLL_SUFFIX));
        // SAFETY: the plugin, a library of this workspace: opening it runs its initialisers
        // (Rust's, which touch nothing of ours) and none of its plugin functions. The handle is
        // forgotten, never closed, as the host does.
        let library = unsafe {
            libloading::os::unix::Library::open(
                Some(&path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
            )
        }
        .map_err(|e| e.to_string())?;
        std::mem::forget(library);
        Ok(())
    };
    open(0)?;
    let (anon, file) = resident()?;
    let fds = descriptors();
    for i in 1..=RSS_RELOADS {
        open(i)?;
    }
    let (anon_after, file_after) = resident()?;
    println!(
        "{} {} {}",
        anon_after.saturating_sub(anon),
        file_after.saturating_sub(file),
        descriptors() as i64 - fds as i64
    );
    std::process::exit(0)
}

/// Runs this binary as `--child KIND DIR` and returns the three numbers it printed.
fn run_child(kind: &str, dir: &Path) -> Result<(f64, f64, f64), String> {
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
    let text = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<f64> = text
        .split_whitespace()
        .map(|n| {
            n.parse()
                .map_err(|e| format!("{kind} child printed {text:?}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    match numbers[..] {
        [a, b, c] => Ok((a, b, c)),
        _ => Err(format!("{kind} child printed {text:?}")),
    }
}

/// The `reload-rss-100` figure.
pub fn rss_figure(paths: &Paths) -> Result<Figure, String> {
    let built = paths.rust_plugin("journal");
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let plugins: PathBuf = work.path().join("plugins");
    std::fs::create_dir(&plugins).map_err(|e| e.to_string())?;
    fresh_copy(&built, &plugins.join(library_name()))?;
    let (anon, file, fds) = run_child("reload-rss", &plugins)?;
    let copies = work.path().join("copies");
    std::fs::create_dir(&copies).map_err(|e| e.to_string())?;
    for i in 0..=RSS_RELOADS {
        fresh_copy(
            &built,
            &copies.join(format!("copy-{i}{}", std::env::consts::DLL_SUFFIX)),
        )?;
    }
    let (dlopen_anon, dlopen_file, _) = run_child("dlopen-rss", &copies)?;
    let n = RSS_RELOADS as f64;
    let size = std::fs::metadata(&built).map_err(|e| e.to_string())?.len();
    Ok(Figure {
        name: "reload-rss-100",
        value: (anon + file) / 1024.0,
        unit: "MiB",
        ratio: (anon + file) / (dlopen_anon + dlopen_file),
        target: Target::RatioAtMost(2.0),
        bound: None,
        details: format!(
            "{:.0} KiB per reload ({:.0} anonymous, {:.0} file-backed); dlopen of {RSS_RELOADS} copies {:.1} MiB, {:.0} KiB each ({:.0} anonymous); descriptors {fds:+}; disk held {:.1} MB per reload until exit (the file's size)",
            (anon + file) / n,
            anon / n,
            file / n,
            (dlopen_anon + dlopen_file) / 1024.0,
            (dlopen_anon + dlopen_file) / n,
            dlopen_anon / n,
            size as f64 / 1e6
        ),
    })
}
