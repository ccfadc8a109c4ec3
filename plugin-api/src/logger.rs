//! Forwards the plugin's `log` records to the host.
//!
//! Each plugin library has its own copy of the `log` crate's globals, so the host's logger cannot
//! see a plugin's records. At `init` the safe layer installs [`Forwarder`] as the plugin's logger and
//! sets the plugin's maximum level to the host's, so that a filtered-out record costs one atomic load
//! and never crosses the boundary.
//!
//! A library normally holds one plugin, and then every record goes to it. When several plugins
//! share one copy of `log` (plugin crates linked into one test binary with the mock host, or one
//! library initialised by two hosts), records go to the plugin whose code is running on this
//! thread (set by the boundary guard), or, on threads a plugin started itself, to the most
//! recently initialised plugin that is still active. The per-thread routing costs two
//! thread-local accesses per call across the boundary (`__tls_get_addr` in a shared library), so
//! the guard sets it only while more than one plugin is active; a call that started before a
//! second plugin of the same library was initialised logs to the most recent one.

#![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)] // removed when this file is split (issue #11)

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::host::HostLink;

/// The logger installed in the plugin's copy of `log`.
struct Forwarder;

static FORWARDER: Forwarder = Forwarder;

/// Active plugins of this library, most recent last, for threads outside any call.
static ACTIVE: Mutex<Vec<Weak<HostLink>>> = Mutex::new(Vec::new());

/// How many plugins `ACTIVE` holds; while it is at most 1, calls need no per-thread routing.
static ACTIVE_COUNT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The plugin whose code this thread is running, during a call from the host.
    static CURRENT: Cell<*const HostLink> = const { Cell::new(std::ptr::null()) };
}

/// Marks this thread as running `link`'s code until the returned scope is dropped, if more than
/// one plugin of this library is active; with one, records reach it without routing.
#[inline]
pub(crate) fn enter(link: &HostLink) -> Option<Scope> {
    if ACTIVE_COUNT.load(Ordering::Relaxed) <= 1 {
        return None;
    }
    Some(enter_routed(link))
}

#[cold]
fn enter_routed(link: &HostLink) -> Scope {
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
    ACTIVE_COUNT.store(active.len(), Ordering::Relaxed);
}

/// Removes `link` from the fallback destinations.
pub(crate) fn detach(link: &HostLink) {
    let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
    active.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), link));
    ACTIVE_COUNT.store(active.len(), Ordering::Relaxed);
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
