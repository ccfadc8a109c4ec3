//! Broken, hostile and misbehaving plugins never take the host down: each case is a real file or
//! a real compiled library in a plugins folder beside a good plugin, loaded through the real host.

use std::path::Path;

use integration_tests::{
    compile_c_fixture, library, library_file, plughost, plugins_dir, run, stderr, stdout,
};
use plughost::{CommandError, LoadErrorKind, PluginHost, PluginState};
use plugin_api::abi::{PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR, PH_MAX_NAME_LEN};

/// Loads `dir` in-process; returns the host and the load errors as one line each.
fn load(dir: &Path) -> (PluginHost, Vec<String>) {
    let mut host = PluginHost::new();
    host.load_dir(dir).unwrap();
    let refused = host.refused().iter().map(ToString::to_string).collect();
    (host, refused)
}

/// The good plugin loaded beside every bad case still works.
fn assert_probe_works(host: &PluginHost) {
    let mut out = Vec::new();
    host.run_command("probe-ok", &[] as &[&str], &mut out)
        .unwrap();
    assert_eq!(out, b"ok\n");
}

/// The only refusal of a folder holding the probe and one bad file.
fn only_refusal(host: &PluginHost) -> &plughost::LoadError {
    assert_eq!(host.refused().len(), 1, "{:?}", host.refused());
    &host.refused()[0]
}

// ---- File level ----

#[test]
fn empty_file_named_like_a_library() {
    let dir = plugins_dir(&["probe"]);
    std::fs::write(dir.path().join(library_file("empty")), b"").unwrap();
    let (host, _) = load(dir.path());
    let error = only_refusal(&host);
    assert!(matches!(error.kind, LoadErrorKind::Open(_)), "{error}");
    assert!(error.to_string().contains(&library_file("empty")));
    assert_probe_works(&host);
}

#[test]
fn text_file_named_like_a_library() {
    let dir = plugins_dir(&["probe"]);
    std::fs::write(dir.path().join(library_file("notes")), "not a library\n").unwrap();
    let (host, _) = load(dir.path());
    assert!(matches!(only_refusal(&host).kind, LoadErrorKind::Open(_)));
    assert_probe_works(&host);
}

#[test]
fn truncated_copy_of_a_real_plugin() {
    let dir = plugins_dir(&["probe"]);
    let bytes = std::fs::read(library("wordfreq")).unwrap();
    // Cut inside the first loadable segments: the dynamic loader would map pages past the end of
    // the file, and touching them kills the process with SIGBUS.
    for (i, len) in [64 * 1024, 8 * 1024].into_iter().enumerate() {
        let name = library_file(&format!("truncated{i}"));
        std::fs::write(dir.path().join(name), &bytes[..len]).unwrap();
    }
    let (host, refused) = load(dir.path());
    assert_eq!(refused.len(), 2, "{refused:?}");
    for error in host.refused() {
        match &error.kind {
            LoadErrorKind::Malformed(why) => assert!(why.starts_with("truncated: "), "{why}"),
            other => panic!("expected a malformed library, got {other}"),
        }
    }
    assert_probe_works(&host);
}

#[test]
fn directory_named_like_a_library() {
    let dir = plugins_dir(&["probe"]);
    std::fs::create_dir(dir.path().join(library_file("folder"))).unwrap();
    let (host, _) = load(dir.path());
    let error = only_refusal(&host);
    assert!(
        matches!(error.kind, LoadErrorKind::NotAFile("a directory")),
        "{error}"
    );
    assert_probe_works(&host);
}

#[cfg(unix)]
#[test]
fn dangling_symlink() {
    let dir = plugins_dir(&["probe"]);
    std::os::unix::fs::symlink(
        "/no/such/target.so",
        dir.path().join(library_file("dangling")),
    )
    .unwrap();
    let (host, _) = load(dir.path());
    let error = only_refusal(&host);
    assert!(
        matches!(
            error.kind,
            LoadErrorKind::NotAFile("a dangling symbolic link")
        ),
        "{error}"
    );
    assert_probe_works(&host);
}

