//! The `plughost` binary on real plugins in a temporary plugins folder.

use integration_tests::{
    plughost, plugins_dir, reference_word_counts, stderr, stdout, workspace_root, EXAMPLE_PLUGINS,
};

#[test]
fn list_shows_the_three_example_plugins() {
    let dir = plugins_dir(EXAMPLE_PLUGINS);
    let output = plughost(dir.path()).arg("list").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        5,
        "header, three plugins, journal's interfaces:\n{text}"
    );
    assert_eq!(
        lines[4],
        "interfaces: journal: requires plughost.kv 1.0 (optional)"
    );
    assert!(lines[0].starts_with("NAME"));
    for (line, (name, command)) in lines[1..].iter().zip([
        ("inventory", "plugins"),
        ("journal", "journal"),
        ("wordfreq", "wordfreq"),
    ]) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], name, "{line}");
        assert_eq!(fields[1], env!("CARGO_PKG_VERSION"), "{line}");
        assert_eq!(fields[2], integration_tests::abi_version(), "{line}");
        assert!(
            fields[3].ends_with(&integration_tests::library_file(name)),
            "{line}"
        );
        assert_eq!(fields[4], command, "{line}");
    }
}

#[test]
fn wordfreq_matches_an_independent_count_on_multilingual_text() {
    let dir = plugins_dir(EXAMPLE_PLUGINS);
    let text =
        std::fs::read_to_string(workspace_root().join("tests/data/udhr-article-1.txt")).unwrap();
    // Two files: the text, and the text repeated so that the plugin's 256 KiB chunks end inside
    // words and inside multi-byte characters.
    let files = tempfile::tempdir().unwrap();
    let small = files.path().join("udhr.txt");
    let big = files.path().join("udhr-repeated.txt");
    std::fs::write(&small, &text).unwrap();
    let mut repeated = String::new();
    for i in 0..700 {
        repeated.push_str(&text);
        repeated.push_str(&format!(" extra{} ", i % 7));
    }
    std::fs::write(&big, &repeated).unwrap();

    let all = format!("{text}\n{repeated}");
    let expected = reference_word_counts(&all);
    assert!(expected.len() > 150, "the text has many distinct words");

    for top in [None, Some(1), Some(25), Some(100_000)] {
        let mut command = plughost(dir.path());
        command.args(["run", "wordfreq"]);
        if let Some(n) = top {
            command.args(["--top", &n.to_string()]);
        }
        let output = command.arg(&small).arg(&big).output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let n = top.unwrap_or(10).min(expected.len());
        let wanted: String = expected[..n]
            .iter()
            .map(|(word, count)| format!("{count}\t{word}\n"))
            .collect();
        assert_eq!(stdout(&output), wanted, "--top {top:?}");
    }
}

#[test]
fn wordfreq_gives_the_same_counts_on_any_number_of_worker_threads() {
    let dir = plugins_dir(EXAMPLE_PLUGINS);
    let text =
        std::fs::read_to_string(workspace_root().join("tests/data/udhr-article-1.txt")).unwrap();
    // About 3.5 MiB: more than one block of the plugin's parallel counter for each thread count, so
    // that block ends fall inside words and characters. The first file ends inside a word and
    // the second starts with one: a word does not continue into the next file.
    let mut big = String::new();
    let mut i = 0u64;
    while big.len() < 7 << 19 {
        big.push_str(&text);
        big.push_str(&format!(" Extra{} wörd{}", i % 11, i % 5));
        i += 1;
    }
    big.push_str(" zzq");
    let files = tempfile::tempdir().unwrap();
    let (first, second) = (files.path().join("big.txt"), files.path().join("small.txt"));
    std::fs::write(&first, &big).unwrap();
    std::fs::write(&second, format!("zzq {text}")).unwrap();
    let expected = reference_word_counts(&format!("{big}\n zzq {text}"));
    let wanted: String = expected[..40]
        .iter()
        .map(|(word, count)| format!("{count}\t{word}\n"))
        .collect();
    assert!(expected.iter().any(|(w, n)| w == "zzq" && *n == 2));
    for threads in ["1", "2", "3"] {
        let output = plughost(dir.path())
            .env("PLUGHOST_TASK_THREADS", threads)
            .args(["run", "wordfreq", "--top", "40"])
            .arg(&first)
            .arg(&second)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), wanted, "{threads} worker threads");
    }
}

