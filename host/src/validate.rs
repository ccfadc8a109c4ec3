//! `plughost validate`: a conformance suite run against built plugin libraries.
//!
//! Each check has a kebab-case name and runs in a child process (the validator re-executes its own
//! binary with a hidden subcommand), with a timeout, so that a plugin that crashes or hangs yields
//! `crashed` or `timed-out` for that check while the run goes on. [`run_check`] is what the child
//! runs; [`validate_file`] is the parent.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{LayoutCheck, PluginHost};

/// Every check, in the order they run, with what it verifies.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "open-now",
        "the library opens with every symbol bound immediately",
    ),
    (
        "descriptor",
        "the descriptor is consistent: ABI version, sizes, functions, name, version",
    ),
    (
        "type-layout",
        "abi_stable's type layout matches the host's (Rust plugins)",
    ),
    ("init-shutdown", "init, then shutdown, both succeed"),
    (
        "init-shutdown-twice",
        "init and shutdown succeed twice in a row, in new host instances",
    ),
    (
        "command-enumeration",
        "the plugin's command enumeration matches its registrations",
    ),
    (
        "commands-no-arguments",
        "each command, run with no arguments, returns",
    ),
    (
        "commands-garbage-arguments",
        "each command, run with garbage arguments, returns",
    ),
    (
        "panics-contained",
        "panics in the plugin's callbacks become errors, not aborts",
    ),
    (
        "event-round-trip",
        "events published to the plugin's topics reach its handlers, which return",
    ),
    (
        "no-callbacks-after-shutdown",
        "nothing of the plugin stays registered after its shutdown",
    ),
    (
        "two-threads",
        "commands and events from two threads at once",
    ),
    ("load-time", "load and init take under 100 ms"),
];

/// Load and init slower than this is a warning.
pub const LOAD_TIME_WARNING: Duration = Duration::from_millis(100);

/// Arguments that no command expects.
const GARBAGE: &[&str] = &[
    "--definitely-not-an-option",
    "",
    "-",
    "--",
    "\u{1F4A5}\u{0}\u{7f}",
    "../../../no/such/path/at/all",
    "\t\n\r",
];

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The plugin conforms.
    Success,
    /// The plugin does not conform.
    Failed,
    /// The child process died (a signal or an abort).
    Crashed,
    /// The child process did not finish within the timeout.
    TimedOut,
    /// The check does not apply to this plugin, or did not run because the host would not load
    /// the library (see [`validate_file`]).
    Skipped,
    /// The plugin conforms, with a remark.
    Warning,
}

impl Status {
    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Failed => "failed",
            Status::Crashed => "crashed",
            Status::TimedOut => "timed-out",
            Status::Skipped => "skipped",
            Status::Warning => "warning",
        }
    }

    fn parse(name: &str) -> Option<Status> {
        [
            Status::Success,
            Status::Failed,
            Status::Crashed,
            Status::TimedOut,
            Status::Skipped,
            Status::Warning,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Whether the status makes the run fail.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::Crashed | Status::TimedOut)
    }
}

/// One check's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckResult {
    /// The check's name.
    pub check: &'static str,
    /// Its outcome.
    pub status: Status,
    /// What it found.
    pub message: String,
    /// How long the child process ran, in milliseconds.
    pub duration_ms: u64,
}

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// The program to re-execute for each check: the `plughost` binary.
    pub program: std::path::PathBuf,
    /// How long one check may run.
    pub timeout: Duration,
    /// The checks to run, by name.
    pub checks: Vec<&'static str>,
    /// Whether the checks load a file that fails the trust rule (see
    /// [`crate::PluginHost::set_allow_insecure`]); each child gets `--allow-insecure`.
    pub allow_insecure: bool,
}

