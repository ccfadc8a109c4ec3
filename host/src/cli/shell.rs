//! `plughost shell`: a long-running host. Plugins stay loaded for the session, and each line runs
//! a plugin command (`wordfreq --top 5 FILE`) or one of the shell's verbs ([`VERBS`]).
//!
//! On a terminal it reads lines with a line editor (rustyline): history in the platform's data
//! folder, completion ([`super::complete`]), Ctrl-C to clear the line (during a command: see
//! [`super::interrupt`]), Ctrl-D to leave. Otherwise
//! it reads standard input one line per command, with no prompt, so that it can be scripted:
//! `printf 'wordfreq FILE\njournal\n' | plughost shell`. Either way a failing line prints its one
//! error line on standard error and the shell goes on; it exits with status 1 if any line failed.
//!
//! Plugins are loaded from private copies of their files (see
//! [`PluginHost::set_private_copies`]), so that a plugin rebuilt in place cannot change the code
//! that runs; `reload` and `--watch` ([`super::watch`]) load new builds.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use plughost::{CallKind, CommandError, PluginHost, ReloadError, StateHandoff};

use super::display;
use super::escape::{escape, quote_path};
use super::exit::Output;

/// The shell's verbs, with what each does, for `help` and completion.
pub(crate) const VERBS: &[(&str, &str)] = &[
    ("list", "list the loaded plugins and their commands"),
    (
        "load",
        "load FILE: load a plugin library into the running host",
    ),
    (
        "unload",
        "unload NAME: shut the plugin NAME down and forget it",
    ),
    (
        "reload",
        "reload [NAME]: load the new build of NAME's file (of every plugin's, without NAME)",
    ),
    (
        "run",
        "run COMMAND [ARGS]...: run a command whose name is also a verb",
    ),
    ("help", "help [COMMAND]: this text, or the usage of COMMAND"),
    ("exit", "leave the shell (Ctrl-D too)"),
];

/// How the shell was started.
pub(crate) struct Options {
    /// Watch the plugins folder (`--watch`).
    pub(crate) watch: bool,
    /// The plugins folder.
    pub(crate) plugins: PathBuf,
    /// Exit with status 1 if a library was refused when the shell started (`--strict`).
    pub(crate) strict: bool,
}

/// What a line asks of the loop.
enum Next {
    Continue,
    Exit,
}

/// The shell's state: the host, shared with the watcher and the completion, and whether a line
/// failed.
struct Shell {
    host: Arc<RwLock<PluginHost>>,
    failed: bool,
}

/// Runs the shell on `host` (already loaded from the plugins folder) until `exit`, Ctrl-D or the
/// end of standard input.
pub(crate) fn run(host: PluginHost, options: &Options) -> Result<ExitCode, String> {
    let refused_at_start = !host.refused().is_empty();
    for refused in host.refused() {
        eprintln!("plughost: refused {}", display::refusal(refused));
    }
    let host = Arc::new(RwLock::new(host));
    let mut shell = Shell {
        host: Arc::clone(&host),
        failed: false,
    };
    let result = if std::io::stdin().is_terminal() {
        interactive(&mut shell, options)
    } else {
        let watch = match options.watch {
            true => Some(super::watch::start(
                Arc::clone(&host),
                &options.plugins,
                Box::new(|line: String| eprintln!("{line}")),
            )?),
            false => None,
        };
        let result = scripted(&mut shell);
        drop(watch);
        result
    };
    drop(shell);
    // The watcher has stopped: the host is ours alone again.
    let mut host = match Arc::try_unwrap(host) {
        Ok(host) => host.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(_) => return Err("the host is still in use at exit".into()),
    };
    host.shutdown();
    let failed = result?;
    Ok(if failed || (options.strict && refused_at_start) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Reads standard input one line per command until its end or `exit`. Returns whether a line
/// failed.
fn scripted(shell: &mut Shell) -> Result<bool, String> {
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        number += 1;
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("reading standard input: {e}")),
        }
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text,
            Err(_) => {
                shell.fail(&format!(
                    "line {number} is not valid UTF-8; commands take UTF-8 arguments only"
                ));
                continue;
            }
        };
        if let Next::Exit = shell.execute(text) {
            break;
        }
    }
    Ok(shell.failed)
}

