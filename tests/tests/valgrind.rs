//! The `plughost` binary with the C plugin and the Rust plugins under valgrind's memcheck.
//!
//! Each test runs `plughost` (one process per command, as a user would) under
//! `valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite`, and requires
//! memcheck's summary to report no error. Errors are invalid reads and writes, uses of
//! uninitialised values, bad frees, and memory definitely lost (not freed, no pointer left): the
//! C plugin must free its own memory by the time the host has shut it down. (Libraries are never
//! unloaded; the dynamic loader keeps them reachable, so that is no leak.)
//!
//! valgrind must be installed (`.ci/run` installs it): without it these tests fail, they do not
//! pass silently.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use integration_tests::{
    abi_version, build, plugins_dir, require_valgrind, workspace_root, C_PLUGIN, MEMCHECK,
};

/// The C plugin and the three Rust example plugins.
const ALL: &[&str] = &[C_PLUGIN, "wordfreq", "inventory", "journal"];

/// Runs `plughost --plugins PLUGINS ARGS...` under memcheck, with `RUST_LOG=rust_log`, and checks
/// that memcheck found no error. Returns plughost's output (memcheck's report is in stderr).
fn memcheck<S: AsRef<OsStr>>(plugins: &Path, args: &[S], rust_log: &str) -> Output {
    memcheck_with_input(plugins, args, rust_log, b"")
}

/// [`memcheck`] with `input` as plughost's standard input.
fn memcheck_with_input<S: AsRef<OsStr>>(
    plugins: &Path,
    args: &[S],
    rust_log: &str,
    input: &[u8],
) -> Output {
    use std::io::Write;

    require_valgrind();
    let plughost = build().join(format!("plughost{}", std::env::consts::EXE_SUFFIX));
    let mut output = Command::new("valgrind")
        .args(MEMCHECK)
        .arg(plughost)
        .arg("--plugins")
        .arg(plugins)
        .args(args)
        .env("RUST_LOG", rust_log)
        .env_remove("PLUGHOST_PLUGINS")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run valgrind");
    let mut stdin = output.stdin.take().expect("piped");
    stdin.write_all(input).expect("write plughost's input");
    drop(stdin);
    let output = output.wait_with_output().expect("run valgrind");
    let report = String::from_utf8_lossy(&output.stderr);
    let summary = report
        .lines()
        .find(|l| l.contains("ERROR SUMMARY:"))
        .unwrap_or_else(|| panic!("no memcheck summary in:\n{report}"));
    assert!(
        summary.contains("ERROR SUMMARY: 0 errors"),
        "memcheck found errors running plughost {:?}:\n{report}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>()
    );
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Small input files: keep the Rust plugins' debug builds quick under valgrind.
fn small_files() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("udhr.txt");
    std::fs::copy(
        workspace_root().join("tests/data/udhr-article-1.txt"),
        &text,
    )
    .unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    (dir, text, empty)
}

#[test]
fn loading_listing_and_shutting_down_every_plugin() {
    let plugins = plugins_dir(ALL);
    let output = memcheck(plugins.path(), &["list"], "warn");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("\nchecksum "));
}

#[test]
fn checksum_publishes_an_event_the_rust_journal_receives() {
    let plugins = plugins_dir(ALL);
    let (_files, udhr, empty) = small_files();
    let args = [
        OsStr::new("run"),
        OsStr::new("checksum"),
        udhr.as_os_str(),
        empty.as_os_str(),
    ];
    let output = memcheck(plugins.path(), &args, "journal=info,checksum=debug");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("6d3929e3\t2627\t"), "{stdout}");
    assert!(stdout.contains("00000000\t0\t"), "{stdout}");
    let log = text(&output.stderr);
    assert!(
        log.contains("event checksum.done: files=2 bytes=2627"),
        "the journal did not log the C plugin's event:\n{log}"
    );
}

