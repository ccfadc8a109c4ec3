//! Enumerations, EnumWindows style: the loaded plugins, and a plugin's commands.

use std::ffi::c_void;

use plugin_api::abi::{PhCommandInfo, PhPluginInfo, PhResult, PhResultCode, PhStr};

use crate::boundary::{boundary, code, shared, text, HOST_FAILED};
use crate::types::{CommandInfoCallback, PhHost, PluginInfoCallback, TRUE};

/// Calls `callback(user_data, &info)` once per active plugin (its `init` succeeded and it is
/// neither shut down nor faulted), in load order, until the callback returns false.
/// `[thread-safe]`
///
/// `info` (`PhPluginInfo`: name, version, description, the library's path, the ABI version the
/// plugin was built for) and its strings are borrowed for each call. The callback runs on this
/// thread before this returns; it returns true for the next plugin, false to stop (any byte other
/// than 1 stops too); it may call `[thread-safe]` functions of the host.
///
/// Returns `PH_RESULT_OK` (also when the callback stopped early); `PH_RESULT_NULL_POINTER` if
/// `host` or `callback` is NULL.
///
/// # Safety
///
/// `host` must be NULL or a live host, not used by a `[main-thread]` function during the call.
/// `callback` must be safe to call with `user_data` on this thread.
#[no_mangle]
pub unsafe extern "C" fn ph_host_enumerate_plugins(
    host: *const PhHost,
    callback: Option<PluginInfoCallback>,
    user_data: *mut c_void,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `shared`'s.
            let host = unsafe { shared(host) }?;
            let callback = callback.ok_or(PhResult::NullPointer)?;
            host.host.enumerate_plugins(|plugin| {
                let info = PhPluginInfo {
                    struct_size: std::mem::size_of::<PhPluginInfo>() as u32,
                    abi_major: plugin.abi_version.0,
                    abi_minor: plugin.abi_version.1,
                    name: PhStr::new(plugin.name),
                    version: PhStr::new(plugin.version),
                    description: PhStr::new(plugin.description),
                    path: PhStr::new(plugin.path),
                };
                // SAFETY: the caller guarantees `callback` may be called with `user_data` on
                // this thread; `info` and the strings it views outlive the call.
                unsafe { (callback.0)(user_data, &info) == TRUE }
            });
            Ok(())
        })())
    })
}

/// Calls `callback(user_data, &info)` once per command of the active plugin named `plugin`, in
/// registration order, until the callback returns false. `[thread-safe]`
///
/// `info` (`PhCommandInfo`: name, description, usage, as the host keeps them) and its strings are
/// borrowed for each call. The callback runs on this thread before this returns; it returns true
/// for the next command, false to stop (any byte other than 1 stops too); it may call
/// `[thread-safe]` functions of the host.
///
/// Returns `PH_RESULT_OK` (also when the callback stopped early); `PH_RESULT_NULL_POINTER` (`host`,
/// `callback`, or `plugin` NULL with a length); `PH_RESULT_INVALID_UTF8`; `PH_RESULT_NOT_FOUND` if
/// no active plugin has that name; `PH_RESULT_LIMIT_EXCEEDED` for enumerations nested more than
/// 16 deep; or the code of an ABI 1.0 or 1.1 plugin's own enumeration if it failed.
///
/// # Safety
///
/// `host` must be NULL or a live host, not used by a `[main-thread]` function during the call.
/// `plugin` must view readable bytes (or be NULL with length 0). `callback` must be safe to call
/// with `user_data` on this thread.
#[no_mangle]
pub unsafe extern "C" fn ph_host_enumerate_commands(
    host: *const PhHost,
    plugin: PhStr,
    callback: Option<CommandInfoCallback>,
    user_data: *mut c_void,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `shared`'s.
            let host = unsafe { shared(host) }?;
            let callback = callback.ok_or(PhResult::NullPointer)?;
            // SAFETY: the caller passes a view valid for the call.
            let plugin = unsafe { text(plugin) }?;
            host.host
                .enumerate_commands(plugin, |command| {
                    let info = PhCommandInfo {
                        struct_size: std::mem::size_of::<PhCommandInfo>() as u32,
                        name: PhStr::new(command.name),
                        description: PhStr::new(command.description),
                        usage: PhStr::new(command.usage),
                    };
                    // SAFETY: the caller guarantees `callback` may be called with `user_data` on
                    // this thread; `info` and the strings it views outlive the call.
                    unsafe { (callback.0)(user_data, &info) == TRUE }
                })
                .map_err(|error| error.code())
        })())
    })
}
