//! The mock host is the real host's core: a plugin under test meets the limits, fault rules,
//! event order and error codes of `plughost`, and a failing assertion in a test's closure fails
//! that test like any other.

use std::io::Write;
use std::sync::Mutex;

use plughost::PluginState;
use plughost_testing::MockHost;
use plugin_api::abi::{PhResult, PH_MAX_REGISTRATIONS_PER_PLUGIN};
use plugin_api::{Command, Error, Host, Plugin};

/// Registers subscriptions until the host refuses one, which must be with `LIMIT_EXCEEDED`.
struct Greedy;

impl Plugin for Greedy {
    const NAME: &'static str = "greedy";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Registers until the host says no";

    fn init(host: &Host) -> Result<Self, Error> {
        let mut accepted = 0;
        let refusal = loop {
            match host.subscribe("some.topic", |_| Ok(())) {
                Ok(_) => accepted += 1,
                Err(e) => break e.code(),
            }
            if accepted > 10 * PH_MAX_REGISTRATIONS_PER_PLUGIN {
                break PhResult::Ok;
            }
        };
        assert_eq!(refusal, PhResult::LimitExceeded, "after {accepted}");
        Ok(Greedy)
    }
}

#[test]
fn registrations_are_limited_as_in_the_real_host() {
    let mut host = MockHost::new();
    // An assertion that fails inside `init` panics there: the load fails.
    host.load::<Greedy>().unwrap();
    assert_eq!(
        host.subscriptions().len(),
        PH_MAX_REGISTRATIONS_PER_PLUGIN,
        "the host's per-plugin limit applies"
    );
    host.shutdown();
    assert!(host.subscriptions().is_empty());
}

/// Records the order in which its handlers see events, and panics in the command `boom`.
struct Order;

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl Plugin for Order {
    const NAME: &'static str = "order";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Event order and faults";

    fn init(host: &Host) -> Result<Self, Error> {
        // Subscribed to `*` first: the host still delivers to the topic's own subscribers first.
        host.subscribe("*", |e| {
            SEEN.lock().unwrap().push(format!("*:{}", e.topic));
            Ok(())
        })?;
        host.subscribe("order.ping", |e| {
            SEEN.lock().unwrap().push(format!("topic:{}", e.topic));
            Ok(())
        })?;
        host.register_command(Command::new("boom"), |_, _| panic!("boom"))?;
        host.register_command(Command::new("fine"), |_, out| {
            writeln!(out, "fine")?;
            Ok(())
        })?;
        // The host's error codes, as a plugin sees them.
        let duplicate = host.register_command(Command::new("fine"), |_, _| Ok(()));
        assert_eq!(duplicate.unwrap_err().code(), PhResult::AlreadyExists);
        let bad_topic = host.subscribe("no spaces", |_| Ok(()));
        assert_eq!(bad_topic.unwrap_err().code(), PhResult::InvalidArgument);
        let empty = host.publish("", b"");
        assert_eq!(empty.unwrap_err().code(), PhResult::InvalidArgument);
        Ok(Order)
    }
}

#[test]
fn event_order_faults_and_error_codes_are_the_real_hosts() {
    let mut host = MockHost::new();
    host.load::<Order>().unwrap();
    host.publish("order.ping", b"").unwrap();
    assert_eq!(
        *SEEN.lock().unwrap(),
        ["topic:order.ping", "*:order.ping"],
        "topic subscribers first, then `*`"
    );
    assert_eq!(host.run("fine", &[]).unwrap(), "fine\n");

    let error = host.run("boom", &[]).unwrap_err();
    assert_eq!(error.code(), PhResult::Panicked);
    // The fault rule: the plugin is faulted, its registrations are gone, it gets no more calls.
    let plugin = &host.host().plugins()[0];
    assert_eq!(plugin.state, PluginState::Faulted);
    assert!(plugin.fault.as_deref().unwrap().contains("`boom` panicked"));
    assert_eq!(
        host.run("fine", &[]).unwrap_err().code(),
        PhResult::NotFound
    );
    assert!(host.subscriptions().is_empty());
    assert!(host
        .logs()
        .iter()
        .any(|r| r.plugin == "order" && r.message.contains("panic in command `boom`: boom")));
}