#[test]
fn wordfreq_publishes_an_event_the_c_plugin_receives() {
    let plugins = plugins_dir(ALL);
    let (_files, udhr, _empty) = small_files();
    let args = [
        OsStr::new("run"),
        OsStr::new("wordfreq"),
        OsStr::new("--top"),
        OsStr::new("3"),
        udhr.as_os_str(),
    ];
    let output = memcheck(plugins.path(), &args, "checksum=debug");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).lines().count(), 3);
    let log = text(&output.stderr);
    assert!(
        log.contains("received wordfreq.totals: files=1 words="),
        "the C plugin did not log wordfreq's event:\n{log}"
    );
}

#[test]
fn enumerations_in_both_directions() {
    let plugins = plugins_dir(ALL);
    // The Rust inventory plugin asks the C plugin for its commands, through the host.
    let output = memcheck(plugins.path(), &["run", "plugins"], "warn");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("    checksum-events"));
    // The C plugin enumerates every plugin, and from inside, each plugin's commands.
    let output = memcheck(plugins.path(), &["run", "checksum-plugins"], "warn");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("journal\t"));
}

#[test]
fn journal_and_event_report_commands() {
    let plugins = plugins_dir(ALL);
    let output = memcheck(plugins.path(), &["run", "journal"], "warn");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "");
    let output = memcheck(plugins.path(), &["run", "checksum-events"], "warn");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "0\twordfreq.totals\t\n");
}

#[test]
fn failing_c_commands() {
    let plugins = plugins_dir(ALL);
    let missing = plugins.path().join("no-such-file");
    let args = [
        OsStr::new("run"),
        OsStr::new("checksum"),
        missing.as_os_str(),
    ];
    // plughost exits 1 for a failed command; memcheck's summary says whether memory was clean.
    let output = memcheck(plugins.path(), &args, "warn");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("No such file or directory"));
    let output = memcheck(plugins.path(), &["run", "checksum"], "warn");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("usage: checksum FILE..."));
}