/// The checks selected by `include` (all if empty) minus `exclude`.
///
/// # Errors
///
/// An unknown check name, with the list of known ones.
pub fn select(include: &[String], exclude: &[String]) -> Result<Vec<&'static str>, String> {
    for name in include.iter().chain(exclude) {
        if !CHECKS.iter().any(|(check, _)| check == name) {
            let known: Vec<&str> = CHECKS.iter().map(|(c, _)| *c).collect();
            return Err(format!(
                "unknown check `{name}`; the checks are: {}",
                known.join(", ")
            ));
        }
    }
    Ok(CHECKS
        .iter()
        .map(|(check, _)| *check)
        .filter(|c| include.is_empty() || include.iter().any(|i| i == c))
        .filter(|c| !exclude.iter().any(|e| e == c))
        .collect())
}

/// The hidden subcommand that runs one check in a child process. The child's last line of
/// standard output is the [`run_check`] result: the status's name, a tab, and the message as a
/// JSON string (so that it is one line, whatever the plugin put in it).
pub const CHILD_SUBCOMMAND: &str = "__validate-check";

/// Runs the selected checks against `file`, each in a child process. Once one of the checks that
/// decide whether the host loads the library at all (`open-now`, `descriptor`, `type-layout`)
/// fails or crashes, the later checks are not run: each is `skipped`, naming it, since the host
/// would refuse the library in each of them for the same reason (one that times out does not
/// stop the others).
pub fn validate_file(file: &Path, options: &Options) -> Vec<CheckResult> {
    // The first of the checks that decide whether the host loads the library at all which
    // failed or crashed, with its status: every later check would load it, and end the same way.
    // A check that timed out does not count: a busy machine may be the cause.
    let mut refused: Option<(&'static str, Status)> = None;
    let mut results = Vec::with_capacity(options.checks.len());
    for &check in &options.checks {
        if let Some((gate, status)) = refused {
            results.push(CheckResult {
                check,
                status: Status::Skipped,
                message: format!(
                    "the host does not load the library (`{gate}` {})",
                    status.name()
                ),
                duration_ms: 0,
            });
            continue;
        }
        let result = run_child(check, file, options);
        if LOAD_GATES.contains(&check) && matches!(result.status, Status::Failed | Status::Crashed)
        {
            refused = Some((check, result.status));
        }
        results.push(result);
    }
    results
}

/// The checks that decide whether the host loads a library at all: once one of them fails,
/// [`validate_file`] skips the checks after it.
const LOAD_GATES: &[&str] = &["open-now", "descriptor", "type-layout"];

fn run_child(check: &'static str, file: &Path, options: &Options) -> CheckResult {
    let started = Instant::now();
    let result = |status, message: String| CheckResult {
        check,
        status,
        message,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    let mut command = Command::new(&options.program);
    command
        .args(options.allow_insecure.then_some("--allow-insecure"))
        .arg(CHILD_SUBCOMMAND)
        .arg(check)
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "off");
    // Its standard streams only: a descriptor of `validate`'s own parent left open on exec
    // would otherwise stay open in the check.
    crate::process::inherit_none_from(&mut command, 3);
    // What the check starts and leaves behind (a plugin's helper process, holding the check's
    // output pipes) is ended with it: the pipes then end, and reading them does not wait for it.
    crate::process::own_group(&mut command);
    // A check that hangs must not run on after `validate` is killed (Ctrl-C, a CI timeout).
    crate::process::die_with_parent(&mut command);
    let child = crate::process::spawn(command);
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return result(Status::Failed, format!("cannot run the validator: {e}")),
    };
    // Drain both pipes on threads, so that a chatty plugin cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let exit = wait_timeout::ChildExt::wait_timeout(&mut child, options.timeout);
    if let Ok(None) = exit {
        let _ = child.kill();
        let _ = child.wait();
    }
    // Reaped (unless waiting failed): what it left behind ends.
    crate::process::end_group(child.id());
    let exit = match exit {
        Ok(Some(exit)) => exit,
        Ok(None) => {
            return result(
                Status::TimedOut,
                format!(
                    "no answer within {} s; killed",
                    options.timeout.as_secs_f64()
                ),
            );
        }
        Err(e) => return result(Status::Failed, format!("waiting for the check: {e}")),
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    // The child's last line is `STATUS\tMESSAGE`, the message a JSON string (one line whatever it
    // holds); a message that is not JSON is taken as it is.
    let reported = stdout.lines().rev().find_map(|line| {
        let (status, message) = line.split_once('\t')?;
        let message =
            serde_json::from_str::<String>(message).unwrap_or_else(|_| message.to_owned());
        Some((Status::parse(status)?, message))
    });
    match reported {
        Some((status, message)) if exit.success() => result(status, message),
        _ => {
            let how = format!(
                "the check's process {}",
                crate::process::describe_exit(Some(Some(exit)))
            );
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            let message = match last {
                Some(line) => format!("{how}; last output: {}", line.trim()),
                None => how,
            };
            result(Status::Crashed, message)
        }
    }
}

/// The file a check runs against, and whether it may fail the trust rule.
#[derive(Clone, Copy)]
struct Subject<'a> {
    path: &'a Path,
    allow_insecure: bool,
}

