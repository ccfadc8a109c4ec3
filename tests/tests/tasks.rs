//! The host's worker threads (`run_tasks`, `task_threads`, ABI 1.4) on a real compiled plugin,
//! `tests/fixtures/tasks`, through the real binary and the host library.

use integration_tests::{host_with, plughost, plugins_dir, run, stderr, stdout};
use plughost::{CommandError, PluginState};

#[test]
fn tasks_run_nested_on_the_host_workers_and_add_up() {
    let dir = plugins_dir(&["tasks"]);
    let output = plughost(dir.path())
        .args(["run", "tasks-sum", "1000000", "16"])
        .env("PLUGHOST_TASK_THREADS", "3")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields[0], "sum=499999500000", "{out}");
    assert_eq!(fields[2], "workers=3", "{out}");
    let threads: usize = fields[1].trim_start_matches("threads=").parse().unwrap();
    // The host's three workers and the calling thread, at most (a busy machine may use one).
    assert!((1..=4).contains(&threads), "{out}");
}

#[test]
fn a_run_fails_with_the_error_of_its_lowest_failed_task() {
    let dir = plugins_dir(&["tasks"]);
    let output = plughost(dir.path())
        .args(["run", "tasks-fail"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let stderr = stderr(&output);
    assert!(stderr.contains("task 3 failed"), "{stderr}");
    assert!(!stderr.contains("task 5 failed"), "{stderr}");
}

#[test]
fn a_panicking_task_faults_its_plugin_and_the_others_go_on() {
    let (host, _dir) = host_with(&["tasks", "wordfreq"]);
    let error = host
        .run_command("tasks-panic", &[] as &[&str], &mut Vec::new())
        .unwrap_err();
    assert!(error.to_string().contains("panicked"), "{error}");
    let plugin = host
        .plugins()
        .into_iter()
        .find(|p| p.name == "tasks")
        .unwrap();
    assert_eq!(plugin.state, PluginState::Faulted);
    let fault = plugin.fault.unwrap();
    assert!(fault.contains("task 2 of 8 panicked"), "{fault}");
    assert!(matches!(
        host.run_command("tasks-sum", &["10", "2"], &mut Vec::new()),
        Err(CommandError::Unknown(_))
    ));
    let text = _dir.path().join("t.txt");
    std::fs::write(&text, "a a b").unwrap();
    assert_eq!(
        run(&host, "wordfreq", &[text.to_str().unwrap()]).unwrap(),
        "2\ta\n1\tb\n"
    );
}

#[test]
fn shutdown_waits_for_a_run_under_way_and_refuses_new_tasks() {
    // The plugin's own thread calls `run_tasks` in a loop until the host refuses: its shutdown
    // joins that thread, so it returns only if the host answered SHUT_DOWN to the thread.
    let dir = plugins_dir(&["tasks"]);
    let output = plughost(dir.path())
        .args(["run", "tasks-sum", "10", "2"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stderr = stderr(&output);
    assert!(
        stderr.contains(&format!(
            "worker stopped: {} after some tasks",
            plugin_api::abi::PhResult::ShutDown
        )),
        "{stderr}"
    );
}
