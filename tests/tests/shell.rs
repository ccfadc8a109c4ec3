//! `plughost shell`, the real binary with real plugins: scripted sessions (standard input not a
//! terminal), sessions driven line by line while plugin files change (`reload`, `--watch`), and
//! the line editor on a terminal (through `script`, which gives the shell a pseudo-terminal).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use integration_tests::{
    compile_reload_fixture, library_file, plughost, plugins_dir, stderr, stdout,
};

/// How long a test waits for a line it expects before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `plughost --plugins PLUGINS shell ARGS` with `script` as its standard input.
fn scripted(plugins: &Path, args: &[&str], script: &str) -> std::process::Output {
    let mut child = plughost(plugins)
        .arg("shell")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start plughost shell");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn a_scripted_session_keeps_plugins_loaded_between_commands() {
    let dir = plugins_dir(&["wordfreq", "journal"]);
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "one two two").unwrap();
    let script = format!("wordfreq {}\njournal\n", text.display());
    let output = scripted(dir.path(), &[], &script);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "2\ttwo\n1\tone\n1\twordfreq.totals\tfiles=1 words=3 distinct=2 bytes=11\n",
        "{}",
        stderr(&output)
    );
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_failing_line_prints_one_line_and_the_session_goes_on() {
    let dir = plugins_dir(&["wordfreq", "journal"]);
    let script = "# a comment, then an empty line\n\nnosuch-command\nwordfreq /no/such/file\n\
                  wordfreq 'unterminated\nunload nosuch\nlist extra words\nrun\njournal\n\
                  help wordfreq\nwordfreq --help\n";
    let output = scripted(dir.path(), &[], script);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let stderr = stderr(&output);
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 6, "{errors:#?}");
    assert!(
        errors.iter().all(|l| l.starts_with("plughost: ")),
        "{errors:#?}"
    );
    assert!(
        errors[0].contains("no command named `nosuch-command`"),
        "{errors:#?}"
    );
    assert!(errors[1].contains("/no/such/file"), "{errors:#?}");
    assert!(errors[2].contains("unterminated ' quote"), "{errors:#?}");
    assert!(
        errors[3].contains("no plugin named `nosuch` is loaded"),
        "{errors:#?}"
    );
    assert!(errors[4].starts_with("plughost: usage: "), "{errors:#?}");
    // The lines after the failures ran: journal (nothing published: wordfreq failed), and the
    // usage twice.
    let out = stdout(&output);
    assert_eq!(
        out.matches("Usage: wordfreq [--top N] FILE...").count(),
        2,
        "{out}"
    );
    assert!(out.contains("From the plugin wordfreq"), "{out}");
}

#[test]
fn help_lists_each_command_with_its_description_or_none() {
    let dir = plugins_dir(&["probe"]);
    let output = scripted(dir.path(), &[], "help\n");
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let line = |command: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_else(|| panic!("no line for {command}: {out}"))
            .to_owned()
    };
    assert_eq!(line("probe-ok"), "  probe-ok (probe): Prints ok");
    // `probe-log` has no description: no `:` after its plugin.
    assert_eq!(line("probe-log"), "  probe-log (probe)");
}

#[test]
fn a_successful_session_exits_with_status_0_and_exit_ends_it() {
    let dir = plugins_dir(&["journal"]);
    let output = scripted(dir.path(), &[], "journal\nexit\nnosuch-command\n");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_line_that_is_not_utf8_fails_alone() {
    let dir = plugins_dir(&["journal"]);
    let mut child = plughost(dir.path())
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"journal \xff\njournal\n").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "plughost: line 1 is not valid UTF-8; commands take UTF-8 arguments only\n"
    );
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_plugin_calling_exit_ends_the_session_with_status_70_and_the_output_kept() {
    let dir = plugins_dir(&["crasher", "journal"]);
    let output = scripted(dir.path(), &[], "journal\ncrash-exit\njournal\n");
    assert_eq!(output.status.code(), Some(70), "{}", stderr(&output));
    assert_eq!(stdout(&output), "written before exit(0)\n");
    assert!(
        stderr(&output).contains(
            "plughost: plugin `crasher` called exit(0) during command `crash-exit`; the command did not finish"
        ),
        "{}",
        stderr(&output)
    );
}