/// A file the process cannot read. Root reads anything, so as root the host runs as `nobody`.
#[cfg(unix)]
#[test]
fn file_the_process_cannot_read() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let dir = plugins_dir(&["probe"]);
    let unreadable = dir.path().join(library_file("unreadable"));
    std::fs::copy(library("wordfreq"), &unreadable).unwrap();
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = plughost(dir.path());
    // Who runs the tests: /proc/self belongs to the process's effective user.
    let is_root = std::fs::metadata("/proc/self").map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if is_root.unwrap_or(false) {
        command.uid(65534).gid(65534);
    }
    let output = command.args(["list"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains("\nprobe "), "{out}");
    let refused: Vec<&str> = out.lines().filter(|l| l.starts_with("refused: ")).collect();
    assert_eq!(refused.len(), 1, "{out}");
    assert!(refused[0].contains(&library_file("unreadable")), "{out}");
    assert!(refused[0].contains("Permission denied"), "{out}");
}

#[test]
fn valid_library_that_is_not_a_plugin() {
    let dir = plugins_dir(&["probe", "not_a_plugin"]);
    let (host, _) = load(dir.path());
    let error = only_refusal(&host);
    assert!(
        matches!(
            error.kind,
            LoadErrorKind::NoEntryPoint {
                symbol: "plughost_plugin_entry"
            }
        ),
        "{error}"
    );
    assert_probe_works(&host);
}

#[test]
fn second_plugin_with_the_same_name_is_a_duplicate() {
    let dir = plugins_dir(&["probe"]);
    // `probe` sorts before `zz-probe`, so the copy is the one refused.
    std::fs::copy(library("probe"), dir.path().join(library_file("zz-probe"))).unwrap();
    let (host, refused) = load(dir.path());
    let error = only_refusal(&host);
    match &error.kind {
        LoadErrorKind::Duplicate { name, first } => {
            assert_eq!(name, "probe");
            assert!(first.ends_with(library_file("probe")));
        }
        other => panic!("expected a duplicate, got {other}"),
    }
    assert!(
        refused[0].contains(&library_file("zz-probe")),
        "{refused:?}"
    );
    assert_probe_works(&host);
}

// ---- ABI level ----

#[test]
fn type_layout_mismatch_is_refused_with_one_line() {
    let dir = plugins_dir(&["probe", "layout_mismatch"]);
    let (host, refused) = load(dir.path());
    let error = only_refusal(&host);
    match &error.kind {
        LoadErrorKind::Layout { summary, report } => {
            assert_eq!(
                summary,
                "PhPluginDescriptor: incompatible type size (expected 64, found 72)"
            );
            assert!(report.lines().count() > 20, "the full report is kept");
        }
        other => panic!("expected a layout error, got {other}"),
    }
    assert_eq!(refused[0].lines().count(), 1);
    assert_probe_works(&host);
}

/// Compiles the C test plugin with `defines` beside the probe; returns why it was refused, after
/// checking that the probe still works.
fn refusal_of_c_fixture(defines: &[&str]) -> LoadErrorKind {
    let dir = plugins_dir(&["probe"]);
    compile_c_fixture(dir.path(), "cfixture", defines);
    let (host, refused) = load(dir.path());
    assert_probe_works(&host);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains(&library_file("cfixture")),
        "{refused:?}"
    );
    assert_eq!(refused[0].lines().count(), 1);
    host.refused()[0].kind.clone()
}

#[test]
fn abi_major_differs() {
    let major = format!("FIXTURE_MAJOR={}", PH_ABI_VERSION_MAJOR + 1);
    assert!(matches!(
        refusal_of_c_fixture(&[&major]),
        LoadErrorKind::AbiVersion { major: 2, .. }
    ));
}

#[test]
fn abi_minor_newer_than_the_host() {
    let minor = format!("FIXTURE_MINOR={}", PH_ABI_VERSION_MINOR + 1);
    let kind = refusal_of_c_fixture(&[&minor]);
    assert!(
        matches!(kind, LoadErrorKind::AbiVersion { minor, .. } if minor == PH_ABI_VERSION_MINOR + 1),
        "{kind}"
    );
}

/// The dynamic loader's message (`dlerror(3)`) of this thread, as text; `None` if it has none.
/// Reading it discards it.
#[cfg(unix)]
fn loader_message() -> Option<String> {
    extern "C" {
        fn dlerror() -> *mut std::ffi::c_char;
    }
    // SAFETY: `dlerror` takes no arguments and returns NULL or a NUL-terminated message, valid
    // until the thread's next `dl*` call; it is copied at once.
    unsafe {
        let message = dlerror();
        (!message.is_null()).then(|| {
            std::ffi::CStr::from_ptr(message)
                .to_string_lossy()
                .into_owned()
        })
    }
}