/// Runs one check in this process and returns its status and message. This is what the child
/// process does; a crash or hang here is the parent's `crashed` or `timed-out`. With
/// `allow_insecure`, a file that fails the trust rule is loaded anyway (see
/// [`crate::PluginHost::set_allow_insecure`]).
pub fn run_check(check: &str, file: &Path, allow_insecure: bool) -> (Status, String) {
    let file = Subject {
        path: file,
        allow_insecure,
    };
    match check {
        "open-now" => open_now(file),
        "descriptor" => descriptor(file),
        "type-layout" => type_layout(file),
        "init-shutdown" => init_shutdown(file, 1),
        "init-shutdown-twice" => init_shutdown(file, 2),
        "command-enumeration" => command_enumeration(file),
        "commands-no-arguments" => commands(file, &[&[]]),
        "commands-garbage-arguments" => {
            let mut sets: Vec<&[&str]> = GARBAGE.iter().map(std::slice::from_ref).collect();
            sets.push(GARBAGE);
            commands(file, &sets)
        }
        "panics-contained" => panics_contained(file),
        "event-round-trip" => event_round_trip(file),
        "no-callbacks-after-shutdown" => no_callbacks_after_shutdown(file),
        "two-threads" => two_threads(file),
        "load-time" => load_time(file),
        _ => (Status::Failed, format!("unknown check `{check}`")),
    }
}

fn open_now(file: Subject<'_>) -> (Status, String) {
    let (seen, error) = crate::inspect_with(file.path, file.allow_insecure);
    match (seen.opened, error) {
        (true, _) => (
            Status::Success,
            "opened with immediate binding (RTLD_NOW)".into(),
        ),
        (false, Some(e)) => (Status::Failed, e.kind.to_string()),
        (false, None) => (Status::Failed, "not opened".into()),
    }
}

fn descriptor(file: Subject<'_>) -> (Status, String) {
    match crate::inspect_with(file.path, file.allow_insecure) {
        (seen, None) => (
            Status::Success,
            format!(
                "`{}` {}, ABI {}.{}, descriptor {} bytes, function table {} bytes",
                seen.name.unwrap_or_default(),
                seen.version.unwrap_or_default(),
                seen.abi_version.map_or(0, |v| v.0),
                seen.abi_version.map_or(0, |v| v.1),
                seen.descriptor_size.unwrap_or_default(),
                seen.vtable_size.unwrap_or_default(),
            ),
        ),
        (_, Some(e)) => (Status::Failed, e.kind.to_string()),
    }
}

fn type_layout(file: Subject<'_>) -> (Status, String) {
    match crate::inspect_with(file.path, file.allow_insecure) {
        (_, Some(e)) if matches!(e.kind, crate::LoadErrorKind::Layout { .. }) => {
            (Status::Failed, e.kind.to_string())
        }
        (seen, _) => match seen.layout {
            Some(LayoutCheck::Passed) => (Status::Success, "matches the host's".into()),
            // `inspect` opens files; a linked-in plugin never reaches it.
            Some(LayoutCheck::Linked) => (Status::Success, "linked in".into()),
            Some(LayoutCheck::NotCarried) => (
                Status::Skipped,
                "no abi_stable layout data (a C plugin): versions and sizes were checked".into(),
            ),
            None => (Status::Skipped, "an earlier check failed".into()),
        },
    }
}

