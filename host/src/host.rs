//! [`PluginHost`]: the host as a library.

use std::ffi::c_void;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use plugin_api::abi::{
    PhBytes, PhDestroyCallback, PhEventCallback, PhHandle, PhHostContext, PhInterface,
    PhPluginDescriptor, PhResult, PhResultCode, PhStr,
};
use plugin_api::{CommandInfo, PluginInfo};
use plugin_api::{Interface, Remote};

use crate::boundary::guard;
use crate::commands::{call_command, with_views, CommandHandle};
use crate::config::Config;
use crate::context::{PluginContext, PluginState};
use crate::error::{CommandError, DiscoverError, HostError, LoadError, LoadErrorKind};
use crate::loader::{self, InterfaceVersion, LayoutCheck};
use crate::observer::Observer;
use crate::order;
use crate::registry::{LockExt, Registration, Shared};
use crate::services::HOST_SERVICES;

/// A plugin host: loads plugin libraries, gives them the host services, runs their commands and
/// dispatches their events.
///
/// Loading and shutting down take `&mut self` and belong to one thread (the ABI's
/// `[main-thread]`). Everything else takes `&self`, and the host is `Send + Sync`: commands may be
/// run and events published from any thread, concurrently, also while
/// [`PluginHost::reload`] replaces a plugin or [`PluginHost::unload`] removes one (those two
/// take `&self` and run one at a time).
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
    pub(crate) shared: Arc<Shared>,
    /// The application's own context: the owner of what it registers through this host.
    application: Arc<PluginContext>,
    /// Every plugin that passed `init` and was not unloaded, in load order (a reloaded plugin
    /// takes the place of its old version). Written by `&mut self` methods and, under
    /// `lifecycle`, by reload and unload.
    pub(crate) loaded: RwLock<Vec<Arc<PluginContext>>>,
    /// Held by [`PluginHost::reload`] and [`PluginHost::unload`], so that they run one at a time
    /// (the ABI's `[main-thread]`: never two `init` or `shutdown` calls at once).
    pub(crate) lifecycle: Mutex<()>,
    /// Libraries that were refused, in the order they were tried.
    refused: Vec<LoadError>,
    /// The plugins' configuration, for plugins loaded from now on.
    pub(crate) config: Config,
    /// Whether files and folders that fail the trust rule load anyway.
    pub(crate) allow_insecure: bool,
    /// Whether [`PluginHost::load`] loads a private copy of each library (see
    /// [`PluginHost::set_private_copies`]).
    pub(crate) private_copies: bool,
    /// Which plugins run in child processes ([`PluginHost::isolate`]).
    pub(crate) isolation: crate::isolate::Settings,
    /// The private copies this host loaded, removed from the disk when it is dropped (after the
    /// plugins' shutdowns: fields drop after `Drop::drop`).
    pub(crate) copies: Mutex<Vec<crate::copy::PrivateCopy>>,
}

