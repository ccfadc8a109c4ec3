//! Making, configuring, loading, shutting down and freeing a host: the `[main-thread]`
//! functions; and `ph_host_result_message`.

use std::ffi::c_void;
use std::path::Path;
use std::sync::Arc;

use plughost::{Config, LoadError, PluginHost};
use plugin_api::abi::{PhBytes, PhDestroyCallback, PhLogLevel, PhResult, PhResultCode, PhStr};

use crate::boundary::{boundary, code, exclusive, flag, path, text, write_out, HOST_FAILED};
use crate::log_sink::LogSink;
use crate::types::{CBool, PhHost, PhHostErrorCallback, PhHostLogCallback, PhHostRefusedCallback};

/// Makes a host with no plugins. `[main-thread]`
///
/// Plugins' log records are dropped: plugins see the level "off" and do not even format them
/// (`ph_host_new_with_log` receives them).
///
/// On success writes the new host to `*out_host`; the caller owns it and frees it with
/// `ph_host_free`.
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` if `out_host` is NULL.
///
/// # Safety
///
/// `out_host` must be NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn ph_host_new(out_host: *mut *mut PhHost) -> PhResultCode {
    boundary(HOST_FAILED, || {
        if out_host.is_null() {
            return PhResult::NullPointer.code();
        }
        let host = PhHost {
            host: PluginHost::new(),
            log: None,
        };
        // SAFETY: `out_host` is not NULL, and the caller guarantees it is writable.
        unsafe { write_out(out_host, Box::into_raw(Box::new(host))) };
        PhResult::Ok.code()
    })
}

/// Makes a host with no plugins whose plugins' log records at `max_level` or more severe go to
/// `log`. `[main-thread]`
///
/// - `max_level`: the most verbose level delivered, `PH_LOG_LEVEL_OFF` (0) to
///   `PH_LOG_LEVEL_TRACE` (5). Plugins read it through the host service `log_max_level` and skip
///   the records above it on their side, so a low level costs nothing.
/// - `log`: called for each record, `[thread-safe]` (see `PhHostLogCallback`).
/// - `user_data`: passed to `log` and `destroy`.
/// - `destroy`: called with `user_data` exactly once: when `ph_host_free` has shut the plugins
///   down (`log` is never called afterwards), or before this function returns if it fails. May
///   be NULL.
///
/// On success writes the new host to `*out_host`; the caller owns it and frees it with
/// `ph_host_free`.
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` if `log` or `out_host` is NULL;
/// `PH_RESULT_INVALID_ARGUMENT` if `max_level` is above 5.
///
/// # Safety
///
/// `out_host` must be NULL or valid for writing a pointer. `log` and `destroy` must be safe to
/// call with `user_data` from any thread, `log` from several at once, until `destroy` is called.
#[no_mangle]
pub unsafe extern "C" fn ph_host_new_with_log(
    max_level: u32,
    log: Option<PhHostLogCallback>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_host: *mut *mut PhHost,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        let checked = match (log, max_level, out_host.is_null()) {
            (None, _, _) => Err(PhResult::NullPointer),
            (_, level, _) if level > PhLogLevel::Trace as u32 => Err(PhResult::InvalidArgument),
            (_, _, true) => Err(PhResult::NullPointer),
            (Some(log), level, false) => Ok((log, PhLogLevel::filter(level))),
        };
        let (log, level) = match checked {
            Ok(checked) => checked,
            Err(code) => {
                if let Some(destroy) = destroy {
                    // SAFETY: the caller gave `destroy` for `user_data`; this is its one call.
                    unsafe { (destroy.0)(user_data) };
                }
                return code.code();
            }
        };
        let sink = Arc::new(LogSink::new(log, user_data, destroy, level));
        let host = PhHost {
            host: PluginHost::with_observer(Arc::clone(&sink) as Arc<dyn plughost::Observer>),
            log: Some(sink),
        };
        // SAFETY: `out_host` is not NULL (checked), and the caller guarantees it is writable.
        unsafe { write_out(out_host, Box::into_raw(Box::new(host))) };
        PhResult::Ok.code()
    })
}

