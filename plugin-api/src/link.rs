//! [`HostLink`]: the plugin's raw link to its host, the context and the services table that
//! `init` received. Every call of the safe layer into the host goes through it.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::abi::{PhHostContext, PhHostServices, PhResult, PhStr};
use crate::error::Error;
use crate::state::ErasedSlot;

/// The plugin's link to its host: the host context and services, valid while `active`.
pub(crate) struct HostLink {
    /// The context the host gave at `init`; passed back to every service.
    pub(crate) ctx: *mut PhHostContext,
    services: *const PhHostServices,
    /// Cleared at shutdown (or a failed init): afterwards no call reaches the host. (The host's
    /// context stays valid after that too, and would answer `SHUT_DOWN`; this saves the call.)
    active: AtomicBool,
    /// Where the plugin's handlers find its state (see [`crate::state`]).
    pub(crate) state: ErasedSlot,
}

// SAFETY: the host services are `[thread-safe]` by the ABI's contract, and the context pointer is
// only ever passed back to them; the rest of the link is synchronised.
unsafe impl Send for HostLink {}
// SAFETY: shared references only read the two pointers, which never change, the atomic flag and
// the state slot (itself `Send + Sync`); the host services may be called from several threads at
// once (`[thread-safe]`).
unsafe impl Sync for HostLink {}

impl HostLink {
    /// # Safety
    ///
    /// `ctx` and `services` must be the ones the host passed to `init`, valid for as long as
    /// this library is loaded (the ABI's lifetime model), and `services` must hold the fields of
    /// this ABI version. `state` is the plugin's state slot.
    pub(crate) unsafe fn new(
        ctx: *mut PhHostContext,
        services: *const PhHostServices,
        state: ErasedSlot,
    ) -> HostLink {
        HostLink {
            ctx,
            services,
            active: AtomicBool::new(true),
            state,
        }
    }

    /// The host services, or `Err(ShutDown)` after shutdown. While this returns the table, the
    /// table and [`HostLink::ctx`] are the ones the host gave at `init`, valid for as long as this
    /// library is mapped (the contract of [`HostLink::new`]), and the services may be called with
    /// that context from any thread (`[thread-safe]`).
    #[inline]
    pub(crate) fn services(&self) -> Result<&PhHostServices, Error> {
        if !self.active.load(Ordering::Acquire) {
            return Err(Self::shut_down());
        }
        // SAFETY: while `active`, `services` is valid (the contract of `new`).
        Ok(unsafe { &*self.services })
    }

    #[cold]
    fn shut_down() -> Error {
        Error::with_code(
            PhResult::ShutDown,
            "the plugin is shut down; the host is no longer available",
        )
    }

    /// Ends the link: later calls return `ShutDown` without reaching the host.
    pub(crate) fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
    }

    /// Logs through the host; errors are ignored (there is nowhere else to report them).
    pub(crate) fn log(&self, level: log::Level, target: &str, message: &str) {
        if let Ok(services) = self.services() {
            // SAFETY: `ctx` belongs to these services; both strings outlive the call.
            unsafe {
                (services.log)(
                    self.ctx,
                    level as u32,
                    PhStr::new(target),
                    PhStr::new(message),
                );
            }
        }
    }

    /// The host's most verbose level, as a `log` filter.
    pub(crate) fn max_level(&self) -> log::LevelFilter {
        let Ok(services) = self.services() else {
            return log::LevelFilter::Off;
        };
        // SAFETY: `ctx` is the context the host gave with these services at `init`, valid for as
        // long as this library is mapped (the contract of `new`); `log_max_level` takes no other
        // argument and may be called from any thread.
        let level = unsafe { (services.log_max_level)(self.ctx) };
        crate::abi::PhLogLevel::filter(level)
    }
}