/// A shell driven line by line: each line is sent when the test wants, and its output read as it
/// comes.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Session {
    fn start(plugins: &Path, args: &[&str]) -> Session {
        let mut child = plughost(plugins)
            .arg("shell")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start plughost shell");
        let stdin = child.stdin.take();
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Session {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the session's input is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// The next line of standard output.
    fn out(&self) -> String {
        next_line(&self.stdout, "standard output")
    }

    /// The next line of standard error.
    fn err(&self) -> String {
        next_line(&self.stderr, "standard error")
    }

    /// Ends the input and returns the exit status, and what is left on standard error.
    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        (status.code(), self.stderr.iter().collect())
    }
}

/// The lines read from `stream`, through a channel, as they come.
fn lines_of(stream: impl Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

fn next_line(lines: &Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|e| panic!("no line on {what} within {PATIENCE:?}: {e}"))
}

/// A plugins folder with the first build of the reload fixture (`reloadable`, prints `v1`,
/// version 1.0.0), and a folder with its second build (prints `v2`, version 2.0.0).
struct Builds {
    plugins: tempfile::TempDir,
    builds: tempfile::TempDir,
}

impl Builds {
    fn new() -> Builds {
        let builds = Builds {
            plugins: tempfile::tempdir().unwrap(),
            builds: tempfile::tempdir().unwrap(),
        };
        compile_reload_fixture(builds.plugins.path(), "reloadable", &[]);
        builds
    }

    fn file(&self) -> PathBuf {
        self.plugins.path().join(library_file("reloadable"))
    }

    fn build(&self, tag: &str, defines: &[&str]) -> PathBuf {
        let dir = self.builds.path().join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        compile_reload_fixture(&dir, "reloadable", defines)
    }

    fn v2(&self) -> PathBuf {
        self.build(
            "v2",
            &["FIXTURE_OUTPUT=\"v2\"", "FIXTURE_VERSION=\"2.0.0\""],
        )
    }
}

/// Puts `build` in place of `file` as cargo does: a new file renamed over the old one.
fn replace(build: &Path, file: &Path) {
    let staged = file.with_file_name(".incoming");
    std::fs::copy(build, &staged).unwrap();
    std::fs::rename(&staged, file).unwrap();
}

#[test]
fn a_c_plugin_rebuilt_between_two_commands_serves_its_new_output_after_reload() {
    let builds = Builds::new();
    let mut shell = Session::start(builds.plugins.path(), &[]);
    shell.send("reloadable");
    assert_eq!(shell.out(), "v1");
    replace(&builds.v2(), &builds.file());
    // Not yet: the host runs its own copy of the first build.
    shell.send("reloadable");
    assert_eq!(shell.out(), "v1");
    shell.send("reload reloadable");
    assert_eq!(
        shell.out(),
        format!(
            "reloaded reloadable 1.0.0 -> 2.0.0 from {}",
            builds.file().display()
        )
    );
    shell.send("reloadable");
    assert_eq!(shell.out(), "v2");
    // The copies it runs are in private folders of the cache folder while it runs...
    let pid = shell.child.id();
    assert_eq!(copies_of(pid).len(), 2, "{:?}", copies_of(pid));
    for folder in copies_of(pid) {
        assert!(folder.join(library_file("reloadable")).is_file());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", folder.display());
    }
    let (status, errors) = shell.finish();
    assert_eq!((status, errors), (Some(0), vec![]));
    // ... and gone once it has exited.
    assert_eq!(copies_of(pid), Vec::<PathBuf>::new());
}