/// Frees a host: shuts its plugins down (as `ph_host_shutdown`), ends its subscriptions (their
/// `destroy` runs), calls the log callback's `destroy`, and frees the host. `[main-thread]`
///
/// `host` may be NULL (nothing happens). Plugin libraries stay loaded (docs/abi.md, section 6).
///
/// # Safety
///
/// `host` must be NULL or a host from `ph_host_new` or `ph_host_new_with_log` that was not freed
/// yet; no other call on it may be under way on any thread or start later (the pointer is
/// invalid when this returns); it must not be called from inside a callback of this library.
#[no_mangle]
pub unsafe extern "C" fn ph_host_free(host: *mut PhHost) {
    boundary((), || {
        if host.is_null() {
            return;
        }
        // SAFETY: the caller gives us back the box `ph_host_new*` made, which nothing else uses
        // any more.
        let PhHost { host, log } = *unsafe { Box::from_raw(host) };
        drop(host);
        if let Some(log) = log {
            log.close();
        }
    })
}

/// Shuts every plugin down, in reverse load order, and ends the host's subscriptions: the
/// plugins' `shutdown` functions run, then each registration's `destroy`. `[main-thread]`
///
/// Idempotent. Afterwards the host has no commands (`ph_host_run` returns
/// `PH_RESULT_NOT_FOUND`), no plugins to enumerate, and `ph_host_subscribe` returns
/// `PH_RESULT_SHUT_DOWN`; the host must still be freed with `ph_host_free`.
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` if `host` is NULL.
///
/// # Safety
///
/// `host` must be NULL or a live host (see the thread tag: no other call on it may be under way).
#[no_mangle]
pub unsafe extern "C" fn ph_host_shutdown(host: *mut PhHost) -> PhResultCode {
    boundary(HOST_FAILED, || {
        // SAFETY: the caller's contract is `exclusive`'s.
        code(unsafe { exclusive(host) }.map(|host| host.host.shutdown()))
    })
}

/// Sets the plugins' configuration, from TOML text in the format of `plughost --config`: one
/// `[plugins.NAME]` table per plugin, and the key `allow_insecure` (README.md,
/// "Configuration"). `[main-thread]`
///
/// Plugins loaded from now on read their table through the host service `config_get`; plugins
/// already loaded keep what they had. The key `allow_insecure` is not applied: its value is
/// written to `*out_allow_insecure` (if not NULL) so that the caller decides, with
/// `ph_host_set_allow_insecure` (`plughost` applies it as it does `--allow-insecure`).
///
/// - `toml`: the text, borrowed for the call.
/// - `error`, `user_data`: on failure, `error` (may be NULL) receives the code and one line
///   naming the problem and its line and column.
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` (`host`, or `toml` NULL with a length);
/// `PH_RESULT_INVALID_UTF8`; `PH_RESULT_INVALID_ARGUMENT` for text that is not a valid
/// configuration (then the host's configuration is unchanged).
///
/// # Safety
///
/// `host` must be NULL or a live host (no other call on it under way). `toml` must view readable
/// bytes (or be NULL with length 0). `out_allow_insecure` must be NULL or writable. `error` must
/// be safe to call with `user_data` on this thread.
#[no_mangle]
pub unsafe extern "C" fn ph_host_set_config(
    host: *mut PhHost,
    toml: PhStr,
    error: Option<PhHostErrorCallback>,
    user_data: *mut c_void,
    out_allow_insecure: *mut CBool,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        let result = (|| {
            // SAFETY: the caller's contract is `exclusive`'s.
            let host = unsafe { exclusive(host) }.map_err(|c| (c, "the host is NULL".into()))?;
            // SAFETY: the caller passes a view valid for the call.
            let toml = unsafe { text(toml) }
                .map_err(|c| (c, format!("the configuration text: {}", c.message())))?;
            let config =
                Config::from_toml(toml).map_err(|e| (PhResult::InvalidArgument, e.to_string()))?;
            let allow_insecure = config.allow_insecure();
            host.host.set_config(config);
            // SAFETY: the caller guarantees a non-null `out_allow_insecure` is writable.
            unsafe { write_out(out_allow_insecure, CBool::from(allow_insecure)) };
            Ok(())
        })();
        match result {
            Ok(()) => PhResult::Ok.code(),
            Err((code, message)) => {
                if let Some(error) = error {
                    // SAFETY: the caller gave `error` for `user_data`, to be called on this
                    // thread; the message outlives the call.
                    unsafe { (error.0)(user_data, code.code(), PhStr::new(&message)) };
                }
                code.code()
            }
        }
    })
}

