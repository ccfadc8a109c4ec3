//! The committed C header, `include/plughost.h`, is exactly what cbindgen generates from the ABI.
//!
//! This test is also the header's generator: `PLUGHOST_BLESS=1 cargo test -p plugin-api --test
//! header` rewrites the file instead of comparing it.
//!
//! cbindgen reads `src/abi.rs` (the whole ABI, and nothing else), with these adaptations made on
//! a copy, because cbindgen cannot make them itself:
//!
//! - `Option<F>`, where `F` is one of the ABI's `#[repr(transparent)]` wrappers of a function
//!   pointer, becomes `F`: in C every function pointer may be NULL, and Rust guarantees that
//!   `Option<F>` has the layout of `F`, with `None` as NULL. (cbindgen sees through `Option` of a
//!   bare function pointer, not of a wrapper, and would emit an undefined `Option_F` struct.)
//! - `PhHostContext` loses its `#[repr(C)]`, so that cbindgen declares it as the opaque struct it
//!   is, rather than as a struct holding a zero-length array (not valid ISO C).
//! - Doc links name the C items: ``[`PhResult::NullPointer`]`` becomes `` `PH_RESULT_NULL_POINTER` ``,
//!   and other links lose their brackets.
//! - The entry point, `plughost_plugin_entry`, is declared (as an `extern "C"` function), and
//!   `PH_ENTRY_POINT_SYMBOL` is defined as a string literal (cbindgen skips `&str` constants).

use std::path::{Path, PathBuf};

use plugin_api::abi::PH_ENTRY_POINT_SYMBOL;

/// The header, relative to the package.
const HEADER: &str = "include/plughost.h";

/// The command that rewrites the header.
const BLESS: &str = "PLUGHOST_BLESS=1 cargo test -p plugin-api --test header";

/// The enums of the ABI, whose variants are named `PREFIX_VARIANT` in C.
const ENUMS: &[&str] = &["PhResult", "PhLogLevel"];

fn package_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `InvalidUtf8` -> `INVALID_UTF8`, as cbindgen's `QualifiedScreamingSnakeCase` does.
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

/// The names of the `#[repr(transparent)]` structs of `source` (the function-pointer wrappers).
fn transparent_structs(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut after_repr = false;
    for line in source.lines().map(str::trim) {
        if line == "#[repr(transparent)]" {
            after_repr = true;
        } else if after_repr && line.starts_with("pub struct ") {
            let rest = &line["pub struct ".len()..];
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            names.push(rest[..end].to_owned());
            after_repr = false;
        } else if !line.starts_with("#[") {
            after_repr = false;
        }
    }
    names
}

