//! Interfaces between real compiled plugins (ABI 1.3): dependency order, refusals, and what a
//! caller sees when its provider goes away. The plugins are C fixtures
//! (`tests/fixtures/c/descriptor.c` with `FIXTURE_PROVIDES`/`FIXTURE_REQUIRES`).

use std::path::Path;

use std::sync::{Arc, Mutex};

use integration_tests::{compile_c_fixture, library_file, plughost, run, stdout};
use plughost::{LoadErrorKind, PluginHost, PluginState, INTERFACE_REPLACED_TOPIC};

/// A private folder (the trust rule refuses /tmp) with the given fixtures compiled into it.
fn fixtures(plugins: &[(&str, &[&str])]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("interfaces")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    for (name, defines) in plugins {
        let mut all = vec![format!("FIXTURE_NAME=\"{name}\"")];
        all.extend(defines.iter().map(|d| (*d).to_owned()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        compile_c_fixture(dir.path(), name, &all);
    }
    dir
}

fn load(dir: &Path) -> PluginHost {
    let mut host = PluginHost::new();
    host.load_dir(dir).unwrap();
    host
}

fn names(host: &PluginHost) -> Vec<String> {
    host.plugins().into_iter().map(|p| p.name).collect()
}

#[test]
fn providers_are_initialised_before_their_users_and_shut_down_after() {
    let dir = fixtures(&[
        ("a", &["FIXTURE_REQUIRES=\"test.answer\""]),
        ("b", &["FIXTURE_PROVIDES=\"test.answer\""]),
        ("c", &[]),
    ]);
    let mut host = load(dir.path());
    assert!(host.refused().is_empty(), "{:?}", host.refused());
    // File-name order would be a, b, c; the provider b comes first.
    assert_eq!(names(&host), ["b", "a", "c"]);
    // a calls b's table directly.
    assert_eq!(run(&host, "a-ok", &[]).unwrap(), "ok answer=42\n");
    assert_eq!(
        host.interfaces(),
        [("test.answer".to_owned(), 1, 0, "b".to_owned())]
    );
    // Shutdown in reverse order: a (the user) still had its provider when it was shut down.
    host.shutdown();
    assert!(host
        .plugins()
        .iter()
        .all(|p| p.state == PluginState::ShutDown));
    assert!(host.interfaces().is_empty());
}

#[test]
fn a_missing_requirement_refuses_the_plugin_in_one_line_and_an_optional_one_does_not() {
    let dir = fixtures(&[
        ("needy", &["FIXTURE_REQUIRES=\"test.nobody\""]),
        (
            "relaxed",
            &["FIXTURE_REQUIRES=\"test.nobody\"", "FIXTURE_OPTIONAL"],
        ),
    ]);
    let host = load(dir.path());
    assert_eq!(names(&host), ["relaxed"]);
    assert_eq!(run(&host, "relaxed-ok", &[]).unwrap(), "ok\n");
    let refused = host.refused();
    assert_eq!(refused.len(), 1);
    assert!(matches!(
        refused[0].kind,
        LoadErrorKind::MissingInterface { .. }
    ));
    let line = refused[0].to_string();
    assert!(line.contains("needy"), "{line}");
    assert!(
        line.contains("requires the interface test.nobody 1.0, which nothing provides"),
        "{line}"
    );
    // The command line says it in one line too, and `list` shows what each plugin declares.
    let output = plughost(dir.path()).arg("list").output().unwrap();
    let list = stdout(&output);
    assert!(
        list.contains("interfaces: relaxed: requires test.nobody 1.0 (optional)"),
        "{list}"
    );
    let refusal: Vec<&str> = list.lines().filter(|l| l.starts_with("refused:")).collect();
    assert_eq!(refusal.len(), 1, "{list}");
    assert!(refusal[0].contains("test.nobody 1.0"), "{list}");
}

#[test]
fn a_cycle_of_requirements_is_refused_naming_it() {
    let dir = fixtures(&[
        (
            "x",
            &["FIXTURE_PROVIDES=\"x.api\"", "FIXTURE_REQUIRES=\"y.api\""],
        ),
        (
            "y",
            &["FIXTURE_PROVIDES=\"y.api\"", "FIXTURE_REQUIRES=\"x.api\""],
        ),
        ("z", &[]),
    ]);
    let host = load(dir.path());
    assert_eq!(names(&host), ["z"]);
    let lines: Vec<String> = host.refused().iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("form a cycle: x requires y.api 1.0 (y), y requires x.api 1.0 (x)"),
        "{lines:?}"
    );
}

#[test]
fn when_a_provider_fails_its_init_its_users_are_refused() {
    let dir = fixtures(&[
        ("user", &["FIXTURE_REQUIRES=\"test.answer\""]),
        (
            "weak",
            &["FIXTURE_PROVIDES=\"test.answer\"", "FIXTURE_FAIL_INIT"],
        ),
    ]);
    let host = load(dir.path());
    assert!(names(&host).is_empty());
    let lines: Vec<String> = host.refused().iter().map(ToString::to_string).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("weak") && l.contains("init failed")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("user") && l.contains("test.answer 1.0, which nothing provides")),
        "{lines:?}"
    );
    // What the failed provider provided during its init is gone.
    assert!(host.interfaces().is_empty());
}

