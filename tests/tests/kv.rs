//! The `kv` plugin and `journal`'s use of it, through the real `plughost` binary: entries and
//! events kept across processes, two processes writing at once, a damaged or unreadable
//! database file, and the journal with and without `plughost.kv`.
//!
//! Every run gets a configuration that puts the database in a temporary folder, and a temporary
//! `HOME` and `XDG_DATA_HOME`: no test writes to the real data folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use integration_tests::{plughost, plugins_dir, stderr, stdout};

/// A plugins folder, a database path and a configuration file naming it, in temporary folders.
struct Setup {
    plugins: tempfile::TempDir,
    home: tempfile::TempDir,
    database: PathBuf,
    config: PathBuf,
}

impl Setup {
    /// The plugin crates `krates` in a plugins folder; the database at `HOME/db/kv.redb`.
    fn new(krates: &[&str]) -> Setup {
        Setup::with_busy_timeout(krates, 30_000)
    }

    /// As [`Setup::new`], with `kv`'s `busy_timeout_ms` set to `busy_timeout_ms`.
    fn with_busy_timeout(krates: &[&str], busy_timeout_ms: u64) -> Setup {
        let plugins = plugins_dir(krates);
        let home = tempfile::tempdir().unwrap();
        let database = home.path().join("db").join("kv.redb");
        let config = home.path().join("plughost.toml");
        std::fs::write(
            &config,
            format!(
                "[plugins.kv]\npath = {:?}\nbusy_timeout_ms = {busy_timeout_ms}\n",
                database.to_str().unwrap()
            ),
        )
        .unwrap();
        Setup {
            plugins,
            home,
            database,
            config,
        }
    }

    /// `plughost --plugins PLUGINS --config CONFIG ARGS...`, with a temporary home.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = plughost(self.plugins.path());
        command
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("HOME", self.home.path())
            .env("XDG_DATA_HOME", self.home.path().join("data"));
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `args`, which must succeed; returns the standard output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "plughost {args:?} failed: {}",
            stderr(&output)
        );
        stdout(&output)
    }
}

