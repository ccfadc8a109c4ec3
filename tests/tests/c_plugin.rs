//! The example plugin written in C, `checksum`, beside the Rust plugins: through the `plughost`
//! binary and through the host library in one process.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::{
    build, host_with, library_file, plughost, plughost_binary, plugins_dir, require_valgrind, run,
    stderr, stdout, workspace_root, C_PLUGIN, EXAMPLE_PLUGINS, MEMCHECK,
};
use plughost::{LayoutCheck, PluginHost, PluginState};

/// The C plugin and the three Rust example plugins.
const ALL: &[&str] = &[C_PLUGIN, "wordfreq", "inventory", "journal"];

/// The error message of a command that must fail.
fn failure(host: &PluginHost, command: &str, args: &[&str]) -> String {
    match run(host, command, args) {
        Ok(out) => panic!("{command} {args:?} succeeded: {out:?}"),
        Err(e) => e.to_string(),
    }
}

/// What `checksum FILES` must print, computed by Python's `zlib.crc32`, reading each file in
/// blocks.
fn zlib_reference(files: &[PathBuf]) -> String {
    const SCRIPT: &str = r#"
import sys, zlib
for name in sys.argv[1:]:
    crc, size = 0, 0
    with open(name, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                break
            crc = zlib.crc32(block, crc)
            size += len(block)
    sys.stdout.write("%08x\t%d\t%s\n" % (crc, size, name))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .args(files)
        .output()
        .expect("run python3 (the reference CRC-32 is zlib's)");
    assert!(output.status.success(), "python3: {}", stderr(&output));
    stdout(&output)
}

/// A file of at least `min_size` bytes: the UDHR text repeated.
fn repeated_text(path: &Path, min_size: u64) {
    use std::io::Write;
    let text = std::fs::read(workspace_root().join("tests/data/udhr-article-1.txt")).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut written = 0u64;
    let mut i = 0u64;
    while written < min_size {
        file.write_all(&text).unwrap();
        // A counter, so that no two blocks are the same.
        let tag = format!(" {i}\n");
        file.write_all(tag.as_bytes()).unwrap();
        written += (text.len() + tag.len()) as u64;
        i += 1;
    }
    file.flush().unwrap();
}

#[test]
fn list_shows_checksum_beside_the_rust_plugins() {
    let dir = plugins_dir(ALL);
    let output = plughost(dir.path()).arg("list").output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with("interfaces:"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        text.contains("\ninterfaces: journal: requires plughost.kv 1.0 (optional)\n"),
        "{text}"
    );
    let names: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(
        names,
        ["checksum", "inventory", "journal", "wordfreq"],
        "{text}"
    );
    let checksum = &rows[0];
    assert_eq!(checksum[1], env!("CARGO_PKG_VERSION"), "{text}");
    assert_eq!(checksum[2], integration_tests::abi_version(), "{text}");
    let line = text.lines().nth(1).unwrap();
    assert!(line.contains("libchecksum"), "{line}");
    assert!(
        line.contains("checksum, checksum-plugins, checksum-events"),
        "{line}"
    );
}

#[test]
fn plughost_finds_checksum_in_its_own_folder_after_cargo_build() {
    // The README's `target/PROFILE/plughost list`: no --plugins, the binary's own folder.
    let binary = build().join(format!("plughost{}", std::env::consts::EXE_SUFFIX));
    // That folder holds the `kv` plugin too, which opens its database in the platform's data
    // folder when none is configured: a temporary home, never the real one.
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(binary)
        .arg("list")
        .env_remove("PLUGHOST_PLUGINS")
        .env_remove("PLUGHOST_CONFIG")
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .output()
        .unwrap();
    let text = stdout(&output);
    for name in ALL {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing from:\n{text}\n{}",
            stderr(&output)
        );
    }
    // The host's own C library is built into the same folder, and is no plugin candidate.
    assert!(integration_tests::c_library().exists());
    assert!(!text.contains(plughost::C_LIBRARY_NAME), "{text}");
    // `kv` took the default path in the temporary home.
    assert!(text.lines().any(|l| l.starts_with("kv ")), "{text}");
    if cfg!(target_os = "linux") {
        assert!(home.path().join("data/plughost/kv.redb").is_file());
    }
}