#[test]
fn a_caller_whose_provider_ended_stops_calling_it() {
    let dir = fixtures(&[("caller", &["FIXTURE_REQUIRES=\"test.answer\""])]);
    let mut host = PluginHost::new();
    // The application provides the interface; the C caller queries it in its init.
    #[repr(C)]
    struct Answer {
        answer: unsafe extern "C" fn(
            *mut std::ffi::c_void,
            *mut u32,
            *const plugin_api::abi::PhBytesSink,
        ) -> u32,
    }
    unsafe extern "C" fn seven(
        _: *mut std::ffi::c_void,
        out: *mut u32,
        _: *const plugin_api::abi::PhBytesSink,
    ) -> u32 {
        // SAFETY: the caller passes a writable value (the interface's contract).
        unsafe { out.write(7) };
        0
    }
    static TABLE: Answer = Answer { answer: seven };
    // SAFETY: a static table whose function may run on any thread; no user data, no destroy.
    let handle = unsafe {
        host.provide_raw(
            "test.answer",
            1,
            0,
            "",
            (&TABLE as *const Answer).cast(),
            std::mem::size_of::<Answer>() as u32,
            std::ptr::null_mut(),
            None,
        )
    }
    .unwrap();
    host.load_dir(dir.path()).unwrap();
    assert_eq!(run(&host, "caller-ok", &[]).unwrap(), "ok answer=07\n");
    host.unregister(handle).unwrap();
    // The caller checks its reference's `alive` word before each call: no call after the end.
    assert_eq!(run(&host, "caller-ok", &[]).unwrap(), "ok gone\n");
}

#[test]
fn a_provider_reloads_and_its_callers_query_the_new_build() {
    let dir = fixtures(&[
        (
            "a",
            &["FIXTURE_REQUIRES=\"test.answer\"", "FIXTURE_REQUERY"],
        ),
        ("b", &["FIXTURE_PROVIDES=\"test.answer\""]),
    ]);
    let host = load(dir.path());
    let replaced = Arc::new(Mutex::new(Vec::new()));
    {
        let replaced = Arc::clone(&replaced);
        host.subscribe(INTERFACE_REPLACED_TOPIC, move |_, payload| {
            replaced
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(payload).into_owned());
        })
        .unwrap();
    }
    assert_eq!(run(&host, "a-ok", &[]).unwrap(), "ok answer=42\n");

    // A new build of the provider gives another answer.
    let builds = fixtures(&[(
        "b",
        &["FIXTURE_PROVIDES=\"test.answer\"", "FIXTURE_ANSWER=43"],
    )]);
    replace(
        &builds.path().join(library_file("b")),
        &dir.path().join(library_file("b")),
    );
    host.reload("b").unwrap();
    // The caller's reference to the old build reads `alive` 0; it queries again and gets the
    // new build's table.
    assert_eq!(run(&host, "a-ok", &[]).unwrap(), "ok answer=43\n");
    assert_eq!(*replaced.lock().unwrap(), ["test.answer 1"]);
    assert_eq!(host.interfaces().len(), 1);
    assert_eq!(names(&host), ["b", "a"]);

    // A plugin that only uses an interface reloads too: its new build queries the provider.
    host.reload("a").unwrap();
    assert_eq!(run(&host, "a-ok", &[]).unwrap(), "ok answer=43\n");
}

