//! The interface `plughost.kv` version 1: a persistent key-value store, provided by the `kv`
//! plugin (`plugins/kv`) and called by plugins such as `journal` or by the embedding application.
//!
//! Both sides depend on this crate, so they agree on one trait and one function table:
//!
//! ```no_run
//! # use plugin_api::{Error, Host};
//! use plughost_kv_api::Kv;
//!
//! # fn f(host: &Host) -> Result<(), Error> {
//! // In `init`, after declaring `plugin_api::requires::<dyn Kv>()` in `Plugin::REQUIRES`:
//! let kv = host.query::<dyn Kv>()?;
//! kv.put("greeting", b"hello")?;
//! assert_eq!(kv.get("greeting")?.as_deref(), Some(&b"hello"[..]));
//! # Ok(())
//! # }
//! ```
//!
//! Keys are UTF-8 strings, values are bytes; both may be empty. Every call may run on any thread,
//! several at once, and may block for a while (the provider writes to disk and waits for other
//! processes that use the same file).
#![deny(missing_docs)]

use plugin_api::Error;

/// A persistent key-value store: `plughost.kv` version 1.
///
/// Each call is atomic and durable on its own once it returns `Ok`; there are no transactions
/// across calls. Errors carry a code and a one-line message naming the store's file.
#[plugin_api::interface(id = "plughost.kv", version = 1)]
pub trait Kv {
    /// The value of `key`; `None` if it is not set.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;

    /// Sets `key` to `value`, replacing any previous value.
    fn put(&self, key: &str, value: &[u8]) -> Result<(), Error>;

    /// Removes `key`; `true` if it was set.
    fn delete(&self, key: &str) -> Result<bool, Error>;

    /// Calls `f` with each entry whose key starts with `prefix` (every entry for `""`), in
    /// ascending byte order of the keys, until `f` returns `false` (EnumWindows style: `true` for
    /// the next entry). `f` may call this store (a `put` or `delete` from inside the scan does not
    /// deadlock); an entry put or deleted during the scan may or may not be seen, and no entry is
    /// seen twice.
    fn scan(&self, prefix: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), Error>;
}
