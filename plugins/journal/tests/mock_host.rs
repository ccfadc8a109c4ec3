//! `journal` through the mock host.

use journal::Journal;
use plughost_testing::MockHost;

#[test]
fn records_every_topic_with_counts_and_last_payload() {
    let mut host = MockHost::new();
    host.load::<Journal>().unwrap();
    assert_eq!(host.commands(), ["journal"]);
    assert_eq!(host.subscriptions(), ["*"]);
    assert_eq!(host.run("journal", &[]).unwrap(), "");
    host.publish("a.first", b"one").unwrap();
    host.publish("b.second", b"line\nbreak").unwrap();
    host.publish("a.first", b"two").unwrap();
    assert_eq!(
        host.run("journal", &[]).unwrap(),
        "2\ta.first\ttwo\n1\tb.second\tline break\n"
    );
    let events: Vec<String> = host
        .logs()
        .into_iter()
        .filter(|r| r.level == log::Level::Info)
        .map(|r| r.message)
        .collect();
    assert_eq!(
        events,
        [
            "event a.first: one",
            "event b.second: line break",
            "event a.first: two"
        ]
    );
}

#[test]
fn rejects_arguments() {
    let mut host = MockHost::new();
    host.load::<Journal>().unwrap();
    let error = host.run("journal", &["extra"]).unwrap_err();
    assert_eq!(error.message(), "usage: journal (no arguments)");
}
