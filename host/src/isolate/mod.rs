//! Isolation: a plugin in a child process of its own.
//!
//! The child is the `plughost` binary run with the hidden first argument `__isolate-child`
//! ([`child_main_if_requested`]): it loads the same library, in its own process, through the same
//! host core, and talks to the host over socket pairs (`wire`). In the host, the plugin is a
//! plugin like the others: its entry is a *proxy* (`proxy`), a plugin built by the host whose
//! `init`, commands, subscriptions and `shutdown` forward to the child, and which registers,
//! publishes and logs in the host what the plugin does in the child. So the host's checks,
//! limits, event order and fault rules apply to it unchanged.
//!
//! Each child has two socket pairs with the host: the conversation, in which the host calls into
//! the plugin and the child's main thread answers (serving the plugin's requests meanwhile), and
//! a one-way socket for what the plugin's own threads send (the events they publish, their log
//! records), which a thread of the host, the child's listener, serves as it comes: as the
//! plugin's thread would in-process, through the same host services (modules `child` and
//! `proxy`).
//!
//! When the child dies (a signal, `exit`, being killed), breaks the protocol, or takes longer than
//! the call timeout, the plugin is faulted with one line naming it, the call under way, and the
//! cause; the child is killed and reaped, and the host and its other plugins go on.
//!
//! Each side waits for the other's next message by polling the socket briefly before it blocks
//! (module `spin`): on an idle machine that saves the wake-up of a halted core per message, the
//! most of a short call's cost, for a bounded amount of CPU time.

#[cfg(target_os = "linux")]
pub(crate) mod child;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) mod proxy;
#[cfg(target_os = "linux")]
mod spin;
#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(target_os = "linux")]
pub(crate) mod wire;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

#[cfg(target_os = "linux")]
pub use child::child_main_if_requested;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;
#[cfg(not(target_os = "linux"))]
pub use unsupported::child_main_if_requested;
#[cfg(not(target_os = "linux"))]
pub(crate) use unsupported::{child, IsolatedBuild, Registry};

/// The default of [`crate::PluginHost::set_call_timeout`] and `plughost --call-timeout`: how long
/// one call into an isolated plugin (its `init`, a command, an event delivery, its `shutdown`)
/// may take before the plugin is faulted and its child process killed.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a plugin runs, as [`crate::PluginHost::plugins`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginMode {
    /// In the host's process.
    InProcess,
    /// In a child process of its own.
    Isolated {
        /// The child's process id.
        pid: u32,
    },
}

impl std::fmt::Display for PluginMode {
    /// `in-process`, or `isolated (pid N)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PluginMode::InProcess => f.write_str("in-process"),
            PluginMode::Isolated { pid } => write!(f, "isolated (pid {pid})"),
        }
    }
}

/// What the host does when an isolated plugin's child process crashes (dies, times out or
/// breaks the protocol) during a command or an event delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Restart {
    /// The plugin is faulted for good (the default).
    #[default]
    Never,
    /// The plugin stays loaded, down: the call that crashed fails, and the next call starts a
    /// new child process (its `init` runs again, with a fresh state), after a delay that doubles
    /// with each crash in a row, from none for the first to at most [`MAX_RESTART_DELAY`]; a
    /// call during the delay fails at once. A crash during `init` at load time still refuses
    /// the plugin, and a restart whose `init` crashes or fails faults it (the old child's
    /// registrations ended with the restart, so no later call could reach it).
    OnCrash,
}

impl Restart {
    /// `never` or `on-crash`, as the command line and the configuration file spell them.
    pub fn parse(text: &str) -> Option<Restart> {
        match text {
            "never" => Some(Restart::Never),
            "on-crash" => Some(Restart::OnCrash),
            _ => None,
        }
    }
}

/// The longest delay before restarting a plugin that keeps crashing ([`Restart::OnCrash`]).
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// The delay before the next start after `crashes` crashes in a row: none after the first,
/// then 100 ms, doubling, at most [`MAX_RESTART_DELAY`].
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn restart_delay(crashes: u32) -> Duration {
    match crashes {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(100)
            .saturating_mul(1 << (n - 2).min(16))
            .min(MAX_RESTART_DELAY),
    }
}

