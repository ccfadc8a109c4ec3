//! A mock host, to test a plugin in-process: no host binary, no library file, no dynamic loading,
//! and the same host core as `plughost`.
//!
//! Add it to the plugin's dev-dependencies:
//!
//! ```toml
//! [dev-dependencies]
//! plughost-testing = { path = "../../testing" }
//! ```
//!
//! [`MockHost`] is a front end over [`plughost::PluginHost`]: the plugin is linked into the test
//! ([`PluginHost::load_static`]) instead of opened from a file, and everything else is the real
//! host: the same descriptor checks, the same `init` and `shutdown` order, the same registry with
//! its limits and error codes, the same event order, the same faults when a callback panics. What
//! passes here passes in `plughost`. On top of that it records what plugins sent to the host:
//! their log records and the events they published.
//!
//! ```
//! # use plugin_api::{Command, Error, Host, Plugin};
//! # use std::io::Write;
//! # struct Hello;
//! # impl Plugin for Hello {
//! #     const NAME: &'static str = "hello";
//! #     const VERSION: &'static str = "0.1.0";
//! #     const DESCRIPTION: &'static str = "Greets people";
//! #     fn init(host: &Host) -> Result<Self, Error> {
//! #         host.register_command(Command::new("hello"), |args, out| {
//! #             writeln!(out, "Hello, {}!", args[0])?;
//! #             Ok(())
//! #         })?;
//! #         Ok(Hello)
//! #     }
//! # }
//! use plughost_testing::MockHost;
//!
//! let mut host = MockHost::new();
//! host.load::<Hello>().unwrap();
//! assert_eq!(host.commands(), ["hello"]);
//! assert_eq!(host.run("hello", &["world"]).unwrap(), "Hello, world!\n");
//! host.shutdown();
//! ```
//!
//! # Log records in a test binary
//!
//! A plugin library has its own copy of the `log` crate; a test binary has one for the plugin,
//! the host and the test together. The plugin's records reach the mock host whose call the plugin
//! is running (and, from threads the plugin started itself, the most recently loaded plugin), as
//! long as no other logger was installed in the test binary first (such as `env_logger`: then
//! the records go there). The host's own diagnostics (target `plughost::…`) are not recorded: in
//! a test binary they could come from another test's host.
#![deny(missing_docs)]

use std::sync::{Arc, Mutex, MutexGuard};

use plughost::{CommandError, Config, HostError, LoadError, LoadErrorKind, Observer, PluginHost};
use plugin_api::abi::{PhPluginDescriptor, PhResult};
use plugin_api::{CommandInfo, Error, Plugin};

/// A log record a plugin sent to the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The level.
    pub level: log::Level,
    /// The plugin that logged it.
    pub plugin: String,
    /// The target the plugin gave (empty for the plugin's own name).
    pub target: String,
    /// The message.
    pub message: String,
}

/// An event a plugin published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedEvent {
    /// The plugin that published it.
    pub publisher: String,
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
}

/// A command, as the host lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    /// The command name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its usage.
    pub usage: String,
}

/// What plugins sent to the mock host: the host core's [`Observer`].
struct Recorder {
    level: log::LevelFilter,
    logs: Mutex<Vec<LogRecord>>,
    published: Mutex<Vec<PublishedEvent>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Observer for Recorder {
    fn max_level(&self) -> log::LevelFilter {
        self.level
    }

    fn log(&self, plugin: &str, record: &log::Record<'_>) {
        let target = record.target();
        let target = match target.strip_prefix(plugin) {
            Some("") => "",
            Some(rest) => rest.strip_prefix("::").unwrap_or(target),
            None => target,
        };
        if target == "plughost" || target.starts_with("plughost::") {
            // The host's own diagnostic, routed through the test binary's one `log` (see the
            // crate docs).
            return;
        }
        lock(&self.logs).push(LogRecord {
            level: record.level(),
            plugin: plugin.to_owned(),
            target: target.to_owned(),
            message: record.args().to_string(),
        });
    }

    fn published(&self, plugin: &str, topic: &str, payload: &[u8]) {
        lock(&self.published).push(PublishedEvent {
            publisher: plugin.to_owned(),
            topic: topic.to_owned(),
            payload: payload.to_vec(),
        });
    }
}

/// An in-process host for tests: the real host core with plugins linked into the test. See the
/// [crate documentation](crate).
pub struct MockHost {
    host: PluginHost,
    recorder: Arc<Recorder>,
    /// The configuration of plugins loaded from now on.
    config: Config,
}

impl Default for MockHost {
    fn default() -> Self {
        MockHost::new()
    }
}

impl MockHost {
    /// A mock host whose log level lets every record through.
    pub fn new() -> MockHost {
        MockHost::with_log_level(log::LevelFilter::Trace)
    }

