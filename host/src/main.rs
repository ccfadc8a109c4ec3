//! `plughost`: the command line over the [`plughost`] library.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plughost::{CallKind, Config, PluginHost};

mod cli;

use cli::display;
use cli::escape::{escape, quote_path};

/// Loads the plugins in a folder and runs their commands.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The plugins folder: every file with this platform's shared-library extension in it is
    /// loaded. Default: the folder that holds the plughost binary if it holds a plugin library
    /// (as target/release does after `cargo build --release`), otherwise plughost/plugins in the
    /// platform's data folder ($XDG_DATA_HOME/plughost/plugins, ~/.local/share/plughost/plugins
    /// on Linux), where an installed plughost finds plugins.
    #[arg(long, short = 'p', value_name = "DIR", env = "PLUGHOST_PLUGINS")]
    plugins: Option<PathBuf>,

    /// The plugins' configuration: a TOML file with one `[plugins.NAME]` table of settings per
    /// plugin, which that plugin reads through the host's configuration service. Default: none.
    #[arg(long, short = 'c', value_name = "FILE", env = "PLUGHOST_CONFIG")]
    config: Option<PathBuf>,

    /// Exit with status 1 if any library in the plugins folder was refused (after running the
    /// command).
    #[arg(long)]
    strict: bool,

    /// Load libraries that fail the trust rule anyway. The rule refuses a library file, or the
    /// plugins folder, that is writable by group or others, or owned by a user who is neither the
    /// one running plughost nor root. The configuration file's `allow_insecure = true` does the
    /// same.
    /// `PLUGHOST_ALLOW_INSECURE` takes 1/0, true/false, yes/no, on/off.
    #[arg(
        long,
        env = "PLUGHOST_ALLOW_INSECURE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    allow_insecure: bool,

    /// Run the plugin NAME in a child process of its own (repeatable; `all` for every plugin):
    /// a crash, `exit`, a signal or a call past --call-timeout faults that plugin only. The
    /// configuration file's `isolate = ["NAME"]` (or `"all"`) does the same.
    #[arg(long, value_name = "NAME")]
    isolate: Vec<String>,

    /// Seconds one call into an isolated plugin (init, a command, an event) may take before the
    /// plugin is faulted and its child killed; 0 for no limit. Default: 60, or the configuration
    /// file's `call_timeout`.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    call_timeout: Option<f64>,

    /// What a crash of an isolated plugin does: `never` restart it (it stays faulted), or
    /// restart it `on-crash` at its next call, after a delay that doubles with each crash in a
    /// row (at most 30 s). The configuration file's `restart` does the same. Default: never.
    #[arg(long, value_name = "POLICY", value_parser = ["never", "on-crash"])]
    restart: Option<String>,

    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand)]
