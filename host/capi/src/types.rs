//! The types of the C API: the opaque host, C's `bool` as this library reads it, and the
//! callbacks that only the host API has (the shared ones are the plugin ABI's).

use std::ffi::c_void;
use std::sync::Arc;

use plugin_api::abi::{PhBytes, PhCommandInfo, PhPluginInfo, PhResultCode, PhStr};

use crate::log_sink::LogSink;

/// A plugin host, opaque: C code only holds pointers to it.
///
/// Made by `ph_host_new` or `ph_host_new_with_log`, freed by `ph_host_free`; owned by the caller
/// in between. See the thread tags above for who may use it when.
pub struct PhHost {
    pub(crate) host: plughost::PluginHost,
    /// The log callback, if the host was made with one: closed (its `destroy` called) when the
    /// host is freed.
    pub(crate) log: Option<Arc<LogSink>>,
}

/// C's `bool` (`_Bool`, one byte), as this library reads it: exactly 1 is true, 0 is false, and
/// any other byte (garbage from a callback that failed) is not a valid `bool`: as a callback's
/// result it counts as false, as an argument it is `PH_RESULT_INVALID_ARGUMENT`. The header
/// declares it as `bool`.
pub type CBool = u8;

/// C's `true`.
pub(crate) const TRUE: CBool = 1;

/// C's `false`.
pub(crate) const FALSE: CBool = 0;

/// Receives a piece of a command's output during `ph_host_run`: `[thread-safe]`, called on the
/// thread that called `ph_host_run`, before it returns, once per piece the command writes (never
/// with an empty piece), in order.
///
/// - `user_data`: the pointer given to `ph_host_run`.
/// - `bytes`: the piece, as the command wrote it (any bytes; not NUL-terminated), borrowed for
///   this call.
///
/// Returns true to take the next piece. Anything else (false, or a byte other than 1) stops the
/// output: the command's next writes fail with `PH_RESULT_IO`, and `ph_host_run` returns
/// `PH_RESULT_IO`.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct PhHostOutputCallback(
    pub unsafe extern "C" fn(user_data: *mut c_void, bytes: PhBytes) -> CBool,
);

/// Receives the message of a failed call (`ph_host_run`, `ph_host_set_config`): called at most
/// once, on the calling thread, just before the call returns a code other than `PH_RESULT_OK`
/// (not for `PH_RESULT_HOST_FAILED`).
///
/// - `user_data`: the pointer given with the callback.
/// - `code`: the code the function returns, or for a command that failed, the command's own code
///   (see `ph_host_run`).
/// - `message`: one line in English, UTF-8, borrowed for this call, such as
///   `wordfreq: /no/such/file: No such file or directory (os error 2)`. It is text from the
///   plugin: escape control characters before showing it in a terminal.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct PhHostErrorCallback(
    pub unsafe extern "C" fn(user_data: *mut c_void, code: PhResultCode, message: PhStr),
);

/// Receives a library that was refused, or a folder that could not be read, during
/// `ph_host_load_dir` and `ph_host_load_file`: called on the calling thread, before the call
/// returns, once per problem, in the order the files were tried.
///
/// - `user_data`: the pointer given with the callback.
/// - `path`: the file (or the folder) as given, as UTF-8 (bytes that are not UTF-8 are shown as
///   U+FFFD), borrowed for this call.
/// - `reason`: one line in English, borrowed for this call, such as `init failed: invalid
///   argument`. Together they make the line that `plughost list` prints: `PATH: REASON`.
///
/// It must not call `[main-thread]` functions of the host (the load is still under way).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct PhHostRefusedCallback(
    pub unsafe extern "C" fn(user_data: *mut c_void, path: PhStr, reason: PhStr),
);

/// Receives a plugin's log record (see `ph_host_new_with_log`): `[thread-safe]`, called on the
/// plugin's thread, inside the plugin's call to the host service `log`, possibly on several
/// threads at once.
///
/// - `user_data`: the pointer given to `ph_host_new_with_log`.
/// - `level`: `PH_LOG_LEVEL_ERROR` (1) to `PH_LOG_LEVEL_TRACE` (5), at most the host's
///   `max_level`.
/// - `plugin`: the plugin's name.
/// - `target`: the record's target: the plugin's name, or `NAME::more` (docs/abi.md, section 13).
/// - `message`: the record's text.
///
/// The strings are UTF-8 and borrowed for this call; they are the plugin's text: escape control
/// characters before showing them in a terminal. It must not call the host's `[main-thread]`
/// functions, and should not block for long (the plugin waits).
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct PhHostLogCallback(
    pub  unsafe extern "C" fn(
        user_data: *mut c_void,
        level: u32,
        plugin: PhStr,
        target: PhStr,
        message: PhStr,
    ),
);

/// The plugin ABI's `PhPluginInfoCallback`, as this library calls it: the same C type
/// (`bool (*)(void *, const PhPluginInfo *)`), with its `bool` read as a byte (see [`CBool`]).
/// The header names the ABI's type.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct PluginInfoCallback(
    pub unsafe extern "C" fn(user_data: *mut c_void, info: *const PhPluginInfo) -> CBool,
);

/// The plugin ABI's `PhCommandInfoCallback`, as this library calls it: the same C type
/// (`bool (*)(void *, const PhCommandInfo *)`), with its `bool` read as a byte (see [`CBool`]).
/// The header names the ABI's type.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct CommandInfoCallback(
    pub unsafe extern "C" fn(user_data: *mut c_void, info: *const PhCommandInfo) -> CBool,
);
