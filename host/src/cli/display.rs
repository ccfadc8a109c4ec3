//! What the `plughost` binary prints: the `list` table, the `inspect` report, `run COMMAND --help`,
//! the `validate` table and JSON, refusals and log records.
//!
//! Every string that comes from a plugin or from the file system goes through
//! [`escape`](super::escape::escape) or [`quote_path`](super::escape::quote_path) here, so that no
//! plugin can forge or hide a row of the output. Column widths computed from those strings are
//! capped, and padding is written without format-width arguments, so that no string is too long to
//! print.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use plughost::validate::CheckResult;
use plughost::{CommandError, InterfaceVersion, LayoutCheck, LoadError, LoadErrorKind, PluginHost};
use plugin_api::abi::{
    PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR, PH_ENTRY_POINT_SYMBOL, PH_MAX_DESCRIPTION_LEN,
    PH_MAX_NAME_LEN, PH_MAX_VERSION_LEN,
};

use super::escape::{escape, escape_at_most, json_for_terminal, quote_path};

/// The widest a column of the `list` table grows to fit its cells; a longer cell overflows its
/// column on its own row only.
const MAX_COLUMN_WIDTH: usize = 64;

/// One line saying why a library was refused: `FILE: cause`, the file quoted if needed and the
/// cause escaped.
pub(crate) fn refusal(error: &LoadError) -> String {
    let path = quote_path(&error.path);
    match &error.kind {
        // The one cause that names another file: quoted like the first.
        LoadErrorKind::Duplicate { name, first } => format!(
            "{path}: duplicate plugin name `{}`, already loaded from {}",
            escape(name),
            quote_path(first)
        ),
        kind => format!("{path}: {}", escape(&kind.to_string())),
    }
}

/// `plughost list`: a table of the loaded plugins (name, version, ABI version, file, commands),
/// then one line per faulted plugin and one per refused library.
pub(crate) fn list(host: &PluginHost, out: &mut impl Write) -> io::Result<()> {
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
                    LayoutCheck::Linked => " (linked in)",
                }
            );
            let commands: Vec<String> = p
                .commands
                .iter()
                .map(|c| escape(&c.name).to_string())
                .collect();
            [
                escape(&p.name).to_string(),
                escape(&p.version).to_string(),
                abi,
                quote_path(&p.path).to_string(),
                commands.join(", "),
            ]
        })
        .collect();
    let header = ["NAME", "VERSION", "ABI", "FILE", "COMMANDS"].map(String::from);
    // While any plugin is isolated, each one's mode and its child's pid, after the ABI.
    if plugins
        .iter()
        .any(|p| p.mode != plughost::PluginMode::InProcess)
    {
        let with_mode = |row: &[String; 5], mode: [String; 2]| -> [String; 7] {
            let [a, b, c, d, e] = row.clone();
            let [m, pid] = mode;
            [a, b, c, m, pid, d, e]
        };
        let header = with_mode(&header, ["MODE".into(), "PID".into()]);
        let rows: Vec<[String; 7]> = rows
            .iter()
            .zip(&plugins)
            .map(|(row, p)| match p.mode {
                plughost::PluginMode::Isolated { pid } => {
                    with_mode(row, ["isolated".into(), pid.to_string()])
                }
                _ => with_mode(row, ["in-process".into(), "-".into()]),
            })
            .collect();
        write_table(&header, &rows, out)?;
    } else {
        write_table(&header, &rows, out)?;
    }
    for plugin in &plugins {
        if let Some(line) = interfaces_line(&plugin.provides, &plugin.requires) {
            writeln!(out, "interfaces: {}: {line}", escape(&plugin.name))?;
        }
    }
    for plugin in plugins.iter().filter(|p| p.fault.is_some()) {
        writeln!(
            out,
            "faulted: {} ({}): {}",
            escape(&plugin.name),
            quote_path(&plugin.path),
            escape(plugin.fault.as_deref().unwrap_or_default())
        )?;
    }
    for refused in host.refused() {
        writeln!(out, "refused: {}", refusal(refused))?;
    }
    Ok(())
}

