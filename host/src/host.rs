//! [`PluginHost`]: the host as a library.

#![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)] // removed when this file is split (issue #11)

use std::ffi::c_void;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use plugin_api::abi::{
    PhBytes, PhCommandCallback, PhCommandOutput, PhHostContext, PhResult, PhResultCode,
    PhSetErrorFn, PhStr, PhWriteFn,
};
use plugin_api::{CommandInfo, PluginInfo};

use crate::boundary::guard;
use crate::config::Config;
use crate::context::{PluginContext, PluginState};
use crate::error::{CommandError, DiscoverError, HostError, LoadError, LoadErrorKind};
use crate::loader::{self, LayoutCheck};
use crate::registry::{LockExt, Registration, Shared};
use crate::services::HOST_SERVICES;

/// A plugin host: loads plugin libraries, gives them the host services, runs their commands and
/// dispatches their events.
///
/// Loading and shutting down take `&mut self` and belong to one thread (the ABI's
/// `[main-thread]`). Everything else takes `&self`, and the host is `Send + Sync`: commands may be
/// run and events published from any thread, concurrently.
///
/// Dropping the host shuts its plugins down, in reverse load order. Libraries stay loaded until
/// the process exits (see [`PluginHost::load`]), and so does each plugin's host context: a
/// plugin thread that calls a host service after the host is gone gets `SHUT_DOWN`. Each load
/// therefore keeps a few hundred bytes (the context: names, configuration) for the rest of the
/// process, beside the mapped library.
///
/// # Examples
///
/// ```no_run
/// let mut host = plughost::PluginHost::new();
/// host.load_dir("target/release".as_ref())?;
/// let mut out = Vec::new();
/// host.run_command("wordfreq", &["--top", "3", "README.md"], &mut out)?;
/// print!("{}", String::from_utf8_lossy(&out));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PluginHost {
    shared: Arc<Shared>,
    /// Every plugin that passed `init`, in load order.
    loaded: Vec<Arc<PluginContext>>,
    /// Libraries that were refused, in the order they were tried.
    refused: Vec<LoadError>,
    /// The plugins' configuration, for plugins loaded from now on.
    config: Config,
    /// Whether files and folders that fail the trust rule load anyway.
    allow_insecure: bool,
}

/// A loaded plugin, as [`PluginHost::plugins`] describes it.
#[derive(Debug, Clone)]
pub struct PluginSummary {
    /// The plugin's unique name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its one-line description.
    pub description: String,
    /// The library it was loaded from.
    pub path: PathBuf,
    /// The ABI version it was built for: (major, minor).
    pub abi_version: (u16, u16),
    /// Whether abi_stable's layout check ran.
    pub layout: LayoutCheck,
    /// Where it is in its life cycle.
    pub state: PluginState,
    /// Its commands, as it enumerates them (empty unless active).
    pub commands: Vec<CommandSummary>,
    /// Why it was faulted, if it was.
    pub fault: Option<String>,
}

/// A command, as its plugin enumerates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSummary {
    /// The command name.
    pub name: String,
    /// One line saying what it does.
    pub description: String,
    /// Its arguments' synopsis.
    pub usage: String,
}

impl Default for PluginHost {
    fn default() -> Self {
        PluginHost::new()
    }
}

impl PluginHost {
    /// A host with no plugins.
    pub fn new() -> PluginHost {
        crate::quiesce::init();
        PluginHost {
            shared: Arc::new(Shared::new()),
            loaded: Vec::new(),
            refused: Vec::new(),
            config: Config::default(),
            allow_insecure: false,
        }
    }

    /// Whether libraries that fail the trust rule load anyway, from now on. Default: `false`.
    ///
    /// The rule, as ssh and sudo apply it: a library file, or its folder (the folder given to
    /// [`PluginHost::load_dir`], the file's parent for [`PluginHost::load`]), that is writable by
    /// group or others, or owned by a user who is neither the one running the host (the effective
    /// user) nor root, is refused with [`LoadErrorKind::Insecure`]: whoever can change it can run
    /// code as the host's user. A sticky world-writable folder such as `/tmp` fails it too.
    /// `plughost --allow-insecure` and `allow_insecure = true` in its configuration file set this.
    ///
    /// # Platform-specific behaviour
    ///
    /// The rule is checked on Unix only.
    pub fn set_allow_insecure(&mut self, allow: bool) {
        self.allow_insecure = allow;
    }