#[test]
fn a_new_build_that_drops_a_required_interface_is_refused_and_the_old_one_serves() {
    let dir = fixtures(&[
        ("a", &["FIXTURE_REQUIRES=\"test.answer\""]),
        ("b", &["FIXTURE_PROVIDES=\"test.answer\""]),
    ]);
    let host = load(dir.path());
    let builds = fixtures(&[("b", &[])]);
    replace(
        &builds.path().join(library_file("b")),
        &dir.path().join(library_file("b")),
    );
    let error = host.reload("b").unwrap_err();
    assert_eq!(
        error.to_string(),
        "the new build of `b` does not provide test.answer 1.0, which plugin `a` requires"
    );
    // Nothing changed: the caller's reference is the old build's, still alive.
    assert_eq!(run(&host, "a-ok", &[]).unwrap(), "ok answer=42\n");
    assert_eq!(
        host.interfaces(),
        [("test.answer".to_owned(), 1, 0, "b".to_owned())]
    );
}

#[test]
fn a_reload_of_a_provider_whose_init_fails_keeps_the_old_interface() {
    let dir = fixtures(&[
        ("a", &["FIXTURE_REQUIRES=\"test.answer\""]),
        ("b", &["FIXTURE_PROVIDES=\"test.answer\""]),
    ]);
    let host = load(dir.path());
    // The new build provides the interface (staged), then fails its init.
    let builds = fixtures(&[(
        "b",
        &[
            "FIXTURE_PROVIDES=\"test.answer\"",
            "FIXTURE_ANSWER=43",
            "FIXTURE_FAIL_INIT",
        ],
    )]);
    replace(
        &builds.path().join(library_file("b")),
        &dir.path().join(library_file("b")),
    );
    assert!(host.reload("b").is_err());
    assert_eq!(run(&host, "a-ok", &[]).unwrap(), "ok answer=42\n");
    assert_eq!(host.interfaces().len(), 1);
}

/// Puts `build` in place of `file` as cargo does: a new file renamed over the old one.
fn replace(build: &Path, file: &Path) {
    let staged = file.with_file_name(".incoming");
    std::fs::copy(build, &staged).unwrap();
    std::fs::rename(&staged, file).unwrap();
}

/// `test.state` 1, as the fixture `state_iface` declares it (the same id, version and methods:
/// the query compares the signatures).
#[plugin_api::interface(id = "test.state", version = 1)]
trait StateIface {
    fn value(&self) -> Result<u64, plugin_api::Error>;
    fn hold(&self, ms: u64) -> Result<u64, plugin_api::Error>;
    fn holding(&self) -> Result<u64, plugin_api::Error>;
}

/// The fixture provides `test.state` on its own state (`Host::provide_state`). The application
/// calls it straight from another thread, outside any host call, so the host's own grace period
/// before the plugin's `shutdown` does not see that call: the provider's must keep the state
/// alive until the call returns. Without it the fixture's state is dropped mid-call and `hold`
/// reports it.
#[test]
fn a_direct_call_on_a_plugins_own_state_finishes_before_its_shutdown_drops_the_state() {
    let (host, _dir) = integration_tests::host_with(&["state_iface"]);
    let remote = host.interface::<dyn StateIface>().unwrap();
    assert_eq!(remote.value().unwrap(), 42);
    std::thread::scope(|s| {
        let call = s.spawn(|| remote.hold(500));
        while remote.holding().unwrap() == 0 {
            std::thread::yield_now();
        }
        // The call is under way (asleep inside the provider's method).
        host.unload("state-iface").unwrap();
        assert_eq!(call.join().unwrap().unwrap(), 42, "the call saw its state");
    });
    // The provision ended with the plugin: later calls fail without reaching it.
    let error = remote.value().unwrap_err();
    assert_eq!(error.code(), plugin_api::abi::PhResult::ShutDown, "{error}");
}