#[test]
fn checksum_agrees_with_zlib_crc32_on_real_files() {
    let dir = plugins_dir(ALL);
    let files = tempfile::tempdir().unwrap();
    let empty = files.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let text = workspace_root().join("tests/data/udhr-article-1.txt");
    // Every byte value, and a length that is not a multiple of the plugin's 64 KiB blocks.
    let bytes = files.path().join("all bytes.bin");
    let all: Vec<u8> = (0..200_003u32).map(|i| (i * 7 + i / 256) as u8).collect();
    std::fs::write(&bytes, &all).unwrap();
    // Over 100 MB: read in blocks, never whole.
    let big = files.path().join("big.txt");
    repeated_text(&big, 100 * 1024 * 1024 + 12_345);
    assert!(std::fs::metadata(&big).unwrap().len() > 100_000_000);

    let inputs = [empty, text, bytes, big];
    let output = plughost(dir.path())
        .args(["run", "checksum"])
        .args(&inputs)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let expected = zlib_reference(&inputs);
    assert_eq!(stdout(&output), expected);
    // The known values, so that the reference itself is checked too.
    assert!(expected.starts_with("00000000\t0\t"), "{expected}");
    assert_eq!(expected.lines().count(), 4);
}

#[test]
fn checksum_reports_bad_files_and_arguments() {
    let dir = plugins_dir(ALL);
    let missing = dir.path().join("no-such-file");
    let output = plughost(dir.path())
        .args(["run", "checksum"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no-such-file: No such file or directory"));

    let (host, _dir) = host_with(ALL);
    assert_eq!(
        failure(&host, "checksum", &[]),
        "checksum: usage: checksum FILE..."
    );
    assert_eq!(
        failure(&host, "checksum", &[""]),
        "checksum: empty file name"
    );
    let folder = dir.path().to_str().unwrap();
    assert_eq!(
        failure(&host, "checksum", &[folder]),
        format!("checksum: {folder}: Is a directory")
    );
    assert!(failure(&host, "checksum-events", &["x"]).contains("usage"));
    assert!(failure(&host, "checksum-plugins", &["x"]).contains("usage"));
    // The failures did not fault the plugin.
    let summary = host.plugins();
    assert!(summary.iter().all(|p| p.state == PluginState::Active));
    assert_eq!(
        run(&host, "checksum-events", &[]).unwrap(),
        "0\twordfreq.totals\t\n"
    );
}

#[test]
fn the_host_sees_the_c_plugin_through_the_same_handshake() {
    let (host, _dir) = host_with(ALL);
    let plugins = host.plugins();
    let checksum = plugins.iter().find(|p| p.name == "checksum").unwrap();
    assert_eq!(checksum.layout, LayoutCheck::NotCarried);
    assert_eq!(checksum.version, env!("CARGO_PKG_VERSION"));
    let commands: Vec<(&str, &str)> = checksum
        .commands
        .iter()
        .map(|c| (c.name.as_str(), c.usage.as_str()))
        .collect();
    assert_eq!(
        commands,
        [
            ("checksum", "FILE..."),
            ("checksum-plugins", ""),
            ("checksum-events", "")
        ]
    );
    for rust in EXAMPLE_PLUGINS {
        let plugin = plugins.iter().find(|p| p.name == *rust).unwrap();
        assert_eq!(plugin.layout, LayoutCheck::Passed);
    }
}

#[test]
fn rust_events_reach_the_c_plugin() {
    let (host, _dir) = host_with(ALL);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "one two two").unwrap();
    let path = file.path().to_str().unwrap();
    assert_eq!(
        run(&host, "checksum-events", &[]).unwrap(),
        "0\twordfreq.totals\t\n"
    );
    assert_eq!(run(&host, "wordfreq", &[path]).unwrap(), "2\ttwo\n1\tone\n");
    assert_eq!(
        run(&host, "checksum-events", &[]).unwrap(),
        "1\twordfreq.totals\tfiles=1 words=3 distinct=2 bytes=11\n"
    );
    // Published by the host itself; the C plugin copies the borrowed payload and shows control
    // characters as spaces.
    host.publish("wordfreq.totals", b"from\nthe host").unwrap();
    host.publish("wordfreq.other", b"not subscribed").unwrap();
    assert_eq!(
        run(&host, "checksum-events", &[]).unwrap(),
        "2\twordfreq.totals\tfrom the host\n"
    );
}

#[test]
fn c_events_reach_the_rust_journal() {
    let (host, _dir) = host_with(ALL);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "one two two").unwrap();
    let path = file.path().to_str().unwrap();
    assert_eq!(run(&host, "journal", &[]).unwrap(), "");
    let out = run(&host, "checksum", &[path, path]).unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(
        run(&host, "journal", &[]).unwrap(),
        "1\tchecksum.done\tfiles=2 bytes=22\n"
    );
    // A failed run publishes nothing.
    failure(&host, "checksum", &[path, ""]);
    assert!(run(&host, "journal", &[])
        .unwrap()
        .starts_with("1\tchecksum.done\t"));
}

