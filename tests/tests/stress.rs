//! The lifetime stress test: threads of a plugin register, publish, enumerate and unregister
//! while the host shuts the plugin down, faults it or is dropped, thousands of rounds; every
//! registration's `destroy` must run exactly once, every event reach its subscriber exactly once,
//! and nothing may touch freed memory. `plughost-stress` (this crate's binary) drives the rounds
//! and checks the counts; the second test runs it under valgrind's memcheck. The last two do the
//! same while the host reloads the plugin again and again (`plughost-stress ROUNDS LIBRARY
//! reload`): the workers of the old and the new version run into every step of each reload.

use std::process::Command;

use integration_tests::{build, library};

/// Runs `plughost-stress ROUNDS LIBRARY MODE...` (under `wrapper`, if any); returns its output,
/// after checking that it succeeded.
fn stress(rounds: u32, wrapper: &[&str], mode: &[&str]) -> (String, String) {
    build();
    let driver = env!("CARGO_BIN_EXE_plughost-stress");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(driver);
            command
        }
        None => Command::new(driver),
    };
    let output = command
        .arg(rounds.to_string())
        .arg(library("stress"))
        .args(mode)
        .env("RUST_LOG", "off")
        .output()
        .expect("run plughost-stress");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("{stdout}");
    assert!(
        output.status.success(),
        "plughost-stress failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    (stdout, stderr)
}

/// The value of `key=` in the driver's output.
fn figure(out: &str, key: &str) -> u64 {
    out.split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {out}"))
}

#[test]
fn thousands_of_rounds_keep_exact_counts() {
    let (out, _) = stress(3000, &[], &[]);
    // The driver checked the exact counts; check here that the test exercised what it claims.
    assert_eq!(figure(&out, "rounds"), 3000);
    assert_eq!(figure(&out, "registrations"), figure(&out, "destroyed"));
    assert!(figure(&out, "accepted") > 3 * 3000, "{out}");
    assert_eq!(figure(&out, "published"), figure(&out, "delivered"));
    assert_eq!(figure(&out, "bad_magic"), 0);
    assert_eq!(figure(&out, "live_threads"), 0);
}

#[test]
fn memcheck_finds_no_error_and_no_leak_under_stress() {
    memcheck(150, &[]);
}

/// The valgrind command line of the memcheck runs.
const MEMCHECK: &[&str] = &[
    "valgrind",
    "--tool=memcheck",
    "--error-exitcode=1",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite",
    "--show-leak-kinds=definite",
    "--fair-sched=yes",
];

/// Runs the driver under memcheck; checks that it found no error and no leak.
fn memcheck(rounds: u32, mode: &[&str]) -> String {
    let found = Command::new("valgrind").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "valgrind is needed by this test (`.ci/run` installs it)"
    );
    let (out, report) = stress(rounds, MEMCHECK, mode);
    let summary: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("ERROR SUMMARY") || l.contains("definitely lost"))
        .collect();
    println!("{}", summary.join("\n"));
    assert!(
        report.contains("ERROR SUMMARY: 0 errors"),
        "memcheck found errors:\n{report}"
    );
    assert!(
        !report.contains("definitely lost:") || report.contains("definitely lost: 0 bytes"),
        "memcheck found leaks:\n{report}"
    );
    assert_eq!(figure(&out, "registrations"), figure(&out, "destroyed"));
    out
}

#[test]
fn reloads_under_stress_keep_exact_counts() {
    let (out, _) = stress(30, &[], &["reload"]);
    assert_eq!(figure(&out, "reloads"), 60);
    assert_eq!(figure(&out, "libraries"), 61);
    assert_eq!(figure(&out, "registrations"), figure(&out, "destroyed"));
    assert_eq!(figure(&out, "published"), figure(&out, "delivered"));
    assert!(figure(&out, "published") > 60, "{out}");
    assert_eq!(figure(&out, "bad_magic"), 0);
    assert_eq!(figure(&out, "dead_plugin_data"), 0);
    assert_eq!(figure(&out, "live_threads"), 0);
}

#[test]
fn memcheck_finds_no_error_and_no_leak_under_reloads() {
    let out = memcheck(6, &["reload"]);
    assert_eq!(figure(&out, "reloads"), 12);
    assert_eq!(figure(&out, "published"), figure(&out, "delivered"));
}