/// A library without abi_stable's layout data (a C plugin) is looked up for it and found without:
/// in the same pass the Rust plugins after it are still checked, the mismatching one refused and
/// the matching one passed, and the lookup that found nothing leaves no message behind for the
/// application's next `dlerror`, after a folder as after a single load.
#[cfg(unix)]
#[test]
fn a_library_without_layout_data_changes_nothing_for_the_next_and_leaves_no_loader_message() {
    let dir = plugins_dir(&["probe", "layout_mismatch"]);
    // Sorted first: `libcfixture` comes before the two Rust libraries.
    compile_c_fixture(dir.path(), "cfixture", &[]);
    let _ = loader_message();
    let (host, _) = load(dir.path());
    assert_eq!(loader_message(), None);
    let error = only_refusal(&host);
    assert!(
        matches!(error.kind, LoadErrorKind::Layout { .. }),
        "{error}"
    );
    assert!(error.path.ends_with(library_file("layout_mismatch")));
    let layouts: Vec<_> = host
        .plugins()
        .iter()
        .map(|p| (p.name.clone(), p.layout))
        .collect();
    assert_eq!(
        layouts,
        [
            ("cfixture".to_owned(), plughost::LayoutCheck::NotCarried),
            ("probe".to_owned(), plughost::LayoutCheck::Passed),
        ]
    );
    assert_probe_works(&host);

    let mut host = PluginHost::new();
    let _ = loader_message();
    host.load(&dir.path().join(library_file("cfixture")))
        .unwrap();
    assert_eq!(loader_message(), None);
}

/// Every minor version up to the host's loads: a C plugin built for 1.0 loads in a 1.1 host.
#[test]
fn abi_minor_up_to_the_host_loads() {
    const {
        assert!(
            PH_ABI_VERSION_MINOR >= 1,
            "this test wants an older minor to load"
        )
    };
    for minor in 0..=PH_ABI_VERSION_MINOR {
        let dir = plugins_dir(&[]);
        compile_c_fixture(dir.path(), "cfixture", &[&format!("FIXTURE_MINOR={minor}")]);
        let (host, refused) = load(dir.path());
        assert!(refused.is_empty(), "minor {minor}: {refused:?}");
        let mut out = Vec::new();
        host.run_command("cfixture-ok", &[] as &[&str], &mut out)
            .unwrap();
        assert_eq!(out, b"ok\n");
        assert_eq!(host.plugins()[0].layout, plughost::LayoutCheck::NotCarried);
    }
}

/// ABI 1.4 grew the function table (`save_state`, `restore_state`): a plugin of an older minor
/// loads with the shorter table of its minor, a 1.4 plugin needs the whole table.
#[test]
fn the_function_table_needs_the_size_of_the_plugins_minor() {
    let older = std::mem::offset_of!(plugin_api::abi::PhPluginVtable, save_state);
    let dir = plugins_dir(&[]);
    compile_c_fixture(
        dir.path(),
        "cfixture",
        &["FIXTURE_MINOR=3", &format!("FIXTURE_VTABLE_SIZE={older}")],
    );
    let (host, refused) = load(dir.path());
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(run(&host, "cfixture-ok", &[]).unwrap(), "ok\n");

    let kind = refusal_of_c_fixture(&["FIXTURE_MINOR=4", &format!("FIXTURE_VTABLE_SIZE={older}")]);
    assert!(
        matches!(kind, LoadErrorKind::StructTooSmall { size, needed, .. }
            if size as usize == older && needed == std::mem::size_of::<plugin_api::abi::PhPluginVtable>()),
        "{kind}"
    );
}

