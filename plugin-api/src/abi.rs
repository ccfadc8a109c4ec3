//! The C ABI between the host and its plugins: every type that crosses the boundary.
//!
//! This module is the only place where ABI types are defined. The host, the safe Rust layer
//! ([`crate::Plugin`], [`crate::Host`]), the test harness and the generated C header all use these
//! definitions.
//!
//! The contract itself, for plugins and for hosts, is `docs/abi.md` in the repository: it is
//! normative, and these docs (and the header generated from them) summarise it. It also has the
//! size, alignment and field offsets of every type (checked by `plugin-api/tests/layout.rs`).
//!
//! # Shape
//!
//! A plugin library exports one entry point, [`PH_ENTRY_POINT_SYMBOL`], of type [`PhEntryPoint`].
//! It returns the plugin's [`PhPluginDescriptor`]: ABI version, name, version, description and the
//! plugin's function table ([`PhPluginVtable`]). The host calls `init` with its own function table,
//! [`PhHostServices`], and a [`PhHostContext`] that identifies the plugin in every later call.
//!
//! # Rules for every item
//!
//! - Only fixed-width integers, `bool`, raw pointers, `(pointer, length)` views ([`PhStr`],
//!   [`PhBytes`]), opaque handles ([`PhHandle`]), `*mut c_void` user data and function pointers cross.
//! - Results are [`PhResultCode`] values: a `u32` holding one of the [`PhResult`] codes. A code
//!   this side does not know is treated as [`PhResult::Error`], never as undefined behaviour.
//! - Memory is freed by the side that allocated it. Borrowed data ([`PhStr`], [`PhBytes`], pointers
//!   to info structs) is valid for the duration of the call only; copy what you keep.
//! - Tables start with their version or size and only grow at the end. A table a plugin gives
//!   (descriptor, function table, [`PhCommandInfo`], [`PhInterfaceDecl`]) must be at least as
//!   large as that table in the minor the plugin declares, or it is refused. A table the host
//!   gives is at least as large as in any plugin it loads; a plugin that also runs in hosts of an
//!   older minor checks `struct_size` (or `abi_minor`) before touching a field that a newer minor
//!   added. A table the host writes into ([`PhInterface`]) is written as far as the caller's
//!   `struct_size` goes. (`docs/abi.md`, "Versions and sizes", is the one statement.)
//! - Strings ([`PhStr`]) are UTF-8 in both directions. When one call breaks several rules, the
//!   host answers with the first failure of: the context (NULL: [`PhResult::NullPointer`]; a
//!   plugin that has ended: [`PhResult::ShutDown`]); the callback (NULL); the other arguments in
//!   order, each first for a NULL view, then for UTF-8, then for its own rule (`publish` checks
//!   both its views for NULL first); then the host's state (shutting down, limits, names taken,
//!   not found, nesting depth). `docs/abi.md` lists each function's checks.
//! - Function pointers that the other side may leave empty are `Option<...>` (NULL in C); the
//!   reader checks them before calling.
//!
//! # Thread tags
//!
//! Each function documents which threads may call it, with one of these tags:
//!
//! - `[thread-safe]`: any thread, also concurrently with other calls, and reentrantly from inside a
//!   callback that the host is dispatching.
//! - `[main-thread]`: only the thread that owns the host (the one that loads plugins and shuts them
//!   down); never concurrently with another `[main-thread]` call of the same plugin.
//!
//! Functions the host calls are tagged the same way from the host's side: `[thread-safe]` means
//! the plugin must accept the call on any thread, concurrently with its other callbacks.
//!
//! # Ownership of user data
//!
//! Every callback is a pair of function pointer and `user_data`, with an optional `destroy`
//! function. The host never dereferences `user_data`; it passes it back to the callback. After the
//! registration ends (unregistered, plugin shut down or faulted) and no dispatch is using it any
//! more, the host calls `destroy(user_data)` exactly once, on whichever thread finished last.
//! From ABI 1.2 on, a registration that is refused (any error code, including
//! [`PhResult::ShutDown`] for a registration made during or after the plugin's shutdown) also
//! gets its `destroy(user_data)`, exactly once, before the registering call returns: so
//! `destroy` runs exactly once for every registration call with a valid host context, whatever
//! the outcome. (A plugin built for 1.0 or 1.1 keeps the old rule: on error `destroy` is not
//! called and the plugin frees its user data itself. A NULL host context identifies no plugin: the
//! call returns [`PhResult::NullPointer`] and `destroy` is not called.)
//!
//! # Lifetime model
//!
//! - **Libraries are never unloaded.** Once opened, a plugin library stays mapped until the
//!   process exits, whether it was refused, failed `init`, faulted or was shut down; so every
//!   function pointer and static of a plugin stays valid, and so does every pointer into the
//!   host that a plugin was given: its [`PhHostContext`] and the [`PhHostServices`] table are
//!   valid for as long as the plugin's library is mapped, that is, for the rest of the process,
//!   even after the host object that loaded the plugin is gone.
//! - **After the end of a plugin** (its `shutdown` returned, it faulted, its `init` failed, or the
//!   host was dropped) every service called with its context returns [`PhResult::ShutDown`] and
//!   touches nothing else; its threads may go on calling safely. During `shutdown` the plugin may
//!   still call services, but new registrations are refused.
//! - **No call into a plugin after its shutdown begins.** When the host shuts a plugin down, it
//!   first stops every new call into the plugin (commands, events, enumerations), then waits until
//!   the calls already under way on other threads have returned, and only then calls `shutdown`
//!   with the plugin data. `plugin_data` is never passed to any function after `shutdown` has
//!   started. (Each registration's `destroy` still runs once, possibly after `shutdown`: release
//!   nothing in `shutdown` that a `destroy` needs.)
//! - **Faults.** A plugin whose callback panicked (returned [`PhResult::Panicked`]) is faulted:
//!   its registrations are removed, it gets no more calls except the `destroy` of each
//!   registration (exactly once, when no dispatch uses it), and its `shutdown` is never called,
//!   so its plugin data is never released.
//! - **Interfaces** (1.3): a caller reads its reference's [`PhInterface::alive`] before each
//!   call through a provider's table and does not call when it is 0; the host sets it to 0 when
//!   the reference is released, the caller ends, or the provision ends (before the provider's
//!   `shutdown`, at its fault). The provider's `user_data` stays valid until every reference was
//!   released, so a call already under way finishes safely; the provider releases what its table
//!   uses in the interface's `destroy`, not in `shutdown`.
//! - **Registrations** made on any thread while the plugin is being shut down or faulted either
//!   complete before the host removes the plugin's registrations (and are removed with them) or
//!   are refused with [`PhResult::ShutDown`]; none is left behind.
//!
//! # Limits
//!
//! Names: [`PH_MAX_NAME_LEN`]; topics: [`PH_MAX_TOPIC_LEN`]; versions: [`PH_MAX_VERSION_LEN`];
//! descriptions: [`PH_MAX_DESCRIPTION_LEN`]; usage: [`PH_MAX_USAGE_LEN`]; registrations:
//! [`PH_MAX_REGISTRATIONS_PER_PLUGIN`]; nested publishes: [`PH_MAX_EVENT_DEPTH`]; nested
//! enumerations: [`PH_MAX_ENUMERATION_DEPTH`].

use std::ffi::c_void;

use abi_stable::StableAbi;

/// The ABI major version. A plugin whose major differs from the host's is refused.
pub const PH_ABI_VERSION_MAJOR: u16 = 1;

/// The ABI minor version. A host loads plugins built for the same major and a minor up to its own;
/// a plugin built for a newer minor is refused. Minor versions only add fields at the end of tables.
///
/// History: 1.0, the first version; 1.1 added [`PhHostServices::config_get`]; 1.2 added
/// [`PhHostServices::register_command_with_info`] (the host keeps each command's text and answers
/// command enumerations itself, so [`PhPluginVtable::enumerate_commands`] became optional), the
/// rule that a refused registration's `destroy` is called, and [`PhResult::WrongThread`]; 1.3
/// added interfaces ([`PhHostServices::provide_interface`], [`PhHostServices::query_interface`],
/// [`PhHostServices::release_interface`], and the descriptor's [`PhPluginDescriptor::provides`]
/// and [`PhPluginDescriptor::requires`]), [`PhResult::HostFailed`] and
/// [`PhResult::VersionMismatch`]; 1.4 added state handoff across a reload
/// ([`PhPluginVtable::save_state`], [`PhPluginVtable::restore_state`]) and the host's worker
/// threads ([`PhHostServices::run_tasks`], [`PhHostServices::task_threads`]); 1.5 added the type
/// layout of an interface's table ([`PhInterfaceDecl::layout`], [`PhInterface::layout`]), which
/// Rust callers check against theirs.
pub const PH_ABI_VERSION_MINOR: u16 = 5;