/// The private-copy folders of the process `pid` (see `host/src/copy.rs`).
fn copies_of(pid: u32) -> Vec<PathBuf> {
    // The folder the host uses (the test runs with the same environment as the shell).
    let folder = match dirs::cache_dir() {
        Some(cache) => cache.join("plughost"),
        None => std::env::temp_dir(),
    };
    let prefix = format!("plughost-copy-{pid}-");
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[test]
fn a_reload_that_fails_keeps_the_old_version_serving_in_the_shell() {
    let builds = Builds::new();
    let mut shell = Session::start(builds.plugins.path(), &[]);
    shell.send("reloadable");
    assert_eq!(shell.out(), "v1");

    replace(
        &builds.build("init-fails", &["FIXTURE_INIT_FAILS"]),
        &builds.file(),
    );
    shell.send("reload reloadable");
    // The plugin's error record, then the line that repeats it with the reload's failure.
    let record = shell.err();
    assert!(
        record.contains("ERROR reloadable] init fails, as asked"),
        "{record}"
    );
    let line = shell.err();
    assert!(
        line.starts_with(
            "plughost: reload of `reloadable` failed, the old version keeps serving: "
        ) && line.ends_with("init failed: error: init fails, as asked"),
        "{line}"
    );
    shell.send("reloadable");
    assert_eq!(shell.out(), "v1");

    // A library built against another layout of the ABI, where the plugin was.
    replace(
        &integration_tests::library("layout_mismatch"),
        &builds.file(),
    );
    shell.send("reload reloadable");
    let line = shell.err();
    assert!(line.contains("type layout of the ABI differs"), "{line}");
    assert!(line.contains("the old version keeps serving"), "{line}");
    shell.send("reloadable");
    assert_eq!(shell.out(), "v1");

    let (status, errors) = shell.finish();
    assert_eq!(status, Some(1), "{errors:?}");
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn a_rebuild_written_over_the_file_in_place_does_not_crash_the_shell() {
    use std::os::unix::fs::MetadataExt;

    let builds = Builds::new();
    let mut shell = Session::start(builds.plugins.path(), &[]);
    shell.send("reloadable");
    assert_eq!(shell.out(), "v1");
    let file = builds.file();
    let inode = std::fs::metadata(&file).unwrap().ino();
    let v2 = std::fs::read(builds.v2()).unwrap();
    // As `cp` does: the same file truncated and written again, first in part, then whole.
    for bytes in [&v2[..v2.len() / 2], &v2[..]] {
        std::fs::write(&file, bytes).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode);
        shell.send("reloadable");
        assert_eq!(shell.out(), "v1");
    }
    shell.send("reload");
    assert!(shell
        .out()
        .starts_with("reloaded reloadable 1.0.0 -> 2.0.0"));
    shell.send("reloadable");
    assert_eq!(shell.out(), "v2");
    let (status, errors) = shell.finish();
    assert_eq!((status, errors), (Some(0), vec![]));
}

#[test]
fn load_and_unload_in_a_running_shell() {
    let builds = Builds::new();
    let other = tempfile::tempdir().unwrap();
    let journal = other.path().join(library_file("journal"));
    std::fs::copy(integration_tests::library("journal"), &journal).unwrap();
    let mut shell = Session::start(builds.plugins.path(), &[]);
    shell.send(&format!("load {}", journal.display()));
    assert_eq!(
        shell.out(),
        format!("loaded journal 0.1.0 from {}", journal.display())
    );
    shell.send("unload reloadable");
    assert_eq!(shell.out(), "unloaded reloadable");
    // The journal saw the unloaded plugin's last event (published by its shutdown).
    shell.send("journal");
    assert_eq!(shell.out(), "1\treload.final\t0");
    shell.send("reloadable");
    assert!(shell.err().contains("no command named `reloadable`"));
    let (status, _) = shell.finish();
    assert_eq!(status, Some(1));
}

/// The next line of standard error that starts with `watch: `, skipping log records.
fn watch_line(shell: &Session) -> String {
    loop {
        let line = shell.err();
        if line.starts_with("watch: ") {
            return line;
        }
    }
}

#[test]
fn watch_reloads_a_rebuilt_library_loads_a_new_one_and_unloads_a_removed_one() {
    let builds = Builds::new();
    let folder = builds.plugins.path();
    let mut shell = Session::start(folder, &["--watch"]);
    shell.send("reloadable");
    assert_eq!(shell.out(), "v1");

    // Rebuilt as cargo does it: a new file linked or renamed into place.
    replace(&builds.v2(), &builds.file());
    assert_eq!(
        watch_line(&shell),
        format!(
            "watch: reloaded reloadable 1.0.0 -> 2.0.0 from {}",
            builds.file().display()
        )
    );
    shell.send("reloadable");
    assert_eq!(shell.out(), "v2");

    // Written in place in several steps, as a linker writing its output may.
    let v3 = std::fs::read(builds.build(
        "v3",
        &["FIXTURE_OUTPUT=\"v3\"", "FIXTURE_VERSION=\"3.0.0\""],
    ))
    .unwrap();
    {
        let mut file = std::fs::File::create(builds.file()).unwrap();
        for chunk in v3.chunks(v3.len() / 4 + 1) {
            file.write_all(chunk).unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Caught half written (on a slow machine the pauses may outlast the debounce), a build fails
    // to load and the old version serves; the rest of the write brings the next attempt.
    let mut line = watch_line(&shell);
    while line.starts_with("watch: reload of `reloadable` failed, the old version keeps serving") {
        line = watch_line(&shell);
    }
    assert!(
        line.starts_with("watch: reloaded reloadable 2.0.0 -> 3.0.0"),
        "{line}"
    );
    shell.send("reloadable");
    assert_eq!(shell.out(), "v3");

    // A new library, then its removal.
    let other = folder.join(library_file("other"));
    let other_build = builds.build(
        "other",
        &["FIXTURE_NAME=\"other\"", "FIXTURE_OUTPUT=\"other\""],
    );
    replace(&other_build, &other);
    assert_eq!(
        watch_line(&shell),
        format!("watch: loaded other 1.0.0 from {}", other.display())
    );
    shell.send("other");
    assert_eq!(shell.out(), "other");
    std::fs::remove_file(&other).unwrap();
    assert_eq!(
        watch_line(&shell),
        format!("watch: unloaded other ({} was removed)", other.display())
    );

    // A build whose init fails: the version before keeps serving.
    replace(
        &builds.build("init-fails", &["FIXTURE_INIT_FAILS"]),
        &builds.file(),
    );
    let line = watch_line(&shell);
    assert!(
        line.starts_with("watch: reload of `reloadable` failed, the old version keeps serving"),
        "{line}"
    );
    shell.send("reloadable");
    assert_eq!(shell.out(), "v3");
    shell.send("other");
    let line = shell.err();
    assert!(line.contains("no command named `other`"), "{line}");
    let (status, _) = shell.finish();
    assert_eq!(status, Some(1));
}

/// Starts `plughost shell` on a pseudo-terminal (util-linux `script`), with `home` as its home
/// folder (for the history file).
fn on_terminal(plugins: &Path, home: &Path) -> (Child, Receiver<String>) {
    let plughost_program = plughost(plugins);
    let command_line = format!(
        "{} --plugins {} shell",
        plughost_program.get_program().to_string_lossy(),
        plugins.display()
    );
    let mut child = Command::new("script")
        .args([
            "--quiet",
            "--return",
            "--command",
            &command_line,
            "/dev/null",
        ])
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("PLUGHOST_PLUGINS")
        .env("TERM", "xterm")
        .env("COLUMNS", "200")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) is needed to run the shell on a pseudo-terminal");
    let out = child.stdout.take().unwrap();
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        let mut out = out;
        let mut buffer = [0u8; 4096];
        while let Ok(n) = out.read(&mut buffer) {
            if n == 0
                || sender
                    .send(String::from_utf8_lossy(&buffer[..n]).into_owned())
                    .is_err()
            {
                return;
            }
        }
    });
    (child, receiver)
}

