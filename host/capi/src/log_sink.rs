//! The log callback of `ph_host_new_with_log`: a `plughost::Observer` that hands each plugin log
//! record to C.

use std::ffi::c_void;
use std::sync::{PoisonError, RwLock};

use plugin_api::abi::{PhDestroyCallback, PhStr};

use crate::types::PhHostLogCallback;

/// A log callback with its user data, as the host's observer.
pub(crate) struct LogSink {
    callback: PhHostLogCallback,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    max_level: log::LevelFilter,
    /// Whether the callback may still be called; `false` once [`LogSink::close`] ran. Readers
    /// hold the read lock while they call the callback, so `close` waits for them.
    open: RwLock<bool>,
}

// SAFETY: `LogSink` holds a raw `user_data` pointer, which is what keeps it from being `Send` and
// `Sync` on its own; `ph_host_new_with_log`'s contract requires the callback to accept that
// pointer on any thread, several at once, and `destroy` to accept it on any thread.
unsafe impl Send for LogSink {}
// SAFETY: see `Send` above; everything else is read-only or behind the `RwLock`.
unsafe impl Sync for LogSink {}

impl LogSink {
    /// A sink that calls `callback(user_data, ...)` for the records at or below `max_level`.
    pub(crate) fn new(
        callback: PhHostLogCallback,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
        max_level: log::LevelFilter,
    ) -> LogSink {
        LogSink {
            callback,
            user_data,
            destroy,
            max_level,
            open: RwLock::new(true),
        }
    }

    /// Stops the callback for good: waits until no record is being delivered, then calls
    /// `destroy(user_data)`, once (later calls do nothing).
    pub(crate) fn close(&self) {
        let was_open = {
            let mut open = self.open.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *open, false)
        };
        if let (true, Some(destroy)) = (was_open, self.destroy) {
            // SAFETY: `destroy` and `user_data` came together from `ph_host_new_with_log`, whose
            // contract lets us call it once on any thread; `open` is now false, so the callback
            // is never called again, and `was_open` makes this the only call.
            unsafe { (destroy.0)(self.user_data) };
        }
    }
}

impl plughost::Observer for LogSink {
    fn max_level(&self) -> log::LevelFilter {
        self.max_level
    }

    fn log(&self, plugin: &str, record: &log::Record<'_>) {
        let open = self.open.read().unwrap_or_else(PoisonError::into_inner);
        if !*open {
            return;
        }
        let formatted;
        let message = match record.args().as_str() {
            Some(text) => text,
            None => {
                formatted = record.args().to_string();
                &formatted
            }
        };
        // SAFETY: the callback and its user data came from `ph_host_new_with_log`, whose contract
        // lets us call it on any thread, several at once, until `destroy`; `close` has not run
        // (we hold the read lock and `open` is true). The views borrow strings that outlive the
        // call.
        unsafe {
            (self.callback.0)(
                self.user_data,
                record.level() as u32,
                PhStr::new(plugin),
                PhStr::new(record.target()),
                PhStr::new(message),
            )
        };
    }
}
