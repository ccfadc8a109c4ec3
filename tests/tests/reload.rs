//! Hot reload and unload in the host library ([`plughost::PluginHost::reload`],
//! [`plughost::PluginHost::unload`]) on real compiled plugins: the C fixture
//! `tests/fixtures/c/reload.c` built with different defines stands for a plugin rebuilt between
//! two commands.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use integration_tests::{compile_reload_fixture, library, library_file, run};
use plughost::{CommandError, LoadErrorKind, PluginHost, PluginState, ReloadError, StateHandoff};
use plugin_api::abi::PhResult;

/// The fixture's plugin name and library stem.
const NAME: &str = "reloadable";

/// A plugins folder holding the first build (`v1`, version 1.0.0) of the fixture, and a folder of
/// other builds.
struct Setup {
    plugins: tempfile::TempDir,
    builds: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup::with(&[])
    }

    /// A plugins folder holding the first build compiled with `defines`.
    fn with(defines: &[&str]) -> Setup {
        let setup = Setup {
            plugins: tempfile::tempdir().unwrap(),
            builds: tempfile::tempdir().unwrap(),
        };
        compile_reload_fixture(setup.plugins.path(), NAME, defines);
        setup
    }

    /// The plugin's file in the plugins folder.
    fn file(&self) -> PathBuf {
        self.plugins.path().join(library_file(NAME))
    }

    /// A build of the fixture with `defines`, kept in the builds folder under `tag`.
    fn build(&self, tag: &str, defines: &[&str]) -> PathBuf {
        let dir = self.builds.path().join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        compile_reload_fixture(&dir, NAME, defines)
    }

    /// A host with the plugins folder loaded.
    fn host(&self) -> PluginHost {
        let mut host = PluginHost::new();
        host.load_dir(self.plugins.path()).unwrap();
        assert!(host.refused().is_empty(), "{:?}", host.refused());
        host
    }
}

/// Puts `build` in place of `file` as cargo does: a new file renamed over the old one.
fn replace(build: &Path, file: &Path) {
    let staged = file.with_file_name(".incoming");
    std::fs::copy(build, &staged).unwrap();
    std::fs::rename(&staged, file).unwrap();
}

/// The second build: prints `v2`, version 2.0.0.
const V2: &[&str] = &["FIXTURE_OUTPUT=\"v2\"", "FIXTURE_VERSION=\"2.0.0\""];

#[test]
fn a_rebuilt_c_plugin_serves_its_new_output_between_two_commands() {
    let setup = Setup::new();
    let host = setup.host();
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v1\n");
    let handle = host.command(NAME).unwrap();

    replace(&setup.build("v2", V2), &setup.file());
    let reloaded = host.reload(NAME).unwrap();
    assert_eq!(
        (reloaded.old_version.as_str(), reloaded.new_version.as_str()),
        ("1.0.0", "2.0.0")
    );
    assert_eq!(reloaded.path, setup.file());
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v2\n");
    // A handle resolved before the reload runs the new version.
    let mut out = Vec::new();
    handle.run(&[] as &[&str], &mut out).unwrap();
    assert_eq!(out, b"v2\n");

    // One plugin of that name, the new build, listed with the file it was loaded from.
    let plugins = host.plugins();
    let listed: Vec<_> = plugins.iter().filter(|p| p.name == NAME).collect();
    assert_eq!(listed.len(), 1, "{plugins:?}");
    assert_eq!(listed[0].version, "2.0.0");
    assert_eq!(listed[0].path, setup.file());
    assert_eq!(listed[0].state, PluginState::Active);
    let names: Vec<&str> = listed[0].commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [NAME, "reloadable-count", "reloadable-fault"]);
    assert_eq!(
        host.subscriptions(),
        [("reload.count".to_owned(), NAME.to_owned())]
    );

    // And back, from the same path again.
    replace(&setup.build("v1", &[]), &setup.file());
    host.reload(NAME).unwrap();
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v1\n");
}

/// Checks that the first build still serves: its command, and its subscription.
fn assert_old_version_serves(host: &PluginHost) {
    assert_eq!(run(host, NAME, &[]).unwrap(), "v1\n");
    let before: u64 = run(host, "reloadable-count", &[])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    host.publish("reload.count", b"").unwrap();
    let after: u64 = run(host, "reloadable-count", &[])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(after, before + 1);
    let plugin = host.plugins().into_iter().find(|p| p.name == NAME).unwrap();
    assert_eq!(plugin.version, "1.0.0");
    assert_eq!(plugin.state, PluginState::Active);
}