/// The lines of `stderr` that are not empty.
fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn entries_are_kept_across_processes() {
    let setup = Setup::new(&["kv"]);
    assert_eq!(
        setup.ok(&["run", "kv", "put", "greeting", "hello world"]),
        ""
    );
    setup.ok(&["run", "kv", "put", "colour/sky", "blue"]);
    setup.ok(&["run", "kv", "put", "colour/grass", "green"]);
    assert!(setup.database.is_file());
    assert_eq!(setup.ok(&["run", "kv", "get", "greeting"]), "hello world\n");
    assert_eq!(
        setup.ok(&["run", "kv", "list"]),
        "colour/grass\tgreen\ncolour/sky\tblue\ngreeting\thello world\n"
    );
    assert_eq!(
        setup.ok(&["run", "kv", "list", "colour/"]),
        "colour/grass\tgreen\ncolour/sky\tblue\n"
    );
    setup.ok(&["run", "kv", "delete", "colour/sky"]);
    assert_eq!(
        setup.ok(&["run", "kv", "list", "colour/"]),
        "colour/grass\tgreen\n"
    );

    let missing = setup.run(&["run", "kv", "get", "colour/sky"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("no key \"colour/sky\""),
        "{}",
        stderr(&missing)
    );

    let help = setup.ok(&["run", "kv", "--help"]);
    assert!(
        help.contains("get KEY | put KEY VALUE | delete KEY | list [PREFIX]"),
        "{help}"
    );
    // Nothing went to the temporary home's data folder: the configured path was used.
    assert!(!setup.home.path().join("data").exists());
}

#[test]
fn without_a_configured_path_the_database_is_in_the_data_folder() {
    let setup = Setup::new(&["kv"]);
    let mut command = plughost(setup.plugins.path());
    command
        .args(["run", "kv", "put", "k", "v"])
        .env("HOME", setup.home.path())
        .env("XDG_DATA_HOME", setup.home.path().join("data"));
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    if cfg!(target_os = "linux") {
        assert!(setup.home.path().join("data/plughost/kv.redb").is_file());
    }
}

#[test]
fn the_journal_shows_the_events_of_earlier_runs_until_cleared() {
    let setup = Setup::new(&["wordfreq", "journal", "kv"]);
    let text = setup.home.path().join("words.txt");
    std::fs::write(&text, "one two two").unwrap();
    let text = text.to_str().unwrap();
    assert_eq!(setup.ok(&["run", "journal"]), "");
    assert_eq!(setup.ok(&["run", "wordfreq", text]), "2\ttwo\n1\tone\n");
    // A later process shows the event of the earlier one.
    assert_eq!(
        setup.ok(&["run", "journal"]),
        "1\twordfreq.totals\tfiles=1 words=3 distinct=2 bytes=11\n"
    );
    std::fs::write(text, "three").unwrap();
    setup.ok(&["run", "wordfreq", text]);
    assert_eq!(
        setup.ok(&["run", "journal"]),
        "2\twordfreq.totals\tfiles=1 words=1 distinct=1 bytes=5\n"
    );
    // The events are entries of the store, under journal/.
    let stored = setup.ok(&["run", "kv", "list", "journal/"]);
    assert_eq!(stored.lines().count(), 2, "{stored}");
    assert!(
        stored.lines().all(|l| l.contains("\twordfreq.totals\\t")),
        "{stored}"
    );
    let help = setup.ok(&["run", "journal", "--help"]);
    assert!(help.contains("--clear"), "{help}");

    assert_eq!(
        setup.ok(&["run", "journal", "--clear"]),
        "cleared 2 events\n"
    );
    assert_eq!(setup.ok(&["run", "journal"]), "");
    assert_eq!(setup.ok(&["run", "kv", "list"]), "");
}

#[test]
fn without_kv_the_journal_keeps_one_run_as_before() {
    let setup = Setup::new(&["wordfreq", "journal"]);
    let text = setup.home.path().join("words.txt");
    std::fs::write(&text, "one two two").unwrap();
    setup.ok(&["run", "wordfreq", text.to_str().unwrap()]);
    // Loaded although its optional requirement is not met; nothing kept from the last run.
    let output = setup.run(&["--strict", "run", "journal"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "");
    // No `--clear` without a store: the usage of before.
    let output = setup.run(&["run", "journal", "--clear"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("usage: journal (no arguments)"),
        "{}",
        stderr(&output)
    );
    assert!(!setup.database.exists());
}

#[test]
fn a_plugin_that_requires_kv_is_refused_without_it_in_one_line() {
    let setup = Setup::new(&["kv_writer"]);
    let output = setup.run(&["list"]);
    let out = stdout(&output);
    let refusals: Vec<&str> = lines(&out)
        .into_iter()
        .filter(|l| l.starts_with("refused: "))
        .collect();
    assert_eq!(refusals.len(), 1, "{out}");
    assert!(
        refusals[0].contains("requires the interface plughost.kv 1.0"),
        "{refusals:?}"
    );
    // With kv in the folder, it loads, after kv whatever the file names' order.
    let setup = Setup::new(&["kv_writer", "kv"]);
    assert_eq!(setup.ok(&["run", "kv-fill", "k/", "3"]), "wrote 3\n");
    assert_eq!(
        setup.ok(&["run", "kv", "list"]),
        "k/0000\tk/:0\nk/0001\tk/:1\nk/0002\tk/:2\n"
    );
}

#[test]
fn two_processes_writing_200_keys_each_at_once_lose_nothing() {
    // Each write waits for at most 3 s: far more than the other process's one write (the two
    // take turns, write by write), far less than all of its 200 (which a waiter that never got
    // its turn would wait for).
    let setup = Setup::with_busy_timeout(&["kv", "kv_writer"], 3_000);
    // Create the file first, so that both writers start on an existing database.
    setup.ok(&["run", "kv", "put", "start", "1"]);
    let writers: Vec<_> = ["a/", "b/"]
        .iter()
        .map(|prefix| {
            setup
                .command(&["run", "kv-fill", prefix, "200"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for writer in writers {
        let output = writer.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), "wrote 200\n");
    }
    let listed = setup.ok(&["run", "kv", "list"]);
    let mut expected = String::new();
    for prefix in ["a/", "b/"] {
        for i in 0..200 {
            expected.push_str(&format!("{prefix}{i:04}\t{prefix}:{i}\n"));
        }
    }
    expected.push_str("start\t1\n");
    assert_eq!(listed, expected);
}

/// Checks that `output` (of a run with `kv` in the folder) refused `kv` with one line naming
/// `database` and the cause on standard error (the plugin's error record, which that line
/// repeats, comes before it when the log shows errors).
fn assert_refused_naming(output: &Output, database: &Path, what: &str) {
    let err = stderr(output);
    let refusals: Vec<&str> = lines(&err)
        .into_iter()
        .filter(|l| l.starts_with("plughost: refused ") && l.contains("libkv."))
        .collect();
    assert_eq!(refusals.len(), 1, "{err}");
    assert!(
        refusals[0].contains(&database.display().to_string()),
        "{err}"
    );
    assert!(refusals[0].contains(what), "{err}");
    assert!(refusals[0].contains("init failed: error: "), "{err}");
}

#[test]
fn a_file_that_is_not_a_database_refuses_kv_and_is_left_alone() {
    let setup = Setup::new(&["kv", "journal"]);
    std::fs::create_dir_all(setup.database.parent().unwrap()).unwrap();
    std::fs::write(&setup.database, "my notes, not a database\n").unwrap();
    let output = setup.run(&["run", "kv", "list"]);
    assert_eq!(output.status.code(), Some(1));
    assert_refused_naming(&output, &setup.database, "cannot be opened");
    assert_eq!(
        std::fs::read_to_string(&setup.database).unwrap(),
        "my notes, not a database\n"
    );
    // The journal, whose requirement is optional, still runs: in memory.
    assert_eq!(setup.ok(&["run", "journal"]), "");
}

#[test]
fn a_damaged_database_refuses_kv_every_time() {
    let setup = Setup::new(&["kv", "kv_writer"]);
    // 50 commits, each value findable in the file (`M/:N`).
    setup.ok(&["run", "kv-fill", "M/", "50"]);
    let mut bytes = std::fs::read(&setup.database).unwrap();
    let at = bytes
        .windows(5)
        .rposition(|w| w == b"M/:49")
        .expect("the value is in the file");
    for b in &mut bytes[at..at + 32] {
        *b ^= 0x5a;
    }
    std::fs::write(&setup.database, &bytes).unwrap();
    for _ in 0..2 {
        let output = setup.run(&["run", "kv", "get", "k000"]);
        assert_eq!(output.status.code(), Some(1));
        assert_refused_naming(&output, &setup.database, "failed its integrity check");
    }
}

#[test]
fn a_folder_in_place_of_the_database_refuses_kv() {
    let setup = Setup::new(&["kv"]);
    std::fs::create_dir_all(&setup.database).unwrap();
    let output = setup.run(&["run", "kv", "list"]);
    assert_eq!(output.status.code(), Some(1));
    assert_refused_naming(&output, &setup.database, "cannot be opened");
}

#[test]
fn kv_passes_the_conformance_checks() {
    // `validate` loads the plugin without a configuration: the database goes to the data folder
    // of the temporary home.
    let setup = Setup::new(&["kv"]);
    let library = setup
        .plugins
        .path()
        .join(integration_tests::library_file("kv"));
    let output = plughost(setup.plugins.path())
        .arg("validate")
        .arg(&library)
        .env("HOME", setup.home.path())
        .env("XDG_DATA_HOME", setup.home.path().join("data"))
        .output()
        .unwrap();
    let report = stdout(&output);
    assert!(output.status.success(), "{report}{}", stderr(&output));
    for line in lines(&report).into_iter().skip(1) {
        let mut words = line.split_whitespace();
        let (status, check) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        assert!(
            integration_tests::validate_passed(check, status),
            "{report}"
        );
    }
}

#[test]
fn the_journal_goes_on_storing_when_kv_is_reloaded() {
    // A reload of `kv` ends the journal's reference to the old build (the event
    // `plughost.interface-replaced`); the journal queries the store again and keeps storing,
    // with no fall-back to memory.
    let setup = Setup::new(&["wordfreq", "journal", "kv"]);
    let text = setup.home.path().join("words.txt");
    std::fs::write(&text, "one two two").unwrap();
    let wordfreq = format!("wordfreq --top 1 {}", text.display());
    let script = format!("{wordfreq}\nreload kv\n{wordfreq}\njournal\nkv list journal/\n");
    let mut child = setup
        .command(&["shell"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(script.as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(output.status.success(), "{err}");
    assert!(!err.contains("memory only"), "{err}");
    assert!(
        out.contains("2\twordfreq.totals\tfiles=1 words=3 distinct=2 bytes=11\n"),
        "{out}"
    );
    // Every event is in the store: both runs' totals and the replacement of kv itself.
    let stored: Vec<&str> = out.lines().filter(|l| l.starts_with("journal/")).collect();
    assert_eq!(
        stored
            .iter()
            .filter(|l| l.contains("\twordfreq.totals\\t"))
            .count(),
        2,
        "{out}"
    );
    assert!(
        stored
            .iter()
            .any(|l| l.contains("\tplughost.interface-replaced\\tplughost.kv 1")),
        "{out}"
    );
}
