//! Events: [`Event`], [`Host::subscribe`], [`Host::publish`] and the event callback of the safe
//! layer.

use std::ffi::c_void;

use crate::abi::{PhBytes, PhDestroyCallback, PhEventCallback, PhResult, PhResultCode, PhStr};
use crate::boundary::guard;
use crate::callback::{drop_callback, Callback};
use crate::error::Error;
use crate::host::{Handle, Host};

/// A published event, as a subscriber receives it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The topic it was published on.
    pub topic: &'a str,
    /// The payload bytes.
    pub payload: &'a [u8],
}

impl Host {
    /// Subscribes `f` to events published on `topic` (by any plugin, this one included).
    ///
    /// `f` runs on the publisher's thread, possibly several times at once, and may publish in
    /// turn. An `Err` or a panic is logged.
    ///
    /// # Errors
    ///
    /// [`PhResult::InvalidArgument`] for an invalid topic, [`PhResult::ShutDown`] after shutdown.
    pub fn subscribe<F>(&self, topic: &str, f: F) -> Result<Handle, Error>
    where
        F: Fn(&Event<'_>) -> Result<(), Error> + Send + Sync + 'static,
    {
        let services = self.link.services()?;
        let user_data = Callback::into_user_data(&self.link, format!("handler of `{topic}`"), f);
        self.register(
            &format!("subscribe({topic:?})"),
            user_data,
            |user_data, out| {
                // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link
                // is active (`HostLink::services`); the topic outlives the call; `user_data` is a
                // `Callback<F>` matching the trampoline and the destroy function.
                unsafe {
                    (services.subscribe)(
                        self.link.ctx,
                        PhStr::new(topic),
                        Some(PhEventCallback(event_trampoline::<F>)),
                        user_data,
                        Some(PhDestroyCallback(drop_callback::<F>)),
                        out,
                    )
                }
            },
        )
    }

    /// Publishes an event: every subscriber of `topic` runs before this returns.
    ///
    /// # Errors
    ///
    /// [`PhResult::InvalidArgument`] for an invalid topic, [`PhResult::LimitExceeded`] when
    /// handlers publish deeper than [`crate::abi::PH_MAX_EVENT_DEPTH`].
    pub fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), Error> {
        let services = self.link.services()?;
        // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link is active
        // (`HostLink::services`); topic and payload outlive the call.
        let code =
            unsafe { (services.publish)(self.link.ctx, PhStr::new(topic), PhBytes::new(payload)) };
        Error::check("publish", code)
    }
}

/// The event callback of the safe layer: runs the closure in a [`guard`].
unsafe extern "C" fn event_trampoline<F>(
    user_data: *mut c_void,
    topic: PhStr,
    payload: PhBytes,
) -> PhResultCode
where
    F: Fn(&Event<'_>) -> Result<(), Error> + Send + Sync + 'static,
{
    // SAFETY: `user_data` is the `Callback<F>` registered with this trampoline, alive until the
    // host calls `destroy`, which it does not do while a dispatch is under way.
    let handler = unsafe { &*user_data.cast::<Callback<F>>() };
    guard(
        Some(&handler.link),
        &handler.what,
        PhResult::Panicked.code(),
        || {
            // SAFETY: the host passes views valid for the duration of the call.
            let event = match unsafe { (topic.to_str(), payload.to_bytes()) } {
                (Ok(topic), Ok(payload)) => Event { topic, payload },
                (Err(code), _) | (_, Err(code)) => return code.code(),
            };
            match (handler.f)(&event) {
                Ok(()) => PhResult::Ok.code(),
                Err(error) => {
                    handler
                        .link
                        .log(log::Level::Warn, "", &format!("{}: {error}", handler.what));
                    error.code().code()
                }
            }
        },
    )
}
