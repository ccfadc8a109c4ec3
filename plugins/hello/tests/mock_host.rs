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
