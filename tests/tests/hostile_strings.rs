//! Plugin-supplied strings are untrusted input to a terminal: the `plughost` binary, on the real
//! `hostile-strings` test plugin (see its crate documentation), prints them escaped, one plugin
//! per row, and refuses descriptor strings over the ABI's limits with a named reason.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use integration_tests::{library, plughost, plugins_dir, stderr, stdout};

/// The test plugin's library base name.
const HOSTILE: &str = "hostile_strings";

/// The hostile version, as the test plugin declares it.
const HOSTILE_VERSION: &str = "6.6\n\x1b[2J\x1b[1Afakeplugin\t1.0\r\u{202e}\x7f\u{9b}";

/// `plughost` on `dir`, with the test plugin's variant chosen (`None`: the hostile strings).
fn plughost_with(dir: &Path, variant: Option<&str>) -> Command {
    let mut command = plughost(dir);
    match variant {
        Some(variant) => command.env("HOSTILE_STRINGS", variant),
        None => command.env_remove("HOSTILE_STRINGS"),
    };
    command
}

/// Panics if `text` holds anything a terminal would act on: a control character other than the
/// line feeds that end lines (C0, DEL, C1), or a bidi or other invisible format character.
fn assert_clean(text: &str, what: &str) {
    for (at, c) in text.char_indices() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
        assert!(
            !bad,
            "{what}: raw {c:?} at byte {at}:\n{}",
            text.escape_debug()
        );
    }
}

fn assert_no_panic(output: &Output) {
    let err = stderr(output);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(output.status.code(), Some(101), "{err}");
}

/// Runs `command`; checks that it did not panic and that both outputs are clean.
fn run_clean(command: &mut Command) -> Output {
    let output = command.output().expect("run plughost");
    assert_no_panic(&output);
    assert_clean(&stdout(&output), "stdout");
    assert_clean(&stderr(&output), "stderr");
    output
}

/// No line starts with the name of the plugin the strings try to forge.
fn assert_no_forged_row(text: &str) {
    for line in text.lines() {
        assert!(
            !line.trim_start().starts_with("fakeplugin"),
            "forged row {line:?} in:\n{text}"
        );
    }
}

#[test]
fn list_shows_each_plugin_on_its_own_escaped_row() {
    let dir = plugins_dir(&[HOSTILE, "wordfreq"]);
    let output = run_clean(plughost_with(dir.path(), None).arg("list"));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two plugins:\n{text}");
    assert!(lines[0].starts_with("NAME "), "{text}");
    assert!(lines[1].starts_with("hostile-strings "), "{text}");
    assert!(lines[2].starts_with("wordfreq "), "{text}");
    assert_no_forged_row(&text);
    // The version and the forged command name, escaped.
    assert!(
        lines[1].contains(r"6.6\n\x1b[2J\x1b[1Afakeplugin\t1.0\r\u{202e}\x7f\u{9b}"),
        "{text}"
    );
    // A command name the plugin only enumerates (it could not register it): the host lists only
    // what a plugin registered (ABI 1.2, the host owns command metadata).
    assert!(!text.contains("fakeplugin2"), "{text}");
}

