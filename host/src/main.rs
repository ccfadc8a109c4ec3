//! `plughost`: the command line over the [`plughost`] library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plughost::{LayoutCheck, PluginHost};

/// Loads the plugins in a folder and runs their commands.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// The plugins folder: every file with this platform's shared-library extension in it is
    /// loaded. Default: the folder that holds the plughost binary (where cargo also puts the
    /// plugins it builds).
    #[arg(long, short = 'p', value_name = "DIR", env = "PLUGHOST_PLUGINS")]
    plugins: Option<PathBuf>,

    #[command(subcommand)]
    command: Action,
}

#[derive(Subcommand)]
enum Action {
    /// List the loaded plugins: name, version, ABI version, file and commands.
    List,
    /// Run a command that a plugin registered; its output goes to standard output.
    Run {
        /// The command name (see `plughost list`).
        command: String,
        /// The command's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
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
    let dir = match cli.plugins {
        Some(dir) => dir,
        None => default_plugins_dir()?,
    };
    let mut host = PluginHost::new();
    host.load_dir(&dir).map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match cli.command {
        Action::List => list(&host, &mut out).map_err(|e| e.to_string()),
        Action::Run { command, args } => host
            .run_command(&command, &args, &mut out)
            .map_err(|e| e.to_string()),
    };
    let flushed = out.flush();
    host.shutdown();
    result?;
    flushed.map_err(|e| format!("writing output: {e}"))?;
    Ok(ExitCode::SUCCESS)
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
    for refused in host.refused() {
        writeln!(out, "refused: {refused}")?;
    }
    Ok(())
}
