//! The C API's one FFI boundary ([`boundary`], its only `catch_unwind`) and the readers of its
//! arguments: the host pointer, views, paths and `bool`s, each turning a broken rule into its
//! result code.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use plugin_api::abi::{PhBytes, PhResult, PhResultCode, PhStr};

use crate::types::{CBool, PhHost, FALSE, TRUE};

/// The code every function returns when the host itself failed (a panic stopped by
/// [`boundary`]): `HOST_FAILED` (ABI 1.3, docs/abi.md, section 2). Functions that report a
/// plugin's panic do so otherwise (`ph_host_run` returns `ERROR` and reports `PANICKED` to its
/// error callback).
pub(crate) const HOST_FAILED: PhResultCode = PhResult::HostFailed.code();

/// Runs `f`, the body of an exported function, and stops any panic here: `on_panic` is returned
/// instead, and the panic never unwinds into the caller's code. A panic payload whose drop panics
/// again is leaked rather than dropped.
#[inline]
pub(crate) fn boundary<R>(on_panic: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(again);
            }
            on_panic
        }
    }
}

/// The code of a body's result.
pub(crate) fn code(result: Result<(), PhResult>) -> PhResultCode {
    match result {
        Ok(()) => PhResult::Ok.code(),
        Err(code) => code.code(),
    }
}

/// The host behind a `[thread-safe]` function's pointer.
///
/// # Safety
///
/// A non-null `host` must come from `ph_host_new` (or `ph_host_new_with_log`), not be freed for
/// `'a`, and not be used by a `[main-thread]` function during `'a`.
pub(crate) unsafe fn shared<'a>(host: *const PhHost) -> Result<&'a PhHost, PhResult> {
    // SAFETY: the caller guarantees that a non-null pointer is a live host that nobody holds
    // exclusively for `'a`.
    unsafe { host.as_ref() }.ok_or(PhResult::NullPointer)
}

/// The host behind a `[main-thread]` function's pointer.
///
/// # Safety
///
/// A non-null `host` must come from `ph_host_new` (or `ph_host_new_with_log`), not be freed for
/// `'a`, and not be used by any other call during `'a`.
pub(crate) unsafe fn exclusive<'a>(host: *mut PhHost) -> Result<&'a mut PhHost, PhResult> {
    // SAFETY: the caller guarantees that a non-null pointer is a live host that nothing else uses
    // for `'a`.
    unsafe { host.as_mut() }.ok_or(PhResult::NullPointer)
}

/// A string argument: `NULL_POINTER` for a NULL view with a length, then `INVALID_UTF8`.
///
/// The same checks as `PhStr::to_str`, inlined, with a fast path for ASCII (command names,
/// topics and most arguments): this is on the path of every `ph_host_run`.
///
/// # Safety
///
/// Unless its pointer is NULL, `s` must view `len` readable bytes that do not change for `'a`.
#[inline]
pub(crate) unsafe fn text<'a>(s: PhStr) -> Result<&'a str, PhResult> {
    // SAFETY: our caller's contract is `bytes`'s.
    let bytes = unsafe { bytes(PhBytes::from(s)) }?;
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return Ok(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).map_err(|_| PhResult::InvalidUtf8)
}

/// A bytes argument: `NULL_POINTER` for a NULL view with a length.
///
/// # Safety
///
/// As for [`text`].
#[inline]
pub(crate) unsafe fn bytes<'a>(b: PhBytes) -> Result<&'a [u8], PhResult> {
    match (b.ptr.is_null(), b.len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(PhResult::NullPointer),
        // SAFETY: `ptr` is not NULL and the caller guarantees that its `len` bytes are readable
        // and unchanged for `'a` (so they lie in one allocation, which bounds `len` by
        // `isize::MAX`); `u8` needs no alignment.
        (false, len) => Ok(unsafe { std::slice::from_raw_parts(b.ptr, len) }),
    }
}

/// A path argument: any bytes on Unix; UTF-8 elsewhere (`INVALID_UTF8` if not).
///
/// # Safety
///
/// As for [`text`].
pub(crate) unsafe fn path<'a>(b: PhBytes) -> Result<&'a Path, PhResult> {
    // SAFETY: our caller's contract is `bytes`'s.
    let bytes = unsafe { bytes(b) }?;
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(Path::new(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes)
            .map(Path::new)
            .map_err(|_| PhResult::InvalidUtf8)
    }
}

/// A `bool` argument: 0 or 1, anything else is `INVALID_ARGUMENT`.
pub(crate) fn flag(value: CBool) -> Result<bool, PhResult> {
    match value {
        FALSE => Ok(false),
        TRUE => Ok(true),
        _ => Err(PhResult::InvalidArgument),
    }
}

/// Writes `value` through `out` if `out` is not NULL.
///
/// # Safety
///
/// A non-null `out` must be valid for a write of `T` (aligned, writable).
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: the caller guarantees a non-null `out` is writable and aligned.
        unsafe { out.write(value) };
    }
}
