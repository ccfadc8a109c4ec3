//! `plughost list --json` and `plughost inspect --json`: the same facts as the tables, as one JSON
//! object on standard output, for programs. Their fields are documented in `docs/cli-json.md`;
//! a field is only ever added, never renamed or given another meaning.
//!
//! Strings are the plugins' own, not escaped for the terminal as in the tables; the JSON text as a
//! whole is made safe for a terminal by [`json_for_terminal`] (control and invisible characters as
//! `\uXXXX` escapes, which every JSON parser reads back). File names that are not UTF-8 are
//! decoded lossily.

use std::io::{self, Write};
use std::path::Path;

use plughost::{Inspection, InterfaceVersion, LayoutCheck, LoadError, PluginHost, PluginState};
use plugin_api::abi::{
    PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR, PH_MAX_DESCRIPTION_LEN, PH_MAX_NAME_LEN,
    PH_MAX_VERSION_LEN,
};
use serde_json::{json, Value};

use super::escape::json_for_terminal;

/// An ABI version as `{"major": M, "minor": m}`.
fn abi_version((major, minor): (u16, u16)) -> Value {
    json!({ "major": major, "minor": minor })
}

/// What the type layout check found: `checked` (abi_stable's check ran and passed),
/// `not-carried` (a C plugin: no layout data), `linked` (linked into the application).
fn layout(check: LayoutCheck) -> &'static str {
    match check {
        LayoutCheck::Passed => "checked",
        LayoutCheck::NotCarried => "not-carried",
        LayoutCheck::Linked => "linked",
    }
}

/// The state of a listed plugin: `active`, `faulted`, or (not seen by `list`) `initializing`,
/// `shutting-down`, `shut-down`.
fn state(state: PluginState) -> &'static str {
    match state {
        PluginState::Initializing => "initializing",
        PluginState::Active => "active",
        PluginState::ShuttingDown => "shutting-down",
        PluginState::ShutDown => "shut-down",
        PluginState::Faulted => "faulted",
    }
}

/// An interface a plugin provides: `{"id", "major", "minor"}`.
fn provided(interface: &InterfaceVersion) -> Value {
    json!({ "id": interface.id, "major": interface.major, "minor": interface.minor })
}

/// An interface a plugin requires: `{"id", "major", "minor", "optional"}`, `minor` being the
/// least minor version it accepts.
fn required(interface: &InterfaceVersion) -> Value {
    json!({
        "id": interface.id,
        "major": interface.major,
        "minor": interface.minor,
        "optional": interface.optional,
    })
}

/// A file name for JSON: lossily decoded.
fn file(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A refused library: `{"file", "reason"}`, the reason being the line `list` prints after the
/// file name.
fn refusal(error: &LoadError) -> Value {
    json!({ "file": file(&error.path), "reason": error.kind.to_string() })
}

/// Writes `value` pretty-printed and made safe for a terminal, then a newline.
fn write(value: &Value, out: &mut impl Write) -> io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    writeln!(out, "{}", json_for_terminal(&text))
}

/// `plughost list --json`: the host's ABI version, the plugins folder, the loaded plugins and the
/// refused libraries.
pub(crate) fn list(host: &PluginHost, folder: &Path, out: &mut impl Write) -> io::Result<()> {
    let plugins: Vec<Value> = host
        .plugins()
        .iter()
        .map(|p| {
            let commands: Vec<Value> = p
                .commands
                .iter()
                .map(|c| json!({ "name": c.name, "description": c.description, "usage": c.usage }))
                .collect();
            json!({
                "name": p.name,
                "version": p.version,
                "description": p.description,
                "file": file(&p.path),
                "abi_version": abi_version(p.abi_version),
                "layout": layout(p.layout),
                "state": state(p.state),
                "fault": p.fault,
                "commands": commands,
                "provides": p.provides.iter().map(provided).collect::<Vec<_>>(),
                "requires": p.requires.iter().map(required).collect::<Vec<_>>(),
            })
        })
        .collect();
    let refused: Vec<Value> = host.refused().iter().map(refusal).collect();
    let report = json!({
        "host_abi_version": abi_version((PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR)),
        "plugins_folder": file(folder),
        "plugins": plugins,
        "refused": refused,
    });
    write(&report, out)
}

/// `text` cut to its first `max` bytes at a character boundary: a string over the ABI's limit
/// refuses the plugin, and the refusal says how long it was.
fn at_most(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `plughost inspect --json FILE`: what the host found before `init`, and whether it would load.
/// A field the inspection did not reach is `null` (or an empty list).
pub(crate) fn inspect(
    path: &Path,
    seen: &Inspection,
    error: Option<&LoadError>,
    out: &mut impl Write,
) -> io::Result<()> {
    let functions: Vec<Value> = seen
        .functions
        .iter()
        .map(|(name, present)| json!({ "name": name, "present": present }))
        .collect();
    let report = json!({
        "file": file(path),
        "host_abi_version": abi_version((PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR)),
        "opened": seen.opened,
        "entry_point": seen.entry_point,
        "abi_version": seen.abi_version.map(abi_version),
        "descriptor_size": seen.descriptor_size,
        "layout": seen.layout.map(layout),
        "function_table_size": seen.vtable_size,
        "functions": functions,
        "name": seen.name.as_deref().map(|s| at_most(s, PH_MAX_NAME_LEN)),
        "version": seen.version.as_deref().map(|s| at_most(s, PH_MAX_VERSION_LEN)),
        "description": seen.description.as_deref().map(|s| at_most(s, PH_MAX_DESCRIPTION_LEN)),
        "provides": seen.provides.iter().map(provided).collect::<Vec<_>>(),
        "requires": seen.requires.iter().map(required).collect::<Vec<_>>(),
        "loadable": error.is_none(),
        "refused": error.map(|e| e.kind.to_string()),
    });
    write(&report, out)
}
