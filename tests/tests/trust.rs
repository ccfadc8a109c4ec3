//! Who may change a plugin decides whether it loads: as ssh and sudo do, the host refuses a plugin
//! file, or a plugins folder, that is writable by group or others or owned by a user who is neither
//! the one running the host nor root, unless told otherwise (`--allow-insecure`,
//! `PLUGHOST_ALLOW_INSECURE`, `allow_insecure = true` in the configuration, or
//! `PluginHost::set_allow_insecure`). Also: the check and the load see the same file, and a slow
//! `init` is reported.
#![cfg(target_os = "linux")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use integration_tests::{library, library_file, plughost, plugins_dir, stderr, stdout};
use plughost::{LoadErrorKind, PluginHost};

/// Sets the permission bits of `path`.
fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether the tests run as root (needed to give a file to another user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Sets the owner of `path` to `nobody` (uid and gid 65534).
fn give_to_nobody(path: &Path) {
    let status = std::process::Command::new("chown")
        .arg("65534:65534")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {}", path.display());
}

/// `plughost run probe-ok` with the plugins folder `dir` and the extra options `options` (placed
/// before the subcommand).
fn run_probe_ok(dir: &Path, options: &[&str]) -> std::process::Output {
    plughost(dir)
        .args(options)
        .args(["run", "probe-ok"])
        .output()
        .unwrap()
}

/// Asserts that `output` is the refusal of the probe for `reason`: one line naming the file and
/// the cause, and no command run.
fn assert_refused(output: &std::process::Output, file: &Path, reason: &str) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    assert!(stdout(output).is_empty(), "{}", stdout(output));
    let err = stderr(output);
    let line = format!(
        "plughost: refused {}: {reason}; pass --allow-insecure to load it anyway",
        file.display()
    );
    assert!(
        err.lines().any(|l| l == line),
        "expected the line\n{line}\nin\n{err}"
    );
    assert!(err.contains("no command named `probe-ok`"), "{err}");
}

/// Asserts that `output` ran `probe-ok` successfully.
fn assert_ran(output: &std::process::Output) {
    assert!(output.status.success(), "{}", stderr(output));
    assert_eq!(stdout(output), "ok\n");
    assert!(!stderr(output).contains("refused"), "{}", stderr(output));
}

#[test]
fn a_file_writable_by_others_is_refused_unless_allowed_by_flag_env_or_config() {
    let dir = plugins_dir(&["probe"]);
    let file = dir.path().join(library_file("probe"));
    chmod(&file, 0o666);
    assert_refused(
        &run_probe_ok(dir.path(), &[]),
        &file,
        "writable by others (mode 0666)",
    );
    // `list` shows the refusal in its output.
    let listed = plughost(dir.path()).arg("list").output().unwrap();
    assert!(
        stdout(&listed).contains(&format!(
            "refused: {}: writable by others (mode 0666)",
            file.display()
        )),
        "{}",
        stdout(&listed)
    );

    assert_ran(&run_probe_ok(dir.path(), &["--allow-insecure"]));
    let output = plughost(dir.path())
        .env("PLUGHOST_ALLOW_INSECURE", "1")
        .args(["run", "probe-ok"])
        .output()
        .unwrap();
    assert_ran(&output);
    // The configuration file's key (the file lives elsewhere: the plugins folder holds plugins).
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("plughost.toml");
    std::fs::write(&config, "allow_insecure = true\n").unwrap();
    assert_ran(&run_probe_ok(
        dir.path(),
        &["--config", config.to_str().unwrap()],
    ));
    std::fs::write(&config, "allow_insecure = false\n").unwrap();
    assert_refused(
        &run_probe_ok(dir.path(), &["--config", config.to_str().unwrap()]),
        &file,
        "writable by others (mode 0666)",
    );

    // Group-writable is refused too.
    chmod(&file, 0o664);
    assert_refused(
        &run_probe_ok(dir.path(), &[]),
        &file,
        "writable by group (mode 0664)",
    );
}