/// The line editor on a terminal, until `exit` or Ctrl-D. Returns whether a line failed.
fn interactive(shell: &mut Shell, options: &Options) -> Result<bool, String> {
    use rustyline::error::ReadlineError;
    use rustyline::history::DefaultHistory;
    use rustyline::{CompletionType, Config, Editor, ExternalPrinter};

    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(1000)
        .and_then(|b| b.history_ignore_dups(true))
        .map_err(|e| e.to_string())?
        .history_ignore_space(true)
        .completion_type(CompletionType::List)
        .build();
    let mut editor: Editor<super::complete::ShellHelper, DefaultHistory> =
        Editor::with_config(config).map_err(|e| format!("cannot start the line editor: {e}"))?;
    editor.set_helper(Some(super::complete::ShellHelper::new(Arc::clone(
        &shell.host,
    ))));
    let history = history_file();
    if let Some(history) = &history {
        // A missing file is the first session; another error is said once.
        if let Err(e) = editor.load_history(history) {
            if !matches!(&e, ReadlineError::Io(io) if io.kind() == std::io::ErrorKind::NotFound) {
                eprintln!(
                    "plughost: cannot read the history {}: {e}",
                    quote_path(history)
                );
            }
        }
    }
    let watch = match options.watch {
        true => {
            // Above the prompt, which the editor redraws.
            let mut printer = editor
                .create_external_printer()
                .map_err(|e| format!("cannot print above the prompt: {e}"))?;
            Some(super::watch::start(
                Arc::clone(&shell.host),
                &options.plugins,
                Box::new(move |line: String| {
                    let _ = printer.print(format!("{line}\n"));
                }),
            )?)
        }
        false => None,
    };
    if let Err(e) = super::interrupt::install() {
        eprintln!("plughost: Ctrl-C during a command will end plughost: {e}");
    }
    println!(
        "plughost shell: type `help` for the verbs and commands, Ctrl-D to leave{}",
        if options.watch {
            format!("; watching {}", quote_path(&options.plugins))
        } else {
            String::new()
        }
    );
    loop {
        match editor.readline("plughost> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(history) = &history {
                        // After each line: a plugin that calls exit() ends the process at once.
                        let _ = editor.append_history(history);
                    }
                }
                super::interrupt::reset();
                if let Next::Exit = shell.execute(&line) {
                    break;
                }
            }
            // Ctrl-C: the line is dropped, a new prompt follows.
            Err(ReadlineError::Interrupted) => continue,
            // Ctrl-D on an empty line.
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                drop(watch);
                return Err(format!("reading a line: {e}"));
            }
        }
    }
    drop(watch);
    Ok(shell.failed)
}

/// The history file, `plughost/history` in the platform's data folder (`~/.local/share` on
/// Linux), with its folder made if needed; `None` where there is no such folder.
fn history_file() -> Option<PathBuf> {
    let folder = dirs::data_dir()?.join("plughost");
    if let Err(e) = std::fs::create_dir_all(&folder) {
        eprintln!(
            "plughost: cannot make {} for the history: {e}",
            quote_path(&folder)
        );
        return None;
    }
    Some(folder.join("history"))
}

