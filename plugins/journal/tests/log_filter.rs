//! The host's log level applies on the plugin side. Alone in its test binary: the `log` crate's
//! level is global to the process, and the plugin crate is linked into this test.

use journal::Journal;
use plughost_testing::MockHost;

#[test]
fn info_records_stay_in_the_plugin_when_the_host_filters_them() {
    let mut host = MockHost::with_log_level(log::LevelFilter::Warn);
    host.load::<Journal>().unwrap();
    host.publish("a.topic", b"x").unwrap();
    assert!(host.logs().is_empty(), "{:?}", host.logs());
    assert_eq!(host.run("journal", &[]).unwrap(), "1\ta.topic\tx\n");
}
