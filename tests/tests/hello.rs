//! The 12-line `hello` plugin of the Rust guide (`plugins/hello`), built and loaded by the real
//! `plughost`: its command, its subscription, and its version and description, which it leaves
//! to its `Cargo.toml`.

use std::io::Write;
use std::process::{Command, Stdio};

use integration_tests::{abi_version, build, library_file, plughost, plugins_dir, stderr, stdout};

#[test]
fn hello_runs_in_the_real_host() {
    let dir = plugins_dir(&["hello"]);
    let output = plughost(dir.path())
        .args(["run", "hello", "Ada"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Hello, Ada! Last seen: \n");

    let output = plughost(dir.path())
        .args(["run", "hello"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    // One line (its prefix is the binary's business).
    let error = stderr(&output);
    assert_eq!(error.lines().count(), 1, "{error}");
    assert!(error.ends_with("hello: missing argument 1\n"), "{error}");
}

#[test]
fn hello_takes_its_version_and_description_from_its_cargo_toml() {
    let dir = plugins_dir(&["hello"]);
    let output = plughost(dir.path()).arg("list").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let listed = stdout(&output);
    let fields: Vec<&str> = listed
        .lines()
        .find(|l| l.starts_with("hello "))
        .unwrap_or_else(|| panic!("{listed}"))
        .split_whitespace()
        .collect();
    // The workspace's version: the crate takes it with `version.workspace = true`.
    assert_eq!(
        fields[..3],
        ["hello", env!("CARGO_PKG_VERSION"), &abi_version()]
    );

    let manifest = std::fs::read_to_string(
        integration_tests::workspace_root().join("plugins/hello/Cargo.toml"),
    )
    .unwrap();
    let description = manifest
        .lines()
        .find_map(|l| l.strip_prefix("description = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("plugins/hello/Cargo.toml has a description");
    let inspected = Command::new(build().join(format!("plughost{}", std::env::consts::EXE_SUFFIX)))
        .arg("inspect")
        .arg(dir.path().join(library_file("hello")))
        .output()
        .unwrap();
    let inspected = stdout(&inspected);
    assert!(
        inspected
            .lines()
            .any(|l| l.split_once(':').map(|(k, v)| (k, v.trim()))
                == Some(("description", description))),
        "{description:?} in {inspected}"
    );
}

#[test]
fn hello_sees_the_events_of_other_plugins() {
    let dir = plugins_dir(&["hello", "wordfreq"]);
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "one two two").unwrap();
    let mut child = plughost(dir.path())
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    write!(
        stdin,
        "hello Ada\nwordfreq {}\nhello Grace\n",
        text.display()
    )
    .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "Hello, Ada! Last seen: \n2\ttwo\n1\tone\nHello, Grace! Last seen: wordfreq.totals\n"
    );
}

#[test]
fn the_guide_shows_hello_as_built_in_12_lines() {
    let root = integration_tests::workspace_root();
    let source = std::fs::read_to_string(root.join("plugins/hello/src/lib.rs")).unwrap();
    let code: Vec<&str> = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    assert_eq!(code.len(), 12, "{source}");
    let guide = std::fs::read_to_string(root.join("docs/writing-a-plugin-in-rust.md")).unwrap();
    let section = guide
        .split_once("## 2. The plugin")
        .expect("the guide's section 2")
        .1;
    let block: Vec<&str> = section
        .split_once("```rust\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a Rust block in section 2")
        .0
        .lines()
        .collect();
    assert_eq!(block, code);
}

#[test]
fn hello_passes_the_conformance_checks() {
    let output = plughost(std::path::Path::new("/nonexistent"))
        .arg("validate")
        .arg(integration_tests::library("hello"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
}