/// A host with the plugin of `file` loaded, or the check's failure.
fn loaded(file: Subject<'_>) -> Result<(PluginHost, String), (Status, String)> {
    let mut host = PluginHost::new();
    host.set_allow_insecure(file.allow_insecure);
    match host.load(file.path) {
        Ok(name) => Ok((host, name)),
        Err(e) => Err((Status::Failed, format!("load failed: {}", e.kind))),
    }
}

fn init_shutdown(file: Subject<'_>, times: usize) -> (Status, String) {
    for round in 1..=times {
        let (mut host, name) = match loaded(file) {
            Ok(loaded) => loaded,
            Err(failure) => return failure,
        };
        host.shutdown();
        let state = host.plugins().first().map(|p| p.state);
        if state != Some(crate::PluginState::ShutDown) {
            return (
                Status::Failed,
                format!("round {round}: `{name}` ended in state {state:?}"),
            );
        }
    }
    (Status::Success, format!("{times} × init and shutdown"))
}

/// The plugin's registered commands, according to the host.
fn registered_commands(host: &PluginHost, plugin: &str) -> Vec<String> {
    host.commands()
        .into_iter()
        .filter(|(_, owner)| owner == plugin)
        .map(|(name, _)| name)
        .collect()
}

fn command_enumeration(file: Subject<'_>) -> (Status, String) {
    let (host, name) = match loaded(file) {
        Ok(loaded) => loaded,
        Err(failure) => return failure,
    };
    let mut enumerated = Vec::new();
    if let Err(e) = host.enumerate_commands(&name, |c| {
        enumerated.push(c.name.to_owned());
        true
    }) {
        return (Status::Failed, e.to_string());
    }
    let mut sorted = enumerated.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != enumerated.len() {
        return (
            Status::Failed,
            format!("duplicates in the enumeration: {enumerated:?}"),
        );
    }
    let registered = registered_commands(&host, &name);
    if sorted != registered {
        return (
            Status::Failed,
            format!("enumerates {sorted:?} but registered {registered:?}"),
        );
    }
    // Stopping early must be honoured.
    if !registered.is_empty() {
        let mut calls = 0;
        let _ = host.enumerate_commands(&name, |_| {
            calls += 1;
            false
        });
        if calls != 1 {
            return (
                Status::Failed,
                format!("the callback returned false but was called {calls} times"),
            );
        }
    }
    (
        Status::Success,
        format!("{}, as registered", counted(registered.len(), "command")),
    )
}

/// Runs every command of the plugin with each argument set; a panic is a failure here (it is
/// contained, but a command must return an error instead).
fn commands(file: Subject<'_>, argument_sets: &[&[&str]]) -> (Status, String) {
    let (host, name) = match loaded(file) {
        Ok(loaded) => loaded,
        Err(failure) => return failure,
    };
    let commands = registered_commands(&host, &name);
    if commands.is_empty() {
        return (Status::Skipped, "the plugin has no commands".into());
    }
    let (mut ok, mut errors) = (0, 0);
    for command in &commands {
        for args in argument_sets {
            match host.run_command(command, args, &mut std::io::sink()) {
                Ok(()) => ok += 1,
                Err(crate::CommandError::Panicked { .. }) => {
                    return (
                        Status::Failed,
                        format!("`{command}` panicked with arguments {args:?} (contained)"),
                    )
                }
                Err(_) => errors += 1,
            }
        }
    }
    (
        Status::Success,
        format!(
            "{} × {}: {ok} succeeded, {errors} returned errors",
            counted(commands.len(), "command"),
            counted(argument_sets.len(), "argument set")
        ),
    )
}

fn panics_contained(file: Subject<'_>) -> (Status, String) {
    let (host, name) = match loaded(file) {
        Ok(loaded) => loaded,
        Err(failure) => return failure,
    };
    let mut sets: Vec<&[&str]> = vec![&[]];
    sets.extend(GARBAGE.iter().map(std::slice::from_ref));
    for command in registered_commands(&host, &name) {
        for args in &sets {
            let _ = host.run_command(&command, args, &mut std::io::sink());
        }
    }
    for (topic, owner) in host.subscriptions() {
        if owner == name {
            let _ = host.publish(concrete_topic(&topic), b"plughost validate");
        }
    }
    match host.plugins().first().and_then(|p| p.fault.clone()) {
        Some(why) => (
            Status::Warning,
            format!("a panic was contained ({why}); the host went on"),
        ),
        None => (
            Status::Success,
            "no panic escaped; every export returned".into(),
        ),
    }
}