#[test]
fn a_c_plugin_calls_an_interface_another_c_plugin_provides() {
    // A private folder (the trust rule refuses /tmp), with a provider and a caller compiled from
    // tests/fixtures/c/descriptor.c: the host inits the provider first, the caller queries and
    // calls its table directly, and at the end the caller shuts down before its provider, whose
    // interface ends after the caller's reference was released.
    let dir = tempfile::Builder::new()
        .prefix("valgrind-interfaces")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    integration_tests::compile_c_fixture(
        dir.path(),
        "caller",
        &[
            "FIXTURE_NAME=\"caller\"",
            "FIXTURE_REQUIRES=\"test.answer\"",
        ],
    );
    integration_tests::compile_c_fixture(
        dir.path(),
        "provider",
        &[
            "FIXTURE_NAME=\"provider\"",
            "FIXTURE_PROVIDES=\"test.answer\"",
        ],
    );
    let output = memcheck(dir.path(), &["run", "caller-ok"], "warn");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "ok answer=42\n");
    let output = memcheck(dir.path(), &["list"], "warn");
    assert!(
        text(&output.stdout).contains("interfaces: caller: requires test.answer 1.0"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn journal_keeps_events_in_kv_through_interface_calls() {
    // Plugin-to-plugin interface calls (journal → kv, callbacks of the scan back into journal)
    // and the redb file, in two processes.
    let plugins = plugins_dir(&["wordfreq", "journal", "kv"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plughost.toml");
    std::fs::write(
        &config,
        format!(
            "[plugins.kv]\npath = {:?}\n",
            dir.path().join("kv.redb").to_str().unwrap()
        ),
    )
    .unwrap();
    let words = dir.path().join("words.txt");
    std::fs::write(&words, "one two two").unwrap();
    let config = config.to_str().unwrap();
    let output = memcheck(
        plugins.path(),
        &[
            "--config",
            config,
            "run",
            "wordfreq",
            words.to_str().unwrap(),
        ],
        "warn",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = memcheck(
        plugins.path(),
        &["--config", config, "run", "journal"],
        "warn",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "1\twordfreq.totals\tfiles=1 words=3 distinct=2 bytes=11\n"
    );
}

#[test]
fn a_shell_session_that_reloads_and_unloads_plugins() {
    let plugins = plugins_dir(ALL);
    let (_files, udhr, _empty) = small_files();
    // Every plugin reloaded (the C plugin twice) while events flow between them, then two
    // unloaded and one loaded again: the old versions' registrations are destroyed, their
    // shutdowns run, and nothing they touch is freed too early.
    let script = format!(
        "wordfreq --top 1 {udhr}\nreload checksum\nchecksum-events\nreload\n\
         wordfreq --top 1 {udhr}\nchecksum-events\njournal\nunload journal\nunload checksum\n\
         load {checksum}\nchecksum-events\nplugins\n",
        udhr = udhr.display(),
        checksum = plugins.path().join("libchecksum.so").display(),
    );
    let output = memcheck_with_input(plugins.path(), &["shell"], "warn", script.as_bytes());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    // The C plugin's new versions start afresh (it hands no state over): one event seen after
    // the reloads; the journal took its old version's event (state handoff): two.
    assert!(
        stdout.contains("1\twordfreq.totals\tfiles=1 words="),
        "{stdout}"
    );
    assert!(
        stdout.contains("reloaded journal 0.1.0 -> 0.1.0 from ")
            && stdout.contains(", state handed over ("),
        "{stdout}"
    );
    assert!(
        stdout.contains("2\twordfreq.totals\tfiles=1 words="),
        "{stdout}"
    );
    assert_eq!(stdout.matches("reloaded ").count(), 5, "{stdout}");
    // The C plugin loaded again is a new instance too, and the inventory (reloaded) lists it.
    assert!(
        stdout.contains("unloaded journal\nunloaded checksum\nloaded checksum 0.1.0 from ")
            && stdout.contains("\n0\twordfreq.totals\t\ninventory 0.1.0"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("\nchecksum 0.1.0 (ABI {})", abi_version())),
        "{stdout}"
    );
}

#[test]
fn tasks_on_the_host_workers_and_a_shutdown_during_run_tasks() {
    // Nested tasks on the workers, a failing run, and the plugin's own thread inside
    // `run_tasks` while the plugin shuts down: no invalid access, no leak.
    let plugins = plugins_dir(&["tasks"]);
    let script = "tasks-sum 100000 8\ntasks-fail\ntasks-sum 1000 3\n";
    let output = memcheck_with_input(plugins.path(), &["shell"], "warn", script.as_bytes());
    let stderr = text(&output.stderr);
    // `tasks-fail` fails: the scripted session's status is 1, not valgrind's error status.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("ERROR SUMMARY: 0 errors"), "{stderr}");
    assert!(stderr.contains("task 3 failed"), "{stderr}");
    assert!(stderr.contains("worker stopped: "), "{stderr}");
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("sum=4999950000 "), "{stdout}");
    assert!(stdout.contains("\nsum=499500 "), "{stdout}");
}

#[test]
fn a_provider_reloaded_while_its_caller_holds_a_reference() {
    // The provider's new build takes its interface in the swap; the caller's reference to the old
    // build reads `alive` 0, it releases it and queries again: no access to the old build's
    // freed state, every registration destroyed once.
    let dir = tempfile::Builder::new()
        .prefix("valgrind-provider-reload")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    integration_tests::compile_c_fixture(
        dir.path(),
        "caller",
        &[
            "FIXTURE_NAME=\"caller\"",
            "FIXTURE_REQUIRES=\"test.answer\"",
            "FIXTURE_REQUERY",
        ],
    );
    integration_tests::compile_c_fixture(
        dir.path(),
        "provider",
        &[
            "FIXTURE_NAME=\"provider\"",
            "FIXTURE_PROVIDES=\"test.answer\"",
        ],
    );
    let script =
        "caller-ok\nreload provider\ncaller-ok\nreload provider\nreload caller\ncaller-ok\n";
    let output = memcheck_with_input(dir.path(), &["shell"], "warn", script.as_bytes());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert_eq!(stdout.matches("ok answer=42\n").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("reloaded ").count(), 3, "{stdout}");
}