#[test]
fn checksum_plugins_enumerates_through_the_host_callbacks() {
    let (host, _dir) = host_with(ALL);
    let expected: String = host
        .plugins()
        .iter()
        .map(|p| {
            let commands: Vec<&str> = p.commands.iter().map(|c| c.name.as_str()).collect();
            format!(
                "{}\t{}\t{}.{}\t{}\n",
                p.name,
                p.version,
                p.abi_version.0,
                p.abi_version.1,
                commands.join(" ")
            )
        })
        .collect();
    let out = run(&host, "checksum-plugins", &[]).unwrap();
    assert_eq!(out, expected);
    assert!(out.starts_with("checksum\t"), "{out}");
    assert!(out.contains("\nwordfreq\t"), "{out}");
    // And the Rust inventory plugin enumerates the C plugin's commands.
    let inventory = run(&host, "plugins", &[]).unwrap();
    assert!(inventory.contains("    checksum FILE...: "), "{inventory}");
}

#[test]
fn the_c_plugin_runs_on_several_threads_at_once() {
    let (host, _dir) = host_with(ALL);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "abc").unwrap();
    let path = file.path().to_str().unwrap();
    let expected = format!("352441c2\t3\t{path}\n");
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..100 {
                    assert_eq!(run(&host, "checksum", &[path]).unwrap(), expected);
                    host.publish("wordfreq.totals", b"tick").unwrap();
                }
            });
        }
    });
    assert_eq!(
        run(&host, "checksum-events", &[]).unwrap(),
        "400\twordfreq.totals\ttick\n"
    );
    assert!(run(&host, "journal", &[])
        .unwrap()
        .starts_with("400\tchecksum.done\tfiles=1 bytes=3\n"));
}

/// The first C code block of the guide, `docs/writing-a-plugin-in-c.md`.
fn guide_example() -> String {
    let guide = std::fs::read_to_string(workspace_root().join("docs/writing-a-plugin-in-c.md"))
        .expect("read the guide");
    let start = guide.find("```c\n").expect("a C code block in the guide") + "```c\n".len();
    let len = guide[start..]
        .find("```")
        .expect("the end of the code block");
    guide[start..start + len].to_owned()
}

#[test]
fn the_guide_example_builds_as_c_and_cpp_and_runs() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("hello.c");
    std::fs::write(&source, guide_example()).unwrap();
    let include = workspace_root().join("plugin-api/include");
    let languages = [
        ("CC", "gcc", vec!["-std=c11"]),
        ("CXX", "g++", vec!["-x", "c++", "-std=c++17"]),
    ];
    for (env, default, flags) in languages {
        let compiler = std::env::var(env).unwrap_or_else(|_| default.to_owned());
        // The guide's command line, with warnings as errors.
        let plugins = tempfile::tempdir().unwrap();
        let library = plugins
            .path()
            .join(integration_tests::library_file("hello"));
        let output = Command::new(&compiler)
            .args(&flags)
            .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O2", "-fPIC"])
            .arg("-I")
            .arg(&include)
            .arg(&source)
            .args(["-shared", "-o"])
            .arg(&library)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {compiler} ({e}); install it or set ${env}"));
        assert!(
            output.status.success(),
            "{compiler} {flags:?}:\n{}",
            stderr(&output)
        );
        let output = plughost(plugins.path())
            .args(["run", "hello", "world"])
            .env("RUST_LOG", "hello=info")
            .output()
            .unwrap();
        assert!(output.status.success(), "{flags:?}: {}", stderr(&output));
        assert_eq!(stdout(&output), "Hello, world!\n");
        assert!(
            stderr(&output).contains("greeting someone"),
            "{}",
            stderr(&output)
        );
        let output = plughost(plugins.path())
            .args(["run", "hello"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output).contains("usage: hello NAME"));
    }
}

