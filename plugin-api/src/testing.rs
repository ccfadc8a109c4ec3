//! A mock host, to test a plugin in-process, without the host binary and without dynamic loading.
//!
//! Enabled by the `testing` feature; add it to the plugin's dev-dependencies:
//!
//! ```toml
//! [dev-dependencies]
//! plugin-api = { path = "../plugin-api", features = ["testing"] }
//! ```
//!
//! [`MockHost`] implements the whole host-services table ([`PhHostServices`]) and drives the plugin
//! through its exported function table, exactly as the real host does: the same descriptor, the
//! same `init`, `shutdown` and `enumerate_commands`, the same callbacks, the same argument checks.
//! What passes here passes in the real host. On top of that it records what the plugin did: its
//! log records, its registrations, the events it published.
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
//! use plugin_api::testing::MockHost;
//!
//! let mut host = MockHost::new();
//! host.load::<Hello>().unwrap();
//! assert_eq!(host.commands(), ["hello"]);
//! assert_eq!(host.run("hello", &["world"]).unwrap(), "Hello, world!\n");
//! host.shutdown();
//! ```

#![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)] // removed when this file is split (issue #11)

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::abi::{
    is_valid_name, is_valid_topic, PhBytes, PhCommandCallback, PhCommandInfo,
    PhCommandInfoCallback, PhCommandOutput, PhDestroyCallback, PhEventCallback, PhHandle,
    PhHostContext, PhHostServices, PhLogLevel, PhPluginDescriptor, PhPluginInfo,
    PhPluginInfoCallback, PhResult, PhResultCode, PhSetErrorFn, PhStr, PhWriteFn,
    PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR, PH_MAX_EVENT_DEPTH,
};
use crate::{CommandInfo, Error, Plugin};

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

/// A command, as a plugin enumerated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    /// The command name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its usage.
    pub usage: String,
}

/// A registered callback and its user data; `destroy` runs when the last reference goes.
struct Registration<C> {
    handle: PhHandle,
    owner: Arc<Context>,
    key: String,
    callback: C,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    active: AtomicBool,
}

// SAFETY: the ABI requires callbacks and their user data to be usable from any thread; the rest is
// immutable or atomic.
unsafe impl<C: Send> Send for Registration<C> {}
// SAFETY: as above.
unsafe impl<C: Sync> Sync for Registration<C> {}

impl<C> Drop for Registration<C> {
    fn drop(&mut self) {
        if let Some(destroy) = self.destroy {
            // SAFETY: the destroy function the plugin gave for this user data, called once.
            unsafe { (destroy.0)(self.user_data) };
        }
    }
}

/// The mock's per-plugin state; a pointer to it is the plugin's host context.
struct Context {
    state: Arc<State>,
    name: String,
    version: String,
    description: String,
    descriptor: &'static PhPluginDescriptor,
    plugin_data: AtomicPtr<c_void>,
    active: AtomicBool,
    /// The plugin's configuration; never changed after `load`, so the values' bytes stay put.
    config: BTreeMap<String, Box<str>>,
}

// SAFETY: the descriptor is immutable static data; the plugin data is only passed back to the
// plugin's thread-safe functions.
unsafe impl Send for Context {}
// SAFETY: as above.
unsafe impl Sync for Context {}

#[derive(Default)]
struct State {
    log_level: u32,
    logs: Mutex<Vec<LogRecord>>,
    published: Mutex<Vec<PublishedEvent>>,
    commands: Mutex<BTreeMap<String, Arc<Registration<PhCommandCallback>>>>,
    /// The text given with each command's registration (ABI 1.2), by command name.
    command_texts: Mutex<BTreeMap<String, (String, String)>>,
    subscriptions: Mutex<Vec<Arc<Registration<PhEventCallback>>>>,
    plugins: Mutex<Vec<Arc<Context>>>,
    next_handle: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// An in-process host for tests. See the [module documentation](self).
pub struct MockHost {
    state: Arc<State>,
    /// Loaded plugins in load order, for shutdown.
    loaded: Vec<Arc<Context>>,
    /// The configuration of plugins loaded from now on: plugin name, key, value.
    config: BTreeMap<String, BTreeMap<String, Box<str>>>,
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
        MockHost {
            state: Arc::new(State {
                log_level: level as u32,
                next_handle: AtomicU64::new(1),
                ..State::default()
            }),
            loaded: Vec::new(),
            config: BTreeMap::new(),
        }
    }

