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

/// Writes a buildable plugin crate named `name` into `parent/name`: manifest, plugin source, tests
/// through the mock host, README. `api_path` is the `plugin-api` folder it depends on; its tests depend on the mock host
/// crate `plughost-testing` in the `testing` folder beside it.
///
/// # Errors
///
/// An invalid name (a plugin name that is also a crate name: an ASCII letter, then ASCII letters,
/// digits, `-` or `_`), an existing destination, or an I/O error.
pub fn create(name: &str, parent: &Path, api_path: &Path) -> Result<PathBuf, String> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && plugin_api::abi::is_valid_name(name)
        && !name.contains('.');
    if !valid {
        return Err(format!(
            "invalid plugin name {name:?}: an ASCII letter, then ASCII letters, digits, '-' or '_' \
             (at most {} bytes)",
            plugin_api::abi::PH_MAX_NAME_LEN
        ));
    }
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
