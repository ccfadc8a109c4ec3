//! `inventory`: lists every loaded plugin and its commands.
//!
//! Command `plugins [--limit N]` prints one row per plugin (name, version, ABI version) followed by
//! its commands. Everything is gathered through callbacks, EnumWindows style, in both directions:
//! the host calls this plugin back once per loaded plugin (`enumerate_plugins`), and each plugin
//! calls this plugin back once per command (`enumerate_commands`, through the host). With
//! `--limit N` the plugin callback returns `false` after N plugins, which stops the host's
//! enumeration.

use plugin_api::{Args, Command, Error, FromArgs, Host, Plugin};

/// The plugin: its handle to the host, which its command enumerates through.
pub struct Inventory {
    host: Host,
}

impl Plugin for Inventory {
    const NAME: &'static str = "inventory";
    // Set, though it is the default, so that the mock host (no `export_plugin!` expanded in
    // this crate for it) shows it too.
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Lists the loaded plugins and their commands";

    fn init(host: &Host) -> Result<Self, Error> {
        host.command(
            Command::new("plugins")
                .about("Print every loaded plugin and its commands")
                .usage("[--limit N]"),
            |me: &Self, Limit(limit), out| {
                for row in gather(&me.host, limit)? {
                    writeln!(out, "{}", row.header)?;
                    for command in &row.commands {
                        writeln!(out, "    {command}")?;
                    }
                }
                Ok(())
            },
        )?;
        Ok(Inventory { host: host.clone() })
    }
}

plugin_api::export_plugin!(Inventory);

/// The arguments of `plugins`: `[--limit N]`, at most N plugins (default: all).
struct Limit(usize);

impl FromArgs for Limit {
    fn from_args(args: &mut Args<'_>) -> Result<Self, Error> {
        parse_limit(args.take_rest()).map(Limit)
    }
}

/// One plugin as the inventory shows it.
#[derive(Debug)]
struct Row {
    name: String,
    header: String,
    commands: Vec<String>,
}

fn parse_limit(args: &[&str]) -> Result<usize, Error> {
    match args {
        [] => Ok(usize::MAX),
        ["--limit", n] => n
            .parse()
            .map_err(|_| Error::new(format!("--limit: {n:?} is not a whole number"))),
        _ => Err(Error::new("usage: plugins [--limit N]")),
    }
}

/// Collects up to `limit` plugins and their commands through the host's enumerations.
fn gather(host: &Host, limit: usize) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    host.enumerate_plugins(|plugin| {
        rows.push(Row {
            name: plugin.name.to_owned(),
            header: format!(
                "{} {} (ABI {}.{}): {}",
                plugin.name,
                plugin.version,
                plugin.abi_version.0,
                plugin.abi_version.1,
                plugin.description
            ),
            commands: Vec::new(),
        });
        rows.len() < limit
    })?;
    for row in &mut rows {
        let commands = &mut row.commands;
        host.enumerate_commands(&row.name, |command| {
            let mut line = command.name.to_owned();
            if !command.usage.is_empty() {
                line = format!("{line} {}", command.usage);
            }
            if !command.description.is_empty() {
                line = format!("{line}: {}", command.description);
            }
            commands.push(line);
            true
        })?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::parse_limit;

    #[test]
    fn limit_argument() {
        assert_eq!(parse_limit(&[]).unwrap(), usize::MAX);
        assert_eq!(parse_limit(&["--limit", "2"]).unwrap(), 2);
        assert!(parse_limit(&["--limit", "x"]).is_err());
        assert!(parse_limit(&["2"]).is_err());
    }
}