/// Name of the symbol that every plugin library exports: a [`PhEntryPoint`] function.
pub const PH_ENTRY_POINT_SYMBOL: &str = "plughost_plugin_entry";

/// The longest plugin name or command name, in bytes.
pub const PH_MAX_NAME_LEN: usize = 64;

/// The longest plugin version string ([`PhPluginDescriptor::version`]), in bytes. A longer one
/// refuses the plugin.
pub const PH_MAX_VERSION_LEN: usize = 64;

/// The longest plugin or command description, in bytes (4 KiB). A longer plugin description
/// refuses the plugin; a longer command description refuses the registration.
pub const PH_MAX_DESCRIPTION_LEN: usize = 4096;

/// The longest command usage text ([`PhCommandInfo::usage`]), in bytes (4 KiB).
pub const PH_MAX_USAGE_LEN: usize = 4096;

/// The longest event topic, in bytes.
pub const PH_MAX_TOPIC_LEN: usize = 128;

/// How many registrations (commands and subscriptions together) one plugin may hold at once;
/// one more returns [`PhResult::LimitExceeded`].
pub const PH_MAX_REGISTRATIONS_PER_PLUGIN: usize = 1024;

/// An invalid handle: no registration ever returns it.
pub const PH_INVALID_HANDLE: PhHandle = 0;

/// A result code: one of the [`PhResult`] values, carried as a plain `u32`.
///
/// Functions return it rather than [`PhResult`] itself, so that a value this side does not know
/// (from a newer peer or a buggy one) is an error to report, not undefined behaviour.
pub type PhResultCode = u32;

/// An opaque, non-zero identifier of a registration (a command or a subscription).
///
/// Handles are unique within one host for its lifetime and never reused. `0` is
/// [`PH_INVALID_HANDLE`].
pub type PhHandle = u64;

/// The result codes of every function of the ABI.
///
/// The numbers are fixed: a code is never renumbered or reused. New codes are added at the end.
#[repr(u32)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhResult {
    /// Success.
    Ok = 0,
    /// An error without a more specific code. Also what an unknown code means.
    Error = 1,
    /// An argument is out of range or malformed (an empty name, a name too long, a bad level).
    InvalidArgument = 2,
    /// A required pointer is NULL, or a view has a NULL pointer and a non-zero length.
    NullPointer = 3,
    /// A string is not valid UTF-8.
    InvalidUtf8 = 4,
    /// The handle is not known, or was registered by another plugin.
    UnknownHandle = 5,
    /// A command with that name is already registered.
    AlreadyExists = 6,
    /// No such command, plugin or item.
    NotFound = 7,
    /// The callee panicked; the panic was caught at the boundary and logged. Returned by a plugin's
    /// callback, it faults the plugin. (A host of ABI 1.2 or older also returned it when the host
    /// itself failed; from 1.3 on the host returns [`PhResult::HostFailed`]. A command must not
    /// pass on a code received from `write` as its own: return [`PhResult::Error`] instead.)
    Panicked = 8,
    /// A documented limit was reached (see the `PH_MAX_*` constants).
    LimitExceeded = 9,
    /// The plugin's host context is no longer active: the plugin was shut down or faulted, its
    /// `init` failed, or its host is gone; also a registration refused during its shutdown.
    ShutDown = 10,
    /// Writing output failed (for example, a closed pipe).
    Io = 11,
    /// The function was called from a thread on which it may not be called (added in 1.2; see
    /// [`PhCommandOutput`]).
    WrongThread = 12,
    /// The host itself failed inside a service (a bug of the host, caught at its boundary and
    /// logged): the call did nothing more. Never a reason to fault anyone; a callback that
    /// returns it is treated as failed, not faulted (added in 1.3).
    HostFailed = 13,
    /// The interface is provided, but not in a version the caller can use: its table is smaller
    /// than the caller's minimum (added in 1.3; see [`PhHostServices::query_interface`]).
    VersionMismatch = 14,
}

impl PhResult {
    /// Every code, in numeric order.
    pub const ALL: [PhResult; 15] = [
        PhResult::Ok,
        PhResult::Error,
        PhResult::InvalidArgument,
        PhResult::NullPointer,
        PhResult::InvalidUtf8,
        PhResult::UnknownHandle,
        PhResult::AlreadyExists,
        PhResult::NotFound,
        PhResult::Panicked,
        PhResult::LimitExceeded,
        PhResult::ShutDown,
        PhResult::Io,
        PhResult::WrongThread,
        PhResult::HostFailed,
        PhResult::VersionMismatch,
    ];

    /// The code carried across the ABI.
    pub const fn code(self) -> PhResultCode {
        self as u32
    }

    /// Turns a code received from the other side into a [`PhResult`].
    ///
    /// An unknown code becomes [`PhResult::Error`].
    pub fn from_code(code: PhResultCode) -> PhResult {
        PhResult::ALL
            .get(code as usize)
            .copied()
            .unwrap_or(PhResult::Error)
    }

    /// A short English description of the code, for messages.
    pub const fn message(self) -> &'static str {
        match self {
            PhResult::Ok => "success",
            PhResult::Error => "error",
            PhResult::InvalidArgument => "invalid argument",
            PhResult::NullPointer => "null pointer",
            PhResult::InvalidUtf8 => "invalid UTF-8",
            PhResult::UnknownHandle => "unknown handle",
            PhResult::AlreadyExists => "already exists",
            PhResult::NotFound => "not found",
            PhResult::Panicked => "panicked",
            PhResult::LimitExceeded => "limit exceeded",
            PhResult::ShutDown => "plugin is shut down",
            PhResult::Io => "output error",
            PhResult::WrongThread => "called from the wrong thread",
            PhResult::HostFailed => "the host failed",
            PhResult::VersionMismatch => "version mismatch",
        }
    }
}

impl std::fmt::Display for PhResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Log levels, as passed to [`PhHostServices::log`]: the numbers of the `log` crate's levels.
#[repr(u32)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhLogLevel {
    /// Nothing is logged (only returned by [`PhHostServices::log_max_level`]).
    Off = 0,
    /// Errors.
    Error = 1,
    /// Warnings.
    Warn = 2,
    /// Information.
    Info = 3,
    /// Debugging detail.
    Debug = 4,
    /// Very verbose tracing.
    Trace = 5,
}

impl PhLogLevel {
    /// The `log` crate's level of a record, for a number passed to [`PhHostServices::log`]:
    /// `None` for 0 (off) and for numbers out of range.
    pub fn record_level(level: u32) -> Option<log::Level> {
        log::Level::iter().find(|l| *l as u32 == level)
    }

    /// The `log` crate's level filter, for a number returned by
    /// [`PhHostServices::log_max_level`]: numbers above [`PhLogLevel::Trace`] let every record
    /// through.
    pub fn filter(level: u32) -> log::LevelFilter {
        log::LevelFilter::iter()
            .find(|f| *f as u32 == level)
            .unwrap_or(log::LevelFilter::Trace)
    }
}