/// Rewrites the doc links of `text` for C readers (see the module documentation).
fn c_doc_links(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("[`") {
        let Some(len) = rest[start + 2..].find("`]") else {
            break;
        };
        let target = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        let c_name = target.split_once("::").and_then(|(ty, variant)| {
            ENUMS
                .contains(&ty)
                .then(|| format!("{}_{}", screaming_snake(ty), screaming_snake(variant)))
        });
        out.push('`');
        out.push_str(c_name.as_deref().unwrap_or(target));
        out.push('`');
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The doc comment above the line of `source` that starts with `item`, without the `///`.
fn doc_above(source: &str, item: &str) -> Vec<String> {
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(item))
        .unwrap_or_else(|| panic!("`{item}` not found in src/abi.rs"));
    let mut doc: Vec<String> = lines[..at]
        .iter()
        .rev()
        .map_while(|l| l.trim().strip_prefix("///"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l).to_owned())
        .collect();
    doc.reverse();
    doc
}

/// A C comment in the header's documentation style.
fn c_comment(doc: &[String]) -> String {
    let mut out = String::from("/**\n");
    for line in doc {
        if line.is_empty() {
            out.push_str(" *\n");
        } else {
            out.push_str(&format!(" * {line}\n"));
        }
    }
    out.push_str(" */\n");
    out
}

/// The ABI source as cbindgen gets it: `src/abi.rs`, adapted, and the entry point's declaration.
fn cbindgen_source() -> String {
    let abi = std::fs::read_to_string(package_dir().join("src/abi.rs")).expect("read src/abi.rs");
    let wrappers = transparent_structs(&abi);
    assert!(
        wrappers.contains(&"PhInitFn".to_owned()) && wrappers.len() >= 10,
        "the function-pointer wrappers of the ABI: {wrappers:?}"
    );
    let mut source = abi.clone();
    for name in &wrappers {
        source = source.replace(&format!("Option<{name}>"), name);
    }
    let context = "#[repr(C)]\n#[derive(StableAbi)]\npub struct PhHostContext {";
    assert!(
        source.contains(context),
        "PhHostContext is declared as expected"
    );
    source = source.replace(context, "#[derive(StableAbi)]\npub struct PhHostContext {");
    source = c_doc_links(&source);
    source.push_str(&format!(
        r#"
extern "C" {{
    /// The entry point: every plugin library defines this function and exports it under this
    /// name (`PH_ENTRY_POINT_SYMBOL`); its type is `PhEntryPoint`. `[main-thread]`
    ///
    /// Returns the plugin's descriptor (owned by the plugin, normally a `static`, valid and
    /// unchanged while the library is loaded), or NULL if the plugin cannot run. It must not call
    /// the host and should do no other work.
    pub fn {PH_ENTRY_POINT_SYMBOL}() -> *const PhPluginDescriptor;
}}
"#
    ));
    source
}

/// Generates the header.
fn generate() -> String {
    let source_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("plughost-abi-{}.rs", std::process::id()));
    std::fs::write(&source_path, cbindgen_source()).expect("write the ABI source for cbindgen");

    let mut config = cbindgen::Config::from_file(package_dir().join("cbindgen.toml"))
        .expect("read cbindgen.toml");
    let abi = std::fs::read_to_string(package_dir().join("src/abi.rs")).expect("read src/abi.rs");
    let symbol_doc: Vec<String> = doc_above(&abi, "pub const PH_ENTRY_POINT_SYMBOL")
        .iter()
        .map(|l| c_doc_links(l))
        .collect();
    config.after_includes = Some(format!(
        "\n{}#define PH_ENTRY_POINT_SYMBOL \"{PH_ENTRY_POINT_SYMBOL}\"",
        c_comment(&symbol_doc)
    ));

    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(&source_path)
        .generate()
        .expect("cbindgen generates the header");
    let _ = std::fs::remove_file(&source_path);
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn committed_header_is_what_cbindgen_generates() {
    let generated = generate();
    let path = package_dir().join(HEADER);
    if std::env::var_os("PLUGHOST_BLESS").is_some() {
        // Written whole, then renamed, so that a reader never sees half a header.
        let partial = path.with_extension("h.partial");
        std::fs::write(&partial, &generated).expect("write the header");
        std::fs::rename(&partial, &path).expect("replace the header");
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        return;
    }
    let (line, (old, new)) = committed
        .lines()
        .chain(std::iter::repeat("<end of file>"))
        .zip(generated.lines().chain(std::iter::repeat("<end of file>")))
        .enumerate()
        .find(|(_, (old, new))| old != new)
        .unwrap_or((0, ("", "")));
    panic!(
        "{} is stale: the ABI changed since it was generated.\n\
         first difference, line {}:\n  committed: {old}\n  generated: {new}\n\
         Refresh it with `{BLESS}`, review the diff and commit it.",
        path.display(),
        line + 1,
    );
}

#[test]
fn header_names_every_item_the_c_side_needs() {
    let header = std::fs::read_to_string(package_dir().join(HEADER)).expect("read the header");
    for needed in [
        "#ifndef PLUGHOST_H",
        "#include <stdint.h>",
        "#include <stdbool.h>",
        "#include <stddef.h>",
        "extern \"C\" {",
        "#define PH_ABI_VERSION_MAJOR 1",
        "#define PH_ENTRY_POINT_SYMBOL \"plughost_plugin_entry\"",
        "#define PH_MAX_NAME_LEN 64",
        "#define PH_MAX_EVENT_DEPTH 16",
        "PH_RESULT_OK = 0,",
        "PH_RESULT_IO = 11,",
        "PH_LOG_LEVEL_WARN = 2,",
        "typedef uint32_t PhResultCode;",
        "typedef uint64_t PhHandle;",
        "typedef struct PhHostContext PhHostContext;",
        "typedef struct PhHostServices {",
        "typedef struct PhPluginDescriptor {",
        "PhInitFn init;",
        "const struct PhPluginDescriptor *plughost_plugin_entry(void);",
    ] {
        assert!(header.contains(needed), "the header lacks `{needed}`");
    }
    assert!(
        !header.contains("Option"),
        "an Option<...> was not turned into C"
    );
    assert!(
        !header.contains("PhResult_ALL"),
        "a Rust-only constant is in the header"
    );
    assert!(
        !header.contains("[`"),
        "a Rust doc link was left in the header"
    );
}
