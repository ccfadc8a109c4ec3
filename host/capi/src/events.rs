//! Events: the application publishes, subscribes and unregisters.

use std::ffi::c_void;

use plugin_api::abi::{
    PhBytes, PhDestroyCallback, PhEventCallback, PhHandle, PhResult, PhResultCode, PhStr,
};

use crate::boundary::{boundary, bytes, code, shared, text, write_out, HOST_FAILED};
use crate::types::PhHost;

/// Publishes an event from the application: every subscriber of `topic` (plugins' and the
/// application's), then every subscriber of `*`, each in subscription order, runs on this thread
/// before this returns (docs/abi.md, section 10). `[thread-safe]`
///
/// - `topic`: 1 to 128 bytes of ASCII letters, digits, `-`, `_`, `.`; borrowed for the call.
/// - `payload`: any bytes, borrowed for the call.
///
/// Returns `PH_RESULT_OK`, also when handlers failed (their failures are logged, and a plugin's
/// handler that panicked faults its plugin); `PH_RESULT_NULL_POINTER` (`host`, or a view NULL with
/// a length: `topic` first, then `payload`); `PH_RESULT_INVALID_UTF8`;
/// `PH_RESULT_INVALID_ARGUMENT` for a topic that breaks the rule (`*` and the empty topic
/// included); `PH_RESULT_LIMIT_EXCEEDED` when publishes nest more than 16 deep on this thread
/// (nobody receives the event).
///
/// # Safety
///
/// `host` must be NULL or a live host, not used by a `[main-thread]` function during the call.
/// `topic` and `payload` must view readable bytes (or be NULL with length 0).
#[no_mangle]
pub unsafe extern "C" fn ph_host_publish(
    host: *const PhHost,
    topic: PhStr,
    payload: PhBytes,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `shared`'s.
            let host = unsafe { shared(host) }?;
            // Both views for NULL first, then UTF-8, as the host service `publish` checks.
            // SAFETY: the caller passes views valid for the call.
            unsafe { bytes(PhBytes::from(topic)) }?;
            // SAFETY: as above.
            let payload = unsafe { bytes(payload) }?;
            // SAFETY: as above.
            let topic = unsafe { text(topic) }?;
            host.host.publish(topic, payload).map_err(|e| e.code())
        })())
    })
}

/// Subscribes `callback` to the events of `topic`, or of every topic with `*`. `[thread-safe]`
///
/// `callback(user_data, topic, payload)` runs on the publisher's thread (a plugin's own thread,
/// possibly several at once), for the events that plugins and the application publish, after the
/// plugins' subscribers of the same topic that subscribed earlier. It returns a
/// `PhResultCode`: anything but `PH_RESULT_OK` (an unknown number included) is logged, and the
/// subscription stays; the application is never faulted. It may call `[thread-safe]` functions
/// of the host, such as `ph_host_publish` (nested at most 16 deep) or `ph_host_unregister` (also
/// of itself).
///
/// - `topic`: as for `ph_host_publish`, or `*`; borrowed for the call.
/// - `destroy`: called with `user_data` exactly once (may be NULL): after the subscription ended
///   (`ph_host_unregister`, `ph_host_shutdown`, `ph_host_free`) and no dispatch uses it any more,
///   on whichever thread releases it last; or before this function returns if it fails.
///
/// On success writes the subscription's handle to `*out_handle` (if not NULL).
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` (`host`, `callback`, or `topic` NULL with a
/// length); `PH_RESULT_INVALID_UTF8`; `PH_RESULT_INVALID_ARGUMENT` for a topic that is neither a
/// topic nor `*`; `PH_RESULT_LIMIT_EXCEEDED` beyond 1024 subscriptions of the application;
/// `PH_RESULT_SHUT_DOWN` after `ph_host_shutdown`.
///
/// # Safety
///
/// `host` must be NULL or a live host, not used by a `[main-thread]` function during the call.
/// `topic` must view readable bytes (or be NULL with length 0); `out_handle` must be NULL or
/// writable. `callback` and `destroy` must be safe to call with `user_data` from any thread,
/// `callback` from several at once, until `destroy` is called.
#[no_mangle]
pub unsafe extern "C" fn ph_host_subscribe(
    host: *const PhHost,
    topic: PhStr,
    callback: Option<PhEventCallback>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        let refuse = |code: PhResult| {
            if let Some(destroy) = destroy {
                // SAFETY: the caller gave `destroy` for `user_data`; the host never got them, so
                // this is its one call.
                unsafe { (destroy.0)(user_data) };
            }
            code.code()
        };
        // SAFETY: the caller's contract is `shared`'s.
        let host = match unsafe { shared(host) } {
            Ok(host) => host,
            Err(code) => return refuse(code),
        };
        let Some(callback) = callback else {
            return refuse(PhResult::NullPointer);
        };
        // SAFETY: the caller passes a view valid for the call.
        let topic = match unsafe { text(topic) } {
            Ok(topic) => topic,
            Err(code) => return refuse(code),
        };
        // SAFETY: the caller guarantees what `subscribe_raw` requires of the callback, the user
        // data and `destroy`; from here on the host calls `destroy`, once, whatever happens.
        match unsafe { host.host.subscribe_raw(topic, callback, user_data, destroy) } {
            Ok(handle) => {
                // SAFETY: the caller guarantees a non-null `out_handle` is writable.
                unsafe { write_out(out_handle, handle) };
                PhResult::Ok.code()
            }
            Err(error) => error.code().code(),
        }
    })
}

/// Ends a subscription of the application made with `ph_host_subscribe`. `[thread-safe]`
///
/// No publish that starts afterwards calls it, a dispatch under way skips it if it has not
/// reached it yet, and a call of it already running finishes; then its `destroy` runs. A callback
/// may unregister itself.
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` if `host` is NULL;
/// `PH_RESULT_UNKNOWN_HANDLE` for a handle that is not a current subscription of this host's
/// application (0, already unregistered, a plugin's).
///
/// # Safety
///
/// `host` must be NULL or a live host, not used by a `[main-thread]` function during the call.
#[no_mangle]
pub unsafe extern "C" fn ph_host_unregister(host: *const PhHost, handle: PhHandle) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `shared`'s.
            let host = unsafe { shared(host) }?;
            host.host.unregister(handle).map_err(|e| e.code())
        })())
    })
}