/// A borrowed UTF-8 string: pointer and length in bytes, not NUL-terminated.
///
/// Ownership: the side that passes it owns the bytes; the receiver may read them only for the
/// duration of the call. An empty string may have a NULL `ptr` (with `len == 0`); a NULL `ptr` with
/// a non-zero `len` is rejected with [`PhResult::NullPointer`]. Invalid UTF-8 is rejected with
/// [`PhResult::InvalidUtf8`].
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct PhStr {
    /// First byte, or NULL when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// A borrowed byte string: pointer and length. Same ownership rules as [`PhStr`], any content.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct PhBytes {
    /// First byte, or NULL when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

/// Why a [`PhStr`] or [`PhBytes`] could not be read.
fn view_error(ptr: *const u8, len: usize) -> Option<PhResult> {
    (ptr.is_null() && len != 0).then_some(PhResult::NullPointer)
}

impl PhStr {
    /// The empty string.
    pub const EMPTY: PhStr = PhStr {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrows `s`. The view is valid as long as `s` is.
    pub const fn new(s: &str) -> PhStr {
        PhStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Reads the string.
    ///
    /// Returns [`PhResult::NullPointer`] for a NULL pointer with a non-zero length and
    /// [`PhResult::InvalidUtf8`] for bytes that are not UTF-8.
    ///
    /// # Safety
    ///
    /// Unless `ptr` is NULL, `ptr..ptr + len` must be readable and unchanged for `'a`.
    pub unsafe fn to_str<'a>(self) -> Result<&'a str, PhResult> {
        // SAFETY: `PhBytes::from` keeps `ptr` and `len`, and our caller guarantees exactly what
        // `to_bytes` requires of them: unless NULL, `len` bytes readable and unchanged for `'a`.
        let bytes = unsafe { PhBytes::from(self).to_bytes()? };
        std::str::from_utf8(bytes).map_err(|_| PhResult::InvalidUtf8)
    }
}

impl PhBytes {
    /// No bytes.
    pub const EMPTY: PhBytes = PhBytes {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrows `bytes`. The view is valid as long as `bytes` is.
    pub const fn new(bytes: &[u8]) -> PhBytes {
        PhBytes {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// Reads the bytes.
    ///
    /// Returns [`PhResult::NullPointer`] for a NULL pointer with a non-zero length.
    ///
    /// # Safety
    ///
    /// Unless `ptr` is NULL, `ptr..ptr + len` must be readable and unchanged for `'a`.
    pub unsafe fn to_bytes<'a>(self) -> Result<&'a [u8], PhResult> {
        if let Some(err) = view_error(self.ptr, self.len) {
            return Err(err);
        }
        if self.len == 0 {
            return Ok(&[]);
        }
        // SAFETY: `ptr` is not NULL (checked above) and the caller guarantees that its `len` bytes
        // are readable and unchanged for `'a` (so they lie in one allocation, which also bounds
        // `len` by `isize::MAX`); `u8` needs no alignment.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
    }
}

impl From<PhStr> for PhBytes {
    fn from(s: PhStr) -> PhBytes {
        PhBytes {
            ptr: s.ptr,
            len: s.len,
        }
    }
}

/// The host's per-plugin state, opaque to plugins.
///
/// The host creates one for each plugin before `init` and passes it as the first argument of every
/// host service. Ownership: the host. The pointer stays valid for as long as the plugin's library
/// is mapped, which is until the process exits (the host never unloads a library); a plugin may
/// keep it anywhere, in any thread. After `shutdown` returned, after a fault, after a failed
/// `init` and after the host itself is gone, services called with it return
/// [`PhResult::ShutDown`]. Passing another plugin's context is not detected: it acts as that
/// plugin; any other non-NULL pointer that the host did not give is undefined behaviour.
#[repr(C)]
#[derive(StableAbi)]
pub struct PhHostContext {
    _private: [u8; 0],
}

/// A command implemented by a plugin. `[thread-safe]`: the host may run commands on any thread,
/// several at once.
///
/// - `user_data`: the pointer given to `register_command`.
/// - `args`, `arg_count`: the arguments after the command name, `arg_count` views (`args` may be
///   NULL when `arg_count` is 0). Borrowed for the duration of the call.
/// - `output`: where the command writes its output and its error message; borrowed for the
///   duration of the call, never NULL.
///
/// Returns [`PhResult::Ok`] on success; any other code is a failed command, whose message the
/// command should have set with [`PhCommandOutput::set_error`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhCommandCallback(
    pub  unsafe extern "C" fn(
        user_data: *mut c_void,
        args: *const PhStr,
        arg_count: usize,
        output: *const PhCommandOutput,
    ) -> PhResultCode,
);

/// An event handler. `[thread-safe]`: called on the thread that published the event, possibly
/// several at once, and reentrantly (a handler may publish).
///
/// - `user_data`: the pointer given to `subscribe`.
/// - `topic`, `payload`: the published event, borrowed for the duration of the call.
///
/// Returns [`PhResult::Ok`], or an error code that the host logs.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhEventCallback(
    pub unsafe extern "C" fn(user_data: *mut c_void, topic: PhStr, payload: PhBytes) -> PhResultCode,
);

/// Releases the `user_data` of a registration. `[thread-safe]`: called exactly once, on any thread,
/// after the registration ended and no dispatch uses it.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhDestroyCallback(pub unsafe extern "C" fn(user_data: *mut c_void));

/// Receives one command during an enumeration, EnumWindows style: return `true` to get the next
/// one, `false` to stop. `info` is borrowed for the duration of the call.
///
/// Thread: the thread that called the enumeration.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhCommandInfoCallback(
    pub unsafe extern "C" fn(user_data: *mut c_void, info: *const PhCommandInfo) -> bool,
);

/// Receives one loaded plugin during [`PhHostServices::enumerate_plugins`]: return `true` to get
/// the next one, `false` to stop. `info` is borrowed for the duration of the call.
///
/// Thread: the thread that called the enumeration.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhPluginInfoCallback(
    pub unsafe extern "C" fn(user_data: *mut c_void, info: *const PhPluginInfo) -> bool,
);

/// Writes bytes to a command's output. See [`PhCommandOutput::write`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhWriteFn(
    pub unsafe extern "C" fn(context: *mut c_void, bytes: PhBytes) -> PhResultCode,
);

/// Sets a command's error message. See [`PhCommandOutput::set_error`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhSetErrorFn(pub unsafe extern "C" fn(context: *mut c_void, message: PhStr));

/// Where a running command writes. Filled by the host, borrowed by the command for the duration of
/// its call; the command passes `context` as the first argument of each function.
///
/// Thread rule: `write` and `set_error` may be called only on the thread that is running the
/// command (the thread the host called the command on), only before the command returns. From
/// another thread they return [`PhResult::WrongThread`] (`set_error` ignores the message) and touch
/// nothing: a command that works in parallel collects its workers' output and writes it from its
/// own thread.
#[repr(C)]
#[derive(StableAbi)]
pub struct PhCommandOutput {
    /// `size_of::<PhCommandOutput>()` of the host that filled it.
    pub struct_size: u32,
    /// The host's state for this run; pass it back, never dereference it.
    pub context: *mut c_void,
    /// Appends bytes to the command's standard output. The bytes are copied before it returns.
    /// Returns [`PhResult::Io`] when the output is gone (a closed pipe): stop writing then;
    /// [`PhResult::WrongThread`] from another thread than the command's; [`PhResult::Panicked`]
    /// if the host failed (do not return that code from the command: it would fault the plugin).
    pub write: PhWriteFn,
    /// Sets the message shown to the user if the command fails (the last call wins). The message is
    /// copied before it returns. Ignored from another thread than the command's.
    pub set_error: PhSetErrorFn,
}

/// What a plugin says about one of its commands: given to
/// [`PhHostServices::register_command_with_info`], and passed to command enumeration callbacks.
///
/// Filled by the side that passes it, borrowed by the other for the duration of the call.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhCommandInfo {
    /// `size_of::<PhCommandInfo>()` of the side that filled it.
    pub struct_size: u32,
    /// The command name, as given to `register_command`.
    pub name: PhStr,
    /// One line saying what the command does (may be empty; at most [`PH_MAX_DESCRIPTION_LEN`]
    /// bytes).
    pub description: PhStr,
    /// The arguments, for help output, such as `[--top N] FILE...` (may be empty; at most
    /// [`PH_MAX_USAGE_LEN`] bytes).
    pub usage: PhStr,
}

/// What the host says about one loaded plugin, during [`PhHostServices::enumerate_plugins`].
///
/// Filled by the host, borrowed by the callback for the duration of the call.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhPluginInfo {
    /// `size_of::<PhPluginInfo>()` of the host.
    pub struct_size: u32,
    /// The plugin's ABI major version.
    pub abi_major: u16,
    /// The plugin's ABI minor version.
    pub abi_minor: u16,
    /// The plugin's unique name.
    pub name: PhStr,
    /// The plugin's version string.
    pub version: PhStr,
    /// The plugin's one-line description.
    pub description: PhStr,
    /// The path of the library file the plugin was loaded from.
    pub path: PhStr,
}

