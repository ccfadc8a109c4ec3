//! Hot reload and unload: [`PluginHost::reload`] replaces a plugin by a new build of its file
//! while the host serves, [`PluginHost::unload`] removes one.
//!
//! # A reload, step by step
//!
//! 1. The new build is loaded from a private copy of the file ([`crate::copy`]) and checked as any
//!    load is (trust rule, ABI version, layout, sizes, name), and must carry the same plugin name.
//! 2. Its `init` runs while the old version keeps serving. The new version's registrations are
//!    **staged** ([`Staging`]): they get handles and count against its limit, but no dispatch sees
//!    them, and its command names are checked against the other plugins' names (not against the
//!    old version's). Its handlers get no events and its commands cannot be run before the swap.
//! 3. If anything failed so far, the staged registrations are dropped (each `destroy` runs once),
//!    the new version gets no more calls, and the old version, which never stopped, stays: the
//!    reload returns the one-line reason.
//! 4. **The swap**, under the registry's handle lock (so no registration of either version can
//!    slip in between): the new version becomes active; the commands map loses the old version's
//!    commands and gains the new version's in one write; the event routes lose the old version's
//!    subscriptions and gain the new version's in one new snapshot; the interfaces map loses the
//!    old version's provisions and gains the new version's in one write (references to the old
//!    ones end after the lock, with the event [`crate::INTERFACE_REPLACED_TOPIC`]); the new
//!    version takes the old one's place among the plugins. From then on the old version (*retired*) refuses
//!    registrations with `SHUT_DOWN`. Both versions carry the plugin's name during the swap:
//!    the maps hold the commands of only one of them at any time.
//! 5. A grace period ([`crate::quiesce`]): every call that found the old version before the swap
//!    (a command running, a publish dispatching through the old routes, an enumeration) returns.
//!    The old version stays active until then, so a dispatch that started before the swap still
//!    reaches it: **every event reaches exactly one of the two versions**. A command looked up
//!    before the swap runs the old version; one looked up after it runs the new one; no lookup
//!    finds none.
//! 6. The old version is shut down as [`PluginHost::shutdown`] does it (a second grace period,
//!    then its `shutdown`), and its library stays mapped, as every library does. Just before its
//!    `shutdown`, when no call into it runs or can start, its `save_state` (ABI 1.4, optional)
//!    writes the state to hand over.
//! 7. **State handoff**: the new version's `restore_state` (optional) gets those bytes. It has
//!    been serving since the swap, and the old version served every call before it (step 5), so
//!    the saved state and the new version's own state cover disjoint calls: the new version
//!    merges the two, and nothing is counted twice or lost. A failure (or a new build without
//!    `restore_state`) loses the state with a one-line warning; the new version goes on serving.
//!
//! The commands and the subscriptions each switch in one step; the two switches follow each
//! other within the same critical section, so a caller may (for a few instructions) run a new
//! command while an event still goes to the old version: both versions are whole and serving
//! then.

use std::sync::{Arc, Mutex};

use plugin_api::abi::{PhBytes, PhEventCallback, PhHandle, PhResult, PhStr};

use crate::commands::CommandRecord;
use crate::context::{PluginContext, PluginState};
use crate::error::{LoadErrorKind, ReloadError};
use crate::interfaces::Provided;
use crate::registry::{Entry, LockExt, Registration, Shared};
use crate::PluginHost;

/// The staged registrations of the new versions that reloads are initialising (one at a time in
/// practice: reloads are serialised).
#[derive(Default)]
pub(crate) struct Staging {
    areas: Mutex<Vec<Area>>,
}

