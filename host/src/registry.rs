//! The host's registry: which plugins are active, which commands and subscriptions they hold,
//! and the dispatch of command enumerations. Events are routed by [`crate::events`].
//!
//! Locks are held only to read or change the maps, never while plugin code runs: dispatch copies
//! an `Arc` out of the map and calls through it, so a callback may call any host service
//! (reentrancy) and other threads keep going (thread safety).
//!
//! # Registrations and the end of a plugin
//!
//! A registration checks its plugin's state while holding the handle map's lock, and
//! [`Shared::remove_all_of`] takes that lock after the state changed: so a registration made on
//! any thread either lands before the removal (and is removed with the others) or sees the new
//! state and is refused. None is left behind. A registration's `destroy` runs exactly once: when
//! its last reference is dropped after it was removed, or, for a refused registration of a plugin
//! of ABI 1.2 or later, before the registering call returns.

#![allow(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)] // removed when this file is split (issue #11)

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustc_hash::FxHashMap;

use plugin_api::abi::{
    PhCommandCallback, PhCommandInfo, PhCommandInfoCallback, PhDestroyCallback, PhEventCallback,
    PhHandle, PhResult, PhResultCode, PhStr, PH_MAX_DESCRIPTION_LEN, PH_MAX_ENUMERATION_DEPTH,
    PH_MAX_USAGE_LEN,
};
use plugin_api::CommandInfo;

use crate::context::{PluginContext, PluginState};
use crate::events::{Events, ALL_TOPICS};

/// Lock helpers that survive a poisoned lock: the host's maps stay consistent across a panic
/// because each change is a single insert or remove.
pub(crate) trait LockExt<T> {
    fn read_or_recover(&self) -> std::sync::RwLockReadGuard<'_, T>;
    fn write_or_recover(&self) -> std::sync::RwLockWriteGuard<'_, T>;
}

impl<T> LockExt<T> for RwLock<T> {
    fn read_or_recover(&self) -> std::sync::RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write_or_recover(&self) -> std::sync::RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(|e| e.into_inner())
    }
}

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

/// What a handle refers to.
#[derive(Clone)]
enum Entry {
    Command(String),
    Subscription(String),
}

/// A registered command: the callback, and the text the host shows for it.
struct CommandRecord {
    registration: Arc<Registration<PhCommandCallback>>,
    description: Box<str>,
    usage: Box<str>,
    /// Whether the text came with the registration (ABI 1.2); if not, the host asks the plugin's
    /// `enumerate_commands` for it.
    described: bool,
}

/// A command as an enumeration lists it: handle (registration order), name, description, usage,
/// and whether the text is known.
type Listed = (PhHandle, String, Box<str>, Box<str>, bool);

/// What a plugin says about a command when it registers it (ABI 1.2), or `None` for the text of
/// an older plugin's enumeration.
pub(crate) struct CommandText<'a> {
    pub(crate) description: &'a str,
    pub(crate) usage: &'a str,
}