/// The function table of host services, given to a plugin's `init`.
///
/// Ownership: the host. The table is a static of the host: it stays valid for the rest of the
/// process, like the [`PhHostContext`] (see the lifetime model in the module docs); a plugin may
/// keep both anywhere. Every function takes the plugin's [`PhHostContext`] first. All functions
/// are `[thread-safe]`: any thread, concurrently, reentrantly from inside a callback, also after
/// the plugin's end (then they return [`PhResult::ShutDown`]); they never unwind: a panic inside
/// the host becomes [`PhResult::Panicked`]. A NULL context returns [`PhResult::NullPointer`]
/// (but `log_max_level`, which returns a level). When arguments break several rules, the code is
/// that of the first check that fails: the context, the callback, then the other arguments in
/// order (each: NULL view, UTF-8, its own rule), then the host's state; `docs/abi.md` (section 8)
/// lists each function's checks. On error nothing is written through an output pointer.
///
/// Check `abi_minor` (or `struct_size`) before using a field added after minor version 0.
#[repr(C)]
#[derive(StableAbi)]
pub struct PhHostServices {
    /// The host's ABI major version ([`PH_ABI_VERSION_MAJOR`]).
    pub abi_major: u16,
    /// The host's ABI minor version.
    pub abi_minor: u16,
    /// `size_of::<PhHostServices>()` of the host.
    pub struct_size: u32,

    /// Logs `message` at `level` (a [`PhLogLevel`] from 1, error, to 5, trace).
    ///
    /// The host's logger shows every record of a plugin under a target that starts with the
    /// plugin's name: an empty `target`, or the plugin's name, gives `NAME`; a `target` that
    /// starts with `NAME::` is kept; any other becomes `NAME::target`. Both strings are borrowed for
    /// the call. Returns [`PhResult::InvalidArgument`] for a level out of range (checked first,
    /// then `target`, then `message`), and `Ok` also when the record is filtered out.
    /// `[thread-safe]`
    pub log: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        level: u32,
        target: PhStr,
        message: PhStr,
    ) -> PhResultCode,

    /// The most verbose level the host's logger may show (a [`PhLogLevel`], 0 = off). A plugin
    /// filters records above it on its own side, so they never cross the boundary. The level does
    /// not change while plugins are loaded (a host must keep it so): a plugin may read it once, at
    /// `init`. It reads nothing through `ctx`: any context, even NULL or an ended plugin's, gets
    /// the level. `[thread-safe]`
    pub log_max_level: unsafe extern "C" fn(ctx: *mut PhHostContext) -> u32,

    /// Registers a command that users run by `name`, without a description (plugins of ABI 1.2
    /// use [`PhHostServices::register_command_with_info`]). `[thread-safe]`
    ///
    /// `callback` must not be NULL (checked first); `name` is borrowed (1 to [`PH_MAX_NAME_LEN`]
    /// bytes of ASCII letters, digits, `-`, `_` or `.`). Returns [`PhResult::LimitExceeded`] beyond
    /// [`PH_MAX_REGISTRATIONS_PER_PLUGIN`]. On success the host owns the registration until
    /// `unregister` or shutdown and writes the new handle to `*out_handle` (`out_handle` may be
    /// NULL). Returns [`PhResult::AlreadyExists`] if any plugin registered that name (the first
    /// registration keeps it; the host logs a warning naming both plugins);
    /// [`PhResult::ShutDown`] during or after the plugin's shutdown or fault. On error nothing is
    /// written, and `destroy` is called before this returns (plugins of ABI 1.2 and later; see
    /// "Ownership of user data").
    pub register_command: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        name: PhStr,
        callback: Option<PhCommandCallback>,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
        out_handle: *mut PhHandle,
    ) -> PhResultCode,

    /// Ends a registration (command or subscription) that this plugin made. The callback is not
    /// called by any dispatch that starts afterwards; `destroy` runs once the dispatches under way
    /// have finished, so a callback may unregister itself. Returns [`PhResult::UnknownHandle`] for
    /// a handle this plugin does not own (already unregistered, or another plugin's).
    /// `[thread-safe]`
    pub unregister: unsafe extern "C" fn(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode,

    /// Subscribes to events published on `topic` (1 to [`PH_MAX_TOPIC_LEN`] bytes of ASCII
    /// letters, digits, `-`, `_` or `.`; or `*` for every topic). `callback` must not be NULL.
    /// Returns [`PhResult::LimitExceeded`] beyond [`PH_MAX_REGISTRATIONS_PER_PLUGIN`] and
    /// [`PhResult::ShutDown`] during or after the plugin's shutdown or fault. The handle goes to
    /// `*out_handle` (may be NULL). On error nothing is written and, for plugins of ABI 1.2 and
    /// later, `destroy` is called before this returns. `[thread-safe]`
    pub subscribe: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        topic: PhStr,
        callback: Option<PhEventCallback>,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
        out_handle: *mut PhHandle,
    ) -> PhResultCode,

    /// Publishes an event: calls every subscriber of `topic` in subscription order, then every
    /// subscriber of `*` in subscription order, on this thread, before returning. `topic` (same
    /// rules as for `subscribe`, but `*` and the empty topic are refused with
    /// [`PhResult::InvalidArgument`]) and `payload` are borrowed for the call. A
    /// subscriber unregistered before its turn is skipped, also by a dispatch under way. Handlers
    /// may publish in turn: the outermost publish of a thread has depth 1, and publishes deeper
    /// than [`PH_MAX_EVENT_DEPTH`] return [`PhResult::LimitExceeded`]. Returns [`PhResult::Ok`]
    /// even if some handler failed (failures are logged). `[thread-safe]`
    pub publish: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        topic: PhStr,
        payload: PhBytes,
    ) -> PhResultCode,

    /// Calls `callback` once per active plugin of this host (its `init` returned `Ok`, and it is
    /// not shutting down, shut down or faulted; a plugin whose `init` is running is not listed),
    /// in load order (the order in which `init` succeeded; `plughost` loads a folder in bytewise
    /// file-name order), until it returns `false`.
    /// `callback` must not be NULL. Enumerations nested (from inside a callback) deeper than
    /// [`PH_MAX_ENUMERATION_DEPTH`] return [`PhResult::LimitExceeded`]. `[thread-safe]`; the
    /// callback runs on the calling thread.
    pub enumerate_plugins: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        callback: Option<PhPluginInfoCallback>,
        user_data: *mut c_void,
    ) -> PhResultCode,

    /// Enumerates the commands of the plugin named `plugin_name`, from the host's records, in
    /// registration order: `callback` is called once per command until it returns `false`. Only
    /// commands that plugin registered are listed; their text is what was given to
    /// `register_command_with_info` (for a plugin older than 1.2, what its own
    /// `enumerate_commands` says of those names). Returns [`PhResult::NotFound`] if no such plugin
    /// is active (also for the calling plugin during its own `init`),
    /// [`PhResult::LimitExceeded`] for enumerations nested deeper than
    /// [`PH_MAX_ENUMERATION_DEPTH`]. `[thread-safe]`; the callback runs on the calling thread.
    pub enumerate_commands: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        plugin_name: PhStr,
        callback: Option<PhCommandInfoCallback>,
        user_data: *mut c_void,
    ) -> PhResultCode,

    /// Reads one value of the plugin's configuration (added in ABI 1.1: check `abi_minor >= 1`
    /// first). The host's user gives each plugin a table of settings (with `plughost`, the
    /// `[plugins.NAME]` table of the file given with `--config`); it does not change while the
    /// plugin is loaded.
    ///
    /// `key` is borrowed for the call: a key of that table, or a dotted path into a nested table
    /// (`output.format`). On success the host writes the value to `*out_value` as UTF-8 text: a
    /// string as its contents (no quotes), anything else (integer, float, boolean, date, array,
    /// table) in canonical TOML, one spelling per value, such as `20`, `1.0`, `true`,
    /// `1979-05-27T07:32:00Z`, `["a", "b"]` or `{ k = 1 }` (`docs/abi.md`, "Configuration", has
    /// the rules). The host owns those bytes; they stay valid and unchanged for as long as the
    /// plugin's host context (see the lifetime model in the module docs), so a plugin thread that
    /// read a value may still use it while the plugin shuts down.
    /// Returns [`PhResult::NotFound`] if the key is not set, [`PhResult::NullPointer`] if
    /// `out_value` is NULL; on error nothing is written. `[thread-safe]`
    pub config_get: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        key: PhStr,
        out_value: *mut PhStr,
    ) -> PhResultCode,

    /// Registers a command with its text (added in ABI 1.2: check `abi_minor >= 2` first). The
    /// host keeps the text and shows it in `plughost list` and `plughost run COMMAND --help`, and
    /// answers command enumerations from it. `[thread-safe]`
    ///
    /// `info` is borrowed for the call: its `name` follows the rules of `register_command`, its
    /// `description` and `usage` may be empty, at most [`PH_MAX_DESCRIPTION_LEN`] and
    /// [`PH_MAX_USAGE_LEN`] bytes of UTF-8 (longer: [`PhResult::LimitExceeded`]); a NULL `info`
    /// or an `info.struct_size` smaller than [`PhCommandInfo`] returns
    /// [`PhResult::NullPointer`] or [`PhResult::InvalidArgument`]. Everything else, results and
    /// ownership included, is as for `register_command`: on error nothing is written and
    /// `destroy` is called before this returns.
    pub register_command_with_info: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        info: *const PhCommandInfo,
        callback: Option<PhCommandCallback>,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
        out_handle: *mut PhHandle,
    ) -> PhResultCode,

    /// Provides an interface to the other plugins and the application (added in ABI 1.3: check
    /// `abi_minor >= 3` first). `[thread-safe]`
    ///
    /// `decl` is borrowed for the call: the interface's id and version, and its function table
    /// (see [`PhInterfaceDecl`]), which the provider owns and keeps valid and unchanged until
    /// `destroy(user_data)` runs. Callers call the table's functions directly, each with
    /// `user_data` as its first argument, on any thread, several at once, also while the provider
    /// shuts down (a call that started before the provider's end may still be running when its
    /// `shutdown` is called; `user_data` stays valid until `destroy`).
    ///
    /// On success writes the registration's handle to `*out_handle` (may be NULL). It ends with
    /// [`PhHostServices::unregister`] or the provider's end (shutdown, fault, failed `init`):
    /// from then on every caller's [`PhInterface::alive`] reads 0, and `destroy(user_data)` runs
    /// once, after the last caller released its reference. Errors, after which `destroy` has
    /// run: [`PhResult::AlreadyExists`] if that id and major are provided already (by anyone),
    /// [`PhResult::InvalidArgument`] for an id that breaks the rules of names, a NULL `table`, or
    /// a `decl.struct_size` smaller than [`PhInterfaceDecl`] of ABI 1.3 (up to `signature`; a
    /// 1.3 or 1.4 declaration has no `layout`, read as NULL), [`PhResult::NullPointer`] for a NULL
    /// `decl`, [`PhResult::LimitExceeded`], [`PhResult::ShutDown`] as for registrations.
    pub provide_interface: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        decl: *const PhInterfaceDecl,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
        out_handle: *mut PhHandle,
    ) -> PhResultCode,

    /// Queries the interface `id` of major version `major` whose table is at least
    /// `min_table_size` bytes (added in ABI 1.3). `[thread-safe]`
    ///
    /// On success writes a reference to `*out` (see [`PhInterface`]): the table, its size and
    /// minor, the provider's `user_data`, the `alive` word to check before each call, the
    /// handle to give to [`PhHostServices::release_interface`], the provider's signature and,
    /// if `out->struct_size` has room for it, its layout. The reference counts as one of the
    /// caller's registrations; it keeps the provider's `user_data` alive until it is released (or
    /// the caller ends). Errors, after which nothing is written: [`PhResult::NotFound`] if nobody
    /// provides that id and major, [`PhResult::VersionMismatch`] if the table provided is smaller
    /// than `min_table_size`, [`PhResult::NullPointer`] for a NULL `out`,
    /// [`PhResult::InvalidArgument`] for an `out->struct_size` smaller than [`PhInterface`] of
    /// ABI 1.3 (up to `signature`), [`PhResult::LimitExceeded`], [`PhResult::ShutDown`].
    pub query_interface: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        id: PhStr,
        major: u16,
        min_table_size: u32,
        out: *mut PhInterface,
    ) -> PhResultCode,

    /// Releases a reference from [`PhHostServices::query_interface`] (added in ABI 1.3): its
    /// `alive` word reads 0 from now on, and the caller must not call through it any more (wait
    /// for the calls under way on other threads first). Returns [`PhResult::UnknownHandle`] for a
    /// handle that is not one of this plugin's references. `[thread-safe]`
    pub release_interface:
        unsafe extern "C" fn(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode,

    /// Runs `count` tasks on the host's worker threads and returns when all of them have
    /// returned (added in ABI 1.4: check `abi_minor >= 4` first). Task `i` is the call
    /// `task(user_data, i)`, for each `i` in `0..count`, once; tasks run in any order, several at
    /// once, on the host's worker threads and possibly on the calling thread. `user_data` is the
    /// caller's, borrowed for the call: the host only passes it to `task`. `[thread-safe]`,
    /// also from inside a task (nested calls share the same workers and do not deadlock).
    ///
    /// The host calls tasks only while the plugin is active: once it is shutting down, faulted or
    /// shut down, tasks not yet started are skipped and the call returns [`PhResult::ShutDown`]
    /// (the host's shutdown of the plugin waits for this call to return, so no task runs once
    /// `shutdown` is called). A task that returns [`PhResult::Panicked`] faults the plugin, like
    /// any callback: the tasks not yet started are skipped and the call returns
    /// [`PhResult::Panicked`]. Otherwise it returns [`PhResult::Ok`] if every task returned `Ok`,
    /// else the code of the failed task with the lowest index (all tasks ran). `count` 0 returns
    /// `Ok` at once; a NULL `task` returns [`PhResult::NullPointer`].
    pub run_tasks: unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        task: Option<PhTaskFn>,
        user_data: *mut c_void,
        count: u32,
    ) -> PhResultCode,

    /// How many tasks of [`PhHostServices::run_tasks`] the host runs at once: the number of its
    /// worker threads, at least 1 (added in ABI 1.4). A plugin that splits work into one part per
    /// worker (to bound its memory) asks it once. Like `log_max_level` it reads nothing through
    /// `ctx`. `[thread-safe]`
    pub task_threads: unsafe extern "C" fn(ctx: *mut PhHostContext) -> u32,
}

