//! Tab completion of `plughost shell` on a terminal: the verbs and the command names as the first
//! word, plugin names after `unload` and `reload`, command names after `help` and `run`, a
//! command's options (those its usage names, and `--help`) for a word that starts with `-`, and
//! file paths everywhere else.

use std::sync::{Arc, RwLock};

use plughost::PluginHost;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use super::shell::VERBS;

/// The shell's line-editor helper: completion only.
pub(crate) struct ShellHelper {
    host: Arc<RwLock<PluginHost>>,
    files: FilenameCompleter,
}

impl ShellHelper {
    pub(crate) fn new(host: Arc<RwLock<PluginHost>>) -> ShellHelper {
        ShellHelper {
            host,
            files: FilenameCompleter::new(),
        }
    }

    /// The names of the registered commands, sorted.
    fn command_names(&self) -> Vec<String> {
        let host = self.host.read().unwrap_or_else(|e| e.into_inner());
        host.commands().into_iter().map(|(name, _)| name).collect()
    }

    /// The names of the loaded plugins.
    fn plugin_names(&self) -> Vec<String> {
        let host = self.host.read().unwrap_or_else(|e| e.into_inner());
        host.plugins().into_iter().map(|p| p.name).collect()
    }

    /// `--help` and the options that the usage of `command` names (`--top` in
    /// `[--top N] FILE...`).
    fn options_of(&self, command: &str) -> Vec<String> {
        let host = self.host.read().unwrap_or_else(|e| e.into_inner());
        let usage = host
            .plugins()
            .into_iter()
            .flat_map(|p| p.commands)
            .find(|c| c.name == command)
            .map(|c| c.usage)
            .unwrap_or_default();
        let mut options = options_in(&usage);
        options.push("--help".to_owned());
        options.sort();
        options.dedup();
        options
    }
}

/// The options a usage text names: words that start with `-`, cut at the first character that
/// cannot be part of an option name (`[--top` gives `--top`, `--format=FMT` gives `--format`).
fn options_in(usage: &str) -> Vec<String> {
    usage
        .split(|c: char| c.is_whitespace() || matches!(c, '[' | ']' | '(' | ')' | '|' | ','))
        .filter(|w| w.starts_with('-') && w.len() > 1)
        .map(|w| {
            w.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|w| w.len() > 1 && w != "--")
        .collect()
}

/// The candidates among `names` that start with `word`, each followed by a space.
fn matching(names: impl IntoIterator<Item = String>, word: &str) -> Vec<Pair> {
    names
        .into_iter()
        .filter(|name| name.starts_with(word))
        .map(|name| Pair {
            replacement: format!("{name} "),
            display: name,
        })
        .collect()
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |at| {
            at + before[at..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &before[start..];
        let previous: Vec<&str> = before[..start].split_whitespace().collect();
        let names = match previous.as_slice() {
            [] => {
                let mut names: Vec<String> = VERBS.iter().map(|(v, _)| (*v).to_owned()).collect();
                names.extend(self.command_names());
                names
            }
            ["help"] | ["run"] => self.command_names(),
            ["unload"] | ["reload"] => self.plugin_names(),
            ["run", command, ..] | [command, ..]
                if word.starts_with('-') && !VERBS.iter().any(|(v, _)| v == command) =>
            {
                self.options_of(command)
            }
            _ => return self.files.complete_path(line, pos),
        };
        Ok((start, matching(names, word)))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::options_in;

    #[test]
    fn options_named_by_a_usage() {
        assert_eq!(options_in("[--top N] FILE..."), ["--top"]);
        assert_eq!(
            options_in("[-v|--verbose] [--format=FMT] (--all, -x) - -- FILE"),
            ["-v", "--verbose", "--format", "--all", "-x"]
        );
        assert!(options_in("").is_empty());
    }
}
