//! [`Registration`]: a callback a plugin registered, with its user data, `destroy` and owner.
//!
//! A registration's `destroy` runs exactly once: when its last reference is dropped after it was
//! removed from the registry, or, for a refused registration of a plugin of ABI 1.2 or later,
//! before the registering call returns ([`Registration::refuse`]).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use plugin_api::abi::{PhDestroyCallback, PhHandle, PhResult};

use crate::context::PluginContext;

/// A callback registered by a plugin: function, user data, destroy, owner.
pub(crate) struct Registration<C> {
    pub(crate) handle: PhHandle,
    pub(crate) owner: Arc<PluginContext>,
    pub(crate) callback: C,
    pub(crate) user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    /// Cleared by unregister: dispatches that still hold the registration skip it.
    active: AtomicBool,
}

// SAFETY: `user_data` is only passed back to the plugin's callbacks, which the ABI requires to
// be callable from any thread; everything else is immutable or atomic.
unsafe impl<C: Send> Send for Registration<C> {}
// SAFETY: shared references read immutable fields or the atomic flag only.
unsafe impl<C: Sync> Sync for Registration<C> {}

impl<C> Registration<C> {
    /// A registration of `owner`, not yet in any map. Dropping it runs `destroy`.
    pub(crate) fn new(
        handle: PhHandle,
        owner: Arc<PluginContext>,
        callback: C,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
    ) -> Registration<C> {
        Registration {
            handle,
            owner,
            callback,
            user_data,
            destroy,
            active: AtomicBool::new(true),
        }
    }

    /// Whether dispatches call it: not unregistered, and its plugin receives calls.
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire) && self.owner.receives_calls()
    }

    pub(crate) fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
    }

    /// Refuses the registration with `code`: its user data goes back to the plugin. A plugin of
    /// ABI 1.2 or later gets `destroy(user_data)` now; an older one frees it itself (its ABI
    /// said that on error `destroy` is not called).
    pub(crate) fn refuse(mut self, code: PhResult) -> PhResult {
        if !self.owner.destroys_refused() {
            self.destroy = None;
        }
        drop(self);
        code
    }
}

impl<C> Drop for Registration<C> {
    /// The last reference is gone: no dispatch uses the user data any more, so it is released.
    fn drop(&mut self) {
        if let Some(destroy) = self.destroy.take() {
            // SAFETY: the plugin gave this destroy function for this user data, and this is the
            // only call: `take` leaves `None` behind.
            unsafe { (destroy.0)(self.user_data) };
        }
    }
}
