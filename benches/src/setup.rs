//! What the figures need on disk: the Rust plugins and the `plughost` binary (built with cargo),
//! and the C bench plugins (compiled with gcc, once per name, cached by content).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The Rust packages the figures run: the host binary, the host's C library, `wordfreq`,
/// `journal`. The Rust bench plugin is an example of [`BENCH_PLUGIN_PACKAGE`].
const PACKAGES: &[&str] = &["plughost", "plughost-capi", "wordfreq", "journal"];

/// The package whose example `bench_plugin` is the Rust bench plugin (an example, so that it
/// stays out of the plugins folder next to the `plughost` binary).
const BENCH_PLUGIN_PACKAGE: &str = "bench-plugin";

/// Where things are.
pub struct Paths {
    /// The workspace root.
    pub root: PathBuf,
    /// cargo's folder of this profile (`target/release`), which holds this binary, the
    /// `plughost` binary and the Rust plugins.
    pub profile: PathBuf,
}

impl Paths {
    /// The paths of this build.
    pub fn new() -> Result<Paths, String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .ok_or("benches/ has no parent")?
            .to_owned();
        let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
        let profile = exe.parent().ok_or("this binary has no folder")?.to_owned();
        Ok(Paths { root, profile })
    }

    /// The library of the Rust plugin crate `krate` (lib name, such as `bench_plugin`).
    pub fn rust_plugin(&self, krate: &str) -> PathBuf {
        self.profile.join(format!(
            "{}{krate}{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ))
    }

    /// The Rust bench plugin, `examples/libbench_plugin.so`.
    pub fn bench_plugin(&self) -> PathBuf {
        self.profile.join("examples").join(format!(
            "{}bench_plugin{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ))
    }

    /// The host's C library, `libplughost_host.so`.
    pub fn c_library(&self) -> PathBuf {
        self.rust_plugin(plughost::C_LIBRARY_NAME)
    }

    /// The `plughost` binary.
    pub fn plughost(&self) -> PathBuf {
        self.profile
            .join(format!("plughost{}", std::env::consts::EXE_SUFFIX))
    }
}

/// Builds [`PACKAGES`] with the profile of this binary (a no-op when they are up to date).
pub fn build_rust(paths: &Paths) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.arg("build").arg("--quiet").current_dir(&paths.root);
    if paths.profile.file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    } else {
        eprintln!("warning: not a release build; the figures mean little");
    }
    let mut examples = command_like(&command);
    for package in PACKAGES {
        command.args(["-p", package]);
    }
    examples.args(["-p", BENCH_PLUGIN_PACKAGE, "--examples"]);
    for mut command in [command, examples] {
        let status = command
            .status()
            .map_err(|e| format!("running cargo build: {e}"))?;
        if !status.success() {
            return Err("cargo build of the plugins and the host failed".into());
        }
    }
    Ok(())
}

/// The C bench plugin's source.
fn c_source(paths: &Paths) -> PathBuf {
    paths.root.join("benches/plugins/c/bench_plugin.c")
}

/// The ABI's C header folder.
fn c_include(paths: &Paths) -> PathBuf {
    paths.root.join("plugin-api/include")
}

/// The gcc flags of every C bench plugin, before the per-plugin `-D`s.
const C_FLAGS: &[&str] = &[
    "-O2",
    "-shared",
    "-fPIC",
    "-fvisibility=hidden",
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Werror",
];

/// Compiles the C bench plugin once per name in `names`, with `-DSUBSCRIBERS=subscribers`, into
/// a folder of its own (`lib{name}.so` each), and returns the folder. The folder is kept under
/// the profile folder, keyed by a hash of the source, the header and the flags, and reused while
/// they are unchanged.
pub fn c_plugins(
    paths: &Paths,
    group: &str,
    names: &[String],
    subscribers: usize,
) -> Result<PathBuf, String> {
    let source = c_source(paths);
    let header = c_include(paths).join("plughost.h");
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (read(&source)?, read(&header)?, C_FLAGS, names, subscribers).hash(&mut hasher);
    let dir = paths
        .profile
        .join("bench-c")
        .join(format!("{group}-{:016x}", hasher.finish()));
    let done = dir.join(".complete");
    if done.exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let next = AtomicUsize::new(0);
    let failure = Mutex::new(None);
    // Two compilers at a time: the machine has two cores.
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while let Some(name) = names.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let output = dir.join(format!("lib{name}.so"));
                    let result = Command::new("gcc")
                        .args(C_FLAGS)
                        .arg("-I")
                        .arg(c_include(paths))
                        .arg(format!("-DPLUGIN_NAME={name}"))
                        .arg(format!("-DSUBSCRIBERS={subscribers}"))
                        .arg("-o")
                        .arg(&output)
                        .arg(&source)
                        .output();
                    let error = match result {
                        Ok(out) if out.status.success() => continue,
                        Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                        Err(e) => format!("running gcc: {e}"),
                    };
                    *failure.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("compiling {name}: {error}"));
                    return;
                }
            });
        }
    });
    if let Some(error) = failure.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(error);
    }
    std::fs::write(&done, b"").map_err(|e| format!("{}: {e}", done.display()))?;
    Ok(dir)
}

/// A new command with the program, arguments and folder of `command`.
fn command_like(command: &Command) -> Command {
    let mut copy = Command::new(command.get_program());
    copy.args(command.get_args());
    if let Some(dir) = command.get_current_dir() {
        copy.current_dir(dir);
    }
    copy
}