/// A registration taken out of the staging by [`Staging::take_handle`]: dropping it (outside
/// every lock) releases it.
pub(crate) enum Unstaged {
    /// A staged command.
    Command(#[allow(dead_code)] CommandRecord),
    /// A staged subscription.
    Subscription(#[allow(dead_code)] Arc<Registration<PhEventCallback>>),
    /// A staged interface (no caller can hold a reference to it yet).
    Interface(#[allow(dead_code)] Arc<Provided>),
}

/// What one new version registered during its `init`.
struct Area {
    /// The new version.
    plugin: Arc<PluginContext>,
    /// The version it replaces.
    replaces: Arc<PluginContext>,
    /// Its commands, by name, in registration order.
    commands: Vec<(String, CommandRecord)>,
    /// Its subscriptions, by topic, in subscription order.
    subscriptions: Vec<(String, Arc<Registration<PhEventCallback>>)>,
    /// The interfaces it provides, by id and major.
    interfaces: Vec<((String, u16), Arc<Provided>)>,
}

/// What a staged plugin's command registration needs to know: see [`Staging::lookup`].
pub(crate) struct StagedLookup {
    /// Whether the plugin already staged a command of that name (an interface of that id and
    /// major, for [`Staging::lookup_interface`]).
    pub(crate) already_staged: bool,
    replaces: Option<Arc<PluginContext>>,
}

impl StagedLookup {
    /// Whether `owner` is the version that the staged plugin replaces (whose command names it
    /// may take).
    pub(crate) fn replaces(&self, owner: &Arc<PluginContext>) -> bool {
        self.replaces
            .as_ref()
            .is_some_and(|old| Arc::ptr_eq(old, owner))
    }
}

impl Staging {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Area>> {
        self.areas.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts staging the registrations of `plugin`, the new version of `replaces`.
    fn begin(&self, plugin: &Arc<PluginContext>, replaces: &Arc<PluginContext>) {
        plugin.stage();
        self.lock().push(Area {
            plugin: Arc::clone(plugin),
            replaces: Arc::clone(replaces),
            commands: Vec::new(),
            subscriptions: Vec::new(),
            interfaces: Vec::new(),
        });
    }

    /// What the staged `plugin` has of the command `name`, and which version it replaces.
    pub(crate) fn lookup(&self, plugin: &Arc<PluginContext>, name: &str) -> StagedLookup {
        self.lookup_by(plugin, |a| a.commands.iter().any(|(n, _)| n == name))
    }

    /// What the staged `plugin` has of the interface `key`, and which version it replaces.
    pub(crate) fn lookup_interface(
        &self,
        plugin: &Arc<PluginContext>,
        key: &(String, u16),
    ) -> StagedLookup {
        self.lookup_by(plugin, |a| a.interfaces.iter().any(|(k, _)| k == key))
    }

    /// Whether `staged` holds for the area of `plugin`, and which version it replaces.
    fn lookup_by(
        &self,
        plugin: &Arc<PluginContext>,
        staged: impl Fn(&Area) -> bool,
    ) -> StagedLookup {
        let areas = self.lock();
        let area = areas.iter().find(|a| Arc::ptr_eq(&a.plugin, plugin));
        StagedLookup {
            already_staged: area.is_some_and(staged),
            replaces: area.map(|a| Arc::clone(&a.replaces)),
        }
    }

    /// Stages an interface its owner provides; gives it back as [`Staging::add_command`] does.
    pub(crate) fn add_interface(
        &self,
        key: (String, u16),
        provided: Box<Provided>,
    ) -> Result<(), Box<Provided>> {
        let mut areas = self.lock();
        match areas
            .iter_mut()
            .find(|a| Arc::ptr_eq(&a.plugin, &provided.registration.owner))
        {
            Some(area) => {
                area.interfaces.push((key, Arc::from(provided)));
                Ok(())
            }
            None => Err(provided),
        }
    }

    /// Stages a command of `plugin` (checked by the caller with [`Staging::lookup`], under the
    /// handle lock). Gives the record back if `plugin` has no staging area, which cannot happen:
    /// a plugin can register only while it initialises, and its area exists until its reload
    /// ends (the caller refuses the registration then).
    pub(crate) fn add_command(
        &self,
        plugin: &Arc<PluginContext>,
        name: &str,
        record: CommandRecord,
    ) -> Result<(), CommandRecord> {
        let mut areas = self.lock();
        match areas.iter_mut().find(|a| Arc::ptr_eq(&a.plugin, plugin)) {
            Some(area) => {
                area.commands.push((name.to_owned(), record));
                Ok(())
            }
            None => Err(record),
        }
    }

    /// Stages a subscription of its owner; gives it back as [`Staging::add_command`] does.
    pub(crate) fn add_subscription(
        &self,
        topic: &str,
        registration: Arc<Registration<PhEventCallback>>,
    ) -> Result<(), Arc<Registration<PhEventCallback>>> {
        let mut areas = self.lock();
        match areas
            .iter_mut()
            .find(|a| Arc::ptr_eq(&a.plugin, &registration.owner))
        {
            Some(area) => {
                area.subscriptions.push((topic.to_owned(), registration));
                Ok(())
            }
            None => Err(registration),
        }
    }

    /// Takes the staged registration `handle` out of the staging, if it is there, for the caller
    /// to drop (its `destroy` runs once no one holds it) outside every lock.
    ///
    /// `unregister` calls it under the handle lock, where the swap moves the staging: a staged
    /// registration is either unregistered here or swapped in whole, never lost in between.
    pub(crate) fn take_handle(&self, handle: PhHandle) -> Option<Unstaged> {
        let mut areas = self.lock();
        for area in areas.iter_mut() {
            if let Some(at) = area
                .commands
                .iter()
                .position(|(_, r)| r.registration.handle == handle)
            {
                return Some(Unstaged::Command(area.commands.remove(at).1));
            }
            if let Some(at) = area
                .subscriptions
                .iter()
                .position(|(_, r)| r.handle == handle)
            {
                return Some(Unstaged::Subscription(area.subscriptions.remove(at).1));
            }
            if let Some(at) = area
                .interfaces
                .iter()
                .position(|(_, p)| p.registration.handle == handle)
            {
                let provided = area.interfaces.remove(at).1;
                provided.end();
                return Some(Unstaged::Interface(provided));
            }
        }
        None
    }

    /// Takes the area of `plugin` out of the staging.
    fn take(&self, plugin: &Arc<PluginContext>) -> Option<Area> {
        let mut areas = self.lock();
        let at = areas.iter().position(|a| Arc::ptr_eq(&a.plugin, plugin))?;
        Some(areas.remove(at))
    }

    /// The first interface that the version the staged `plugin` replaces provides now, that a
    /// plugin requires (not optionally), and that the staged `plugin` does not provide in that
    /// major with at least the minor required: the requirement, and the plugin.
    fn dropped_requirement(
        &self,
        plugin: &Arc<PluginContext>,
        shared: &Shared,
    ) -> Option<(String, String)> {
        let areas = self.lock();
        let area = areas.iter().find(|a| Arc::ptr_eq(&a.plugin, plugin))?;
        let interfaces = shared.interfaces.read_or_recover();
        let users = shared.plugins.read_or_recover();
        interfaces
            .iter()
            .filter(|(_, p)| Arc::ptr_eq(&p.registration.owner, &area.replaces))
            .find_map(|(key, _)| {
                let staged = area.interfaces.iter().find(|(k, _)| k == key);
                users
                    .iter()
                    .filter(|user| !Arc::ptr_eq(user, &area.replaces))
                    .find_map(|user| {
                        let need = user.requires.iter().find(|r| {
                            !r.optional
                                && r.id == key.0
                                && r.major == key.1
                                && staged.is_none_or(|(_, s)| s.minor < r.minor)
                        })?;
                        Some((need.to_string(), user.name.clone()))
                    })
            })
    }

    /// The first command of the staged `plugin` whose name another plugin than the one it
    /// replaces holds now, with that plugin.
    fn conflict(&self, plugin: &Arc<PluginContext>, shared: &Shared) -> Option<(String, String)> {
        let areas = self.lock();
        let area = areas.iter().find(|a| Arc::ptr_eq(&a.plugin, plugin))?;
        let commands = shared.commands.read_or_recover();
        area.commands.iter().find_map(|(name, _)| {
            let live = commands.get(name)?;
            let owner = &live.registration.owner;
            (!Arc::ptr_eq(owner, &area.replaces)).then(|| (name.clone(), owner.name.clone()))
        })
    }
}

/// Why the swap did not happen; the new version's `init` had succeeded.
enum SwapRefused {
    /// The new version faulted during its `init` (it gets no call).
    Faulted,
    /// Another plugin took the name of one of its commands meanwhile (it gets its `shutdown`).
    Taken {
        /// The command.
        command: String,
        /// The plugin that holds it.
        plugin: String,
    },
    /// It does not provide an interface that the old version provides and another plugin
    /// requires (it gets its `shutdown`).
    Dropped {
        /// The requirement, such as `plughost.kv 1.0`.
        interface: String,
        /// The plugin that requires it.
        plugin: String,
    },
}

impl Shared {
    /// The swap of a reload (step 4 of the module docs): `new` (initialised, staged) takes the
    /// place of `old`. Returns what it removed of the old version, for the caller to drop after
    /// every lock.
    fn swap(
        &self,
        old: &Arc<PluginContext>,
        new: &Arc<PluginContext>,
    ) -> Result<Removed, SwapRefused> {
        let mut handles = self.lock_handles();
        if let Some((command, plugin)) = self.staging.conflict(new, self) {
            return Err(SwapRefused::Taken { command, plugin });
        }
        if let Some((interface, plugin)) = self.staging.dropped_requirement(new, self) {
            return Err(SwapRefused::Dropped { interface, plugin });
        }
        if !new.activate() {
            return Err(SwapRefused::Faulted);
        }
        let area = self.staging.take(new);
        // From here on, under the handle lock: the new version's registrations are live, the
        // old version's are refused.
        new.unstage();
        old.retire();
        let mine: Vec<PhHandle> = handles
            .iter()
            .filter(|(_, (owner, _))| Arc::ptr_eq(owner, old))
            .map(|(handle, _)| *handle)
            .collect();
        let old_entries: Vec<(PhHandle, Entry)> = mine
            .into_iter()
            .filter_map(|h| handles.remove(&h).map(|(_, entry)| (h, entry)))
            .collect();
        old.release_registrations(old_entries.len());
        let (staged_commands, staged_subscriptions, staged_interfaces) = match area {
            Some(area) => (area.commands, area.subscriptions, area.interfaces),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let mut removed = Removed::default();
        {
            let mut commands = self.commands.write_or_recover();
            for (handle, entry) in &old_entries {
                if let Entry::Command(name) = entry {
                    if commands
                        .get(name)
                        .is_some_and(|r| r.registration.handle == *handle)
                    {
                        removed.commands.extend(commands.remove(name));
                    }
                }
            }
            for (name, record) in staged_commands {
                if let Some(displaced) = commands.insert(name, record) {
                    // Not possible (`conflict` checked every name under this lock); kept
                    // rather than lost.
                    removed.commands.push(displaced);
                }
            }
        }
        {
            // The old version's interfaces leave the map and the new version's enter it, in one
            // write: a query finds one or the other. References to the old ones end after the
            // locks (`end_replaced`).
            let mut interfaces = self.interfaces.write_or_recover();
            for (handle, entry) in &old_entries {
                if let Entry::Interface(key) = entry {
                    if interfaces
                        .get(key)
                        .is_some_and(|p| p.registration.handle == *handle)
                    {
                        removed.interfaces.extend(interfaces.remove(key));
                    }
                }
            }
            for (key, provided) in staged_interfaces {
                removed.replacing.push(key.clone());
                if let Some(displaced) = interfaces.insert(key, provided) {
                    // Not possible (the staging checked the key under the handle lock).
                    removed.interfaces.push(displaced);
                }
            }
        }
        let old_subscriptions: Vec<(String, PhHandle)> = old_entries
            .iter()
            .filter_map(|(handle, entry)| match entry {
                Entry::Subscription(topic) => Some((topic.clone(), *handle)),
                _ => None,
            })
            .collect();
        // The old version's references to other plugins' interfaces end with it (the new
        // version queried its own during its `init`).
        removed.references = old_entries
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::Reference(_)))
            .cloned()
            .collect();
        removed.subscriptions = self
            .events
            .replace(&old_subscriptions, staged_subscriptions);
        {
            let mut plugins = self.plugins.write_or_recover();
            match plugins.iter().position(|p| Arc::ptr_eq(p, old)) {
                Some(at) => plugins[at] = Arc::clone(new),
                // The old version had faulted: the new one comes last, as any plugin whose
                // `init` succeeds now.
                None => plugins.push(Arc::clone(new)),
            }
        }
        drop(handles);
        Ok(removed)
    }
}

/// The old version's registrations that a swap removed from the maps: dropped (their `destroy`
/// running once no dispatch holds them) after every lock is released.
#[derive(Default)]
struct Removed {
    commands: Vec<CommandRecord>,
    subscriptions: Vec<Arc<Registration<PhEventCallback>>>,
    /// The old version's interface references, ended by [`Shared::end_references`].
    references: Vec<(PhHandle, Entry)>,
    /// The old version's provided interfaces, ended by [`Shared::end_references`].
    interfaces: Vec<Arc<Provided>>,
    /// The keys of the interfaces the new version provides.
    replacing: Vec<(String, u16)>,
}

impl Shared {
    /// Ends interface references that a swap took from the old version, and the interfaces it
    /// provided (outside every lock): their callers' references read `alive` 0 from now on, and
    /// are told by an event, [`crate::INTERFACE_REPLACED_TOPIC`] when the new version provides
    /// the same id and major (query it again), [`crate::INTERFACE_ENDED_TOPIC`] otherwise.
    fn end_references(&self, removed: &Removed) {
        for (handle, entry) in &removed.references {
            self.remove_entry(*handle, entry);
        }
        for provided in &removed.interfaces {
            let key = (provided.id.clone(), provided.major);
            self.end_provided(provided, removed.replacing.contains(&key));
        }
    }
}

/// What [`PluginHost::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// The plugin's name.
    pub name: String,
    /// The version of the build it replaced.
    pub old_version: String,
    /// The version of the new build.
    pub new_version: String,
    /// The file it was loaded from (a private copy of it, in fact).
    pub path: std::path::PathBuf,
    /// What became of the old build's state (ABI 1.4 state handoff).
    pub state: StateHandoff,
}

/// What became of a plugin's state in a reload: the old build's `save_state` writes it just
/// before its `shutdown`, the new build's `restore_state` merges it into what it has (see
/// [`plugin_api::abi::PhSaveStateFn`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateHandoff {
    /// The old build hands no state over (it has no `save_state`).
    NotSaved,
    /// The new build took the state: this many bytes.
    HandedOver(usize),
    /// The state was lost, for the reason given (one line): the old build's `save_state` or the
    /// new build's `restore_state` failed, or the new build takes no state.
    Lost(String),
}

/// The old build's state, as its `save_state` left it.
pub(crate) enum SavedState {
    /// It has no `save_state`.
    NotSaved,
    /// The bytes it wrote.
    Saved(Vec<u8>),
    /// Its `save_state` failed: why.
    Failed(String),
}

/// Calls `plugin`'s `save_state`, if it has one. The caller made sure that no call into the
/// plugin is under way or will start (it is shutting down, after the grace period), so the plugin
/// data may be passed. A panic faults the plugin.
pub(crate) fn save_state(plugin: &Arc<PluginContext>) -> SavedState {
    let Some(save) = plugin.vtable().save_state else {
        return SavedState::NotSaved;
    };
    let mut state = Vec::new();
    let sink = plugin_api::abi::PhBytesSink {
        context: std::ptr::addr_of_mut!(state).cast(),
        write: append,
    };
    // SAFETY: the plugin's own function with the data its `init` returned, while no other call
    // into the plugin runs (the caller's contract); `sink` and the vector it points to outlive
    // the call, and `append` is the matching writer.
    let code = unsafe { (save.0)(plugin.plugin_data.get(), &sink) };
    match PhResult::from_code(code) {
        PhResult::Ok => SavedState::Saved(state),
        PhResult::Panicked => {
            plugin.shared.fault(plugin, "its save_state panicked");
            SavedState::Failed("its save_state panicked".to_owned())
        }
        code => SavedState::Failed(format!("save_state failed: {code}")),
    }
}

/// The `write` of the sink given to `save_state`: appends to the `Vec<u8>` behind `context`.
unsafe extern "C" fn append(context: *mut std::ffi::c_void, bytes: PhBytes) {
    crate::boundary::guard("save_state's write", (), || {
        // SAFETY: `context` is the vector of `save_state`, alive and used by nothing else while
        // the plugin's `save_state` runs, which is the only time this is called.
        let state = unsafe { &mut *context.cast::<Vec<u8>>() };
        // SAFETY: the plugin passes a view valid for the call.
        if let Ok(bytes) = unsafe { bytes.to_bytes() } {
            state.extend_from_slice(bytes);
        }
    });
}

/// Gives `saved`, the state of the build `from_version` that `plugin` replaced, to `plugin`'s
/// `restore_state`. A panic faults the plugin.
fn restore_state(
    plugin: &Arc<PluginContext>,
    from_version: &str,
    saved: SavedState,
) -> StateHandoff {
    let state = match saved {
        SavedState::NotSaved => return StateHandoff::NotSaved,
        SavedState::Failed(why) => return StateHandoff::Lost(why),
        SavedState::Saved(state) => state,
    };
    let Some(restore) = plugin.vtable().restore_state else {
        return StateHandoff::Lost(format!(
            "the new build has no restore_state ({} bytes saved)",
            state.len()
        ));
    };
    if plugin.state() != PluginState::Active {
        return StateHandoff::Lost("the new build is no longer active".to_owned());
    }
    // SAFETY: the plugin's own function with the data its `init` returned, while it is active
    // (checked above; only this thread, which holds the host's lifecycle lock, could shut it
    // down); the views outlive the call.
    let code = unsafe {
        (restore.0)(
            plugin.plugin_data.get(),
            PhStr::new(from_version),
            PhBytes::new(&state),
        )
    };
    match PhResult::from_code(code) {
        PhResult::Ok => StateHandoff::HandedOver(state.len()),
        PhResult::Panicked => {
            plugin.shared.fault(plugin, "its restore_state panicked");
            StateHandoff::Lost("its restore_state panicked".to_owned())
        }
        code => StateHandoff::Lost(format!("restore_state failed: {code}")),
    }
}

impl PluginHost {
    /// Replaces the plugin `name` by a new build of the file it was loaded from, while the host
    /// serves: commands may run and events be published on other threads meanwhile.
    ///
    /// The new build is loaded from a private copy of the file (see
    /// [`PluginHost::set_private_copies`]), checked as [`PluginHost::load`] checks a file (trust
    /// rule, ABI version, type layout, sizes) and must carry the same plugin name; then its
    /// `init` runs, with its registrations staged. If anything fails, the old version stays in
    /// place and serving, and the error says why in one line. Otherwise the old version's
    /// registrations (commands, subscriptions, interfaces) are replaced by the new version's in one step as
    /// seen by callers: no command is missing in between, and every event published meanwhile
    /// reaches exactly one of the two versions. The old version then gets its `shutdown` (after
    /// the calls under way have returned), and its library stays mapped, as every library does.
    /// The new version keeps the old one's place in the load order (a faulted plugin reloaded
    /// comes last) and reads the host's configuration as it is now.
    ///
    /// A faulted plugin can be reloaded too. The module docs of `reload.rs` give the steps.
    ///
    /// # Errors
    ///
    /// [`ReloadError::UnknownPlugin`] if no plugin of that name is loaded (or it was shut down);
    /// [`ReloadError::Linked`] for a plugin linked into the application;
    /// [`ReloadError::Load`] if the new build is refused or its `init` fails;
    /// [`ReloadError::NameChanged`] if the file now holds another plugin;
    /// [`ReloadError::Taken`] if another plugin registered one of the new build's command names
    /// while it initialised; [`ReloadError::DropsInterface`] if the new build does not provide
    /// an interface the old one provides and another plugin requires;
    /// [`ReloadError::InsideCall`] when called from inside a callback. In every case the old
    /// version is unchanged.
    ///
    /// The old build's state is handed to the new build if they support it (ABI 1.4;
    /// [`Reloaded::state`] says what happened).
    ///
    /// # Thread-safety
    ///
    /// Reloads and unloads run one at a time; [`PluginHost::load`] and
    /// [`PluginHost::shutdown`] cannot run meanwhile (they take `&mut self`). Must not be called
    /// from inside a plugin's or the application's callback (it would wait for itself).
    pub fn reload(&self, name: &str) -> Result<Reloaded, ReloadError> {
        let _lifecycle = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        if crate::quiesce::inside() {
            return Err(ReloadError::InsideCall);
        }
        let old = self.find(name)?;
        if old.file == std::path::Path::new(crate::LINKED_PATH) {
            return Err(ReloadError::Linked(name.to_owned()));
        }
        let file = old.file.clone();
        // The new build runs where the old one does: in a new child process for an isolated
        // plugin (its library is never opened in this process), else from a private copy.
        let isolated =
            self.shared.isolated.mode_of(Arc::as_ptr(&old)) != crate::PluginMode::InProcess;
        let (candidate, copy, build) = if isolated {
            match self.isolated_build(&file) {
                Some(Ok((candidate, build))) => (candidate, None, Some(build)),
                Some(Err(error)) => return Err(ReloadError::Load(error)),
                None => return Err(ReloadError::Isolated(name.to_owned())),
            }
        } else {
            let (candidate, copy) =
                crate::copy::open_copy(&file, self.allow_insecure, &mut Default::default())?;
            (candidate, Some(copy), None)
        };
        let (new, removed) = match self.swap_in(name, &old, &file, candidate, build.as_ref()) {
            Ok(swapped) => swapped,
            Err(error) => {
                // The new build's child ends; its reason, if it failed there, says more.
                let reason = build.and_then(crate::isolate::IsolatedBuild::discard);
                return Err(match (error, reason) {
                    (ReloadError::Load(load), Some(reason)) => {
                        ReloadError::Load(crate::LoadError {
                            path: load.path,
                            kind: LoadErrorKind::Isolated(reason),
                        })
                    }
                    (error, _) => error,
                });
            }
        };
        if let Some(build) = build {
            build.keep(&self.shared.isolated);
        }
        self.shared.end_references(&removed);
        drop(removed);
        if let Some(copy) = copy {
            self.copies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(copy);
        }
        {
            let mut loaded = self.loaded.write_or_recover();
            match loaded.iter().position(|p| Arc::ptr_eq(p, &old)) {
                Some(at) if old.state() != PluginState::Faulted => loaded[at] = Arc::clone(&new),
                at => {
                    if let Some(at) = at {
                        loaded.remove(at);
                    }
                    loaded.push(Arc::clone(&new));
                }
            }
        }
        // Every call that found the old version before the swap returns; then it ends, handing
        // its state over.
        crate::quiesce::synchronize(&format_args!("reload of plugin `{name}`"));
        let mut saved = SavedState::NotSaved;
        self.shut_down_saving(&old, Some(&mut saved));
        let state = restore_state(&new, &old.version, saved);
        if let StateHandoff::Lost(why) = &state {
            log::warn!("plugin `{name}`: its state was not handed over to the new build: {why}");
        }
        log::debug!(
            "reloaded plugin `{name}` {} -> {} from {}",
            old.version,
            new.version,
            new.path
        );
        Ok(Reloaded {
            name: name.to_owned(),
            old_version: old.version.clone(),
            new_version: new.version.clone(),
            path: file,
            state,
        })
    }