/// Reads the terminal's output into `seen` until it contains `wanted` (after `from`).
fn wait_for(output: &Receiver<String>, seen: &mut String, from: usize, wanted: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !seen[from..].contains(wanted) {
        let left = deadline.saturating_duration_since(Instant::now());
        match output.recv_timeout(left) {
            Ok(chunk) => seen.push_str(&chunk),
            Err(_) => panic!("{wanted:?} never came; the terminal showed:\n{seen}"),
        }
    }
}

/// Waits for `child` to exit, at most [`PATIENCE`]; kills it and fails with the transcript if it
/// does not (a hung shell must fail the test, not hang the test run).
fn wait_or_kill(
    child: &mut Child,
    output: &Receiver<String>,
    seen: &mut String,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            while let Ok(chunk) = output.recv_timeout(Duration::from_millis(200)) {
                seen.push_str(&chunk);
            }
            panic!("the shell did not exit; the terminal showed:\n{seen}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn on_a_terminal_completion_ctrl_c_ctrl_d_and_the_history_work() {
    let dir = plugins_dir(&["wordfreq", "journal"]);
    let home = tempfile::tempdir().unwrap();
    let (mut child, output) = on_terminal(dir.path(), home.path());
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = String::new();
    let mut type_keys = |keys: &[u8]| {
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
    };
    wait_for(&output, &mut seen, 0, "plughost> ");
    // The command name completes, and runs.
    let mark = seen.len();
    type_keys(b"jou\t");
    wait_for(&output, &mut seen, mark, "journal ");
    let mark = seen.len();
    type_keys(b"\r");
    wait_for(&output, &mut seen, mark, "plughost> ");
    // Its options complete: `--help` and those its usage names (listed at the second Tab).
    let mark = seen.len();
    type_keys(b"wordfreq --\t\t");
    wait_for(&output, &mut seen, mark, "--top");
    // The line is redrawn after the list; Ctrl-C must come after that, while the editor reads.
    wait_for(&output, &mut seen, mark, "plughost> wordfreq --");
    // Ctrl-C drops the line: it does not run. Wait for the next line's editor to be reading (it
    // turns bracketed paste on, `ESC [?2004h`, once the terminal is raw again): a Ctrl-D typed
    // in between would reach the terminal in its normal mode and be lost.
    let mark = seen.len();
    type_keys(b"\x03");
    wait_for(&output, &mut seen, mark, "\x1b[?2004h");
    wait_for(&output, &mut seen, mark, "plughost> ");
    // Ctrl-D leaves.
    type_keys(b"\x04");
    let status = wait_or_kill(&mut child, &output, &mut seen);
    while let Ok(chunk) = output.recv_timeout(Duration::from_secs(1)) {
        seen.push_str(&chunk);
    }
    assert!(status.success(), "{status}; the terminal showed:\n{seen}");
    assert!(!seen.contains("plughost: "), "an error was shown:\n{seen}");
    let history = std::fs::read_to_string(home.path().join(".local/share/plughost/history"))
        .expect("the history file");
    let lines: Vec<&str> = history.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines, ["journal "], "{history}");
}

