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

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::link::HostLink;

/// The logger installed in the plugin's copy of `log`.
struct Forwarder;

static FORWARDER: Forwarder = Forwarder;

/// Active plugins of this library, most recent last, for threads outside any call.
static ACTIVE: Mutex<Vec<Weak<HostLink>>> = Mutex::new(Vec::new());

/// Set by [`route_every_call`]: calls are routed even while one plugin is active. Written with
/// `ACTIVE` locked.
static ROUTE_EVERY_CALL: AtomicBool = AtomicBool::new(false);

/// Whether calls are routed per thread: more than one plugin in `ACTIVE`, or
/// [`route_every_call`]. One flag, so that a call's check is one load. Written with `ACTIVE`
/// locked.
static ROUTED: AtomicBool = AtomicBool::new(false);

/// Sets [`ROUTED`] from `active` (locked by the caller) and [`ROUTE_EVERY_CALL`].
fn update_routed(active: &[Weak<HostLink>]) {
    let routed = active.len() > 1 || ROUTE_EVERY_CALL.load(Ordering::Relaxed);
    ROUTED.store(routed, Ordering::Relaxed);
}

/// Routes every call from now on, whatever the number of active plugins, for programs where
/// plugins come and go on several threads at once (a test binary running mock hosts in parallel):
/// a call that starts while one plugin is active still logs to its own plugin when a second one
/// starts meanwhile.
pub fn route_every_call() {
    let active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
    ROUTE_EVERY_CALL.store(true, Ordering::Relaxed);
    update_routed(&active);
}

thread_local! {
    /// The plugin whose code this thread is running, during a call from the host.
    static CURRENT: Cell<*const HostLink> = const { Cell::new(std::ptr::null()) };
}

/// Marks this thread as running `link`'s code until the returned scope is dropped, if more than
/// one plugin of this library is active; with one, records reach it without routing.
#[inline]
pub(crate) fn enter(link: &HostLink) -> Option<Scope> {
    if !ROUTED.load(Ordering::Relaxed) {
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
    update_routed(&active);
}

/// Removes `link` from the fallback destinations.
pub(crate) fn detach(link: &HostLink) {
    let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
    active.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), link));
    update_routed(&active);
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