    /// Sets the configuration that plugins loaded from now on read through the host service
    /// `config_get` (each plugin its own table). Plugins already loaded keep what they had: a
    /// plugin's configuration does not change while it is loaded.
    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    /// Loads every library in `dir` (files with this platform's shared-library extension, in
    /// file-name order). A library that fails is recorded in [`PluginHost::refused`] (and logged
    /// at debug level) and skipped; the others load.
    ///
    /// # Errors
    ///
    /// Only if `dir` cannot be read.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), DiscoverError> {
        for path in loader::discover(dir)? {
            if let Err(error) = self.load(&path) {
                log::debug!("refused {error}");
                self.refused.push(error);
            }
        }
        Ok(())
    }

    /// Loads one plugin library: opens it (binding all symbols now), checks the ABI version,
    /// abi_stable's type layout (Rust plugins), table sizes, required functions and the name,
    /// then calls the plugin's `init`. Returns the plugin's name.
    ///
    /// Opening a library runs its initialisers: load only libraries you trust as much as the host
    /// itself. The library stays loaded until the process exits, even if it is refused. The file
    /// and its folder must pass the trust rule (see [`PluginHost::set_allow_insecure`]); the file
    /// is checked and loaded through one open descriptor. An entry point or `init` that takes
    /// longer than [`crate::SLOW_CALL`] is logged as a warning naming the plugin; while `init`
    /// runs, [`crate::current_call`] names it.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] naming the file and the first check that failed. The host is unchanged.
    pub fn load(&mut self, path: &Path) -> Result<String, LoadError> {
        let candidate = loader::open(path, self.allow_insecure)?;
        let refuse = |kind| LoadError {
            path: path.to_owned(),
            kind,
        };
        if let Some(first) = self.loaded.iter().find(|p| p.name == candidate.info.name) {
            return Err(refuse(LoadErrorKind::Duplicate {
                name: candidate.info.name,
                first: PathBuf::from(&first.path),
            }));
        }
        let layout = candidate.layout;
        let settings = self.config.settings(&candidate.info.name);
        let context = PluginContext::new(
            Arc::clone(&self.shared),
            candidate.descriptor,
            candidate.info,
            layout,
            settings,
        );
        let Some(init) = context.vtable().init else {
            return Err(refuse(LoadErrorKind::MissingFunction("init")));
        };
        let mut plugin_data: *mut c_void = std::ptr::null_mut();
        let ctx = Arc::as_ptr(&context).cast::<PhHostContext>().cast_mut();
        let call = crate::call::enter_call(&context.name, crate::call::CallKind::Init);
        let started = std::time::Instant::now();
        // SAFETY: the loader checked that `init` is the plugin's function of this ABI version;
        // the context and the services table outlive the plugin, and `plugin_data` is writable.
        let code = unsafe { (init.0)(ctx, &HOST_SERVICES, &mut plugin_data) };
        loader::warn_if_slow(started, || {
            format!("plugin `{}` ({}): init", context.name, context.path)
        });
        drop(call);
        let code = PhResult::from_code(code);
        if code != PhResult::Ok || !context.activate() {
            context.set_state(PluginState::ShutDown);
            self.shared.remove_all_of(&context);
            let code = if code == PhResult::Ok {
                PhResult::Panicked
            } else {
                code
            };
            return Err(refuse(LoadErrorKind::Init(code)));
        }
        context.plugin_data.set(plugin_data);
        log::debug!(
            "loaded plugin `{}` {} from {} (layout check: {layout:?})",
            context.name,
            context.version,
            context.path
        );
        self.shared
            .plugins
            .write_or_recover()
            .push(Arc::clone(&context));
        self.loaded.push(context);
        Ok(self
            .loaded
            .last()
            .map(|p| p.name.clone())
            .unwrap_or_default())
    }

    /// The libraries that were refused, with the reasons, in the order they were tried.
    pub fn refused(&self) -> &[LoadError] {
        &self.refused
    }

    /// Every plugin that was initialised, in load order, with its commands.
    pub fn plugins(&self) -> Vec<PluginSummary> {
        self.loaded
            .iter()
            .map(|p| {
                let mut commands = Vec::new();
                if p.state() == PluginState::Active {
                    // An enumeration error leaves the list short; the plugin's fault is logged.
                    let _ = self.enumerate_commands(&p.name, |c| {
                        commands.push(CommandSummary {
                            name: c.name.to_owned(),
                            description: c.description.to_owned(),
                            usage: c.usage.to_owned(),
                        });
                        true
                    });
                }
                PluginSummary {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    description: p.description.clone(),
                    path: PathBuf::from(&p.path),
                    abi_version: p.abi_version,
                    layout: p.layout,
                    state: p.state(),
                    commands,
                    fault: p.fault_reason(),
                }
            })
            .collect()
    }

    /// Calls `f` once per active plugin, in load order, until it returns `false`.
    pub fn enumerate_plugins(&self, mut f: impl FnMut(&PluginInfo<'_>) -> bool) {
        for p in self.shared.active_plugins() {
            let info = PluginInfo {
                name: &p.name,
                version: &p.version,
                description: &p.description,
                path: &p.path,
                abi_version: p.abi_version,
            };
            if !f(&info) {
                break;
            }
        }
    }

    /// Enumerates the commands of the plugin named `plugin` from the host's records, in
    /// registration order: `f` is called once per command until it returns `false`. Only commands
    /// the plugin registered are listed (see the ABI's `enumerate_commands`).
    ///
    /// # Errors
    ///
    /// [`HostError::UnknownPlugin`] if no active plugin has that name; [`HostError::Code`] if
    /// an older plugin's enumeration failed (a panic faults the plugin), or for enumerations
    /// nested too deeply.
    pub fn enumerate_commands<F>(&self, plugin: &str, mut f: F) -> Result<(), HostError>
    where
        F: FnMut(&CommandInfo<'_>) -> bool,
    {
        let target = self
            .shared
            .active_plugins()
            .into_iter()
            .find(|p| p.name == plugin)
            .ok_or_else(|| HostError::UnknownPlugin(plugin.to_owned()))?;
        self.shared
            .enumerate_commands_of(&target, &mut f)
            .map_err(|code| HostError::Code {
                operation: format!("enumerate_commands({plugin:?})"),
                code,
            })
    }

    /// The registered command names with the plugin of each, sorted by name.
    pub fn commands(&self) -> Vec<(String, String)> {
        self.shared.command_names()
    }

    /// The subscribed topics with the plugin of each, sorted (a topic appears once per
    /// subscription).
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        self.shared.subscription_topics()
    }

    /// Runs the command `name` with `args` (the words after the command name); its output goes
    /// to `out`.
    ///
    /// Looks the command up on every call; to run one command many times, resolve it once with
    /// [`PluginHost::command`].
    ///
    /// # Errors
    ///
    /// [`CommandError::Unknown`] if no active plugin registered `name`; [`CommandError::Failed`]
    /// with the command's message; [`CommandError::Panicked`] if it panicked (its plugin is then
    /// faulted); [`CommandError::Output`] if writing to `out` failed.
    pub fn run_command<S: AsRef<str>>(
        &self,
        name: &str,
        args: &[S],
        out: &mut dyn Write,
    ) -> Result<(), CommandError> {
        let command = self
            .shared
            .command(name)
            .filter(|c| c.is_active())
            .ok_or_else(|| CommandError::Unknown(name.to_owned()))?;
        run_registered(&self.shared, name, &command, args, out)
    }

    /// Resolves the command `name` once, for running it many times with [`CommandHandle::run`]
    /// without a lookup per call.
    ///
    /// # Errors
    ///
    /// [`CommandError::Unknown`] if no active plugin registered `name`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let mut host = plughost::PluginHost::new();
    /// host.load_dir("target/release".as_ref())?;
    /// let wordfreq = host.command("wordfreq")?;
    /// for file in ["a.txt", "b.txt"] {
    ///     wordfreq.run(&["--top", "3", file], &mut std::io::stdout())?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn command(&self, name: &str) -> Result<CommandHandle<'_>, CommandError> {
        let registration = self
            .shared
            .command(name)
            .filter(|c| c.is_active())
            .ok_or_else(|| CommandError::Unknown(name.to_owned()))?;
        Ok(CommandHandle {
            shared: &self.shared,
            name: name.to_owned(),
            registration,
        })
    }

    /// Publishes an event from the host itself: every subscriber of `topic` runs on this thread
    /// before this returns.
    ///
    /// # Errors
    ///
    /// [`HostError::Code`] with [`PhResult::InvalidArgument`] for an invalid topic, or
    /// [`PhResult::LimitExceeded`] when publishes nest too deeply.
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), HostError> {
        self.shared
            .publish(topic, payload)
            .map_err(|code| HostError::Code {
                operation: format!("publish({topic:?})"),
                code,
            })
    }

    /// Shuts every active plugin down, in reverse load order: no new call reaches the plugin,
    /// the calls under way on other threads (plugin threads publishing, for example) are waited
    /// for, its `shutdown` runs, then its remaining registrations are removed. Faulted plugins get
    /// no call. Idempotent.
    pub fn shutdown(&mut self) {
        for plugin in self.loaded.iter().rev() {
            if !plugin.begin_shutdown() {
                continue;
            }
            self.shared
                .plugins
                .write_or_recover()
                .retain(|p| !Arc::ptr_eq(p, plugin));
            // Every call that could still pass the plugin data or call the plugin has returned.
            crate::quiesce::synchronize(&format_args!("shutdown of plugin `{}`", plugin.name));
            if let Some(shutdown) = plugin.vtable().shutdown {
                // SAFETY: the plugin's own function with the data its `init` returned, called
                // once (`begin_shutdown` succeeds once).
                let code = unsafe { (shutdown.0)(plugin.plugin_data.get()) };
                let code = PhResult::from_code(code);
                if code != PhResult::Ok {
                    log::warn!("plugin `{}`: shutdown failed: {code}", plugin.name);
                }
            }
            plugin.set_state(PluginState::ShutDown);
            self.shared.remove_all_of(plugin);
            log::debug!("plugin `{}` shut down", plugin.name);
        }
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A command resolved once by [`PluginHost::command`]: runs it without looking it up again.
///
/// A handle borrows its host, so it cannot outlive it nor a shutdown. If the command's plugin
/// unregisters it or faults, [`CommandHandle::run`] returns [`CommandError::Unknown`]. While a
/// handle exists, the registration's user data stays alive: its `destroy` runs when the last
/// handle is dropped, as it waits for a dispatch under way.
///
/// # Thread-safety
///
/// `Send + Sync`: one handle may run its command on several threads at once.
pub struct CommandHandle<'host> {
    shared: &'host Shared,
    name: String,
    registration: Arc<Registration<PhCommandCallback>>,
}

