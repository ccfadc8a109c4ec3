//! `plughost new`: writes a new plugin crate from the template in `host/templates/plugin`.

use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../templates/plugin/Cargo.toml.in");
const LIB_RS: &str = include_str!("../templates/plugin/lib.rs.in");
const MOCK_HOST_RS: &str = include_str!("../templates/plugin/mock_host.rs.in");
const README_MD: &str = include_str!("../templates/plugin/README.md.in");

/// The `plugin-api` folder of the source tree this host was built from, if it still exists.
pub fn default_api_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
    path.canonicalize().ok()
}

/// Names the template refuses although they are valid plugin names: the crate would not build
/// (names the Rust toolchain keeps for itself, keywords) or would clash with this workspace's
/// crates (a plugin's tests depend on some of them).
const RESERVED: &[(&str, &str)] = &[
    (
        "plugin",
        "it is too generic: the plugin's type would clash with the `Plugin` trait",
    ),
    (
        "host",
        "it is too generic: the plugin's type would clash with the `Host` handle",
    ),
    ("std", "it is the name of Rust's standard library"),
    ("core", "it is the name of Rust's core library"),
    ("alloc", "it is the name of Rust's allocation library"),
    ("test", "it is the name of Rust's test library"),
    (
        "proc-macro",
        "it is the name of Rust's procedural macro library",
    ),
    (
        "proc_macro",
        "it is the name of Rust's procedural macro library",
    ),
    ("self", "it is a Rust keyword"),
    ("crate", "it is a Rust keyword"),
    ("super", "it is a Rust keyword"),
    ("plughost", "it is the name of the host crate"),
    (
        "plughost-host",
        "its library would have the name of the host's C library, which plughost skips",
    ),
    ("plugin-api", "it is the name of the plugin API crate"),
    (
        "plugin-api-macros",
        "it is the name of a crate of this workspace",
    ),
    ("plughost-testing", "it is the name of the mock host crate"),
    (
        "integration-tests",
        "it is the name of a crate of this workspace",
    ),
    (
        "plughost-bench",
        "it is the name of a crate of this workspace",
    ),
];

/// Rust keywords, which cannot name a crate.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

/// Checks that `name` makes a plugin crate that builds and does not clash: a valid plugin name
/// (the ABI's rule) that starts with an ASCII letter, has no `.` (crate names cannot), no `-` at
/// either end or twice in a row (the crate name `a__b`, the type name `AB`), and is not one of
/// [`RESERVED`] or a Rust keyword (compared with `-` as `_`, as cargo does).
///
/// # Errors
///
/// One line naming the name and why it is refused.
pub fn check_name(name: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("cannot create a plugin named {name:?}: {why}"));
    if !(name.starts_with(|c: char| c.is_ascii_alphabetic())
        && plugin_api::abi::is_valid_name(name)
        && !name.contains('.'))
    {
        return refuse(&format!(
            "a name is an ASCII letter, then ASCII letters, digits, '-' or '_' (at most {} bytes)",
            plugin_api::abi::PH_MAX_NAME_LEN
        ));
    }
    if name.ends_with(['-', '_']) || name.contains("--") || name.contains("__") {
        return refuse("'-' and '_' go between letters or digits, one at a time");
    }
    let crate_name = name.replace('-', "_");
    if let Some((_, why)) = RESERVED
        .iter()
        .find(|(reserved, _)| reserved.replace('-', "_") == crate_name)
    {
        return refuse(why);
    }
    if KEYWORDS.contains(&crate_name.as_str()) {
        return refuse("it is a Rust keyword");
    }
    Ok(())
}

/// Writes a buildable plugin crate named `name` into `parent/name`: manifest, plugin source, tests
/// through the mock host, README. `api_path` is the `plugin-api` folder it depends on; its tests
/// depend on the mock host crate `plughost-testing` in the `testing` folder beside it.
///
/// # Errors
///
/// A name that would not build or would clash (see [`check_name`]), an existing destination, or
/// an I/O error.
pub fn create(name: &str, parent: &Path, api_path: &Path) -> Result<PathBuf, String> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let crate_name = name.replace('-', "_");
    let type_name: String = name
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect();
    let library = format!(
        "{}{crate_name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    // The mock host's crate sits beside `plugin-api` in the source tree.
    let testing_path = api_path.join("../testing");
    let testing_path = testing_path.display().to_string().replace('\\', "/");
    let api_path = api_path.display().to_string().replace('\\', "/");
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
            .replace("{{type}}", &type_name)
            .replace("{{api_path}}", &api_path)
            .replace("{{testing_path}}", &testing_path)
            .replace("{{library}}", &library)
    };
    let io = |e: std::io::Error| format!("writing {}: {e}", dir.display());
    std::fs::create_dir_all(dir.join("src")).map_err(io)?;
    std::fs::create_dir_all(dir.join("tests")).map_err(io)?;
    for (file, template) in [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        ("tests/mock_host.rs", MOCK_HOST_RS),
        ("README.md", README_MD),
    ] {
        std::fs::write(dir.join(file), fill(template)).map_err(io)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod name_tests {
    use super::check_name;

    #[test]
    fn names_that_would_not_build_or_would_clash_are_refused_in_one_line() {
        for good in ["hello", "hello-world", "kv2", "my_plugin", "a"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("plugin", "too generic"),
            ("host", "too generic"),
            ("std", "standard library"),
            ("core", "core library"),
            ("test", "test library"),
            ("proc-macro", "procedural macro"),
            ("fn", "keyword"),
            ("plughost-testing", "mock host crate"),
            ("plugin_api", "plugin API crate"),
            ("plughost_host", "host's C library"),
            ("hello-", "between letters"),
            ("a--b", "between letters"),
            ("9lives", "ASCII letter"),
            ("has.dot", "ASCII letter"),
            ("", "ASCII letter"),
        ] {
            let error = check_name(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
            assert_eq!(error.lines().count(), 1, "{error}");
        }
    }
}
