//! The host side's one FFI boundary: every host service body runs in [`guard`], the host's only
//! `catch_unwind`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, the body of an `extern "C"` host function, and stops any panic here.
///
/// A panic is logged as an error naming `what`, and `on_panic` is returned to the plugin; it never
/// unwinds into plugin code (since Rust 1.81 that would abort the process), not even when the
/// panic's payload panics again as it is dropped (that second payload is leaked).
///
/// Inlined into each service, so that a service's arguments stay in registers rather than being
/// stored for a separate function to read: about 20 instructions of a `publish`, which costs
/// about 150 in the host when nobody receives it.
#[inline]
pub(crate) fn guard<R>(what: &str, on_panic: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            log::error!(
                "internal error: panic in host service {what}: {}",
                panic_message(payload.as_ref())
            );
            if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(again);
            }
            on_panic
        }
    }
}

/// The message of a panic payload (`panic!` with a literal or a formatted string).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
