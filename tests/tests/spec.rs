//! The answers of docs/abi.md's "Resolved questions", checked against the real host and real
//! compiled plugins: which code wins when arguments break several rules, the order of `*`
//! subscribers, what `enumerate_plugins` lists and in which order, the log target convention, and
//! file names and arguments that are not UTF-8. (Event depth: `robustness.rs`,
//! `publishing_the_topic_being_handled_is_bounded`; destroy counts of faulted plugins:
//! `stress.rs`; the configuration's value format: the unit tests of `host/src/config.rs`.)

use std::path::Path;

use integration_tests::{library, library_file, plughost, plugins_dir, run, stderr, stdout};
use plughost::PluginHost;

/// A plugins folder holding the plugin crates `(krate, file name)`, under those file names.
fn folder(plugins: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    for (krate, file) in plugins {
        std::fs::copy(library(krate), dir.path().join(file))
            .unwrap_or_else(|e| panic!("copy plugin {krate}: {e}"));
    }
    dir
}

fn load(dir: &Path) -> PluginHost {
    let mut host = PluginHost::new();
    host.load_dir(dir).unwrap();
    assert!(host.refused().is_empty(), "{:?}", host.refused());
    host
}

#[test]
fn which_code_wins_when_arguments_break_several_rules() {
    let dir = plugins_dir(&["rawabi"]);
    let host = load(dir.path());
    let out = run(&host, "raw-precedence", &[]).unwrap();
    // The order of checks of docs/abi.md: the callback, then each argument in turn (NULL view,
    // then UTF-8, then the argument's own rule), then the host's state (limits, names taken).
    let expected = "\
register-null-callback-bad-name=null pointer
register-bad-utf8-bad-name=invalid UTF-8
register-bad-name=invalid argument
register-long-name=invalid argument
register-taken-name=already exists
subscribe-null-callback-null-topic=null pointer
subscribe-bad-utf8-bad-topic=invalid UTF-8
subscribe-empty-topic=invalid argument
with-info-null-callback-null-info=null pointer
with-info-small-struct=invalid argument
with-info-bad-name-null-description=invalid UTF-8
with-info-bad-name-long-usage=invalid argument
with-info-long-usage-taken-name=limit exceeded
publish-bad-topic-null-payload=null pointer
publish-bad-utf8-bad-topic=invalid UTF-8
publish-star=invalid argument
publish-empty=invalid argument
log-bad-level-bad-target=invalid argument
log-bad-target-null-message=invalid UTF-8
config-bad-key-null-out=invalid UTF-8
config-unset-key=not found
enumerate-commands-null-callback-bad-name=null pointer
enumerate-commands-unknown-plugin=not found
";
    assert_eq!(out, expected);
}

#[test]
fn topic_subscribers_run_before_star_subscribers() {
    let dir = plugins_dir(&["rawabi"]);
    let host = load(dir.path());
    // rawabi subscribed `*` before the two handlers of `rawabi.order`.
    assert_eq!(
        run(&host, "raw-order", &[]).unwrap(),
        "publish=success order=first,second,star\n"
    );
}

#[test]
fn enumerate_plugins_lists_initialised_plugins_in_bytewise_file_name_order() {
    // Bytewise: `B` (0x42) < `a` (0x61) < `i`; a case-insensitive order would put `arawabi` first.
    let named = |stem: &str| format!("{stem}.{}", std::env::consts::DLL_EXTENSION);
    let dir = folder(&[
        ("inventory", &named("inventory")),
        ("rawabi", &named("arawabi")),
        ("probe", &named("Bprobe")),
    ]);
    let host = load(dir.path());
    // During its `init`, rawabi saw the plugins loaded before it, not itself, and its own
    // commands were not enumerable yet.
    assert_eq!(
        run(&host, "raw-init-seen", &[]).unwrap(),
        "plugins=probe own-commands=not found\n"
    );
    assert_eq!(
        run(&host, "raw-enum", &["probe"]).unwrap(),
        "plugins=probe,rawabi,inventory enumerate=success commands=success\n"
    );
    // A faulted plugin is not listed any more, and its commands are not found.
    assert!(matches!(
        run(&host, "probe-panic", &[]),
        Err(plughost::CommandError::Panicked { .. })
    ));
    assert_eq!(
        run(&host, "raw-enum", &["probe"]).unwrap(),
        "plugins=rawabi,inventory enumerate=success commands=not found\n"
    );
}

#[test]
fn log_targets_are_always_under_the_plugin_name() {
    let dir = plugins_dir(&["rawabi"]);
    let output = plughost(dir.path())
        .args(["run", "raw-log"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "level-0=invalid argument level-6=invalid argument\n"
    );
    let targets: Vec<(String, String)> = stderr(&output)
        .lines()
        .filter_map(|line| {
            let (head, message) = line.split_once("] ")?;
            let target = head.rsplit(' ').next()?;
            message
                .starts_with("target-case-")
                .then(|| (message.to_owned(), target.to_owned()))
        })
        .collect();
    let expected = [
        ("target-case-0", "rawabi"),
        ("target-case-1", "rawabi"),
        ("target-case-2", "rawabi::sub"),
        ("target-case-3", "rawabi::sub"),
        ("target-case-4", "rawabi::rawabix"),
        ("target-case-5", "rawabi::other::rawabi"),
    ]
    .map(|(m, t)| (m.to_owned(), t.to_owned()));
    assert_eq!(targets, expected, "{}", stderr(&output));
}

#[cfg(unix)]
#[test]
fn a_file_name_that_is_not_utf8_loads_and_an_argument_that_is_not_utf8_is_refused() {
    use std::os::unix::ffi::OsStrExt;

    let dir = plugins_dir(&["wordfreq"]);
    let odd = std::ffi::OsStr::from_bytes(b"j\xffournal.so");
    std::fs::copy(library("journal"), dir.path().join(odd)).unwrap();

    // The file loads; plugins see its name with U+FFFD for the bytes that are not UTF-8.
    let host = load(dir.path());
    let mut paths = Vec::new();
    host.enumerate_plugins(|p| {
        paths.push(p.path.to_owned());
        true
    });
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert!(paths[0].ends_with("/j\u{fffd}ournal.so"), "{paths:?}");
    assert!(paths[1].ends_with(&format!("/{}", library_file("wordfreq"))));
    // The host's own view keeps the file as given, bytes and all.
    assert_eq!(host.plugins()[0].path, dir.path().join(odd));
    drop(host);
    let list = plughost(dir.path()).arg("list").output().unwrap();
    assert!(
        stdout(&list).contains("j\\xffournal.so"),
        "{}",
        stdout(&list)
    );

    // An argument that is not UTF-8 is refused before any plugin runs: status 2, one line.
    let text = dir.path().join(std::ffi::OsStr::from_bytes(b"a\xff.txt"));
    std::fs::write(&text, "word word\n").unwrap();
    let output = plughost(dir.path())
        .arg("run")
        .arg("wordfreq")
        .arg(&text)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.starts_with("plughost: argument 1 is not valid UTF-8: \"")
            && message.contains("a\\xff.txt\"; commands take UTF-8 arguments only"),
        "{message}"
    );
}