/// A Rust plugin built against ABI 1.0 carries the 1.0 type layout, whose host-services table is
/// smaller: the host checks it against its frozen copy of that layout, loads it, and the plugin
/// reads the newer host's table as far as 1.0 defines it.
#[test]
fn rust_plugin_built_for_an_older_minor_loads() {
    let dir = plugins_dir(&["probe", "abi_1_0"]);
    let (host, refused) = load(dir.path());
    assert!(refused.is_empty(), "{refused:?}");
    let plugin = host
        .plugins()
        .into_iter()
        .find(|p| p.name == "abi-1-0")
        .expect("the 1.0 plugin is loaded");
    assert_eq!(plugin.abi_version, (1, 0));
    assert_eq!(plugin.layout, plughost::LayoutCheck::Passed);
    let mut out = Vec::new();
    host.run_command("abi10-ok", &[] as &[&str], &mut out)
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("plugin 1.0 host {}\n", integration_tests::abi_version())
    );
    assert_probe_works(&host);
    let output = plughost(dir.path())
        .arg("inspect")
        .arg(dir.path().join(library_file("abi_1_0")))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("type layout:        matches ABI 1.0's, as the host keeps it"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn entry_point_returns_no_descriptor() {
    assert!(matches!(
        refusal_of_c_fixture(&["FIXTURE_NO_DESCRIPTOR"]),
        LoadErrorKind::NoDescriptor
    ));
}

#[test]
fn required_function_missing() {
    assert!(matches!(
        refusal_of_c_fixture(&["FIXTURE_NO_INIT"]),
        LoadErrorKind::MissingFunction("init")
    ));
    assert!(matches!(
        refusal_of_c_fixture(&["FIXTURE_NO_VTABLE"]),
        LoadErrorKind::MissingFunction("vtable")
    ));
}

#[test]
fn struct_size_smaller_than_the_host_needs() {
    for (define, table) in [
        ("FIXTURE_DESCRIPTOR_SIZE=8", "the descriptor"),
        ("FIXTURE_VTABLE_SIZE=16", "the function table"),
    ] {
        let kind = refusal_of_c_fixture(&[define]);
        assert!(
            matches!(kind, LoadErrorKind::StructTooSmall { table: t, .. } if t == table),
            "{kind}"
        );
    }
}

#[test]
fn plugin_name_empty_too_long_not_utf8_or_bad_characters() {
    let too_long = format!("FIXTURE_NAME=\"{}\"", "n".repeat(PH_MAX_NAME_LEN + 1));
    for define in [
        "FIXTURE_NAME=\"\"",
        too_long.as_str(),
        "FIXTURE_NAME=\"has space\"",
        "FIXTURE_NAME=\"semi;colon\"",
    ] {
        let kind = refusal_of_c_fixture(&[define]);
        assert!(
            matches!(kind, LoadErrorKind::InvalidName { .. }),
            "{define}: {kind}"
        );
    }
    let kind = refusal_of_c_fixture(&["FIXTURE_NAME=\"bad\\xff\""]);
    assert!(
        matches!(
            kind,
            LoadErrorKind::BadString {
                field: "name",
                code: plugin_api::abi::PhResult::InvalidUtf8
            }
        ),
        "{kind}"
    );
    // At the limit it loads.
    let dir = plugins_dir(&[]);
    let at_limit = "n".repeat(PH_MAX_NAME_LEN - 3);
    compile_c_fixture(
        dir.path(),
        "cfixture",
        &[&format!("FIXTURE_NAME=\"{at_limit}\"")],
    );
    let (host, refused) = load(dir.path());
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(host.plugins()[0].name.len(), PH_MAX_NAME_LEN - 3);
}

// ---- Behaviour ----

#[test]
fn init_returns_an_error() {
    let dir = plugins_dir(&["probe", "misbehave"]);
    let output = plughost(dir.path())
        .args(["list"])
        .env("MISBEHAVE_INIT", "error")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains(&format!(
            "refused: {}",
            dir.path().join(library_file("misbehave")).display()
        )),
        "{out}"
    );
    // The refusal says why, as the plugin's `init` put it.
    assert!(
        out.contains("init failed: error: refusing to start, as asked"),
        "{out}"
    );
    assert!(stderr(&output).contains("refusing to start, as asked"));
    // The registration made before the error was undone.
    let output = plughost(dir.path())
        .args(["run", "misbehave-counts"])
        .env("MISBEHAVE_INIT", "error")
        .output()
        .unwrap();
    assert!(stderr(&output).contains("no command named `misbehave-counts`"));
    let output = plughost(dir.path())
        .args(["run", "probe-ok"])
        .env("MISBEHAVE_INIT", "error")
        .output()
        .unwrap();
    assert_eq!(stdout(&output), "ok\n");
}

#[test]
fn init_panics() {
    let dir = plugins_dir(&["probe", "misbehave"]);
    let output = plughost(dir.path())
        .args(["run", "probe-ok"])
        .env("MISBEHAVE_INIT", "panic")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ok\n");
    let err = stderr(&output);
    assert!(
        err.contains("panic in init: init panicked, as asked"),
        "{err}"
    );
    assert!(
        err.contains("init failed: panicked: panic in init: init panicked, as asked"),
        "{err}"
    );
}