/// A topic to publish to reach a subscription to `topic` (`*` reaches every topic).
fn concrete_topic(topic: &str) -> &str {
    if topic == crate::ALL_TOPICS {
        "plughost.validate"
    } else {
        topic
    }
}

fn event_round_trip(file: Subject<'_>) -> (Status, String) {
    let (host, name) = match loaded(file) {
        Ok(loaded) => loaded,
        Err(failure) => return failure,
    };
    let topics: Vec<String> = host
        .subscriptions()
        .into_iter()
        .filter(|(_, owner)| *owner == name)
        .map(|(topic, _)| topic)
        .collect();
    if topics.is_empty() {
        return (Status::Skipped, "the plugin subscribes to nothing".into());
    }
    for topic in &topics {
        if let Err(e) = host.publish(concrete_topic(topic), b"plughost validate") {
            return (Status::Failed, e.to_string());
        }
        if let Some(why) = host.plugins().first().and_then(|p| p.fault.clone()) {
            return (Status::Failed, why);
        }
    }
    (
        Status::Success,
        format!(
            "published to {} subscribed topics: {}",
            topics.len(),
            topics.join(", ")
        ),
    )
}

fn no_callbacks_after_shutdown(file: Subject<'_>) -> (Status, String) {
    let (mut host, name) = match loaded(file) {
        Ok(loaded) => loaded,
        Err(failure) => return failure,
    };
    let topics: Vec<String> = host.subscriptions().into_iter().map(|(t, _)| t).collect();
    host.shutdown();
    let commands = registered_commands(&host, &name);
    let subscriptions = host.subscriptions();
    if !commands.is_empty() || !subscriptions.is_empty() {
        return (
            Status::Failed,
            format!("left registered: commands {commands:?}, subscriptions {subscriptions:?}"),
        );
    }
    for topic in &topics {
        let _ = host.publish(concrete_topic(topic), b"after shutdown");
    }
    (Status::Success, "nothing left registered".into())
}

fn two_threads(file: Subject<'_>) -> (Status, String) {
    let (host, name) = match loaded(file) {
        Ok(loaded) => loaded,
        Err(failure) => return failure,
    };
    let commands = registered_commands(&host, &name);
    let topics: Vec<String> = host.subscriptions().into_iter().map(|(t, _)| t).collect();
    let panicked = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..3 {
                        for command in &commands {
                            let _ = host.run_command(command, &[] as &[&str], &mut std::io::sink());
                        }
                        for topic in &topics {
                            let _ = host.publish(concrete_topic(topic), b"two threads");
                        }
                    }
                })
            })
            .collect();
        workers.into_iter().any(|w| w.join().is_err())
    });
    if panicked {
        return (Status::Failed, "a host thread panicked".into());
    }
    match host.plugins().first().and_then(|p| p.fault.clone()) {
        Some(why) => (Status::Failed, why),
        None => (
            Status::Success,
            format!(
                "{} and {} from 2 threads at once",
                counted(commands.len(), "command"),
                counted(topics.len(), "topic")
            ),
        ),
    }
}

fn load_time(file: Subject<'_>) -> (Status, String) {
    let started = Instant::now();
    let (mut host, _) = match loaded(file) {
        Ok(loaded) => loaded,
        Err(failure) => return failure,
    };
    let elapsed = started.elapsed();
    host.shutdown();
    let message = format!("load and init took {:.1} ms", elapsed.as_secs_f64() * 1e3);
    if elapsed > LOAD_TIME_WARNING {
        (
            Status::Warning,
            format!("{message} (over {} ms)", LOAD_TIME_WARNING.as_millis()),
        )
    } else {
        (Status::Success, message)
    }
}

/// `1 command`, `2 commands`: a count and its noun, plural unless the count is 1.
fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
