//! The plugin's state as its handlers see it: [`StateSlot`], where the glue of
//! [`crate::export_plugin!`] publishes the value `init` returned, for the registrations bound to
//! it ([`Host::command`](crate::Host::command), [`Host::on`](crate::Host::on)).
//!
//! # Lifetime
//!
//! The state lives in the box that the host holds as the plugin data, from the return of `init`
//! until `shutdown` takes it back (never, after a fault: the plugin data is then never released).
//! The slot holds a pointer to it, and is NULL before `init` returned, after a failed `init` and
//! from the start of `shutdown` on. A bound handler reads the pointer once per call (one atomic
//! load, no lock, no reference count) and runs only if it is set. The pointer stays valid for the
//! whole call because the host never calls into a plugin once its shutdown has begun: it stops
//! new calls, waits until the calls under way have returned, and only then calls `shutdown`
//! (the ABI's lifetime model), which clears the slot before it moves the state out.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;

use crate::abi::PhResult;
use crate::error::Error;
use crate::host::Host;

/// Where the handlers of a plugin whose state is `P` find it. Shared (in an `Arc`) by the
/// plugin's host link and every bound registration; it owns nothing.
pub(crate) struct StateSlot<P> {
    /// The state inside the plugin data, or NULL while there is none to use.
    state: AtomicPtr<P>,
    /// Whether callers reach the state without host code (an interface provided on it,
    /// [`crate::OnState`]): `shutdown` then waits for their calls after [`StateSlot::clear`].
    direct_calls: AtomicBool,
}

impl<P: Send + Sync + 'static> StateSlot<P> {
    /// An empty slot, type-erased for the host link.
    pub(crate) fn new() -> Arc<StateSlot<P>> {
        Arc::new(StateSlot {
            state: AtomicPtr::new(std::ptr::null_mut()),
            direct_calls: AtomicBool::new(false),
        })
    }

    /// Makes `state` visible to the handlers, once `init` returned it.
    ///
    /// # Safety
    ///
    /// `state` must point to the plugin's state, valid and never mutated or moved until
    /// [`StateSlot::clear`] has been called and every call into the plugin has returned (the
    /// plugin data that the host holds, released only by `shutdown`, or never).
    pub(crate) unsafe fn publish(&self, state: *const P) {
        self.state.store(state.cast_mut(), Ordering::Release);
    }

    /// Hides the state from the handlers: called by `shutdown` before it takes the state back.
    /// Returns once no call can still be using it: the host's calls have ended before
    /// `shutdown` (the ABI's lifetime model), and the direct calls of [`crate::OnState`]
    /// providers are waited for here (a grace period of this library's `quiesce`).
    pub(crate) fn clear(&self) {
        self.state.store(std::ptr::null_mut(), Ordering::Release);
        if self.direct_calls.load(Ordering::Acquire) {
            crate::quiesce::synchronize(&format_args!(
                "shutdown of a plugin whose state `{}` provides interfaces",
                std::any::type_name::<P>()
            ));
        }
    }

    /// Notes that callers reach the state without host code ([`crate::OnState`]), so that
    /// [`StateSlot::clear`] waits for their calls.
    pub(crate) fn serve_direct_calls(&self) {
        self.direct_calls.store(true, Ordering::Release);
    }

    /// The state, or `None` if there is none (before `init` returned, after a failed `init`, once
    /// `shutdown` began: then [`StateSlot::not_available`] is the handler's error).
    ///
    /// # Safety
    ///
    /// Only during a call that the host dispatched into the plugin (a command, an event
    /// handler), and the reference must not be used after that call returns: the host does not
    /// start `shutdown`, which takes the state away, until every such call has returned.
    #[inline]
    pub(crate) unsafe fn get(&self) -> Option<&P> {
        let state = self.state.load(Ordering::Acquire);
        if state.is_null() {
            return None;
        }
        // SAFETY: a non-NULL pointer was published by `publish`, whose caller keeps the state
        // valid and unchanged until `clear` and until every call into the plugin has returned;
        // this is such a call, and the reference is used within it (this function's contract).
        // Shared references from several threads are fine: `P: Sync`.
        Some(unsafe { &*state })
    }

    /// The error of a bound handler called while there is no state: a fixed message, so that
    /// the call path makes no call that could unwind for it.
    #[inline]
    pub(crate) const fn not_available() -> Error {
        Error::fixed(
            PhResult::Error,
            "the plugin's state is not available: its init has not returned, or its shutdown began",
        )
    }
}

/// The state slot of a plugin, as its host link holds it: type-erased, with the name of the type
/// for messages.
pub(crate) struct ErasedSlot {
    slot: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
}

impl ErasedSlot {
    /// The slot of a plugin whose state is `P`.
    pub(crate) fn new<P: Send + Sync + 'static>(slot: &Arc<StateSlot<P>>) -> ErasedSlot {
        ErasedSlot {
            slot: Arc::clone(slot) as Arc<dyn Any + Send + Sync>,
            type_name: std::any::type_name::<P>(),
        }
    }
}

impl Host {
    /// The state slot of this plugin, if its state is an `S`; `what` names the registration in
    /// the error.
    pub(crate) fn state_slot<S: Send + Sync + 'static>(
        &self,
        what: &str,
    ) -> Result<Arc<StateSlot<S>>, Error> {
        let erased = &self.link.state;
        Arc::clone(&erased.slot)
            .downcast::<StateSlot<S>>()
            .map_err(|_| {
                Error::with_code(
                    PhResult::InvalidArgument,
                    format!(
                        "{what}: bound to `&{}`, but this plugin's state is `{}`",
                        std::any::type_name::<S>(),
                        erased.type_name
                    ),
                )
            })
    }
}
