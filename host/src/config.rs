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
    /// The top-level key `isolate`; see [`Config::isolate`].
    #[serde(default)]
    isolate: Option<Isolate>,
    /// The top-level key `call_timeout`; see [`Config::call_timeout`].
    #[serde(default)]
    call_timeout: Option<f64>,
    /// The top-level key `restart`; see [`Config::restart`].
    #[serde(default)]
    restart: Option<String>,
}

/// The top-level key `isolate`: `"all"`, or a list of plugin names.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum Isolate {
    All(String),
    Names(Vec<String>),
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
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: None,
            message: one_line(&e),
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: None,
            message,
        };
        if let Some(Isolate::All(word)) = &config.isolate {
            if word != "all" {
                return Err(invalid(format!(
                    "isolate = \"{word}\": expected \"all\" or a list of plugin names"
                )));
            }
        }
        if let Some(restart) = &config.restart {
            if crate::isolate::Restart::parse(restart).is_none() {
                return Err(invalid(format!(
                    "restart = \"{restart}\": expected \"never\" or \"on-crash\""
                )));
            }
        }
        if let Some(seconds) = config.call_timeout {
            if !(seconds.is_finite() && seconds >= 0.0) {
                return Err(invalid(format!(
                    "call_timeout = {seconds}: expected a number of seconds, 0 or more"
                )));
            }
        }
        Ok(config)
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

    /// The top-level key `isolate`: the names of the plugins to run in child processes of their
    /// own (`isolate = ["wordfreq"]`), or `["all"]` for every plugin (`isolate = "all"`). Empty
    /// if the key is not set. The `plughost` binary applies it as it does `--isolate`; for the
    /// library, see [`crate::PluginHost::isolate`].
    pub fn isolate(&self) -> Vec<String> {
        match &self.isolate {
            None => Vec::new(),
            Some(Isolate::All(all)) => vec![all.clone()],
            Some(Isolate::Names(names)) => names.clone(),
        }
    }

    /// The top-level key `call_timeout`, in seconds (`0` for no limit): how long one call into
    /// an isolated plugin may take. `None` if the key is not set. The `plughost` binary applies
    /// it as it does `--call-timeout`; see [`crate::PluginHost::set_call_timeout`].
    pub fn call_timeout(&self) -> Option<f64> {
        self.call_timeout
    }

    /// The top-level key `restart` (`"never"` or `"on-crash"`): what a crash of an isolated
    /// plugin does. `None` if the key is not set. The `plughost` binary applies it as it does
    /// `--restart`; see [`crate::PluginHost::set_restart`].
    pub fn restart(&self) -> Option<crate::isolate::Restart> {
        self.restart
            .as_deref()
            .and_then(crate::isolate::Restart::parse)
    }

    /// The names of the plugins that have a table, in alphabetical order.
    pub fn plugin_names(&self) -> impl Iterator<Item = &str> {
        self.plugins.keys().map(String::as_str)
    }

    /// The value a plugin reads for `key` (a key of its table or a dotted path into a nested
    /// table), as the host service `config_get` gives it: a string as its contents, anything else
    /// in canonical TOML (one spelling per value: `20`, `1.0`, `1979-05-27`, `["a", 1]`,
    /// `{ b = true }`; see docs/abi.md). `None` if it is not set.
    pub fn value(&self, plugin: &str, key: &str) -> Option<String> {
        self.settings(plugin).remove(key).map(String::from)
    }

    /// The configuration of the plugin named `plugin` alone, as TOML text (its `[plugins.NAME]`
    /// table, or nothing): what an isolated plugin's child process reads.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn plugin_toml(&self, plugin: &str) -> String {
        let Some(table) = self.plugins.get(plugin) else {
            return String::new();
        };
        let mut plugins = toml::Table::new();
        plugins.insert(plugin.to_owned(), toml::Value::Table(table.clone()));
        let mut document = toml::Table::new();
        document.insert("plugins".to_owned(), toml::Value::Table(plugins));
        toml::to_string(&document).unwrap_or_default()
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

/// A value as a plugin reads it: a string as its contents, anything else in canonical TOML (see
/// [`canonical`]).
fn text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => canonical(other),
    }
}

