//! The plugin side's safe handle to the host services.

#![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)] // removed when this file is split (issue #11)

use std::ffi::c_void;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::abi::{
    PhBytes, PhCommandCallback, PhCommandInfo, PhCommandInfoCallback, PhCommandOutput,
    PhDestroyCallback, PhEventCallback, PhHandle, PhHostContext, PhHostServices, PhPluginInfo,
    PhPluginInfoCallback, PhResult, PhResultCode, PhStr, PH_INVALID_HANDLE,
};
use crate::boundary::guard;

/// An error of a plugin operation: a [`PhResult`] code and a message for the user.
///
/// Any `std::error::Error` converts into it with `?` (code [`PhResult::Error`]), so command
/// bodies can use `?` on I/O and parse errors.
pub struct Error {
    code: PhResult,
    message: String,
}

impl Error {
    /// An error with code [`PhResult::Error`] and `message`.
    pub fn new(message: impl Into<String>) -> Error {
        Error::with_code(PhResult::Error, message)
    }

    /// An error with a specific code.
    pub fn with_code(code: PhResult, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    /// The error code carried across the boundary.
    pub fn code(&self) -> PhResult {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error of a host service `operation` that returned `code`, or `Ok` for success.
    #[inline]
    fn check(operation: &str, code: PhResultCode) -> Result<(), Error> {
        if code == PhResult::Ok.code() {
            return Ok(());
        }
        Err(Error::failed(operation, code))
    }

    /// The error of a host service `operation` that returned the error `code`.
    #[cold]
    fn failed(operation: &str, code: PhResultCode) -> Error {
        let code = PhResult::from_code(code);
        Error::with_code(code, format!("{operation}: {code}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}: {})", self.code, self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Error {
        Error::new(error.to_string())
    }
}

/// A registration made through the [`Host`]: a command or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(PhHandle);

impl Handle {
    /// The raw handle, as the host knows it.
    pub fn raw(self) -> PhHandle {
        self.0
    }
}

/// The description of a command to register: its name, a one-line description and its usage.
#[derive(Debug, Clone)]
pub struct Command {
    name: String,
    about: String,
    usage: String,
}

impl Command {
    /// A command named `name`: 1 to [`crate::abi::PH_MAX_NAME_LEN`] bytes of ASCII letters,
    /// digits, `-`, `_` or `.`.
    pub fn new(name: impl Into<String>) -> Command {
        Command {
            name: name.into(),
            about: String::new(),
            usage: String::new(),
        }
    }

    /// Sets the one-line description shown by `plughost list`.
    pub fn about(mut self, about: impl Into<String>) -> Command {
        self.about = about.into();
        self
    }

    /// Sets the arguments' synopsis, such as `[--top N] FILE...`.
    pub fn usage(mut self, usage: impl Into<String>) -> Command {
        self.usage = usage.into();
        self
    }
}

/// The plugin's link to its host: the host context and services, valid while `active`.
pub(crate) struct HostLink {
    ctx: *mut PhHostContext,
    services: *const PhHostServices,
    /// Cleared at shutdown (or a failed init): afterwards no call reaches the host. (The host's
    /// context stays valid after that too, and would answer `SHUT_DOWN`; this saves the call.)
    active: AtomicBool,
}

// SAFETY: the host services are `[thread-safe]` by the ABI's contract, and the context pointer is
// only ever passed back to them; the rest of the link is synchronised.
unsafe impl Send for HostLink {}
// SAFETY: as above.
unsafe impl Sync for HostLink {}

impl HostLink {
    /// # Safety
    ///
    /// `ctx` and `services` must be the ones the host passed to `init`, valid for as long as
    /// this library is loaded (the ABI's lifetime model), and `services` must hold the fields of
    /// this ABI version.
    pub(crate) unsafe fn new(ctx: *mut PhHostContext, services: *const PhHostServices) -> HostLink {
        HostLink {
            ctx,
            services,
            active: AtomicBool::new(true),
        }
    }

    /// The host services, or `Err(ShutDown)` after shutdown.
    #[inline]
    fn services(&self) -> Result<&PhHostServices, Error> {
        if !self.active.load(Ordering::Acquire) {
            return Err(Self::shut_down());
        }
        // SAFETY: while `active`, `services` is valid (the contract of `new`).
        Ok(unsafe { &*self.services })
    }

    #[cold]
    fn shut_down() -> Error {
        Error::with_code(
            PhResult::ShutDown,
            "the plugin is shut down; the host is no longer available",
        )
    }

    /// Ends the link: later calls return `ShutDown` without reaching the host.
    pub(crate) fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
    }

    /// Logs through the host; errors are ignored (there is nowhere else to report them).
    pub(crate) fn log(&self, level: log::Level, target: &str, message: &str) {
        if let Ok(services) = self.services() {
            // SAFETY: `ctx` belongs to these services; both strings outlive the call.
            unsafe {
                (services.log)(
                    self.ctx,
                    level as u32,
                    PhStr::new(target),
                    PhStr::new(message),
                );
            }
        }
    }

    /// The host's most verbose level, as a `log` filter.
    pub(crate) fn max_level(&self) -> log::LevelFilter {
        match self.services() {
            // SAFETY: `ctx` belongs to these services.
            Ok(services) => {
                crate::abi::PhLogLevel::filter(unsafe { (services.log_max_level)(self.ctx) })
            }
            Err(_) => log::LevelFilter::Off,
        }
    }
}

/// The plugin's handle to the host services, given to [`crate::Plugin::init`].
///
/// Cheap to clone and `Send + Sync`: keep a clone in command closures or threads. Every method
/// may be called from any thread. After the plugin's shutdown, every method returns an error with
/// code [`PhResult::ShutDown`] and does not reach the host.
#[derive(Clone)]
pub struct Host {
    pub(crate) link: Arc<HostLink>,
}

/// A published event, as a subscriber receives it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The topic it was published on.
    pub topic: &'a str,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// One loaded plugin, as the host enumerates it.
#[derive(Debug, Clone, Copy)]
pub struct PluginInfo<'a> {
    /// The plugin's unique name.
    pub name: &'a str,
    /// The plugin's version.
    pub version: &'a str,
    /// The plugin's one-line description.
    pub description: &'a str,
    /// The library file the plugin was loaded from.
    pub path: &'a str,
    /// The ABI version the plugin was built for: (major, minor).
    pub abi_version: (u16, u16),
}

/// One command, as a plugin enumerates it.
#[derive(Debug, Clone, Copy)]
pub struct CommandInfo<'a> {
    /// The command name.
    pub name: &'a str,
    /// Its one-line description.
    pub description: &'a str,
    /// Its arguments' synopsis.
    pub usage: &'a str,
}

/// Reads a string filled by the other side, replacing what cannot be read.
///
/// # Safety
///
/// `s` must satisfy the contract of [`PhStr::to_str`] for the duration of the returned borrow.
unsafe fn lossy<'a>(s: PhStr) -> &'a str {
    // SAFETY: forwarded to the caller.
    unsafe { s.to_str() }.unwrap_or("<invalid UTF-8>")
}

/// The state behind a registered command: the closure and what the trampoline needs.
struct CommandBox<F> {
    link: Arc<HostLink>,
    what: String,
    f: F,
}

/// The state behind a subscription.
struct EventBox<F> {
    link: Arc<HostLink>,
    what: String,
    f: F,
}

/// Frees a boxed callback state; the host's `destroy` for every registration of the safe layer.
unsafe extern "C" fn drop_box<T: AsLink>(user_data: *mut c_void) {
    // SAFETY: `user_data` came from `Box::into_raw(Box<T>)` in `Host::register`, and the host
    // calls `destroy` exactly once.
    let boxed = unsafe { Box::from_raw(user_data.cast::<T>()) };
    let link = Arc::clone(boxed.as_link());
    guard(Some(&link), "drop of a callback", (), move || drop(boxed));
}

/// Access to the host link of a boxed callback state.
trait AsLink {
    fn as_link(&self) -> &Arc<HostLink>;
}

impl<F> AsLink for CommandBox<F> {
    fn as_link(&self) -> &Arc<HostLink> {
        &self.link
    }
}

impl<F> AsLink for EventBox<F> {
    fn as_link(&self) -> &Arc<HostLink> {
        &self.link
    }
}

/// How many command arguments the command trampoline reads without allocating.
const INLINE_ARGS: usize = 8;

/// The command callback of the safe layer: runs the closure in a [`guard`].
unsafe extern "C" fn command_trampoline<F>(
    user_data: *mut c_void,
    args: *const PhStr,
    arg_count: usize,
    output: *const PhCommandOutput,
) -> PhResultCode
where
    F: Fn(&[&str], &mut Output<'_>) -> Result<(), Error> + Send + Sync + 'static,
{
    // SAFETY: `user_data` is the `CommandBox<F>` registered with this trampoline, alive until the
    // host calls `destroy`, which it does not do while a dispatch is under way.
    let command = unsafe { &*user_data.cast::<CommandBox<F>>() };
    guard(
        Some(&command.link),
        &command.what,
        PhResult::Panicked.code(),
        || {
            // SAFETY: the host passes a valid output for the duration of the call, or NULL.
            let Some(output) = (unsafe { output.as_ref() }) else {
                return PhResult::NullPointer.code();
            };
            if arg_count == 0 {
                return run_command(&command.f, &[], output);
            }
            if args.is_null() {
                return PhResult::NullPointer.code();
            }
            // SAFETY: the host passes `arg_count` readable views, valid for the call.
            let raw = unsafe { std::slice::from_raw_parts(args, arg_count) };
            with_args(raw, |args| run_command(&command.f, args, output))
        },
    )
}

/// Calls `f` with the arguments `raw`, read as strings: up to `INLINE_ARGS` into an array on the
/// stack, more into a `Vec`, so that a command call allocates nothing unless it has many
/// arguments. Returns the error code of an argument that is not a valid string.
#[inline(never)]
fn with_args(raw: &[PhStr], f: impl FnOnce(&[&str]) -> PhResultCode) -> PhResultCode {
    if raw.len() <= INLINE_ARGS {
        let mut inline = [""; INLINE_ARGS];
        for (slot, arg) in inline.iter_mut().zip(raw) {
            // SAFETY: the host passes views valid for the duration of the call.
            match unsafe { arg.to_str() } {
                Ok(arg) => *slot = arg,
                Err(code) => return code.code(),
            }
        }
        return f(&inline[..raw.len()]);
    }
    // SAFETY: as above.
    match raw
        .iter()
        .map(|a| unsafe { a.to_str() })
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(args) => f(&args),
        Err(code) => code.code(),
    }
}

/// Runs a command closure with its arguments and output; returns its result code.
#[inline(always)]
fn run_command<F>(f: &F, args: &[&str], output: &PhCommandOutput) -> PhResultCode
where
    F: Fn(&[&str], &mut Output<'_>) -> Result<(), Error>,
{
    let mut out = Output::new(output);
    match f(args, &mut out).and(out.finish()) {
        Ok(()) => PhResult::Ok.code(),
        Err(error) => command_error(&out, error),
    }
}

/// Reports a command's error to the host; returns its code.
#[cold]
#[inline(never)]
fn command_error(out: &Output<'_>, error: Error) -> PhResultCode {
    out.set_error(&error.message);
    error.code.code()
}

/// The event callback of the safe layer: runs the closure in a [`guard`].
unsafe extern "C" fn event_trampoline<F>(
    user_data: *mut c_void,
    topic: PhStr,
    payload: PhBytes,
) -> PhResultCode
where
    F: Fn(&Event<'_>) -> Result<(), Error> + Send + Sync + 'static,
{
    // SAFETY: `user_data` is the `EventBox<F>` registered with this trampoline, alive until the
    // host calls `destroy`, which it does not do while a dispatch is under way.
    let handler = unsafe { &*user_data.cast::<EventBox<F>>() };
    guard(
        Some(&handler.link),
        &handler.what,
        PhResult::Panicked.code(),
        || {
            // SAFETY: the host passes views valid for the duration of the call.
            let event = match unsafe { (topic.to_str(), payload.to_bytes()) } {
                (Ok(topic), Ok(payload)) => Event { topic, payload },
                (Err(code), _) | (_, Err(code)) => return code.code(),
            };
            match (handler.f)(&event) {
                Ok(()) => PhResult::Ok.code(),
                Err(error) => {
                    handler
                        .link
                        .log(log::Level::Warn, "", &format!("{}: {error}", handler.what));
                    error.code.code()
                }
            }
        },
    )
}

/// The state of an enumeration driven by the host: the closure, and whether it panicked.
struct Enumeration<'f, T: ?Sized> {
    link: &'f HostLink,
    f: &'f mut T,
    panicked: bool,
}

unsafe extern "C" fn plugin_info_trampoline<F>(
    user_data: *mut c_void,
    info: *const PhPluginInfo,
) -> bool
where
    F: FnMut(&PluginInfo<'_>) -> bool,
{
    // SAFETY: `user_data` is the `Enumeration` on the stack of `Host::enumerate_plugins`, which
    // is waiting for the host to return.
    let state = unsafe { &mut *user_data.cast::<Enumeration<'_, F>>() };
    let link = state.link;
    let keep_going = guard(Some(link), "a plugin enumeration callback", None, || {
        // SAFETY: the host passes a valid info (or NULL) for the duration of the call.
        let info = unsafe { info.as_ref() }?;
        if (info.struct_size as usize) < std::mem::size_of::<PhPluginInfo>() {
            return Some(true);
        }
        // SAFETY: the host's strings are valid for the call.
        let info = unsafe {
            PluginInfo {
                name: lossy(info.name),
                version: lossy(info.version),
                description: lossy(info.description),
                path: lossy(info.path),
                abi_version: (info.abi_major, info.abi_minor),
            }
        };
        Some((state.f)(&info))
    });
    keep_going.unwrap_or_else(|| {
        state.panicked = true;
        false
    })
}

unsafe extern "C" fn command_info_trampoline<F>(
    user_data: *mut c_void,
    info: *const PhCommandInfo,
) -> bool
where
    F: FnMut(&CommandInfo<'_>) -> bool,
{
    // SAFETY: `user_data` is the `Enumeration` on the stack of `Host::enumerate_commands`, which
    // is waiting for the host to return.
    let state = unsafe { &mut *user_data.cast::<Enumeration<'_, F>>() };
    let link = state.link;
    let keep_going = guard(Some(link), "a command enumeration callback", None, || {
        // SAFETY: the enumerating plugin passes a valid info (or NULL) for the duration of the call.
        let info = unsafe { info.as_ref() }?;
        if (info.struct_size as usize) < std::mem::size_of::<PhCommandInfo>() {
            return Some(true);
        }
        // SAFETY: the strings are valid for the call.
        let info = unsafe {
            CommandInfo {
                name: lossy(info.name),
                description: lossy(info.description),
                usage: lossy(info.usage),
            }
        };
        Some((state.f)(&info))
    });
    keep_going.unwrap_or_else(|| {
        state.panicked = true;
        false
    })
}

impl Host {
    /// Logs `message` through the host at `level`, with the plugin's name as the target.
    ///
    /// Usually you use the `log` macros instead, which end up here.
    pub fn log(&self, level: log::Level, message: &str) {
        self.link.log(level, "", message);
    }

    /// Registers a command. The host runs `f` with the arguments that follow the command name and
    /// an [`Output`] for what it prints; an `Err` is reported to the user.
    ///
    /// `f` may run on any thread, several times at once. A panic in `f` is caught, logged and
    /// reported as a failed command.
    ///
    /// # Errors
    ///
    /// [`PhResult::AlreadyExists`] if any plugin registered that name, [`PhResult::InvalidArgument`]
    /// for an invalid name, [`PhResult::ShutDown`] after shutdown.
    pub fn register_command<F>(&self, command: Command, f: F) -> Result<Handle, Error>
    where
        F: Fn(&[&str], &mut Output<'_>) -> Result<(), Error> + Send + Sync + 'static,
    {
        let services = self.link.services()?;
        let name = &command.name;
        let info = PhCommandInfo {
            struct_size: std::mem::size_of::<PhCommandInfo>() as u32,
            name: PhStr::new(name),
            description: PhStr::new(&command.about),
            usage: PhStr::new(&command.usage),
        };
        let state = Box::new(CommandBox {
            link: Arc::clone(&self.link),
            what: format!("command `{name}`"),
            f,
        });
        self.register(
            &format!("register_command({name:?})"),
            state,
            |user_data, out| {
                // SAFETY: valid context and services (of this ABI version, checked at init);
                // `info` and its strings outlive the call; `user_data` is a `CommandBox<F>`
                // matching the trampoline and the destroy function.
                unsafe {
                    (services.register_command_with_info)(
                        self.link.ctx,
                        &info,
                        Some(PhCommandCallback(command_trampoline::<F>)),
                        user_data,
                        Some(PhDestroyCallback(drop_box::<CommandBox<F>>)),
                        out,
                    )
                }
            },
        )
    }

    /// Subscribes `f` to events published on `topic` (by any plugin, this one included).
    ///
    /// `f` runs on the publisher's thread, possibly several times at once, and may publish in
    /// turn. An `Err` or a panic is logged.
    ///
    /// # Errors
    ///
    /// [`PhResult::InvalidArgument`] for an invalid topic, [`PhResult::ShutDown`] after shutdown.
    pub fn subscribe<F>(&self, topic: &str, f: F) -> Result<Handle, Error>
    where
        F: Fn(&Event<'_>) -> Result<(), Error> + Send + Sync + 'static,
    {
        let services = self.link.services()?;
        let state = Box::new(EventBox {
            link: Arc::clone(&self.link),
            what: format!("handler of `{topic}`"),
            f,
        });
        self.register(&format!("subscribe({topic:?})"), state, |user_data, out| {
            // SAFETY: valid context and services; the topic outlives the call; `user_data` is an
            // `EventBox<F>` matching the trampoline and the destroy function.
            unsafe {
                (services.subscribe)(
                    self.link.ctx,
                    PhStr::new(topic),
                    Some(PhEventCallback(event_trampoline::<F>)),
                    user_data,
                    Some(PhDestroyCallback(drop_box::<EventBox<F>>)),
                    out,
                )
            }
        })
    }

    /// Hands `state` to the host through `call`. The host owns it from then on, whatever the
    /// outcome: it calls the destroy function (which frees `state`) once, also when it refuses
    /// the registration (the rule of ABI 1.2).
    fn register<T>(
        &self,
        operation: &str,
        state: Box<T>,
        call: impl FnOnce(*mut c_void, *mut PhHandle) -> PhResultCode,
    ) -> Result<Handle, Error> {
        let user_data = Box::into_raw(state).cast::<c_void>();
        let mut handle = PH_INVALID_HANDLE;
        let code = call(user_data, &mut handle);
        Error::check(operation, code)?;
        Ok(Handle(handle))
    }

    /// Ends a registration of this plugin: the command or subscription gets no further calls, and
    /// its closure is dropped once the calls under way have finished. A callback may unregister
    /// itself.
    ///
    /// # Errors
    ///
    /// [`PhResult::UnknownHandle`] if the handle was already unregistered.
    pub fn unregister(&self, handle: Handle) -> Result<(), Error> {
        let services = self.link.services()?;
        // SAFETY: valid context and services.
        let code = unsafe { (services.unregister)(self.link.ctx, handle.0) };
        Error::check("unregister", code)
    }

    /// Publishes an event: every subscriber of `topic` runs before this returns.
    ///
    /// # Errors
    ///
    /// [`PhResult::InvalidArgument`] for an invalid topic, [`PhResult::LimitExceeded`] when
    /// handlers publish deeper than [`crate::abi::PH_MAX_EVENT_DEPTH`].
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), Error> {
        let services = self.link.services()?;
        // SAFETY: valid context and services; topic and payload outlive the call.
        let code =
            unsafe { (services.publish)(self.link.ctx, PhStr::new(topic), PhBytes::new(payload)) };
        Error::check("publish", code)
    }

    /// Calls `f` once per loaded plugin, in load order, until it returns `false`.
    ///
    /// # Errors
    ///
    /// [`PhResult::Panicked`] if `f` panicked (the enumeration stopped there).
    pub fn enumerate_plugins<F>(&self, mut f: F) -> Result<(), Error>
    where
        F: FnMut(&PluginInfo<'_>) -> bool,
    {
        let services = self.link.services()?;
        let mut state = Enumeration {
            link: &self.link,
            f: &mut f,
            panicked: false,
        };
        // SAFETY: valid context and services; `state` outlives the call and matches the
        // trampoline's type.
        let code = unsafe {
            (services.enumerate_plugins)(
                self.link.ctx,
                Some(PhPluginInfoCallback(plugin_info_trampoline::<F>)),
                (&mut state as *mut Enumeration<'_, F>).cast(),
            )
        };
        Self::finish_enumeration("enumerate_plugins", code, state.panicked)
    }

    /// Enumerates the commands of the plugin named `plugin` (the host answers from its records of
    /// what that plugin registered); calls `f` once per command until it returns `false`.
    ///
    /// # Errors
    ///
    /// [`PhResult::NotFound`] if no such plugin is loaded; [`PhResult::Panicked`] if `f`
    /// panicked.
    pub fn enumerate_commands<F>(&self, plugin: &str, mut f: F) -> Result<(), Error>
    where
        F: FnMut(&CommandInfo<'_>) -> bool,
    {
        let services = self.link.services()?;
        let mut state = Enumeration {
            link: &self.link,
            f: &mut f,
            panicked: false,
        };
        // SAFETY: valid context and services; the name and `state` outlive the call, and `state`
        // matches the trampoline's type.
        let code = unsafe {
            (services.enumerate_commands)(
                self.link.ctx,
                PhStr::new(plugin),
                Some(PhCommandInfoCallback(command_info_trampoline::<F>)),
                (&mut state as *mut Enumeration<'_, F>).cast(),
            )
        };
        Self::finish_enumeration(
            &format!("enumerate_commands({plugin:?})"),
            code,
            state.panicked,
        )
    }

    /// The value of `key` in this plugin's configuration, as text: a string as its contents,
    /// anything else (number, boolean, array, table) in TOML syntax. `key` is a key of the
    /// plugin's table or a dotted path into a nested table. `Ok(None)` if it is not set.
    ///
    /// With `plughost`, the configuration is the `[plugins.NAME]` table of the file given with
    /// `--config`. It does not change while the plugin is loaded.
    ///
    /// # Errors
    ///
    /// [`PhResult::ShutDown`] after shutdown; [`PhResult::InvalidUtf8`] if the host's value is not
    /// UTF-8.
    pub fn config(&self, key: &str) -> Result<Option<String>, Error> {
        let services = self.link.services()?;
        let needed = std::mem::offset_of!(PhHostServices, config_get)
            + std::mem::size_of_val(&services.config_get);
        if (services.struct_size as usize) < needed {
            // A host of ABI 1.0: its table ends before the configuration service.
            return Ok(None);
        }
        let mut value = PhStr::EMPTY;
        // SAFETY: valid context and services (the table is large enough, checked above); the key
        // outlives the call and `value` is writable.
        let code = unsafe { (services.config_get)(self.link.ctx, PhStr::new(key), &mut value) };
        if code == PhResult::NotFound.code() {
            return Ok(None);
        }
        Error::check("config_get", code)?;
        // SAFETY: the host's bytes stay valid until shutdown; they are copied here.
        let text = unsafe { value.to_str() }.map_err(|code| {
            Error::with_code(code, format!("config_get({key:?}): the value is not text"))
        })?;
        Ok(Some(text.to_owned()))
    }

    /// The value of `key` in this plugin's configuration, parsed as a `T` (see [`Host::config`]).
    /// `Ok(None)` if it is not set.
    ///
    /// # Errors
    ///
    /// As [`Host::config`]; [`PhResult::InvalidArgument`] with a message naming the key and the
    /// value if the value does not parse.
    pub fn config_parse<T>(&self, key: &str) -> Result<Option<T>, Error>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let Some(text) = self.config(key)? else {
            return Ok(None);
        };
        text.parse().map(Some).map_err(|e| {
            Error::with_code(
                PhResult::InvalidArgument,
                format!("configuration key `{key}`: invalid value {text:?}: {e}"),
            )
        })
    }

    fn finish_enumeration(
        operation: &str,
        code: PhResultCode,
        panicked: bool,
    ) -> Result<(), Error> {
        if panicked {
            return Err(Error::with_code(
                PhResult::Panicked,
                format!("{operation}: the callback panicked"),
            ));
        }
        Error::check(operation, code)
    }
}

/// Where a command writes its output. Implements [`std::io::Write`]; output is buffered and sent
/// to the host in chunks.
pub struct Output<'a> {
    raw: &'a PhCommandOutput,
    buffer: Vec<u8>,
}

/// Output is sent to the host in chunks of this many bytes.
const OUTPUT_CHUNK: usize = 16 * 1024;

impl<'a> Output<'a> {
    #[inline]
    fn new(raw: &'a PhCommandOutput) -> Output<'a> {
        Output {
            raw,
            buffer: Vec::new(),
        }
    }

    #[inline]
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send_buffer()
    }

    /// Sends the buffered bytes, which are not empty.
    fn send_buffer(&mut self) -> io::Result<()> {
        // SAFETY: the host's output is valid for the duration of the command; the buffer outlives
        // the call.
        let code = unsafe { (self.raw.write.0)(self.raw.context, PhBytes::new(&self.buffer)) };
        self.buffer.clear();
        match PhResult::from_code(code) {
            PhResult::Ok => Ok(()),
            PhResult::Io => Err(io::Error::new(io::ErrorKind::BrokenPipe, "output closed")),
            code => Err(io::Error::other(format!("writing output: {code}"))),
        }
    }

    #[inline]
    fn finish(&mut self) -> Result<(), Error> {
        self.send()
            .map_err(|e| Error::with_code(PhResult::Io, e.to_string()))
    }

    fn set_error(&self, message: &str) {
        // SAFETY: the host's output is valid for the duration of the command; the message
        // outlives the call.
        unsafe { (self.raw.set_error.0)(self.raw.context, PhStr::new(message)) }
    }
}

impl io::Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= OUTPUT_CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
