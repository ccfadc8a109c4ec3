//! `kv`: a persistent key-value store, provided to the other plugins and to the application as
//! the interface `plughost.kv` version 1 (the trait [`plughost_kv_api::Kv`]), and usable by hand
//! through the command `kv`.
//!
//! The entries live in a [redb](https://www.redb.org) database file: the configuration's `path`
//! (`[plugins.kv] path = "..."`; a relative path is taken from the working directory), by
//! default `kv.redb` in plughost's folder of the platform's data folder (on Linux
//! `$XDG_DATA_HOME/plughost/kv.redb`, else `~/.local/share/plughost/kv.redb`). The folder is
//! created if needed. `init` checks the whole file: a file that cannot be opened, is not a redb
//! database or is corrupt makes `init` fail with one line naming the file, and the plugin is
//! refused rather than losing entries silently.
//!
//! Several `plughost` processes may use the same file at once: each operation opens the file,
//! runs one transaction and closes it, and waits (up to `busy_timeout_ms`, default 10000) while
//! another process holds it. See [`Store`].
//!
//! Command `kv`:
//! - `kv get KEY`: prints the value, then a newline; fails if KEY is not set.
//! - `kv put KEY VALUE`: sets KEY to VALUE (its UTF-8 bytes).
//! - `kv delete KEY`: removes KEY; fails if it was not set.
//! - `kv list [PREFIX]`: one `KEY<TAB>VALUE` line per entry whose key starts with PREFIX, in key
//!   order. So that each entry stays on one line, both are escaped: `\\`, `\t`, `\n`, `\r`, and
//!   `\xNN` for other control characters and bytes that are not UTF-8.

mod store;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plughost_kv_api::Kv;
use plugin_api::abi::PhResult;
use plugin_api::{Command, Error, Host, Plugin};

pub use store::Store;

/// How long an operation waits for another process to release the file, by default.
const DEFAULT_BUSY_TIMEOUT_MS: u64 = 10_000;

/// The plugin: the store it provides.
pub struct KvPlugin {
    _store: Arc<Store>,
}

impl Kv for Store {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Store::get(self, key)
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        Store::put(self, key, value)
    }

    fn delete(&self, key: &str) -> Result<bool, Error> {
        Store::delete(self, key)
    }

    fn scan(&self, prefix: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), Error> {
        Store::scan(self, prefix, f)
    }
}

/// The database file: the configuration's `path`, or `kv.redb` in plughost's data folder.
fn database_path(host: &Host) -> Result<PathBuf, Error> {
    if let Some(path) = host.config("path")? {
        if path.is_empty() {
            return Err(Error::with_code(
                PhResult::InvalidArgument,
                "configuration key `path` is empty",
            ));
        }
        return Ok(PathBuf::from(path));
    }
    dirs::data_dir()
        .map(|data| data.join("plughost").join("kv.redb"))
        .ok_or_else(|| {
            Error::new(
                "no data folder for this user: set `path` in the configuration's [plugins.kv]",
            )
        })
}

/// `bytes` as text on one line: see the crate's documentation of `kv list`.
fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => text.push_str("\\\\"),
                '\t' => text.push_str("\\t"),
                '\n' => text.push_str("\\n"),
                '\r' => text.push_str("\\r"),
                c if c.is_ascii_control() => text.push_str(&format!("\\x{:02x}", c as u32)),
                c => text.push(c),
            }
        }
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text
}

/// The usage line of `kv`.
const USAGE: &str = "get KEY | put KEY VALUE | delete KEY | list [PREFIX]";

/// Runs `kv ARGS`.
fn command(store: &Store, args: &[&str], out: &mut dyn Write) -> Result<(), Error> {
    let missing = |key: &str| {
        Error::with_code(
            PhResult::NotFound,
            format!("no key {key:?} in {}", store.path().display()),
        )
    };
    match args {
        ["get", key] => {
            let value = store.get(key)?.ok_or_else(|| missing(key))?;
            out.write_all(&value)?;
            out.write_all(b"\n")?;
        }
        ["put", key, value] => store.put(key, value.as_bytes())?,
        ["delete", key] => {
            if !store.delete(key)? {
                return Err(missing(key));
            }
        }
        ["list"] | ["list", _] => {
            let prefix = args.get(1).copied().unwrap_or("");
            let mut failed = None;
            store.scan(prefix, &mut |key, value| {
                let line = format!("{}\t{}\n", escape(key.as_bytes()), escape(value));
                match out.write_all(line.as_bytes()) {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                }
            })?;
            if let Some(e) = failed {
                return Err(e.into());
            }
        }
        _ => {
            return Err(Error::with_code(
                PhResult::InvalidArgument,
                format!("usage: kv {USAGE}"),
            ))
        }
    }
    Ok(())
}

impl Plugin for KvPlugin {
    const NAME: &'static str = "kv";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Provides plughost.kv 1: a key-value store in a redb file";
    const PROVIDES: &'static [plugin_api::abi::PhInterfaceVersion] =
        &[plugin_api::provides::<dyn Kv>()];

    fn init(host: &Host) -> Result<Self, Error> {
        let path = database_path(host)?;
        let busy_timeout = host
            .config_parse::<u64>("busy_timeout_ms")?
            .unwrap_or(DEFAULT_BUSY_TIMEOUT_MS);
        let store = Arc::new(Store::open(&path, Duration::from_millis(busy_timeout))?);
        log::info!("the database is {}", store.path().display());
        host.provide::<dyn Kv>(Arc::clone(&store))?;
        let commands = Arc::clone(&store);
        host.register_command(
            Command::new("kv")
                .about("Reads and writes the key-value store of plughost.kv (list: KEY<TAB>VALUE lines)")
                .usage(USAGE),
            move |args, out| command(&commands, args, out),
        )?;
        Ok(KvPlugin { _store: store })
    }
}

plugin_api::export_plugin!(KvPlugin);

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_keep_an_entry_on_one_line() {
        assert_eq!(escape(b"plain text, \xc3\xa9"), "plain text, é");
        assert_eq!(escape(b"a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
        assert_eq!(escape(b"\x00\x1f\x7f"), "\\x00\\x1f\\x7f");
        assert_eq!(escape(b"\xff\xfeok"), "\\xff\\xfeok");
    }
}
