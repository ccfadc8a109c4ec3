//! `plughost`: the command line over the [`plughost`] library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::{Parser, Subcommand};
use plughost::{CallKind, Config, LayoutCheck, PluginHost};

/// Loads the plugins in a folder and runs their commands.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The plugins folder: every file with this platform's shared-library extension in it is
    /// loaded. Default: the folder that holds the plughost binary (where cargo also puts the
    /// plugins it builds).
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

    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand)]
enum Action {
    /// List the loaded plugins: name, version, ABI version, file and commands.
    List,
    /// Run a command that a plugin registered; its output goes to standard output.
    ///
    /// Every argument after COMMAND goes to the command, options included. The one exception:
    /// `plughost run COMMAND --help` prints the command's usage and description, as its plugin
    /// declares them, instead of running it.
    #[command(override_usage = "plughost run <COMMAND> [ARGS]...")]
    Run {
        /// The command name (see `plughost list`), then its arguments.
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND [ARGS]"
        )]
        command_line: Vec<String>,
    },
    /// Print what the host finds in a library before `init`: descriptor, ABI version, type layout
    /// check, and the first check that fails. Does not call the plugin's `init`.
    ///
    /// Opening a library runs its initialisers (constructors of C code, static initialisers):
    /// inspect only files you would also load.
    Inspect {
        /// The library file.
        file: PathBuf,
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
        #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
        timeout: f64,
        /// List the checks and exit.
        #[arg(long, exclusive = true)]
        list_checks: bool,
    },
    /// Write a new plugin crate, ready to build, test and validate, from the template.
    New {
        /// The plugin name (also the crate and command name): an ASCII letter, then ASCII
        /// letters, digits, '-' or '_'.
        name: String,
        /// The folder in which to create the crate's folder.
        #[arg(long, default_value = ".", value_name = "DIR")]
        dir: PathBuf,
        /// The `plugin-api` folder the plugin depends on. Default: the one of the source tree
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
    install_exit_handler();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("plughost: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    // The configuration, for the actions that load or check plugins.
    let config = match (&cli.command, &cli.config) {
        (
            Action::List | Action::Run { .. } | Action::Inspect { .. } | Action::Validate { .. },
            Some(path),
        ) => Some(Config::load(path).map_err(|e| e.to_string())?),
        _ => None,
    };
    let allow_insecure = cli.allow_insecure || config.as_ref().is_some_and(Config::allow_insecure);
    match &cli.command {
        Action::Inspect { file } => return Ok(inspect(file, allow_insecure)),
        Action::ValidateCheck { check, file } => {
            let (status, message) = plughost::validate::run_check(check, file, allow_insecure);
            println!("{}\t{}", status.name(), message.replace('\n', " "));
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
            name,
            dir,
            api_path,
        } => {
            let api_path = match api_path {
                Some(path) => path.clone(),
                None => plughost::template::default_api_path().ok_or(
                    "the plugin-api folder of plughost's source tree is gone; pass --api-path",
                )?,
            };
            let created = plughost::template::create(name, dir, &api_path)?;
            println!("created {}", created.display());
            return Ok(ExitCode::SUCCESS);
        }
        Action::List | Action::Run { .. } => {}
    }
    let dir = match cli.plugins {
        Some(dir) => dir,
        None => default_plugins_dir()?,
    };
    let mut host = PluginHost::new();
    host.set_allow_insecure(allow_insecure);
    // The plugins the configuration has settings for, to report those that do not load.
    let mut configured = Vec::new();
    if let Some(config) = config {
        configured = config.plugin_names().map(str::to_owned).collect();
        host.set_config(config);
    }
    host.load_dir(&dir).map_err(|e| e.to_string())?;
    if !configured.is_empty() {
        let loaded = host.plugins();
        for name in configured {
            if !loaded.iter().any(|p| p.name == name) {
                log::warn!("the configuration has settings for `{name}`, which did not load");
            }
        }
    }
    if !matches!(cli.command, Action::List) {
        // `list` shows them in its output.
        for refused in host.refused() {
            eprintln!("plughost: refused {refused}");
        }
    }
    let mut out = Output;
    let result = match cli.command {
        Action::List => list(&host, &mut out).map_err(|e| e.to_string()),
        Action::Run { command_line } => {
            let (command, args) = command_line
                .split_first()
                .expect("clap requires the command name");
            if args.first().map(String::as_str) == Some("--help") {
                command_help(&host, command, &mut out)
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
                    .map_err(|e| e.to_string())
            }
        }
        Action::Inspect { .. }
        | Action::Validate { .. }
        | Action::ValidateCheck { .. }
        | Action::New { .. } => unreachable!("handled above"),
    };
    let flushed = out.flush();
    host.shutdown();
    result?;
    flushed.map_err(|e| format!("writing output: {e}"))?;
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

/// `plughost run COMMAND --help`: the usage line and description the command's plugin declares
/// for it, and which plugin that is.
fn command_help(host: &PluginHost, command: &str, out: &mut impl Write) -> Result<(), String> {
    let found = host.plugins().into_iter().find_map(|plugin| {
        let info = plugin.commands.iter().find(|c| c.name == command)?.clone();
        Some((plugin, info))
    });
    let Some((plugin, info)) = found else {
        // The same error as running an unknown command; or a command its plugin does not list.
        host.command(command).map_err(|e| e.to_string())?;
        return writeln!(
            out,
            "Usage: plughost run {command} [ARGS]...\n\nIts plugin does not describe it."
        )
        .map_err(|e| format!("writing output: {e}"));
    };
    let mut write = || -> std::io::Result<()> {
        let usage = format!("Usage: plughost run {command} {}", info.usage.trim());
        writeln!(out, "{}", usage.trim_end())?;
        if !info.description.is_empty() {
            writeln!(out, "\n{}", info.description)?;
        }
        writeln!(
            out,
            "\nFrom the plugin {} {} ({})",
            plugin.name,
            plugin.version,
            plugin.path.display()
        )
    };
    write().map_err(|e| format!("writing output: {e}"))
}

/// `plughost inspect FILE`: one line per finding, then the verdict.
fn inspect(file: &std::path::Path, allow_insecure: bool) -> ExitCode {
    use plugin_api::abi::{PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR, PH_ENTRY_POINT_SYMBOL};
    let (seen, error) = plughost::inspect_with(file, allow_insecure);
    let row = |label: &str, value: String| println!("{:<20}{value}", format!("{label}:"));
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    row("file", file.display().to_string());
    row("opened", yes_no(seen.opened).to_owned());
    if seen.opened {
        row(
            "entry point",
            format!("{} ({PH_ENTRY_POINT_SYMBOL})", yes_no(seen.entry_point)),
        );
    }
    if let Some((major, minor)) = seen.abi_version {
        row(
            "ABI version",
            format!("{major}.{minor} (host {PH_ABI_VERSION_MAJOR}.{PH_ABI_VERSION_MINOR})"),
        );
    }
    if let Some(size) = seen.descriptor_size {
        row("descriptor", format!("{size} bytes"));
    }
    match seen.layout {
        Some(LayoutCheck::Passed) => row(
            "type layout",
            match seen.abi_version {
                Some((major, minor)) if minor < PH_ABI_VERSION_MINOR => {
                    format!("matches ABI {major}.{minor}'s, as the host keeps it (abi_stable)")
                }
                _ => "matches the host's (abi_stable)".into(),
            },
        ),
        Some(LayoutCheck::NotCarried) => row(
            "type layout",
            "not carried (a C plugin: ABI version and sizes checked only)".into(),
        ),
        None => {}
    }
    if let Some(size) = seen.vtable_size {
        row("function table", format!("{size} bytes"));
    }
    for (name, present) in &seen.functions {
        row(
            name,
            (if *present { "present" } else { "MISSING" }).to_owned(),
        );
    }
    for (label, value) in [
        ("name", &seen.name),
        ("version", &seen.version),
        ("description", &seen.description),
    ] {
        if let Some(value) = value {
            row(label, value.clone());
        }
    }
    match error {
        None => {
            row("result", "loadable (init not called)".into());
            ExitCode::SUCCESS
        }
        Some(error) => {
            row("result", format!("refused: {}", error.kind));
            ExitCode::FAILURE
        }
    }
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
        for (name, what) in validate::CHECKS {
            println!("{name:<28}{what}");
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
            reports.push(serde_json::json!({ "file": file, "checks": results }));
        } else {
            println!("{}", file.display());
            for r in &results {
                println!("  {:<10} {:<28} {}", r.status.name(), r.check, r.message);
            }
        }
    }
    if json {
        let text = serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?;
        println!("{text}");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The folder that holds the running binary.
fn default_plugins_dir() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot locate the plughost binary: {e}"))?;
    exe.parent()
        .map(PathBuf::from)
        .ok_or_else(|| "cannot locate the plughost binary's folder; pass --plugins DIR".to_owned())
}

fn list(host: &PluginHost, out: &mut impl Write) -> std::io::Result<()> {
    let plugins = host.plugins();
    let rows: Vec<[String; 5]> = plugins
        .iter()
        .map(|p| {
            let abi = format!(
                "{}.{}{}",
                p.abi_version.0,
                p.abi_version.1,
                match p.layout {
                    LayoutCheck::Passed => "",
                    LayoutCheck::NotCarried => " (no layout data)",
                }
            );
            let commands: Vec<&str> = p.commands.iter().map(|c| c.name.as_str()).collect();
            [
                p.name.clone(),
                p.version.clone(),
                abi,
                p.path.display().to_string(),
                commands.join(", "),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "ABI", "FILE", "COMMANDS"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    for plugin in plugins.iter().filter(|p| p.fault.is_some()) {
        writeln!(
            out,
            "faulted: {} ({}): {}",
            plugin.name,
            plugin.path.display(),
            plugin.fault.as_deref().unwrap_or_default()
        )?;
    }
    for refused in host.refused() {
        writeln!(out, "refused: {refused}")?;
    }
    Ok(())
}

/// Command output not yet written to standard output, in a global so that the exit handler can
/// write it (see [`plugin_exited`]).
static OUTPUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// How much output [`Output`] keeps before writing it.
const OUTPUT_BUFFER: usize = 8 * 1024;

/// Standard output, buffered in [`OUTPUT`]. Every write of the buffer also flushes the standard
/// library's own buffer, so that nothing is left there when the exit handler writes the rest.
struct Output;

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buffer = OUTPUT.lock().unwrap_or_else(|e| e.into_inner());
        if buffer.len() + bytes.len() > OUTPUT_BUFFER {
            write_out(&mut buffer)?;
        }
        if bytes.len() >= OUTPUT_BUFFER {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes)?;
            stdout.flush()?;
        } else {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        write_out(&mut OUTPUT.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Writes and empties `buffer`.
fn write_out(buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(buffer).and_then(|()| stdout.flush());
    buffer.clear();
    written
}

/// The status plughost exits with when a plugin calls `exit` during its `init` or a command: 70,
/// `EX_SOFTWARE` of `sysexits.h` (an internal software error), distinct from the 1 of a failed
/// command.
const PLUGIN_EXITED: i32 = 70;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    /// glibc's `on_exit(3)`: like `atexit`, but the handler also receives the exit status.
    fn on_exit(
        function: extern "C" fn(status: libc::c_int, arg: *mut libc::c_void),
        arg: *mut libc::c_void,
    ) -> libc::c_int;
}

/// Registers [`plugin_exited`] to run when the process exits through `exit` (which is also how
/// `main` returning ends it): with glibc through `on_exit`, which passes the status the plugin
/// gave; elsewhere on Unix through `atexit`, which does not.
fn install_exit_handler() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" fn handler(status: libc::c_int, _: *mut libc::c_void) {
            plugin_exited(Some(status));
        }
        // SAFETY: `handler` is a function that lives as long as the process and ignores its
        // argument, so any pointer (here NULL) will do.
        let failed = unsafe { on_exit(handler, std::ptr::null_mut()) } != 0;
        if failed {
            log::debug!("on_exit failed: a plugin calling exit() will not be reported");
        }
    }
    #[cfg(all(unix, not(all(target_os = "linux", target_env = "gnu"))))]
    {
        extern "C" fn handler() {
            plugin_exited(None);
        }
        // SAFETY: `handler` is a function that lives as long as the process.
        let failed = unsafe { libc::atexit(handler) } != 0;
        if failed {
            log::debug!("atexit failed: a plugin calling exit() will not be reported");
        }
    }
}

/// The exit handler. If a plugin call is under way ([`plughost::current_call`]), a plugin called
/// `exit` inside it: writes the command's output so far, says on standard error which plugin did
/// it during what, and ends the process at once with [`PLUGIN_EXITED`], whatever status the plugin
/// gave. Otherwise (plughost exiting normally) does nothing.
///
/// Only writes to the raw descriptors 1 and 2 and takes no lock it could wait on: the plugin may
/// have called `exit` from anywhere, holding anything.
#[cfg(unix)]
fn plugin_exited(status: Option<libc::c_int>) {
    let Some(call) = plughost::current_call() else {
        return;
    };
    let kept = match OUTPUT.try_lock() {
        Ok(buffer) => write_fd(1, &buffer),
        Err(std::sync::TryLockError::Poisoned(e)) => write_fd(1, &e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => false,
    };
    let exit = match status {
        Some(status) => format!("exit({status})"),
        None => "exit()".to_owned(),
    };
    let consequence = match call.kind {
        CallKind::Command(_) => "the command did not finish",
        _ => "plughost did not finish",
    };
    let lost = if kept {
        ""
    } else {
        " (its output so far may be lost)"
    };
    let line = format!(
        "plughost: plugin `{}` called {exit} during {}; {consequence}{lost}\n",
        call.plugin, call.kind
    );
    write_fd(2, line.as_bytes());
    // SAFETY: `_exit` ends the process without running the remaining exit handlers, which may
    // belong to the plugin that is in the middle of a call; the output is written above.
    unsafe { libc::_exit(PLUGIN_EXITED) }
}

/// Writes all of `bytes` to the descriptor `fd`, retrying when interrupted. Whether it did.
#[cfg(unix)]
fn write_fd(fd: libc::c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is readable for its length; a bad descriptor is an error, not UB.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if written == 0 {
            return false;
        }
        bytes = &bytes[written as usize..];
    }
    true
}