/// One task of [`PhHostServices::run_tasks`]: `user_data` as given to `run_tasks`, and the task's
/// index, from 0 to `count - 1`. Returns [`PhResult::Ok`] or an error code (see `run_tasks`).
/// `[thread-safe]`: runs on any of the host's worker threads, or the calling thread, concurrently
/// with the other tasks.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhTaskFn(pub unsafe extern "C" fn(user_data: *mut c_void, index: u32) -> PhResultCode);

/// An interface's id and version, in a descriptor's lists of what a plugin provides and requires
/// (ABI 1.3). Owned by the plugin, like the descriptor.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhInterfaceVersion {
    /// The interface's id, such as `plughost.kv`: the rules of names (1 to [`PH_MAX_NAME_LEN`]
    /// bytes of ASCII letters, digits, `-`, `_` or `.`).
    pub id: PhStr,
    /// The major version: interfaces of different majors are different interfaces.
    pub major: u16,
    /// For a provided interface, its minor; for a requirement, the minimum minor.
    pub minor: u16,
    /// For a requirement: [`PH_INTERFACE_OPTIONAL`] if the plugin loads without it; otherwise 0.
    pub flags: u32,
}

/// Where an interface function writes bytes it returns (a convention for interface tables, ABI
/// 1.3): the callee calls `write(context, bytes)` (once for a value; zero times for "none"), and
/// the caller copies the bytes, which are borrowed for that call only. `[thread-safe]` as the
/// call it is passed to: only during that call, on its thread.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhBytesSink {
    /// The caller's state; passed back as `write`'s first argument.
    pub context: *mut c_void,
    /// Receives the bytes.
    pub write: unsafe extern "C" fn(context: *mut c_void, bytes: PhBytes),
}

/// How many interfaces a descriptor may list in [`PhPluginDescriptor::provides`], and in
/// [`PhPluginDescriptor::requires`]; a longer list refuses the plugin.
pub const PH_MAX_INTERFACES: usize = 64;

/// The flag of an optional requirement in [`PhInterfaceVersion::flags`].
pub const PH_INTERFACE_OPTIONAL: u32 = 1;