enum Action {
    /// List the loaded plugins: name, version, ABI version, file and commands; then their
    /// interfaces, faulted plugins and refused libraries.
    List {
        /// Print one JSON object instead of the table: the plugins (name, version, description,
        /// file, ABI version, commands, provided and required interfaces, state) and the refused
        /// libraries with their reasons. The fields are documented in docs/cli-json.md.
        #[arg(long)]
        json: bool,
    },
    /// Run a command that a plugin registered; its output goes to standard output.
    ///
    /// Every argument after COMMAND goes to the command, options included. The one exception:
    /// `plughost run COMMAND --help` prints the command's usage and description, as its plugin
    /// declares them, instead of running it. Commands take UTF-8 arguments only: an argument
    /// that is not valid UTF-8 is refused (exit status 2) before any plugin is loaded.
    #[command(override_usage = "plughost run <COMMAND> [ARGS]...")]
    Run {
        /// The command name (see `plughost list`), then its arguments.
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND [ARGS]",
            value_parser = clap::value_parser!(OsString)
        )]
        command_line: Vec<OsString>,
    },
    /// A long-running host: each line runs a command, or a verb (list, load FILE, unload NAME,
    /// reload [NAME], run COMMAND, help, exit).
    ///
    /// Plugins stay loaded for the session, each from a private copy of its file, so that a
    /// rebuild of the file does not change the code that runs until `reload` loads it. On a
    /// terminal: a line editor with history and completion. Otherwise one line per command, with
    /// no prompt; a failing line prints its error and the shell goes on, and the exit status is 1
    /// if any line failed.
    Shell {
        /// Watch the plugins folder: reload a library that changes, load a new one, unload a
        /// removed one, each reported in one line.
        #[arg(long)]
        watch: bool,
    },
    /// Print what the host finds in a library before `init`: descriptor, ABI version, type layout
    /// check, and the first check that fails. Does not call the plugin's `init`.
    ///
    /// Opening a library runs its initialisers (constructors of C code, static initialisers):
    /// inspect only files you would also load.
    Inspect {
        /// The library file.
        file: PathBuf,
        /// Print one JSON object instead of the report (fields documented in docs/cli-json.md).
        #[arg(long)]
        json: bool,
    },
    /// Run the conformance checks against plugin libraries, each check in a child process with a
    /// timeout, and report a status per check: success, failed, crashed, timed-out, skipped or
    /// warning. Exits with status 1 if any check failed, crashed or timed out.
    ///
    /// The checks load the plugin and run every command it registers, with no arguments and with
    /// garbage arguments: validate plugins whose commands have side effects in a sandbox.
    Validate {
        /// The library files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print JSON (one object per file) instead of a table.
        #[arg(long)]
        json: bool,
        /// Run only these checks (comma-separated or repeated).
        #[arg(long, value_delimiter = ',', value_name = "CHECK")]
        include: Vec<String>,
        /// Skip these checks (comma-separated or repeated).
        #[arg(long, value_delimiter = ',', value_name = "CHECK")]
        exclude: Vec<String>,
        /// Seconds one check may run before it is killed and reported as timed-out.
        #[arg(
            long,
            default_value_t = 10.0,
            value_name = "SECONDS",
            allow_negative_numbers = true
        )]
        timeout: f64,
        /// List the checks and exit.
        #[arg(long, exclusive = true)]
        list_checks: bool,
    },
    /// Write a new plugin crate, ready to build, test and validate, from the template; with
    /// `--c`, a plugin in C.
    ///
    /// A name that would not build or would clash is refused in one line saying why.
    New {
        /// The plugin name (also the crate and command name): an ASCII letter, then ASCII
        /// letters, digits, '-' or '_'.
        name: String,
        /// Write a plugin in C instead: a folder with NAME.c (one command that greets), the
        /// ABI's header plughost.h, test.sh (builds it with cc, runs `plughost validate` and the
        /// command) and README.md (the build command, where to install, the valgrind command).
        #[arg(long, conflicts_with = "api_path")]
        c: bool,
        /// The folder in which to create the crate's folder.
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// The `plugin-api` folder the plugin depends on (relative to the current folder; the
        /// crate's manifest gets it as an absolute path). Default: the one of the source tree
        /// plughost was built from.
        #[arg(long, value_name = "PATH")]
        api_path: Option<PathBuf>,
    },
    /// Runs one validation check in this process (used by `validate`).
    #[command(name = "__validate-check", hide = true)]
    ValidateCheck {
        /// The check.
        check: String,
        /// The library file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    // An isolated plugin's child process (`plughost::isolate`): it serves its host and exits.
    if let Some(code) = plughost::isolate::child_main_if_requested() {
        return code;
    }
    cli::exit::install_exit_handler();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format(display::log_record)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    match run(cli) {
        Ok(code) => code,
        // `plughost list | head -1`: the reader's choice, not a failure (see `cli::pipe`).
        Err(_) if cli::pipe::reader_left() => ExitCode::SUCCESS,
        Err(message) => {
            // One line, whatever a plugin put in the message.
            eprintln!("plughost: {}", escape(&message));
            ExitCode::FAILURE
        }
    }
}

