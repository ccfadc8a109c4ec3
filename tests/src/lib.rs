//! Helpers of the integration tests: build the real plugins and the real `plughost` binary, and
//! put chosen plugins in a temporary plugins folder.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The test-only plugins of `tests/fixtures/` in this workspace, by library base name.
///
/// Each builds its library as a cargo *example* (see their manifests), so that `cargo build
/// --workspace` does not build it and it never lands in `target/PROFILE`, the folder `plughost`
/// loads by default: there these deliberately broken libraries would be listed as refused beside
/// the real plugins. cargo puts examples in `target/PROFILE/examples` ([`fixtures_dir`]).
const FIXTURES: &[&str] = &[
    "probe",
    "misbehave",
    "rawabi",
    "not_a_plugin",
    "crasher",
    "hanger",
    "stress",
    "hostile_strings",
    "hostile",
    "kv_writer",
    "tasks",
    "state_iface",
    "shape_provider",
    "shape_caller",
];

/// Test plugins that are their own cargo workspace (see their manifests), built separately, also
/// as examples; their library base names.
const SEPARATE_WORKSPACES: &[(&str, &str)] = &[
    (
        "tests/fixtures/layout-mismatch/Cargo.toml",
        "layout_mismatch",
    ),
    ("tests/fixtures/abi-1.0/Cargo.toml", "abi_1_0"),
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The folder where cargo put this test binary's profile artifacts (`target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/TEST-HASH -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary in target/PROFILE/deps")
        .to_owned()
}

/// A `cargo build` in the workspace root, with the profile of this test binary.
fn cargo_build() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command.arg("build").current_dir(workspace_root());
    if profile_dir().file_name().is_some_and(|n| n == "release") {
        command.arg("--release");
    }
    command
}

/// Runs `command`, a cargo build, and fails the test if it fails.
fn must_succeed(mut command: Command, what: &str) {
    let status = command.status().expect("run cargo build");
    assert!(status.success(), "cargo build of {what} failed");
}

/// Builds the workspace once per test binary, with the same profile as the tests: `cargo build
/// --workspace` (every library and binary, so `target/PROFILE` holds what the README's build
/// puts there) plus the examples (the test-only plugins). Returns the folder holding the binary
/// and the plugins (`target/PROFILE`; the test-only plugins are in [`fixtures_dir`]).
///
/// One cargo invocation over the whole workspace: the features of the dependencies are the same
/// for every test binary (each resolution of other features would rebuild the plugins, whose
/// files cargo names without a hash).
pub fn build() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let mut command = cargo_build();
        command.args(["--workspace", "--lib", "--bins", "--examples"]);
        must_succeed(command, "the workspace and the test-only plugins");
        let target = dir.parent().expect("target/PROFILE has a parent");
        for (manifest, _) in SEPARATE_WORKSPACES {
            let mut command = cargo_build();
            command
                .arg("--manifest-path")
                .arg(workspace_root().join(manifest))
                .arg("--examples")
                .arg("--target-dir")
                .arg(target);
            must_succeed(command, manifest);
        }
        dir
    })
}

/// The folder of the test-only plugins' libraries, `target/PROFILE/examples`.
pub fn fixtures_dir() -> PathBuf {
    build().join("examples")
}

/// The file name of the library of the plugin crate `krate` on this platform.
///
/// `krate` is the library's base name: the crate name of a Rust plugin, [`C_PLUGIN`] for the
/// plugin written in C (whose package, `checksum-plugin`, builds `libchecksum.so`).
pub fn library_file(krate: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        krate,
        std::env::consts::DLL_SUFFIX
    )
}

/// The built library of the plugin crate `krate`: a test-only plugin's in [`fixtures_dir`], any
/// other in [`build`]'s folder.
pub fn library(krate: &str) -> PathBuf {
    let test_only = FIXTURES
        .iter()
        .chain(SEPARATE_WORKSPACES.iter().map(|(_, lib)| lib))
        .any(|lib| *lib == krate);
    if test_only {
        fixtures_dir().join(library_file(krate))
    } else {
        build().join(library_file(krate))
    }
}

/// A temporary plugins folder holding copies of the libraries of the plugin crates `krates`.
pub fn plugins_dir(krates: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    for krate in krates {
        std::fs::copy(library(krate), dir.path().join(library_file(krate)))
            .unwrap_or_else(|e| panic!("copy plugin {krate}: {e}"));
    }
    dir
}

/// The built `plughost` binary.
pub fn plughost_binary() -> PathBuf {
    build().join(format!("plughost{}", std::env::consts::EXE_SUFFIX))
}

/// The real `plughost` binary, with its plugins folder set to `plugins`.
pub fn plughost(plugins: &Path) -> Command {
    let mut command = Command::new(plughost_binary());
    command
        .arg("--plugins")
        .arg(plugins)
        .env_remove("PLUGHOST_PLUGINS")
        .env_remove("PLUGHOST_CONFIG")
        .env_remove("PLUGHOST_ALLOW_INSECURE");
    command
}

/// The host's C library (`libplughost_host.so`, package `plughost-capi`), built beside the
/// `plughost` binary.
pub fn c_library() -> PathBuf {
    build().join(library_file(plughost::C_LIBRARY_NAME))
}