    /// A mock host with the given log level: plugins drop records above it on their side, as
    /// with the real host.
    pub fn with_log_level(level: log::LevelFilter) -> MockHost {
        // Mock hosts of parallel tests share this binary's `log`: route each call's records.
        plugin_api::__private::route_every_call();
        let recorder = Arc::new(Recorder {
            level,
            logs: Mutex::new(Vec::new()),
            published: Mutex::new(Vec::new()),
        });
        MockHost {
            host: PluginHost::with_observer(Arc::clone(&recorder) as Arc<dyn Observer>),
            recorder,
            config: Config::default(),
        }
    }

    /// Sets `key` in the configuration of the plugin named `plugin`, as the host service
    /// `config_get` gives it (`Host::config`): `value` is the text the plugin reads, such as `20`
    /// or `two words`. As in the real host, it applies to plugins loaded afterwards.
    pub fn set_config(&mut self, plugin: &str, key: &str, value: &str) {
        self.config.set(plugin, key, value);
    }

    /// Loads the plugin `P` from its Rust type, through the descriptor and function table that
    /// [`plugin_api::export_plugin!`] would export for it, and calls its `init`.
    ///
    /// # Errors
    ///
    /// The code `init` returned (with the host's one-line message), or
    /// [`PhResult::InvalidArgument`] with the reason the host refused the descriptor.
    pub fn load<P: Plugin>(&mut self) -> Result<(), Error> {
        self.load_descriptor(plugin_api::linked_descriptor::<P>())
    }

    /// Loads a plugin from its descriptor (a plugin on the raw ABI, linked into the test), with
    /// the checks of the real host ([`PluginHost::load_static`]), and calls its `init`.
    ///
    /// # Errors
    ///
    /// As for [`MockHost::load`].
    pub fn load_descriptor(
        &mut self,
        descriptor: &'static PhPluginDescriptor,
    ) -> Result<(), Error> {
        self.host.set_config(self.config.clone());
        self.host
            .load_static(descriptor)
            .map(drop)
            .map_err(load_error)
    }

