//! The ABI's rules that plugins break, each through the real `plughost` binary and real compiled
//! plugins: command metadata owned by the host (ABI 1.2), duplicate command names, panics whose
//! payload panics again, endless nested enumerations, command output written from another
//! thread, and ABI 1.1 plugins still loading. (The lifetime model itself, under threads, is
//! `stress.rs`.)

use integration_tests::{compile_c_fixture, plughost, plugins_dir, stderr, stdout};

/// A plugins folder with the Rust plugins `krates` and the C fixture compiled with `defines` as
/// the library `stem`.
fn folder_with_c(krates: &[&str], c: &[(&str, &[&str])]) -> tempfile::TempDir {
    let dir = plugins_dir(krates);
    for (stem, defines) in c {
        compile_c_fixture(dir.path(), stem, defines);
    }
    dir
}

#[test]
fn an_abi_1_1_plugin_loads_and_cannot_describe_another_plugins_command() {
    // Declares ABI 1.1 (so the host asks its `enumerate_commands` for its commands' text), and
    // that enumeration also describes wordfreq's command as its own.
    let dir = folder_with_c(
        &["wordfreq"],
        &[(
            "cfixture",
            &["FIXTURE_MINOR=1", "FIXTURE_CLAIM=\"wordfreq\""],
        )],
    );
    let help = plughost(dir.path())
        .args(["run", "wordfreq", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success(), "{}", stderr(&help));
    let help = stdout(&help);
    assert!(!help.contains("stolen"), "{help}");
    assert!(help.contains("From the plugin wordfreq"), "{help}");

    let list = plughost(dir.path()).arg("list").output().unwrap();
    assert!(list.status.success(), "{}", stderr(&list));
    let list = stdout(&list);
    let cfixture_row = list
        .lines()
        .find(|l| l.starts_with("cfixture"))
        .unwrap_or_else(|| panic!("no cfixture row:\n{list}"));
    assert!(cfixture_row.contains("1.1"), "{cfixture_row}");
    assert!(cfixture_row.contains("cfixture-ok"), "{cfixture_row}");
    assert!(!cfixture_row.contains("wordfreq"), "{cfixture_row}");
    assert!(!list.contains("stolen"), "{list}");

    let run = plughost(dir.path())
        .args(["run", "cfixture-ok"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(stdout(&run), "ok\n");
}

#[test]
fn the_second_registration_of_a_command_name_is_refused_with_a_warning_naming_both() {
    let dir = folder_with_c(
        &[],
        &[
            (
                "afirst",
                &["FIXTURE_NAME=\"afirst\"", "FIXTURE_COMMAND=\"shared-cmd\""],
            ),
            (
                "bsecond",
                &["FIXTURE_NAME=\"bsecond\"", "FIXTURE_COMMAND=\"shared-cmd\""],
            ),
        ],
    );
    let output = plughost(dir.path())
        .args(["run", "shared-cmd"])
        .output()
        .unwrap();
    let err = stderr(&output);
    // The second plugin's `init` fails with the registration's error, and the host says why.
    let warning = err
        .lines()
        .find(|l| l.contains("shared-cmd") && l.contains("registered it first"))
        .unwrap_or_else(|| panic!("no warning naming the command:\n{err}"));
    assert!(warning.contains("`bsecond`"), "{warning}");
    assert!(warning.contains("`afirst`"), "{warning}");
    assert!(warning.contains("libafirst"), "{warning}");
    assert!(warning.contains("libbsecond"), "{warning}");
    assert!(output.status.success(), "{err}");
    assert_eq!(
        stdout(&output),
        "ok\n",
        "the first plugin keeps the command"
    );
}

#[test]
fn a_panic_whose_payload_panics_again_is_contained() {
    let dir = plugins_dir(&["hostile", "wordfreq"]);
    let output = plughost(dir.path())
        .args(["run", "hostile-double-panic"])
        .output()
        .unwrap();
    let err = stderr(&output);
    // Not an abort (signal): a failed command, reported in one line.
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("hostile-double-panic"), "{err}");
    assert!(err.contains("panicked"), "{err}");
}

#[test]
fn nested_enumerations_stop_at_the_limit_with_an_error() {
    let dir = plugins_dir(&["hostile"]);
    for command in ["hostile-recurse-plugins", "hostile-recurse-commands"] {
        let output = plughost(dir.path())
            .args(["run", command])
            .output()
            .unwrap();
        assert!(output.status.success(), "{command}: {}", stderr(&output));
        let limit = plugin_api::abi::PH_MAX_ENUMERATION_DEPTH;
        assert_eq!(
            stdout(&output),
            format!("depth={} error=limit exceeded\n", limit + 1),
            "{command}"
        );
    }
}

#[test]
fn command_output_written_from_another_thread_is_refused() {
    let dir = plugins_dir(&["hostile"]);
    let output = plughost(dir.path())
        .args(["run", "hostile-write-from-thread"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(!out.contains("from another thread"), "{out}");
    assert_eq!(
        out,
        "other thread: writing output: called from the wrong thread\n"
    );
}
