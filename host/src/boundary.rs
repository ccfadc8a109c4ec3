//! The host side's one FFI boundary: every host service body runs in [`guard`].

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, the body of an `extern "C"` host function, and stops any panic here.
///
/// A panic is logged as an error naming `what`, and `on_panic` is returned to the plugin; it never
/// unwinds into plugin code (since Rust 1.81 that would abort the process).
pub(crate) fn guard<R>(what: &str, on_panic: R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            log::error!("internal error: panic in host service {what}: {message}");
            on_panic
        }
    }
}