#[test]
fn unknown_command_fails_with_a_message() {
    let dir = plugins_dir(EXAMPLE_PLUGINS);
    let output = plughost(dir.path())
        .args(["run", "no-such-command"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty());
    assert!(
        stderr(&output).contains("no command named `no-such-command`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn command_error_goes_to_stderr_with_a_nonzero_exit() {
    let dir = plugins_dir(EXAMPLE_PLUGINS);
    let output = plughost(dir.path())
        .args(["run", "wordfreq", "/no/such/file.txt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("wordfreq: /no/such/file.txt: "), "{err}");
}

#[test]
fn panicking_command_fails_and_the_host_goes_on() {
    let dir = plugins_dir(&["wordfreq", "inventory", "journal", "probe"]);
    let output = plughost(dir.path())
        .args(["run", "probe-panic"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("probe panicked on purpose"), "{err}");
    assert!(
        err.contains("plughost: probe-panic: the command panicked"),
        "{err}"
    );
}

#[test]
fn plugin_log_records_reach_the_host_logger_with_the_plugin_target() {
    let dir = plugins_dir(&["probe"]);
    let output = plughost(dir.path())
        .args(["run", "probe-log", "hello-from-probe"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("WARN  probe] hello-from-probe"), "{err}");
    assert!(!err.contains("debug: hello-from-probe"), "{err}");
    assert_eq!(stdout(&output), "debug-enabled=false\n");

    let output = plughost(dir.path())
        .args(["run", "probe-log", "hello-again"])
        .env("RUST_LOG", "probe=debug")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(err.contains("DEBUG probe] debug: hello-again"), "{err}");
    assert_eq!(stdout(&output), "debug-enabled=true\n");
}

#[test]
fn help_describes_the_commands() {
    let dir = plugins_dir(&[]);
    let output = plughost(dir.path()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = stdout(&output);
    for word in ["--plugins", "list", "run"] {
        assert!(help.contains(word), "{help}");
    }
}

#[test]
fn run_command_help_shows_what_its_plugin_declares() {
    let dir = plugins_dir(EXAMPLE_PLUGINS);
    let output = plughost(dir.path())
        .args(["run", "wordfreq", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let help = stdout(&output);
    let lines: Vec<&str> = help.lines().collect();
    assert_eq!(
        lines[0], "Usage: plughost run wordfreq [--top N] FILE...",
        "{help}"
    );
    assert!(lines[2].contains("most frequent words"), "{help}");
    assert!(lines[4].starts_with("From the plugin wordfreq "), "{help}");

    // After another argument, `--help` is the command's own argument.
    let output = plughost(dir.path())
        .args(["run", "wordfreq", "file.txt", "--help"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown option \"--help\""),
        "{}",
        stderr(&output)
    );

    // An unknown command: the same error as running it.
    let output = plughost(dir.path())
        .args(["run", "no-such-command", "--help"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no command named `no-such-command`"));

    // `run --help` is plughost's own help of `run`.
    let output = plughost(dir.path())
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(stdout(&output).contains("Usage: plughost run <COMMAND> [ARGS]..."));
}

#[test]
fn the_configuration_file_reaches_the_plugins() {
    let dir = plugins_dir(EXAMPLE_PLUGINS);
    let text = workspace_root().join("tests/data/udhr-article-1.txt");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "[plugins.wordfreq]\ntop = 3\n\n[plugins.not-here]\nx = 1\n",
    )
    .unwrap();
    let output = plughost(dir.path())
        .arg("--config")
        .arg(config.path())
        .args(["run", "wordfreq"])
        .arg(&text)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 3, "{}", stdout(&output));
    assert!(
        stderr(&output).contains("settings for `not-here`, which did not load"),
        "{}",
        stderr(&output)
    );

    // `--top` overrides the configuration.
    let output = plughost(dir.path())
        .env("PLUGHOST_CONFIG", config.path())
        .args(["run", "wordfreq", "--top", "5"])
        .arg(&text)
        .output()
        .unwrap();
    assert_eq!(stdout(&output).lines().count(), 5, "{}", stdout(&output));

    // A value the plugin cannot use: its init fails, the others load.
    std::fs::write(config.path(), "[plugins.wordfreq]\ntop = \"many\"\n").unwrap();
    let output = plughost(dir.path())
        .arg("--config")
        .arg(config.path())
        .arg("list")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert!(
        err.contains("configuration key `top`: invalid value \"many\""),
        "{err}"
    );
    let out = stdout(&output);
    assert!(out.contains("refused: "), "{out}");
    assert!(out.contains("init failed"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("inventory ")), "{out}");

    // A broken file: one line naming the file, nothing run.
    std::fs::write(config.path(), "[plugins.wordfreq\ntop = 3\n").unwrap();
    let output = plughost(dir.path())
        .arg("--config")
        .arg(config.path())
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "plughost: invalid configuration in {}: ",
            config.path().display()
        )),
        "{err}"
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn a_missing_plugins_folder_is_an_error() {
    let output = plughost("/no/such/folder".as_ref())
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot read plugins folder /no/such/folder"));
}