#[test]
fn a_plugin_that_faults_in_init_is_refused_saying_why() {
    // (In a reload the new version's subscriptions are staged: its own publish does not reach
    // them, so this is a first load.)
    let setup = Setup::new();
    let faulty = setup.build("init-faults", &["FIXTURE_INIT_FAULTS"]);
    let mut host = plughost::PluginHost::new();
    let error = host.load(&faulty).unwrap_err();
    let LoadErrorKind::Init {
        code: PhResult::Panicked,
        message: Some(message),
    } = &error.kind
    else {
        panic!("expected a fault in init, got {error}");
    };
    // Why it faulted, not the error it logged before.
    assert!(message.contains("reload.fault"), "{error}");
    assert!(!message.contains("unrelated"), "{error}");
}

#[test]
fn a_reload_whose_init_fails_keeps_the_old_version_serving() {
    let setup = Setup::new();
    let host = setup.host();
    replace(
        &setup.build("init-fails", &["FIXTURE_INIT_FAILS"]),
        &setup.file(),
    );
    match host.reload(NAME) {
        Err(ReloadError::Load(error)) => {
            assert!(
                matches!(&error.kind, LoadErrorKind::Init {
                        code: PhResult::Error,
                        message: Some(message),
                    } if message == "init fails, as asked"),
                "{error}"
            );
            assert_eq!(error.path, setup.file());
            assert_eq!(error.to_string().lines().count(), 1);
        }
        other => panic!("expected a failed init, got {other:?}"),
    }
    assert_old_version_serves(&host);
    // The failed build's staged registrations are gone: one subscriber, as before.
    assert_eq!(host.subscriptions().len(), 1);
    // A good build still reloads afterwards.
    replace(&setup.build("v2", V2), &setup.file());
    host.reload(NAME).unwrap();
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v2\n");
}

#[test]
fn a_reload_of_a_bad_file_keeps_the_old_version_serving() {
    let setup = Setup::new();
    let host = setup.host();
    let file = setup.file();

    // Another plugin in the file.
    replace(
        &setup.build("other-name", &["FIXTURE_NAME=\"renamed\""]),
        &file,
    );
    let error = host.reload(NAME).unwrap_err();
    assert!(
        matches!(&error, ReloadError::NameChanged { found, .. } if found == "renamed"),
        "{error}"
    );
    assert_old_version_serves(&host);

    // A truncated library.
    let bytes = std::fs::read(setup.build("v2", V2)).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 3]).unwrap();
    let error = host.reload(NAME).unwrap_err();
    assert!(
        matches!(
            &error,
            ReloadError::Load(e) if matches!(e.kind, LoadErrorKind::Malformed(_) | LoadErrorKind::Open(_))
        ),
        "{error}"
    );
    assert!(error.to_string().starts_with(&file.display().to_string()));
    assert_old_version_serves(&host);

    // A file writable by others: the trust rule is checked on the file, not only on its copy.
    std::fs::copy(setup.build("v2", V2), &file).unwrap();
    set_mode(&file, 0o666);
    let error = host.reload(NAME).unwrap_err();
    assert!(
        matches!(&error, ReloadError::Load(e) if matches!(e.kind, LoadErrorKind::Insecure { .. })),
        "{error}"
    );
    assert_old_version_serves(&host);
    set_mode(&file, 0o755);

    // No file at all.
    std::fs::remove_file(&file).unwrap();
    assert!(matches!(host.reload(NAME), Err(ReloadError::Load(_))));
    assert_old_version_serves(&host);

    // Unknown plugins.
    assert!(matches!(
        host.reload("nothing-of-that-name"),
        Err(ReloadError::UnknownPlugin(_))
    ));
}

fn set_mode(file: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_reload_to_a_different_layout_keeps_the_old_version_serving() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(library_file("journal"));
    std::fs::copy(library("journal"), &file).unwrap();
    let mut host = PluginHost::new();
    host.load_dir(dir.path()).unwrap();
    host.publish("app.started", b"1").unwrap();

    // A build of a plugin against another layout of the ABI where the journal was.
    replace(&library("layout_mismatch"), &file);
    let error = host.reload("journal").unwrap_err();
    match &error {
        ReloadError::Load(e) => assert!(matches!(e.kind, LoadErrorKind::Layout { .. }), "{error}"),
        other => panic!("expected a layout error, got {other}"),
    }
    assert_eq!(error.to_string().lines().count(), 1, "{error}");
    // The journal kept serving, with what it had seen.
    host.publish("app.started", b"2").unwrap();
    assert_eq!(run(&host, "journal", &[]).unwrap(), "2\tapp.started\t2\n");

    // The real journal again: a new instance, which takes what the old one saw (state
    // handoff).
    replace(&library("journal"), &file);
    let reloaded = host.reload("journal").unwrap();
    assert!(
        matches!(reloaded.state, StateHandoff::HandedOver(_)),
        "{:?}",
        reloaded.state
    );
    assert_eq!(run(&host, "journal", &[]).unwrap(), "2\tapp.started\t2\n");
    host.publish("app.started", b"3").unwrap();
    assert_eq!(run(&host, "journal", &[]).unwrap(), "3\tapp.started\t3\n");
}

