//! Builds `checksum.c` into the shared library of the `checksum` plugin and puts it in the
//! profile folder (`target/PROFILE`), beside the Rust plugins and the `plughost` binary.
//!
//! The `cc` crate chooses the C compiler and its flags for the target and profile (`$CC`,
//! `$CFLAGS`, optimisation and debug info as cargo asks); this script adds the warnings (as
//! errors), the include folder of the generated header, and the flags of a shared library.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The base name of the library file: `libchecksum.so` on Linux.
const LIBRARY_NAME: &str = "checksum";

fn main() {
    let package = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let source = package.join("checksum.c");
    let include = package.join("../../plugin-api/include");
    let header = include.join("plughost.h");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=build.rs");

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let file_name = library_file_name();
    let built = out_dir.join(&file_name);

    let compiler = cc::Build::new()
        .std("c11")
        .include(&include)
        .define(
            "CHECKSUM_VERSION",
            format!("\"{}\"", env::var("CARGO_PKG_VERSION").expect("version")).as_str(),
        )
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Wpedantic")
        .flag("-Werror")
        .flag("-fvisibility=hidden")
        .flag("-pthread")
        .pic(true)
        .cargo_metadata(false)
        .get_compiler();
    if compiler.is_like_msvc() {
        // The command line below is GCC's and Clang's; MSVC would need its own.
        println!(
            "cargo:warning=the checksum plugin is written for GCC or Clang; not built with MSVC"
        );
        return;
    }
    let mut command = compiler.to_command();
    command.arg("-shared").arg("-o").arg(&built).arg(&source);
    run(command);

    let installed = profile_dir(&out_dir).join(&file_name);
    install(
        &built,
        &installed,
        &[&source, &header, &package.join("build.rs")],
    );
    // Build again when the installed library is deleted or replaced (cargo reruns this script when
    // a path it names is missing or newer than the script's last run; `install` dates the file
    // back to its newest input, so an untouched one is neither).
    println!("cargo:rerun-if-changed={}", installed.display());
}

/// `libchecksum.so`, `libchecksum.dylib`, `checksum.dll`.
fn library_file_name() -> String {
    // The target's conventions, not the build machine's (they differ when cross-compiling).
    let os = env::var("CARGO_CFG_TARGET_OS").expect("CARGO_CFG_TARGET_OS");
    let (prefix, suffix) = match os.as_str() {
        "windows" => ("", ".dll"),
        "macos" | "ios" => ("lib", ".dylib"),
        _ => ("lib", ".so"),
    };
    format!("{prefix}{LIBRARY_NAME}{suffix}")
}

/// The profile folder: `OUT_DIR` is `target/PROFILE/build/checksum-plugin-HASH/out`.
fn profile_dir(out_dir: &Path) -> PathBuf {
    let dir = out_dir
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is target/PROFILE/build/PACKAGE-HASH/out");
    assert!(
        out_dir
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            == Some("build".as_ref()),
        "unexpected OUT_DIR layout: {}",
        out_dir.display()
    );
    dir.to_owned()
}

/// Copies the library to `to`, atomically: a `plughost` running meanwhile sees the old file or
/// the new one, never half of one. The copy gets the modification time of the newest of `inputs`.
fn install(from: &Path, to: &Path, inputs: &[&Path]) {
    let partial = to.with_extension("partial");
    std::fs::copy(from, &partial)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), partial.display()));
    let newest_input = inputs
        .iter()
        .map(|input| {
            std::fs::metadata(input)
                .and_then(|m| m.modified())
                .unwrap_or_else(|e| panic!("modification time of {}: {e}", input.display()))
        })
        .max()
        .expect("at least one input");
    std::fs::File::options()
        .write(true)
        .open(&partial)
        .and_then(|file| file.set_modified(newest_input))
        .unwrap_or_else(|e| panic!("set the modification time of {}: {e}", partial.display()));
    std::fs::rename(&partial, to)
        .unwrap_or_else(|e| panic!("rename {} to {}: {e}", partial.display(), to.display()));
}

/// Runs the compiler; on failure shows its output and fails the build.
fn run(mut command: Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler ({command:?}): {e}"));
    if !output.status.success() {
        panic!(
            "building the checksum plugin failed:\n{command:?}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