/// An error of the command line (or `--help`, `--version`) as clap found it. Help and version go
/// to standard output as clap writes them; an error goes to standard error with plughost's one
/// prefix in place of clap's `error: `, followed by clap's usage line and hint, exit status 2.
fn usage_error(error: &clap::Error) -> ExitCode {
    if !error.use_stderr() {
        // --help, --version: not errors.
        return match error.print() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        };
    }
    let text = error.render().to_string();
    match text.strip_prefix("error: ") {
        Some(message) => eprint!("plughost: {message}"),
        // `plughost` alone: the help, on standard error.
        None => eprint!("{text}"),
    }
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    // The configuration, for the actions that load or check plugins.
    let config = match (&cli.command, &cli.config) {
        (
            Action::List { .. }
            | Action::Run { .. }
            | Action::Shell { .. }
            | Action::Inspect { .. }
            | Action::Validate { .. },
            Some(path),
        ) => Some(Config::load(path).map_err(|e| e.to_string())?),
        _ => None,
    };
    let allow_insecure = cli.allow_insecure || config.as_ref().is_some_and(Config::allow_insecure);
    match &cli.command {
        Action::Inspect { file, json } => return display::inspect(file, allow_insecure, *json),
        Action::ValidateCheck { check, file } => {
            let (status, message) = plughost::validate::run_check(check, file, allow_insecure);
            // The message as a JSON string: one line, whatever it holds.
            let message = serde_json::to_string(&message).map_err(|e| e.to_string())?;
            cli::pipe::println(format_args!("{}\t{message}", status.name()))?;
            return Ok(ExitCode::SUCCESS);
        }
        Action::Validate {
            files,
            json,
            include,
            exclude,
            timeout,
            list_checks,
        } => {
            let options = ValidateOptions {
                json: *json,
                timeout: *timeout,
                list_checks: *list_checks,
                allow_insecure,
            };
            return validate(files, include, exclude, &options);
        }
        Action::New {
            name, dir, c: true, ..
        } => {
            let created = plughost::template::create_c(name, dir)?;
            cli::pipe::println(format_args!("created {}", quote_path(&created)))?;
            return Ok(ExitCode::SUCCESS);
        }
        Action::New {
            name,
            dir,
            api_path,
            c: false,
        } => {
            let api_path = match api_path {
                Some(path) => api_folder(path)?,
                None => plughost::template::default_api_path().ok_or(
                    "the plugin-api folder of plughost's source tree is gone; pass --api-path",
                )?,
            };
            let created = plughost::template::create(name, dir, &api_path)?;
            cli::pipe::println(format_args!("created {}", quote_path(&created)))?;
            return Ok(ExitCode::SUCCESS);
        }
        Action::List { .. } | Action::Run { .. } | Action::Shell { .. } => {}
    }
    // The words of `run`, checked before any plugin code runs.
    let command_line = match &cli.command {
        Action::Run { command_line } => match utf8_words(command_line) {
            Ok(words) => words,
            Err(message) => {
                // Already escaped: the word is shown quoted, its bytes as `\xNN`.
                eprintln!("plughost: {message}");
                return Ok(ExitCode::from(2));
            }
        },
        _ => Vec::new(),
    };
    let dir = match cli.plugins {
        Some(dir) => dir,
        None => cli::folder::default_plugins_dir()?,
    };
    let mut host = PluginHost::new();
    host.set_allow_insecure(allow_insecure);
    // A long-running host loads private copies: a rebuild cannot change the code that runs.
    host.set_private_copies(matches!(cli.command, Action::Shell { .. }));
    // The plugins the configuration has settings for, to report those that do not load.
    let mut configured = Vec::new();
    isolation(&mut host, &cli.isolate, cli.call_timeout, config.as_ref())?;
    if let Some(restart) = cli
        .restart
        .as_deref()
        .and_then(plughost::Restart::parse)
        .or_else(|| config.as_ref().and_then(Config::restart))
    {
        host.set_restart(restart);
    }
    if let Some(config) = config {
        configured = config.plugin_names().map(str::to_owned).collect();
        host.set_config(config);
    }
    host.load_dir(&dir).map_err(|e| e.to_string())?;
    for name in cli.isolate.iter().filter(|n| *n != "all") {
        if !host.plugins().iter().any(|p| p.name == *name) {
            log::warn!("--isolate {name}: no plugin of that name was loaded");
        }
    }
    if !configured.is_empty() {
        let loaded = host.plugins();
        for name in configured {
            if !loaded.iter().any(|p| p.name == name) {
                log::warn!("the configuration has settings for `{name}`, which did not load");
            }
        }
    }
    if let Action::Shell { watch } = cli.command {
        let options = cli::shell::Options {
            watch,
            plugins: dir,
            strict: cli.strict,
        };
        return cli::shell::run(host, &options);
    }
    if !matches!(cli.command, Action::List { .. }) {
        // `list` shows them in its output.
        for refused in host.refused() {
            eprintln!("plughost: refused {}", display::refusal(refused));
        }
    }
    let mut out = cli::exit::Output;
    let result = match cli.command {
        Action::List { json: false } => {
            if host.plugins().is_empty() && host.refused().is_empty() {
                // The table alone would be a header; standard output stays the table.
                eprintln!(
                    "plughost: no plugins in {} (libraries named {}NAME{})",
                    quote_path(&dir),
                    std::env::consts::DLL_PREFIX,
                    std::env::consts::DLL_SUFFIX
                );
            }
            display::list(&host, &mut out).map_err(|e| cli::pipe::output_error(&e))
        }
        Action::List { json: true } => {
            cli::json::list(&host, &dir, &mut out).map_err(|e| cli::pipe::output_error(&e))
        }
        Action::Run { .. } => {
            let (command, args) = command_line
                .split_first()
                .expect("clap requires the command name");
            if let Err(plughost::CommandError::Unknown(_)) = host.command(command) {
                Err(unknown_command(&host, command, &dir))
            } else if args.first().map(String::as_str) == Some("--help") {
                display::command_help(&host, command, "plughost run ", &mut out)
            } else {
                // Recorded for the exit handler, in case the plugin calls `exit`.
                let plugin = host
                    .commands()
                    .into_iter()
                    .find_map(|(name, plugin)| (name == *command).then_some(plugin));
                let _call = plugin.map(|plugin| {
                    plughost::enter_call(&plugin, CallKind::Command(command.clone()))
                });
                host.run_command(command, args, &mut out)
                    .map_err(|e| display::command_error(&e))
            }
        }
        Action::Inspect { .. }
        | Action::Shell { .. }
        | Action::Validate { .. }
        | Action::ValidateCheck { .. }
        | Action::New { .. } => unreachable!("handled above"),
    };
    let flushed = out.flush();
    host.shutdown();
    result?;
    flushed.map_err(|e| cli::pipe::output_error(&e))?;
    if cli.strict && !host.refused().is_empty() {
        return Err(format!(
            "{} librar{} refused (--strict)",
            host.refused().len(),
            if host.refused().len() == 1 {
                "y"
            } else {
                "ies"
            }
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `new --api-path PATH`: the folder as an absolute path (the crate's manifest names it from
/// another folder than the one plughost runs in), refused in one line unless it holds the
/// `plugin-api` crate.
fn api_folder(path: &Path) -> Result<PathBuf, String> {
    let shown = path.display();
    let folder = path
        .canonicalize()
        .map_err(|e| format!("--api-path {shown}: {e}"))?;
    let manifest = std::fs::read_to_string(folder.join("Cargo.toml"))
        .map_err(|e| format!("--api-path {shown}: not the plugin-api crate (Cargo.toml: {e})"))?;
    let package = manifest.parse::<toml::Table>().ok().and_then(|manifest| {
        let name = manifest.get("package")?.get("name")?.as_str()?;
        Some(name.to_owned())
    });
    match package.as_deref() {
        Some("plugin-api") => Ok(folder),
        Some(other) => Err(format!(
            "--api-path {shown}: not the plugin-api crate (its package is `{other}`)"
        )),
        None => Err(format!(
            "--api-path {shown}: not the plugin-api crate (no package name in its Cargo.toml)"
        )),
    }
}

/// The one line for a command that no loaded plugin registered: when nothing loaded from `dir`,
/// or some library was refused, it says so (the refusals are on the lines above), since `plughost
/// list` would not show the command either. Not yet escaped, as every error `run` returns.
fn unknown_command(host: &PluginHost, command: &str, dir: &Path) -> String {
    let refused = match host.refused().len() {
        0 => String::new(),
        1 => "1 library refused, above".to_owned(),
        n => format!("{n} libraries refused, above"),
    };
    match (host.plugins().is_empty(), refused.is_empty()) {
        (true, true) => format!(
            "no command named `{command}`: no plugins in {}",
            dir.display()
        ),
        (true, false) => format!(
            "no command named `{command}`: no plugin loaded from {} ({refused})",
            dir.display()
        ),
        (false, false) => format!("no command named `{command}` (see `plughost list`; {refused})"),
        (false, true) => plughost::CommandError::Unknown(command.to_owned()).to_string(),
    }
}

/// The words of `plughost run` as strings. A command receives its arguments as UTF-8 strings (the
/// ABI's `PhStr`), so a word that is not UTF-8 (a Linux file name may be any bytes) is refused
/// with a message naming it, rather than changed.
fn utf8_words(words: &[OsString]) -> Result<Vec<String>, String> {
    words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            word.to_str().map(str::to_owned).ok_or_else(|| {
                let what = match i {
                    0 => "the command name".to_owned(),
                    i => format!("argument {i}"),
                };
                format!(
                    "{what} is not valid UTF-8: {}; commands take UTF-8 arguments only",
                    quote_path(Path::new(word))
                )
            })
        })
        .collect()
}

/// The options of `plughost validate` but the files and the check selection.
struct ValidateOptions {
    json: bool,
    timeout: f64,
    list_checks: bool,
    allow_insecure: bool,
}

/// `plughost validate`: the table or the JSON report; status 1 if any check failed.
fn validate(
    files: &[PathBuf],
    include: &[String],
    exclude: &[String],
    options: &ValidateOptions,
) -> Result<ExitCode, String> {
    use plughost::validate::{self, Options};

    let &ValidateOptions {
        json,
        timeout,
        list_checks,
        allow_insecure,
    } = options;

    if list_checks {
        // Two spaces after the longest name.
        let width = validate::CHECKS
            .iter()
            .map(|(name, _)| name.len())
            .max()
            .unwrap_or(0)
            + 2;
        for (name, what) in validate::CHECKS {
            cli::pipe::println(format_args!("{name:<width$}{what}"))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !(timeout.is_finite() && timeout > 0.0) {
        return Err(format!(
            "--timeout: {timeout} is not a positive number of seconds"
        ));
    }
    let options = Options {
        program: std::env::current_exe().map_err(|e| format!("cannot locate plughost: {e}"))?,
        timeout: std::time::Duration::from_secs_f64(timeout),
        checks: validate::select(include, exclude)?,
        allow_insecure,
    };
    let mut failed = false;
    let mut reports = Vec::new();
    for file in files {
        let results = validate::validate_file(file, &options);
        failed |= results.iter().any(|r| r.status.is_failure());
        if json {
            reports.push((file.as_path(), results));
        } else {
            display::validate_table(file, &results)?;
        }
    }
    if json {
        display::validate_json(&reports)?;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Applies `--isolate` and `--call-timeout`, and the configuration file's `isolate` and
/// `call_timeout` (the command line's timeout wins; the names add up).
fn isolation(
    host: &mut PluginHost,
    names: &[String],
    timeout: Option<f64>,
    config: Option<&Config>,
) -> Result<(), String> {
    let from_config = config.map(Config::isolate).unwrap_or_default();
    for name in names.iter().chain(&from_config) {
        match name.as_str() {
            "all" => host.isolate_all(true),
            name => host.isolate(name),
        }
    }
    if let Some(seconds) = timeout.or_else(|| config.and_then(Config::call_timeout)) {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(format!(
                "--call-timeout: {seconds} is not a number of seconds, 0 or more"
            ));
        }
        // More seconds than a duration holds: no limit either.
        host.set_call_timeout((seconds > 0.0).then(|| {
            std::time::Duration::try_from_secs_f64(seconds).unwrap_or(std::time::Duration::MAX)
        }));
    }
    Ok(())
}