    /// Sets `key` in the configuration of the plugin named `plugin`, as the host service
    /// `config_get` gives it (`Host::config`): `value` is the text the plugin reads, such as `20`
    /// or `two words`. Like the real host's configuration, it applies to plugins loaded afterwards.
    pub fn set_config(&mut self, plugin: &str, key: &str, value: &str) {
        self.config
            .entry(plugin.to_owned())
            .or_default()
            .insert(key.to_owned(), value.into());
    }

    /// Loads the plugin `P` from its Rust value, through the function table that
    /// [`crate::export_plugin!`] exports for it, and calls its `init`.
    ///
    /// # Errors
    ///
    /// The error `init` returned, or why the descriptor was refused.
    pub fn load<P: Plugin>(&mut self) -> Result<(), Error> {
        let vtable = Box::leak(Box::new(crate::plugin::vtable::<P>()));
        let descriptor = Box::leak(Box::new(crate::plugin::descriptor::<P>(vtable)));
        self.load_descriptor(descriptor)
    }

    /// Loads a plugin from its descriptor (a plugin on the raw ABI, linked into the test) and calls
    /// its `init`, after the checks the real host makes: ABI version, sizes, functions, name.
    ///
    /// # Errors
    ///
    /// The error `init` returned, or why the descriptor was refused.
    pub fn load_descriptor(
        &mut self,
        descriptor: &'static PhPluginDescriptor,
    ) -> Result<(), Error> {
        let refuse = |why: &str| Err(Error::with_code(PhResult::InvalidArgument, why));
        if descriptor.abi_major != PH_ABI_VERSION_MAJOR
            || descriptor.abi_minor > PH_ABI_VERSION_MINOR
        {
            return refuse("unsupported ABI version");
        }
        if (descriptor.struct_size as usize) < std::mem::size_of::<PhPluginDescriptor>() {
            return refuse("descriptor too small");
        }
        // SAFETY: the descriptor is static data whose pointers lead to static data.
        let Some(vtable) = (unsafe { descriptor.vtable.as_ref() }) else {
            return refuse("no function table");
        };
        if (vtable.struct_size as usize) < std::mem::size_of::<crate::abi::PhPluginVtable>() {
            return refuse("function table too small");
        }
        let (Some(init), Some(_)) = (vtable.init, vtable.shutdown) else {
            return refuse("a required function is missing");
        };
        // Optional from ABI 1.2 on: the host keeps the text of the commands.
        if descriptor.abi_minor < 2 && vtable.enumerate_commands.is_none() {
            return refuse("a required function is missing");
        }
        // SAFETY: static strings of the descriptor.
        let read = |s: PhStr| unsafe { s.to_str() }.map(str::to_owned);
        let (Ok(name), Ok(version), Ok(description)) = (
            read(descriptor.name),
            read(descriptor.version),
            read(descriptor.description),
        ) else {
            return refuse("a descriptor string is not UTF-8");
        };
        if !is_valid_name(&name) || self.loaded.iter().any(|p| p.name == name) {
            return refuse("invalid or duplicate plugin name");
        }
        let context = Arc::new(Context {
            state: Arc::clone(&self.state),
            config: self.config.get(&name).cloned().unwrap_or_default(),
            name,
            version,
            description,
            descriptor,
            plugin_data: AtomicPtr::new(std::ptr::null_mut()),
            active: AtomicBool::new(true),
        });
        let mut plugin_data = std::ptr::null_mut();
        // SAFETY: the plugin's `init` with a context and a table that outlive it.
        let code = unsafe {
            (init.0)(
                Arc::as_ptr(&context).cast::<PhHostContext>().cast_mut(),
                &MOCK_SERVICES,
                &mut plugin_data,
            )
        };
        if code != PhResult::Ok.code() {
            context.active.store(false, Ordering::Release);
            remove_all_of(&self.state, &context);
            return Err(Error::with_code(
                PhResult::from_code(code),
                format!("init failed: {}", PhResult::from_code(code)),
            ));
        }
        context.plugin_data.store(plugin_data, Ordering::Release);
        lock(&self.state.plugins).push(Arc::clone(&context));
        self.loaded.push(context);
        Ok(())
    }

