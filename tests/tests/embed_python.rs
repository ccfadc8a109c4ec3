//! `examples/python/embed.py`, a Python program that embeds the host through
//! `libplughost_host.so` with ctypes (standard library only), run with python3 on the example
//! plugins and compared with the `plughost` binary's output on the same input.
//!
//! Skipped, with a message saying so, when `python3` cannot be run (CI has it).

use std::path::PathBuf;
use std::process::Command;

use integration_tests::{
    build, c_library, library_file, plughost, plugins_dir, stderr, stdout, workspace_root, C_PLUGIN,
};

/// Whether python3 runs; prints why the test is skipped if not.
fn python3_available() -> bool {
    match Command::new("python3").arg("--version").output() {
        Ok(output) if output.status.success() => true,
        other => {
            eprintln!(
                "SKIPPED: python3 cannot be run ({other:?}); the Python example is not tested"
            );
            false
        }
    }
}

/// The lines of `section` (`== NAME` up to the next `==` line) of the program's output.
fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("== {name}\n"))
        .unwrap_or_else(|| panic!("no section {name} in:\n{text}"))
        + name.len()
        + 4;
    let end = text[start..]
        .find("\n==")
        .map_or(text.len(), |i| start + i + 1);
    &text[start..end]
}

fn udhr() -> PathBuf {
    workspace_root().join("tests/data/udhr-article-1.txt")
}

#[test]
fn the_python_example_embeds_the_host_as_plughost_runs_it() {
    if !python3_available() {
        return;
    }
    build();
    let plugins = plugins_dir(&[C_PLUGIN, "wordfreq", "inventory", "journal", "not_a_plugin"]);
    let output = Command::new("python3")
        .arg(workspace_root().join("examples/python/embed.py"))
        .arg("--library")
        .arg(c_library())
        .arg(plugins.path())
        .arg(udhr())
        .output()
        .unwrap();
    let text = stdout(&output);
    let log = stderr(&output);
    assert!(output.status.success(), "{text}\n{log}");

    // The command's output, byte for byte.
    let cli = plughost(plugins.path())
        .args(["run", "wordfreq", "--top", "5"])
        .arg(udhr())
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", stderr(&cli));
    assert_eq!(section(&text, "wordfreq --top 5"), stdout(&cli));

    // The enumeration stopped after two plugins: the first two plughost lists, with their
    // commands.
    let list = stdout(&plughost(plugins.path()).arg("list").output().unwrap());
    // NAME VERSION ABI [(no layout data)] FILE COMMANDS, the commands separated by ", ".
    let listed: Vec<(String, String)> = list
        .lines()
        .skip(1)
        .take(2)
        .map(|l| {
            let name = l.split_whitespace().next().unwrap();
            let file = library_file(name);
            let commands = &l[l.find(&file).unwrap() + file.len()..];
            (name.to_owned(), commands.trim().replace(", ", " "))
        })
        .collect();
    let enumerated: Vec<(String, String)> = section(&text, "plugins (the first 2)")
        .lines()
        .map(|l| {
            let (head, commands) = l.split_once(": ").unwrap();
            let name = head.split_whitespace().next().unwrap();
            (name.to_owned(), commands.to_owned())
        })
        .collect();
    assert_eq!(enumerated, listed, "{text}");

    // The Python subscriber received wordfreq's event.
    let events = section(&text, "events");
    assert!(
        events.starts_with("wordfreq.totals files=1 words="),
        "{events}"
    );
    assert_eq!(events.lines().count(), 1, "{events}");

    // Exceptions in callbacks: raised again in Python after the native call; a raw ctypes
    // callback that raised (and returned garbage) did not harm the host.
    let exceptions = section(&text, "exceptions");
    assert!(
        exceptions.contains("output callback raised, re-raised after run: the writer failed"),
        "{exceptions}"
    );
    assert!(
        exceptions
            .contains("event callback raised, re-raised after publish: KeyError 'embed.event'"),
        "{exceptions}"
    );
    let top1 = stdout(
        &plughost(plugins.path())
            .args(["run", "wordfreq", "--top", "1"])
            .arg(udhr())
            .output()
            .unwrap(),
    );
    assert!(
        exceptions.contains(&format!(
            "the host goes on: wordfreq --top 1 -> {}",
            top1.trim()
        )),
        "{exceptions}"
    );
    assert!(
        exceptions.contains("failed command: code 1: wordfreq: /no/such/file.txt: "),
        "{exceptions}"
    );
    assert!(
        log.contains("Exception ignored on calling ctypes callback function"),
        "{log}"
    );
    assert!(
        log.contains("refused: ") && log.contains("libnot_a_plugin.so: not a plugin"),
        "{log}"
    );
}
