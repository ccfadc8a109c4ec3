//! Handlers bound to the plugin's state (`Host::command`, `Host::on`), through the mock host (the
//! real host's core): they get `&Self` from the return of `init` until `shutdown`, never before
//! or after, and their arguments parsed.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use plughost_testing::MockHost;
use plugin_api::abi::PhResult;
use plugin_api::{Args, Error, Event, FromArgs, Host, Plugin};

/// Counts events, greets with a greeting of its state, and reports its count at shutdown.
struct Counter {
    greeting: String,
    seen: AtomicU64,
}

/// What each `Counter::shutdown` found in its state (the tests run in parallel: only
/// `handlers_get_the_state_that_init_returned` counts two events).
static COUNTER_AT_SHUTDOWN: Mutex<Vec<u64>> = Mutex::new(Vec::new());

impl Plugin for Counter {
    const NAME: &'static str = "counter";

    fn init(host: &Host) -> Result<Self, Error> {
        host.command(
            "greet",
            |me: &Self, (name, times): (String, Option<u32>), out| {
                for _ in 0..times.unwrap_or(1) {
                    writeln!(out, "{}, {name}!", me.greeting)?;
                }
                Ok(())
            },
        )?;
        host.command("seen", |me: &Self, (): (), out| {
            writeln!(out, "{}", me.seen.load(Ordering::Relaxed))?;
            Ok(())
        })?;
        host.on("tick", |me: &Self, event: &Event<'_>| {
            assert_eq!(event.topic, "tick");
            me.seen.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })?;
        // Published before the state exists: the bound handler must not run for it.
        host.publish("tick", b"during init")?;
        Ok(Counter {
            greeting: "Hello".to_owned(),
            seen: AtomicU64::new(0),
        })
    }

    fn shutdown(self, _host: &Host) {
        COUNTER_AT_SHUTDOWN
            .lock()
            .unwrap()
            .push(self.seen.into_inner());
    }
}

#[test]
fn handlers_get_the_state_that_init_returned() {
    let mut host = MockHost::new();
    host.load::<Counter>().unwrap();
    assert_eq!(
        host.run("greet", &["Ada", "2"]).unwrap(),
        "Hello, Ada!\nHello, Ada!\n"
    );
    host.publish("tick", b"").unwrap();
    host.publish("tick", b"").unwrap();
    assert_eq!(host.run("seen", &[]).unwrap(), "2\n");
    host.shutdown();
    // `shutdown` got the state by value, with what the handlers did to it.
    assert!(COUNTER_AT_SHUTDOWN.lock().unwrap().contains(&2));
    // And nothing of the plugin is called any more.
    let gone = host.run("seen", &[]).unwrap_err();
    assert_eq!(gone.code(), PhResult::NotFound);
}

#[test]
fn an_event_before_init_returned_does_not_reach_the_handler() {
    let mut host = MockHost::new();
    host.load::<Counter>().unwrap();
    // The event the plugin published in `init` was not counted...
    assert_eq!(host.run("seen", &[]).unwrap(), "0\n");
    // ...and the host was told why, in one line.
    let warnings: Vec<_> = host
        .logs()
        .into_iter()
        .filter(|r| r.level == log::Level::Warn)
        .map(|r| r.message)
        .collect();
    assert_eq!(
        warnings,
        [
            "handler of `tick`: the plugin's state is not available: its init has not returned, \
          or its shutdown began"
        ]
    );
}

#[test]
fn arguments_that_do_not_parse_are_one_line_errors() {
    let mut host = MockHost::new();
    host.load::<Counter>().unwrap();
    let error = host.run("greet", &[]).unwrap_err();
    assert_eq!(error.code(), PhResult::Error);
    assert_eq!(error.message(), "missing argument 1");
    let error = host.run("greet", &["Ada", "twice"]).unwrap_err();
    assert_eq!(
        error.message(),
        "argument 2: invalid value `twice`: invalid digit found in string"
    );
    let error = host.run("seen", &["now"]).unwrap_err();
    assert_eq!(error.message(), "unexpected argument `now`");
}