/// Whether libraries that fail the host's trust rule load anyway, from now on. Default: false.
/// `[main-thread]`
///
/// The rule (README.md, "Bad plugins"): a library file, or its folder, that is writable by group
/// or others, or owned by a user who is neither the one running the host nor root, is refused.
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` if `host` is NULL;
/// `PH_RESULT_INVALID_ARGUMENT` if `allow` is neither 0 nor 1.
///
/// # Safety
///
/// `host` must be NULL or a live host (no other call on it under way).
#[no_mangle]
pub unsafe extern "C" fn ph_host_set_allow_insecure(
    host: *mut PhHost,
    allow: CBool,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `exclusive`'s.
            let host = unsafe { exclusive(host) }?;
            host.host.set_allow_insecure(flag(allow)?);
            Ok(())
        })())
    })
}

/// Runs the plugin named `name` in a child process of its own, if it is loaded from now on; the
/// name `all` runs every plugin so. `[main-thread]`
///
/// The plugin is served as any other, and a crash, an `exit`, a signal or a call longer than the
/// call timeout (`ph_host_set_call_timeout`) faults that plugin only: this application goes on.
/// The child is the `plughost` program (`ph_host_set_child_program`). README.md, "Isolation: a
/// plugin in a child process", says what crosses and what it costs. Linux only: elsewhere the
/// plugin is refused when it loads.
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` if `host` is NULL or `name` has a NULL
/// pointer with a length; `PH_RESULT_INVALID_UTF8` if `name` is not UTF-8.
///
/// # Safety
///
/// `host` must be NULL or a live host (no other call on it under way); `name` must be a valid
/// view for the call.
#[no_mangle]
pub unsafe extern "C" fn ph_host_isolate(host: *mut PhHost, name: PhStr) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `exclusive`'s.
            let host = unsafe { exclusive(host) }?;
            // SAFETY: the caller passes a view valid for the call.
            match unsafe { text(name) }? {
                "all" => host.host.isolate_all(true),
                name => host.host.isolate(name),
            }
            Ok(())
        })())
    })
}

/// How long, in milliseconds, one call into an isolated plugin (its `init`, a command, an event
/// delivery, its `shutdown`) may take before the plugin is faulted and its child process killed;
/// 0 for no limit. Default: 60000. `[main-thread]`
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` if `host` is NULL.
///
/// # Safety
///
/// `host` must be NULL or a live host (no other call on it under way).
#[no_mangle]
pub unsafe extern "C" fn ph_host_set_call_timeout(
    host: *mut PhHost,
    milliseconds: u64,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `exclusive`'s.
            let host = unsafe { exclusive(host) }?;
            host.host.set_call_timeout(
                (milliseconds > 0).then(|| std::time::Duration::from_millis(milliseconds)),
            );
            Ok(())
        })())
    })
}

/// The program that runs isolated plugins: the `plughost` binary, `path` (any bytes on Unix).
/// Default: `plughost` in the folder of this application's program or the folder above it.
/// `[main-thread]`
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` if `host` is NULL or `path` has a NULL
/// pointer with a length.
///
/// # Safety
///
/// `host` must be NULL or a live host (no other call on it under way); `path` must be a valid
/// view for the call.
#[no_mangle]
pub unsafe extern "C" fn ph_host_set_child_program(
    host: *mut PhHost,
    program: PhBytes,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `exclusive`'s.
            let host = unsafe { exclusive(host) }?;
            // SAFETY: the caller passes a view valid for the call.
            let program = unsafe { path(program) }?;
            host.host.set_child_program(program.to_owned());
            Ok(())
        })())
    })
}

/// Calls the refusal callback, if there is one, with a path and a reason.
///
/// # Safety
///
/// `refused` must be safe to call with `user_data` on this thread.
unsafe fn report(
    refused: Option<PhHostRefusedCallback>,
    user_data: *mut c_void,
    path: &Path,
    reason: &str,
) {
    if let Some(refused) = refused {
        let path = path.to_string_lossy();
        // SAFETY: our caller's contract; the views borrow strings that outlive the call.
        unsafe { (refused.0)(user_data, PhStr::new(&path), PhStr::new(reason)) };
    }
}