#[test]
fn journal_keeps_its_counts_across_a_reload() {
    let dir = plugins_dir(&["wordfreq", "journal"]);
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "one two two").unwrap();
    let wordfreq = format!("wordfreq --top 1 {}", text.display());
    let script = format!("{wordfreq}\n{wordfreq}\nreload journal\n{wordfreq}\njournal\n");
    let output = scripted(dir.path(), &[], &script);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let reloaded = out
        .lines()
        .find(|l| l.starts_with("reloaded journal "))
        .unwrap_or_else(|| panic!("no reload line in {out:?}"));
    // The old build's state: its format line, then its one topic, seen twice.
    let state = "journal-state 1\n2\twordfreq.totals\tfiles=1 words=3 distinct=2 bytes=11\n";
    assert!(
        reloaded.ends_with(&format!(", state handed over ({} bytes)", state.len())),
        "{reloaded}"
    );
    // Two events before the reload (handed over), one after it.
    assert!(
        out.ends_with("3\twordfreq.totals\tfiles=1 words=3 distinct=2 bytes=11\n"),
        "{out}"
    );
}

#[test]
fn on_a_terminal_ctrl_c_during_a_command_says_it_keeps_running_and_twice_ends_plughost() {
    let dir = plugins_dir(&["hanger"]);
    let home = tempfile::tempdir().unwrap();
    let (mut child, output) = on_terminal(dir.path(), home.path());
    let mut stdin = child.stdin.take().unwrap();
    let mut seen = String::new();
    let mut type_keys = |keys: &[u8]| {
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
    };
    wait_for(&output, &mut seen, 0, "plughost> ");
    // One Ctrl-C while a command runs: it is said to keep running, it finishes, the session
    // goes on.
    let mark = seen.len();
    type_keys(b"hang-for 3000\r");
    wait_for(&output, &mut seen, mark, "started");
    let mark = seen.len();
    type_keys(b"\x03");
    wait_for(
        &output,
        &mut seen,
        mark,
        "it keeps running (Ctrl-C again ends plughost)",
    );
    wait_for(&output, &mut seen, mark, "done");
    wait_for(&output, &mut seen, mark, "plughost> ");
    // Twice, during a command that never returns: plughost ends with status 130.
    let mark = seen.len();
    type_keys(b"hang\r");
    // The command runs once the editor left the terminal's raw mode (bracketed paste off), so
    // that the terminal turns Ctrl-C into a signal again.
    wait_for(&output, &mut seen, mark, "hang\x1b[?2004l");
    std::thread::sleep(Duration::from_millis(300));
    type_keys(b"\x03");
    wait_for(&output, &mut seen, mark, "it keeps running");
    type_keys(b"\x03");
    let status = wait_or_kill(&mut child, &output, &mut seen);
    assert_eq!(status.code(), Some(130), "{seen}");
}
