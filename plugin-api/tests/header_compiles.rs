//! The committed C header compiles on its own as C11, C17 and C++17, with `-Wall -Wextra
//! -Wpedantic -Werror`, and describes exactly the Rust ABI's layout.
//!
//! `tests/c/header_check.c` includes only the header and defines a small plugin against it; this
//! test passes it the Rust side's sizes, alignments, field offsets and constants as macros, which
//! it checks with static assertions. The compilers are `$CC` (default `gcc`) and `$CXX` (default
//! `g++`).

use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use plugin_api::abi::*;

/// Flags of every compilation: every warning is an error.
const WARNINGS: &[&str] = &["-Wall", "-Wextra", "-Wpedantic", "-Werror"];

fn package_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `InvalidUtf8` -> `INVALID_UTF8`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// `-D` flags for the size and alignment of each type and the offset of each of its fields.
macro_rules! layout_defines {
    ($($ty:ident { $($field:ident),* $(,)? })*) => {{
        let mut defines = Vec::new();
        $(
            defines.push(format!("-DSIZE_{}={}", stringify!($ty), size_of::<$ty>()));
            defines.push(format!("-DALIGN_{}={}", stringify!($ty), align_of::<$ty>()));
            $(
                defines.push(format!(
                    "-DOFFSET_{}_{}={}",
                    stringify!($ty),
                    stringify!($field),
                    offset_of!($ty, $field),
                ));
            )*
        )*
        defines
    }};
}

/// What the Rust side says, as `-D` flags for `header_check.c`.
fn rust_defines() -> Vec<String> {
    let mut defines = layout_defines! {
        PhResultCode {}
        PhHandle {}
        PhResult {}
        PhLogLevel {}
        PhStr { ptr, len }
        PhBytes { ptr, len }
        PhCommandOutput { struct_size, context, write, set_error }
        PhCommandInfo { struct_size, name, description, usage }
        PhPluginInfo { struct_size, abi_major, abi_minor, name, version, description, path }
        PhHostServices {
            abi_major, abi_minor, struct_size, log, log_max_level, register_command, unregister,
            subscribe, publish, enumerate_plugins, enumerate_commands, config_get,
            register_command_with_info,
        }
        PhPluginVtable { struct_size, init, shutdown, enumerate_commands, save_state, restore_state }
        PhPluginDescriptor { abi_major, abi_minor, struct_size, name, version, description, vtable }
    };
    let constants: [(&str, u64); 11] = [
        ("PH_ABI_VERSION_MAJOR", PH_ABI_VERSION_MAJOR.into()),
        ("PH_ABI_VERSION_MINOR", PH_ABI_VERSION_MINOR.into()),
        ("PH_MAX_NAME_LEN", PH_MAX_NAME_LEN as u64),
        ("PH_MAX_VERSION_LEN", PH_MAX_VERSION_LEN as u64),
        ("PH_MAX_DESCRIPTION_LEN", PH_MAX_DESCRIPTION_LEN as u64),
        ("PH_MAX_USAGE_LEN", PH_MAX_USAGE_LEN as u64),
        ("PH_MAX_TOPIC_LEN", PH_MAX_TOPIC_LEN as u64),
        (
            "PH_MAX_REGISTRATIONS_PER_PLUGIN",
            PH_MAX_REGISTRATIONS_PER_PLUGIN as u64,
        ),
        ("PH_MAX_EVENT_DEPTH", PH_MAX_EVENT_DEPTH.into()),
        ("PH_MAX_ENUMERATION_DEPTH", PH_MAX_ENUMERATION_DEPTH.into()),
        ("PH_INVALID_HANDLE", PH_INVALID_HANDLE),
    ];
    for (name, value) in constants {
        defines.push(format!("-DRUST_{name}={value}"));
    }
    for code in PhResult::ALL {
        let name = screaming_snake(&format!("{code:?}"));
        defines.push(format!("-DRUST_PH_RESULT_{name}={}", code.code()));
    }
    for level in [
        PhLogLevel::Off,
        PhLogLevel::Error,
        PhLogLevel::Warn,
        PhLogLevel::Info,
        PhLogLevel::Debug,
        PhLogLevel::Trace,
    ] {
        let name = screaming_snake(&format!("{level:?}"));
        defines.push(format!("-DRUST_PH_LOG_LEVEL_{name}={}", level as u32));
    }
    defines
}

/// Compiles `tests/c/header_check.c` with `compiler` (`$env`, default `default`) and `flags`,
/// and returns the object file's bytes.
fn compile(env: &str, default: &str, flags: &[&str]) -> Vec<u8> {
    let compiler = std::env::var(env).unwrap_or_else(|_| default.to_owned());
    let object = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "header_check-{}-{}.o",
        flags.join("").replace(['-', '='], ""),
        std::process::id()
    ));
    let output = Command::new(&compiler)
        .args(flags)
        .args(WARNINGS)
        .arg("-I")
        .arg(package_dir().join("include"))
        .args(rust_defines())
        .arg("-c")
        .arg(package_dir().join("tests/c/header_check.c"))
        .arg("-o")
        .arg(&object)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the compiler `{compiler}` ({e}): install it (on Debian: \
                 `apt-get install gcc g++`) or name another one in ${env}"
            )
        });
    assert!(
        output.status.success(),
        "`{compiler} {}` failed on the header:\n{}",
        flags.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&object).expect("read the object file");
    let _ = std::fs::remove_file(&object);
    bytes
}

/// Whether `haystack` contains `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The object file defines the entry point under its plain C name.
fn assert_exports_entry_point(object: &[u8]) {
    assert!(contains(object, PH_ENTRY_POINT_SYMBOL.as_bytes()));
    // The Itanium C++ ABI's mangled name, which `extern "C"` in the header must prevent.
    let mangled = format!(
        "_Z{}{}v",
        PH_ENTRY_POINT_SYMBOL.len(),
        PH_ENTRY_POINT_SYMBOL
    );
    assert!(
        !contains(object, mangled.as_bytes()),
        "the entry point has a C++ name: the header's extern \"C\" block is missing"
    );
}

#[test]
fn header_compiles_as_c11() {
    assert_exports_entry_point(&compile("CC", "gcc", &["-std=c11"]));
}

#[test]
fn header_compiles_as_c17() {
    assert_exports_entry_point(&compile("CC", "gcc", &["-std=c17"]));
}

#[test]
fn header_compiles_as_cxx17() {
    assert_exports_entry_point(&compile("CXX", "g++", &["-x", "c++", "-std=c++17"]));
}

#[test]
fn a_layout_difference_fails_the_compilation() {
    // The checks are real: a wrong size makes the C compiler refuse the file.
    let compiler = std::env::var("CC").unwrap_or_else(|_| "gcc".to_owned());
    let mut defines = rust_defines();
    for define in &mut defines {
        if define.starts_with("-DSIZE_PhStr=") {
            *define = format!("-DSIZE_PhStr={}", size_of::<PhStr>() + 1);
        }
    }
    let output = Command::new(&compiler)
        .args(["-std=c11", "-fsyntax-only"])
        .arg("-I")
        .arg(package_dir().join("include"))
        .args(&defines)
        .arg(package_dir().join("tests/c/header_check.c"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run the compiler `{compiler}`: {e}"));
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("size of PhStr differs from Rust"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