/// Loads every plugin library in the folder `dir`: the files with this platform's
/// shared-library extension, in bytewise file-name order, except this library's own file
/// (`libplughost_host.so`). `[main-thread]`
///
/// Each library is checked (trust rule, ABI version, layout, names: README.md, "Bad plugins";
/// docs/abi.md, section 4) and its plugin's `init` runs on this thread. A library that fails is
/// refused and skipped, the others load: `refused` (may be NULL) receives each refused file and
/// the reason, in order, before this returns.
///
/// - `dir`: the folder, as the OS's bytes (see "Strings, bytes and paths"), borrowed for the call.
/// - `user_data`: passed to `refused`.
///
/// Returns `PH_RESULT_OK` when the folder was read, even if libraries were refused;
/// `PH_RESULT_NULL_POINTER` (`host`, or `dir` NULL with a length); `PH_RESULT_INVALID_UTF8`
/// (Windows only); `PH_RESULT_NOT_FOUND` if the folder does not exist and `PH_RESULT_ERROR` if it
/// cannot be read otherwise (then `refused` receives the folder and the reason).
///
/// # Safety
///
/// `host` must be NULL or a live host (no other call on it under way). `dir` must view readable
/// bytes (or be NULL with length 0). `refused` must be safe to call with `user_data` on this
/// thread. A plugin's `init` runs native code in this process: load only trusted libraries.
#[no_mangle]
pub unsafe extern "C" fn ph_host_load_dir(
    host: *mut PhHost,
    dir: PhBytes,
    refused: Option<PhHostRefusedCallback>,
    user_data: *mut c_void,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        // SAFETY: the caller's contract is `exclusive`'s.
        let host = match unsafe { exclusive(host) } {
            Ok(host) => host,
            Err(code) => return code.code(),
        };
        // SAFETY: the caller passes a view valid for the call.
        let dir = match unsafe { path(dir) } {
            Ok(dir) => dir,
            Err(code) => return code.code(),
        };
        let before = host.host.refused().len();
        let loaded = host.host.load_dir(dir);
        let refusals: Vec<LoadError> = host.host.refused()[before..].to_vec();
        // The host is no longer borrowed: the callback may make `[thread-safe]` calls.
        for refusal in &refusals {
            // SAFETY: the caller's contract of `refused`.
            unsafe { report(refused, user_data, &refusal.path, &refusal.kind.to_string()) };
        }
        match loaded {
            Ok(()) => PhResult::Ok.code(),
            Err(error) => {
                let reason = format!("cannot read the plugins folder: {}", error.source);
                // SAFETY: the caller's contract of `refused`.
                unsafe { report(refused, user_data, dir, &reason) };
                if error.source.kind() == std::io::ErrorKind::NotFound {
                    PhResult::NotFound.code()
                } else {
                    PhResult::Error.code()
                }
            }
        }
    })
}

/// Loads one plugin library, with the checks of `ph_host_load_dir`, and runs its plugin's
/// `init` on this thread. `[main-thread]`
///
/// - `file`: the library, as the OS's bytes, borrowed for the call. The trust rule applies to it
///   and to its folder.
/// - `refused`, `user_data`: if the library is refused, `refused` (may be NULL) receives the file
///   and the reason before this returns.
///
/// Returns `PH_RESULT_OK` when the plugin loaded; `PH_RESULT_NULL_POINTER` (`host`, or `file`
/// NULL with a length); `PH_RESULT_INVALID_UTF8` (Windows only); `PH_RESULT_ERROR` when the
/// library was refused (the reason went to `refused`).
///
/// # Safety
///
/// As for `ph_host_load_dir`.
#[no_mangle]
pub unsafe extern "C" fn ph_host_load_file(
    host: *mut PhHost,
    file: PhBytes,
    refused: Option<PhHostRefusedCallback>,
    user_data: *mut c_void,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        // SAFETY: the caller's contract is `exclusive`'s.
        let host = match unsafe { exclusive(host) } {
            Ok(host) => host,
            Err(code) => return code.code(),
        };
        // SAFETY: the caller passes a view valid for the call.
        let file = match unsafe { path(file) } {
            Ok(file) => file,
            Err(code) => return code.code(),
        };
        match host.host.load(file) {
            Ok(_) => PhResult::Ok.code(),
            Err(refusal) => {
                // SAFETY: the caller's contract of `refused`.
                unsafe { report(refused, user_data, &refusal.path, &refusal.kind.to_string()) };
                PhResult::Error.code()
            }
        }
    })
}

/// A short English description of a result code, such as `invalid UTF-8` for
/// `PH_RESULT_INVALID_UTF8`; `unknown result code` for a number that is no code. `[thread-safe]`
///
/// The text is static: valid for the rest of the process, never to be freed.
#[no_mangle]
pub extern "C" fn ph_host_result_message(code: PhResultCode) -> PhStr {
    boundary(PhStr::EMPTY, || {
        let message = PhResult::ALL
            .get(code as usize)
            .map_or("unknown result code", |c| c.message());
        PhStr::new(message)
    })
}