/// The path shown for a plugin linked into the application ([`PluginHost::load_static`]).
pub const LINKED_PATH: &str = "<linked>";

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
    /// The interfaces it declares it provides (ABI 1.3).
    pub provides: Vec<InterfaceVersion>,
    /// The interfaces it declares it requires (ABI 1.3).
    pub requires: Vec<InterfaceVersion>,
    /// Where it runs: in the host's process, or isolated in a child process
    /// ([`PluginHost::isolate`]).
    pub mode: crate::PluginMode,
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
        PluginHost::with_observer_option(None)
    }

    /// A host with no plugins whose plugins' log records and published events go to `observer`
    /// instead of the `log` facade (see [`Observer`]).
    ///
    /// # Examples
    ///
    /// ```
    /// struct Pane;
    /// impl plughost::Observer for Pane {
    ///     fn log(&self, plugin: &str, record: &log::Record<'_>) {
    ///         eprintln!("[{plugin}] {}", record.args());
    ///     }
    /// }
    /// let host = plughost::PluginHost::with_observer(std::sync::Arc::new(Pane));
    /// # drop(host);
    /// ```
    pub fn with_observer(observer: Arc<dyn Observer>) -> PluginHost {
        PluginHost::with_observer_option(Some(observer))
    }

    fn with_observer_option(observer: Option<Arc<dyn Observer>>) -> PluginHost {
        crate::quiesce::init();
        let shared = Arc::new(Shared::new(observer));
        PluginHost {
            application: PluginContext::application(Arc::clone(&shared)),
            shared,
            loaded: RwLock::new(Vec::new()),
            lifecycle: Mutex::new(()),
            refused: Vec::new(),
            config: Config::default(),
            allow_insecure: false,
            private_copies: false,
            isolation: crate::isolate::Settings::default(),
            copies: Mutex::new(Vec::new()),
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

    /// Whether [`PluginHost::load`] (and so [`PluginHost::load_dir`]) loads each library from a
    /// private copy of the file, as [`PluginHost::reload`] always does. Default: `false`.
    ///
    /// A library is mapped into the process for as long as it runs, and writing over its file
    /// in place (`cp new.so plugins/`, or a linker that rewrites its output) changes the code
    /// that runs: the host may crash. A host that runs for long while plugins are rebuilt (an
    /// application that reloads plugins, `plughost shell`) should load copies: the file can then
    /// be changed in any way. The copy is made in a private folder of the user's cache folder,
    /// checked and loaded as the file itself would be; the trust rule is checked on the file
    /// itself. The copies stay on disk while the host lives (debuggers and backtraces read them)
    /// and are removed when it is dropped; each keeps the file's size of disk until the process
    /// exits (see the README's lifetime model).
    pub fn set_private_copies(&mut self, private: bool) {
        self.private_copies = private;
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
        let paths = loader::discover(dir)?;
        let mut candidates = Vec::with_capacity(paths.len());
        let mut copies = Vec::with_capacity(paths.len());
        // One pass: the folder is examined once for all its files.
        let mut pass = loader::Pass::default();
        for path in paths {
            if self.isolation.any() {
                match self.load_isolated(&path) {
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => {
                        self.refuse(error);
                        continue;
                    }
                    None => {}
                }
            }
            let opened = if self.private_copies {
                crate::copy::open_copy(&path, self.allow_insecure, &mut pass)
                    .map(|(candidate, copy)| (candidate, Some(copy)))
            } else {
                loader::open(&path, self.allow_insecure, &mut pass)
                    .map(|candidate| (candidate, None))
            };
            match opened {
                Ok((candidate, copy)) => {
                    candidates.push((path, candidate));
                    copies.push(copy);
                }
                Err(error) => self.refuse(error),
            }
        }
        // Ended before any plugin's `init` runs (see `Pass`).
        drop(pass);
        for (index, result) in self.start_in_order(candidates) {
            match result {
                Ok(_) => self
                    .copies
                    .get_mut()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(copies[index].take()),
                Err(error) => self.refuse(error),
            }
        }
        Ok(())
    }

    /// Initialises checked plugins providers first, otherwise in the order given (see
    /// `order.rs`): refuses those whose requirements nothing provides and those in a cycle, then
    /// starts the others. Each candidate's index with what became of it, refusals first, then
    /// starts in the order they ran.
    fn start_in_order(
        &mut self,
        candidates: Vec<(PathBuf, loader::Candidate)>,
    ) -> Vec<(usize, Result<String, LoadError>)> {
        let (order, refused) = {
            let nodes: Vec<order::Node<'_>> = candidates
                .iter()
                .map(|(_, c)| order::Node {
                    name: &c.info.name,
                    provides: &c.info.provides,
                    requires: &c.info.requires,
                })
                .collect();
            order::init_order(&nodes, |need| {
                self.shared
                    .interface_available(&need.id, need.major, need.minor)
                    .is_ok()
            })
        };
        let mut candidates: Vec<Option<(PathBuf, loader::Candidate)>> =
            candidates.into_iter().map(Some).collect();
        let mut results = Vec::with_capacity(candidates.len());
        for (index, kind) in refused {
            if let Some((path, _)) = candidates[index].take() {
                results.push((index, Err(LoadError { path, kind })));
            }
        }
        for index in order {
            if let Some((path, candidate)) = candidates[index].take() {
                results.push((index, self.start(&path, candidate)));
            }
        }
        results
    }

    /// Records a refused library.
    pub(crate) fn refuse(&mut self, error: LoadError) {
        log::debug!("refused {error}");
        self.refused.push(error);
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
        if self.isolation.any() {
            if let Some(loaded) = self.load_isolated(path) {
                return loaded;
            }
        }
        if !self.private_copies {
            let candidate = loader::open(path, self.allow_insecure, &mut loader::Pass::default())?;
            return self.start(path, candidate);
        }
        let (candidate, copy) =
            crate::copy::open_copy(path, self.allow_insecure, &mut loader::Pass::default())?;
        let name = self.start(path, candidate)?;
        self.copies
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .push(copy);
        Ok(name)
    }

    /// Loads a plugin linked into the application (a static plugin): `descriptor` is what its
    /// entry point returns, such as `plugin_api::linked_descriptor::<MyPlugin>()` for a Rust plugin or the
    /// address of a C plugin's descriptor. Makes the checks of [`PluginHost::load`] but those of
    /// a file (trust rule, type layout: the compiler checked the types), then calls the plugin's
    /// `init`. The plugin's path, as [`PluginHost::plugins`] and its errors show it, is
    /// `<linked>`. Returns the plugin's name.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] naming the first check that failed. The host is unchanged.
    pub fn load_static(
        &mut self,
        descriptor: &'static PhPluginDescriptor,
    ) -> Result<String, LoadError> {
        let path = Path::new(LINKED_PATH);
        // SAFETY: a `'static` reference: the descriptor, and (by the ABI's contract for a
        // descriptor) its function table and strings, stay valid for the rest of the process.
        let candidate = unsafe {
            loader::check_descriptor(descriptor, path, None, |_| Ok(LayoutCheck::Linked))
        }
        .map_err(|kind| LoadError {
            path: path.to_owned(),
            kind,
        })?;
        self.start(path, candidate)
    }

    /// Loads several plugins linked into the application, as [`PluginHost::load_dir`] does the
    /// files of a folder: each descriptor is checked as by [`PluginHost::load_static`], then
    /// providers of interfaces are initialised before their users (otherwise in the order of
    /// `descriptors`), a plugin whose requirement nothing provides is refused, and so are the
    /// plugins of a cycle of requirements, naming it. Returns what became of each descriptor, in
    /// the order of `descriptors`: the plugin's name, or why it was refused.
    pub fn load_static_all(
        &mut self,
        descriptors: &[&'static PhPluginDescriptor],
    ) -> Vec<Result<String, LoadError>> {
        let path = Path::new(LINKED_PATH);
        let mut results: Vec<Option<Result<String, LoadError>>> =
            (0..descriptors.len()).map(|_| None).collect();
        let mut candidates = Vec::new();
        let mut indices = Vec::new();
        for (index, descriptor) in descriptors.iter().enumerate() {
            // SAFETY: a `'static` reference: the descriptor, and (by the ABI's contract for a
            // descriptor) its function table and strings, stay valid for the rest of the
            // process.
            let checked = unsafe {
                loader::check_descriptor(*descriptor, path, None, |_| Ok(LayoutCheck::Linked))
            };
            match checked {
                Ok(candidate) => {
                    candidates.push((path.to_owned(), candidate));
                    indices.push(index);
                }
                Err(kind) => {
                    results[index] = Some(Err(LoadError {
                        path: path.to_owned(),
                        kind,
                    }))
                }
            }
        }
        for (candidate, result) in self.start_in_order(candidates) {
            results[indices[candidate]] = Some(result);
        }
        results.into_iter().flatten().collect()
    }

    /// Initialises a checked plugin: the second half of [`PluginHost::load`]. Its required
    /// interfaces (but the optional ones) must be provided now.
    pub(crate) fn start(
        &mut self,
        path: &Path,
        candidate: loader::Candidate,
    ) -> Result<String, LoadError> {
        let refuse = |kind| LoadError {
            path: path.to_owned(),
            kind,
        };
        for need in candidate.info.requires.iter().filter(|r| !r.optional) {
            if let Err(found) = self
                .shared
                .interface_available(&need.id, need.major, need.minor)
            {
                return Err(refuse(LoadErrorKind::MissingInterface {
                    required: need.clone(),
                    found,
                }));
            }
        }
        let loaded = self.loaded.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(first) = loaded.iter().find(|p| p.name == candidate.info.name) {
            return Err(refuse(LoadErrorKind::Duplicate {
                name: candidate.info.name,
                first: first.file.clone(),
            }));
        }
        let layout = candidate.layout;
        let context = self.new_context(candidate);
        let initialised = self.initialise(&context);
        if let Err(kind) = initialised.and_then(|()| match context.activate() {
            true => Ok(()),
            // Faulted during `init`: why it faulted, before anything it logged.
            false => Err(LoadErrorKind::Init {
                code: PhResult::Panicked,
                message: context.fault_reason().or_else(|| context.take_init_error()),
            }),
        }) {
            self.refuse_initialised(&context);
            return Err(refuse(kind));
        }
        // An error it logged during an `init` that succeeded is no reason for anything.
        drop(context.take_init_error());
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
        let name = context.name.clone();
        self.loaded
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .push(context);
        Ok(name)
    }

    /// The context of a checked plugin, before its `init`, with its configuration.
    pub(crate) fn new_context(&self, candidate: loader::Candidate) -> Arc<PluginContext> {
        let settings = self.config.settings(&candidate.info.name);
        PluginContext::new(
            Arc::clone(&self.shared),
            candidate.vtable,
            candidate.info,
            candidate.layout,
            settings,
        )
    }

    /// Calls the plugin's `init` (while [`crate::current_call`] names it, warning if it is
    /// slow) and keeps the plugin data it returns. The caller activates the plugin, or on error
    /// calls [`PluginHost::refuse_initialised`].
    pub(crate) fn initialise(&self, context: &Arc<PluginContext>) -> Result<(), LoadErrorKind> {
        let Some(init) = context.vtable().init else {
            return Err(LoadErrorKind::MissingFunction("init"));
        };
        let mut plugin_data: *mut c_void = std::ptr::null_mut();
        let ctx = Arc::as_ptr(context).cast::<PhHostContext>().cast_mut();
        // Its error records on this thread, from now until `init` returns, say why it failed.
        context.begin_init_on_this_thread();
        let call = crate::call::enter_call(&context.name, crate::call::CallKind::Init);
        let started = loader::Stamp::now();
        // SAFETY: the loader checked that `init` is the plugin's function of this ABI version;
        // the context and the services table outlive the plugin, and `plugin_data` is writable.
        let code = unsafe { (init.0)(ctx, &HOST_SERVICES, &mut plugin_data) };
        loader::warn_if_slow(started, || {
            format!("plugin `{}` ({}): init", context.name, context.path)
        });
        drop(call);
        match PhResult::from_code(code) {
            PhResult::Ok => {
                // Passed to the plugin only once it is active (see `enumerate`).
                context.plugin_data.set(plugin_data);
                Ok(())
            }
            code => Err(LoadErrorKind::Init {
                code,
                message: context.take_init_error(),
            }),
        }
    }

    /// Ends a plugin whose `init` failed, or that faulted during it: it gets no call (not even
    /// `shutdown`), and its registrations are removed (each `destroy` runs once).
    pub(crate) fn refuse_initialised(&self, context: &Arc<PluginContext>) {
        context.set_state(PluginState::ShutDown);
        self.shared.remove_all_of(context);
    }

    /// The libraries that were refused, with the reasons, in the order they were tried.
    pub fn refused(&self) -> &[LoadError] {
        &self.refused
    }

    /// Every plugin that was initialised, in load order, with its commands.
    pub fn plugins(&self) -> Vec<PluginSummary> {
        let loaded = self.loaded.read_or_recover().clone();
        loaded
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
                    path: p.file.clone(),
                    abi_version: p.abi_version,
                    layout: p.layout,
                    state: p.state(),
                    commands,
                    fault: p.fault_reason(),
                    provides: p.provides.clone(),
                    requires: p.requires.clone(),
                    mode: self.shared.isolated.mode_of(Arc::as_ptr(p)),
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
        // Counted as a call under way: it may call the plugin's `enumerate_commands`.
        let _inside = crate::quiesce::enter();
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
        // Inside before the lookup: a shutdown of the command's plugin (by `unload`, or of the old
        // version after a reload) that begins after it waits for the call (see `crate::quiesce`).
        let _inside = crate::quiesce::enter();
        let command = self
            .shared
            .command(name)
            .filter(|c| c.is_active())
            .ok_or_else(|| CommandError::Unknown(name.to_owned()))?;
        with_views(args, |views| {
            call_command(&self.shared, name, &command, views, out)
        })
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
        // Counted as a call under way: a plugin's shutdown waits for the dispatch to end.
        let _inside = crate::quiesce::enter();
        self.shared
            .publish(topic, payload)
            .map_err(|code| HostError::Code {
                operation: format!("publish({topic:?})"),
                code,
            })
    }

    /// Subscribes the application to events published on `topic` (or `*`, every topic): `f`
    /// gets each event's topic and payload on the publisher's thread, after the plugins'
    /// subscribers of the same topic that subscribed earlier (subscription order; `*` last), and
    /// may publish in turn. Returns the subscription's handle, for [`PluginHost::unregister`].
    /// A panic in `f` is caught and logged; the subscription stays. The subscription ends at
    /// [`PluginHost::shutdown`], after the plugins' shutdowns (it still sees what they publish
    /// while shutting down).
    ///
    /// # Errors
    ///
    /// [`HostError::Code`] with [`PhResult::InvalidArgument`] for an invalid topic,
    /// [`PhResult::LimitExceeded`] beyond the per-participant registration limit, or
    /// [`PhResult::ShutDown`] after shutdown.
    ///
    /// # Examples
    ///
    /// ```
    /// let host = plughost::PluginHost::new();
    /// let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    /// let counter = std::sync::Arc::clone(&seen);
    /// let handle = host.subscribe("app.tick", move |_topic, _payload| {
    ///     counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    /// })?;
    /// host.publish("app.tick", b"")?;
    /// host.unregister(handle)?;
    /// host.publish("app.tick", b"")?;
    /// assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 1);
    /// # Ok::<(), plughost::HostError>(())
    /// ```
    pub fn subscribe<F>(&self, topic: &str, f: F) -> Result<PhHandle, HostError>
    where
        F: Fn(&str, &[u8]) + Send + Sync + 'static,
    {
        let user_data = Box::into_raw(Box::new(f)).cast::<c_void>();
        // SAFETY: `closure_handler::<F>` and `drop_closure::<F>` take the `Box<F>` just made,
        // which `F: Send + Sync` lets any thread use and drop; the host gives it back to
        // `drop_closure` once, its only release.
        unsafe {
            self.subscribe_raw(
                topic,
                PhEventCallback(closure_handler::<F>),
                user_data,
                Some(PhDestroyCallback(drop_closure::<F>)),
            )
        }
    }

    /// [`PluginHost::subscribe`] with a raw callback, user data and `destroy`, as a plugin
    /// subscribes through the host services: for bindings to other languages. The host calls
    /// `destroy(user_data)` exactly once, also when it refuses the subscription (before this
    /// returns). A callback that returns an error code (or panics) is logged, never faulted.
    ///
    /// # Errors
    ///
    /// As [`PluginHost::subscribe`].
    ///
    /// # Safety
    ///
    /// `callback` and `destroy` must be safe to call with `user_data` from any thread, `callback`
    /// several times at once, until `destroy` is called (the ABI's rules for a plugin's
    /// subscription, see `PhHostServices::subscribe`).
    pub unsafe fn subscribe_raw(
        &self,
        topic: &str,
        callback: PhEventCallback,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
    ) -> Result<PhHandle, HostError> {
        let registration = Registration::new(
            self.shared.new_handle(),
            Arc::clone(&self.application),
            callback,
            user_data,
            destroy,
        );
        self.shared
            .subscribe(registration, topic)
            .map_err(|code| HostError::Code {
                operation: format!("subscribe({topic:?})"),
                code,
            })
    }

    /// Ends a subscription of the application made with [`PluginHost::subscribe`] or
    /// [`PluginHost::subscribe_raw`]: no later publish reaches it, and its closure is dropped
    /// (its `destroy` runs) once the dispatches under way have finished.
    ///
    /// # Errors
    ///
    /// [`HostError::Code`] with [`PhResult::UnknownHandle`] for a handle that is not one of the
    /// application's current subscriptions.
    pub fn unregister(&self, handle: PhHandle) -> Result<(), HostError> {
        self.shared
            .unregister(&self.application, handle)
            .map_err(|code| HostError::Code {
                operation: format!("unregister({handle})"),
                code,
            })
    }

    /// Provides the interface `I` to the plugins, implemented by `provider`: for a trait made an
    /// interface with `#[plugin_api::interface]`, an `Arc` of a type that implements it (the
    /// table of that type: calls reach its methods directly), an `Arc<dyn Trait>`, or a
    /// [`plugin_api::Provision`] (see [`plugin_api::IntoProvision`]). Provide it before loading
    /// the plugins that require it. It ends with [`PluginHost::unregister`] or at
    /// [`PluginHost::shutdown`], after the plugins' shutdowns; `provider` is dropped once every
    /// caller released it (on an error, before this returns).
    ///
    /// # Errors
    ///
    /// [`HostError::Code`] with [`PhResult::AlreadyExists`] if someone provides that id and
    /// major already, or [`PhResult::ShutDown`] after shutdown.
    pub fn provide<I: Interface + ?Sized>(
        &self,
        provider: impl plugin_api::IntoProvision<I>,
    ) -> Result<PhHandle, HostError> {
        let (table, state, destroy) = provider.into_provision().into_raw();
        // SAFETY: the provision's table takes its state as user data from any thread, until its
        // destroy, which the host runs once (the contract of `Provision::from_raw`).
        unsafe {
            self.provide_raw(
                I::ID,
                I::MAJOR,
                I::MINOR,
                I::SIGNATURE,
                plugin_api::table_layout::<I>(),
                (table as *const I::Table).cast(),
                std::mem::size_of::<I::Table>() as u32,
                state,
                Some(PhDestroyCallback(destroy)),
            )
        }
    }

    /// [`PluginHost::provide`] with a raw table, user data and `destroy`, as a plugin provides
    /// through the host services (see `PhHostServices::provide_interface`): for bindings to other
    /// languages. `destroy(user_data)` runs exactly once, also when the host refuses (before this
    /// returns). `signature` and `layout` are what Rust callers compare with theirs (may be
    /// empty and NULL: see `PhInterfaceDecl::signature` and `PhInterfaceDecl::layout`).
    ///
    /// # Errors
    ///
    /// As [`PluginHost::provide`]; [`PhResult::InvalidArgument`] for an invalid id or a NULL
    /// table.
    ///
    /// # Safety
    ///
    /// `table` is the interface's function table of `table_size` bytes, valid and unchanged until
    /// `destroy` runs; its functions and `destroy` may be called with `user_data` from any thread
    /// (the functions several at once) until then. `layout` is NULL or the address of
    /// abi_stable's `TypeLayout` of the table, valid for the rest of the process.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn provide_raw(
        &self,
        id: &str,
        major: u16,
        minor: u16,
        signature: &str,
        layout: *const c_void,
        table: *const c_void,
        table_size: u32,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
    ) -> Result<PhHandle, HostError> {
        let registration = Registration::new(
            self.shared.new_handle(),
            Arc::clone(&self.application),
            crate::interfaces::Table(table),
            user_data,
            destroy,
        );
        let declaration = crate::interfaces::Declaration {
            id,
            major,
            minor,
            table_size,
            signature,
            layout,
        };
        self.shared
            .provide_interface(registration, declaration)
            .map_err(|code| HostError::Code {
                operation: format!("provide_interface({id:?}, {major})"),
                code,
            })
    }

    /// Queries the interface `I` for the application: calls through the returned [`Remote`] go
    /// straight to the provider, and fail with `SHUT_DOWN` once it is gone. Dropping it releases
    /// the reference.
    ///
    /// # Errors
    ///
    /// [`HostError::Code`] with [`PhResult::NotFound`] if nobody provides it,
    /// [`PhResult::VersionMismatch`] if the provider's table is older than `I`'s, or differs
    /// from it (its signature or its type layout: see [`Remote`]).
    pub fn interface<I: Interface + ?Sized>(&self) -> Result<Remote<I>, HostError> {
        let raw = self.query_raw(I::ID, I::MAJOR, std::mem::size_of::<I::Table>() as u32)?;
        let shared = Arc::clone(&self.shared);
        let application = Arc::clone(&self.application);
        let release = move |handle| {
            // Already released if the host shut down: nothing to do then.
            let _ = shared.release_interface(&application, handle);
        };
        // SAFETY: a fresh reference from a query of `I`'s id and major with at least
        // `I::Table`'s size, released only by `release`.
        let remote = unsafe { Remote::from_raw(raw, Box::new(release)) };
        remote.check_provider().map_err(|error| HostError::Code {
            operation: error.message().to_owned(),
            code: error.code(),
        })?;
        Ok(remote)
    }

    /// Queries an interface for the application, raw (see `PhHostServices::query_interface`):
    /// release the reference with [`PluginHost::release_interface`].
    ///
    /// # Errors
    ///
    /// As [`PluginHost::interface`].
    pub fn query_raw(
        &self,
        id: &str,
        major: u16,
        min_table_size: u32,
    ) -> Result<PhInterface, HostError> {
        self.shared
            .query_interface(&self.application, id, major, min_table_size)
            .map_err(|code| HostError::Code {
                operation: format!("query_interface({id:?}, {major})"),
                code,
            })
    }

    /// Releases a reference of [`PluginHost::query_raw`].
    ///
    /// # Errors
    ///
    /// [`HostError::Code`] with [`PhResult::UnknownHandle`] if it is not one of the
    /// application's references.
    pub fn release_interface(&self, handle: PhHandle) -> Result<(), HostError> {
        self.shared
            .release_interface(&self.application, handle)
            .map_err(|code| HostError::Code {
                operation: format!("release_interface({handle})"),
                code,
            })
    }

    /// The interfaces provided now, sorted: id, major, minor and the provider's name
    /// (`application` for the application's).
    pub fn interfaces(&self) -> Vec<(String, u16, u16, String)> {
        self.shared.provided_interfaces()
    }

    /// Shuts every active plugin down, in reverse load order: no new call reaches the plugin,
    /// the calls under way on other threads (plugin threads publishing, for example) are waited
    /// for, its `shutdown` runs, then its remaining registrations are removed. Faulted plugins get
    /// no call. Idempotent.
    pub fn shutdown(&mut self) {
        let loaded = self
            .loaded
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for plugin in loaded.iter().rev() {
            self.shut_down(plugin);
        }
        if self
            .application
            .transition(PluginState::Active, PluginState::ShutDown)
        {
            self.shared.remove_all_of(&self.application);
        }
    }
}

impl PluginHost {
    /// Shuts one plugin down, if it is active (see [`PluginHost::shutdown`]): no new call
    /// reaches it, the calls under way are waited for, its `shutdown` runs, its remaining
    /// registrations are removed. False if it was not active (shut down, or faulted: no call).
    pub(crate) fn shut_down(&self, plugin: &Arc<PluginContext>) -> bool {
        self.shut_down_saving(plugin, None)
    }

    /// [`PluginHost::shut_down`], which first asks the plugin for the state to hand over to its
    /// next build (its `save_state`, if it has one) when `saved` is given: see
    /// [`crate::reload`].
    pub(crate) fn shut_down_saving(
        &self,
        plugin: &Arc<PluginContext>,
        saved: Option<&mut crate::reload::SavedState>,
    ) -> bool {
        if !plugin.begin_shutdown() {
            return false;
        }
        self.shared
            .plugins
            .write_or_recover()
            .retain(|p| !Arc::ptr_eq(p, plugin));
        // Every call that could still pass the plugin data or call the plugin has returned.
        crate::quiesce::synchronize(&format_args!("shutdown of plugin `{}`", plugin.name));
        if let Some(saved) = saved {
            *saved = crate::reload::save_state(plugin);
            if plugin.state() == PluginState::Faulted {
                // Its `save_state` panicked: a faulted plugin gets no `shutdown`.
                return true;
            }
        }
        if let Some(shutdown) = plugin.vtable().shutdown {
            // SAFETY: the plugin's own function with the data its `init` returned, called once
            // (`begin_shutdown` succeeds once).
            let code = unsafe { (shutdown.0)(plugin.plugin_data.get()) };
            let code = PhResult::from_code(code);
            if code != PhResult::Ok {
                log::warn!("plugin `{}`: shutdown failed: {code}", plugin.name);
            }
        }
        plugin.set_state(PluginState::ShutDown);
        self.shared.remove_all_of(plugin);
        log::debug!("plugin `{}` shut down", plugin.name);
        true
    }
}

impl Drop for PluginHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The event callback of [`PluginHost::subscribe`]: calls the application's closure `F`.
unsafe extern "C" fn closure_handler<F>(
    user_data: *mut c_void,
    topic: PhStr,
    payload: PhBytes,
) -> PhResultCode
where
    F: Fn(&str, &[u8]) + Send + Sync + 'static,
{
    guard(
        "a handler of the application",
        PhResult::Error.code(),
        || {
            // SAFETY: `user_data` is the `Box<F>` of `PluginHost::subscribe`, alive until
            // `drop_closure` runs, which the host does not do while a dispatch uses it.
            let f = unsafe { &*user_data.cast::<F>() };
            // SAFETY: the host passes views valid for the duration of the call.
            match unsafe { (topic.to_str(), payload.to_bytes()) } {
                (Ok(topic), Ok(payload)) => {
                    f(topic, payload);
                    PhResult::Ok.code()
                }
                (Err(code), _) | (_, Err(code)) => code.code(),
            }
        },
    )
}

/// The `destroy` of [`PluginHost::subscribe`]: drops the application's closure `F`.
unsafe extern "C" fn drop_closure<F>(user_data: *mut c_void) {
    guard("the drop of a handler of the application", (), || {
        // SAFETY: `user_data` is the `Box<F>` of `PluginHost::subscribe`; the host calls
        // `destroy` once, when no dispatch uses it any more.
        drop(unsafe { Box::from_raw(user_data.cast::<F>()) });
    })
}