#[test]
fn a_new_build_cannot_take_another_plugins_command() {
    let setup = Setup::new();
    // A second plugin that holds the command `taken`.
    compile_reload_fixture(
        setup.plugins.path(),
        "holder",
        &["FIXTURE_NAME=\"holder\"", "FIXTURE_COMMAND=\"taken\""],
    );
    let host = setup.host();
    replace(
        &setup.build("taker", &["FIXTURE_COMMAND=\"taken\""]),
        &setup.file(),
    );
    // Its `init` gets ALREADY_EXISTS, as a first load would, and fails with it.
    match host.reload(NAME) {
        Err(ReloadError::Load(e)) => {
            assert!(
                matches!(
                    e.kind,
                    LoadErrorKind::Init {
                        code: PhResult::AlreadyExists,
                        ..
                    }
                ),
                "{e}"
            )
        }
        other => panic!("expected ALREADY_EXISTS, got {other:?}"),
    }
    assert_old_version_serves(&host);
    assert_eq!(run(&host, "taken", &[]).unwrap(), "v1\n");
}

#[test]
fn a_rebuild_written_over_the_file_in_place_does_not_touch_the_running_copy() {
    use std::os::unix::fs::MetadataExt;

    let setup = Setup::new();
    let mut host = PluginHost::new();
    host.set_private_copies(true);
    host.load_dir(setup.plugins.path()).unwrap();
    assert!(host.refused().is_empty(), "{:?}", host.refused());
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v1\n");
    let file = setup.file();
    let inode = std::fs::metadata(&file).unwrap().ino();

    // Written in place (same inode): first half a file, then garbage, then the new build.
    let v2 = std::fs::read(setup.build("v2", V2)).unwrap();
    for bytes in [&v2[..v2.len() / 2], &[0xcc; 4096][..], &v2[..]] {
        std::fs::write(&file, bytes).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode);
        assert_eq!(run(&host, NAME, &[]).unwrap(), "v1\n");
        host.publish("reload.count", b"").unwrap();
    }
    assert_eq!(run(&host, "reloadable-count", &[]).unwrap(), "3\n");
    host.reload(NAME).unwrap();
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v2\n");
}

#[test]
fn unload_shuts_the_plugin_down_and_frees_its_name() {
    let setup = Setup::new();
    let mut host = setup.host();
    let finals = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&finals);
    host.subscribe("reload.final", move |_, _| {
        counter.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();

    host.unload(NAME).unwrap();
    assert_eq!(finals.load(Ordering::Relaxed), 1, "its shutdown ran once");
    assert!(matches!(
        host.run_command(NAME, &[] as &[&str], &mut Vec::new()),
        Err(CommandError::Unknown(_))
    ));
    assert!(host.plugins().iter().all(|p| p.name != NAME));
    assert!(host.subscriptions().iter().all(|(_, p)| p != NAME));
    assert!(matches!(
        host.unload(NAME),
        Err(ReloadError::UnknownPlugin(_))
    ));
    assert!(matches!(
        host.reload(NAME),
        Err(ReloadError::UnknownPlugin(_))
    ));

    // Loaded again into the running host.
    let name = host.load(&setup.file()).unwrap();
    assert_eq!(name, NAME);
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v1\n");
    drop(host);
    assert_eq!(finals.load(Ordering::Relaxed), 2);
}

#[test]
fn a_faulted_plugin_is_reloaded_and_serves_again() {
    let setup = Setup::new();
    let host = setup.host();
    assert!(matches!(
        host.run_command("reloadable-fault", &[] as &[&str], &mut Vec::new()),
        Err(CommandError::Panicked { .. })
    ));
    let faulted = host.plugins().into_iter().find(|p| p.name == NAME).unwrap();
    assert_eq!(faulted.state, PluginState::Faulted);

    replace(&setup.build("v2", V2), &setup.file());
    host.reload(NAME).unwrap();
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v2\n");
    let plugins = host.plugins();
    let listed: Vec<_> = plugins.iter().filter(|p| p.name == NAME).collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, PluginState::Active);
}

