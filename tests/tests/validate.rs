//! `plughost validate` on built plugins, and `plughost new`: a plugin made from the template
//! builds, passes its own tests and validates.

use std::path::Path;
use std::process::{Command, Output};

use integration_tests::{build, library, library_file, plughost, workspace_root, C_PLUGIN};

fn validate(files: &[&Path], extra: &[&str]) -> Output {
    let mut command = plughost(Path::new("/nonexistent"));
    command.arg("validate").args(extra).args(files);
    command.output().unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

/// The status of each check of the first file of a JSON report.
fn statuses(report: &serde_json::Value, file: usize) -> Vec<(String, String)> {
    report[file]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_example_plugin_validates() {
    let files: Vec<_> = ["wordfreq", "inventory", "journal", C_PLUGIN]
        .iter()
        .map(|p| library(p))
        .collect();
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let output = validate(&paths, &["--json"]);
    let report = json(&output);
    assert!(output.status.success(), "{report:#}");
    for (i, file) in files.iter().enumerate() {
        assert_eq!(report[i]["file"].as_str().unwrap(), file.to_str().unwrap());
        let checks = statuses(&report, i);
        assert_eq!(checks.len(), plughost::validate::CHECKS.len());
        for (check, status) in &checks {
            assert!(
                integration_tests::validate_passed(check, status),
                "{}: {check} is {status}: {report:#}",
                file.display()
            );
        }
    }
}

#[test]
fn a_segfault_is_crashed_a_hang_is_timed_out_and_the_run_completes() {
    let crasher = library("crasher");
    let hanger = library("hanger");
    let output = validate(&[&crasher, &hanger], &["--json", "--timeout", "2"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let command_checks = [
        "commands-no-arguments",
        "commands-garbage-arguments",
        "panics-contained",
        "two-threads",
    ];
    for (file, bad_status) in [(0, "crashed"), (1, "timed-out")] {
        let checks = statuses(&report, file);
        assert_eq!(checks.len(), plughost::validate::CHECKS.len(), "{report:#}");
        for (check, status) in &checks {
            let expected = if command_checks.contains(&check.as_str()) {
                bad_status
            } else if check == "event-round-trip" {
                "skipped"
            } else if check == "load-time" && integration_tests::validate_passed(check, status) {
                // It may warn on a busy machine (see `validate_passed`).
                status
            } else {
                "success"
            };
            assert_eq!(status, expected, "file {file}, check {check}: {report:#}");
        }
    }
    let crashed = report[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "commands-no-arguments")
        .unwrap();
    assert!(
        crashed["message"].as_str().unwrap().contains("SIGSEGV"),
        "{crashed}"
    );
}

#[test]
fn include_and_exclude_pick_checks_and_the_table_is_readable() {
    let wordfreq = library("wordfreq");
    let output = validate(
        &[&wordfreq],
        &[
            "--include",
            "open-now,descriptor,load-time",
            "--exclude",
            "descriptor",
        ],
    );
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], wordfreq.to_str().unwrap());
    assert!(
        lines[1].trim_start().starts_with("success    open-now "),
        "{text}"
    );
    assert!(
        lines[2].trim_start().starts_with("success    load-time ")
            || lines[2].trim_start().starts_with("warning    load-time "),
        "{text}"
    );

    let output = validate(&[&wordfreq], &["--include", "no-such-check"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown check `no-such-check`"));
}

#[test]
fn list_checks_aligns_its_columns_and_counts_of_one_are_singular() {
    let output = validate(&[], &["--list-checks"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        text.lines().count(),
        plughost::validate::CHECKS.len(),
        "{text}"
    );
    // Each line: the name, at least two spaces, the description, which starts in one column.
    let name_end = |line: &str| line.find(' ').unwrap();
    let description = |line: &str| line.len() - line[name_end(line)..].trim_start().len();
    let first = text.lines().next().unwrap();
    for line in text.lines() {
        assert!(line[name_end(line)..].starts_with("  "), "{text}");
        assert_eq!(description(line), description(first), "{text}");
    }

    // wordfreq registers one command: "1 command", not "1 commands".
    let wordfreq = library("wordfreq");
    let output = validate(
        &[&wordfreq],
        &[
            "--include",
            "command-enumeration,commands-no-arguments,two-threads",
        ],
    );
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("1 command, as registered"), "{text}");
    assert!(text.contains("1 command × 1 argument set: "), "{text}");
    assert!(
        !text.contains("1 commands") && !text.contains(" 1 topics"),
        "{text}"
    );
}

#[test]
fn a_library_that_is_not_a_plugin_fails_validation() {
    let library = library("not_a_plugin");
    let output = validate(&[&library], &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    let checks = statuses(&report, 0);
    assert_eq!(checks[0], ("open-now".to_owned(), "success".to_owned()));
    assert_eq!(checks[1], ("descriptor".to_owned(), "failed".to_owned()));
    // The host would refuse it for the same reason in every later check: they say so once each,
    // without running.
    assert_eq!(checks.len(), plughost::validate::CHECKS.len());
    for (i, (check, status)) in checks.iter().enumerate().skip(2) {
        assert_eq!(status, "skipped", "{check}: {report:#}");
        let message = report[0]["checks"][i]["message"].as_str().unwrap();
        assert_eq!(
            message, "the host does not load the library (`descriptor` failed)",
            "{check}"
        );
    }
}

#[test]
fn a_plugin_made_from_the_template_builds_tests_and_validates() {
    let profile = build();
    let dir = tempfile::tempdir().unwrap();
    let output = plughost(Path::new("/nonexistent"))
        .args(["new", "hello-template", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let crate_dir = dir.path().join("hello-template");
    // A target folder of its own (not the workspace's, whose plugin folder it would join),
    // kept between runs so that only the first run compiles the dependencies.
    let target = profile.parent().unwrap().join("template-test");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    for step in ["test", "build"] {
        let status = Command::new(&cargo)
            .arg(step)
            .arg("--manifest-path")
            .arg(crate_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .current_dir(workspace_root())
            .status()
            .unwrap();
        assert!(status.success(), "cargo {step} of the new plugin failed");
    }
    let built = target.join("debug").join(library_file("hello_template"));
    let output = validate(&[&built], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );

    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(&built, plugins.path().join(library_file("hello_template"))).unwrap();
    let output = plughost(plugins.path())
        .args(["run", "hello-template", "Ada"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "Hello, Ada!\n");

    // The template leaves VERSION and DESCRIPTION to Cargo.toml.
    let output = plughost(plugins.path())
        .arg("inspect")
        .arg(&built)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("0.1.0"), "{report}");
    assert!(report.contains("Greets people"), "{report}");
}

/// The pids of the running processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline)
                .contains(needle)
                .then_some(pid)
        })
        .collect()
}

#[test]
fn a_check_does_not_outlive_a_killed_validate() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("libhanger.so");
    std::fs::copy(library("hanger"), &file).unwrap();
    let needle = file.to_str().unwrap().to_owned();
    let mut command = plughost(Path::new("/nonexistent"));
    command
        .args([
            "validate",
            "--include",
            "commands-no-arguments",
            "--timeout",
            "600",
        ])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut validate = command.spawn().unwrap();
    // The check's child process runs `hang`, which never returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let checks = loop {
        let checks: Vec<u32> = processes_with(&needle)
            .into_iter()
            .filter(|&pid| pid != validate.id())
            .collect();
        if !checks.is_empty() {
            break checks;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no check process of {needle} started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    validate.kill().unwrap();
    validate.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while checks
        .iter()
        .any(|pid| processes_with(&needle).contains(pid))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the check process {checks:?} outlived validate"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_process_a_check_leaves_behind_does_not_hold_validate_up() {
    build();
    let dir = tempfile::tempdir().unwrap();
    let file = integration_tests::compile_c(
        dir.path(),
        "isolate.c",
        "forker",
        &["FIXTURE_FORK_IN_INIT", "FIXTURE_NAME=\"forker\""],
    );
    let needle = file.to_str().unwrap().to_owned();
    // The plugin's init forks a process that holds the check's standard output and error for
    // ten minutes: validate reports when the check's process ends, and the process it left is
    // ended with it.
    let output = validate(&[&file], &["--json", "--include", "init-shutdown"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        statuses(&json(&output), 0),
        [("init-shutdown".to_owned(), "success".to_owned())]
    );
    assert_eq!(processes_with(&needle), Vec::<u32>::new());
}
