//! The `plughost` binary on real plugins in a temporary plugins folder.

use std::path::Path;
use std::process::Command;

use integration_tests::{
    library, library_file, plughost, plughost_binary, plugins_dir, reference_word_counts, stderr,
    stdout, workspace_root, EXAMPLE_PLUGINS,
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
fn list_of_an_empty_folder_says_so_on_standard_error() {
    let empty = tempfile::tempdir().unwrap();
    let output = plughost(empty.path()).arg("list").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // Standard output is the table (its header); the note is for people.
    assert_eq!(stdout(&output).lines().count(), 1, "{}", stdout(&output));
    assert_eq!(
        stderr(&output),
        format!(
            "plughost: no plugins in {} (libraries named {}NAME{})\n",
            empty.path().display(),
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )
    );
    // Machine output has no note: its `plugins` list is empty.
    let output = plughost(empty.path())
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(stderr(&output), "");
}

#[test]
fn an_unknown_command_says_when_no_plugin_loaded_or_some_were_refused() {
    // An empty folder: the line says so, rather than pointing at `plughost list`.
    let empty = tempfile::tempdir().unwrap();
    let output = plughost(empty.path())
        .args(["run", "wordfreq", "x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "plughost: no command named `wordfreq`: no plugins in {}\n",
            empty.path().display()
        )
    );

    // Only a refused library: its refusal, then a line that points at it.
    let refused = plugins_dir(&["not_a_plugin"]);
    for args in [&["run", "probe"][..], &["run", "probe", "--help"]] {
        let output = plughost(refused.path()).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 2, "{err}");
        assert!(lines[0].starts_with("plughost: refused "), "{err}");
        assert_eq!(
            lines[1],
            format!(
                "plughost: no command named `probe`: no plugin loaded from {} (1 library \
                 refused, above)",
                refused.path().display()
            ),
            "{err}"
        );
    }

    // Plugins loaded and one refused: the usual hint, and the refusal.
    let mixed = plugins_dir(&["probe", "not_a_plugin"]);
    let output = plughost(mixed.path())
        .args(["run", "wordfreq"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(
        err.lines().last(),
        Some(
            "plughost: no command named `wordfreq` (see `plughost list`; 1 library refused, above)"
        ),
        "{err}"
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

    // The refusal itself says why, as the plugin put it, with no log at all, in the plugin's
    // process or in a child of its own.
    for isolate in [&[][..], &["--isolate", "wordfreq"][..]] {
        let output = plughost(dir.path())
            .env("RUST_LOG", "off")
            .arg("--config")
            .arg(config.path())
            .args(isolate)
            .args(["run", "wordfreq"])
            .arg(&text)
            .output()
            .unwrap();
        let err = stderr(&output);
        let refusal: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("plughost: refused "))
            .collect();
        // The same line either way.
        assert_eq!(
            refusal,
            [format!(
                "plughost: refused {}: init failed: invalid argument: configuration key `top`: \
                 invalid value \"many\": invalid digit found in string",
                dir.path().join(library_file("wordfreq")).display()
            )],
            "{isolate:?}: {err}"
        );
    }

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

/// `plughost` with no `--plugins` and no `PLUGHOST_PLUGINS`, its data folder in `home`: the
/// binary `binary`, with a temporary home (`kv`, if found, opens its database there).
fn without_plugins_option(binary: &Path, home: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .env_remove("PLUGHOST_PLUGINS")
        .env_remove("PLUGHOST_CONFIG")
        .env_remove("PLUGHOST_ALLOW_INSECURE")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"));
    command
}

/// The names in the first column of `list`'s table (after the header).
fn listed(text: &str) -> Vec<&str> {
    text.lines()
        .skip(1)
        .take_while(|l| !l.contains(": "))
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn the_default_folder_after_a_workspace_build_lists_every_plugin_and_refuses_nothing() {
    // The README's `cargo build --workspace && target/PROFILE/plughost list`: the tests' build is
    // that build (and the examples, which cargo puts in target/PROFILE/examples).
    integration_tests::build();
    let home = tempfile::tempdir().unwrap();
    let output = without_plugins_option(&plughost_binary(), home.path())
        .args(["--strict", "list"])
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{text}{}", stderr(&output));
    assert!(!text.contains("refused"), "{text}");
    let names = listed(&text);
    for name in [
        "checksum",
        "hello",
        "inventory",
        "journal",
        "kv",
        "wordfreq",
    ] {
        assert!(names.contains(&name), "{name} is missing:\n{text}");
    }
    // Nor the bench plugin (an example of benches/plugins/bench).
    assert!(
        !names.contains(&"bench"),
        "the bench plugin is in the default folder (if it is left over from a build before it \
         became an example, delete it):\n{text}"
    );
    // No library of a test-only package of tests/fixtures (a new one must be built as an example,
    // see tests/src/lib.rs).
    for entry in std::fs::read_dir(workspace_root().join("tests/fixtures")).unwrap() {
        let package = entry.unwrap().path();
        if package.join("Cargo.toml").is_file() {
            let base = package.file_name().unwrap().to_str().unwrap();
            let file = library_file(&base.replace(['-', '.'], "_"));
            assert!(
                !text.contains(&format!("/{file}")),
                "{file} (tests/fixtures/{base}) is in the default folder (if it is left over from \
                 a build before the test-only plugins became examples, delete it):\n{text}"
            );
        }
    }
}

/// A folder `bin` with a copy of the `plughost` binary in it, as `cargo install` leaves it;
/// returns the copy.
fn installed_binary(root: &Path) -> std::path::PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let copy = bin.join(plughost_binary().file_name().unwrap());
    // A hard link opens nothing for writing; across file systems, a copy.
    if std::fs::hard_link(plughost_binary(), &copy).is_err() {
        std::fs::copy(plughost_binary(), &copy).unwrap();
    }
    // A child that another test thread forked while the copy was open for writing holds that
    // descriptor until it execs, and running a file open for writing fails (`ETXTBSY`): wait
    // until the copy runs.
    for _ in 0..500 {
        match std::process::Command::new(&copy).arg("--version").output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            _ => break,
        }
    }
    copy
}

#[test]
fn a_bad_library_beside_the_binary_is_still_reported() {
    let root = tempfile::tempdir().unwrap();
    let binary = installed_binary(root.path());
    let folder = binary.parent().unwrap();
    std::fs::copy(library("wordfreq"), folder.join(library_file("wordfreq"))).unwrap();
    std::fs::write(folder.join(library_file("broken")), b"not a library").unwrap();
    let output = without_plugins_option(&binary, root.path())
        .arg("list")
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(listed(&text), ["wordfreq"], "{text}");
    let refused: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("refused: "))
        .collect();
    assert_eq!(refused.len(), 1, "{text}");
    assert!(
        refused[0].contains(&format!("{}: ", library_file("broken"))),
        "{text}"
    );
}

#[test]
#[cfg_attr(
    not(target_os = "linux"),
    ignore = "the data folder is $XDG_DATA_HOME on Linux only"
)]
fn an_installed_plughost_finds_plugins_in_the_data_folder_or_where_it_is_told() {
    let root = tempfile::tempdir().unwrap();
    // Only the binary: what `cargo install --path host` puts in ~/.cargo/bin.
    let binary = installed_binary(root.path());
    let data_plugins = root.path().join("data/plughost/plugins");

    // No plugins folder yet: one line saying where plughost looked and what to do.
    let output = without_plugins_option(&binary, root.path())
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("plughost: no plugins folder: "), "{err}");
    assert!(err.contains(&data_plugins.display().to_string()), "{err}");
    assert!(err.contains("--plugins DIR"), "{err}");

    // The data folder's plugins.
    std::fs::create_dir_all(&data_plugins).unwrap();
    std::fs::copy(
        library("wordfreq"),
        data_plugins.join(library_file("wordfreq")),
    )
    .unwrap();
    let output = without_plugins_option(&binary, root.path())
        .arg("list")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        listed(&stdout(&output)),
        ["wordfreq"],
        "{}",
        stdout(&output)
    );

    // PLUGHOST_PLUGINS before the data folder, --plugins before both.
    let elsewhere = plugins_dir(&["inventory"]);
    let output = without_plugins_option(&binary, root.path())
        .env("PLUGHOST_PLUGINS", elsewhere.path())
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(
        listed(&stdout(&output)),
        ["inventory"],
        "{}",
        stderr(&output)
    );
    let third = plugins_dir(&["journal"]);
    let output = without_plugins_option(&binary, root.path())
        .env("PLUGHOST_PLUGINS", elsewhere.path())
        .arg("--plugins")
        .arg(third.path())
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(listed(&stdout(&output)), ["journal"], "{}", stderr(&output));

    // A plugin beside the binary: that folder (a build folder such as target/release).
    std::fs::copy(
        library("inventory"),
        binary.parent().unwrap().join(library_file("inventory")),
    )
    .unwrap();
    let output = without_plugins_option(&binary, root.path())
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(
        listed(&stdout(&output)),
        ["inventory"],
        "{}",
        stderr(&output)
    );

    // --help says all this.
    let output = Command::new(&binary).arg("--help").output().unwrap();
    let help = stdout(&output).replace('\n', " ");
    for words in [
        "PLUGHOST_PLUGINS",
        "folder that holds the plughost binary",
        "$XDG_DATA_HOME/plughost/plugins",
    ] {
        assert!(help.contains(words), "{words}: {help}");
    }
}

