//! Interfaces (ABI 1.3): the application provides tables to plugins and queries theirs.

use std::ffi::c_void;

use plugin_api::abi::{
    read_grown, sized_out, write_grown, PhDestroyCallback, PhHandle, PhInterface, PhInterfaceDecl,
    PhResult, PhResultCode, PhStr,
};

use crate::boundary::{boundary, code, shared, text, write_out, HOST_FAILED};
use crate::types::PhHost;

/// Provides an interface to the plugins, as a plugin does with the host service
/// `provide_interface` (docs/abi.md, section 17). Provide it before loading the plugins that
/// require it. `[thread-safe]`
///
/// - `decl`: the id, major and minor, the function table and its size, and the signature and
///   layout that Rust callers compare (may be empty and NULL; a declaration of ABI 1.3 or 1.4
///   has no layout); borrowed for the call. The table must stay valid and unchanged until
///   `destroy(user_data)`.
/// - `destroy`: called with `user_data` exactly once (may be NULL): after the interface ended
///   (`ph_host_unregister` of its handle, `ph_host_shutdown`, `ph_host_free`) and every plugin
///   released its reference; or before this function returns if it fails.
///
/// On success writes the provision's handle to `*out_handle` (if not NULL).
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` (`host` or `decl`);
/// `PH_RESULT_INVALID_ARGUMENT` (`decl->struct_size` smaller than in ABI 1.3, an id that breaks
/// the rules of names, a NULL table); `PH_RESULT_INVALID_UTF8`; `PH_RESULT_ALREADY_EXISTS` if
/// someone provides that id and major already; `PH_RESULT_SHUT_DOWN` after `ph_host_shutdown`.
///
/// # Safety
///
/// `host` must be NULL or a live host, not used by a `[main-thread]` function during the call.
/// `decl` must be NULL or point to a declaration readable for its `struct_size`; `out_handle`
/// must be NULL or writable. The table's functions and `destroy` must be safe to call with
/// `user_data` from any thread (the functions several at once) until `destroy` is called.
#[no_mangle]
pub unsafe extern "C" fn ph_host_provide_interface(
    host: *const PhHost,
    decl: *const PhInterfaceDecl,
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
        // SAFETY: NULL or readable for its `struct_size` (the caller's contract); one of ABI 1.3
        // or 1.4 has no `layout` (NULL).
        let decl = match unsafe { read_grown(decl) } {
            Ok(decl) => decl,
            Err(code) => return refuse(code),
        };
        // SAFETY: the declaration's views are valid for the call (the caller's contract).
        let (id, signature) = match unsafe { (text(decl.id), text(decl.signature)) } {
            (Ok(id), Ok(signature)) => (id, signature),
            (Err(code), _) | (_, Err(code)) => return refuse(code),
        };
        // SAFETY: the caller guarantees what `provide_raw` requires of the table, the user data
        // and `destroy`; from here on the host calls `destroy`, once, whatever happens.
        let provided = unsafe {
            host.host.provide_raw(
                id,
                decl.major,
                decl.minor,
                signature,
                decl.layout,
                decl.table,
                decl.table_size,
                user_data,
                destroy,
            )
        };
        match provided {
            Ok(handle) => {
                // SAFETY: the caller guarantees a non-null `out_handle` is writable.
                unsafe { write_out(out_handle, handle) };
                PhResult::Ok.code()
            }
            Err(error) => error.code().code(),
        }
    })
}

/// Queries an interface that a plugin (or the application) provides, as a plugin does with the
/// host service `query_interface`: writes a reference to `*out` (set `out->struct_size` first;
/// the host writes as much as that size and its own definition both have, and sets it to that).
/// Before each call through `out->table`, read `*out->alive` with an acquire load and do not
/// call when it is 0 (the provider ended). Release the reference with
/// `ph_host_release_interface`. `[thread-safe]`
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` (`host`, `out`, or `id` NULL with a length);
/// `PH_RESULT_INVALID_ARGUMENT` (`out->struct_size` smaller than in ABI 1.3);
/// `PH_RESULT_INVALID_UTF8`; `PH_RESULT_NOT_FOUND` if nobody provides that id and major;
/// `PH_RESULT_VERSION_MISMATCH` if the table provided is smaller than `min_table_size`. On
/// failure nothing is written.
///
/// # Safety
///
/// `host` must be NULL or a live host, not used by a `[main-thread]` function during the call.
/// `id` must view readable bytes (or be NULL with length 0); `out` must be NULL or a writable
/// `PhInterface` whose `struct_size` is set.
#[no_mangle]
pub unsafe extern "C" fn ph_host_query_interface(
    host: *const PhHost,
    id: PhStr,
    major: u16,
    min_table_size: u32,
    out: *mut PhInterface,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `shared`'s.
            let host = unsafe { shared(host) }?;
            // SAFETY: NULL or a `PhInterface` the caller may write whose first field, a `u32`, it
            // set (the caller's contract).
            let size = unsafe { sized_out(out) }?;
            // SAFETY: the caller passes a view valid for the call.
            let id = unsafe { text(id) }?;
            let reference = host
                .host
                .query_raw(id, major, min_table_size)
                .map_err(|e| e.code())?;
            // SAFETY: writable for `size` bytes, what `sized_out` returned (the caller's
            // contract).
            unsafe { write_grown(out, reference, size) };
            Ok(())
        })())
    })
}

/// Releases a reference of `ph_host_query_interface`: its `alive` word reads 0 from now on; do
/// not call through it any more (wait for the calls under way on other threads first).
/// `[thread-safe]`
///
/// Returns `PH_RESULT_OK`; `PH_RESULT_NULL_POINTER` if `host` is NULL;
/// `PH_RESULT_UNKNOWN_HANDLE` for a handle that is not one of the application's references.
///
/// # Safety
///
/// `host` must be NULL or a live host, not used by a `[main-thread]` function during the call.
#[no_mangle]
pub unsafe extern "C" fn ph_host_release_interface(
    host: *const PhHost,
    handle: PhHandle,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        code((|| {
            // SAFETY: the caller's contract is `shared`'s.
            let host = unsafe { shared(host) }?;
            host.host.release_interface(handle).map_err(|e| e.code())
        })())
    })
}
