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

/// Plugins built against the 1.4 header, whose interface declaration and reference end before
/// `layout` (ABI 1.5): the provider's declaration is read only as far as its size (no layout,
/// whatever follows it), and the caller's reference is written only as far as its own, with its
/// size set to that (the fixture fails its init otherwise).
#[test]
fn plugins_built_against_the_1_4_header_provide_and_query() {
    use plugin_api::abi::{PhInterface, PhInterfaceDecl};

    let decl_size = format!(
        "FIXTURE_DECL_SIZE={}",
        std::mem::offset_of!(PhInterfaceDecl, layout)
    );
    let reference_size = format!(
        "FIXTURE_REFERENCE_SIZE={}",
        std::mem::offset_of!(PhInterface, layout)
    );
    let dir = fixtures(&[
        (
            "a",
            &[
                "FIXTURE_REQUIRES=\"test.answer\"",
                "FIXTURE_MINOR=4",
                &reference_size,
            ],
        ),
        (
            "b",
            &[
                "FIXTURE_PROVIDES=\"test.answer\"",
                "FIXTURE_MINOR=4",
                &decl_size,
            ],
        ),
    ]);
    let host = load(dir.path());
    assert!(host.refused().is_empty(), "{:?}", host.refused());
    assert_eq!(names(&host), ["b", "a"]);
    assert_eq!(run(&host, "a-ok", &[]).unwrap(), "ok answer=42\n");
    // A 1.5 caller, the application, finds no layout: the host did not read the canary.
    let reference = host.query_raw("test.answer", 1, 8).unwrap();
    assert!(reference.layout.is_null());
    host.release_interface(reference.handle).unwrap();
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
            std::ptr::null(),
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

use state_iface_api::StateIface;

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

/// Two real libraries whose tables of `test.shape` 1 have the same signature but different
/// layouts (`shape-caller`'s `Size` has `f32` fields where the provider's has `u32`): the Rust
/// caller's query compares its table's abi_stable layout with the one the provider's library
/// declared, refuses it in one line, and makes no call. The application, which declares the
/// interface as the provider does (the crate `shape_iface_api`), queries and calls it: a layout
/// of another library, compared field by field.
#[test]
fn a_rust_caller_refuses_a_provider_whose_table_layout_differs_under_the_same_signature() {
    use shape_iface_api::{Shape, Size};

    let (host, _dir) = integration_tests::host_with(&["shape_provider", "shape_caller"]);
    let shape = host.interface::<dyn Shape>().unwrap();
    let size = Size {
        width: 3,
        height: 4,
    };
    assert_eq!(shape.area(size).unwrap(), 12);
    assert_eq!(shape.calls().unwrap(), 1);

    let error = run(&host, "shape-area", &[]).unwrap_err().to_string();
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(
        error.contains(
            "interface test.shape 1: the provider's table differs from this one: at \
             area.param_1.width: f32: mismatched type (expected f32, found u32)"
        ),
        "{error}"
    );
    assert_eq!(shape.calls().unwrap(), 1, "the caller made no call");
}

/// `#[plugin_api::interface]` derives abi_stable's `StableAbi`, whose code needs abi_stable among
/// the declaring crate's own dependencies: a crate without it fails to compile with one line that
/// says what to add, not with errors inside the derive's code.
#[test]
fn declaring_an_interface_without_abi_stable_fails_saying_what_to_add() {
    let root = integration_tests::workspace_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"no-abi-stable\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nplugin-api = {{ path = {:?} }}\n\n[workspace]\n",
            root.join("plugin-api")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("src/lib.rs"),
        "#[plugin_api::interface(id = \"test.bare\", version = 1)]\n\
         pub trait Bare {\n    fn f(&self) -> Result<(), plugin_api::Error>;\n}\n",
    )
    .unwrap();
    // The workspace's versions of the dependencies, without asking the registry.
    std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).unwrap();
    // A target folder of its own, kept between runs (as the template's test does).
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-abi-stable");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .arg("check")
        .arg("--quiet")
        .arg("--message-format=short")
        .arg("--manifest-path")
        .arg(dir.path().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{errors}");
    let ours: Vec<&str> = errors.lines().filter(|l| l.contains("error")).collect();
    assert!(
        ours[0].contains(
            "derives abi_stable's `StableAbi` on the interface's function table (its layout is \
             checked when a Rust caller queries it), and that derive's code names \
             `::abi_stable`: add `abi_stable = \"0.11\"` to this crate's [dependencies]"
        ),
        "{errors}"
    );
    assert!(
        !errors.contains("unresolved") && !errors.contains("failed to resolve"),
        "only that error: {errors}"
    );
}