#[test]
fn a_fault_during_init_is_the_reason_of_the_refusal() {
    let dir = plugins_dir(&["probe", "misbehave"]);
    let output = plughost(dir.path())
        .args(["list"])
        .env("MISBEHAVE_INIT", "fault")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let refusal = out
        .lines()
        .find(|l| l.starts_with("refused: ") && l.contains("misbehave"))
        .unwrap_or_else(|| panic!("misbehave was not refused: {out}"));
    // Why it faulted, not the error it logged before.
    assert!(refusal.contains("init failed: panicked: "), "{refusal}");
    assert!(refusal.contains("misbehave.boom"), "{refusal}");
    assert!(!refusal.contains("cache folder"), "{refusal}");
}

#[test]
fn shutdown_panics() {
    let dir = plugins_dir(&["probe", "misbehave"]);
    let output = plughost(dir.path())
        .args(["run", "probe-ok"])
        .env("MISBEHAVE_SHUTDOWN", "panic")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ok\n");
    let err = stderr(&output);
    assert!(
        err.contains("panic in shutdown: shutdown panicked, as asked"),
        "{err}"
    );
    assert!(
        err.contains("plugin `misbehave`: shutdown failed: panicked"),
        "{err}"
    );
    // The plugin loaded before it is still shut down afterwards (reverse load order).
    assert!(err.contains("plugin `probe` shut down"), "{err}");
}

#[test]
fn command_panics() {
    let dir = plugins_dir(&["probe", "misbehave"]);
    let (host, _) = load(dir.path());
    assert!(matches!(
        run(&host, "probe-panic", &[]),
        Err(CommandError::Panicked { .. })
    ));
    let probe = host
        .plugins()
        .into_iter()
        .find(|p| p.name == "probe")
        .unwrap();
    assert_eq!(probe.state, PluginState::Faulted);
    assert_eq!(
        probe.fault.as_deref(),
        Some("its command `probe-panic` panicked")
    );
    // Faulted once: a second attempt finds no command.
    assert!(matches!(
        run(&host, "probe-panic", &[]),
        Err(CommandError::Unknown(_))
    ));
    assert!(run(&host, "misbehave-counts", &[]).is_ok());
}

#[test]
fn event_callback_panics() {
    let dir = plugins_dir(&["probe", "misbehave"]);
    let (host, _) = load(dir.path());
    host.publish("misbehave.boom", b"").unwrap();
    let misbehave = host
        .plugins()
        .into_iter()
        .find(|p| p.name == "misbehave")
        .unwrap();
    assert_eq!(misbehave.state, PluginState::Faulted);
    assert_eq!(
        misbehave.fault.as_deref(),
        Some("its handler of event `misbehave.boom` panicked")
    );
    assert!(misbehave.commands.is_empty());
    // Its other callbacks are gone; the other plugin is untouched.
    assert!(matches!(
        run(&host, "misbehave-counts", &[]),
        Err(CommandError::Unknown(_))
    ));
    host.publish("misbehave.boom", b"").unwrap();
    assert_probe_works(&host);
}

#[test]
fn enumeration_callback_panics() {
    let dir = plugins_dir(&["probe", "misbehave"]);
    let (host, _) = load(dir.path());
    assert!(run(&host, "misbehave-enum-panic", &[]).is_err());
    let misbehave = host
        .plugins()
        .into_iter()
        .find(|p| p.name == "misbehave")
        .unwrap();
    assert_eq!(misbehave.state, PluginState::Faulted);
    assert_probe_works(&host);
}

#[test]
fn stale_zero_and_foreign_handles() {
    let dir = plugins_dir(&["probe", "rawabi"]);
    let (host, _) = load(dir.path());
    let commands_before = host.commands();
    // Handles 1 to 64 but rawabi's own 12 (8 commands, 3 subscriptions, and the one it subscribes
    // and unregisters in the command).
    assert_eq!(
        run(&host, "raw-handles", &[]).unwrap(),
        "subscribe=success\nown=success\ntwice=unknown handle\nzero=unknown handle\n\
         foreign-refused=52 foreign-accepted=0\n"
    );
    assert_eq!(
        host.commands(),
        commands_before,
        "no other registration was touched"
    );
    assert_probe_works(&host);
}