/// Events published from several threads, and commands run from another, while the plugin is
/// reloaded again and again: each event reaches exactly one version (the counts of every version
/// add up to what was published), and the command is never missing.
#[test]
fn events_published_during_reloads_reach_exactly_one_version() {
    const RELOADS: usize = 30;
    const PUBLISHERS: usize = 3;

    let setup = Setup::new();
    let builds = [setup.build("v1", &[]), setup.build("v2", V2)];
    let host = setup.host();
    // Every version says at its shutdown how many events it received.
    let finals = Arc::new(AtomicU64::new(0));
    let versions_ended = Arc::new(AtomicU64::new(0));
    {
        let (finals, ended) = (Arc::clone(&finals), Arc::clone(&versions_ended));
        host.subscribe("reload.final", move |_, payload| {
            let count: u64 = std::str::from_utf8(payload).unwrap().parse().unwrap();
            finals.fetch_add(count, Ordering::SeqCst);
            ended.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    let done = AtomicBool::new(false);
    let published = AtomicU64::new(0);
    let commands_run = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..PUBLISHERS {
            scope.spawn(|| {
                let mut mine = 0;
                while !done.load(Ordering::SeqCst) {
                    host.publish("reload.count", b"").unwrap();
                    mine += 1;
                }
                published.fetch_add(mine, Ordering::SeqCst);
            });
        }
        scope.spawn(|| {
            let handle = host.command(NAME).unwrap();
            while !done.load(Ordering::SeqCst) {
                let mut out = Vec::new();
                // By name and through the handle: never missing, always one of the builds.
                host.run_command(NAME, &[] as &[&str], &mut out)
                    .expect("the command is never missing during a reload");
                handle
                    .run(&[] as &[&str], &mut out)
                    .expect("the handle follows the reloads");
                assert!(
                    [&b"v1\nv1\n"[..], b"v1\nv2\n", b"v2\nv1\n", b"v2\nv2\n"]
                        .contains(&out.as_slice()),
                    "{out:?}"
                );
                commands_run.fetch_add(1, Ordering::Relaxed);
            }
        });
        for round in 0..RELOADS {
            replace(&builds[(round + 1) % 2], &setup.file());
            host.reload(NAME).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        done.store(true, Ordering::SeqCst);
    });
    let last: u64 = run(&host, "reloadable-count", &[])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let published = published.load(Ordering::SeqCst);
    println!(
        "{RELOADS} reloads; {published} events published; {} commands run; the last version got {last}",
        commands_run.load(Ordering::Relaxed)
    );
    assert_eq!(versions_ended.load(Ordering::SeqCst), RELOADS as u64);
    assert!(
        published > RELOADS as u64,
        "the publishers ran during the reloads"
    );
    assert_eq!(finals.load(Ordering::SeqCst) + last, published);
}

#[test]
fn a_plugin_linked_into_the_application_has_nothing_to_reload() {
    struct Linked;
    impl plugin_api::Plugin for Linked {
        const NAME: &'static str = "linked-reload-test";
        const VERSION: &'static str = "1";
        const DESCRIPTION: &'static str = "linked";
        fn init(_host: &plugin_api::Host) -> Result<Self, plugin_api::Error> {
            Ok(Linked)
        }
    }
    let mut host = PluginHost::new();
    host.load_static(plugin_api::linked_descriptor::<Linked>())
        .unwrap();
    assert!(matches!(
        host.reload("linked-reload-test"),
        Err(ReloadError::Linked(_))
    ));
    host.unload("linked-reload-test").unwrap();
    assert!(host.plugins().is_empty());
}

/// The fixture's count of `reload.count` events, as its command prints it.
fn count(host: &PluginHost) -> u64 {
    run(host, "reloadable-count", &[])
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The first build of a fixture that hands its count over (ABI 1.4 state handoff).
const HANDS_OVER: &[&str] = &["FIXTURE_HANDS_OVER"];

/// The second build of it.
const HANDS_OVER_V2: &[&str] = &[
    "FIXTURE_HANDS_OVER",
    "FIXTURE_OUTPUT=\"v2\"",
    "FIXTURE_VERSION=\"2.0.0\"",
];

#[test]
fn the_state_is_handed_over_to_the_new_build() {
    let setup = Setup::with(HANDS_OVER);
    let host = setup.host();
    for _ in 0..3 {
        host.publish("reload.count", b"").unwrap();
    }
    assert_eq!(count(&host), 3);

    replace(&setup.build("v2", HANDS_OVER_V2), &setup.file());
    let reloaded = host.reload(NAME).unwrap();
    // The old build wrote `count 3` (in two parts), the new one took it.
    assert_eq!(reloaded.state, StateHandoff::HandedOver("count 3".len()));
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v2\n");
    assert_eq!(count(&host), 3);
    host.publish("reload.count", b"").unwrap();
    assert_eq!(count(&host), 4);

    // A build without `restore_state`: the old build's state is lost, with the reason.
    replace(&setup.build("plain", &[]), &setup.file());
    assert_eq!(
        host.reload(NAME).unwrap().state,
        StateHandoff::Lost("the new build has no restore_state (7 bytes saved)".to_owned())
    );
    assert_eq!(count(&host), 0);
    // And from a build without `save_state`, nothing is asked for.
    replace(&setup.build("v2", HANDS_OVER_V2), &setup.file());
    assert_eq!(host.reload(NAME).unwrap().state, StateHandoff::NotSaved);
}

#[test]
fn events_published_during_reloads_are_all_counted_by_the_last_build() {
    // Every event reaches exactly one build, and each build hands its count to the next: the
    // last build's count is every event published, however the reloads fell between them.
    let setup = Setup::with(HANDS_OVER);
    let v2 = setup.build("v2", HANDS_OVER_V2);
    let v1 = setup.build("v1", HANDS_OVER);
    let host = Arc::new(setup.host());
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicU64::new(0));
    let publishers: Vec<_> = (0..2)
        .map(|_| {
            let (host, stop, published) =
                (Arc::clone(&host), Arc::clone(&stop), Arc::clone(&published));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    host.publish("reload.count", b"").unwrap();
                    published.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for round in 0..10 {
        replace(if round % 2 == 0 { &v2 } else { &v1 }, &setup.file());
        let reloaded = host.reload(NAME).unwrap();
        assert!(
            matches!(reloaded.state, StateHandoff::HandedOver(_)),
            "{:?}",
            reloaded.state
        );
    }
    stop.store(true, Ordering::Relaxed);
    for publisher in publishers {
        publisher.join().unwrap();
    }
    let published = published.load(Ordering::Relaxed);
    assert!(published > 0);
    assert_eq!(count(&host), published);
}

#[test]
fn a_failing_save_state_loses_the_state_with_a_reason_and_the_new_build_serves() {
    let setup = Setup::with(&["FIXTURE_HANDS_OVER", "FIXTURE_SAVE_FAILS"]);
    let host = setup.host();
    host.publish("reload.count", b"").unwrap();
    replace(&setup.build("v2", HANDS_OVER_V2), &setup.file());
    let reloaded = host.reload(NAME).unwrap();
    assert_eq!(
        reloaded.state,
        StateHandoff::Lost(format!("save_state failed: {}", PhResult::Error))
    );
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v2\n");
    assert_eq!(count(&host), 0);
}

#[test]
fn a_restore_state_that_panics_faults_the_new_build_which_can_be_reloaded_again() {
    let setup = Setup::with(HANDS_OVER);
    let host = setup.host();
    host.publish("reload.count", b"").unwrap();
    let panics = setup.build(
        "panics",
        &[
            "FIXTURE_HANDS_OVER",
            "FIXTURE_RESTORE_PANICS",
            "FIXTURE_OUTPUT=\"v2\"",
        ],
    );
    replace(&panics, &setup.file());
    let reloaded = host.reload(NAME).unwrap();
    assert_eq!(
        reloaded.state,
        StateHandoff::Lost("its restore_state panicked".to_owned())
    );
    let plugin = host.plugins().into_iter().find(|p| p.name == NAME).unwrap();
    assert_eq!(plugin.state, PluginState::Faulted);
    assert!(matches!(
        host.run_command(NAME, &[] as &[&str], &mut Vec::new()),
        Err(CommandError::Unknown(_))
    ));

    // The faulted build's state is not asked for (no call into a faulted plugin); a good build
    // serves again.
    replace(&setup.build("v1", HANDS_OVER), &setup.file());
    let reloaded = host.reload(NAME).unwrap();
    assert_eq!(reloaded.state, StateHandoff::NotSaved);
    assert_eq!(run(&host, NAME, &[]).unwrap(), "v1\n");
}