#[test]
fn the_library_refuses_an_insecure_file_unless_told_otherwise() {
    let dir = plugins_dir(&["probe"]);
    let file = dir.path().join(library_file("probe"));
    chmod(&file, 0o646);
    let mut host = PluginHost::new();
    let error = host.load(&file).unwrap_err();
    match &error.kind {
        LoadErrorKind::Insecure { reason } => {
            assert_eq!(reason, "writable by others (mode 0646)")
        }
        other => panic!("expected an insecure file, got {other}"),
    }
    assert_eq!(error.path, file);
    assert!(host.plugins().is_empty());
    host.set_allow_insecure(true);
    assert_eq!(host.load(&file).unwrap(), "probe");
}

#[test]
fn a_folder_writable_by_others_is_refused_even_with_the_sticky_bit() {
    let dir = plugins_dir(&["probe"]);
    let file = dir.path().join(library_file("probe"));
    for (mode, shown) in [(0o777, "0777"), (0o1777, "1777"), (0o775, "0775")] {
        chmod(dir.path(), mode);
        let who = if mode & 0o002 != 0 { "others" } else { "group" };
        assert_refused(
            &run_probe_ok(dir.path(), &[]),
            &file,
            &format!(
                "its folder {} is writable by {who} (mode {shown})",
                dir.path().display()
            ),
        );
        assert_ran(&run_probe_ok(dir.path(), &["--allow-insecure"]));
    }
    chmod(dir.path(), 0o755);
    assert_ran(&run_probe_ok(dir.path(), &[]));
}

/// `load_dir` examines the folder once for all its files: each is refused with the folder's
/// reason, and the next `load_dir` (a new pass) examines it again, whichever way it changed.
#[test]
fn one_verdict_on_the_folder_per_load_dir() {
    let dir = plugins_dir(&["probe", "inventory", "journal"]);
    let insecure = format!(
        "its folder {} is writable by others (mode 0777)",
        dir.path().display()
    );
    let reasons = |host: &PluginHost| -> Vec<(String, String)> {
        host.refused()
            .iter()
            .map(|e| match &e.kind {
                LoadErrorKind::Insecure { reason } => (
                    e.path.file_name().unwrap().to_string_lossy().into_owned(),
                    reason.clone(),
                ),
                other => panic!("expected an insecure folder, got {other}"),
            })
            .collect()
    };
    chmod(dir.path(), 0o777);
    let mut host = PluginHost::new();
    host.load_dir(dir.path()).unwrap();
    assert!(host.plugins().is_empty());
    let every =
        ["inventory", "journal", "probe"].map(|name| (library_file(name), insecure.clone()));
    assert_eq!(reasons(&host), every);

    chmod(dir.path(), 0o755);
    let mut host = PluginHost::new();
    host.load_dir(dir.path()).unwrap();
    assert!(host.refused().is_empty(), "{:?}", host.refused());
    assert_eq!(host.plugins().len(), 3);

    // Back to insecure, with a new file: the same host refuses it in its next pass.
    chmod(dir.path(), 0o777);
    std::fs::copy(
        library("wordfreq"),
        dir.path().join(library_file("wordfreq")),
    )
    .unwrap();
    host.load_dir(dir.path()).unwrap();
    assert_eq!(host.plugins().len(), 3);
    let refused = reasons(&host);
    assert!(
        refused.contains(&(library_file("wordfreq"), insecure.clone())),
        "{refused:?}"
    );
    chmod(dir.path(), 0o755);
}

#[test]
fn a_file_or_folder_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("note: skipped: giving a file to another user needs root");
        return;
    }
    let dir = plugins_dir(&["probe"]);
    let file = dir.path().join(library_file("probe"));
    give_to_nobody(&file);
    assert_refused(
        &run_probe_ok(dir.path(), &[]),
        &file,
        "owned by uid 65534, neither the user running the host (uid 0) nor root",
    );
    assert_ran(&run_probe_ok(dir.path(), &["--allow-insecure"]));

    let dir = plugins_dir(&["probe"]);
    let file = dir.path().join(library_file("probe"));
    give_to_nobody(dir.path());
    assert_refused(
        &run_probe_ok(dir.path(), &[]),
        &file,
        &format!(
            "its folder {} is owned by uid 65534, neither the user running the host (uid 0) nor root",
            dir.path().display()
        ),
    );
}

