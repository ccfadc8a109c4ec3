//! The plugin's configuration: [`Host::config`] and [`Host::config_parse`].

use crate::abi::{PhHostServices, PhResult, PhStr};
use crate::error::Error;
use crate::host::Host;

impl Host {
    /// The value of `key` in this plugin's configuration, as text: a string as its contents,
    /// anything else (number, boolean, array, table) in TOML syntax. `key` is a key of the
    /// plugin's table or a dotted path into a nested table. `Ok(None)` if it is not set.
    ///
    /// With `plughost`, the configuration is the `[plugins.NAME]` table of the file given with
    /// `--config`. It does not change while the plugin is loaded.
    ///
    /// # Errors
    ///
    /// [`PhResult::ShutDown`] after shutdown; [`PhResult::InvalidUtf8`] if the host's value is not
    /// UTF-8.
    pub fn config(&self, key: &str) -> Result<Option<String>, Error> {
        let services = self.link.services()?;
        let needed = std::mem::offset_of!(PhHostServices, config_get)
            + std::mem::size_of_val(&services.config_get);
        if (services.struct_size as usize) < needed {
            // A host of ABI 1.0: its table ends before the configuration service.
            return Ok(None);
        }
        let mut value = PhStr::EMPTY;
        // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link is active
        // (`HostLink::services`) (the table is large enough, checked above); the key outlives the
        // call and `value` is writable.
        let code = unsafe { (services.config_get)(self.link.ctx, PhStr::new(key), &mut value) };
        if code == PhResult::NotFound.code() {
            return Ok(None);
        }
        Error::check("config_get", code)?;
        // SAFETY: on success the host wrote a view of bytes it keeps valid and unchanged for as long
        // as the host context (the contract of `config_get`), which outlives this call; they are
        // copied here.
        let text = unsafe { value.to_str() }.map_err(|code| {
            Error::with_code(code, format!("config_get({key:?}): the value is not text"))
        })?;
        Ok(Some(text.to_owned()))
    }

    /// The value of `key` in this plugin's configuration, parsed as a `T` (see [`Host::config`]).
    /// `Ok(None)` if it is not set.
    ///
    /// # Errors
    ///
    /// As [`Host::config`]; [`PhResult::InvalidArgument`] with a message naming the key and the
    /// value if the value does not parse.
    pub fn config_parse<T>(&self, key: &str) -> Result<Option<T>, Error>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let Some(text) = self.config(key)? else {
            return Ok(None);
        };
        text.parse().map(Some).map_err(|e| {
            Error::with_code(
                PhResult::InvalidArgument,
                format!("configuration key `{key}`: invalid value {text:?}: {e}"),
            )
        })
    }
}
