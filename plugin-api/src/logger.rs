//! Forwards the plugin's `log` records to the host.
//!
//! Each plugin library has its own copy of the `log` crate's globals, so the host's logger cannot
//! see a plugin's records. At `init` the safe layer installs [`Forwarder`] as the plugin's logger and
//! sets the plugin's maximum level to the host's, so that a filtered-out record costs one atomic load
//! and never crosses the boundary.
//!
//! Records go to the plugin whose code is running on this thread (set by the boundary guard), or,
//! on threads the plugin started itself, to the most recently initialised plugin that is still
//! active. When a plugin crate is linked into a test binary (the mock host), several plugins share
//! one `log`; the per-thread routing keeps their records apart.

use std::cell::Cell;
use std::sync::{Arc, Mutex, Weak};

use crate::host::HostLink;

/// The logger installed in the plugin's copy of `log`.
struct Forwarder;

static FORWARDER: Forwarder = Forwarder;

/// Active plugins of this library, most recent last, for threads outside any call.
static ACTIVE: Mutex<Vec<Weak<HostLink>>> = Mutex::new(Vec::new());

thread_local! {
    /// The plugin whose code this thread is running, during a call from the host.
    static CURRENT: Cell<*const HostLink> = const { Cell::new(std::ptr::null()) };
}

/// Marks this thread as running `link`'s code until the returned scope is dropped.
pub(crate) fn enter(link: &HostLink) -> Scope {
    let previous = CURRENT.with(|c| c.replace(link));
    Scope { previous }
}

/// Restores the previous plugin of this thread when dropped.
pub(crate) struct Scope {
    previous: *const HostLink,
}

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Installs the forwarder (once per copy of `log`), adopts the host's level, and makes `link` the
/// fallback destination.
pub(crate) fn attach(link: &Arc<HostLink>, host_level: log::LevelFilter) {
    // If something else is already the logger (a test binary with its own logger), records go
    // there instead; that is the best a shared `log` allows.
    let _ = log::set_logger(&FORWARDER);
    log::set_max_level(host_level);
    let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
    active.retain(|w| w.strong_count() > 0);
    active.push(Arc::downgrade(link));
}

/// Removes `link` from the fallback destinations.
pub(crate) fn detach(link: &HostLink) {
    let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
    active.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), link));
}

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        let current = CURRENT.with(Cell::get);
        if !current.is_null() {
            // SAFETY: `CURRENT` is only non-null inside `guard`, whose caller holds a reference to
            // the link for the whole call, so the pointer is valid here.
            let link = unsafe { &*current };
            link.log(record.level(), record.target(), &message);
            return;
        }
        let fallback = ACTIVE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .rev()
            .find_map(Weak::upgrade);
        if let Some(link) = fallback {
            link.log(record.level(), record.target(), &message);
        }
    }

    fn flush(&self) {}
}

/// Converts a [`crate::abi::PhLogLevel`] number into a level filter (unknown numbers mean "all").
pub(crate) fn level_filter(level: u32) -> log::LevelFilter {
    match level {
        0 => log::LevelFilter::Off,
        1 => log::LevelFilter::Error,
        2 => log::LevelFilter::Warn,
        3 => log::LevelFilter::Info,
        4 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}