impl Shell {
    /// Reports a failed line: one line on standard error, after the output so far. `message` is
    /// shown as it is: every plugin or file string in it was escaped when it was made.
    fn fail(&mut self, message: &str) {
        let _ = Output.flush();
        eprintln!("plughost: {message}");
        self.failed = true;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, PluginHost> {
        self.host.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one line.
    fn execute(&mut self, line: &str) -> Next {
        let words = match super::words::split(line) {
            Ok(words) => words,
            Err(e) => {
                self.fail(&e);
                return Next::Continue;
            }
        };
        let Some((first, rest)) = words.split_first() else {
            return Next::Continue;
        };
        if first.starts_with('#') {
            return Next::Continue;
        }
        let result = match (first.as_str(), rest) {
            ("exit" | "quit", []) => return Next::Exit,
            ("list", []) => {
                let host = self.read();
                display::list(&host, &mut Output).map_err(|e| format!("writing output: {e}"))
            }
            ("help", []) => self.help(),
            ("help", [command]) => self.command_help(command),
            ("load", [file]) => self.load(Path::new(file)),
            ("unload", [name]) => self.unload(name),
            ("reload", []) => self.reload_all(),
            ("reload", [name]) => self.reload(name),
            ("run", [command, args @ ..]) => self.run_command(command, args),
            (
                verb @ ("exit" | "quit" | "list" | "help" | "load" | "unload" | "reload" | "run"),
                _,
            ) => {
                let usage = VERBS
                    .iter()
                    .find(|(v, _)| *v == verb)
                    .map_or("exit", |(_, what)| what);
                Err(format!("usage: {usage}"))
            }
            (command, args) => self.run_command(command, args),
        };
        let flushed = Output.flush();
        match result {
            Err(message) => self.fail(&message),
            Ok(()) => {
                if let Err(e) = flushed {
                    self.fail(&format!("writing output: {e}"));
                }
            }
        }
        Next::Continue
    }

    /// A plugin command, or its usage for `COMMAND --help`.
    fn run_command(&mut self, command: &str, args: &[String]) -> Result<(), String> {
        let host = self.read();
        if args.first().map(String::as_str) == Some("--help") {
            return display::command_help(&host, command, "", &mut Output);
        }
        // Recorded for the exit handler, in case the plugin calls `exit`.
        let plugin = host
            .commands()
            .into_iter()
            .find_map(|(name, plugin)| (name == command).then_some(plugin));
        let _call = plugin.map(|p| plughost::enter_call(&p, CallKind::Command(command.into())));
        match host.run_command(command, args, &mut Output) {
            Ok(()) => Ok(()),
            Err(CommandError::Unknown(name)) => Err(format!(
                "no command named `{}` (type `help` for the verbs and commands)",
                escape(&name)
            )),
            Err(e) => Err(escape(&display::command_error(&e)).to_string()),
        }
    }

    /// `help`: the verbs, then every command with its plugin and description.
    fn help(&mut self) -> Result<(), String> {
        let host = self.read();
        let write = || -> std::io::Result<()> {
            let mut out = Output;
            writeln!(out, "Verbs:")?;
            for (verb, what) in VERBS {
                writeln!(out, "  {verb:<8}{what}")?;
            }
            writeln!(out, "Commands (COMMAND --help for its usage):")?;
            for plugin in host.plugins() {
                for command in &plugin.commands {
                    write!(
                        out,
                        "  {} ({})",
                        escape(&command.name),
                        escape(&plugin.name)
                    )?;
                    // A command without a description gets no dangling `:`.
                    if command.description.trim().is_empty() {
                        writeln!(out)?;
                    } else {
                        writeln!(out, ": {}", escape(&command.description))?;
                    }
                }
            }
            Ok(())
        };
        write().map_err(|e| format!("writing output: {e}"))
    }

    /// `help COMMAND`: a verb's line, or a command's usage.
    fn command_help(&mut self, command: &str) -> Result<(), String> {
        if let Some((verb, what)) = VERBS.iter().find(|(v, _)| *v == command) {
            return writeln!(Output, "{verb}: {what}").map_err(|e| format!("writing output: {e}"));
        }
        display::command_help(&self.read(), command, "", &mut Output)
    }

    /// `load FILE`.
    fn load(&mut self, file: &Path) -> Result<(), String> {
        let mut host = self.host.write().unwrap_or_else(|e| e.into_inner());
        let name = host
            .load(file)
            .map_err(|e| format!("refused {}", display::refusal(&e)))?;
        let version = host
            .plugins()
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.version)
            .unwrap_or_default();
        writeln!(
            Output,
            "loaded {} {} from {}",
            escape(&name),
            escape(&version),
            quote_path(file)
        )
        .map_err(|e| format!("writing output: {e}"))
    }

    /// `unload NAME`.
    fn unload(&mut self, name: &str) -> Result<(), String> {
        self.read()
            .unload(name)
            .map_err(|e| escape(&e.to_string()).to_string())?;
        writeln!(Output, "unloaded {}", escape(name)).map_err(|e| format!("writing output: {e}"))
    }

    /// `reload NAME`.
    fn reload(&mut self, name: &str) -> Result<(), String> {
        let reloaded = self
            .read()
            .reload(name)
            .map_err(|e| reload_failed(name, &e))?;
        writeln!(Output, "{}", reloaded_line(&reloaded)).map_err(|e| format!("writing output: {e}"))
    }

    /// `reload`: every plugin loaded from a file, each reported in one line.
    fn reload_all(&mut self) -> Result<(), String> {
        let names: Vec<String> = self
            .read()
            .plugins()
            .into_iter()
            .filter(|p| p.path != Path::new(plughost::LINKED_PATH))
            .map(|p| p.name)
            .collect();
        for name in names {
            if let Err(message) = self.reload(&name) {
                self.fail(&message);
            }
        }
        Ok(())
    }
}

/// The line that says a reload succeeded: `reloaded NAME OLD -> NEW from FILE`, followed by
/// what became of the plugin's state if it hands any over (`, state handed over (N bytes)` or
/// `, state lost: WHY`).
pub(crate) fn reloaded_line(reloaded: &plughost::Reloaded) -> String {
    let state = match &reloaded.state {
        StateHandoff::NotSaved => String::new(),
        StateHandoff::HandedOver(bytes) => format!(", state handed over ({bytes} bytes)"),
        StateHandoff::Lost(why) => format!(", state lost: {}", escape(why)),
    };
    format!(
        "reloaded {} {} -> {} from {}{state}",
        escape(&reloaded.name),
        escape(&reloaded.old_version),
        escape(&reloaded.new_version),
        quote_path(&reloaded.path)
    )
}

/// The line that says why a reload of `name` failed, and that the old version still serves.
pub(crate) fn reload_failed(name: &str, error: &ReloadError) -> String {
    let reason = match error {
        ReloadError::Load(load) => display::refusal(load),
        other => escape(&other.to_string()).to_string(),
    };
    match error {
        ReloadError::UnknownPlugin(_) | ReloadError::Linked(_) | ReloadError::InsideCall => reason,
        _ => format!("reload of `{name}` failed, the old version keeps serving: {reason}"),
    }
}
