//! `journal` with `plughost.kv` provided by the test (a fake in memory): events kept across
//! runs, cleared on demand, and kept in memory when the store fails.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use journal::Journal;
use plughost_kv_api::Kv;
use plughost_testing::MockHost;
use plugin_api::Error;

/// A store in memory that can be made to fail.
#[derive(Default)]
struct FakeKv {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
    failing: AtomicBool,
}

impl FakeKv {
    fn check(&self) -> Result<(), Error> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::new("the fake store fails"));
        }
        Ok(())
    }

    fn keys(&self) -> Vec<String> {
        self.entries.lock().unwrap().keys().cloned().collect()
    }
}

impl Kv for FakeKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.check()?;
        Ok(self.entries.lock().unwrap().get(key).cloned())
    }
    fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.check()?;
        self.entries
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<bool, Error> {
        self.check()?;
        Ok(self.entries.lock().unwrap().remove(key).is_some())
    }
    fn scan(&self, prefix: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), Error> {
        self.check()?;
        let entries = self.entries.lock().unwrap().clone();
        for (key, value) in entries.range(prefix.to_owned()..) {
            if !key.starts_with(prefix) || !f(key, value) {
                break;
            }
        }
        Ok(())
    }
}

/// A mock host whose application provides `fake` as `plughost.kv`, with the journal loaded.
fn journal_with(fake: &Arc<FakeKv>) -> MockHost {
    let mut host = MockHost::new();
    host.provide::<dyn Kv>(Arc::clone(fake) as Arc<dyn Kv>)
        .unwrap();
    host.load::<Journal>().unwrap();
    host
}

#[test]
fn events_are_kept_in_the_store_and_seen_by_the_next_run() {
    let fake = Arc::new(FakeKv::default());
    let mut first = journal_with(&fake);
    first
        .publish("wordfreq.totals", b"files=1 words=3")
        .unwrap();
    first.publish("a.topic", b"line\nbreak").unwrap();
    let keys = fake.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.starts_with("journal/")), "{keys:?}");
    assert_eq!(
        fake.entries.lock().unwrap()[&keys[0]],
        b"wordfreq.totals\tfiles=1 words=3"
    );
    first.shutdown();

    // A later run with the same store sees them, and adds its own.
    let second = journal_with(&fake);
    assert_eq!(
        second.run("journal", &[]).unwrap(),
        "1\ta.topic\tline break\n1\twordfreq.totals\tfiles=1 words=3\n"
    );
    second
        .publish("wordfreq.totals", b"files=2 words=9")
        .unwrap();
    assert_eq!(
        second.run("journal", &[]).unwrap(),
        "1\ta.topic\tline break\n2\twordfreq.totals\tfiles=2 words=9\n"
    );
}

#[test]
fn clear_deletes_the_journal_keys_only() {
    let fake = Arc::new(FakeKv::default());
    fake.put("someone.else", b"kept").unwrap();
    let host = journal_with(&fake);
    host.publish("a", b"1").unwrap();
    host.publish("b", b"2").unwrap();
    assert_eq!(
        host.run("journal", &["--clear"]).unwrap(),
        "cleared 2 events\n"
    );
    assert_eq!(host.run("journal", &[]).unwrap(), "");
    assert_eq!(fake.keys(), ["someone.else"]);
    let error = host.run("journal", &["extra"]).unwrap_err();
    assert_eq!(error.message(), "usage: journal [--clear]");
}

#[test]
fn an_event_the_store_refuses_is_kept_in_memory_with_one_warning() {
    let fake = Arc::new(FakeKv::default());
    let host = journal_with(&fake);
    host.publish("a", b"stored").unwrap();
    fake.failing.store(true, Ordering::SeqCst);
    host.publish("a", b"in memory").unwrap();
    host.publish("b", b"in memory too").unwrap();
    let warnings: Vec<String> = host
        .logs()
        .into_iter()
        .filter(|r| r.level == log::Level::Warn)
        .map(|r| r.message)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("the fake store fails"), "{warnings:?}");
    // The store cannot be read either: this run's unsaved events are shown.
    assert_eq!(
        host.run("journal", &[]).unwrap(),
        "1\ta\tin memory\n1\tb\tin memory too\n"
    );
    fake.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        host.run("journal", &[]).unwrap(),
        "2\ta\tin memory\n1\tb\tin memory too\n"
    );
}

#[test]
fn without_a_store_the_journal_keeps_this_run_only_and_takes_no_arguments() {
    let mut host = MockHost::new();
    host.load::<Journal>().unwrap();
    host.publish("a", b"1").unwrap();
    assert_eq!(host.run("journal", &[]).unwrap(), "1\ta\t1\n");
    let error = host.run("journal", &["--clear"]).unwrap_err();
    assert_eq!(error.message(), "usage: journal (no arguments)");
}
