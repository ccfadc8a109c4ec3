//! The host library ([`plughost::PluginHost`]) on real plugins loaded from a temporary folder.

use integration_tests::{host_with, run, EXAMPLE_PLUGINS};
use plughost::{CommandError, PluginState};

#[test]
fn loads_every_plugin_with_its_commands() {
    let (host, _dir) = host_with(EXAMPLE_PLUGINS);
    let plugins = host.plugins();
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["inventory", "journal", "wordfreq"]);
    let wordfreq = &plugins[2];
    assert_eq!(wordfreq.commands.len(), 1);
    assert_eq!(wordfreq.commands[0].name, "wordfreq");
    assert_eq!(wordfreq.commands[0].usage, "[--top N] FILE...");
    assert_eq!(wordfreq.layout, plughost::LayoutCheck::Passed);
    assert!(plugins.iter().all(|p| p.state == PluginState::Active));
}

#[test]
fn host_stops_enumerating_when_the_plugin_callback_returns_false() {
    let (host, _dir) = host_with(&["wordfreq", "inventory", "journal", "probe"]);
    // The plugin's callback returns false after 2 plugins: the host must not call it again.
    assert_eq!(
        run(&host, "probe-enum-plugins", &["2"]).unwrap(),
        "calls=2 inventory,journal\n"
    );
    assert_eq!(
        run(&host, "probe-enum-plugins", &["100"]).unwrap(),
        "calls=4 inventory,journal,probe,wordfreq\n"
    );
    // The same through the inventory plugin, which also enumerates each plugin's commands.
    let out = run(&host, "plugins", &["--limit", "1"]).unwrap();
    assert_eq!(
        out.lines().filter(|l| !l.starts_with(' ')).count(),
        1,
        "{out}"
    );
    assert!(out.starts_with("inventory "), "{out}");
    let out = run(&host, "plugins", &[]).unwrap();
    assert_eq!(
        out.lines().filter(|l| !l.starts_with(' ')).count(),
        4,
        "{out}"
    );
    assert!(out.contains("    probe-threads THREADS EVENTS\n"), "{out}");
}

#[test]
fn plugin_stops_enumerating_when_the_host_callback_returns_false() {
    let (host, _dir) = host_with(&["probe"]);
    let mut all = Vec::new();
    host.enumerate_commands("probe", |c| {
        all.push(c.name.to_owned());
        true
    })
    .unwrap();
    assert!(all.len() >= 5, "{all:?}");
    let mut seen = Vec::new();
    host.enumerate_commands("probe", |c| {
        seen.push(c.name.to_owned());
        seen.len() < 2
    })
    .unwrap();
    assert_eq!(seen, all[..2]);
}

#[test]
fn an_event_from_one_plugin_reaches_another_exactly_once() {
    let (host, _dir) = host_with(EXAMPLE_PLUGINS);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "one two two").unwrap();
    let path = file.path().to_str().unwrap();
    assert_eq!(run(&host, "journal", &[]).unwrap(), "");
    assert_eq!(run(&host, "wordfreq", &[path]).unwrap(), "2\ttwo\n1\tone\n");
    assert_eq!(
        run(&host, "journal", &[]).unwrap(),
        "1\twordfreq.totals\tfiles=1 words=3 distinct=2 bytes=11\n"
    );
    run(&host, "wordfreq", &[path]).unwrap();
    assert!(run(&host, "journal", &[])
        .unwrap()
        .starts_with("2\twordfreq.totals\t"));
}

#[test]
fn handlers_may_publish_from_inside_a_dispatch() {
    let (host, _dir) = host_with(&["journal", "probe"]);
    run(&host, "probe-publish", &["probe.echo", "hi"]).unwrap();
    assert_eq!(
        run(&host, "probe-stats", &[]).unwrap(),
        "echo=1 echoed=1 ticks=0\n"
    );
    // The host publishes too; the nested publish runs inside that dispatch.
    host.publish("probe.echo", b"from host").unwrap();
    assert_eq!(
        run(&host, "probe-stats", &[]).unwrap(),
        "echo=2 echoed=2 ticks=0\n"
    );
    let journal = run(&host, "journal", &[]).unwrap();
    assert_eq!(
        journal,
        "2\tprobe.echo\tfrom host\n2\tprobe.echoed\tfrom host\n"
    );
}

#[test]
fn plugin_threads_call_host_services_while_the_host_dispatches() {
    let (host, _dir) = host_with(&["probe"]);
    assert_eq!(
        run(&host, "probe-threads", &["4", "2000"]).unwrap(),
        "ticks=10000\n"
    );
}

#[test]
fn the_host_is_usable_from_several_threads_at_once() {
    let (host, _dir) = host_with(&["journal", "probe"]);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..500 {
                    host.publish("probe.tick", b"x").unwrap();
                    run(&host, "probe-ok", &[]).unwrap();
                }
            });
        }
    });
    assert_eq!(
        run(&host, "probe-stats", &[]).unwrap(),
        "echo=0 echoed=0 ticks=2000\n"
    );
    assert!(run(&host, "journal", &[])
        .unwrap()
        .starts_with("2000\tprobe.tick\tx\n"));
}

#[test]
fn a_panicking_command_faults_its_plugin_only() {
    let (host, _dir) = host_with(&["wordfreq", "journal", "probe"]);
    match run(&host, "probe-panic", &[]) {
        Err(CommandError::Panicked { command, plugin }) => {
            assert_eq!(
                (command.as_str(), plugin.as_str()),
                ("probe-panic", "probe")
            );
        }
        other => panic!("expected a panic error, got {other:?}"),
    }
    let probe = host
        .plugins()
        .into_iter()
        .find(|p| p.name == "probe")
        .unwrap();
    assert_eq!(probe.state, PluginState::Faulted);
    // The faulted plugin's other commands are gone; the other plugins keep working.
    assert!(matches!(
        run(&host, "probe-ok", &[]),
        Err(CommandError::Unknown(_))
    ));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "a b a").unwrap();
    assert_eq!(
        run(&host, "wordfreq", &[file.path().to_str().unwrap()]).unwrap(),
        "2\ta\n1\tb\n"
    );
    assert_eq!(run(&host, "journal", &[]).unwrap().lines().count(), 1);
    let names: Vec<String> = host.commands().into_iter().map(|(c, _)| c).collect();
    assert_eq!(names, ["journal", "wordfreq"]);
}

#[test]
fn invalid_topics_and_unknown_plugins_are_errors() {
    let (host, _dir) = host_with(&["journal"]);
    assert!(host.publish("", b"").is_err());
    assert!(host.publish("has space", b"").is_err());
    assert!(host.enumerate_commands("nobody", |_| true).is_err());
}

#[test]
fn shutdown_runs_once_and_ends_every_registration() {
    let (mut host, _dir) = host_with(EXAMPLE_PLUGINS);
    host.shutdown();
    assert!(host.commands().is_empty());
    assert!(host
        .plugins()
        .iter()
        .all(|p| p.state == PluginState::ShutDown));
    assert!(matches!(
        run(&host, "wordfreq", &["x"]),
        Err(CommandError::Unknown(_))
    ));
    host.shutdown();
}
