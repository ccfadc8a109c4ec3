//! Events: [`Event`], [`Host::subscribe`] and [`Host::on`] (the same, with a handler bound to
//! the plugin's state), [`Host::publish`] and the event callback of the safe layer.

use std::ffi::c_void;

use crate::abi::{PhBytes, PhDestroyCallback, PhEventCallback, PhResult, PhResultCode, PhStr};
use crate::boundary::guard;
use crate::callback::{drop_callback, Callback};
use crate::error::{Error, Outcome};
use crate::host::{Handle, Host};
use crate::state::StateSlot;

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
    /// turn. An `Err` or a panic is logged. To give `f` the plugin's state instead of what it
    /// captures, use [`Host::on`].
    ///
    /// ```
    /// use plugin_api::{Error, Event, Host, Plugin};
    ///
    /// struct Watcher;
    ///
    /// impl Plugin for Watcher {
    ///     const NAME: &'static str = "watcher";
    ///
    ///     fn init(host: &Host) -> Result<Self, Error> {
    ///         // The callback's signature: `Fn(&Event<'_>) -> Result<(), Error>`, `Send + Sync`.
    ///         host.subscribe("*", |event: &Event<'_>| -> Result<(), Error> {
    ///             log::info!("{}: {} bytes", event.topic, event.payload.len());
    ///             Ok(())
    ///         })?;
    ///         Ok(Watcher)
    ///     }
    /// }
    /// # let mut host = plughost_testing::MockHost::new();
    /// # host.load::<Watcher>().unwrap();
    /// # host.publish("a.b", b"xy").unwrap();
    /// # assert!(host.logs().iter().any(|r| r.message == "a.b: 2 bytes"));
    /// ```
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

    /// Subscribes a handler bound to the plugin's state to events published on `topic` (or `*`):
    /// `f` runs with `&S`, the value [`Plugin::init`](crate::Plugin::init) returned (`S` is the
    /// plugin's type, checked here), and the event; it returns `Result<(), Error>` or `()` (see
    /// [`Outcome`]).
    ///
    /// This is [`Host::subscribe`] with the state found for you: the same registration, threads
    /// and errors, and no lock, allocation or reference count per event. `f` runs only while the
    /// state exists, as for [`Host::command`]: an event published before `init` returned (by
    /// the plugin's own `init`, or another thread) is not given to `f`, and a warning says so.
    ///
    /// ```
    /// use plugin_api::{Error, Event, Host, Plugin};
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// #[derive(Default)]
    /// struct Counter {
    ///     seen: AtomicUsize,
    /// }
    ///
    /// impl Plugin for Counter {
    ///     const NAME: &'static str = "counter";
    ///
    ///     fn init(host: &Host) -> Result<Self, Error> {
    ///         // The handler's signature: `Fn(&Self, &Event<'_>) -> R`, where `R` is
    ///         // `Result<(), Error>` or `()`.
    ///         host.on("*", |me: &Self, event: &Event<'_>| {
    ///             log::info!("{} bytes on {}", event.payload.len(), event.topic);
    ///             me.seen.fetch_add(1, Ordering::Relaxed);
    ///         })?;
    ///         Ok(Counter::default())
    ///     }
    /// }
    /// # let mut host = plughost_testing::MockHost::new();
    /// # host.load::<Counter>().unwrap();
    /// # host.publish("a.b", b"xyz").unwrap();
    /// # assert!(host.logs().iter().any(|r| r.message == "3 bytes on a.b"));
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`Host::subscribe`]; [`PhResult::InvalidArgument`] if `S` is not this plugin's
    /// type.
    pub fn on<S, R, F>(&self, topic: &str, f: F) -> Result<Handle, Error>
    where
        S: Send + Sync + 'static,
        R: Outcome,
        F: Fn(&S, &Event<'_>) -> R + Send + Sync + 'static,
    {
        let slot = self.state_slot::<S>(&format!("subscription to `{topic}`"))?;
        self.subscribe(topic, move |event| {
            // SAFETY: this closure runs only in the event trampoline, during a call the host
            // dispatched into the plugin (it is moved into the registration, which nothing else
            // calls), and the state is used only until it returns.
            let Some(state) = (unsafe { slot.get() }) else {
                return Err(StateSlot::<S>::not_available());
            };
            f(state, event).into_result()
        })
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
                    error.failure_code().code()
                }
            }
        },
    )
}