/// An interface as [`PhHostServices::provide_interface`] takes it, borrowed for the call.
#[repr(C)]
#[derive(StableAbi)]
pub struct PhInterfaceDecl {
    /// `size_of::<PhInterfaceDecl>()` of the provider.
    pub struct_size: u32,
    /// The interface's minor version: the table's size says what callers may use, the minor says
    /// it in the provider's terms (for [`PhPluginDescriptor::requires`]).
    pub minor: u16,
    /// The major version.
    pub major: u16,
    /// The id (rules of names).
    pub id: PhStr,
    /// The function table, owned by the provider, valid and unchanged until the `destroy` of the
    /// interface's registration; must not be NULL. Its layout is the interface's own contract; by
    /// convention each function takes the provider's `user_data` as its first argument and
    /// returns a [`PhResultCode`], and minor versions only add functions at the end.
    pub table: *const c_void,
    /// The table's size in bytes.
    pub table_size: u32,
    /// The table's signature, for callers to compare with theirs: the Rust layer writes each
    /// method's name and types (`put(&str,&[u8])->Result<(),Error>;...`). May be empty
    /// (C providers): then callers cannot check it. Borrowed for the call; the host keeps a copy.
    pub signature: PhStr,
    /// The table's type layout (added in ABI 1.5): NULL, or what the Rust layer passes, the
    /// address of abi_stable's `TypeLayout` of the table (abi_stable 0.11's format, not part of
    /// this ABI), static data of the provider's library, valid for the rest of the process. The
    /// host does not read it; it hands the address to every caller in [`PhInterface::layout`],
    /// and a Rust caller compares it with its own table's layout. C providers pass NULL. A
    /// declaration of an older minor's size (up to `signature`) has none: NULL.
    pub layout: *const c_void,
}

/// A reference to an interface, written by [`PhHostServices::query_interface`]. The caller owns
/// the struct; what it points to belongs to the provider and the host. The host writes as many
/// bytes as the caller's `struct_size` and its own definition both have, and sets `struct_size`
/// to that size.
#[repr(C)]
#[derive(StableAbi)]
pub struct PhInterface {
    /// `size_of::<PhInterface>()` of the caller; set it before the query.
    pub struct_size: u32,
    /// The provider's minor version of the interface.
    pub minor: u16,
    /// Unused; 0.
    pub reserved: u16,
    /// The provider's function table: call its functions directly, no host code in between.
    pub table: *const c_void,
    /// The size of the provider's table in bytes (at least the query's minimum).
    pub table_size: u32,
    /// The provider's `user_data`, the first argument of every function of the table. Valid
    /// until this reference is released.
    pub user_data: *mut c_void,
    /// Nonzero while calls through this reference may go on; 0 once it is released, or once its
    /// provider ended (unregistered the interface, was shut down, faulted or refused). Read it
    /// with an acquire load (C: `__atomic_load_n(ref.alive, __ATOMIC_ACQUIRE)`) before each call,
    /// and do not call when it is 0. Valid for the rest of the process, also after the release.
    pub alive: *const u32,
    /// The reference's handle, for [`PhHostServices::release_interface`].
    pub handle: PhHandle,
    /// The signature the provider declared ([`PhInterfaceDecl::signature`], possibly empty),
    /// owned by the host, valid until the reference is released. A caller that has a signature
    /// of its own compares them and releases the reference if they differ.
    pub signature: PhStr,
    /// The layout the provider declared ([`PhInterfaceDecl::layout`], possibly NULL; added in
    /// ABI 1.5). A host writes it only when `struct_size` covers it: a caller of an older minor
    /// passes a smaller struct, and the host writes only that much (and sets `struct_size` to
    /// the size it wrote). A Rust caller whose table has a layout compares the two and releases
    /// the reference if they are incompatible.
    pub layout: *const c_void,
}

/// How deeply event handlers may publish from inside handlers, per thread: the outermost publish
/// has depth 1.
pub const PH_MAX_EVENT_DEPTH: u32 = 16;

/// How deeply enumerations ([`PhHostServices::enumerate_plugins`],
/// [`PhHostServices::enumerate_commands`]) may nest from inside their callbacks, per thread.
pub const PH_MAX_ENUMERATION_DEPTH: u32 = 16;

/// A plugin's `init`. `[main-thread]`, called once, before any other function of the table.
///
/// - `ctx`: the plugin's host context, for every host service call.
/// - `host`: the host services; valid for the rest of the process, like `ctx` (the host never
///   unloads a library).
/// - `out_plugin_data`: on success the plugin writes its own state pointer there (may be NULL);
///   the host passes it back to `shutdown` and `enumerate_commands` and never dereferences it.
///
/// Returns [`PhResult::Ok`], or an error: then the host undoes the plugin's registrations (each
/// `destroy` runs), does not call `shutdown`, ignores `out_plugin_data`, and reports the plugin as
/// refused; the plugin frees what it allocated before returning the error. To say why, it logs
/// an error-level record ([`PhHostServices::log`]) before it returns: the host shows the last such
/// record of the `init` with the refusal (`init failed: CODE: MESSAGE`), whatever its log filter.
/// A library may be initialised more than once in a process (by several hosts), each time with its
/// own context.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhInitFn(
    pub  unsafe extern "C" fn(
        ctx: *mut PhHostContext,
        host: *const PhHostServices,
        out_plugin_data: *mut *mut c_void,
    ) -> PhResultCode,
);

/// A plugin's `shutdown`. `[main-thread]`, called once, after a successful `init`, in reverse load
/// order, never for a faulted plugin. Before calling it, the host has stopped every call into the
/// plugin and waited for the calls under way on other threads to return. The plugin releases its
/// state and joins its threads; its registrations end when it returns (their `destroy` callbacks
/// may run afterwards), and host services called afterwards return [`PhResult::ShutDown`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhShutdownFn(pub unsafe extern "C" fn(plugin_data: *mut c_void) -> PhResultCode);

/// A plugin's command enumeration, required for plugins of ABI 1.0 and 1.1: calls `callback`
/// once per command the plugin registered, until it returns `false`. `callback` is never NULL.
/// The host calls it (on any thread) only while the plugin is active, and only to learn the text
/// of the commands the plugin registered with `register_command` (without text); names the plugin
/// did not register are ignored. From ABI 1.2 on it may be NULL: a plugin that registers every
/// command with `register_command_with_info` is never asked.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhEnumerateCommandsFn(
    pub  unsafe extern "C" fn(
        plugin_data: *mut c_void,
        callback: PhCommandInfoCallback,
        user_data: *mut c_void,
    ) -> PhResultCode,
);

/// A plugin's `save_state` (ABI 1.4, optional): writes the state that the plugin's next version
/// should have, when the host replaces the plugin by a new build of it
/// ([`PhPluginVtable::restore_state`] gives it to the new version).
///
/// The plugin calls `sink->write(sink->context, bytes)` zero or more times; the host appends the
/// bytes (borrowed for each write) in order. The format is the plugin's own: include a version
/// of it, since the next build may be another version of the plugin. Returns [`PhResult::Ok`],
/// or an error: then the host drops what was written and logs that the state was not handed
/// over ([`PhResult::Panicked`] faults the plugin: no `shutdown` follows).
///
/// `[main-thread]`, at most once, just before `shutdown`: at that point the host has stopped
/// every call into the plugin and waited for the calls under way, as for `shutdown`, so the
/// plugin's state is at rest. `sink` is valid for the call only.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhSaveStateFn(
    pub unsafe extern "C" fn(plugin_data: *mut c_void, sink: *const PhBytesSink) -> PhResultCode,
);

/// A plugin's `restore_state` (ABI 1.4, optional): takes the state that the version it replaced
/// saved with [`PhPluginVtable::save_state`].
///
/// `from_version` is the replaced version's descriptor version; `state` the bytes it wrote (may
/// be empty); both are borrowed for the call. The new version is already serving when this is
/// called (its `init` succeeded and it received every call since the swap, so nothing reaches
/// the old version after its state was saved): the plugin **merges** the state into what it has,
/// it does not overwrite it. Returns [`PhResult::Ok`], or an error (logged: the state is lost,
/// the plugin goes on serving; [`PhResult::Panicked`] faults it).
///
/// `[main-thread]`, at most once per reload, after `init`; the plugin's `[thread-safe]` callbacks
/// may run on other threads meanwhile.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhRestoreStateFn(
    pub  unsafe extern "C" fn(
        plugin_data: *mut c_void,
        from_version: PhStr,
        state: PhBytes,
    ) -> PhResultCode,
);