    /// Runs the command `name` with `args` and returns what it printed (lossily decoded).
    ///
    /// # Errors
    ///
    /// [`PhResult::NotFound`] for an unknown command; otherwise the code the command returned and
    /// the message it set.
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
        let command = lock(&self.state.commands)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::with_code(PhResult::NotFound, format!("no command `{name}`")))?;
        let args: Vec<PhStr> = args.iter().map(|a| PhStr::new(a)).collect();
        let mut sink = Sink::default();
        let output = PhCommandOutput {
            struct_size: std::mem::size_of::<PhCommandOutput>() as u32,
            context: (&mut sink as *mut Sink).cast(),
            write: PhWriteFn(sink_write),
            set_error: PhSetErrorFn(sink_set_error),
        };
        // SAFETY: the plugin's callback and user data, alive while we hold the registration;
        // arguments and output outlive the call.
        let code =
            unsafe { (command.callback.0)(command.user_data, args.as_ptr(), args.len(), &output) };
        match PhResult::from_code(code) {
            PhResult::Ok => Ok(sink.out),
            code => Err(Error::with_code(
                code,
                sink.error.unwrap_or_else(|| code.message().to_owned()),
            )),
        }
    }

    /// Publishes an event from the host: every subscriber of `topic` (and of `*`) runs.
    ///
    /// # Errors
    ///
    /// [`PhResult::InvalidArgument`] for an invalid topic.
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), Error> {
        match dispatch(&self.state, topic, payload) {
            Ok(()) => Ok(()),
            Err(code) => Err(Error::with_code(
                code,
                format!("publish({topic:?}): {code}"),
            )),
        }
    }

    /// The names of the registered commands, sorted.
    pub fn commands(&self) -> Vec<String> {
        lock(&self.state.commands).keys().cloned().collect()
    }

    /// The topics of the registered subscriptions, in subscription order.
    pub fn subscriptions(&self) -> Vec<String> {
        lock(&self.state.subscriptions)
            .iter()
            .map(|s| s.key.clone())
            .collect()
    }

    /// Drives the command enumeration of the plugin named `plugin`: `f` is called once per command
    /// until it returns `false`.
    ///
    /// # Errors
    ///
    /// [`PhResult::NotFound`] for an unknown plugin, or the code its enumeration returned.
    pub fn enumerate_commands<F>(&self, plugin: &str, mut f: F) -> Result<(), Error>
    where
        F: FnMut(&CommandInfo<'_>) -> bool,
    {
        let context = self
            .loaded
            .iter()
            .find(|p| p.name == plugin)
            .ok_or_else(|| Error::with_code(PhResult::NotFound, format!("no plugin `{plugin}`")))?;
        let code = enumerate_commands_of(
            context,
            PhCommandInfoCallback(command_info_to_closure::<F>),
            (&mut f as *mut F).cast(),
        );
        match PhResult::from_code(code) {
            PhResult::Ok => Ok(()),
            code => Err(Error::with_code(
                code,
                format!("enumerate_commands: {code}"),
            )),
        }
    }

    /// Every command the plugin named `plugin` enumerates.
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
        lock(&self.state.logs).clone()
    }

    /// The events plugins published so far (not those the test published).
    pub fn published(&self) -> Vec<PublishedEvent> {
        lock(&self.state.published).clone()
    }

    /// Shuts every plugin down, in reverse load order, then removes what they left registered.
    /// Idempotent; also done on drop.
    pub fn shutdown(&mut self) {
        for context in self.loaded.iter().rev() {
            if !context.active.swap(false, Ordering::AcqRel) {
                continue;
            }
            lock(&self.state.plugins).retain(|p| !Arc::ptr_eq(p, context));
            if let Some(shutdown) = context.descriptor_vtable().shutdown {
                // SAFETY: the plugin's own function with its own data, called once.
                unsafe { (shutdown.0)(context.plugin_data.load(Ordering::Acquire)) };
            }
            remove_all_of(&self.state, context);
        }
    }
}

impl Drop for MockHost {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Context {
    fn descriptor_vtable(&self) -> &'static crate::abi::PhPluginVtable {
        // SAFETY: checked non-null at load; static data.
        unsafe { &*self.descriptor.vtable }
    }
}

