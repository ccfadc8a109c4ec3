//! `examples/c/embed.c`, a C program that embeds the host through `libplughost_host.so`:
//! compiled with the system C compiler (every warning an error), run on the example plugins and
//! compared with `plughost`, and run under valgrind's memcheck (no error, nothing definitely
//! lost).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use integration_tests::{
    build, c_library, plughost, plugins_dir, require_valgrind, stderr, stdout, workspace_root,
    C_PLUGIN,
};

/// The plugins the program loads: the examples, and one library that is no plugin.
const PLUGINS: &[&str] = &["wordfreq", "inventory", "journal", C_PLUGIN, "not_a_plugin"];

/// Compiles the example into `dir`, linked to the host library of this build; returns the
/// program.
fn compile(dir: &Path) -> PathBuf {
    let root = workspace_root();
    let library_dir = c_library().parent().unwrap().to_owned();
    let program = dir.join("embed");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let output = Command::new(&compiler)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-g",
            "-I",
        ])
        .arg(root.join("plugin-api/include"))
        .arg("-I")
        .arg(root.join("host/capi/include"))
        .arg(root.join("examples/c/embed.c"))
        .arg("-L")
        .arg(&library_dir)
        .arg(format!("-Wl,-rpath,{}", library_dir.display()))
        .arg(format!("-l{}", plughost::C_LIBRARY_NAME))
        .arg("-o")
        .arg(&program)
        .output()
        .unwrap_or_else(|e| panic!("run the C compiler {compiler}: {e}"));
    assert!(
        output.status.success(),
        "compiling examples/c/embed.c failed:\n{}",
        stderr(&output)
    );
    program
}

/// The text of `section` (`== NAME` up to the next `==` line) of the program's output.
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
fn the_c_program_embeds_the_host_and_prints_what_plughost_prints() {
    build();
    let work = tempfile::tempdir().unwrap();
    let program = compile(work.path());
    let plugins = plugins_dir(PLUGINS);
    let output = Command::new(&program)
        .arg(plugins.path())
        .arg(udhr())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);

    let cli = plughost(plugins.path())
        .args(["run", "wordfreq", "--top", "5"])
        .arg(udhr())
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", stderr(&cli));
    assert_eq!(section(&text, "wordfreq --top 5"), stdout(&cli));

    // Every plugin plughost lists, in the same order.
    let list = plughost(plugins.path()).arg("list").output().unwrap();
    let listed: Vec<String> = stdout(&list)
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("refused:") && !l.starts_with("interfaces:"))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    let enumerated: Vec<String> = section(&text, "plugins")
        .lines()
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(enumerated, listed);
    assert!(section(&text, "plugins").contains("  wordfreq [--top N] FILE...\n"));

    let events = section(&text, "events");
    assert!(
        events.starts_with("wordfreq.totals x1: files=1 words="),
        "{events}"
    );
    assert!(events.contains("missing file: error\n"), "{events}");
    assert!(
        section(&text, "journal").contains("1\tembed.hello\tfrom C\n"),
        "{text}"
    );

    let log = stderr(&output);
    assert!(log.contains("refused: "), "{log}");
    assert!(
        log.contains("libnot_a_plugin.so: not a plugin: no entry point"),
        "{log}"
    );
    assert!(
        log.contains("wordfreq failed (error): wordfreq: /no/such/file.txt: "),
        "{log}"
    );
    assert!(log.contains("subscription ended after 1 event(s)"), "{log}");
}

/// Runs the program under memcheck; returns its output (memcheck's report is in stderr).
fn memcheck(program: &Path, plugins: &Path) -> Output {
    require_valgrind();
    Command::new("valgrind")
        .args([
            "--tool=memcheck",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
        ])
        .arg(program)
        .arg(plugins)
        .arg(udhr())
        .output()
        .expect("run valgrind")
}

#[test]
fn the_c_program_runs_clean_under_valgrind() {
    build();
    let work = tempfile::tempdir().unwrap();
    let program = compile(work.path());
    let plugins = plugins_dir(PLUGINS);
    let output = memcheck(&program, plugins.path());
    let report = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    let summary = report
        .lines()
        .find(|l| l.contains("ERROR SUMMARY:"))
        .unwrap_or_else(|| panic!("no memcheck summary in:\n{report}"));
    assert!(summary.contains("ERROR SUMMARY: 0 errors"), "{report}");
    if let Some(lost) = report.lines().find(|l| l.contains("definitely lost:")) {
        assert!(lost.contains("definitely lost: 0 bytes"), "{report}");
    }
    assert!(section(&stdout(&output), "journal").contains("embed.hello"));
}
