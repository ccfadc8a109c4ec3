//! `plughost new`: writes a new plugin crate from the template in `host/templates/plugin`, or
//! with `--c` a plugin in C from `host/templates/c-plugin`.

use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../templates/plugin/Cargo.toml.in");
const LIB_RS: &str = include_str!("../templates/plugin/lib.rs.in");
const MOCK_HOST_RS: &str = include_str!("../templates/plugin/mock_host.rs.in");
const README_MD: &str = include_str!("../templates/plugin/README.md.in");

const C_SOURCE: &str = include_str!("../templates/c-plugin/plugin.c.in");
const C_TEST_SH: &str = include_str!("../templates/c-plugin/test.sh.in");
const C_README_MD: &str = include_str!("../templates/c-plugin/README.md.in");
/// The ABI's C header that this host was built with: a C plugin folder gets a copy.
const C_HEADER: &str = include_str!("../../plugin-api/include/plughost.h");

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
    (
        "log",
        "it is the name of the `log` crate the plugin depends on",
    ),
];

/// The names the template's code uses unqualified, with what they are: a plugin whose type (the
/// name in `UpperCamelCase`, see [`type_name`]) is one of them would shadow it, and its crate
/// would not build.
const TYPE_CLASHES: &[(&str, &str)] = &[
    ("Plugin", "the `Plugin` trait"),
    ("Host", "the `Host` handle"),
    ("Command", "`plugin_api::Command`"),
    ("Error", "`plugin_api::Error`"),
    ("AtomicU64", "`std::sync::atomic::AtomicU64`"),
    ("Ordering", "`std::sync::atomic::Ordering`"),
    ("MockHost", "the mock host's `MockHost`"),
    ("Option", "`Option`"),
    ("Result", "`Result`"),
    ("String", "`String`"),
];

/// Rust keywords, which cannot name a crate.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield", "Self",
];

/// Libraries that `plughost` skips in a plugins folder (see [`crate::discover`]): a plugin whose
/// library had one of these names would never load.
const SKIPPED_LIBRARIES: &[(&str, &str)] = &[
    ("plughost_host", "the host's C library"),
    ("plugin_api_macros", "plugin-api's procedural macros"),
];

/// Checks the rules of `plughost new` that hold for plugins in Rust and in C: a valid plugin
/// name (the ABI's rule) that starts with an ASCII letter, has no `.`, no `-` or `_` at either end
/// or twice in a row, and whose library would not be skipped (compared with `-` as `_`).
fn check_common(name: &str) -> Result<(), String> {
    if !(name.starts_with(|c: char| c.is_ascii_alphabetic())
        && plugin_api::abi::is_valid_name(name)
        && !name.contains('.'))
    {
        return refuse(
            name,
            &format!(
                "a name is an ASCII letter, then ASCII letters, digits, '-' or '_' (at most {} \
                 bytes)",
                plugin_api::abi::PH_MAX_NAME_LEN
            ),
        );
    }
    if name.ends_with(['-', '_']) || name.contains("--") || name.contains("__") {
        return refuse(
            name,
            "'-' and '_' go between letters or digits, one at a time",
        );
    }
    let base = name.replace('-', "_");
    if let Some((_, what)) = SKIPPED_LIBRARIES
        .iter()
        .find(|(skipped, _)| *skipped == base)
    {
        return refuse(
            name,
            &format!("its library would have the name of {what}, which plughost skips"),
        );
    }
    Ok(())
}

/// The one-line refusal of `name`, saying why.
fn refuse(name: &str, why: &str) -> Result<(), String> {
    Err(format!("cannot create a plugin named {name:?}: {why}"))
}

