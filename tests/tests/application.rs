//! The embedding application as a participant of the host: its own subscriptions, through
//! [`plughost::PluginHost::subscribe`], among real plugins.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use integration_tests::{host_with, run};
use plughost::{HostError, PluginState};
use plugin_api::abi::PhResult;

/// Counts the drops of the closure that holds it: the host's `destroy` of the subscription.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn code(error: HostError) -> PhResult {
    match error {
        HostError::Code { code, .. } => code,
        other => panic!("not a code: {other}"),
    }
}

#[test]
fn the_application_receives_what_plugins_publish() {
    let (host, dir) = host_with(&["wordfreq", "journal"]);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let totals = Arc::clone(&seen);
    host.subscribe("wordfreq.totals", move |topic, payload| {
        totals
            .lock()
            .unwrap()
            .push(format!("{topic} {}", String::from_utf8_lossy(payload)));
    })
    .unwrap();
    let file = dir.path().join("words.txt");
    std::fs::write(&file, "one two two").unwrap();
    run(&host, "wordfreq", &[file.to_str().unwrap()]).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["wordfreq.totals files=1 words=3 distinct=2 bytes=11"]
    );
    // The application's subscription is not a plugin's: the journal saw the event as usual, and
    // the application is not listed among the plugins.
    let journal = run(&host, "journal", &[]).unwrap();
    assert!(journal.contains("wordfreq.totals"), "{journal}");
    assert_eq!(host.plugins().len(), 2);
    assert!(host
        .subscriptions()
        .contains(&("wordfreq.totals".to_owned(), "application".to_owned())));
}

#[test]
fn a_panicking_handler_of_the_application_harms_nobody() {
    let (host, _dir) = host_with(&["journal"]);
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    host.subscribe("app.event", move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        panic!("the application's handler panics");
    })
    .unwrap();
    host.publish("app.event", b"1").unwrap();
    host.publish("app.event", b"2").unwrap();
    // Still subscribed, and the plugin that also received the events is still active.
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(host.plugins()[0].state, PluginState::Active);
    let journal = run(&host, "journal", &[]).unwrap();
    assert!(journal.contains("app.event"), "{journal}");
}

#[test]
fn each_subscription_of_the_application_is_destroyed_exactly_once() {
    let (mut host, _dir) = host_with(&["journal"]);
    let drops = Arc::new(AtomicUsize::new(0));
    let closure = |drops: &Arc<AtomicUsize>| {
        let counter = DropCounter(Arc::clone(drops));
        move |_: &str, _: &[u8]| {
            let _ = &counter;
        }
    };
    // Refused: destroyed before `subscribe` returns.
    let refused = host.subscribe("not a topic", closure(&drops)).unwrap_err();
    assert_eq!(code(refused), PhResult::InvalidArgument);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    // Unregistered: destroyed once; a second unregister is refused.
    let handle = host.subscribe("app.one", closure(&drops)).unwrap();
    host.unregister(handle).unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(
        code(host.unregister(handle).unwrap_err()),
        PhResult::UnknownHandle
    );
    // Still registered at shutdown: destroyed by the shutdown, after the plugins'.
    host.subscribe("*", closure(&drops)).unwrap();
    host.shutdown();
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    // After shutdown: refused, and destroyed at once.
    let late = host.subscribe("app.late", closure(&drops)).unwrap_err();
    assert_eq!(code(late), PhResult::ShutDown);
    assert_eq!(drops.load(Ordering::SeqCst), 4);
    drop(host);
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

#[test]
fn the_application_cannot_end_a_plugins_registration() {
    let (host, _dir) = host_with(&["journal"]);
    // The journal holds the first handles the host gave; none of them is the application's.
    for handle in 1..=8 {
        assert_eq!(
            code(host.unregister(handle).unwrap_err()),
            PhResult::UnknownHandle
        );
    }
    assert_eq!(
        host.subscriptions(),
        [("*".to_owned(), "journal".to_owned())]
    );
}