#[test]
fn null_pointers_with_nonzero_length() {
    let dir = plugins_dir(&["probe", "rawabi"]);
    let (host, _) = load(dir.path());
    let out = run(&host, "raw-null", &[]).unwrap();
    assert_eq!(out.lines().count(), 10, "{out}");
    for line in out.lines() {
        assert!(line.ends_with("=null pointer"), "{out}");
    }
    assert_probe_works(&host);
}

#[test]
fn invalid_utf8_in_string_arguments() {
    let dir = plugins_dir(&["probe", "rawabi"]);
    let (host, _) = load(dir.path());
    let out = run(&host, "raw-utf8", &[]).unwrap();
    assert_eq!(out.lines().count(), 5, "{out}");
    for line in out.lines() {
        assert!(line.ends_with("=invalid UTF-8"), "{out}");
    }
    assert_probe_works(&host);
}

#[test]
fn callback_unregisters_itself_during_dispatch() {
    let dir = plugins_dir(&["misbehave"]);
    let (host, _) = load(dir.path());
    host.publish("misbehave.once", b"").unwrap();
    host.publish("misbehave.once", b"").unwrap();
    assert!(run(&host, "misbehave-counts", &[])
        .unwrap()
        .starts_with("once=1 "));
}

#[test]
fn callback_unregisters_another_during_dispatch() {
    let dir = plugins_dir(&["misbehave"]);
    let (host, _) = load(dir.path());
    // A runs first and unregisters B: B is skipped in this dispatch and absent from the next.
    host.publish("misbehave.pair", b"").unwrap();
    host.publish("misbehave.pair", b"").unwrap();
    assert!(run(&host, "misbehave-counts", &[])
        .unwrap()
        .contains(" pair-a=2 pair-b=0 "));
}

#[test]
fn publishing_the_topic_being_handled_is_bounded() {
    let dir = plugins_dir(&["misbehave"]);
    let (host, _) = load(dir.path());
    host.publish("misbehave.recurse", b"").unwrap();
    let depth = plugin_api::abi::PH_MAX_EVENT_DEPTH;
    assert!(
        run(&host, "misbehave-counts", &[])
            .unwrap()
            .ends_with(&format!(" recurse={depth} recurse-refused=1\n")),
        "the handler ran at depths 1 to {depth}; the publish at depth {depth} was refused"
    );
    // The plugin is not faulted: a refused publish is an error result, not a crash.
    assert!(run(&host, "misbehave-counts", &[]).is_ok());
}

#[test]
fn plugin_thread_calls_services_while_the_host_dispatches() {
    let dir = plugins_dir(&["probe"]);
    let (host, _) = load(dir.path());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..2000 {
                host.publish("probe.tick", b"host").unwrap();
            }
        });
        assert_eq!(
            run(&host, "probe-threads", &["3", "1000"])
                .unwrap()
                .lines()
                .count(),
            1
        );
    });
    assert!(run(&host, "probe-stats", &[])
        .unwrap()
        .ends_with(" ticks=6000\n"));
}

#[test]
fn services_called_after_shutdown_return_an_error() {
    let dir = plugins_dir(&["rawabi"]);
    let path = dir.path().join(library_file("rawabi"));
    let (mut host, _) = load(dir.path());
    // SAFETY: `path` is the rawabi test plugin that the host has already loaded (the dynamic loader
    // finds the same instance by device and inode), so opening it again runs no initialiser.
    let library = unsafe { libloading::Library::new(&path) }.unwrap();
    // SAFETY: rawabi defines `rawabi_call_after_shutdown` as `extern "C" fn() -> PhResultCode`, the
    // type asked for here; the symbol borrows `library`, which stays open until the end of the test.
    let call = unsafe {
        library
            .get::<extern "C" fn() -> plugin_api::abi::PhResultCode>(
                b"rawabi_call_after_shutdown\0",
            )
            .unwrap()
    };
    assert_eq!(call(), plugin_api::abi::PhResult::Ok.code());
    host.shutdown();
    assert_eq!(call(), plugin_api::abi::PhResult::ShutDown.code());
}

// ---- Limits ----