#[test]
fn a_symlink_is_judged_by_the_file_it_leads_to() {
    let elsewhere = plugins_dir(&["probe"]);
    let target = elsewhere.path().join(library_file("probe"));
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join(library_file("probe"));
    std::os::unix::fs::symlink(&target, &link).unwrap();
    // A link's own mode is always 0777: it is the target that counts, here a safe one.
    assert_ran(&run_probe_ok(dir.path(), &[]));
    chmod(&target, 0o666);
    assert_refused(
        &run_probe_ok(dir.path(), &[]),
        &link,
        "writable by others (mode 0666)",
    );
}

/// The host opens each file once and hands that open file to the dynamic loader, which knows it
/// by the descriptor's name: each library must still load as itself, one after another in one
/// process, and the same file twice must still be the same library.
#[test]
fn each_library_loads_as_itself_and_errors_name_the_real_file() {
    let dir = plugins_dir(&["probe", "wordfreq", "inventory", "journal"]);
    let names = ["probe", "wordfreq", "inventory", "journal"];
    for name in names {
        let mut host = PluginHost::new();
        assert_eq!(
            host.load(&dir.path().join(library_file(name))).unwrap(),
            name
        );
    }
    // Twice in one host: the same library, so the same plugin name.
    let mut host = PluginHost::new();
    let probe = dir.path().join(library_file("probe"));
    host.load(&probe).unwrap();
    match host.load(&probe).unwrap_err().kind {
        LoadErrorKind::Duplicate { name, .. } => assert_eq!(name, "probe"),
        other => panic!("expected a duplicate, got {other}"),
    }
    // The loader's messages name the file, never the descriptor.
    let text = dir.path().join(library_file("text"));
    std::fs::write(&text, "not a library\n").unwrap();
    let error = host.load(&text).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error.kind, LoadErrorKind::Open(_)), "{message}");
    assert!(
        message.starts_with(&format!("{}: ", text.display())),
        "{message}"
    );
    assert!(!message.contains("/proc/self/fd"), "{message}");
    let (_, error) = plughost::inspect(&text);
    assert!(
        !error.unwrap().to_string().contains("/proc/self/fd"),
        "inspect"
    );
}

#[test]
fn inspect_and_validate_apply_the_same_rule() {
    let dir = plugins_dir(&["probe"]);
    let file = dir.path().join(library_file("probe"));
    chmod(&file, 0o666);
    let inspect = |options: &[&str]| {
        plughost(dir.path())
            .args(options)
            .arg("inspect")
            .arg(&file)
            .output()
            .unwrap()
    };
    let output = inspect(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("refused: writable by others (mode 0666)"),
        "{}",
        stdout(&output)
    );
    let output = inspect(&["--allow-insecure"]);
    assert!(output.status.success(), "{}", stdout(&output));

    let validate = |options: &[&str]| {
        plughost(dir.path())
            .args(options)
            .args(["validate", "--include", "open-now,init-shutdown"])
            .arg(&file)
            .output()
            .unwrap()
    };
    let output = validate(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("writable by others (mode 0666)"),
        "{}",
        stdout(&output)
    );
    let output = validate(&["--allow-insecure"]);
    assert!(output.status.success(), "{}", stdout(&output));
}

#[test]
fn a_slow_init_is_reported_naming_the_plugin() {
    assert_eq!(plughost::SLOW_CALL, std::time::Duration::from_secs(2));
    let dir = plugins_dir(&["hanger", "probe"]);
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("plughost.toml");
    std::fs::write(&config, "[plugins.hanger]\ninit_sleep_ms = 2200\n").unwrap();
    let output = plughost(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["run", "probe-ok"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ok\n");
    let err = stderr(&output);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("took")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("WARN"), "{err}");
    let file = dir.path().join(library_file("hanger"));
    assert!(
        warnings[0].contains(&format!(
            "plugin `hanger` ({}): init took 2.",
            file.display()
        )),
        "{err}"
    );
    // The built library in cargo's folder passes the rule, as do the tests' copies.
    assert!(PluginHost::new().load(&library("probe")).is_ok());
}