/// `--limit N`, parsed by hand with `Args`.
#[derive(Debug, PartialEq)]
struct Limit(usize);

impl FromArgs for Limit {
    fn from_args(args: &mut Args<'_>) -> Result<Self, Error> {
        if args.take_flag("--limit") {
            return args.value("--limit").map(Limit);
        }
        Ok(Limit(usize::MAX))
    }
}

/// A plugin with a typed form of its own.
struct Lister;

impl Plugin for Lister {
    const NAME: &'static str = "lister";
    const VERSION: &'static str = "1.2.3";
    const DESCRIPTION: &'static str = "Lists";

    fn init(host: &Host) -> Result<Self, Error> {
        host.command("list", |_: &Self, limit: Limit, out| {
            writeln!(out, "{}", limit.0.min(3))?;
            Ok(())
        })?;
        Ok(Lister)
    }
}

#[test]
fn a_typed_form_of_the_plugins_own() {
    let mut host = MockHost::new();
    host.load::<Lister>().unwrap();
    assert_eq!(host.run("list", &[]).unwrap(), "3\n");
    assert_eq!(host.run("list", &["--limit", "1"]).unwrap(), "1\n");
    assert_eq!(
        host.run("list", &["--limit"]).unwrap_err().message(),
        "--limit: missing value"
    );
    assert_eq!(
        host.run("list", &["--limit", "1", "2"])
            .unwrap_err()
            .message(),
        "unexpected argument `2`"
    );
}

/// Binds a handler to a type that is not its state.
struct Confused;

impl Plugin for Confused {
    const NAME: &'static str = "confused";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Binds to the wrong type";

    fn init(host: &Host) -> Result<Self, Error> {
        host.command("oops", |_: &Lister, (): (), _| Ok(()))?;
        Ok(Confused)
    }
}

#[test]
fn a_handler_of_another_type_is_refused_at_registration() {
    let mut host = MockHost::new();
    let error = host.load::<Confused>().unwrap_err();
    assert_eq!(error.code(), PhResult::InvalidArgument);
    let logged: Vec<_> = host.logs().into_iter().map(|r| r.message).collect();
    assert!(
        logged.iter().any(|m| m.contains(
            "command `oops`: bound to `&bound::Lister`, but this plugin's state is \
             `bound::Confused`"
        )),
        "{logged:?}"
    );
    assert!(host.commands().is_empty());
}

/// Registers bound handlers, then fails its `init`.
struct Failing;

/// How many times a handler of `Failing` ran.
static FAILING_CALLS: AtomicU64 = AtomicU64::new(0);

impl Plugin for Failing {
    const NAME: &'static str = "failing";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Fails after registering";

    fn init(host: &Host) -> Result<Self, Error> {
        host.on("*", |_: &Self, _| {
            FAILING_CALLS.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })?;
        host.publish("failing.started", b"")?;
        Err(Error::new("no state today"))
    }
}

#[test]
fn a_failed_init_leaves_no_state_and_no_registration() {
    let mut host = MockHost::new();
    assert_eq!(host.load::<Failing>().unwrap_err().code(), PhResult::Error);
    assert!(host.subscriptions().is_empty());
    host.publish("anything", b"").unwrap();
    assert_eq!(FAILING_CALLS.load(Ordering::Relaxed), 0);
}

/// The same plugin type loaded by two hosts: each instance has a state of its own.
#[test]
fn each_load_has_its_own_state() {
    let mut first = MockHost::new();
    let mut second = MockHost::new();
    first.load::<Counter>().unwrap();
    second.load::<Counter>().unwrap();
    first.publish("tick", b"").unwrap();
    assert_eq!(first.run("seen", &[]).unwrap(), "1\n");
    assert_eq!(second.run("seen", &[]).unwrap(), "0\n");
    first.shutdown();
    second.publish("tick", b"").unwrap();
    assert_eq!(second.run("seen", &[]).unwrap(), "1\n");
}
