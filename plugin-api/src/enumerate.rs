//! Enumerations, EnumWindows style: [`Host::enumerate_plugins`] and [`Host::enumerate_commands`]
//! call the plugin's closure once per item, through a callback of the safe layer, until it
//! returns `false`.

use std::ffi::c_void;

use crate::abi::{
    read_sized, PhCommandInfo, PhCommandInfoCallback, PhPluginInfo, PhPluginInfoCallback, PhResult,
    PhResultCode, PhStr, SizedStruct,
};
use crate::boundary::guard;
use crate::error::Error;
use crate::host::Host;
use crate::link::HostLink;

/// One loaded plugin, as the host enumerates it.
#[derive(Debug, Clone, Copy)]
pub struct PluginInfo<'a> {
    /// The plugin's unique name.
    pub name: &'a str,
    /// The plugin's version.
    pub version: &'a str,
    /// The plugin's one-line description.
    pub description: &'a str,
    /// The library file the plugin was loaded from.
    pub path: &'a str,
    /// The ABI version the plugin was built for: (major, minor).
    pub abi_version: (u16, u16),
}

/// One command, as a plugin enumerates it.
#[derive(Debug, Clone, Copy)]
pub struct CommandInfo<'a> {
    /// The command name.
    pub name: &'a str,
    /// Its one-line description.
    pub description: &'a str,
    /// Its arguments' synopsis.
    pub usage: &'a str,
}

/// Reads a string filled by the other side, replacing what cannot be read.
///
/// # Safety
///
/// `s` must satisfy the contract of [`PhStr::to_str`] for the duration of the returned borrow.
unsafe fn lossy<'a>(s: PhStr) -> &'a str {
    // SAFETY: `s` meets `to_str`'s contract for `'a` (this function's contract).
    unsafe { s.to_str() }.unwrap_or("<invalid UTF-8>")
}

/// The state of an enumeration driven by the host: the closure, and whether it panicked.
struct Enumeration<'f, T: ?Sized> {
    link: &'f HostLink,
    f: &'f mut T,
    panicked: bool,
}

/// One call of an enumeration callback of the safe layer: reads the host's `R` (skipping one too
/// small for this ABI version; NULL stops the enumeration), lets `call` give it to the closure,
/// all inside the boundary guard; a panic stops the enumeration and is remembered.
///
/// # Safety
///
/// `user_data` is the `Enumeration<F>` of the enumeration under way; `info` is NULL or an `R` of
/// the host's ABI version, valid for the call.
unsafe fn step<R: SizedStruct, F: ?Sized>(
    user_data: *mut c_void,
    info: *const R,
    what: &str,
    call: impl FnOnce(&mut F, &R) -> bool,
) -> bool {
    // SAFETY: `user_data` is the `Enumeration` on the stack of the `Host` method that started
    // the enumeration, which is waiting for the host to return (this function's contract).
    let state = unsafe { &mut *user_data.cast::<Enumeration<'_, F>>() };
    let link = state.link;
    let f = &mut *state.f;
    let keep_going = guard(Some(link), what, None, || {
        // SAFETY: NULL or an `R` of the host's ABI version, valid for the call (this function's
        // contract).
        match unsafe { read_sized(info) } {
            Ok(info) => Some(call(f, info)),
            Err(PhResult::NullPointer) => None,
            Err(_) => Some(true),
        }
    });
    keep_going.unwrap_or_else(|| {
        state.panicked = true;
        false
    })
}

unsafe extern "C" fn plugin_info_trampoline<F>(
    user_data: *mut c_void,
    info: *const PhPluginInfo,
) -> bool
where
    F: FnMut(&PluginInfo<'_>) -> bool,
{
    let call = |f: &mut F, info: &PhPluginInfo| {
        // SAFETY: the info's strings are the host's, valid for the duration of the call, and the
        // `PluginInfo` made of them does not outlive it.
        let info = unsafe {
            PluginInfo {
                name: lossy(info.name),
                version: lossy(info.version),
                description: lossy(info.description),
                path: lossy(info.path),
                abi_version: (info.abi_major, info.abi_minor),
            }
        };
        f(&info)
    };
    // SAFETY: the `Enumeration<F>` of `Host::enumerate_plugins` and the host's info, as the
    // contract of `PhPluginInfoCallback` gives them.
    unsafe { step(user_data, info, "a plugin enumeration callback", call) }
}

unsafe extern "C" fn command_info_trampoline<F>(
    user_data: *mut c_void,
    info: *const PhCommandInfo,
) -> bool
where
    F: FnMut(&CommandInfo<'_>) -> bool,
{
    let call = |f: &mut F, info: &PhCommandInfo| {
        // SAFETY: the info's strings are the host's, valid for the duration of the call, and the
        // `CommandInfo` made of them does not outlive it.
        let info = unsafe {
            CommandInfo {
                name: lossy(info.name),
                description: lossy(info.description),
                usage: lossy(info.usage),
            }
        };
        f(&info)
    };
    // SAFETY: the `Enumeration<F>` of `Host::enumerate_commands` and the host's info, as the
    // contract of `PhCommandInfoCallback` gives them.
    unsafe { step(user_data, info, "a command enumeration callback", call) }
}

impl Host {
    /// Calls `f` once per loaded plugin, in load order, until it returns `false`.
    ///
    /// # Errors
    ///
    /// [`PhResult::Panicked`] if `f` panicked (the enumeration stopped there).
    pub fn enumerate_plugins<F>(&self, mut f: F) -> Result<(), Error>
    where
        F: FnMut(&PluginInfo<'_>) -> bool,
    {
        let services = self.link.services()?;
        let mut state = Enumeration {
            link: &self.link,
            f: &mut f,
            panicked: false,
        };
        // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link is active
        // (`HostLink::services`); `state` outlives the call and matches the trampoline's type.
        let code = unsafe {
            (services.enumerate_plugins)(
                self.link.ctx,
                Some(PhPluginInfoCallback(plugin_info_trampoline::<F>)),
                (&mut state as *mut Enumeration<'_, F>).cast(),
            )
        };
        Self::finish_enumeration("enumerate_plugins", code, state.panicked)
    }

    /// Enumerates the commands of the plugin named `plugin` (the host answers from its records of
    /// what that plugin registered); calls `f` once per command until it returns `false`.
    ///
    /// # Errors
    ///
    /// [`PhResult::NotFound`] if no such plugin is loaded; [`PhResult::Panicked`] if `f`
    /// panicked.
    pub fn enumerate_commands<F>(&self, plugin: &str, mut f: F) -> Result<(), Error>
    where
        F: FnMut(&CommandInfo<'_>) -> bool,
    {
        let services = self.link.services()?;
        let mut state = Enumeration {
            link: &self.link,
            f: &mut f,
            panicked: false,
        };
        // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link is active
        // (`HostLink::services`); the name and `state` outlive the call, and `state` matches the
        // trampoline's type.
        let code = unsafe {
            (services.enumerate_commands)(
                self.link.ctx,
                PhStr::new(plugin),
                Some(PhCommandInfoCallback(command_info_trampoline::<F>)),
                (&mut state as *mut Enumeration<'_, F>).cast(),
            )
        };
        Self::finish_enumeration(
            &format!("enumerate_commands({plugin:?})"),
            code,
            state.panicked,
        )
    }

    fn finish_enumeration(
        operation: &str,
        code: PhResultCode,
        panicked: bool,
    ) -> Result<(), Error> {
        if panicked {
            return Err(Error::with_code(
                PhResult::Panicked,
                format!("{operation}: the callback panicked"),
            ));
        }
        Error::check(operation, code)
    }
}