impl CommandHandle<'_> {
    /// The command name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the command with `args` (the words after the command name); its output goes to
    /// `out`. Up to 8 arguments are passed without allocating.
    ///
    /// # Errors
    ///
    /// As [`PluginHost::run_command`]; [`CommandError::Unknown`] once the command is gone.
    pub fn run<S: AsRef<str>>(&self, args: &[S], out: &mut dyn Write) -> Result<(), CommandError> {
        if !self.registration.is_active() {
            return Err(CommandError::Unknown(self.name.clone()));
        }
        run_registered(self.shared, &self.name, &self.registration, args, out)
    }
}

impl std::fmt::Debug for CommandHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandHandle")
            .field("name", &self.name)
            .field("plugin", &self.registration.owner.name)
            .finish()
    }
}

/// How many arguments [`run_registered`] passes from the stack; more are collected in a `Vec`.
const INLINE_ARGS: usize = 8;

/// Runs the registered command `name`: the body of [`PluginHost::run_command`] and
/// [`CommandHandle::run`] after the lookup. Converts the arguments to views without allocating
/// (up to [`INLINE_ARGS`]) and calls [`call_command`].
#[inline]
fn run_registered<S: AsRef<str>>(
    shared: &Shared,
    name: &str,
    command: &Registration<PhCommandCallback>,
    args: &[S],
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    if args.is_empty() {
        return call_command(shared, name, command, &[], out);
    }
    if args.len() <= INLINE_ARGS {
        let mut inline = [PhStr::EMPTY; INLINE_ARGS];
        for (slot, arg) in inline.iter_mut().zip(args) {
            *slot = PhStr::new(arg.as_ref());
        }
        return call_command(shared, name, command, &inline[..args.len()], out);
    }
    let spilled: Vec<PhStr> = args.iter().map(|a| PhStr::new(a.as_ref())).collect();
    call_command(shared, name, command, &spilled, out)
}