/// The base name of the library of the example plugin written in C, `plugins/checksum`.
pub const C_PLUGIN: &str = "checksum";

/// A host that loaded the plugin crates `krates` from a temporary plugins folder (returned too,
/// to keep it alive), all of them successfully.
pub fn host_with(krates: &[&str]) -> (plughost::PluginHost, tempfile::TempDir) {
    let dir = plugins_dir(krates);
    let mut host = plughost::PluginHost::new();
    host.load_dir(dir.path()).unwrap();
    assert!(host.refused().is_empty(), "{:?}", host.refused());
    (host, dir)
}

/// Runs a command through the host library; returns what it printed.
pub fn run(
    host: &plughost::PluginHost,
    command: &str,
    args: &[&str],
) -> Result<String, plughost::CommandError> {
    let mut out = Vec::new();
    host.run_command(command, args, &mut out)?;
    Ok(String::from_utf8(out).expect("command output is UTF-8"))
}

/// Standard output of a finished process, lossily decoded.
pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error of a finished process, lossily decoded.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Whether a test takes the status of a `plughost validate` check as a pass: `success` or
/// `skipped`, and for `load-time`, the one check that measures time, `warning` too. Its warning
/// (load and init over 100 ms) says that the machine was busy, as it is when the tests run side
/// by side on two cores; tests assert no timings (BENCHMARKS.md measures speed).
pub fn validate_passed(check: &str, status: &str) -> bool {
    matches!(status, "success" | "skipped") || (check == "load-time" && status == "warning")
}

/// The host's ABI version as `plughost list` shows it: `MAJOR.MINOR`.
pub fn abi_version() -> String {
    use plugin_api::abi::{PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR};
    format!("{PH_ABI_VERSION_MAJOR}.{PH_ABI_VERSION_MINOR}")
}

/// The example plugins of `plugins/` written in Rust.
pub const EXAMPLE_PLUGINS: &[&str] = &["wordfreq", "inventory", "journal"];

/// Counts words as the `wordfreq` plugin is specified to, written independently of it: split on
/// every character that is not alphanumeric, lowercase each character. Returns (word, count),
/// most frequent first, ties in alphabetical order.
pub fn reference_word_counts(text: &str) -> Vec<(String, u64)> {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if !word.is_empty() {
            let lower: String = word.chars().flat_map(char::to_lowercase).collect();
            *counts.entry(lower).or_default() += 1;
        }
    }
    let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts
}

/// Compiles the C test plugin `tests/fixtures/c/descriptor.c` with the preprocessor `defines`
/// (`NAME` or `NAME=VALUE`) into `dir`, as the library named for `stem`. Uses `$CC` or `cc`.
pub fn compile_c_fixture(dir: &Path, stem: &str, defines: &[&str]) -> PathBuf {
    compile_c(dir, "descriptor.c", stem, defines)
}

/// Compiles the C test plugin for hot reload, `tests/fixtures/c/reload.c`, with `defines` into
/// `dir`, as the library named for `stem` (see the file for the defines).
pub fn compile_reload_fixture(dir: &Path, stem: &str, defines: &[&str]) -> PathBuf {
    compile_c(dir, "reload.c", stem, defines)
}

/// Compiles the C file `tests/fixtures/c/SOURCE` with `defines` into `dir`, as the library
/// named for `stem`. Uses `$CC` or `cc`.
pub fn compile_c(dir: &Path, source: &str, stem: &str, defines: &[&str]) -> PathBuf {
    let out = dir.join(library_file(stem));
    let root = workspace_root();
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let mut command = Command::new(compiler);
    command
        .args([
            "-std=c11", "-Wall", "-Wextra", "-pthread", "-shared", "-fPIC", "-I",
        ])
        .arg(root.join("plugin-api/include"))
        .arg(root.join("tests/fixtures/c").join(source))
        .arg("-o")
        .arg(&out);
    for define in defines {
        command.arg(format!("-D{define}"));
    }
    let status = command.status().expect("run the C compiler");
    assert!(
        status.success(),
        "compiling the C test plugin {source} with {defines:?} failed"
    );
    out
}

/// The flags of valgrind with which the tests run `plughost` and its C plugins under memcheck,
/// which the C guide (`docs/writing-a-plugin-in-c.md`) and `plughost new --c`'s README show
/// (tests check that they show exactly these): memcheck, a failure status when it finds an error,
/// and leaks reported and counted as errors only when definitely lost (the dynamic loader keeps
/// libraries reachable, and plughost never unloads one).
pub const MEMCHECK: &[&str] = &[
    "--tool=memcheck",
    "--error-exitcode=1",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite",
    "--show-leak-kinds=definite",
];

/// Fails the test, clearly, if valgrind cannot run (`.ci/run` installs it).
pub fn require_valgrind() {
    let found = Command::new("valgrind").arg("--version").output();
    match found {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "`valgrind --version` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => panic!(
            "valgrind is needed by these tests and cannot be run ({e}). Install it (on Debian: \
             `apt-get install valgrind`; `.ci/run` does it)."
        ),
    }
}