#[test]
fn limits_at_and_beyond() {
    let dir = plugins_dir(&["misbehave"]);
    let (host, _) = load(dir.path());
    assert_eq!(
        run(&host, "misbehave-limits", &[]).unwrap(),
        "name-at-limit=ok\nname-over-limit=invalid argument\n\
         topic-at-limit=ok\ntopic-over-limit=invalid argument\npublish-over-limit=invalid argument\n\
         registrations-held=1024\nregistration-over-limit=limit exceeded\n\
         registration-after-release=ok\n"
    );
}

// ---- The command line ----

#[test]
fn inspect_names_the_failing_check() {
    let dir = plugins_dir(&["probe", "layout_mismatch"]);
    let output = plughost(dir.path())
        .arg("inspect")
        .arg(dir.path().join(library_file("layout_mismatch")))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let out = stdout(&output);
    // The fixture's copy of the ABI says 1.0.
    let abi = format!(
        "ABI version:        1.0 (host {})",
        integration_tests::abi_version()
    );
    assert!(out.contains(&abi), "{out}");
    assert!(
        out.contains("result:             refused: type layout of the ABI differs"),
        "{out}"
    );
    let output = plughost(dir.path())
        .arg("inspect")
        .arg(dir.path().join(library_file("probe")))
        .output()
        .unwrap();
    assert!(output.status.success());
    let out = stdout(&output);
    assert!(
        out.contains("type layout:        matches the host's (abi_stable)"),
        "{out}"
    );
    assert!(out.contains("name:               probe"), "{out}");
    assert!(
        out.contains("result:             loadable (init not called)"),
        "{out}"
    );
}

#[test]
fn list_reports_each_bad_file_and_strict_fails() {
    let dir = plugins_dir(&[
        "wordfreq",
        "inventory",
        "journal",
        "not_a_plugin",
        "layout_mismatch",
    ]);
    let d = dir.path();
    std::fs::write(d.join(library_file("empty")), b"").unwrap();
    std::fs::write(d.join(library_file("text")), "just text\n").unwrap();
    let bytes = std::fs::read(library("wordfreq")).unwrap();
    std::fs::write(d.join(library_file("truncated")), &bytes[..64 * 1024]).unwrap();
    std::fs::create_dir(d.join(library_file("folder"))).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/no/such/file.so", d.join(library_file("dangling"))).unwrap();
    std::fs::copy(library("wordfreq"), d.join(library_file("zz-wordfreq"))).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("c-major", &["FIXTURE_MAJOR=9"]),
        ("c-minor", &["FIXTURE_MINOR=99"]),
        ("c-no-descriptor", &["FIXTURE_NO_DESCRIPTOR"]),
        ("c-no-init", &["FIXTURE_NO_INIT"]),
        ("c-small-descriptor", &["FIXTURE_DESCRIPTOR_SIZE=8"]),
        ("c-small-vtable", &["FIXTURE_VTABLE_SIZE=8"]),
        ("c-empty-name", &["FIXTURE_NAME=\"\""]),
        ("c-bad-name", &["FIXTURE_NAME=\"bad name\""]),
        ("c-utf8-name", &["FIXTURE_NAME=\"bad\\xff\""]),
    ];
    for (stem, defines) in cases {
        compile_c_fixture(d, stem, defines);
    }
    let bad: Vec<String> = [
        "empty",
        "text",
        "truncated",
        "folder",
        "dangling",
        "zz-wordfreq",
        "not_a_plugin",
        "layout_mismatch",
    ]
    .iter()
    .chain(cases.iter().map(|(stem, _)| stem))
    .map(|stem| library_file(stem))
    .collect();

    let output = plughost(d).arg("list").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    // The whole listing, for `cargo test -- --nocapture`.
    println!("{out}");
    let refused: Vec<&str> = out.lines().filter(|l| l.starts_with("refused: ")).collect();
    assert_eq!(refused.len(), bad.len(), "{out}");
    for file in &bad {
        assert_eq!(
            refused
                .iter()
                .filter(|l| l.contains(&format!("/{file}: ")))
                .count(),
            1,
            "{file}: {out}"
        );
    }
    for plugin in ["inventory", "journal", "wordfreq"] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{plugin} "))),
            "{out}"
        );
    }

    let text = dir.path().join("words.txt");
    std::fs::write(&text, "b a b").unwrap();
    let output = plughost(dir.path())
        .args(["run", "wordfreq"])
        .arg(&text)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "2\tb\n1\ta\n");

    let output = plughost(dir.path())
        .args(["--strict", "list"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(&format!("{} libraries refused (--strict)", bad.len())));
}