/// Calls the command's callback with `args` and an output that writes to `out`. The success
/// path is a few stores, the call and two checks; failures are handled in [`command_failed`].
fn call_command(
    shared: &Shared,
    name: &str,
    command: &Registration<PhCommandCallback>,
    args: &[PhStr],
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let mut sink = Sink {
        thread: crate::quiesce::thread_id(),
        out,
        error: None,
        io_error: None,
    };
    let output = PhCommandOutput {
        struct_size: std::mem::size_of::<PhCommandOutput>() as u32,
        context: (&mut sink as *mut Sink<'_>).cast(),
        write: PhWriteFn(sink_write),
        set_error: PhSetErrorFn(sink_set_error),
    };
    // SAFETY: the plugin registered this callback with this user data, alive while we hold the
    // registration; `args`, `output` and `sink` outlive the call.
    let code =
        unsafe { (command.callback.0)(command.user_data, args.as_ptr(), args.len(), &output) };
    if code == PhResult::Ok.code() && sink.io_error.is_none() {
        return Ok(());
    }
    command_failed(shared, name, command, PhResult::from_code(code), sink)
}

/// The error of a command that returned `code` (not `Ok`), or whose output failed.
#[cold]
#[inline(never)]
fn command_failed(
    shared: &Shared,
    name: &str,
    command: &Registration<PhCommandCallback>,
    code: PhResult,
    mut sink: Sink<'_>,
) -> Result<(), CommandError> {
    if let Some(source) = sink.io_error.take() {
        return Err(CommandError::Output {
            command: name.to_owned(),
            source,
        });
    }
    match code {
        PhResult::Ok => Ok(()),
        PhResult::Panicked => {
            shared.fault(&command.owner, &format!("its command `{name}` panicked"));
            Err(CommandError::Panicked {
                command: name.to_owned(),
                plugin: command.owner.name.clone(),
            })
        }
        code => Err(CommandError::Failed {
            command: name.to_owned(),
            code,
            message: sink.error.unwrap_or_else(|| code.message().to_owned()),
        }),
    }
}

/// Where a command's output goes during [`PluginHost::run_command`].
///
/// Only the thread that runs the command may use it (the ABI's thread rule of
/// `PhCommandOutput`): `thread` is that thread, set before the call and never changed, so any
/// thread may read it; everything else belongs to that thread.
struct Sink<'a> {
    thread: usize,
    out: &'a mut dyn Write,
    error: Option<String>,
    io_error: Option<std::io::Error>,
}