/// One command, `hello`, that logs to its host.
struct Logs;

impl Plugin for Logs {
    const NAME: &'static str = "logs";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Logs from init and from a command";

    fn init(host: &Host) -> Result<Self, Error> {
        log::info!("init");
        host.register_command(Command::new("hello").usage("WORD"), |args, _| {
            log::info!("hello {}", args[0]);
            Ok(())
        })?;
        Ok(Logs)
    }
}

#[test]
#[should_panic(expected = "an assertion of the test")]
fn a_failing_assertion_in_an_enumeration_closure_fails_the_test() {
    let mut host = MockHost::new();
    host.load::<Logs>().unwrap();
    // The closure runs on this thread outside plugin code: its panic unwinds to the test harness
    // (an abort would end the whole test binary instead).
    let _ = host.enumerate_commands("logs", |c| {
        assert_eq!(c.usage, "something else", "an assertion of the test");
        true
    });
}

#[test]
fn parallel_mock_hosts_keep_their_own_log_records() {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for round in 0..50 {
                    let mut host = MockHost::new();
                    host.load::<Logs>().unwrap();
                    let word = format!("{t}-{round}");
                    host.run("hello", &[&word]).unwrap();
                    host.shutdown();
                    let messages: Vec<String> =
                        host.logs().into_iter().map(|r| r.message).collect();
                    assert_eq!(messages, ["init".to_owned(), format!("hello {word}")]);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn the_configuration_reaches_plugins_loaded_afterwards() {
    struct Reads;
    impl Plugin for Reads {
        const NAME: &'static str = "reads";
        const VERSION: &'static str = "1.0.0";
        const DESCRIPTION: &'static str = "Reads its configuration";
        fn init(host: &Host) -> Result<Self, Error> {
            let value = host.config("answer")?;
            host.register_command(Command::new("answer"), move |_, out| {
                writeln!(out, "{value:?}")?;
                Ok(())
            })?;
            Ok(Reads)
        }
    }
    let mut host = MockHost::new();
    host.set_config("reads", "answer", "forty-two");
    host.load::<Reads>().unwrap();
    assert_eq!(host.run("answer", &[]).unwrap(), "Some(\"forty-two\")\n");
}

#[test]
fn a_refused_descriptor_names_the_check() {
    let mut host = MockHost::new();
    host.load::<Logs>().unwrap();
    let error = host.load::<Logs>().unwrap_err();
    assert_eq!(error.code(), PhResult::InvalidArgument);
    assert!(error.message().contains("<linked>"), "{}", error.message());
    assert!(error.message().contains("`logs`"), "{}", error.message());
}

/// Fails its `init`, or its command, with an error whose code is `Ok` (`Error::with_code` takes
/// any code): the failure must not cross the boundary as success.
struct FailsWithOk<const IN_INIT: bool>;

impl<const IN_INIT: bool> Plugin for FailsWithOk<IN_INIT> {
    const NAME: &'static str = "fails-with-ok";

    fn init(host: &Host) -> Result<Self, Error> {
        if IN_INIT {
            return Err(Error::with_code(PhResult::Ok, "no database"));
        }
        host.register_command("odd".into(), |_, _| {
            Err(Error::with_code(PhResult::Ok, "not today"))
        })?;
        host.subscribe("odd.topic", |_| Err(Error::with_code(PhResult::Ok, "nope")))?;
        Ok(FailsWithOk)
    }
}

#[test]
fn an_error_made_with_code_ok_still_fails_init_and_commands() {
    let mut host = MockHost::new();
    let error = host.load::<FailsWithOk<true>>().unwrap_err();
    assert_ne!(error.code(), PhResult::Ok, "{error}");
    assert!(host.commands().is_empty());

    let mut host = MockHost::new();
    host.load::<FailsWithOk<false>>().unwrap();
    let error = host.run("odd", &[]).unwrap_err();
    assert_eq!(
        (error.code(), error.message()),
        (PhResult::Error, "not today")
    );
    // An event handler's error is logged, and the plugin goes on serving.
    host.publish("odd.topic", b"").unwrap();
    assert!(host.logs().iter().any(|r| r.message.ends_with("nope")));
    assert!(host.run("odd", &[]).is_err());
}

/// How many topics [`Routing`] subscribes to, one handler each: enough that most bits of the
/// host's topic filter are set, so that topics nobody subscribes to also pass the filter.
const ROUTED_TOPICS: usize = 600;

/// What [`Routing`]'s handlers saw, in order: `HANDLER:TOPIC`.
static ROUTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Subscribes to `*` first, then to [`ROUTED_TOPICS`] topics `route.N`, then once more to
/// `route.7`; the command `unsubscribe-all` ends the `*` subscription.
struct Routing;

impl Plugin for Routing {
    const NAME: &'static str = "routing";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Topic and wildcard subscribers";

    fn init(host: &Host) -> Result<Self, Error> {
        let all = host.subscribe("*", |e| {
            ROUTED.lock().unwrap().push(format!("*:{}", e.topic));
            Ok(())
        })?;
        for i in 0..ROUTED_TOPICS {
            host.subscribe(&format!("route.{i}"), move |e| {
                ROUTED
                    .lock()
                    .unwrap()
                    .push(format!("route.{i}:{}", e.topic));
                Ok(())
            })?;
        }
        host.subscribe("route.7", |e| {
            ROUTED.lock().unwrap().push(format!("second:{}", e.topic));
            Ok(())
        })?;
        let h = host.clone();
        host.register_command(Command::new("unsubscribe-all"), move |_, _| {
            h.unregister(all)?;
            Ok(())
        })?;
        Ok(Routing)
    }
}

/// What one publish delivered to [`Routing`]'s handlers.
fn routed(host: &MockHost, topic: &str) -> Vec<String> {
    ROUTED.lock().unwrap().clear();
    host.publish(topic, b"").unwrap();
    std::mem::take(&mut *ROUTED.lock().unwrap())
}

#[test]
fn a_wildcard_subscriber_gets_every_topic_after_the_topics_own_subscribers() {
    let mut host = MockHost::new();
    host.load::<Routing>().unwrap();
    // Topic subscribers first (in subscription order), then `*`, though `*` subscribed first.
    assert_eq!(
        routed(&host, "route.7"),
        ["route.7:route.7", "second:route.7", "*:route.7"]
    );
    for i in 0..ROUTED_TOPICS {
        let topic = format!("route.{i}");
        let mut expected = vec![format!("{topic}:{topic}")];
        if i == 7 {
            expected.push(format!("second:{topic}"));
        }
        expected.push(format!("*:{topic}"));
        assert_eq!(routed(&host, &topic), expected);
    }
    // Topics without subscribers of their own reach `*` alone, whatever their hash.
    for i in 0..2 * ROUTED_TOPICS {
        let topic = format!("nobody.{i}");
        assert_eq!(routed(&host, &topic), [format!("*:{topic}")]);
        // A prefix or an extension of a subscribed topic is another topic.
        for other in [format!("route.{i}x"), format!("route.{i}.{i}")] {
            assert_eq!(routed(&host, &other), [format!("*:{other}")]);
        }
    }
    for topic in ["r", "ro", "rou", "rout", "route", "route.", "A-Z_a-z.0-9"] {
        assert_eq!(routed(&host, topic), [format!("*:{topic}")]);
    }
    // Invalid topics still fail, as before, and reach nobody.
    for topic in ["", "no spaces", "*", "caf\u{e9}"] {
        let error = host.publish(topic, b"").unwrap_err();
        assert_eq!(error.code(), PhResult::InvalidArgument, "{topic:?}");
    }
    assert!(ROUTED.lock().unwrap().is_empty());
    let long = "t".repeat(plugin_api::abi::PH_MAX_TOPIC_LEN + 1);
    assert_eq!(
        host.publish(&long, b"").unwrap_err().code(),
        PhResult::InvalidArgument
    );

    // Without the `*` subscriber: only the topic's own subscribers, and nobody for the rest.
    host.run("unsubscribe-all", &[]).unwrap();
    assert_eq!(
        routed(&host, "route.7"),
        ["route.7:route.7", "second:route.7"]
    );
    assert_eq!(routed(&host, "route.599"), ["route.599:route.599"]);
    for i in 0..ROUTED_TOPICS {
        assert!(routed(&host, &format!("nobody.{i}")).is_empty());
    }
}
