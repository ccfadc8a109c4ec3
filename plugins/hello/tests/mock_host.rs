//! `hello` through the mock host: its command reads the state its subscription writes.

use hello::Hello;
use plughost_testing::{MockHost, PublishedEvent};
use plugin_api::abi::PhResult;

#[test]
fn greets_with_the_last_event_it_saw() {
    let mut host = MockHost::new();
    host.load::<Hello>().unwrap();
    assert_eq!(host.commands(), ["hello"]);
    assert_eq!(host.subscriptions(), ["*"]);
    assert_eq!(
        host.run("hello", &["Ada"]).unwrap(),
        "Hello, Ada! Last seen: \n"
    );
    host.publish("greeting.sent", b"to Ada").unwrap();
    assert_eq!(
        host.run("hello", &["Grace"]).unwrap(),
        "Hello, Grace! Last seen: greeting.sent\n"
    );
    // It publishes nothing itself.
    let published: Vec<PublishedEvent> = host.published();
    assert!(published.is_empty(), "{published:?}");
    host.shutdown();
}

#[test]
fn its_argument_is_checked_in_one_line() {
    let mut host = MockHost::new();
    host.load::<Hello>().unwrap();
    let missing = host.run("hello", &[]).unwrap_err();
    assert_eq!(missing.code(), PhResult::Error);
    assert_eq!(missing.message(), "missing argument 1");
    let extra = host.run("hello", &["Ada", "Lovelace"]).unwrap_err();
    assert_eq!(extra.message(), "unexpected argument `Lovelace`");
}

#[test]
fn the_mock_host_shows_the_version_and_description_of_its_cargo_toml() {
    let mut host = MockHost::new();
    host.load::<Hello>().unwrap();
    let plugins = host.host().plugins();
    let hello = plugins.iter().find(|p| p.name == "hello").unwrap();
    assert_eq!(hello.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(hello.description, env!("CARGO_PKG_DESCRIPTION"));
    host.shutdown();
}

/// A plugin defined outside the package's library (here, in this test's own crate).
struct Elsewhere;

impl plugin_api::Plugin for Elsewhere {
    const NAME: &'static str = "elsewhere";
    fn init(_host: &plugin_api::Host) -> plugin_api::Result<Self> {
        Ok(Elsewhere)
    }
}

#[test]
fn a_plugin_from_outside_the_packages_library_gets_no_borrowed_version() {
    let mut host = MockHost::new();
    host.load::<Elsewhere>().unwrap();
    let plugins = host.host().plugins();
    let elsewhere = plugins.iter().find(|p| p.name == "elsewhere").unwrap();
    assert_eq!(elsewhere.version, "");
    assert_eq!(elsewhere.description, "");
    host.shutdown();
}
