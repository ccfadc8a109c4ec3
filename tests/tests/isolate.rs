//! Isolation: plugins run in child processes (`plughost --isolate`, `PluginHost::isolate`). A
//! crash, an `exit`, a stack overflow, a kill, a hang past the call timeout or a malformed
//! message faults that plugin with one line naming it, the call and the cause; its output so far
//! is kept, and the host and the other plugins go on. The plugins are the C fixture
//! `tests/fixtures/c/isolate.c`, compiled here: `iso` (the isolated one) and `pong` (in-process).
#![cfg(target_os = "linux")]

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use integration_tests::{build, compile_c, library, library_file, plughost, stderr, stdout};
use plughost::{PluginHost, PluginMode, PluginState};

/// A plugins folder with `iso` and `pong`, and `isoinit` (whose `init` aborts) if `init_aborts`.
fn fixtures(init_aborts: bool) -> tempfile::TempDir {
    build();
    let dir = tempfile::tempdir().unwrap();
    compile_c(dir.path(), "isolate.c", "iso", &[]);
    compile_c(
        dir.path(),
        "isolate.c",
        "pong",
        &["FIXTURE_PONGER", "FIXTURE_NAME=\"pong\""],
    );
    if init_aborts {
        compile_c(
            dir.path(),
            "isolate.c",
            "isoinit",
            &["FIXTURE_ABORT_IN_INIT", "FIXTURE_NAME=\"isoinit\""],
        );
    }
    dir
}

/// A host of the library that isolates `iso`, with the fixtures of `dir` loaded.
fn host(dir: &Path) -> PluginHost {
    host_with(dir, |_| {})
}

/// [`host`], with `configure` applied before the fixtures are loaded.
fn host_with(dir: &Path, configure: impl FnOnce(&mut PluginHost)) -> PluginHost {
    let mut host = PluginHost::new();
    host.set_child_program(build().join("plughost"));
    host.isolate("iso");
    configure(&mut host);
    host.load_dir(dir).unwrap();
    assert!(host.refused().is_empty(), "{:?}", host.refused());
    host
}

/// Subscribes the application to `topic` with a handler that counts the events it receives:
/// the count, and the subscription's handle.
fn count_events(
    host: &PluginHost,
    topic: &str,
) -> (
    Arc<std::sync::atomic::AtomicUsize>,
    plugin_api::abi::PhHandle,
) {
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let handle = host
        .subscribe(topic, move |_, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .unwrap();
    (count, handle)
}

/// Runs a command; its output, and its error as one line.
fn run(host: &PluginHost, command: &str, args: &[&str]) -> (String, Result<(), String>) {
    let mut out = Vec::new();
    let result = host
        .run_command(command, args, &mut out)
        .map_err(|e| e.to_string());
    (String::from_utf8(out).unwrap(), result)
}

/// The child process of the isolated plugin `name`.
fn pid_of(host: &PluginHost, name: &str) -> u32 {
    match host.plugins().iter().find(|p| p.name == name).unwrap().mode {
        PluginMode::Isolated { pid } => pid,
        mode => panic!("{name} is {mode}"),
    }
}

/// The lines of standard error that plughost itself wrote (not the logger's).
fn plughost_lines(output: &std::process::Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| l.starts_with("plughost: "))
        .map(str::to_owned)
        .collect()
}

/// `plughost --isolate iso shell` fed `script` on standard input.
fn shell(dir: &Path, extra: &[&str], script: &str) -> std::process::Output {
    let mut child = plughost(dir)
        .args(["--isolate", "iso"])
        .args(extra)
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Whether the process `pid` is gone: reaped (no zombie left) or never there.
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_segfault_in_a_command_faults_that_plugin_in_one_line_and_the_others_go_on() {
    let dir = fixtures(false);
    let output = shell(
        dir.path(),
        &[],
        "iso-echo first\niso-segv\npong-ok\niso-echo again\nlist\n",
    );
    // A line failed: status 1, as for any failing line of the shell.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.starts_with("first\nbefore iso-segv\nok\n"),
        "the output before the crash is kept, and pong still serves:\n{out}"
    );
    let lines = plughost_lines(&output);
    assert_eq!(lines.len(), 2, "{}", stderr(&output));
    assert!(
        lines[0]
            .starts_with("plughost: iso-segv: plugin `iso` is faulted: its child process (pid ")
            && lines[0].ends_with(
                "was killed by signal SIGSEGV (segmentation fault) in command `iso-segv`"
            ),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("no command named `iso-echo`"),
        "{}",
        lines[1]
    );
    assert!(
        out.contains("faulted: iso (") && out.contains("SIGSEGV"),
        "list shows the fault:\n{out}"
    );
}

#[test]
fn abort_in_init_refuses_the_plugin_and_the_others_load() {
    let dir = fixtures(true);
    let output = plughost(dir.path())
        .args(["--isolate", "isoinit", "run", "pong-ok"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ok\n");
    let lines = plughost_lines(&output);
    assert_eq!(lines.len(), 1, "{}", stderr(&output));
    let file = dir.path().join(library_file("isoinit"));
    assert!(
        lines[0].starts_with(&format!(
            "plughost: refused {}: plugin `isoinit`: its child process (pid ",
            file.display()
        )) && lines[0].ends_with("was killed by signal SIGABRT (abort) in init"),
        "{}",
        lines[0]
    );
}

#[test]
fn exit_0_in_a_command_faults_the_plugin_and_keeps_the_output() {
    let dir = fixtures(false);
    let output = plughost(dir.path())
        .args(["--isolate", "iso", "run", "iso-exit", "0"])
        .output()
        .unwrap();
    // The host did not exit: the command failed (status 1), where an in-process exit(0)
    // ends plughost with status 70.
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), "before iso-exit\n");
    let lines = plughost_lines(&output);
    assert_eq!(lines.len(), 1, "{}", stderr(&output));
    assert!(
        lines[0].starts_with("plughost: iso-exit: plugin `iso` is faulted: its child process")
            && lines[0].ends_with("exited with status 0 in command `iso-exit`"),
        "{}",
        lines[0]
    );

    // Through the library: any status, and the other plugin goes on.
    let host = host(dir.path());
    let pid = pid_of(&host, "iso");
    let (out, result) = run(&host, "iso-exit", &["3"]);
    assert_eq!(out, "before iso-exit\n");
    let error = result.unwrap_err();
    assert!(
        error.contains("exited with status 3 in command `iso-exit`"),
        "{error}"
    );
    assert!(gone(pid), "the child {pid} is reaped");
    assert_eq!(run(&host, "pong-ok", &[]), ("ok\n".to_owned(), Ok(())));
    let iso = host
        .plugins()
        .into_iter()
        .find(|p| p.name == "iso")
        .unwrap();
    assert_eq!(iso.state, PluginState::Faulted);
}

