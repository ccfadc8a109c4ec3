//! The plugin side's one FFI boundary: every `extern "C"` body of the safe layer runs in [`guard`].

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::link::HostLink;
use crate::logger;

/// Runs `f`, the body of an `extern "C"` function of the plugin, on behalf of the plugin whose
/// host link is `link`. The plugin side's only `catch_unwind`.
///
/// While `f` runs, `log` records of this thread go to that plugin's host (see [`crate::logger`] for how
/// they are routed when several plugins share this library's `log`). If `f` panics, the panic
/// stops here: it is logged through the host as an error naming `what`, and `on_panic` is
/// returned. A panic never unwinds into the caller (since Rust 1.81 that would abort the process).
#[inline]
pub(crate) fn guard<R>(
    link: Option<&HostLink>,
    what: &str,
    on_panic: R,
    f: impl FnOnce() -> R,
) -> R {
    let _scope = link.and_then(logger::enter);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            report_panic(link, what, payload);
            on_panic
        }
    }
}

/// The panic path of [`guard`], out of line so that the guarded functions keep a small frame.
#[cold]
#[inline(never)]
fn report_panic(link: Option<&HostLink>, what: &str, payload: Box<dyn Any + Send>) {
    let message = panic_message(payload.as_ref()).to_owned();
    drop_payload(payload);
    match link {
        Some(link) => link.log(
            log::Level::Error,
            "",
            &format!("panic in {what}: {message}"),
        ),
        None => log::error!("panic in {what}: {message}"),
    }
}

/// Drops a panic payload without letting a second panic escape: a payload whose `Drop` panics
/// would otherwise unwind out of the boundary (and abort the process). The second payload is
/// leaked, not dropped, since dropping it could panic a third time.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// The message of a panic payload (`panic!` with a literal or a formatted string).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