/// Checks that `name` makes a plugin crate that builds and does not clash: the rules of both
/// languages (an ASCII letter first, the ABI's name rule, no `.`, no `-` at either end or twice
/// in a row: the crate name `a__b`, the type name `AB`; not the name of a library plughost
/// skips), not one of `RESERVED` or a Rust keyword (compared with `-` as `_`, as cargo
/// does), and no type name that shadows a name the template uses (`TYPE_CLASHES`).
///
/// # Errors
///
/// One line naming the name and why it is refused.
pub fn check_name(name: &str) -> Result<(), String> {
    check_common(name)?;
    let crate_name = name.replace('-', "_");
    if let Some((_, why)) = RESERVED
        .iter()
        .find(|(reserved, _)| reserved.replace('-', "_") == crate_name)
    {
        return refuse(name, why);
    }
    if KEYWORDS.contains(&crate_name.as_str()) {
        return refuse(name, "it is a Rust keyword");
    }
    let type_name = type_name(name);
    if let Some((_, what)) = TYPE_CLASHES.iter().find(|(used, _)| *used == type_name) {
        return refuse(
            name,
            &format!("its type `{type_name}` would shadow {what}, which the template's code uses"),
        );
    }
    Ok(())
}

/// The plugin's type name for `name`: its parts between `-` and `_`, each with its first letter
/// in upper case (`my-plugin`: `MyPlugin`).
fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Checks that `name` makes a C plugin folder that builds and loads: the rules [`check_name`]
/// applies in both languages. The C source uses the name in strings and file names only, so
/// Rust's keywords and crate names do not matter.
///
/// # Errors
///
/// One line naming the name and why it is refused.
pub fn check_c_name(name: &str) -> Result<(), String> {
    check_common(name)
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
    let type_name = type_name(name);
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

/// Writes a plugin in C named `name` into `parent/name`: `NAME.c` (one command, `NAME [NAME]`,
/// that greets), `plughost.h` (the header of this host's ABI), `test.sh` (builds the library with
/// `cc`, runs `plughost validate` on it and its command) and `README.md` (the build command, its
/// flags, where to install, the valgrind command).
///
/// # Errors
///
/// A name that would not build or load (see [`check_c_name`]), an existing destination, or an
/// I/O error.
pub fn create_c(name: &str, parent: &Path) -> Result<PathBuf, String> {
    check_c_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        return Err(format!("{} already exists", dir.display()));
    }
    let library = format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let abi = format!(
        "{}.{}",
        plugin_api::abi::PH_ABI_VERSION_MAJOR,
        plugin_api::abi::PH_ABI_VERSION_MINOR
    );
    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{library}}", &library)
            .replace("{{abi}}", &abi)
    };
    let io = |e: std::io::Error| format!("writing {}: {e}", dir.display());
    std::fs::create_dir_all(&dir).map_err(io)?;
    for (file, text) in [
        (format!("{name}.c"), fill(C_SOURCE)),
        ("plughost.h".to_owned(), C_HEADER.to_owned()),
        ("test.sh".to_owned(), fill(C_TEST_SH)),
        ("README.md".to_owned(), fill(C_README_MD)),
    ] {
        std::fs::write(dir.join(file), text).map_err(io)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("test.sh"), std::fs::Permissions::from_mode(0o755))
            .map_err(io)?;
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
            ("plughost-host", "host's C library"),
            ("plugin_api_macros", "procedural macros"),
            // The names the template's code uses: the plugin's type would shadow them.
            ("Plugin", "`Plugin`"),
            ("command", "`Command`"),
            ("error", "`Error`"),
            ("ordering", "`Ordering`"),
            ("atomic-u64", "`AtomicU64`"),
            ("mock-host", "`MockHost`"),
            ("option", "`Option`"),
            ("result", "`Result`"),
            ("string", "`String`"),
            ("Self", "keyword"),
            ("log", "`log` crate"),
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

    #[test]
    fn c_plugins_share_the_rules_of_both_languages_only() {
        use super::check_c_name;
        // Fine in C: the name appears in strings and file names only.
        for good in ["hello", "fn", "std", "plugin", "hello-world"] {
            assert_eq!(check_c_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("9lives", "ASCII letter"),
            ("a--b", "between letters"),
            ("plughost_host", "host's C library"),
            ("plugin-api-macros", "procedural macros"),
        ] {
            let error = check_c_name(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
