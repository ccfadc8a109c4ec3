//! [`Host`]: the plugin's safe handle to the host services. Each service's methods live in the
//! module of its concern: [`crate::command`], [`crate::event`], [`crate::enumerate`],
//! [`crate::config`]; logging in [`crate::logger`].

use std::ffi::c_void;
use std::sync::Arc;

use crate::abi::{PhHandle, PhResultCode, PH_INVALID_HANDLE};
use crate::error::Error;
use crate::link::HostLink;

/// A registration made through the [`Host`]: a command or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(pub(crate) PhHandle);

impl Handle {
    /// The raw handle, as the host knows it.
    pub fn raw(self) -> PhHandle {
        self.0
    }
}

/// The plugin's handle to the host services, given to [`crate::Plugin::init`].
///
/// Cheap to clone and `Send + Sync`: keep a clone in command closures or threads. Every method
/// may be called from any thread. After the plugin's shutdown, every method returns an error with
/// code [`PhResult::ShutDown`](crate::abi::PhResult::ShutDown) and does not reach the host.
#[derive(Clone)]
pub struct Host {
    pub(crate) link: Arc<HostLink>,
}

impl Host {
    /// Logs `message` through the host at `level`, with the plugin's name as the target.
    ///
    /// Usually you use the `log` macros instead, which end up here.
    pub fn log(&self, level: log::Level, message: &str) {
        self.link.log(level, "", message);
    }

    /// Hands `user_data` (from [`crate::callback::Callback::into_user_data`]) to the host
    /// through `call`. The host owns it from then on, whatever the outcome: it calls the destroy
    /// function (which frees it) once, also when it refuses the registration (the rule of ABI
    /// 1.2).
    pub(crate) fn register(
        &self,
        operation: &str,
        user_data: *mut c_void,
        call: impl FnOnce(*mut c_void, *mut PhHandle) -> PhResultCode,
    ) -> Result<Handle, Error> {
        let mut handle = PH_INVALID_HANDLE;
        let code = call(user_data, &mut handle);
        Error::check(operation, code)?;
        Ok(Handle(handle))
    }

    /// Ends a registration of this plugin: the command or subscription gets no further calls, and
    /// its closure is dropped once the calls under way have finished. A callback may unregister
    /// itself.
    ///
    /// # Errors
    ///
    /// [`PhResult::UnknownHandle`](crate::abi::PhResult::UnknownHandle) if the handle was already unregistered.
    pub fn unregister(&self, handle: Handle) -> Result<(), Error> {
        let services = self.link.services()?;
        // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link is active
        // (`HostLink::services`).
        let code = unsafe { (services.unregister)(self.link.ctx, handle.0) };
        Error::check("unregister", code)
    }
}