/// The host state shared by every plugin context.
pub(crate) struct Shared {
    /// Active plugins, in load order.
    pub(crate) plugins: RwLock<Vec<Arc<PluginContext>>>,
    commands: RwLock<FxHashMap<String, CommandRecord>>,
    /// Subscriptions and the dispatch of events.
    pub(crate) events: Events,
    /// Every registration by handle. Its lock is the outer one: registrations check their
    /// plugin's state under it (see the module docs).
    handles: Mutex<HashMap<PhHandle, (Arc<PluginContext>, Entry)>>,
    next_handle: AtomicU64,
}

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
    pub(crate) fn new() -> Shared {
        Shared {
            plugins: RwLock::new(Vec::new()),
            commands: RwLock::new(FxHashMap::default()),
            events: Events::new(),
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    /// A handle never given before by this host.
    pub(crate) fn new_handle(&self) -> PhHandle {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    fn lock_handles(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<PhHandle, (Arc<PluginContext>, Entry)>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the command `name` for the registration's owner, with its text (`None` for a
    /// plugin older than ABI 1.2). On error the registration is refused (see
    /// [`Registration::refuse`]).
    pub(crate) fn register_command(
        &self,
        registration: Registration<PhCommandCallback>,
        name: &str,
        text: Option<CommandText<'_>>,
    ) -> Result<PhHandle, PhResult> {
        if !plugin_api::abi::is_valid_name(name) {
            return Err(registration.refuse(PhResult::InvalidArgument));
        }
        if let Some(text) = &text {
            if text.description.len() > PH_MAX_DESCRIPTION_LEN
                || text.usage.len() > PH_MAX_USAGE_LEN
            {
                return Err(registration.refuse(PhResult::LimitExceeded));
            }
        }
        let owner = Arc::clone(&registration.owner);
        let handle = registration.handle;
        let mut handles = self.lock_handles();
        if let Err(code) = owner.reserve_registration() {
            drop(handles);
            return Err(registration.refuse(code));
        }
        let mut commands = self.commands.write_or_recover();
        if let Some(first) = commands.get(name) {
            let first = Arc::clone(&first.registration.owner);
            drop(commands);
            drop(handles);
            owner.release_registrations(1);
            log::warn!(
                "plugin `{}` ({}) cannot register the command `{name}`: plugin `{}` ({}) registered it first",
                owner.name,
                owner.path,
                first.name,
                first.path
            );
            return Err(registration.refuse(PhResult::AlreadyExists));
        }
        let (description, usage, described) = match text {
            Some(text) => (text.description.into(), text.usage.into(), true),
            None => (Box::default(), Box::default(), false),
        };
        commands.insert(
            name.to_owned(),
            CommandRecord {
                registration: Arc::new(registration),
                description,
                usage,
                described,
            },
        );
        drop(commands);
        handles.insert(handle, (owner, Entry::Command(name.to_owned())));
        Ok(handle)
    }

    /// Subscribes the registration to `topic`. On error the registration is refused (see
    /// [`Registration::refuse`]).
    pub(crate) fn subscribe(
        &self,
        registration: Registration<PhEventCallback>,
        topic: &str,
    ) -> Result<PhHandle, PhResult> {
        if topic != ALL_TOPICS && !plugin_api::abi::is_valid_topic(topic) {
            return Err(registration.refuse(PhResult::InvalidArgument));
        }
        let owner = Arc::clone(&registration.owner);
        let handle = registration.handle;
        let mut handles = self.lock_handles();
        if let Err(code) = owner.reserve_registration() {
            drop(handles);
            return Err(registration.refuse(code));
        }
        self.events.add(topic, &Arc::new(registration));
        handles.insert(handle, (owner, Entry::Subscription(topic.to_owned())));
        Ok(handle)
    }

    /// Ends the registration `handle` of `owner`; its `destroy` runs once no dispatch uses it.
    pub(crate) fn unregister(
        &self,
        owner: &PluginContext,
        handle: PhHandle,
    ) -> Result<(), PhResult> {
        let entry = {
            let mut handles = self.lock_handles();
            match handles.get(&handle) {
                Some((registered_by, _)) if std::ptr::eq(Arc::as_ptr(registered_by), owner) => {}
                _ => return Err(PhResult::UnknownHandle),
            }
            handles.remove(&handle).map(|(_, entry)| entry)
        };
        match entry {
            Some(entry) => {
                owner.release_registrations(1);
                self.remove_entry(handle, &entry);
                Ok(())
            }
            None => Err(PhResult::UnknownHandle),
        }
    }

    /// Removes one registration from the maps and deactivates it; it is dropped (and its
    /// `destroy` runs, unless a dispatch still holds it) here, outside every lock.
    fn remove_entry(&self, handle: PhHandle, entry: &Entry) {
        match entry {
            Entry::Command(name) => {
                let removed = {
                    let mut commands = self.commands.write_or_recover();
                    match commands.get(name) {
                        Some(r) if r.registration.handle == handle => commands.remove(name),
                        _ => None,
                    }
                };
                if let Some(r) = removed {
                    r.registration.deactivate();
                }
            }
            Entry::Subscription(topic) => drop(self.events.remove(topic, handle)),
        }
    }

    /// Removes every registration of `owner` (at shutdown, a failed init, or a fault). The
    /// caller has changed the owner's state first, so no registration can follow.
    pub(crate) fn remove_all_of(&self, owner: &PluginContext) {
        debug_assert!(!owner.receives_calls());
        let entries: Vec<(PhHandle, Entry)> = {
            let mut handles = self.lock_handles();
            let mine: Vec<PhHandle> = handles
                .iter()
                .filter(|(_, (o, _))| std::ptr::eq(Arc::as_ptr(o), owner))
                .map(|(h, _)| *h)
                .collect();
            mine.into_iter()
                .filter_map(|h| handles.remove(&h).map(|(_, e)| (h, e)))
                .collect()
        };
        owner.release_registrations(entries.len());
        for (handle, entry) in &entries {
            self.remove_entry(*handle, entry);
        }
    }

    /// Looks up a command.
    pub(crate) fn command(&self, name: &str) -> Option<Arc<Registration<PhCommandCallback>>> {
        self.commands
            .read_or_recover()
            .get(name)
            .map(|r| Arc::clone(&r.registration))
    }

    /// The topics of all subscriptions with the plugin of each, sorted.
    pub(crate) fn subscription_topics(&self) -> Vec<(String, String)> {
        let mut topics: Vec<(String, String)> = self
            .lock_handles()
            .values()
            .filter_map(|(owner, entry)| match entry {
                Entry::Subscription(topic) => Some((topic.clone(), owner.name.clone())),
                Entry::Command(_) => None,
            })
            .collect();
        topics.sort();
        topics
    }

    /// The names of all registered commands, sorted, with their plugins.
    pub(crate) fn command_names(&self) -> Vec<(String, String)> {
        let mut names: Vec<(String, String)> = self
            .commands
            .read_or_recover()
            .iter()
            .map(|(name, r)| (name.clone(), r.registration.owner.name.clone()))
            .collect();
        names.sort();
        names
    }

    /// Delivers an event to every subscriber of `topic` and of `*`, on this thread.
    ///
    /// Returns [`PhResult::InvalidArgument`] for an invalid topic.
    pub(crate) fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), PhResult> {
        if !crate::events::is_valid_topic(topic.as_bytes()) {
            return Err(PhResult::InvalidArgument);
        }
        self.publish_valid(topic, payload)
    }

    /// [`Shared::publish`] of a topic already checked with [`crate::events::is_valid_topic`].
    #[inline]
    pub(crate) fn publish_valid(&self, topic: &str, payload: &[u8]) -> Result<(), PhResult> {
        self.events
            .publish_valid(topic, payload, |registration, code| {
                self.handler_failed(registration, topic, code)
            })
    }

    /// Reports a handler that did not return `Ok`; faults its plugin if it panicked.
    #[cold]
    fn handler_failed(
        &self,
        registration: &Registration<PhEventCallback>,
        topic: &str,
        code: PhResultCode,
    ) {
        match PhResult::from_code(code) {
            PhResult::Ok => {}
            PhResult::Panicked => self.fault(
                &registration.owner,
                &format!("its handler of event `{topic}` panicked"),
            ),
            code => log::warn!(
                "plugin `{}`: handler of event `{topic}` failed: {code}",
                registration.owner.name
            ),
        }
    }

    /// Marks `plugin` faulted after a panic in one of its callbacks: its registrations are
    /// removed and it gets no further calls, except each registration's `destroy`, once, when no
    /// dispatch uses it any more. Its `shutdown` is never called, so its plugin data is never
    /// released. Reported once.
    pub(crate) fn fault(&self, plugin: &Arc<PluginContext>, why: &str) {
        let previous = plugin.state();
        if matches!(previous, PluginState::Faulted | PluginState::ShutDown) {
            return;
        }
        if !plugin.transition(previous, PluginState::Faulted) {
            return;
        }
        log::error!(
            "plugin `{}` is faulted: {why}; its callbacks are unregistered and it gets no more calls",
            plugin.name
        );
        *plugin
            .fault_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(why.to_owned());
        self.remove_all_of(plugin);
        self.plugins
            .write_or_recover()
            .retain(|p| !Arc::ptr_eq(p, plugin));
    }

    /// A snapshot of the active plugins, in load order.
    pub(crate) fn active_plugins(&self) -> Vec<Arc<PluginContext>> {
        self.plugins.read_or_recover().clone()
    }

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
            .filter(|(_, r)| Arc::ptr_eq(&r.registration.owner, plugin))
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
                // SAFETY: the plugin passes a valid info, or NULL, for the duration of the call.
                let Some(info) = (unsafe { info.as_ref() }) else {
                    return false;
                };
                if (info.struct_size as usize) < std::mem::size_of::<PhCommandInfo>() {
                    return true;
                }
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