unsafe extern "C" fn sink_write(context: *mut c_void, bytes: PhBytes) -> PhResultCode {
    guard("output write", PhResult::Panicked.code(), || {
        // SAFETY: `context` is the `Sink` of the running command, alive until it returns (the
        // ABI's contract), on this thread or another.
        let Some(sink) = (unsafe { own_sink(context) }) else {
            return PhResult::WrongThread.code();
        };
        if sink.io_error.is_some() {
            return PhResult::Io.code();
        }
        // SAFETY: the plugin passes a view valid for the call.
        let bytes = match unsafe { bytes.to_bytes() } {
            Ok(bytes) => bytes,
            Err(code) => return code.code(),
        };
        match sink.out.write_all(bytes) {
            Ok(()) => PhResult::Ok.code(),
            Err(e) => {
                sink.io_error = Some(e);
                PhResult::Io.code()
            }
        }
    })
}

unsafe extern "C" fn sink_set_error(context: *mut c_void, message: PhStr) {
    guard("output set_error", (), || {
        // SAFETY: as in `sink_write`.
        let Some(sink) = (unsafe { own_sink(context) }) else {
            return;
        };
        // SAFETY: the plugin passes a view valid for the call.
        let message = unsafe { message.to_str() }.unwrap_or("<invalid UTF-8 error message>");
        sink.error = Some(message.to_owned());
    })
}

/// The sink behind an output `context`, if this thread is the command's.
///
/// # Safety
///
/// `context` must be the `Sink` of a command that is running (on any thread).
unsafe fn own_sink<'s>(context: *mut c_void) -> Option<&'s mut Sink<'s>> {
    let sink = context.cast::<Sink<'s>>();
    // SAFETY: the sink is alive (the caller's contract) and `thread` is never written while the
    // command runs, so reading it races with nothing.
    let thread = unsafe { std::ptr::addr_of!((*sink).thread).read() };
    if thread != crate::quiesce::thread_id() {
        return None;
    }
    // SAFETY: this is the command's thread, which is inside the plugin's call: `call_command`
    // does not touch the sink until the call returns, so this is the only reference.
    Some(unsafe { &mut *sink })
}