#[test]
fn a_call_past_the_timeout_faults_the_plugin_and_kills_its_child() {
    let dir = fixtures(false);
    let output = shell(dir.path(), &["--call-timeout", "1"], "iso-hang\npong-ok\n");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), "before iso-hang\nok\n");
    let lines = plughost_lines(&output);
    assert_eq!(lines.len(), 1, "{}", stderr(&output));
    assert!(
        lines[0].starts_with(
            "plughost: iso-hang: plugin `iso` is faulted: timed out in command `iso-hang` after 1 s"
        ) && lines[0].ends_with("was killed"),
        "{}",
        lines[0]
    );
}

#[test]
fn the_configuration_file_isolates_and_sets_the_call_timeout() {
    let dir = fixtures(false);
    let config = dir.path().join("plughost.toml");
    std::fs::write(&config, "isolate = [\"iso\"]\ncall_timeout = 1\n").unwrap();
    let output = plughost(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["run", "iso-hang"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), "before iso-hang\n");
    assert!(
        stderr(&output).contains("timed out in command `iso-hang` after 1 s"),
        "{}",
        stderr(&output)
    );

    std::fs::write(&config, "isolate = \"some\"\n").unwrap();
    let output = plughost(dir.path())
        .arg("--config")
        .arg(&config)
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("expected \"all\" or a list of plugin names"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_stack_overflow_faults_the_plugin() {
    let dir = fixtures(false);
    let host = host(dir.path());
    let pid = pid_of(&host, "iso");
    let (out, result) = run(&host, "iso-overflow", &[]);
    assert_eq!(out, "before iso-overflow\n");
    let error = result.unwrap_err();
    // The child's runtime turns the guard page's fault into an abort (and says so on its
    // standard error); either signal names the cause.
    assert!(
        error.contains("plugin `iso` is faulted")
            && error.contains("was killed by signal SIG")
            && error.contains("in command `iso-overflow`"),
        "{error}"
    );
    assert!(gone(pid));
    assert_eq!(run(&host, "pong-ok", &[]), ("ok\n".to_owned(), Ok(())));
}

#[test]
fn a_child_killed_between_calls_faults_the_plugin_at_once() {
    let dir = fixtures(false);
    let host = host(dir.path());
    let pid = pid_of(&host, "iso");
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // No call: the host notices the end of the child by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let fault = loop {
        let plugins = host.plugins();
        let iso = plugins.iter().find(|p| p.name == "iso").unwrap();
        if let Some(fault) = &iso.fault {
            assert_eq!(iso.state, PluginState::Faulted);
            break fault.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "iso is still {:?} 20 s after its child was killed",
            iso.state
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_eq!(
        fault,
        format!("its child process (pid {pid}) was killed by signal SIGKILL while idle")
    );
    assert!(gone(pid));
    let (out, result) = run(&host, "iso-echo", &["hello"]);
    assert_eq!(out, "");
    assert!(
        result
            .as_ref()
            .unwrap_err()
            .contains("no command named `iso-echo`"),
        "{result:?}"
    );
    assert_eq!(run(&host, "pong-ok", &[]), ("ok\n".to_owned(), Ok(())));
}

#[test]
fn a_child_killed_between_calls_under_on_crash_restarts_once_and_stays_up() {
    let dir = fixtures(false);
    let host = host_with(dir.path(), |h| h.set_restart(plughost::Restart::OnCrash));
    let first = pid_of(&host, "iso");
    let status = Command::new("kill")
        .args(["-KILL", &first.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Calls at once, racing the listener that sees the child's end: whichever notices it
    // first, one crash is counted and the plugin restarts (at once: the first crash waits 0 s).
    let mut results = Vec::new();
    for _ in 0..3 {
        let result = run(&host, "iso-echo", &["x"]);
        let ok = result.1.is_ok();
        results.push(result);
        if ok {
            break;
        }
    }
    assert_eq!(
        results.last().unwrap(),
        &("x\n".to_owned(), Ok(())),
        "{results:?}"
    );
    let second = pid_of(&host, "iso");
    assert_ne!(second, first);
    // The old child's listener must not touch the new child.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!gone(second), "the restarted child {second} was killed");
    assert_eq!(run(&host, "iso-echo", &["y"]), ("y\n".to_owned(), Ok(())));
    assert_eq!(pid_of(&host, "iso"), second);
}

#[test]
fn a_plugin_loaded_by_a_thread_that_ended_keeps_its_child() {
    // An application that loads its plugins on a worker thread: the kernel's parent-death
    // signal follows the thread that spawned a child, so the host must not spawn on it.
    let (host, dir) = std::thread::spawn(|| {
        let dir = fixtures(false);
        (host(dir.path()), dir)
    })
    .join()
    .unwrap();
    let pid = pid_of(&host, "iso");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !gone(pid),
        "the child {pid} died with the thread that loaded it"
    );
    assert_eq!(
        run(&host, "iso-echo", &["hello"]),
        ("hello\n".to_owned(), Ok(()))
    );
    drop(host);
    drop(dir);
}

#[test]
fn malformed_messages_fault_the_plugin_without_harm_to_the_host() {
    let dir = fixtures(false);
    let host = host(dir.path());
    let pid = pid_of(&host, "iso");
    let (out, result) = run(&host, "iso-garbage", &[]);
    assert_eq!(out, "before iso-garbage\n");
    let error = result.unwrap_err();
    assert!(
        error.contains(&format!(
            "plugin `iso` is faulted: its child process (pid {pid}) sent a malformed message"
        )) && error.ends_with("in command `iso-garbage`; it was killed"),
        "{error}"
    );
    assert!(gone(pid));
    assert_eq!(run(&host, "pong-ok", &[]), ("ok\n".to_owned(), Ok(())));
}

/// Counts what it is given, keeping nothing.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The peak resident memory of a process, in KiB (`VmHWM`).
fn peak_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_gibibyte_of_output_streams_through_with_bounded_memory() {
    let dir = fixtures(false);
    let host = host(dir.path());
    let pid = pid_of(&host, "iso");
    let before = peak_kib("self");
    let mut count = Count(0);
    host.run_command("iso-flood", &["1024"], &mut count)
        .unwrap();
    assert_eq!(count.0, 1 << 30);
    // Neither process came near holding the output: the child's peak is its own size, and the
    // host's grew by less than 64 MiB (other tests of this binary run meanwhile).
    let child = peak_kib(&pid.to_string());
    let grown = peak_kib("self").saturating_sub(before);
    assert!(child < 64 * 1024, "child peak {child} KiB");
    assert!(grown < 64 * 1024, "host peak grew {grown} KiB");
    assert_eq!(run(&host, "iso-echo", &["still", "here"]).0, "still here\n");
}

#[test]
fn an_isolated_command_publishing_an_event_handled_in_process_that_calls_back_does_not_deadlock() {
    let dir = fixtures(false);
    let host = host(dir.path());
    // iso-ping publishes `isolate.ping` (in the child); pong (in-process) handles it by
    // publishing `isolate.pong`, which iso (in the child, still inside its command) receives.
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=1\n".to_owned(), Ok(()))
    );
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=2\n".to_owned(), Ok(()))
    );
    // An event of the application reaches the isolated plugin too.
    host.publish("isolate.pong", b"").unwrap();
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=4\n".to_owned(), Ok(()))
    );
}

/// Records the plugins' log records.
#[derive(Default)]
struct Records(Mutex<Vec<(String, log::Level, String, String)>>);

impl plughost::Observer for Records {
    fn max_level(&self) -> log::LevelFilter {
        log::LevelFilter::Info
    }
    fn log(&self, plugin: &str, record: &log::Record<'_>) {
        self.0.lock().unwrap().push((
            plugin.to_owned(),
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
}

#[test]
fn output_log_records_and_configuration_cross_and_shutdown_reaps_the_child() {
    let dir = fixtures(false);
    let records = Arc::new(Records::default());
    let mut host = PluginHost::with_observer(records.clone());
    host.set_child_program(build().join("plughost"));
    host.isolate_all(true);
    host.load_dir(dir.path()).unwrap();
    let pid = pid_of(&host, "iso");
    assert_ne!(pid_of(&host, "pong"), pid);
    assert_eq!(
        run(&host, "iso-echo", &["a", "", "ü b"]),
        ("a  ü b\n".to_owned(), Ok(()))
    );
    assert_eq!(
        records.0.lock().unwrap().as_slice(),
        [(
            "iso".to_owned(),
            log::Level::Info,
            "iso".to_owned(),
            "echo called".to_owned()
        )]
    );
    host.shutdown();
    assert!(
        gone(pid),
        "the child {pid} exited at shutdown and was reaped"
    );

    // The configuration reaches an isolated plugin: wordfreq's default for --top.
    let wordfreq = tempfile::tempdir().unwrap();
    std::fs::copy(
        library("wordfreq"),
        wordfreq.path().join(library_file("wordfreq")),
    )
    .unwrap();
    let text = integration_tests::workspace_root().join("tests/data/udhr-article-1.txt");
    let text = text.to_str().unwrap();
    let mut results = Vec::new();
    for isolated in [false, true] {
        let mut host = PluginHost::new();
        host.set_child_program(build().join("plughost"));
        if isolated {
            host.isolate("wordfreq");
        }
        host.set_config(plughost::Config::from_toml("[plugins.wordfreq]\ntop = 2\n").unwrap());
        host.load_dir(wordfreq.path()).unwrap();
        let (out, result) = run(&host, "wordfreq", &[text]);
        result.unwrap();
        assert_eq!(out.lines().count(), 2, "{out}");
        results.push(out);
    }
    assert_eq!(results[0], results[1]);
}

#[test]
fn list_shows_each_plugins_mode_and_the_childs_pid() {
    let dir = fixtures(false);
    let output = plughost(dir.path())
        .args(["--isolate", "iso", "list"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0][..6],
        ["NAME", "VERSION", "ABI", "MODE", "PID", "FILE"]
    );
    let row = |name: &str| lines.iter().find(|l| l[0] == name).unwrap().clone();
    // NAME VERSION ABI (no layout data) MODE PID FILE COMMANDS: a C plugin carries no layout.
    let iso = row("iso");
    assert_eq!(iso[6], "isolated", "{text}");
    assert!(iso[7].parse::<u32>().is_ok(), "{text}");
    let pong = row("pong");
    assert_eq!(pong[6..8], ["in-process", "-"], "{text}");
}

#[test]
fn a_child_does_not_outlive_its_host() {
    let dir = fixtures(false);
    let mut parent = plughost(dir.path())
        .args(["--isolate", "iso", "shell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = parent.stdin.take().unwrap();
    stdin.write_all(b"iso-pid\n").unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: u32 = line.trim().parse().unwrap();
    assert!(!gone(pid));
    parent.kill().unwrap();
    parent.wait().unwrap();
    // The kernel's parent-death signal kills the child; init reaps it. Wait for that (bounded).
    let mut waited = 0;
    while !gone(pid) && waited < 200 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    assert!(gone(pid), "the child {pid} outlived its host");
    drop(stdin);
}

#[test]
fn enumerations_cross_both_ways() {
    build();
    let dir = integration_tests::plugins_dir(&["inventory", "wordfreq"]);
    let mut outputs = Vec::new();
    for isolated in [false, true] {
        let mut args = vec!["run", "plugins"];
        if isolated {
            args.splice(0..0, ["--isolate", "inventory"]);
        }
        let output = plughost(dir.path()).args(&args).output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        outputs.push(stdout(&output));
    }
    // The isolated inventory lists the host's plugins, itself among them, with their commands,
    // as it does in-process.
    assert!(outputs[1].contains("wordfreq 0.1.0"), "{}", outputs[1]);
    assert!(outputs[1].contains("plugins [--limit N]"), "{}", outputs[1]);
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn a_plugin_that_provides_an_interface_is_not_isolated() {
    build();
    let dir = integration_tests::plugins_dir(&["kv"]);
    let output = plughost(dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .args(["--isolate", "kv", "list"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains(&format!(
            "refused: {}: plugin `kv` provides plughost.kv 1.0: interfaces do not cross to a child process; it cannot be isolated",
            dir.path().join(library_file("kv")).display()
        )),
        "{}",
        stdout(&output)
    );
    // With `--isolate all` it runs in-process, with a warning.
    let output = plughost(dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .args(["--isolate", "all", "list"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("interfaces: kv: provides plughost.kv 1.0")
            && !stdout(&output).contains("refused"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("plugin `kv` provides plughost.kv 1.0: interfaces do not cross to a child process; it runs in-process"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn reloading_an_isolated_plugin_starts_a_new_child_and_unload_then_load_isolates_it_again() {
    let dir = fixtures(false);
    let mut host = host(dir.path());
    let first = pid_of(&host, "iso");
    let reloaded = host.reload("iso").unwrap();
    assert_eq!(reloaded.state, plughost::StateHandoff::NotSaved);
    let second = pid_of(&host, "iso");
    assert_ne!(second, first);
    assert!(
        gone(first),
        "the old build's child {first} exited after the swap and was reaped"
    );
    wait_listener_gone(first);
    wait_listener(second);
    assert_eq!(run(&host, "iso-echo", &["new"]).0, "new\n");
    // Events reach the new child.
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=1\n".to_owned(), Ok(()))
    );

    // A new build that aborts in its init: the reload fails in one line naming the signal, and
    // the old child keeps serving.
    let builds = tempfile::tempdir().unwrap();
    compile_c(
        builds.path(),
        "isolate.c",
        "iso",
        &["FIXTURE_ABORT_IN_INIT", "FIXTURE_NAME=\"iso\""],
    );
    let file = dir.path().join(library_file("iso"));
    let staged = dir.path().join(".incoming");
    std::fs::copy(builds.path().join(library_file("iso")), &staged).unwrap();
    std::fs::rename(&staged, &file).unwrap();
    let error = host.reload("iso").unwrap_err().to_string();
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.contains("SIGABRT"), "{error}");
    assert_eq!(pid_of(&host, "iso"), second);
    assert_eq!(run(&host, "iso-echo", &["kept"]).0, "kept\n");

    host.unload("iso").unwrap();
    assert!(
        gone(second),
        "the child {second} exited at unload and was reaped"
    );
    wait_listener_gone(second);
    compile_c(dir.path(), "isolate.c", "iso", &[]);
    host.load(&file).unwrap();
    assert_ne!(pid_of(&host, "iso"), second);
    assert_eq!(run(&host, "iso-echo", &["back"]).0, "back\n");
}

#[test]
fn on_crash_the_plugin_restarts_at_its_next_call() {
    let dir = fixtures(false);
    let host = host_with(dir.path(), |h| h.set_restart(plughost::Restart::OnCrash));
    let first = pid_of(&host, "iso");
    let (out, result) = run(&host, "iso-segv", &[]);
    assert_eq!(out, "before iso-segv\n");
    let error = result.unwrap_err();
    assert!(
        error.contains(&format!(
            "plugin `iso` crashed: its child process (pid {first}) was killed by signal SIGSEGV (segmentation fault) in command `iso-segv`; it restarts at its next call"
        )),
        "{error}"
    );
    assert!(gone(first));
    // The next call starts a new child, which registers the commands again.
    assert_eq!(
        run(&host, "iso-echo", &["again"]),
        ("again\n".to_owned(), Ok(()))
    );
    let second = pid_of(&host, "iso");
    assert_ne!(second, first);
    assert_eq!(
        host.plugins()
            .iter()
            .find(|p| p.name == "iso")
            .unwrap()
            .state,
        PluginState::Active
    );
    assert_eq!(run(&host, "pong-ok", &[]), ("ok\n".to_owned(), Ok(())));
    // Events reach the new child too.
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=1\n".to_owned(), Ok(()))
    );
    // The old child's listener ended; the new child's threads reach the host.
    wait_listener_gone(first);
    wait_listener(second);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&seen);
    host.subscribe("isolate.bg", move |_, payload| {
        into.lock().unwrap().push(payload.to_owned())
    })
    .unwrap();
    assert_eq!(
        run(&host, "iso-spawn", &["isolate.bg", "again", "1"]),
        ("spawned\n".to_owned(), Ok(()))
    );
    wait_for("the restarted child's event", || {
        (seen.lock().unwrap().as_slice() == [b"again".to_vec()]).then_some(())
    });
    drop(host);
    assert!(gone(second), "the restarted child exits with its host");
    wait_listener_gone(second);

    // The same from the configuration file, through plughost.
    let config = dir.path().join("plughost.toml");
    std::fs::write(&config, "isolate = [\"iso\"]\nrestart = \"on-crash\"\n").unwrap();
    let mut child = plughost(dir.path())
        .arg("--config")
        .arg(&config)
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"iso-exit 7\niso-echo back\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), "before iso-exit\nback\n");
    let lines = plughost_lines(&output);
    assert_eq!(lines.len(), 1, "{}", stderr(&output));
    assert!(
        lines[0].contains("plugin `iso` crashed: its child process")
            && lines[0].contains(
                "exited with status 7 in command `iso-exit`; it restarts at its next call"
            ),
        "{}",
        lines[0]
    );
}

/// A writer that runs an isolated command from inside its first write.
struct Reentrant<'h> {
    host: &'h PluginHost,
    out: Vec<u8>,
    nested: Option<Result<(), String>>,
}

impl Write for Reentrant<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.nested.is_none() {
            let mut out = Vec::new();
            self.nested = Some(
                self.host
                    .run_command("iso-echo", &["nested"], &mut out)
                    .map_err(|e| e.to_string()),
            );
        }
        self.out.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_call_from_the_writer_of_the_plugins_own_output_is_refused_and_the_outputs_stay_apart() {
    let dir = fixtures(false);
    let host = host(dir.path());
    let mut writer = Reentrant {
        host: &host,
        out: Vec::new(),
        nested: None,
    };
    host.run_command("iso-echo", &["outer"], &mut writer)
        .unwrap();
    assert_eq!(String::from_utf8(writer.out).unwrap(), "outer\n");
    let nested = writer.nested.unwrap().unwrap_err();
    assert!(
        nested.contains("plugin `iso` is isolated: it cannot be called from the writer of its own command's output"),
        "{nested}"
    );
    // Refused, not faulted: the plugin goes on.
    assert_eq!(
        run(&host, "iso-echo", &["after"]),
        ("after\n".to_owned(), Ok(()))
    );
}

#[test]
fn a_library_refused_by_its_checks_is_refused_as_in_process_and_the_others_load() {
    let dir = fixtures(false);
    // An ABI major the host does not support: the child's checks refuse it, and so does the
    // in-process loader, with its own reason and kind.
    integration_tests::compile_c_fixture(
        dir.path(),
        "badabi",
        &["FIXTURE_NAME=\"badabi\"", "FIXTURE_MAJOR=99"],
    );
    let mut host = PluginHost::new();
    host.set_child_program(build().join("plughost"));
    host.isolate_all(true);
    host.load_dir(dir.path()).unwrap();
    let refused = host.refused();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        matches!(
            refused[0].kind,
            plughost::LoadErrorKind::AbiVersion { major: 99, .. }
        ),
        "{:?}",
        refused[0]
    );
    assert_eq!(run(&host, "iso-echo", &["x"]), ("x\n".to_owned(), Ok(())));
    assert_eq!(run(&host, "pong-ok", &[]), ("ok\n".to_owned(), Ok(())));
}

/// The CPU time (user and system) a process or thread has used, in milliseconds, from its
/// `stat` file (`/proc/PID/stat`, `/proc/thread-self/stat`).
fn cpu_ms(stat: &str) -> u64 {
    let text = std::fs::read_to_string(stat).unwrap();
    // The fields after the command's name (which may hold spaces), from the state on: utime and
    // stime are the 14th and 15th fields of the line, the 12th and 13th after the name.
    let after_name = &text[text.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second: u64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100);
    ticks * 1000 / per_second
}

/// The isolation's waits spin briefly before they block: a child idle between calls ends up
/// blocked, using no CPU. A resource check: a child that spun while idle would use the whole
/// second.
#[test]
fn an_idle_child_uses_no_cpu() {
    let dir = fixtures(false);
    let host = host(dir.path());
    let stat = format!("/proc/{}/stat", pid_of(&host, "iso"));
    // Calls in a row, as fast as they come: the child's waits spin.
    for _ in 0..200 {
        assert_eq!(run(&host, "iso-echo", &["x"]).0, "x\n");
    }
    let before = cpu_ms(&stat);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let used = cpu_ms(&stat) - before;
    assert!(used < 100, "the idle child used {used} ms of CPU in 1 s");
    assert_eq!(run(&host, "iso-echo", &["y"]).0, "y\n");
}

/// The host's wait for a long command spins briefly, then blocks: the calling thread does not
/// keep a core busy for the command's duration (here until the call timeout, 1 s). The timeout
/// still ends the call.
#[test]
fn a_long_command_does_not_keep_the_host_busy() {
    let dir = fixtures(false);
    let host = host_with(dir.path(), |h| {
        h.set_call_timeout(Some(std::time::Duration::from_secs(1)))
    });
    for _ in 0..20 {
        assert_eq!(run(&host, "iso-echo", &["x"]).0, "x\n");
    }
    let before = cpu_ms("/proc/thread-self/stat");
    let (out, result) = run(&host, "iso-hang", &[]);
    let used = cpu_ms("/proc/thread-self/stat") - before;
    assert_eq!(out, "before iso-hang\n");
    let error = result.unwrap_err();
    assert!(
        error.contains("timed out in command `iso-hang` after 1 s"),
        "{error}"
    );
    assert!(
        used < 100,
        "waiting 1 s for the child used {used} ms of CPU"
    );
}

/// Polls `f` until it gives a value, for up to 20 s: a wait for something that must happen, not
/// a check of how soon.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "waited 20 s for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// How many threads of this process are the host's listener of the child `pid` (the thread
/// named `events-PID`).
fn listeners_of(pid: u32) -> usize {
    let name = format!("events-{pid}");
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .count()
}

/// Waits until the listener of the child `pid` has started (a new thread takes its name once it
/// runs), then checks that it is the only one.
fn wait_listener(pid: u32) {
    let count = wait_for(&format!("the listener of child {pid}"), || {
        Some(listeners_of(pid)).filter(|&n| n > 0)
    });
    assert_eq!(count, 1, "one listener for the child {pid}");
}

/// Waits until the listener of the child `pid` has ended.
fn wait_listener_gone(pid: u32) {
    wait_for(&format!("the end of the listener of child {pid}"), || {
        (listeners_of(pid) == 0).then_some(())
    });
}

#[test]
fn an_isolated_plugins_own_event_of_megabytes_reaches_the_host() {
    let dir = fixtures(false);
    let mut host = host(dir.path());
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&sizes);
    host.subscribe("isolate.big", move |_, payload| {
        let all_e = payload.iter().all(|&b| b == b'e');
        into.lock().unwrap().push((payload.len(), all_e));
    })
    .unwrap();
    assert_eq!(run(&host, "iso-bigevent", &[]), (String::new(), Ok(())));
    assert_eq!(*sizes.lock().unwrap(), vec![(3 << 20, true)]);
    assert_eq!(
        run(&host, "iso-echo", &["still", "here"]),
        ("still here\n".to_owned(), Ok(()))
    );
    host.shutdown();
}

#[test]
fn a_log_record_longer_than_a_message_reaches_the_host_cut_and_the_plugin_serves_on() {
    let dir = fixtures(false);
    let records = Arc::new(Records::default());
    let mut host = PluginHost::with_observer(records.clone());
    host.set_child_program(build().join("plughost"));
    host.isolate("iso");
    host.load_dir(dir.path()).unwrap();
    // In-process a plugin may log 2 MiB at once; isolated, the record is cut, not refused.
    assert_eq!(run(&host, "iso-biglog", &[]), (String::new(), Ok(())));
    let records = records.0.lock().unwrap();
    let (plugin, level, target, message) = records
        .iter()
        .find(|(_, _, target, _)| target.ends_with("big"))
        .unwrap_or_else(|| panic!("no record of iso-biglog among {} records", records.len()));
    assert_eq!(
        (plugin.as_str(), *level),
        ("iso", log::Level::Warn),
        "{target}"
    );
    assert!(message.len() < 1 << 20, "{} bytes", message.len());
    assert!(message.starts_with("xxxx"), "{}", &message[..20]);
    assert!(
        message.ends_with(
            "... (2097152 bytes, cut: an isolated plugin's log record is at most 960 KiB)"
        ),
        "{}",
        &message[message.len() - 100..]
    );
    drop(records);
    assert_eq!(
        run(&host, "iso-echo", &["still", "here"]),
        ("still here\n".to_owned(), Ok(()))
    );
}

#[test]
fn events_and_log_records_from_a_plugins_own_thread_reach_the_host_and_its_handlers_may_call_back()
{
    let dir = fixtures(false);
    let records = Arc::new(Records::default());
    let mut host = PluginHost::with_observer(records.clone());
    host.set_child_program(build().join("plughost"));
    host.isolate("iso");
    host.load_dir(dir.path()).unwrap();
    let pid = pid_of(&host, "iso");
    wait_listener(pid);
    let host = Arc::new(host);

    // The application's handler calls back into the isolated plugin's command, from the
    // thread that delivers the event.
    type Seen = Vec<(String, Vec<u8>, Result<String, String>)>;
    let seen = Arc::new(Mutex::new(Seen::new()));
    let weak = Arc::downgrade(&host);
    let into = Arc::clone(&seen);
    let handle = host
        .subscribe("isolate.bg", move |topic, payload| {
            let called = match weak.upgrade() {
                Some(host) => {
                    let (out, result) = run(&host, "iso-echo", &["from", "handler"]);
                    result.map(|()| out)
                }
                None => Err("the host is gone".to_owned()),
            };
            into.lock()
                .unwrap()
                .push((topic.to_owned(), payload.to_owned(), called));
        })
        .unwrap();
    // The thread publishes after its command returned.
    assert_eq!(
        run(&host, "iso-spawn", &["isolate.bg", "hello", "3"]),
        ("spawned\n".to_owned(), Ok(()))
    );
    let events = wait_for("three events of the plugin's thread", || {
        let seen = seen.lock().unwrap();
        (seen.len() >= 3).then(|| seen.clone())
    });
    assert_eq!(events.len(), 3, "{events:?}");
    for (topic, payload, called) in &events {
        assert_eq!(
            (topic.as_str(), payload.as_slice()),
            ("isolate.bg", &b"hello"[..])
        );
        assert_eq!(called.as_deref(), Ok("from handler\n"));
    }
    let line = (
        "iso".to_owned(),
        log::Level::Info,
        "iso".to_owned(),
        "from a thread: isolate.bg".to_owned(),
    );
    wait_for("the log record of the plugin's thread", || {
        records.0.lock().unwrap().contains(&line).then_some(())
    });

    // An in-process plugin receives the thread's event: pong handles `isolate.ping` by
    // publishing `isolate.pong`, which reaches the isolated plugin (a call into its child from
    // the listener), then the application.
    let (pongs, pong_handle) = count_events(&host, "isolate.pong");
    assert_eq!(
        run(&host, "iso-spawn", &["isolate.ping", "x", "1"]),
        ("spawned\n".to_owned(), Ok(()))
    );
    wait_for("pong's answer to the thread's ping", || {
        (pongs.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(())
    });
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=2\n".to_owned(), Ok(()))
    );
    // The plugin's own subscriber receives what its thread publishes once: in the child (the
    // host's copy of its subscription skips it). Every `isolate.pong` reaches the plugin and
    // the application once each, so their counts meet once the thread's local delivery is done
    // (it may follow the host's), and the plugin's never passes the application's.
    assert_eq!(
        run(&host, "iso-spawn", &["isolate.pong", "y", "1"]),
        ("spawned\n".to_owned(), Ok(()))
    );
    wait_for("the thread's pong", || {
        (pongs.load(std::sync::atomic::Ordering::SeqCst) == 3).then_some(())
    });
    wait_for("the counts to meet", || {
        let (out, result) = run(&host, "iso-ping", &[]);
        result.unwrap();
        let plugin: usize = out.trim().strip_prefix("pongs=").unwrap().parse().unwrap();
        let application = pongs.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            plugin <= application,
            "{plugin} pongs in the plugin, {application} in the application"
        );
        (plugin == application).then_some(())
    });

    host.unregister(handle).unwrap();
    host.unregister(pong_handle).unwrap();
    let host = Arc::into_inner(host).expect("the only reference to the host");
    host.unload("iso").unwrap();
    assert!(gone(pid), "the child {pid} exited at unload and was reaped");
    wait_listener_gone(pid);
}

#[test]
fn a_thread_that_keeps_publishing_does_not_harm_the_host_at_shutdown() {
    let dir = fixtures(false);
    let mut host = host(dir.path());
    let pid = pid_of(&host, "iso");
    let (count, _) = count_events(&host, "isolate.forever");
    assert_eq!(
        run(&host, "iso-forever", &[]),
        ("spawned\n".to_owned(), Ok(()))
    );
    wait_for("ten events of the plugin's thread", || {
        (count.load(std::sync::atomic::Ordering::SeqCst) >= 10).then_some(())
    });
    host.shutdown();
    assert!(
        gone(pid),
        "the child {pid} exited at shutdown and was reaped"
    );
    wait_listener_gone(pid);
    let after = count.load(std::sync::atomic::Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), after);
    drop(host);
}

#[test]
fn a_malformed_message_from_a_plugins_own_thread_faults_it_in_one_line() {
    let dir = fixtures(false);
    let host = host(dir.path());
    let pid = pid_of(&host, "iso");
    // The listener may fault the plugin before or after the command's answer.
    let (out, result) = run(&host, "iso-garbage-events", &[]);
    let fault = wait_for("the fault", || {
        host.plugins()
            .into_iter()
            .find(|p| p.name == "iso")
            .and_then(|p| p.fault)
    });
    assert_eq!(fault.lines().count(), 1, "{fault}");
    assert!(
        fault.starts_with(&format!(
            "its child process (pid {pid}) sent a malformed message"
        )) && fault.ends_with("from a thread of its own; it was killed"),
        "{fault}"
    );
    match result {
        Ok(()) => assert_eq!(out, "sent\n"),
        Err(error) => assert!(error.contains(&fault), "{error}"),
    }
    assert!(gone(pid));
    wait_listener_gone(pid);
    assert_eq!(run(&host, "pong-ok", &[]), ("ok\n".to_owned(), Ok(())));
    assert!(run(&host, "iso-echo", &[]).1.is_err());
}

#[test]
fn a_child_that_drips_a_frame_still_times_out() {
    let dir = fixtures(false);
    let host = host_with(dir.path(), |host| {
        host.set_call_timeout(Some(std::time::Duration::from_secs(1)))
    });
    let pid = pid_of(&host, "iso");
    // Each byte of a frame comes within the socket's read timeout, the whole frame would take
    // days: the call times out all the same.
    let (out, result) = run(&host, "iso-drip", &[]);
    assert_eq!(out, "");
    let error = result.unwrap_err();
    assert!(
        error.contains("timed out in command `iso-drip` after 1 s"),
        "{error}"
    );
    assert!(gone(pid), "the child {pid} was killed and reaped");
}

#[test]
fn an_event_larger_than_a_frame_reaches_an_isolated_subscriber() {
    let dir = fixtures(false);
    let host = host(dir.path());
    // Payloads have no limit (docs/abi.md); iso subscribes to `isolate.pong`.
    let payload = vec![7u8; 3 << 20];
    host.publish("isolate.pong", &payload).unwrap();
    let iso = host
        .plugins()
        .into_iter()
        .find(|p| p.name == "iso")
        .unwrap();
    assert_eq!(iso.state, PluginState::Active, "{:?}", iso.fault);
    // pong answers the ping with one more `isolate.pong`.
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=2\n".to_owned(), Ok(()))
    );
    // Arguments have no limit either.
    let long = "y".repeat(2 << 20);
    let (out, result) = run(&host, "iso-echo", &[&long]);
    assert_eq!(result, Ok(()));
    assert_eq!(out.len(), long.len() + 1);
}

#[test]
fn an_isolated_plugins_event_relayed_with_the_same_payload_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    build();
    compile_c(dir.path(), "isolate.c", "iso", &[]);
    let host = Arc::new(host(dir.path()));
    // The application relays `isolate.ping` (iso's) as `isolate.pong` (which iso subscribes
    // to), handing the payload on as it got it: the same bytes at the same address.
    let relay = Arc::downgrade(&host);
    host.subscribe("isolate.ping", move |_, payload| {
        if let Some(host) = relay.upgrade() {
            host.publish("isolate.pong", payload).unwrap();
        }
    })
    .unwrap();
    // An `isolate.pong` of iso's own thread reaches iso once (in its child), not again from
    // the host.
    let (seen, _) = count_events(&host, "isolate.pong");
    assert_eq!(
        run(&host, "iso-spawn", &["isolate.pong", "p", "1"]),
        ("spawned\n".to_owned(), Ok(()))
    );
    wait_for("the thread's event", || {
        (seen.load(std::sync::atomic::Ordering::SeqCst) == 1).then_some(())
    });
    // Its own pong, then the relayed one.
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=2\n".to_owned(), Ok(()))
    );
}

#[test]
fn a_crash_is_reported_as_such_while_a_process_the_plugin_forked_holds_its_sockets() {
    let dir = fixtures(false);
    let host = host_with(dir.path(), |host| {
        host.set_call_timeout(Some(std::time::Duration::from_secs(3)))
    });
    let pid = pid_of(&host, "iso");
    // The forked process keeps the child's ends of both sockets open for 10 s after the child
    // died: the host learns of the crash from the child's exit, not from the call timeout.
    let (out, result) = run(&host, "iso-fork-segv", &[]);
    assert_eq!(out, "before iso-fork-segv\n");
    let error = result.unwrap_err();
    assert!(
        error.contains(&format!(
            "its child process (pid {pid}) was killed by signal SIGSEGV (segmentation fault) in command `iso-fork-segv`"
        )),
        "{error}"
    );
    assert!(gone(pid));
}

#[test]
fn a_descriptor_the_host_process_leaves_open_on_exec_does_not_reach_a_child() {
    let dir = fixtures(false);
    let host = host(dir.path());
    let marker = dir.path().join("marker.txt");
    std::fs::write(&marker, "x").unwrap();
    // An in-process plugin opens a file the C way, without close-on-exec; a child started
    // after that (a reload of iso starts one) must not inherit it.
    let path = marker.to_str().unwrap();
    assert_eq!(
        run(&host, "pong-open", &[path]),
        ("opened\n".to_owned(), Ok(()))
    );
    host.reload("iso").unwrap();
    let pid = pid_of(&host, "iso");
    let held: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .collect();
    assert!(
        !held.iter().any(|target| target == &marker),
        "the child {pid} holds {held:?}"
    );
}

#[test]
fn a_call_timeout_too_long_to_count_is_no_limit() {
    let dir = fixtures(false);
    // The library: the longest duration there is.
    let host = host_with(dir.path(), |host| {
        host.set_call_timeout(Some(std::time::Duration::MAX))
    });
    assert_eq!(run(&host, "iso-echo", &["hi"]), ("hi\n".to_owned(), Ok(())));
    drop(host);
    // The command line: more seconds than a duration holds.
    let output = shell(dir.path(), &["--call-timeout", "1e300"], "iso-echo hi\n");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "hi\n");
}

#[test]
fn a_library_that_drips_a_frame_before_the_hello_times_out_while_opening() {
    build();
    let dir = tempfile::tempdir().unwrap();
    compile_c(
        dir.path(),
        "isolate.c",
        "isodrip",
        &["FIXTURE_DRIP_IN_CONSTRUCTOR", "FIXTURE_NAME=\"isodrip\""],
    );
    let mut host = PluginHost::new();
    host.set_child_program(build().join("plughost"));
    host.isolate("isodrip");
    host.set_call_timeout(Some(std::time::Duration::from_secs(1)));
    host.load_dir(dir.path()).unwrap();
    let refused = host.refused();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let reason = refused[0].to_string();
    assert!(
        reason.contains("timed out while opening the library after 1 s"),
        "{reason}"
    );
}

#[test]
fn on_crash_a_restart_whose_init_fails_faults_the_plugin_rather_than_leave_it_unreachable() {
    build();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("abort-in-init");
    compile_c(
        dir.path(),
        "isolate.c",
        "iso",
        &[&format!(
            "FIXTURE_ABORT_IN_INIT_IF=\"{}\"",
            marker.display()
        )],
    );
    let host = host_with(dir.path(), |h| h.set_restart(plughost::Restart::OnCrash));
    assert!(run(&host, "iso-segv", &[]).1.is_err());
    // The restart's init aborts: the new child's registrations were never made, and the old
    // child's ended, so no later call could restart it: the plugin is faulted, and says why.
    std::fs::write(&marker, "").unwrap();
    let error = run(&host, "iso-echo", &["x"]).1.unwrap_err();
    assert!(
        error.contains("plugin `iso` is faulted: ")
            && error.contains("SIGABRT (abort) in init")
            && !error.contains("it restarts"),
        "{error}"
    );
    let iso = host
        .plugins()
        .into_iter()
        .find(|p| p.name == "iso")
        .unwrap();
    assert_eq!(iso.state, PluginState::Faulted);
    assert!(iso.fault.unwrap().contains("in init"));
}

#[test]
fn a_crashed_childs_late_unregistration_spares_its_successors_registration() {
    let dir = fixtures(false);
    let host = host_with(dir.path(), |h| h.set_restart(plughost::Restart::OnCrash));
    let first = pid_of(&host, "iso");
    // The application's handler of `isolate.block` holds the first child's listener until the
    // test releases it.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Mutex::new(held);
    host.subscribe("isolate.block", move |_, _| {
        let _ = held.lock().unwrap().recv();
    })
    .unwrap();
    // A thread of iso publishes `isolate.block`, then ends iso's subscription to
    // `isolate.pong`; then iso crashes. The unregistration waits in the first listener's
    // backlog.
    assert!(run(&host, "iso-unsub-crash", &[]).1.is_err());
    // The next call restarts iso, whose new child subscribes to `isolate.pong` again (with the
    // same handle in its own numbering).
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=1\n".to_owned(), Ok(()))
    );
    // The first listener serves the rest of the old child's backlog, then ends: that
    // unregistration was the old child's, and the new child's subscription stays.
    release.send(()).unwrap();
    wait_listener_gone(first);
    assert_eq!(
        run(&host, "iso-ping", &[]),
        ("pongs=2\n".to_owned(), Ok(()))
    );
}