/// The valgrind command lines (the code blocks' lines starting with `valgrind`, joined at `\`)
/// of a Markdown text.
fn valgrind_commands(markdown: &str) -> Vec<Vec<String>> {
    let joined = markdown.replace("\\\n", " ");
    joined
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("valgrind "))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The `--` options of a command line.
fn options(command: &[String]) -> Vec<&str> {
    command
        .iter()
        .map(String::as_str)
        .filter(|w| w.starts_with("--"))
        .take_while(|w| !w.starts_with("--plugins"))
        .collect()
}

#[test]
fn the_guide_shows_the_valgrind_flags_the_tests_use() {
    let guide = std::fs::read_to_string(workspace_root().join("docs/writing-a-plugin-in-c.md"))
        .expect("read the guide");
    let commands = valgrind_commands(&guide);
    assert!(!commands.is_empty(), "no valgrind command in the C guide");
    for command in &commands {
        assert_eq!(options(command), MEMCHECK, "{command:?}");
    }
    // And says why, flag by flag.
    for flag in MEMCHECK {
        let name = flag.split('=').next().unwrap();
        assert!(
            guide.contains(&format!("`{flag}`")) || guide.contains(&format!("`{name}")),
            "the guide does not explain {flag}"
        );
    }
}

#[test]
fn a_c_plugin_written_by_new_builds_passes_validate_and_its_test_script() {
    let work = tempfile::tempdir().unwrap();
    let output = plughost(Path::new("/nonexistent"))
        .args(["new", "--c", "hello-c", "--dir"])
        .arg(work.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let folder = work.path().join("hello-c");
    assert_eq!(stdout(&output), format!("created {}\n", folder.display()));
    assert_eq!(
        std::fs::read(folder.join("plughost.h")).unwrap(),
        std::fs::read(workspace_root().join("plugin-api/include/plughost.h")).unwrap(),
        "the header is this plughost's"
    );

    // Its test script, as written: builds with cc, validates, runs the command.
    let output = Command::new("sh")
        .arg(folder.join("test.sh"))
        .env("PLUGHOST", plughost_binary())
        .env_remove("PLUGHOST_PLUGINS")
        .env_remove("PLUGHOST_CONFIG")
        .env_remove("PLUGHOST_ALLOW_INSECURE")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(
        stdout(&output).contains("test.sh: hello-c passed"),
        "{}",
        stdout(&output)
    );
    let built = folder.join(library_file("hello-c"));
    assert!(built.is_file());

    // Without a plughost to run: one line saying what to do, not the shell's "not found".
    let output = Command::new("sh")
        .arg(folder.join("test.sh"))
        .env("PLUGHOST", "/no/such/plughost")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(
        stderr(&output),
        "test.sh: cannot run plughost (/no/such/plughost): put it on PATH or set \
         PLUGHOST=path/to/plughost\n"
    );

    // The build command of its README builds the same way.
    let readme = std::fs::read_to_string(folder.join("README.md")).unwrap();
    let joined = readme.replace("\\\n", " ");
    let build_line = joined
        .lines()
        .find(|l| l.starts_with("cc "))
        .expect("a cc command in the README");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    std::fs::remove_file(&built).unwrap();
    let status = Command::new(compiler)
        .args(build_line.split_whitespace().skip(1))
        .current_dir(&folder)
        .status()
        .unwrap();
    assert!(status.success(), "{build_line}");
    assert!(built.is_file());

    // Under memcheck with the README's flags (those of the tests): no error.
    require_valgrind();
    let commands = valgrind_commands(&readme);
    assert_eq!(commands.len(), 1, "{readme}");
    assert_eq!(options(&commands[0]), MEMCHECK);
    let plugins = plugins_dir(&[]);
    std::fs::copy(&built, plugins.path().join(library_file("hello-c"))).unwrap();
    let output = Command::new("valgrind")
        .args(MEMCHECK)
        .arg(plughost_binary())
        .arg("--plugins")
        .arg(plugins.path())
        .args(["run", "hello-c", "Ada"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Hello, Ada!\n");
    assert!(stderr(&output).contains("ERROR SUMMARY: 0 errors"));

    // The names `new` refuses, in one line; and an existing folder.
    for (name, why) in [
        ("9lives", "an ASCII letter"),
        ("plughost_host", "host's C library"),
        ("hello-c", "already exists"),
    ] {
        let output = plughost(Path::new("/nonexistent"))
            .args(["new", "--c", name, "--dir"])
            .arg(work.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{name}");
        let err = stderr(&output);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("plughost: ") && err.contains(why), "{err}");
    }
}
