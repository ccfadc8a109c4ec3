//! `inventory` through the mock host, beside a small plugin defined here.

use inventory::Inventory;
use plughost_testing::MockHost;
use plugin_api::{Command, Error, Host, Plugin};

/// A plugin with two commands, for the inventory to find.
struct Neighbour;

impl Plugin for Neighbour {
    const NAME: &'static str = "neighbour";
    const VERSION: &'static str = "2.0.0";
    const DESCRIPTION: &'static str = "Lives next door";

    fn init(host: &Host) -> Result<Self, Error> {
        host.register_command(
            Command::new("knock").about("Knocks").usage("TIMES"),
            |_, _| Ok(()),
        )?;
        host.register_command(Command::new("wave"), |_, _| Ok(()))?;
        Ok(Neighbour)
    }
}

fn host() -> MockHost {
    let mut host = MockHost::new();
    host.load::<Inventory>().unwrap();
    host.load::<Neighbour>().unwrap();
    host
}

#[test]
fn lists_every_plugin_and_its_commands() {
    let host = host();
    let version = env!("CARGO_PKG_VERSION");
    let abi = format!(
        "{}.{}",
        plugin_api::abi::PH_ABI_VERSION_MAJOR,
        plugin_api::abi::PH_ABI_VERSION_MINOR
    );
    assert_eq!(
        host.run("plugins", &[]).unwrap(),
        format!(
            "inventory {version} (ABI {abi}): Lists the loaded plugins and their commands\n    \
             plugins [--limit N]: Print every loaded plugin and its commands\n\
             neighbour 2.0.0 (ABI {abi}): Lives next door\n    \
             knock TIMES: Knocks\n    \
             wave\n"
        )
    );
}

#[test]
fn limit_stops_the_enumeration() {
    let host = host();
    let out = host.run("plugins", &["--limit", "1"]).unwrap();
    assert!(out.starts_with("inventory "), "{out}");
    assert!(!out.contains("neighbour"), "{out}");
}

#[test]
fn bad_limit_is_an_error() {
    let host = host();
    assert!(host.run("plugins", &["--limit", "x"]).is_err());
}