fn enumerate_commands_of(
    context: &Context,
    callback: PhCommandInfoCallback,
    user_data: *mut c_void,
) -> PhResultCode {
    if !context.active.load(Ordering::Acquire) {
        return PhResult::NotFound.code();
    }
    match context.descriptor_vtable().enumerate_commands {
        // SAFETY: the plugin's function with its data; callback and user data valid for the call.
        Some(f) => unsafe {
            (f.0)(
                context.plugin_data.load(Ordering::Acquire),
                callback,
                user_data,
            )
        },
        None => {
            // ABI 1.2: the host's records, in registration order.
            let mut own: Vec<(PhHandle, String)> = lock(&context.state.commands)
                .iter()
                .filter(|(_, r)| std::ptr::eq(Arc::as_ptr(&r.owner), context))
                .map(|(name, r)| (r.handle, name.clone()))
                .collect();
            own.sort();
            let texts = lock(&context.state.command_texts).clone();
            for (_, name) in own {
                let (description, usage) = texts.get(&name).cloned().unwrap_or_default();
                let info = crate::abi::PhCommandInfo {
                    struct_size: std::mem::size_of::<crate::abi::PhCommandInfo>() as u32,
                    name: PhStr::new(&name),
                    description: PhStr::new(&description),
                    usage: PhStr::new(&usage),
                };
                // SAFETY: the caller's callback and user data; `info` outlives the call.
                if !unsafe { (callback.0)(user_data, &info) } {
                    break;
                }
            }
            PhResult::Ok.code()
        }
    }
}

/// Removes every registration of `owner`; their `destroy` runs when no dispatch holds them.
fn remove_all_of(state: &State, owner: &Context) {
    let removed_commands: Vec<_> = {
        let mut commands = lock(&state.commands);
        let names: Vec<String> = commands
            .iter()
            .filter(|(_, r)| std::ptr::eq(Arc::as_ptr(&r.owner), owner))
            .map(|(n, _)| n.clone())
            .collect();
        names.iter().filter_map(|n| commands.remove(n)).collect()
    };
    let removed_subscriptions: Vec<_> = {
        let mut subscriptions = lock(&state.subscriptions);
        let (mine, others) = subscriptions
            .drain(..)
            .partition(|r| std::ptr::eq(Arc::as_ptr(&r.owner), owner));
        *subscriptions = others;
        mine
    };
    for r in &removed_subscriptions {
        r.active.store(false, Ordering::Release);
    }
    drop(removed_commands);
    drop(removed_subscriptions);
}

fn dispatch(state: &State, topic: &str, payload: &[u8]) -> Result<(), PhResult> {
    if !is_valid_topic(topic) {
        return Err(PhResult::InvalidArgument);
    }
    let depth = DEPTH.with(Cell::get);
    if depth >= PH_MAX_EVENT_DEPTH {
        return Err(PhResult::LimitExceeded);
    }
    let subscribers: Vec<_> = lock(&state.subscriptions)
        .iter()
        .filter(|s| s.key == topic || s.key == "*")
        .cloned()
        .collect();
    DEPTH.with(|d| d.set(depth + 1));
    for s in &subscribers {
        if s.active.load(Ordering::Acquire) && s.owner.active.load(Ordering::Acquire) {
            // SAFETY: the plugin's callback and user data, alive while we hold the registration;
            // topic and payload outlive the call.
            unsafe { (s.callback.0)(s.user_data, PhStr::new(topic), PhBytes::new(payload)) };
        }
    }
    DEPTH.with(|d| d.set(depth));
    Ok(())
}

/// Where a command's output goes.
#[derive(Default)]
struct Sink {
    out: Vec<u8>,
    error: Option<String>,
}

unsafe extern "C" fn sink_write(context: *mut c_void, bytes: PhBytes) -> PhResultCode {
    // SAFETY: `context` is the `Sink` of the running command.
    let sink = unsafe { &mut *context.cast::<Sink>() };
    // SAFETY: the plugin passes a view valid for the call.
    match unsafe { bytes.to_bytes() } {
        Ok(bytes) => {
            sink.out.extend_from_slice(bytes);
            PhResult::Ok.code()
        }
        Err(code) => code.code(),
    }
}