/// Which plugins a host isolates, and how.
#[derive(Debug, Clone)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct Settings {
    /// Every plugin.
    pub(crate) all: bool,
    /// These plugins, by name.
    pub(crate) names: BTreeSet<String>,
    /// How long one call may take; `None` for no limit.
    pub(crate) call_timeout: Option<Duration>,
    /// The program to run as the child; `None` for [`default_program`].
    pub(crate) program: Option<PathBuf>,
    /// What a crash does.
    pub(crate) restart: Restart,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            all: false,
            names: BTreeSet::new(),
            call_timeout: Some(DEFAULT_CALL_TIMEOUT),
            program: None,
            restart: Restart::Never,
        }
    }
}

impl Settings {
    /// Whether any plugin may be isolated.
    pub(crate) fn any(&self) -> bool {
        self.all || !self.names.is_empty()
    }

    /// Whether the plugin named `name` is isolated.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.all || self.names.contains(name)
    }
}

impl crate::PluginHost {
    /// Runs the plugin named `name` in a child process of its own, if it is loaded from now on
    /// ([`crate::PluginHost::load`], [`crate::PluginHost::load_dir`]). `plughost --isolate NAME`
    /// and `isolate = ["NAME"]` in its configuration file set this.
    ///
    /// The child is the `plughost` binary (see [`crate::PluginHost::set_child_program`]) run
    /// with a hidden argument: it loads the same library file through a host core of its own,
    /// and the host talks to it over socket pairs. The plugin is served as any other: its
    /// commands, events (also those its own threads publish), log records, configuration and
    /// enumerations cross; interfaces do not (a plugin that provides or requires one is
    /// refused). Registering, subscribing and enumerating work from the thread that runs the
    /// plugin's `init`, commands and handlers; from a thread of its own they fail with
    /// `WRONG_THREAD`, and a publish from such a thread returns before the host's subscribers
    /// ran (they run on a thread of the host, as they would on the plugin's thread
    /// in-process). When the child dies (a crash, `exit`, a signal), breaks the protocol or
    /// exceeds the call timeout ([`crate::PluginHost::set_call_timeout`]), the plugin is faulted
    /// with one line naming it, the call and the cause, and the host and the other plugins go
    /// on.
    ///
    /// To learn a library's plugin name without loading it in the host's process, while any
    /// plugin is isolated each library is opened in a child first; one that is not isolated is
    /// then loaded in-process as usual.
    ///
    /// # Platform-specific behaviour
    ///
    /// Linux only. The child is killed when the host's process ends (the kernel's parent-death
    /// signal; the child is started from a thread that lives as long as the process, so the
    /// thread that loaded the plugin may end first), and exits when the host's end of the
    /// socket closes.
    pub fn isolate(&mut self, name: &str) {
        self.isolation.names.insert(name.to_owned());
    }

    /// Runs every plugin loaded from now on in a child process of its own (`plughost --isolate
    /// all`, `isolate = "all"` in its configuration file); see [`crate::PluginHost::isolate`].
    pub fn isolate_all(&mut self, all: bool) {
        self.isolation.all = all;
    }

    /// How long one call into an isolated plugin (its `init`, a command with all its output, an
    /// event delivery, its `shutdown`) may take before the plugin is faulted and its child
    /// process killed; `None` for no limit. Time the host spends serving the plugin's requests
    /// (the handlers of an event it publishes) does not count. Default:
    /// [`DEFAULT_CALL_TIMEOUT`]. `plughost --call-timeout SECONDS` and `call_timeout = SECONDS`
    /// in its configuration file set this.
    pub fn set_call_timeout(&mut self, timeout: Option<Duration>) {
        self.isolation.call_timeout = timeout;
    }

    /// What happens when an isolated plugin crashes (see [`Restart`]); default
    /// [`Restart::Never`]. `plughost --restart on-crash` and `restart = "on-crash"` in its
    /// configuration file set this.
    pub fn set_restart(&mut self, restart: Restart) {
        self.isolation.restart = restart;
    }

    /// The program that runs isolated plugins: the `plughost` binary. Default: this program if
    /// it is `plughost`, else `plughost` in its folder or the folder above it.
    pub fn set_child_program(&mut self, program: PathBuf) {
        self.isolation.program = Some(program);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delays_double_from_the_second_crash_up_to_the_cap() {
        let delays: Vec<u64> = (0..8)
            .map(|n| restart_delay(n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [0, 0, 100, 200, 400, 800, 1600, 3200]);
        assert_eq!(restart_delay(20), MAX_RESTART_DELAY);
        assert_eq!(restart_delay(u32::MAX), MAX_RESTART_DELAY);
    }
}