#[test]
fn inspect_escapes_the_descriptor() {
    let output = run_clean(
        plughost_with(Path::new("."), None)
            .arg("inspect")
            .arg(library(HOSTILE)),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_no_forged_row(&text);
    for label in ["version:", "description:", "result:"] {
        let rows = text.lines().filter(|l| l.starts_with(label)).count();
        assert_eq!(rows, 1, "{label} rows:\n{text}");
    }
    assert!(
        text.contains(r"ok\nfakeplugin 1.0 1.1 /tmp/fake.so fake\nresult:"),
        "{text}"
    );
    assert!(text.contains(r"\x1b[1A\x1b[2K\r\u{202e}gnp.exe"), "{text}");
}

#[test]
fn command_help_escapes_usage_and_description() {
    let dir = plugins_dir(&[HOSTILE]);
    let output = run_clean(plughost_with(dir.path(), None).args(["run", "hostile-cmd", "--help"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    // Usage, blank, description, blank, origin.
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines[0],
        r"Usage: plughost run hostile-cmd [FILE]\n\nFrom the plugin fakeplugin 1.0\x1b[31m"
    );
    assert_eq!(
        lines[2],
        r"does things\r\x1b[2J\nUsage: plughost run rm -rf /\u{202e}"
    );
    assert!(
        lines[4].starts_with(r"From the plugin hostile-strings 6.6\n\x1b[2J"),
        "{text}"
    );
}

#[test]
fn a_command_error_is_one_escaped_line() {
    let dir = plugins_dir(&[HOSTILE]);
    let output = run_clean(
        plughost_with(dir.path(), None)
            .env("RUST_LOG", "off")
            .args(["run", "hostile-fail"]),
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "plughost: hostile-fail: bad\\nplughost: all good\\x1b[2J\\r\\u{202e}\n"
    );
}

#[test]
fn validate_escapes_its_table_and_keeps_its_json_valid() {
    let file = library(HOSTILE);
    let checks = "descriptor,command-enumeration,commands-no-arguments";
    let output = run_clean(
        plughost_with(Path::new("."), None)
            .args(["validate", "--include", checks])
            .arg(&file),
    );
    // The plugin's enumeration also lists a command it did not register; the host lists only
    // what it registered (ABI 1.2), so every check passes.
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "the file and one row per check:\n{text}");
    for line in &lines[1..] {
        assert!(
            ["  success ", "  failed "]
                .iter()
                .any(|s| line.starts_with(s)),
            "{text}"
        );
    }
    assert!(text.contains(r"6.6\n\x1b[2J\x1b[1Afakeplugin"), "{text}");

    let output = run_clean(
        plughost_with(Path::new("."), None)
            .args(["validate", "--json", "--include", checks])
            .arg(&file),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let checks = json[0]["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 3, "{json}");
    let descriptor = checks
        .iter()
        .find(|c| c["check"] == "descriptor")
        .expect("the descriptor check");
    // The JSON carries the plugin's strings as they are, escaped by JSON.
    let message = descriptor["message"].as_str().unwrap();
    assert!(message.contains(HOSTILE_VERSION), "{message:?}");
}

#[test]
fn descriptor_strings_over_the_limits_are_refused_with_the_named_reason() {
    for (variant, field, max) in [
        ("long-version", "version", 64),
        ("long-description", "description", 4096),
    ] {
        let reason = format!("the descriptor's {field} is 65536 bytes (at most {max})");
        let dir = plugins_dir(&[HOSTILE, "wordfreq"]);
        let output = run_clean(plughost_with(dir.path(), Some(variant)).arg("list"));
        assert!(output.status.success(), "{}", stderr(&output));
        let text = stdout(&output);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            3,
            "{variant}: header, wordfreq, refused:\n{text}"
        );
        assert!(lines[1].starts_with("wordfreq "), "{text}");
        assert!(lines[2].starts_with("refused: "), "{text}");
        assert!(lines[2].ends_with(&reason), "{text}");

        let output = run_clean(
            plughost_with(dir.path(), Some(variant))
                .env("RUST_LOG", "off")
                .args(["run", "wordfreq", "--help"]),
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("plughost: refused "), "{err}");
        assert!(err.trim_end().ends_with(&reason), "{err}");

        let output = run_clean(
            plughost_with(Path::new("."), Some(variant))
                .arg("inspect")
                .arg(library(HOSTILE)),
        );
        assert_eq!(output.status.code(), Some(1));
        let text = stdout(&output);
        assert!(text.contains(&format!("refused: {reason}")), "{text}");
        // The 64 KiB string is shown only up to the field's limit.
        assert!(text.lines().all(|l| l.len() < max + 100), "{}", text.len());
        assert!(text.contains("… (65536 bytes)"), "{}", text.len());
    }
}

#[test]
fn a_thousand_long_command_names_do_not_break_list() {
    let dir = plugins_dir(&[HOSTILE, "wordfreq"]);
    let output = run_clean(plughost_with(dir.path(), Some("many-commands")).arg("list"));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", text.len());
    assert!(
        lines[1].starts_with("hostile-strings "),
        "{}",
        lines[1].len()
    );
    assert!(lines[1].contains("many-0000-"));
    assert!(lines[1].ends_with(&format!("many-1023-{}", "x".repeat(54))));
    assert!(lines[2].starts_with("wordfreq "), "{}", lines[2]);
    // The long cell does not widen the columns of the other rows.
    assert!(lines[2].len() < 1024, "{}", lines[2]);
}

#[cfg(unix)]
#[test]
fn odd_file_names_are_quoted_and_escaped() {
    use std::os::unix::ffi::OsStrExt;

    let dir = plugins_dir(&["wordfreq"]);
    // Sorted: the first copy loads, the second is refused as a duplicate.
    let odd = dir.path().join("lib odd \"name\"\n\x1b[2J.so");
    let non_utf8 = dir.path().join(OsStr::from_bytes(b"lib\xffodd.so"));
    for copy in [&odd, &non_utf8] {
        std::fs::copy(library(HOSTILE), copy).unwrap();
    }
    let quoted = |path: &PathBuf| format!("\"{}", path.parent().unwrap().to_str().unwrap());

    let output = run_clean(plughost_with(dir.path(), None).arg("list"));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "header, two plugins, one refused:\n{text}");
    assert!(lines[1].starts_with("hostile-strings "), "{text}");
    assert!(
        lines[1].contains(&format!(
            "{}/lib odd \\\"name\\\"\\n\\x1b[2J.so\"",
            quoted(&odd)
        )),
        "{text}"
    );
    assert!(lines[2].starts_with("wordfreq "), "{text}");
    assert!(
        lines[3].starts_with(&format!(
            "refused: {}/lib\\xffodd.so\": ",
            quoted(&non_utf8)
        )),
        "{text}"
    );
    // The file loaded first, which the refusal names, is quoted too.
    assert!(
        lines[3].ends_with(&format!(
            "already loaded from {}/lib odd \\\"name\\\"\\n\\x1b[2J.so\"",
            quoted(&odd)
        )),
        "{text}"
    );

    let output = run_clean(
        plughost_with(dir.path(), None)
            .env("RUST_LOG", "off")
            .args(["run", "wordfreq", "--help"]),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));

    let output = run_clean(
        plughost_with(dir.path(), None)
            .args(["validate", "--json", "--include", "descriptor"])
            .arg(&non_utf8),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let file = json[0]["file"].as_str().expect("the file, as a string");
    assert!(file.ends_with("odd.so"), "{file:?}");
}

#[test]
fn list_and_inspect_json_carry_the_strings_themselves_and_stay_clean() {
    let dir = plugins_dir(&[HOSTILE]);
    let output = plughost_with(dir.path(), None)
        .args(["list", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_clean(&stdout(&output), "list --json");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(json["plugins"][0]["version"], HOSTILE_VERSION, "{json}");

    let output = plughost_with(dir.path(), None)
        .args(["inspect", "--json"])
        .arg(library(HOSTILE))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_clean(&stdout(&output), "inspect --json");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(json["version"], HOSTILE_VERSION, "{json}");
}
