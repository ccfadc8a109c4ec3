//! The plugins' configuration: one table of settings per plugin, read from a TOML file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The configuration of the plugins: for each plugin name, its table of settings. A plugin reads
/// its own table through the host service `config_get` (`Host::config` in the safe layer).
///
/// As a file, it is TOML with one `[plugins.NAME]` table per plugin, and optionally the host's own
/// key `allow_insecure` before the tables:
///
/// ```toml
/// allow_insecure = false
///
/// [plugins.wordfreq]
/// top = 20
/// ```
///
/// # Examples
///
/// ```
/// let config = plughost::Config::from_toml("[plugins.wordfreq]\ntop = 20\n")?;
/// assert_eq!(config.value("wordfreq", "top").as_deref(), Some("20"));
/// let mut host = plughost::PluginHost::new();
/// host.set_config(config);
/// # Ok::<(), plughost::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Each plugin's table, by plugin name.
    #[serde(default)]
    plugins: BTreeMap<String, toml::Table>,
    /// The top-level key `allow_insecure`; see [`Config::allow_insecure`].
    #[serde(default)]
    allow_insecure: bool,
}

/// Why a configuration file could not be used. Shown as one line naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The text is not a valid configuration: TOML syntax, or a value of the wrong kind.
    #[error("invalid configuration{}: {message}", path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Invalid {
        /// The file, if the text came from one.
        path: Option<PathBuf>,
        /// What is wrong and where (line and column).
        message: String,
    },
}

impl Config {
    /// Parses a configuration from TOML text.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for bad TOML, a top-level key other than `plugins` and
    /// `allow_insecure`, an `allow_insecure` that is not a boolean, or a `plugins.NAME` that is
    /// not a table.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: None,
            message: one_line(&e),
        })
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] if the file cannot be read; otherwise as [`Config::from_toml`], naming
    /// the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Invalid { message, .. } => ConfigError::Invalid {
                path: Some(path.to_owned()),
                message,
            },
            other => other,
        })
    }

    /// Sets `key` in the table of the plugin named `plugin` to the string `value`: the plugin
    /// reads `value` as it is. Replaces what the key held.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut config = plughost::Config::default();
    /// config.set("wordfreq", "top", "3");
    /// assert_eq!(config.value("wordfreq", "top").as_deref(), Some("3"));
    /// ```
    pub fn set(&mut self, plugin: &str, key: &str, value: &str) {
        self.plugins
            .entry(plugin.to_owned())
            .or_default()
            .insert(key.to_owned(), toml::Value::String(value.to_owned()));
    }

    /// The top-level key `allow_insecure` (default `false`): whether plugin libraries and folders
    /// that fail the host's trust rule load anyway. The `plughost` binary applies it as it does
    /// `--allow-insecure`; [`crate::PluginHost::set_config`] does not, so that a library user
    /// decides with [`crate::PluginHost::set_allow_insecure`].
    pub fn allow_insecure(&self) -> bool {
        self.allow_insecure
    }

    /// The names of the plugins that have a table, in alphabetical order.
    pub fn plugin_names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// The value a plugin reads for `key` (a key of its table or a dotted path into a nested
    /// table), as the host service `config_get` gives it: a string as its contents, anything else
    /// in TOML syntax. `None` if it is not set.
    pub fn value(&self, plugin: &str, key: &str) -> Option<String> {
        self.settings(plugin).remove(key).map(String::from)
    }

    /// Every key of a plugin's table (nested tables also by dotted path) with its value as text.
    pub(crate) fn settings(&self, plugin: &str) -> HashMap<String, Box<str>> {
        let mut settings = HashMap::new();
        if let Some(table) = self.plugins.get(plugin) {
            flatten("", table, &mut settings);
        }
        settings
    }
}

fn flatten(prefix: &str, table: &toml::Table, into: &mut HashMap<String, Box<str>>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        if let toml::Value::Table(nested) = value {
            flatten(&format!("{path}."), nested, into);
        }
        into.insert(path, text(value).into_boxed_str());
    }
}

/// A value as a plugin reads it: a string as its contents, anything else in TOML syntax.
fn text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => inline(other),
    }
}

/// A value in TOML syntax, on one line (tables as inline tables).
fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(table) if table.is_empty() => "{}".to_owned(),
        toml::Value::Table(table) => {
            let fields: Vec<String> = table
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// A key, bare if TOML allows it, quoted otherwise.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        k.to_owned()
    } else {
        toml::Value::String(k.to_owned()).to_string()
    }
}

/// The first line of an error message (the TOML parser adds a snippet of the text below it).
fn one_line(error: &toml::de::Error) -> String {
    let message: Vec<&str> = error.message().lines().map(str::trim).collect();
    let message = message.join("; ");
    match error.span() {
        Some(span) => format!("{message} (at byte {})", span.start),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_plugins_read_them() {
        let config = Config::from_toml(
            r#"
            [plugins.demo]
            name = "two words"
            top = 20
            ratio = 0.5
            on = true
            list = ["a", 1]
            [plugins.demo.output]
            format = "tsv"
            empty = {}
            "#,
        )
        .unwrap();
        let value = |key| config.value("demo", key);
        assert_eq!(value("name").as_deref(), Some("two words"));
        assert_eq!(value("top").as_deref(), Some("20"));
        assert_eq!(value("ratio").as_deref(), Some("0.5"));
        assert_eq!(value("on").as_deref(), Some("true"));
        assert_eq!(value("list").as_deref(), Some(r#"["a", 1]"#));
        assert_eq!(value("output.format").as_deref(), Some("tsv"));
        assert_eq!(
            value("output").as_deref(),
            Some(r#"{ empty = {}, format = "tsv" }"#)
        );
        assert_eq!(value("missing"), None);
        assert_eq!(config.value("other", "top"), None);
        assert_eq!(config.plugin_names().collect::<Vec<_>>(), ["demo"]);
        assert!(!config.allow_insecure());
        assert!(Config::from_toml("allow_insecure = true\n")
            .unwrap()
            .allow_insecure());
    }

    #[test]
    fn bad_files_are_one_line_errors() {
        for (text, expected) in [
            ("[plugins.demo\n", "invalid configuration: "),
            ("[other]\n", "unknown field `other`"),
            ("plugins = 3\n", "invalid type"),
            ("[plugins]\ndemo = 3\n", "invalid type"),
            ("allow_insecure = \"yes\"\n", "invalid type"),
        ] {
            let error = Config::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
        let error = Config::load(Path::new("/no/such/plughost.toml")).unwrap_err();
        assert!(error
            .to_string()
            .starts_with("cannot read configuration file /no/such/plughost.toml: "));
    }
}
