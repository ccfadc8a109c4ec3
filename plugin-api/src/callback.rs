//! The state behind each registration of the safe layer (a command or a subscription): the
//! plugin's closure with its host link, owned by the host as user data until it calls
//! [`drop_callback`].

use std::ffi::c_void;
use std::sync::Arc;

use crate::boundary::guard;
use crate::link::HostLink;

/// What a registration's user data points to: the closure, the link of its plugin (for the
/// boundary guard and logging), and what to call it in messages.
pub(crate) struct Callback<F> {
    pub(crate) link: Arc<HostLink>,
    pub(crate) what: String,
    pub(crate) f: F,
}

impl<F> Callback<F> {
    /// Moves the state to the heap and returns the user data to hand to the host; the host owns
    /// it from then on and frees it with [`drop_callback::<F>`].
    pub(crate) fn into_user_data(link: &Arc<HostLink>, what: String, f: F) -> *mut c_void {
        let state = Box::new(Callback {
            link: Arc::clone(link),
            what,
            f,
        });
        Box::into_raw(state).cast()
    }
}

/// The host's `destroy` for every registration of the safe layer: drops the closure, inside the
/// boundary guard (a closure's `Drop` may panic).
///
/// # Safety
///
/// `user_data` comes from [`Callback::<F>::into_user_data`], and this is its only call (the
/// ABI's rule: the host calls `destroy` exactly once, when no dispatch uses the user data).
pub(crate) unsafe extern "C" fn drop_callback<F>(user_data: *mut c_void) {
    // SAFETY: a `Box<Callback<F>>` turned into a raw pointer by `into_user_data`, given back
    // once (this function's contract).
    let boxed = unsafe { Box::from_raw(user_data.cast::<Callback<F>>()) };
    let link = Arc::clone(&boxed.link);
    guard(Some(&link), "drop of a callback", (), move || drop(boxed));
}