    /// Unloads the plugin `name` while the host serves: it is shut down as
    /// [`PluginHost::shutdown`] shuts plugins down (no new call reaches it, the calls under way
    /// return, its `shutdown` runs, its registrations are removed) and no longer listed; a
    /// faulted plugin is just no longer listed. Its library stays mapped, as every library
    /// does. Its name is free again: the same file, or another build, can be loaded again.
    ///
    /// # Errors
    ///
    /// [`ReloadError::UnknownPlugin`] if no plugin of that name is loaded;
    /// [`ReloadError::InsideCall`] when called from inside a callback.
    ///
    /// # Thread-safety
    ///
    /// As [`PluginHost::reload`].
    pub fn unload(&self, name: &str) -> Result<(), ReloadError> {
        let _lifecycle = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        if crate::quiesce::inside() {
            return Err(ReloadError::InsideCall);
        }
        let plugin = self.find(name)?;
        self.shut_down(&plugin);
        self.loaded
            .write_or_recover()
            .retain(|p| !Arc::ptr_eq(p, &plugin));
        log::debug!("unloaded plugin `{name}`");
        Ok(())
    }

    /// Steps 2 to 4 of a reload (see the module docs): initialises `candidate`, the new build
    /// of `old` from `file` (in a child process when `build` is given), with its registrations
    /// staged, and swaps it in. Returns the new version and what the swap removed of the old one.
    /// On error the new version is given up and the old one is unchanged.
    fn swap_in(
        &self,
        name: &str,
        old: &Arc<PluginContext>,
        file: &std::path::Path,
        candidate: crate::loader::Candidate,
        build: Option<&crate::isolate::IsolatedBuild>,
    ) -> Result<(Arc<PluginContext>, Removed), ReloadError> {
        let file = file.to_owned();
        let old = Arc::clone(old);
        if candidate.info.name != old.name {
            return Err(ReloadError::NameChanged {
                path: file,
                expected: old.name.clone(),
                found: candidate.info.name,
            });
        }
        let new = self.new_context(candidate);
        self.shared.staging.begin(&new, &old);
        let fail = |error: ReloadError| {
            // The new version gets no more calls; its staged registrations go (each `destroy`
            // once); the old version never stopped.
            self.refuse_initialised(&new);
            drop(self.shared.staging.take(&new));
            new.unstage();
            error
        };
        let initialised = match build {
            Some(build) => build.initialise_with(|| self.initialise(&new)),
            None => self.initialise(&new),
        };
        if let Err(kind) = initialised {
            return Err(fail(ReloadError::Load(crate::LoadError {
                path: file,
                kind,
            })));
        }
        let removed = match self.shared.swap(&old, &new) {
            // An error it logged during an `init` that succeeded is no reason for anything.
            Ok(removed) => {
                drop(new.take_init_error());
                removed
            }
            Err(SwapRefused::Faulted) => {
                return Err(fail(ReloadError::Load(crate::LoadError {
                    path: file,
                    kind: LoadErrorKind::Init {
                        code: PhResult::Panicked,
                        message: new.fault_reason().or_else(|| new.take_init_error()),
                    },
                })));
            }
            Err(SwapRefused::Taken { command, plugin }) => {
                self.give_up_initialised(&new);
                return Err(ReloadError::Taken {
                    name: name.to_owned(),
                    command,
                    plugin,
                });
            }
            Err(SwapRefused::Dropped { interface, plugin }) => {
                self.give_up_initialised(&new);
                return Err(ReloadError::DropsInterface {
                    name: name.to_owned(),
                    interface,
                    plugin,
                });
            }
        };
        Ok((new, removed))
    }

    /// Gives up a new version whose `init` succeeded but whose swap was refused: it gets its
    /// `shutdown`, and its registrations, still staged, go with it.
    fn give_up_initialised(&self, new: &Arc<PluginContext>) {
        if new.transition(PluginState::Initializing, PluginState::Active) {
            self.shut_down(new);
        }
        drop(self.shared.staging.take(new));
        new.unstage();
    }

    /// The loaded plugin `name` (active or faulted).
    fn find(&self, name: &str) -> Result<Arc<PluginContext>, ReloadError> {
        self.loaded
            .read_or_recover()
            .iter()
            .find(|p| {
                p.name == name && matches!(p.state(), PluginState::Active | PluginState::Faulted)
            })
            .cloned()
            .ok_or_else(|| ReloadError::UnknownPlugin(name.to_owned()))
    }
}