/// The plugin's function table, filled by the plugin and owned by it (normally a `static`); it must
/// stay valid and unchanged while the library is loaded.
#[repr(C)]
#[derive(StableAbi)]
pub struct PhPluginVtable {
    /// `size_of::<PhPluginVtable>()` of the plugin: at least the table's size in the ABI minor the
    /// plugin declares (1.0 to 1.3: up to `enumerate_commands`; from 1.4: up to
    /// `restore_state`), or the plugin is refused.
    pub struct_size: u32,
    /// Required. See [`PhInitFn`].
    pub init: Option<PhInitFn>,
    /// Required. See [`PhShutdownFn`].
    pub shutdown: Option<PhShutdownFn>,
    /// Required for ABI 1.0 and 1.1, optional (NULL) from 1.2 on. See [`PhEnumerateCommandsFn`].
    pub enumerate_commands: Option<PhEnumerateCommandsFn>,
    /// May be NULL (the plugin hands no state to its next version); added in ABI 1.4. See
    /// [`PhSaveStateFn`].
    pub save_state: Option<PhSaveStateFn>,
    /// May be NULL (the plugin takes no state from the version it replaces); added in ABI
    /// 1.4. See [`PhRestoreStateFn`].
    pub restore_state: Option<PhRestoreStateFn>,
}

/// What a plugin library says about itself, returned by its entry point.
///
/// Owned by the plugin (normally a `static`); it and everything it points to must stay valid and
/// unchanged while the library is loaded.
#[repr(C)]
#[derive(StableAbi)]
pub struct PhPluginDescriptor {
    /// The ABI major version the plugin was built for ([`PH_ABI_VERSION_MAJOR`]).
    pub abi_major: u16,
    /// The ABI minor version the plugin was built for ([`PH_ABI_VERSION_MINOR`]).
    pub abi_minor: u16,
    /// `size_of::<PhPluginDescriptor>()` of the plugin: at least the descriptor's size in the ABI
    /// minor the plugin declares (the same in every minor so far), or the plugin is refused.
    pub struct_size: u32,
    /// The plugin's unique name, its id: 1 to [`PH_MAX_NAME_LEN`] bytes of ASCII letters, digits,
    /// `-`, `_` or `.`.
    pub name: PhStr,
    /// The plugin's version, such as `1.2.0`. UTF-8, may be empty, at most
    /// [`PH_MAX_VERSION_LEN`] bytes.
    pub version: PhStr,
    /// One line saying what the plugin does. UTF-8, may be empty, at most
    /// [`PH_MAX_DESCRIPTION_LEN`] bytes.
    pub description: PhStr,
    /// The plugin's function table; must not be NULL.
    pub vtable: *const PhPluginVtable,
    /// The interfaces the plugin provides (ABI 1.3): `provides_count` entries, or NULL when the
    /// count is 0. Declared here so that the host can init providers before their users; the
    /// plugin provides each with [`PhHostServices::provide_interface`] during its `init`.
    pub provides: *const PhInterfaceVersion,
    /// The number of entries of `provides`.
    pub provides_count: usize,
    /// The interfaces the plugin requires (ABI 1.3): `requires_count` entries, or NULL when the
    /// count is 0. The host inits their providers first, and refuses the plugin (before `init`)
    /// if a requirement without [`PH_INTERFACE_OPTIONAL`] is provided by no plugin and not by the
    /// application, in that major with at least that minor.
    pub requires: *const PhInterfaceVersion,
    /// The number of entries of `requires`.
    pub requires_count: usize,
}

// SAFETY: a descriptor has no interior mutability, so a shared reference only ever reads its plain
// fields; its raw pointers can only be followed in `unsafe` code, which must meet the ABI's rule
// that what they point to stays valid and unchanged while the library is loaded. Sharing one
// between threads therefore adds no data race. (Plugins need it to put their descriptor in a
// `static`.)
unsafe impl Sync for PhPluginDescriptor {}

/// The type of the entry point, [`PH_ENTRY_POINT_SYMBOL`]. `[main-thread]`.
///
/// Returns the plugin's descriptor (owned by the plugin, valid while the library is loaded), or
/// NULL if the plugin cannot run. It must not call the host and should do no other work.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct PhEntryPoint(pub unsafe extern "C" fn() -> *const PhPluginDescriptor);

/// Returns `true` if `name` is a valid plugin name or command name: 1 to [`PH_MAX_NAME_LEN`]
/// bytes of ASCII letters, digits, `-`, `_` or `.`.
pub fn is_valid_name(name: &str) -> bool {
    has_valid_chars(name, PH_MAX_NAME_LEN)
}

/// Returns `true` if `topic` is a valid event topic: 1 to [`PH_MAX_TOPIC_LEN`] bytes of ASCII
/// letters, digits, `-`, `_` or `.`. (Subscribing to `*` is also allowed: it means every topic.)
pub fn is_valid_topic(topic: &str) -> bool {
    has_valid_chars(topic, PH_MAX_TOPIC_LEN)
}

fn has_valid_chars(s: &str, max_len: usize) -> bool {
    !s.is_empty()
        && s.len() <= max_len
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A struct of the ABI that starts with `struct_size: u32`, the size of the struct in the ABI
/// version of the side that filled it; see [`read_sized`].
///
/// # Safety
///
/// Implemented only for `#[repr(C)]` structs whose first field is `struct_size: u32`.
pub unsafe trait SizedStruct {}

// SAFETY: `#[repr(C)]`, first field `struct_size: u32`.
unsafe impl SizedStruct for PhCommandOutput {}
// SAFETY: `#[repr(C)]`, first field `struct_size: u32`.
unsafe impl SizedStruct for PhCommandInfo {}
// SAFETY: `#[repr(C)]`, first field `struct_size: u32`.
unsafe impl SizedStruct for PhPluginInfo {}
// SAFETY: `#[repr(C)]`, first field `struct_size: u32`.
unsafe impl SizedStruct for PhInterfaceDecl {}
// SAFETY: `#[repr(C)]`, first field `struct_size: u32`.
unsafe impl SizedStruct for PhInterface {}

/// A [`SizedStruct`] that grew in a minor version after it appeared: the other side may pass the
/// size of an older minor, down to [`GrownStruct::MIN_SIZE`]. [`read_grown`] reads one given by
/// the other side, [`sized_out`] and [`write_grown`] write one for it.
///
/// # Safety
///
/// All-zero bytes are a valid `Self` (its fields are integers, raw pointers, views and optional
/// function pointers), and `MIN_SIZE` is the offset of a field of `Self`, at least 4.
pub unsafe trait GrownStruct: SizedStruct + Sized {
    /// The smallest `struct_size` accepted: the size the struct had in the minor that
    /// introduced it.
    const MIN_SIZE: usize;
}

// SAFETY: integers, raw pointers and views; `layout` (1.5) is a field.
unsafe impl GrownStruct for PhInterfaceDecl {
    const MIN_SIZE: usize = std::mem::offset_of!(PhInterfaceDecl, layout);
}
// SAFETY: integers, raw pointers and views; `layout` (1.5) is a field.
unsafe impl GrownStruct for PhInterface {
    const MIN_SIZE: usize = std::mem::offset_of!(PhInterface, layout);
}

/// Borrows the struct at `ptr`, filled by the other side, if it is not NULL and its `struct_size`
/// covers this ABI version's `T`. Nothing but `struct_size` is read before that check (a
/// reference to a smaller struct would be undefined behaviour).
///
/// # Errors
///
/// [`PhResult::NullPointer`] for NULL; [`PhResult::InvalidArgument`] for a struct smaller than
/// this version's `T`.
///
/// # Safety
///
/// `ptr` is NULL or points to a `T` of any ABI version, readable for its first field and then for
/// as many bytes as that field says, unchanged for `'a`.
#[inline]
pub unsafe fn read_sized<'a, T: SizedStruct>(ptr: *const T) -> Result<&'a T, PhResult> {
    if ptr.is_null() {
        return Err(PhResult::NullPointer);
    }
    // SAFETY: not NULL, and readable for its first field (the caller's contract), which is a
    // `u32` at offset 0 (the contract of `SizedStruct`); read without making a reference to `T`.
    let size = unsafe { ptr.cast::<u32>().read() };
    if (size as usize) < std::mem::size_of::<T>() {
        return Err(PhResult::InvalidArgument);
    }
    // SAFETY: readable for `size` bytes, at least a whole `T`, and unchanged for `'a` (the
    // caller's contract); `T`'s fields are integers, raw pointers, views and function pointers
    // filled by the other side, which the ABI requires to be valid values of their types.
    Ok(unsafe { &*ptr })
}

/// Copies the struct at `ptr`, filled by the other side, if it is not NULL and its `struct_size`
/// is at least [`GrownStruct::MIN_SIZE`]: at most `struct_size` bytes are read, and the fields
/// beyond them (those of a newer minor than the other side's) are zero, NULL. Nothing but
/// `struct_size` is read before that check.
///
/// # Errors
///
/// [`PhResult::NullPointer`] for NULL; [`PhResult::InvalidArgument`] for a struct smaller than
/// `T::MIN_SIZE`.
///
/// # Safety
///
/// `ptr` is NULL or points to a `T` of any ABI version, readable for its first field and then for
/// as many bytes as that field says, whose fields are valid values of their types.
pub unsafe fn read_grown<T: GrownStruct>(ptr: *const T) -> Result<T, PhResult> {
    if ptr.is_null() {
        return Err(PhResult::NullPointer);
    }
    // SAFETY: as in `read_sized`.
    let size = unsafe { ptr.cast::<u32>().read() } as usize;
    if size < T::MIN_SIZE {
        return Err(PhResult::InvalidArgument);
    }
    let mut value = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: the source is readable for `size` bytes (the caller's contract), the destination
    // for `size_of::<T>()`; at most the smaller is copied; one is on this stack, so they do not
    // overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            ptr.cast::<u8>(),
            value.as_mut_ptr().cast::<u8>(),
            size.min(std::mem::size_of::<T>()),
        );
    }
    // SAFETY: all-zero bytes are a valid `T` (the contract of `GrownStruct`), and the bytes
    // copied over them are whole fields (`MIN_SIZE` ends at a field, and a larger size covers
    // whole fields of the other side's definition, which only adds fields at the end) holding
    // valid values (the caller's contract).
    Ok(unsafe { value.assume_init() })
}