    /// Loads several plugins at once (their descriptors, such as
    /// `plugin_api::linked_descriptor::<P>()`), ordered as the real host orders the files of a
    /// folder ([`PluginHost::load_static_all`], like `load_dir`): providers of interfaces are
    /// initialised before their users whatever their order here, a plugin whose requirement
    /// nothing provides is refused, and so are the plugins of a cycle of requirements. The
    /// others load even when some are refused.
    ///
    /// [`MockHost::load`] loads one plugin and calls its `init` at once: with it, load the
    /// providers first, since a plugin whose requirement is not provided yet is refused.
    ///
    /// # Errors
    ///
    /// If any plugin was refused: the first refusal's code (as for [`MockHost::load`]), with
    /// one line per refused plugin.
    pub fn load_all(&mut self, descriptors: &[&'static PhPluginDescriptor]) -> Result<(), Error> {
        self.host.set_config(self.config.clone());
        let refused: Vec<LoadError> = self
            .host
            .load_static_all(descriptors)
            .into_iter()
            .filter_map(Result::err)
            .collect();
        let Some(first) = refused.first() else {
            return Ok(());
        };
        let code = load_error_code(first);
        let lines: Vec<String> = refused.iter().map(ToString::to_string).collect();
        Err(Error::with_code(code, lines.join("\n")))
    }

    /// Runs the command `name` with `args` and returns what it printed (lossily decoded).
    ///
    /// # Errors
    ///
    /// [`PhResult::NotFound`] for an unknown command; [`PhResult::Panicked`] if it panicked (its
    /// plugin is then faulted); otherwise the code the command returned and the message it set.
    pub fn run(&self, name: &str, args: &[&str]) -> Result<String, Error> {
        self.run_bytes(name, args)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Runs the command `name` with `args` and returns the bytes it printed.
    ///
    /// # Errors
    ///
    /// As for [`MockHost::run`].
    pub fn run_bytes(&self, name: &str, args: &[&str]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        match self.host.run_command(name, args, &mut out) {
            Ok(()) => Ok(out),
            Err(CommandError::Unknown(_)) => Err(Error::with_code(
                PhResult::NotFound,
                format!("no command `{name}`"),
            )),
            Err(CommandError::Failed { code, message, .. }) => Err(Error::with_code(code, message)),
            Err(e @ CommandError::Panicked { .. }) => {
                Err(Error::with_code(PhResult::Panicked, e.to_string()))
            }
            Err(e) => Err(Error::with_code(PhResult::Io, e.to_string())),
        }
    }

    /// Publishes an event from the host: every subscriber of `topic` (and of `*`) runs, on this
    /// thread, before this returns.
    ///
    /// # Errors
    ///
    /// [`PhResult::InvalidArgument`] for an invalid topic; [`PhResult::LimitExceeded`] when
    /// publishes nest too deeply.
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), Error> {
        self.host.publish(topic, payload).map_err(host_error)
    }

    /// The names of the registered commands, sorted.
    pub fn commands(&self) -> Vec<String> {
        self.host
            .commands()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    /// The topics of the registered subscriptions, sorted (a topic appears once per
    /// subscription).
    pub fn subscriptions(&self) -> Vec<String> {
        self.host
            .subscriptions()
            .into_iter()
            .map(|(topic, _)| topic)
            .collect()
    }

    /// Enumerates the commands of the plugin named `plugin`, in registration order: `f` is called
    /// once per command until it returns `false`. `f` runs on this thread outside any plugin
    /// code, so an assertion that fails in it fails the test as anywhere else.
    ///
    /// # Errors
    ///
    /// [`PhResult::NotFound`] for an unknown plugin, or the code its enumeration returned.
    pub fn enumerate_commands<F>(&self, plugin: &str, f: F) -> Result<(), Error>
    where
        F: FnMut(&CommandInfo<'_>) -> bool,
    {
        self.host.enumerate_commands(plugin, f).map_err(host_error)
    }

    /// Every command of the plugin named `plugin`, in registration order.
    ///
    /// # Errors
    ///
    /// As for [`MockHost::enumerate_commands`].
    pub fn command_records(&self, plugin: &str) -> Result<Vec<CommandRecord>, Error> {
        let mut records = Vec::new();
        self.enumerate_commands(plugin, |c| {
            records.push(CommandRecord {
                name: c.name.to_owned(),
                description: c.description.to_owned(),
                usage: c.usage.to_owned(),
            });
            true
        })?;
        Ok(records)
    }

    /// The log records plugins sent so far.
    pub fn logs(&self) -> Vec<LogRecord> {
        lock(&self.recorder.logs).clone()
    }

    /// The events plugins published so far (not those the test published), in order: one
    /// [`PublishedEvent`] each, with the publisher's name, the topic and the payload.
    ///
    /// ```
    /// use plugin_api::{Error, Host, Plugin};
    /// use plughost_testing::{MockHost, PublishedEvent};
    ///
    /// /// Publishes `pinged` with the payload `pong` when it gets `ping`.
    /// struct Pinger(Host);
    ///
    /// impl Plugin for Pinger {
    ///     const NAME: &'static str = "pinger";
    ///
    ///     fn init(host: &Host) -> Result<Self, Error> {
    ///         host.on("ping", |me: &Self, _| me.0.publish("pinged", b"pong"))?;
    ///         Ok(Pinger(host.clone()))
    ///     }
    /// }
    ///
    /// let mut host = MockHost::new();
    /// host.load::<Pinger>().unwrap();
    /// host.publish("ping", b"").unwrap();
    /// let published: Vec<PublishedEvent> = host.published();
    /// assert_eq!(
    ///     published,
    ///     [PublishedEvent {
    ///         publisher: "pinger".to_owned(),
    ///         topic: "pinged".to_owned(),
    ///         payload: b"pong".to_vec(),
    ///     }]
    /// );
    /// ```
    pub fn published(&self) -> Vec<PublishedEvent> {
        lock(&self.recorder.published).clone()
    }

    /// Provides the interface `I` from the test, as the embedding application would (see
    /// [`PluginHost::provide`]: an `Arc` of a type that implements the trait, an
    /// `Arc<dyn Trait>`, or a [`plugin_api::Provision`]): a fake provider for a plugin that
    /// requires `I`. Provide it
    /// before loading that plugin.
    ///
    /// # Errors
    ///
    /// [`PhResult::AlreadyExists`] if someone provides `I` already.
    pub fn provide<I: plugin_api::Interface + ?Sized>(
        &self,
        provider: impl plugin_api::IntoProvision<I>,
    ) -> Result<(), Error> {
        self.host
            .provide::<I>(provider)
            .map(drop)
            .map_err(host_error)
    }

    /// Queries the interface `I` that a plugin provides, to call it from the test (see
    /// [`PluginHost::interface`]).
    ///
    /// # Errors
    ///
    /// [`PhResult::NotFound`] if nobody provides it; [`PhResult::VersionMismatch`].
    pub fn interface<I: plugin_api::Interface + ?Sized>(
        &self,
    ) -> Result<plugin_api::Remote<I>, Error> {
        self.host.interface::<I>().map_err(host_error)
    }

    /// The host core itself, for what the mock host does not wrap: [`PluginHost::plugins`] (each
    /// plugin's state and fault), [`PluginHost::command`], [`PluginHost::enumerate_plugins`].
    pub fn host(&self) -> &PluginHost {
        &self.host
    }

    /// Shuts every plugin down, in reverse load order, as the real host does (see
    /// [`PluginHost::shutdown`]). Idempotent; also done on drop.
    pub fn shutdown(&mut self) {
        self.host.shutdown();
    }
}

/// A refused load as a plugin-side error: the code `init` returned, or `InvalidArgument`.
fn load_error(error: LoadError) -> Error {
    Error::with_code(load_error_code(&error), error.to_string())
}

/// The code of a refused load: the code `init` returned, or `InvalidArgument`.
fn load_error_code(error: &LoadError) -> PhResult {
    match error.kind {
        LoadErrorKind::Init { code, .. } => code,
        _ => PhResult::InvalidArgument,
    }
}

/// A host error as a plugin-side error with its code.
fn host_error(error: HostError) -> Error {
    Error::with_code(error.code(), error.to_string())
}
