//! The host's registry, [`Shared`]: which plugins are active, which registrations each holds (by
//! handle), and the end of registrations: unregister, the removal at shutdown, faults. Each kind
//! of registration lives in the module of its concern: commands in [`crate::commands`],
//! subscriptions and their dispatch in [`crate::events`], enumerations in
//! [`crate::enumerate`]; [`Registration`] itself in [`crate::registration`].
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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustc_hash::FxHashMap;

use plugin_api::abi::{PhHandle, PhResult};

use crate::commands::CommandRecord;
use crate::context::{PluginContext, PluginState};
use crate::events::Events;
pub(crate) use crate::registration::Registration;

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

/// What a handle refers to.
#[derive(Clone)]
pub(crate) enum Entry {
    Command(String),
    Subscription(String),
    /// A provided interface, by id and major.
    Interface((String, u16)),
    /// A reference to an interface, queried by the handle's owner.
    Reference(crate::interfaces::Reference),
}

/// The host state shared by every plugin context.
pub(crate) struct Shared {
    /// Active plugins, in load order.
    pub(crate) plugins: RwLock<Vec<Arc<PluginContext>>>,
    /// Commands by name.
    pub(crate) commands: RwLock<FxHashMap<String, CommandRecord>>,
    /// Provided interfaces, by id and major.
    pub(crate) interfaces: RwLock<HashMap<(String, u16), Arc<crate::interfaces::Provided>>>,
    /// Subscriptions and the dispatch of events.
    pub(crate) events: Events,
    /// Every registration by handle. Its lock is the outer one: registrations check their
    /// plugin's state under it (see the module docs).
    handles: Mutex<HashMap<PhHandle, (Arc<PluginContext>, Entry)>>,
    next_handle: AtomicU64,
    /// Where plugins' log records and published events are reported; `None` for the `log`
    /// facade and no event reports (the default, checked with one branch on the call path).
    pub(crate) observer: Option<Arc<dyn crate::Observer>>,
    /// The registrations of a reload's new version, until they are swapped in ([`crate::reload`]).
    pub(crate) staging: crate::reload::Staging,
    /// In an isolated plugin's child process: the link to the host, told of each registration
    /// ([`crate::isolate::child`]).
    pub(crate) child: std::sync::OnceLock<Arc<crate::isolate::child::ChildLink>>,
    /// The isolated plugins of this host ([`crate::isolate`]).
    pub(crate) isolated: crate::isolate::Registry,
}

impl Shared {
    pub(crate) fn new(observer: Option<Arc<dyn crate::Observer>>) -> Shared {
        Shared {
            observer,
            plugins: RwLock::new(Vec::new()),
            commands: RwLock::new(FxHashMap::default()),
            interfaces: RwLock::new(HashMap::new()),
            events: Events::new(),
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            staging: crate::reload::Staging::default(),
            child: std::sync::OnceLock::new(),
            isolated: crate::isolate::Registry::default(),
        }
    }

    /// A handle never given before by this host.
    pub(crate) fn new_handle(&self) -> PhHandle {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn lock_handles(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<PhHandle, (Arc<PluginContext>, Entry)>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `registration`: under the handle map's lock, reserves one of its owner's
    /// registrations (see [`PluginContext::reserve_registration`]), lets `insert` put it in its
    /// own map, then records its handle as `entry`. On error the registration is refused (see
    /// [`Registration::refuse`]): `insert` hands it back with the code.
    pub(crate) fn add<C>(
        &self,
        registration: Registration<C>,
        entry: Entry,
        insert: impl FnOnce(Registration<C>) -> Result<(), (Registration<C>, PhResult)>,
    ) -> Result<PhHandle, PhResult> {
        let owner = Arc::clone(&registration.owner);
        let handle = registration.handle;
        let mut handles = self.lock_handles();
        if let Err(code) = owner.reserve_registration() {
            drop(handles);
            return Err(registration.refuse(code));
        }
        if let Err((registration, code)) = insert(registration) {
            drop(handles);
            owner.release_registrations(1);
            return Err(registration.refuse(code));
        }
        handles.insert(handle, (owner, entry));
        Ok(handle)
    }

    /// Ends the registration `handle` of `owner`; its `destroy` runs once no dispatch uses it.
    pub(crate) fn unregister(
        &self,
        owner: &PluginContext,
        handle: PhHandle,
    ) -> Result<(), PhResult> {
        let (entry, unstaged) = {
            let mut handles = self.lock_handles();
            match handles.get(&handle) {
                Some((registered_by, _)) if std::ptr::eq(Arc::as_ptr(registered_by), owner) => {}
                _ => return Err(PhResult::UnknownHandle),
            }
            let entry = handles.remove(&handle).map(|(_, entry)| entry);
            // A reload's new version during its `init`: its registration leaves the staging
            // under this lock, where the swap moves the staging (see `crate::reload`).
            let unstaged = match owner.is_staged() {
                true => self.staging.take_handle(handle),
                false => None,
            };
            (entry, unstaged)
        };
        if let (Some(child), Some(_)) = (self.child.get(), &entry) {
            child.unregistered(handle);
        }
        match entry {
            Some(entry) => {
                owner.release_registrations(1);
                if unstaged.is_none() {
                    self.remove_entry(handle, &entry);
                }
                drop(unstaged);
                Ok(())
            }
            None => Err(PhResult::UnknownHandle),
        }
    }

    /// Removes one registration from the maps and deactivates it; it is dropped (and its
    /// `destroy` runs, unless a dispatch still holds it) here, outside every lock.
    pub(crate) fn remove_entry(&self, handle: PhHandle, entry: &Entry) {
        // A registration of a reload's new version that is not swapped in yet (its `init`
        // failed: no swap can come any more).
        if let Some(unstaged) = self.staging.take_handle(handle) {
            drop(unstaged);
            return;
        }
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
            Entry::Interface(key) => self.end_interface(handle, key),
            Entry::Reference(reference) => self.end_reference(reference),
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

    /// Marks `plugin` faulted after a panic in one of its callbacks: its registrations are
    /// removed and it gets no further calls, except each registration's `destroy`, once, when no
    /// dispatch uses it any more. Its `shutdown` is never called, so its plugin data is never
    /// released. Reported once.
    pub(crate) fn fault(&self, plugin: &Arc<PluginContext>, why: &str) {
        // In an isolated plugin's child the host reports the fault (`crate::isolate`).
        self.fault_with(plugin, why, self.child.get().is_none());
    }

    /// [`Shared::fault`], logging the reason only if `report` (a caller that reports it in its
    /// own error passes `false`, so that the user reads it once).
    pub(crate) fn fault_with(&self, plugin: &Arc<PluginContext>, why: &str, report: bool) {
        let previous = plugin.state();
        if matches!(previous, PluginState::Faulted | PluginState::ShutDown) {
            return;
        }
        if !plugin.transition(previous, PluginState::Faulted) {
            return;
        }
        if report {
            log::error!(
                "plugin `{}` is faulted: {why}; its callbacks are unregistered and it gets no more calls",
                plugin.name
            );
        }
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
}