/// Parses `output`'s standard output as JSON, failing the test with the text if it is not.
fn json(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}{}", stdout(output), stderr(output)))
}

/// `{"major": M, "minor": m}` of the host's ABI version.
fn host_abi() -> serde_json::Value {
    use plugin_api::abi::{PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR};
    serde_json::json!({ "major": PH_ABI_VERSION_MAJOR, "minor": PH_ABI_VERSION_MINOR })
}

#[test]
fn list_json_describes_plugins_interfaces_commands_and_refusals() {
    let dir = plugins_dir(&["wordfreq", "journal", "kv", "not_a_plugin"]);
    let home = tempfile::tempdir().unwrap();
    let output = plughost(dir.path())
        .env("XDG_DATA_HOME", home.path())
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["host_abi_version"], host_abi());
    assert_eq!(
        report["plugins_folder"],
        dir.path().to_str().unwrap(),
        "{report}"
    );
    let plugins = report["plugins"].as_array().unwrap();
    let names: Vec<&str> = plugins
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // Load order: providers first.
    assert_eq!(names, ["kv", "journal", "wordfreq"], "{report}");
    for plugin in plugins {
        assert_eq!(plugin["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(plugin["abi_version"], host_abi());
        assert_eq!(plugin["layout"], "checked");
        assert_eq!(plugin["state"], "active");
        assert_eq!(plugin["fault"], serde_json::Value::Null);
        assert!(!plugin["description"].as_str().unwrap().is_empty());
        let file = plugin["file"].as_str().unwrap();
        let name = plugin["name"].as_str().unwrap();
        assert_eq!(Path::new(file), dir.path().join(library_file(name)));
    }
    let (kv, journal, wordfreq) = (&plugins[0], &plugins[1], &plugins[2]);
    assert_eq!(
        kv["provides"],
        serde_json::json!([{ "id": "plughost.kv", "major": 1, "minor": 0 }])
    );
    assert_eq!(kv["requires"], serde_json::json!([]));
    assert_eq!(
        journal["requires"],
        serde_json::json!([{ "id": "plughost.kv", "major": 1, "minor": 0, "optional": true }])
    );
    let commands = wordfreq["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0]["name"], "wordfreq");
    assert_eq!(commands[0]["usage"], "[--top N] FILE...");
    assert!(commands[0]["description"]
        .as_str()
        .unwrap()
        .contains("most frequent words"));

    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{report}");
    assert_eq!(
        Path::new(refused[0]["file"].as_str().unwrap()),
        dir.path().join(library_file("not_a_plugin"))
    );
    assert_eq!(
        refused[0]["reason"],
        "not a plugin: no entry point `plughost_plugin_entry`"
    );
    // Nothing but the JSON on standard output, and no refusal on standard error either.
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn inspect_json_reports_what_the_host_finds_before_init() {
    let output = plughost(Path::new("/nonexistent"))
        .args(["inspect", "--json"])
        .arg(library("journal"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["file"], library("journal").to_str().unwrap());
    assert_eq!(report["host_abi_version"], host_abi());
    assert_eq!(report["abi_version"], host_abi());
    assert_eq!(report["opened"], true);
    assert_eq!(report["entry_point"], true);
    assert_eq!(report["layout"], "checked");
    assert_eq!(report["name"], "journal");
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    assert!(report["descriptor_size"].as_u64().unwrap() > 0);
    assert!(report["function_table_size"].as_u64().unwrap() > 0);
    let functions = report["functions"].as_array().unwrap();
    assert!(functions
        .iter()
        .any(|f| f["name"] == "init" && f["present"] == true));
    assert_eq!(
        report["requires"],
        serde_json::json!([{ "id": "plughost.kv", "major": 1, "minor": 0, "optional": true }])
    );
    assert_eq!(report["provides"], serde_json::json!([]));
    assert_eq!(report["loadable"], true);
    assert_eq!(report["refused"], serde_json::Value::Null);

    // A library that is no plugin: status 1, and the reason.
    let output = plughost(Path::new("/nonexistent"))
        .args(["inspect", "--json"])
        .arg(library("not_a_plugin"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["opened"], true);
    assert_eq!(report["entry_point"], false);
    assert_eq!(report["abi_version"], serde_json::Value::Null);
    assert_eq!(report["loadable"], false);
    assert_eq!(
        report["refused"],
        "not a plugin: no entry point `plughost_plugin_entry`"
    );
}

#[test]
fn inspect_tells_an_optional_function_that_is_absent_from_a_missing_required_one() {
    let dir = plugins_dir(&["wordfreq"]);
    integration_tests::compile_c_fixture(dir.path(), "noinit", &["FIXTURE_NO_INIT"]);
    let row = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k == key).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {key} in {text}"))
    };

    // A 1.5 Rust plugin: the host keeps its commands' text, it hands no state over.
    let output = plughost(dir.path())
        .arg("inspect")
        .arg(dir.path().join(library_file("wordfreq")))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(row(&text, "init"), "present");
    assert_eq!(row(&text, "enumerate_commands"), "absent (optional)");
    assert_eq!(row(&text, "save_state"), "absent (optional)");
    assert!(!text.contains("MISSING"), "{text}");

    // A C plugin without `init`: refused, and the row says which function it lacks.
    let output = plughost(dir.path())
        .arg("inspect")
        .arg(dir.path().join(library_file("noinit")))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert_eq!(row(&text, "init"), "MISSING (required)");
    assert_eq!(row(&text, "shutdown"), "present");
}

#[test]
fn new_resolves_a_relative_api_path_and_refuses_one_that_is_not_plugin_api() {
    let dir = tempfile::tempdir().unwrap();
    // Relative to where plughost runs, not to the crate it writes.
    let output = plughost(dir.path())
        .current_dir(workspace_root())
        .args(["new", "relapi", "--api-path", "plugin-api", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let manifest = std::fs::read_to_string(dir.path().join("relapi/Cargo.toml")).unwrap();
    let api = workspace_root().join("plugin-api").canonicalize().unwrap();
    assert!(
        manifest.contains(&format!("plugin-api = {{ path = \"{}\" }}", api.display())),
        "{manifest}"
    );

    for (api_path, why) in [
        ("/no/such/plugin-api", "No such file or directory"),
        ("host", "not the plugin-api crate"),
    ] {
        let output = plughost(dir.path())
            .current_dir(workspace_root())
            .args(["new", "other", "--api-path", api_path, "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{api_path}");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("plughost: --api-path {api_path}: ")),
            "{err}"
        );
        assert!(err.contains(why), "{err}");
        assert!(!dir.path().join("other").exists());
    }
}

#[test]
fn a_negative_timeout_is_refused_with_the_option_named() {
    let dir = plugins_dir(&["probe"]);
    let output = plughost(dir.path())
        .args(["--call-timeout", "-1", "list"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "plughost: --call-timeout: -1 is not a number of seconds, 0 or more\n"
    );
    let output = plughost(dir.path())
        .args(["validate", "--timeout", "-1", "x.so"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "plughost: --timeout: -1 is not a positive number of seconds\n"
    );
}

/// Checks that each line of `err` is an error message with plughost's prefix once and no
/// `error:` of anyone else; except clap's usage line and hint after its message.
fn assert_one_prefix(err: &str) {
    assert!(!err.is_empty());
    let clap_context = |l: &str| {
        l.is_empty() || l.starts_with(' ') || l.starts_with("Usage: ") || l.starts_with("For more")
    };
    for line in err.lines().filter(|l| !clap_context(l)) {
        assert_eq!(line.matches("plughost:").count(), 1, "{err}");
        assert!(line.starts_with("plughost: "), "{err}");
        assert!(!line.to_lowercase().contains("error:"), "{err}");
    }
}

#[test]
fn error_messages_carry_one_prefix() {
    let dir = plugins_dir(&["probe", "not_a_plugin"]);

    // Errors of the command line, found by clap: plughost's prefix instead of clap's.
    let output = plughost(dir.path())
        .args(["--bogus", "list"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.starts_with("plughost: unexpected argument '--bogus' found\n"),
        "{err}"
    );
    assert_one_prefix(&err);
    let output = plughost(dir.path()).arg("run").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_one_prefix(&stderr(&output));

    // A command's error that has a prefix of its own (as clap's errors do), and a refusal.
    let output = plughost(dir.path())
        .args(["run", "probe-fail", "error: the input is empty\n"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("plughost: refused "), "{err}");
    assert!(lines[0].ends_with(": not a plugin: no entry point `plughost_plugin_entry`"));
    assert_eq!(
        lines[1], "plughost: probe-fail: the input is empty",
        "{err}"
    );
    assert_one_prefix(&err);

    // The same in the shell.
    let mut shell = plughost(dir.path())
        .arg("shell")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = shell.stdin.take().unwrap();
        stdin
            .write_all(b"probe-fail 'Error: the input is empty'\n")
            .unwrap();
    }
    let output = shell.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.lines()
            .any(|l| l == "plughost: probe-fail: the input is empty"),
        "{err}"
    );
    assert_one_prefix(&err);

    // Configuration, checks and names: one line each.
    for args in [
        &["--config", "/no/such/config.toml", "list"][..],
        &["validate", "--include", "no-such-check", "x.so"],
        &["new", "9lives"],
        &["inspect", "/no/such/library.so"],
    ] {
        let output = plughost(dir.path()).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        if args[0] != "inspect" {
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert_one_prefix(&err);
        }
    }
}

/// Runs plughost with `args`, reads one line of its standard output and closes the pipe, as
/// `plughost ... | head -1` does; returns the line, the exit status and standard error.
fn read_one_line_and_close(dir: &Path, args: &[&std::ffi::OsStr]) -> (String, Option<i32>, String) {
    use std::io::{BufRead, Read};
    let mut child = plughost(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // The reader (and with it the pipe's only read end) is dropped here.
    let mut errors = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut errors)
        .unwrap();
    (line, child.wait().unwrap().code(), errors)
}

#[test]
fn a_reader_that_closes_standard_output_early_ends_plughost_quietly() {
    let dir = plugins_dir(EXAMPLE_PLUGINS);
    // 300 000 distinct words: far more output than a pipe holds.
    let files = tempfile::tempdir().unwrap();
    let words = files.path().join("words.txt");
    let text: String = (0..300_000).map(|i| format!("w{i}\n")).collect();
    std::fs::write(&words, text).unwrap();
    let (line, status, errors) = read_one_line_and_close(
        dir.path(),
        &[
            "run".as_ref(),
            "wordfreq".as_ref(),
            "--top".as_ref(),
            "300000".as_ref(),
            words.as_os_str(),
        ],
    );
    assert!(line.starts_with("1\tw"), "{line:?}");
    assert_eq!((status, errors.as_str()), (Some(0), ""));

    // The same for the binary's own output: 2 000 plugins would be needed for `list`, so
    // `inspect`'s report is read on a pipe closed before plughost writes it.
    let mut child = plughost(dir.path())
        .arg("inspect")
        .arg(library("wordfreq"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        (output.status.code(), stderr(&output).as_str()),
        (Some(0), "")
    );
}