/// A value in canonical TOML: the one spelling the host gives for each value, on one line, so that
/// a plugin can parse it with any TOML parser (as the right-hand side of `key = ...`) and two equal
/// values read the same. The format is part of the ABI (docs/abi.md, "config_get"):
///
/// - integers in decimal (`31` for `0x1F`, no `_`, `-` for negatives);
/// - floats as Rust's shortest round-trip decimal without an exponent, with `.0` if integral
///   (`1.0`, `0.5`, `-0.0`, `10000000000.0`), and `inf`, `-inf`, `nan`;
/// - booleans `true`, `false`;
/// - dates and times in RFC 3339 as TOML writes them: `1979-05-27T07:32:00Z`,
///   `1979-05-27T00:32:00.5-07:00`, `1979-05-27T07:32:00`, `1979-05-27`, `07:32:00`: `T`
///   between date and time, the offset as `Z` or `+HH:MM`/`-HH:MM`, seconds always, and a
///   fraction of a second only if it is not zero, without trailing zeros;
/// - strings (inside arrays and tables) as basic strings: `"..."` with `\"`, `\\`, `\b`, `\t`,
///   `\n`, `\f`, `\r` and `\uXXXX` for the other control characters and DEL;
/// - arrays as `[a, b]` (`[]` when empty);
/// - tables as inline tables `{ k = v, "odd key" = w }` in key order (bytewise), keys bare when
///   they are made of ASCII letters, digits, `-` and `_`, quoted otherwise (`{}` when empty).
fn canonical(value: &toml::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &toml::Value, out: &mut String) {
    use std::fmt::Write as _;

    match value {
        toml::Value::String(s) => write_basic_string(s, out),
        toml::Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        toml::Value::Float(f) => write_float(*f, out),
        toml::Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        // `Display` of a datetime is its RFC 3339 text. (`Value::to_string` is not: it writes a
        // datetime as the serde struct it travels in, `{ "$__toml_private_datetime" = ... }`.)
        toml::Value::Datetime(datetime) => {
            let _ = write!(out, "{datetime}");
        }
        toml::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        toml::Value::Table(table) if table.is_empty() => out.push_str("{}"),
        toml::Value::Table(table) => {
            // Key order, whatever order the map keeps.
            let mut fields: Vec<(&String, &toml::Value)> = table.iter().collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            out.push_str("{ ");
            for (i, (k, v)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_key(k, out);
                out.push_str(" = ");
                write_canonical(v, out);
            }
            out.push_str(" }");
        }
    }
}

/// A float: see [`canonical`].
fn write_float(f: f64, out: &mut String) {
    use std::fmt::Write as _;

    if f.is_nan() {
        out.push_str("nan");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
    } else {
        let start = out.len();
        let _ = write!(out, "{f}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
    }
}

/// A key, bare if TOML allows it, quoted otherwise.
fn write_key(k: &str, out: &mut String) {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        out.push_str(k);
    } else {
        write_basic_string(k, out);
    }
}

/// A TOML basic string: double quotes, and escapes for the quote, the backslash and every
/// character TOML does not allow as it is (control characters but tab, and DEL).
fn write_basic_string(s: &str, out: &mut String) {
    use std::fmt::Write as _;

    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c <= '\u{1f}' || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
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
    fn every_value_type_reads_as_canonical_toml() {
        let config = Config::from_toml(
            r#"
            [plugins.demo]
            offset-datetime = 1979-05-27 07:32:00z
            offset-fraction = 1979-05-27T00:32:00.500-07:00
            local-datetime = 1979-05-27T07:32:00
            local-date = 1979-05-27
            local-time = 07:32:00.999000
            hex = 0x1F
            big = 9_223_372_036_854_775_807
            negative = -17
            float = 1e10
            small = 0.000_5
            zero = -0.0
            infinite = -inf
            not-a-number = nan
            literal = 'C:\path'
            multiline = """two
            lines"""
            quotes = ['y"z', "tab\tand\u0001", "\u007f"]
            dates = [1979-05-27, 07:32:00]
            nested = [[1, 2], [], [{}]]
            inline = { "k y" = 1, a.b = true, "" = "empty key", "é" = 2 }
            "#,
        )
        .unwrap();
        let value = |key| config.value("demo", key).unwrap_or_else(|| panic!("{key}"));
        for (key, expected) in [
            ("offset-datetime", "1979-05-27T07:32:00Z"),
            ("offset-fraction", "1979-05-27T00:32:00.5-07:00"),
            ("local-datetime", "1979-05-27T07:32:00"),
            ("local-date", "1979-05-27"),
            ("local-time", "07:32:00.999"),
            ("hex", "31"),
            ("big", "9223372036854775807"),
            ("negative", "-17"),
            ("float", "10000000000.0"),
            ("small", "0.0005"),
            ("zero", "-0.0"),
            ("infinite", "-inf"),
            ("not-a-number", "nan"),
            // A string on its own is its contents, whatever TOML string form it was written in.
            ("literal", r"C:\path"),
            ("multiline", "two\n            lines"),
            ("quotes", r#"["y\"z", "tab\tand\u0001", "\u007F"]"#),
            ("dates", "[1979-05-27, 07:32:00]"),
            ("nested", "[[1, 2], [], [{}]]"),
            (
                "inline",
                r#"{ "" = "empty key", a = { b = true }, "k y" = 1, "é" = 2 }"#,
            ),
            ("inline.a", "{ b = true }"),
            ("inline.a.b", "true"),
        ] {
            assert_eq!(value(key), expected, "{key}");
        }
        // A datetime is a value, not a table: no key leads into it.
        assert!(config
            .settings("demo")
            .keys()
            .all(|k| !k.contains("$__toml")));
    }

    #[test]
    fn canonical_values_parse_back_to_the_same_values() {
        let text = r#"
            a = 1979-05-27T00:32:00.123456789+05:30
            b = [1.5, -2, "x\"y\\z\u0000\r", { q = [true, false] }, 1979-05-27T07:32:00]
            c = { "dotted.key" = 'v', nested = { deeper = [] } }
            d = 1e-7
            e = 123456789012345.0
        "#;
        let table: toml::Table = text.parse().unwrap();
        for (key, value) in &table {
            let written = canonical(value);
            let back: toml::Table = format!("v = {written}")
                .parse()
                .unwrap_or_else(|e| panic!("{key}: {written}: {e}"));
            assert_eq!(&back["v"], value, "{key}: {written}");
            assert!(!written.contains('\n'), "{key}: {written}");
        }
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
