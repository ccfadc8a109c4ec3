//! A plugin that calls `exit` inside the host's call (its `init`, or a command) must not make
//! `plughost` look successful: plughost keeps the output written so far, says on standard error
//! which plugin exited during what, and exits with status 70.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use integration_tests::{plughost, plugins_dir, stderr, stdout};

/// The status plughost exits with when a plugin called `exit` during a call.
const PLUGIN_EXITED: i32 = 70;

/// The lines of standard error that plughost itself wrote (not the logger's).
fn plughost_lines(output: &std::process::Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| l.starts_with("plughost: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn exit_0_in_a_command_fails_naming_plugin_and_command_and_keeps_the_output() {
    let dir = plugins_dir(&["crasher", "probe"]);
    let output = plughost(dir.path())
        .args(["run", "crash-exit"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(PLUGIN_EXITED),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "written before exit(0)\n");
    assert_eq!(
        plughost_lines(&output),
        ["plughost: plugin `crasher` called exit(0) during command `crash-exit`; the command did not finish"],
        "{}",
        stderr(&output)
    );
}

#[test]
fn exit_3_in_a_command_is_reported_with_its_status() {
    let dir = plugins_dir(&["crasher"]);
    let output = plughost(dir.path())
        .args(["run", "crash-exit3", "some", "args"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(PLUGIN_EXITED),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "written before exit(3)\n");
    assert_eq!(
        plughost_lines(&output),
        ["plughost: plugin `crasher` called exit(3) during command `crash-exit3`; the command did not finish"],
        "{}",
        stderr(&output)
    );
}

#[test]
fn exit_in_init_fails_naming_the_plugin_and_init() {
    let dir = plugins_dir(&["probe", "crasher"]);
    for status in ["0", "5"] {
        let output = plughost(dir.path())
            .env("CRASHER_EXIT_IN_INIT", status)
            .args(["run", "probe-ok"])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(PLUGIN_EXITED),
            "{}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty(), "{}", stdout(&output));
        assert_eq!(
            plughost_lines(&output),
            [format!(
                "plughost: plugin `crasher` called exit({status}) during init; plughost did not finish"
            )],
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn ordinary_exits_are_unchanged() {
    let dir = plugins_dir(&["crasher", "probe"]);
    let output = plughost(dir.path())
        .args(["run", "probe-ok"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ok\n");
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    let output = plughost(dir.path())
        .args(["run", "probe-panic"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let output = plughost(dir.path()).arg("list").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("crash-exit"),
        "{}",
        stdout(&output)
    );
}