/// The message of a failed command, for plughost's one-line error: the command's name, then the
/// plugin's message without an `error:` of its own in front (as a plugin that formats its errors
/// for a terminal, with clap for instance, starts them), so that the line carries plughost's
/// prefix only. Not yet escaped.
pub(crate) fn command_error(error: &CommandError) -> String {
    match error {
        CommandError::Failed {
            command, message, ..
        } => {
            let mut message = message.trim();
            while let Some(rest) = message
                .get(..6)
                .filter(|start| start.eq_ignore_ascii_case("error:"))
                .map(|_| &message[6..])
            {
                message = rest.trim_start();
            }
            format!("{command}: {message}")
        }
        CommandError::Output { source, .. } => {
            super::pipe::note(source);
            error.to_string()
        }
        error => error.to_string(),
    }
}

/// `provides A 1.0, B 2.1; requires C 1.0 (optional)`, or `None` for a plugin without
/// interfaces.
fn interfaces_line(provides: &[InterfaceVersion], requires: &[InterfaceVersion]) -> Option<String> {
    let list = |items: &[InterfaceVersion]| {
        items
            .iter()
            .map(|i| escape(&i.to_string()).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if !provides.is_empty() {
        parts.push(format!("provides {}", list(provides)));
    }
    if !requires.is_empty() {
        parts.push(format!("requires {}", list(requires)));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Writes `header` and `rows` as left-aligned columns two spaces apart, each as wide as its widest
/// cell up to [`MAX_COLUMN_WIDTH`] characters; the last column is not padded. The cells must be
/// escaped already.
fn write_table<const N: usize>(
    header: &[String; N],
    rows: &[[String; N]],
    out: &mut impl Write,
) -> io::Result<()> {
    let width = |cell: &String| cell.chars().count();
    let mut widths = [0; N];
    for row in std::iter::once(header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell).min(MAX_COLUMN_WIDTH));
        }
    }
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < N {
                // Padding by hand: a format width (`{:w$}`) panics beyond u16::MAX.
                line.extend(std::iter::repeat_n(' ', w.saturating_sub(width(cell))));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `plughost run COMMAND --help`: the usage line and description the command's plugin declares
/// for it, and which plugin that is.
pub(crate) fn command_help(
    host: &PluginHost,
    command: &str,
    prefix: &str,
    out: &mut impl Write,
) -> Result<(), String> {
    let found = host.plugins().into_iter().find_map(|plugin| {
        let info = plugin.commands.iter().find(|c| c.name == command)?.clone();
        Some((plugin, info))
    });
    let command_shown = escape(command);
    let Some((plugin, info)) = found else {
        // The same error as running an unknown command; or a command its plugin does not list.
        host.command(command).map_err(|e| e.to_string())?;
        return writeln!(
            out,
            "Usage: {prefix}{command_shown} [ARGS]...\n\nIts plugin does not describe it."
        )
        .map_err(|e| super::pipe::output_error(&e));
    };
    let mut write = || -> io::Result<()> {
        let usage = format!(
            "Usage: {prefix}{command_shown} {}",
            escape(info.usage.trim())
        );
        writeln!(out, "{}", usage.trim_end())?;
        if !info.description.is_empty() {
            writeln!(out, "\n{}", escape(&info.description))?;
        }
        writeln!(
            out,
            "\nFrom the plugin {} {} ({})",
            escape(&plugin.name),
            escape(&plugin.version),
            quote_path(&plugin.path)
        )
    };
    write().map_err(|e| super::pipe::output_error(&e))
}

/// `plughost inspect FILE`: one line per finding, then the verdict; or with `json`, the same as
/// one JSON object ([`super::json::inspect`]). The plugin's strings are shown up to the ABI's
/// limit for each, so that an over-long one (which refuses the plugin) does not flood the
/// terminal. Failure if the library would be refused.
pub(crate) fn inspect(file: &Path, allow_insecure: bool, json: bool) -> Result<ExitCode, String> {
    let (seen, error) = plughost::inspect_with(file, allow_insecure);
    let verdict = if error.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    };
    if json {
        let mut out = io::stdout().lock();
        super::json::inspect(file, &seen, error.as_ref(), &mut out)
            .and_then(|()| out.flush())
            .map_err(|e| super::pipe::output_error(&e))?;
        return Ok(verdict);
    }
    // The report is written at the end, in one piece.
    let report = std::cell::RefCell::new(String::new());
    let row = |label: &str, value: &dyn std::fmt::Display| {
        use std::fmt::Write as _;
        let label = format!("{label}:");
        // Writing to a `String` cannot fail.
        let _ = writeln!(report.borrow_mut(), "{label:<20}{value}");
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    row("file", &quote_path(file));
    row("opened", &yes_no(seen.opened));
    if seen.opened {
        row(
            "entry point",
            &format!("{} ({PH_ENTRY_POINT_SYMBOL})", yes_no(seen.entry_point)),
        );
    }
    if let Some((major, minor)) = seen.abi_version {
        row(
            "ABI version",
            &format!("{major}.{minor} (host {PH_ABI_VERSION_MAJOR}.{PH_ABI_VERSION_MINOR})"),
        );
    }
    if let Some(size) = seen.descriptor_size {
        row("descriptor", &format!("{size} bytes"));
    }
    match seen.layout {
        Some(LayoutCheck::Passed) => row(
            "type layout",
            &match seen.abi_version {
                Some((major, minor)) if minor < PH_ABI_VERSION_MINOR => {
                    format!("matches ABI {major}.{minor}'s, as the host keeps it (abi_stable)")
                }
                _ => "matches the host's (abi_stable)".into(),
            },
        ),
        Some(LayoutCheck::NotCarried) => row(
            "type layout",
            &"not carried (a C plugin: ABI version and sizes checked only)",
        ),
        Some(LayoutCheck::Linked) => row("type layout", &"linked in (checked by the compiler)"),
        None => {}
    }
    if let Some(size) = seen.vtable_size {
        row("function table", &format!("{size} bytes"));
    }
    let minor = seen
        .abi_version
        .map_or(PH_ABI_VERSION_MINOR, |(_, minor)| minor);
    for (name, present) in &seen.functions {
        let state = match (*present, plughost::is_optional_function(name, minor)) {
            (true, _) => "present",
            (false, true) => "absent (optional)",
            (false, false) => "MISSING (required)",
        };
        row(name, &state);
    }
    for (label, value, max) in [
        ("name", &seen.name, PH_MAX_NAME_LEN),
        ("version", &seen.version, PH_MAX_VERSION_LEN),
        ("description", &seen.description, PH_MAX_DESCRIPTION_LEN),
    ] {
        if let Some(value) = value {
            row(label, &escape_at_most(value, max));
        }
    }
    for (label, list) in [("provides", &seen.provides), ("requires", &seen.requires)] {
        for interface in list.iter() {
            row(label, &escape(&interface.to_string()));
        }
    }
    match error {
        None => row("result", &"loadable (init not called)"),
        Some(error) => row(
            "result",
            &format!("refused: {}", escape(&error.kind.to_string())),
        ),
    }
    let report = report.into_inner();
    super::pipe::println(format_args!("{}", report.trim_end()))?;
    Ok(verdict)
}

/// One file's `validate` results as a table: the file, then one row per check.
pub(crate) fn validate_table(file: &Path, results: &[CheckResult]) -> Result<(), String> {
    super::pipe::println(format_args!("{}", quote_path(file)))?;
    for r in results {
        super::pipe::println(format_args!(
            "  {:<10} {:<28} {}",
            r.status.name(),
            r.check,
            escape(&r.message)
        ))?;
    }
    Ok(())
}

/// The `validate --json` report: one object per file, its name lossily decoded, the whole made
/// safe for a terminal by [`json_for_terminal`].
pub(crate) fn validate_json(reports: &[(&Path, Vec<CheckResult>)]) -> Result<(), String> {
    let reports: Vec<serde_json::Value> = reports
        .iter()
        .map(|(file, checks)| {
            serde_json::json!({ "file": file.to_string_lossy(), "checks": checks })
        })
        .collect();
    let text = serde_json::to_string_pretty(&reports).map_err(|e| e.to_string())?;
    super::pipe::println(format_args!("{}", json_for_terminal(&text)))
}

/// The binary's log format: `[TIME LEVEL TARGET] MESSAGE` on one line, the target and message
/// escaped (plugins log through the host, and choose both).
pub(crate) fn log_record(
    out: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> io::Result<()> {
    writeln!(
        out,
        "[{} {:<5} {}] {}",
        out.timestamp(),
        record.level(),
        escape(record.target()),
        escape(&record.args().to_string())
    )
}