unsafe extern "C" fn sink_set_error(context: *mut c_void, message: PhStr) {
    // SAFETY: `context` is the `Sink` of the running command.
    let sink = unsafe { &mut *context.cast::<Sink>() };
    // SAFETY: the plugin passes a view valid for the call.
    sink.error = Some(
        unsafe { message.to_str() }
            .unwrap_or("<invalid UTF-8>")
            .to_owned(),
    );
}

unsafe extern "C" fn command_info_to_closure<F>(
    user_data: *mut c_void,
    info: *const PhCommandInfo,
) -> bool
where
    F: FnMut(&CommandInfo<'_>) -> bool,
{
    // SAFETY: `user_data` is the `F` of `MockHost::enumerate_commands`, waiting for the call.
    let f = unsafe { &mut *user_data.cast::<F>() };
    // SAFETY: the plugin passes a valid info or NULL for the duration of the call.
    let Some(info) = (unsafe { info.as_ref() }) else {
        return false;
    };
    // SAFETY: the plugin's strings are valid for the call.
    let read = |s: PhStr| unsafe { s.to_str() }.unwrap_or("<invalid UTF-8>");
    f(&CommandInfo {
        name: read(info.name),
        description: read(info.description),
        usage: read(info.usage),
    })
}

// ---- The host services of the mock ----

static MOCK_SERVICES: PhHostServices = PhHostServices {
    abi_major: PH_ABI_VERSION_MAJOR,
    abi_minor: PH_ABI_VERSION_MINOR,
    struct_size: std::mem::size_of::<PhHostServices>() as u32,
    log: mock_log,
    log_max_level: mock_log_max_level,
    register_command: mock_register_command,
    unregister: mock_unregister,
    subscribe: mock_subscribe,
    publish: mock_publish,
    enumerate_plugins: mock_enumerate_plugins,
    enumerate_commands: mock_enumerate_commands,
    config_get: mock_config_get,
    register_command_with_info: mock_register_command_with_info,
};

/// Resolves the context and runs `f`, like the real host's services: NULL context, inactive
/// plugin and panics become result codes.
fn service(
    ctx: *mut PhHostContext,
    f: impl FnOnce(&Arc<Context>) -> Result<(), PhResult>,
) -> PhResultCode {
    let result =
        crate::boundary::guard(None, "a mock host service", Err(PhResult::Panicked), || {
            if ctx.is_null() {
                return Err(PhResult::NullPointer);
            }
            let ptr = ctx.cast::<Context>().cast_const();
            // SAFETY: a non-null context is one the mock gave at `load` from `Arc::as_ptr`, and the
            // mock keeps that `Arc` for its whole life; taking a new strong reference is sound.
            let context = unsafe {
                Arc::increment_strong_count(ptr);
                Arc::from_raw(ptr)
            };
            if !context.active.load(Ordering::Acquire) {
                return Err(PhResult::ShutDown);
            }
            f(&context)
        });
    match result {
        Ok(()) => PhResult::Ok.code(),
        Err(code) => code.code(),
    }
}

/// Runs a registering service: as [`service`], and a refused registration of a plugin of ABI
/// 1.2 or later gets its `destroy`, as the real host does.
fn registering(
    ctx: *mut PhHostContext,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    f: impl FnOnce(&Arc<Context>) -> Result<(), PhResult>,
) -> PhResultCode {
    let code = service(ctx, f);
    if code != PhResult::Ok.code() && !ctx.is_null() {
        // SAFETY: a non-null context is one the mock gave at `load`, alive while the mock is.
        let context = unsafe { &*ctx.cast::<Context>() };
        if context.descriptor.abi_minor >= 2 {
            if let Some(destroy) = destroy {
                // SAFETY: the plugin's destroy function for the user data the mock refused.
                unsafe { (destroy.0)(user_data) };
            }
        }
    }
    code
}

/// Reads a string argument.
///
/// # Safety
///
/// `s` must satisfy the contract of [`PhStr::to_str`] for `'a`.
unsafe fn arg<'a>(s: PhStr) -> Result<&'a str, PhResult> {
    // SAFETY: forwarded to the caller.
    unsafe { s.to_str() }
}

unsafe extern "C" fn mock_log(
    ctx: *mut PhHostContext,
    level: u32,
    target: PhStr,
    message: PhStr,
) -> PhResultCode {
    service(ctx, |context| {
        let level = PhLogLevel::record_level(level).ok_or(PhResult::InvalidArgument)?;
        // SAFETY: views valid for the call.
        let (target, message) = unsafe { (arg(target)?, arg(message)?) };
        lock(&context.state.logs).push(LogRecord {
            level,
            plugin: context.name.clone(),
            target: target.to_owned(),
            message: message.to_owned(),
        });
        Ok(())
    })
}

unsafe extern "C" fn mock_log_max_level(ctx: *mut PhHostContext) -> u32 {
    if ctx.is_null() {
        return 0;
    }
    // SAFETY: a context the mock gave, alive while the mock is.
    unsafe { &*ctx.cast::<Context>() }.state.log_level
}

/// Registers a callback, after the same checks as the real host.
fn register<C>(
    context: &Arc<Context>,
    key: &str,
    callback: Option<C>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> Result<Arc<Registration<C>>, PhResult> {
    let callback = callback.ok_or(PhResult::NullPointer)?;
    let handle = context.state.next_handle.fetch_add(1, Ordering::Relaxed);
    if !out_handle.is_null() {
        // SAFETY: the plugin passes NULL or a writable handle.
        unsafe { out_handle.write(handle) };
    }
    Ok(Arc::new(Registration {
        handle,
        owner: Arc::clone(context),
        key: key.to_owned(),
        callback,
        user_data,
        destroy,
        active: AtomicBool::new(true),
    }))
}

unsafe extern "C" fn mock_register_command(
    ctx: *mut PhHostContext,
    name: PhStr,
    callback: Option<PhCommandCallback>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> PhResultCode {
    registering(ctx, user_data, destroy, |context| {
        // SAFETY: a view valid for the call.
        let name = unsafe { arg(name)? };
        register_command(
            context, name, None, callback, user_data, destroy, out_handle,
        )
    })
}

unsafe extern "C" fn mock_register_command_with_info(
    ctx: *mut PhHostContext,
    info: *const crate::abi::PhCommandInfo,
    callback: Option<PhCommandCallback>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> PhResultCode {
    registering(ctx, user_data, destroy, |context| {
        // SAFETY: NULL or an info valid for the call.
        let info = unsafe { info.as_ref() }.ok_or(PhResult::NullPointer)?;
        if (info.struct_size as usize) < std::mem::size_of::<crate::abi::PhCommandInfo>() {
            return Err(PhResult::InvalidArgument);
        }
        // SAFETY: views valid for the call.
        let (name, description, usage) =
            unsafe { (arg(info.name)?, arg(info.description)?, arg(info.usage)?) };
        if description.len() > crate::abi::PH_MAX_DESCRIPTION_LEN
            || usage.len() > crate::abi::PH_MAX_USAGE_LEN
        {
            return Err(PhResult::LimitExceeded);
        }
        register_command(
            context,
            name,
            Some((description, usage)),
            callback,
            user_data,
            destroy,
            out_handle,
        )
    })
}

/// Registers the command `name` with its text (ABI 1.2) after the real host's checks.
fn register_command(
    context: &Arc<Context>,
    name: &str,
    text: Option<(&str, &str)>,
    callback: Option<PhCommandCallback>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> Result<(), PhResult> {
    if callback.is_none() {
        return Err(PhResult::NullPointer);
    }
    if !is_valid_name(name) {
        return Err(PhResult::InvalidArgument);
    }
    let mut commands = lock(&context.state.commands);
    if commands.contains_key(name) {
        return Err(PhResult::AlreadyExists);
    }
    let registration = register(context, name, callback, user_data, destroy, out_handle)?;
    commands.insert(name.to_owned(), registration);
    let (description, usage) = text.unwrap_or_default();
    lock(&context.state.command_texts)
        .insert(name.to_owned(), (description.to_owned(), usage.to_owned()));
    Ok(())
}

unsafe extern "C" fn mock_unregister(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode {
    service(ctx, |context| {
        let state = &context.state;
        let mine = |r: &Arc<Context>| Arc::ptr_eq(r, context);
        let command = {
            let mut commands = lock(&state.commands);
            let name = commands
                .iter()
                .find(|(_, r)| r.handle == handle && mine(&r.owner))
                .map(|(n, _)| n.clone());
            name.and_then(|n| commands.remove(&n))
        };
        if command.is_some() {
            return Ok(());
        }
        let subscription = {
            let mut subscriptions = lock(&state.subscriptions);
            let at = subscriptions
                .iter()
                .position(|r| r.handle == handle && mine(&r.owner));
            at.map(|at| subscriptions.remove(at))
        };
        match subscription {
            Some(s) => {
                s.active.store(false, Ordering::Release);
                Ok(())
            }
            None => Err(PhResult::UnknownHandle),
        }
    })
}

unsafe extern "C" fn mock_subscribe(
    ctx: *mut PhHostContext,
    topic: PhStr,
    callback: Option<PhEventCallback>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> PhResultCode {
    registering(ctx, user_data, destroy, |context| {
        if callback.is_none() {
            return Err(PhResult::NullPointer);
        }
        // SAFETY: a view valid for the call.
        let topic = unsafe { arg(topic)? };
        if topic != "*" && !is_valid_topic(topic) {
            return Err(PhResult::InvalidArgument);
        }
        let registration = register(context, topic, callback, user_data, destroy, out_handle)?;
        lock(&context.state.subscriptions).push(registration);
        Ok(())
    })
}

unsafe extern "C" fn mock_publish(
    ctx: *mut PhHostContext,
    topic: PhStr,
    payload: PhBytes,
) -> PhResultCode {
    service(ctx, |context| {
        // SAFETY: views valid for the call.
        let (topic, payload) = unsafe { (arg(topic)?, payload.to_bytes()?) };
        if is_valid_topic(topic) {
            lock(&context.state.published).push(PublishedEvent {
                publisher: context.name.clone(),
                topic: topic.to_owned(),
                payload: payload.to_vec(),
            });
        }
        dispatch(&context.state, topic, payload)
    })
}

unsafe extern "C" fn mock_enumerate_plugins(
    ctx: *mut PhHostContext,
    callback: Option<PhPluginInfoCallback>,
    user_data: *mut c_void,
) -> PhResultCode {
    service(ctx, |context| {
        let callback = callback.ok_or(PhResult::NullPointer)?;
        let plugins = lock(&context.state.plugins).clone();
        for plugin in plugins {
            let info = PhPluginInfo {
                struct_size: std::mem::size_of::<PhPluginInfo>() as u32,
                abi_major: plugin.descriptor.abi_major,
                abi_minor: plugin.descriptor.abi_minor,
                name: PhStr::new(&plugin.name),
                version: PhStr::new(&plugin.version),
                description: PhStr::new(&plugin.description),
                path: PhStr::new("<in-process>"),
            };
            // SAFETY: the plugin's callback and user data; `info` outlives the call.
            if !unsafe { (callback.0)(user_data, &info) } {
                break;
            }
        }
        Ok(())
    })
}

unsafe extern "C" fn mock_enumerate_commands(
    ctx: *mut PhHostContext,
    plugin_name: PhStr,
    callback: Option<PhCommandInfoCallback>,
    user_data: *mut c_void,
) -> PhResultCode {
    service(ctx, |context| {
        let callback = callback.ok_or(PhResult::NullPointer)?;
        // SAFETY: a view valid for the call.
        let plugin_name = unsafe { arg(plugin_name)? };
        let target = lock(&context.state.plugins)
            .iter()
            .find(|p| p.name == plugin_name)
            .cloned()
            .ok_or(PhResult::NotFound)?;
        match PhResult::from_code(enumerate_commands_of(&target, callback, user_data)) {
            PhResult::Ok => Ok(()),
            code => Err(code),
        }
    })
}

unsafe extern "C" fn mock_config_get(
    ctx: *mut PhHostContext,
    key: PhStr,
    out_value: *mut PhStr,
) -> PhResultCode {
    service(ctx, |context| {
        // SAFETY: a view valid for the call.
        let key = unsafe { arg(key)? };
        if out_value.is_null() {
            return Err(PhResult::NullPointer);
        }
        let value = context.config.get(key).ok_or(PhResult::NotFound)?;
        // SAFETY: non-null and writable (the ABI's contract); the bytes belong to the context,
        // which outlives the plugin's `shutdown`, and never change.
        unsafe { out_value.write(PhStr::new(value)) };
        Ok(())
    })
}