/// How many bytes of a `T` to write at `out` for the other side, which set its `struct_size`
/// first: the smaller of that size and this version's, if `out` is not NULL and the size is at
/// least [`GrownStruct::MIN_SIZE`]. Nothing is written; pass the size to [`write_grown`].
///
/// # Errors
///
/// [`PhResult::NullPointer`] for NULL; [`PhResult::InvalidArgument`] for a size smaller than
/// `T::MIN_SIZE`.
///
/// # Safety
///
/// `out` is NULL or points to a `T` of any ABI version whose first field is readable.
pub unsafe fn sized_out<T: GrownStruct>(out: *mut T) -> Result<usize, PhResult> {
    if out.is_null() {
        return Err(PhResult::NullPointer);
    }
    // SAFETY: not NULL, and its first field, a `u32` (the contract of `SizedStruct`), is
    // readable (the caller's contract).
    let size = unsafe { out.cast::<u32>().read() } as usize;
    if size < T::MIN_SIZE {
        return Err(PhResult::InvalidArgument);
    }
    Ok(size.min(std::mem::size_of::<T>()))
}

/// Writes the first `size` bytes of `value` to `out`, with `struct_size` set to `size`: the
/// fields the other side's definition has (`size` from [`sized_out`]).
///
/// # Safety
///
/// `out` is writable for `size` bytes, and `size` is what [`sized_out`] returned for it.
pub unsafe fn write_grown<T: GrownStruct>(out: *mut T, value: T, size: usize) {
    let value = std::mem::ManuallyDrop::new(value);
    let size = size.min(std::mem::size_of::<T>());
    // SAFETY: the source is a whole `T`, whose first field is `struct_size: u32` (the contract of
    // `SizedStruct`), followed by `size - 4` of its bytes (`size` is at least `MIN_SIZE`, which
    // is at least 4); the destination is writable for `size` bytes (the caller's contract); one
    // is on this stack, so they do not overlap.
    unsafe {
        out.cast::<u32>().write(size as u32);
        std::ptr::copy_nonoverlapping(
            (&*value as *const T).cast::<u8>().add(4),
            out.cast::<u8>().add(4),
            size - 4,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{
        read_grown, sized_out, write_grown, GrownStruct, PhInterface, PhInterfaceDecl, PhLogLevel,
        PhResult, PhStr,
    };

    /// A declaration of ABI 1.3 or 1.4 ends before `layout`: whatever follows it is not read.
    #[test]
    fn a_declaration_of_an_older_minor_has_no_layout() {
        let mut decl = PhInterfaceDecl {
            struct_size: PhInterfaceDecl::MIN_SIZE as u32,
            minor: 2,
            major: 1,
            id: PhStr::new("test.old"),
            table: std::ptr::dangling(),
            table_size: 8,
            signature: PhStr::EMPTY,
            // What lies beyond the older struct: not the provider's.
            layout: std::ptr::dangling(),
        };
        // SAFETY: a whole declaration, readable.
        let read = unsafe { read_grown(&decl) }.unwrap();
        assert!(read.layout.is_null());
        assert_eq!((read.minor, read.major, read.table_size), (2, 1, 8));
        // SAFETY: as above.
        assert_eq!(unsafe { read.id.to_str() }, Ok("test.old"));

        decl.struct_size = std::mem::size_of::<PhInterfaceDecl>() as u32;
        // SAFETY: as above.
        let read = unsafe { read_grown(&decl) }.unwrap();
        assert_eq!(read.layout, decl.layout);

        decl.struct_size = PhInterfaceDecl::MIN_SIZE as u32 - 8;
        // SAFETY: as above.
        let small = unsafe { read_grown(&decl) };
        assert_eq!(small.err(), Some(PhResult::InvalidArgument));
        // SAFETY: NULL is checked first.
        let null = unsafe { read_grown::<PhInterfaceDecl>(std::ptr::null()) };
        assert_eq!(null.err(), Some(PhResult::NullPointer));
    }

    /// A reference of ABI 1.3 or 1.4 gets what it has room for, and its size says so.
    #[test]
    fn a_reference_of_an_older_minor_gets_what_it_has_room_for() {
        let reference = || PhInterface {
            struct_size: 0,
            minor: 3,
            reserved: 0,
            table: std::ptr::dangling(),
            table_size: 16,
            user_data: std::ptr::null_mut(),
            alive: std::ptr::dangling(),
            handle: 7,
            signature: PhStr::new("f();"),
            layout: std::ptr::dangling(),
        };
        let canary = 0x5a5a_usize as *const std::ffi::c_void;
        for (size, expected_layout) in [
            (PhInterface::MIN_SIZE, canary),
            (std::mem::size_of::<PhInterface>(), std::ptr::dangling()),
            (std::mem::size_of::<PhInterface>() + 8, std::ptr::dangling()),
        ] {
            let mut out = PhInterface {
                struct_size: size as u32,
                layout: canary,
                ..reference()
            };
            out.minor = 0;
            out.handle = 0;
            // SAFETY: a whole `PhInterface`, writable, its size set.
            let writable = unsafe { sized_out(&mut out) }.unwrap();
            assert_eq!(writable, size.min(std::mem::size_of::<PhInterface>()));
            // SAFETY: writable for `writable` bytes.
            unsafe { write_grown(&mut out, reference(), writable) };
            assert_eq!(out.struct_size as usize, writable);
            assert_eq!((out.minor, out.handle, out.table_size), (3, 7, 16));
            assert_eq!(out.layout, expected_layout, "size {size}");
        }
        let mut small = reference();
        small.struct_size = PhInterface::MIN_SIZE as u32 - 1;
        // SAFETY: as above.
        let refused = unsafe { sized_out(&mut small) };
        assert_eq!(refused, Err(PhResult::InvalidArgument));
        // SAFETY: NULL is checked first.
        let null = unsafe { sized_out::<PhInterface>(std::ptr::null_mut()) };
        assert_eq!(null, Err(PhResult::NullPointer));
    }

    #[test]
    fn log_level_numbers_are_the_log_crates() {
        let levels = [
            (PhLogLevel::Error, log::Level::Error),
            (PhLogLevel::Warn, log::Level::Warn),
            (PhLogLevel::Info, log::Level::Info),
            (PhLogLevel::Debug, log::Level::Debug),
            (PhLogLevel::Trace, log::Level::Trace),
        ];
        for (ours, theirs) in levels {
            assert_eq!(PhLogLevel::record_level(ours as u32), Some(theirs));
            assert_eq!(PhLogLevel::filter(ours as u32), theirs.to_level_filter());
        }
        assert_eq!(PhLogLevel::record_level(PhLogLevel::Off as u32), None);
        assert_eq!(PhLogLevel::record_level(6), None);
        assert_eq!(
            PhLogLevel::filter(PhLogLevel::Off as u32),
            log::LevelFilter::Off
        );
        assert_eq!(PhLogLevel::filter(99), log::LevelFilter::Trace);
    }
}
