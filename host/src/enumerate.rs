//! Enumerations, EnumWindows style, served by the host: the active plugins, and the commands of
//! one plugin from the host's records. Nested enumerations are limited per thread to
//! [`PH_MAX_ENUMERATION_DEPTH`].

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::Arc;

use plugin_api::abi::{
    read_sized, PhCommandInfo, PhCommandInfoCallback, PhResult, PhStr, PH_MAX_DESCRIPTION_LEN,
    PH_MAX_ENUMERATION_DEPTH, PH_MAX_USAGE_LEN,
};
use plugin_api::CommandInfo;

use crate::commands::Listed;
use crate::context::{PluginContext, PluginState};
use crate::registry::{LockExt, Shared};

thread_local! {
    /// How many enumerations are nested on this thread.
    static ENUMERATION_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// One level of enumeration nesting on this thread; see [`enter_enumeration`].
struct EnumerationLevel(u32);

impl Drop for EnumerationLevel {
    fn drop(&mut self) {
        ENUMERATION_DEPTH.with(|d| d.set(self.0));
    }
}

/// Enters one more level of enumeration on this thread, or refuses with `LIMIT_EXCEEDED` beyond
/// [`PH_MAX_ENUMERATION_DEPTH`] (an enumeration callback that enumerates, without end).
fn enter_enumeration() -> Result<EnumerationLevel, PhResult> {
    let depth = ENUMERATION_DEPTH.with(Cell::get);
    if depth >= PH_MAX_ENUMERATION_DEPTH {
        return Err(PhResult::LimitExceeded);
    }
    ENUMERATION_DEPTH.with(|d| d.set(depth + 1));
    Ok(EnumerationLevel(depth))
}

impl Shared {
    /// Calls `f` once per active plugin, in load order, until it returns `false`; nested
    /// enumerations are limited as in [`Shared::enumerate_commands_of`].
    pub(crate) fn enumerate_plugins(
        &self,
        mut f: impl FnMut(&PluginContext) -> bool,
    ) -> Result<(), PhResult> {
        let _level = enter_enumeration()?;
        for plugin in self.active_plugins() {
            if !f(&plugin) {
                break;
            }
        }
        Ok(())
    }

    /// Enumerates the commands of `plugin` from the host's records, in registration order: `f`
    /// gets each command's name, description and usage, until it returns `false`.
    ///
    /// The records hold only what the plugin registered. For a plugin of ABI 1.2 or later the
    /// text came with each registration; for an older one the host asks the plugin's own
    /// `enumerate_commands` for the text of the names it registered (other names it reports are
    /// ignored, texts beyond the limits are dropped).
    ///
    /// # Errors
    ///
    /// [`PhResult::NotFound`] unless the plugin is active; [`PhResult::LimitExceeded`] for
    /// enumerations nested deeper than [`PH_MAX_ENUMERATION_DEPTH`] on this thread; the code of
    /// an older plugin's failed enumeration ([`PhResult::Panicked`] faults it).
    pub(crate) fn enumerate_commands_of(
        &self,
        plugin: &Arc<PluginContext>,
        f: &mut dyn FnMut(&CommandInfo<'_>) -> bool,
    ) -> Result<(), PhResult> {
        if plugin.state() != PluginState::Active {
            return Err(PhResult::NotFound);
        }
        let _level = enter_enumeration()?;
        let mut own: Vec<Listed> = self
            .commands
            .read_or_recover()
            .iter()
            // By name: a caller may still hold the old version of a plugin that a reload has
            // just replaced, and the map holds the commands of one version of a name at a time
            // (see `crate::reload`), so the plugin's commands are never missing in between.
            .filter(|(_, r)| r.registration.owner.name == plugin.name)
            .map(|(name, r)| {
                (
                    r.registration.handle,
                    name.clone(),
                    r.description.clone(),
                    r.usage.clone(),
                    r.described,
                )
            })
            .collect();
        own.sort_by_key(|c| c.0);
        if own.iter().any(|c| !c.4) {
            self.describe_from_plugin(plugin, &mut own)?;
        }
        for (_, name, description, usage, _) in &own {
            let info = CommandInfo {
                name,
                description,
                usage,
            };
            if !f(&info) {
                break;
            }
        }
        Ok(())
    }

    /// Fills the text of an older plugin's commands from its `enumerate_commands`.
    fn describe_from_plugin(
        &self,
        plugin: &Arc<PluginContext>,
        own: &mut [Listed],
    ) -> Result<(), PhResult> {
        let Some(enumerate) = plugin.vtable().enumerate_commands else {
            return Ok(());
        };
        /// What the trampoline fills: the plugin's commands, by name.
        type Texts<'a> = &'a mut [Listed];
        unsafe extern "C" fn collect(user_data: *mut c_void, info: *const PhCommandInfo) -> bool {
            crate::boundary::guard("command enumeration callback", false, || {
                // SAFETY: `user_data` is the `Texts` on the stack of `describe_from_plugin`,
                // which waits for the enumeration to return.
                let own = unsafe { &mut *user_data.cast::<Texts<'_>>() };
                // SAFETY: the plugin passes NULL or an info of its ABI version, valid for the
                // duration of the call (the contract of `PhCommandInfoCallback`).
                let info = match unsafe { read_sized::<PhCommandInfo>(info) } {
                    Ok(info) => info,
                    Err(PhResult::NullPointer) => return false,
                    Err(_) => return true,
                };
                let read = |s: PhStr, max: usize| {
                    // SAFETY: the plugin's strings are valid for the call.
                    unsafe { s.to_str() }.ok().filter(|s| s.len() <= max)
                };
                let Some(name) = read(info.name, plugin_api::abi::PH_MAX_NAME_LEN) else {
                    return true;
                };
                if let Some(entry) = own.iter_mut().find(|c| c.1 == name && !c.4) {
                    entry.2 = read(info.description, PH_MAX_DESCRIPTION_LEN)
                        .unwrap_or_default()
                        .into();
                    entry.3 = read(info.usage, PH_MAX_USAGE_LEN)
                        .unwrap_or_default()
                        .into();
                    entry.4 = true;
                }
                true
            })
        }
        let mut texts: Texts<'_> = own;
        // The plugin data is passed only while the plugin is active: a shutdown that begins
        // meanwhile waits for this call to end (a grace period, see `crate::quiesce`).
        if !plugin.receives_calls() {
            return Err(PhResult::NotFound);
        }
        // SAFETY: the plugin's own function with its own plugin data, while it is active;
        // `collect` matches the callback type and `texts` outlives the call.
        let code = unsafe {
            (enumerate.0)(
                plugin.plugin_data.get(),
                PhCommandInfoCallback(collect),
                (&mut texts as *mut Texts<'_>).cast(),
            )
        };
        match PhResult::from_code(code) {
            PhResult::Ok => Ok(()),
            PhResult::Panicked => {
                self.fault(plugin, "its command enumeration panicked");
                Err(PhResult::Panicked)
            }
            code => Err(code),
        }
    }
}
