//! The host's shared state: plugins, commands and subscriptions, and the dispatch of callbacks.
//!
//! Locks are held only to read or change the maps, never while plugin code runs: dispatch copies
//! an `Arc` out of the map and calls through it, so a callback may call any host service
//! (reentrancy) and other threads keep going (thread safety).
//!
//! Events are routed through one immutable snapshot, [`Routes`], behind an [`ArcSwap`]: a publish
//! takes no lock and writes no memory shared with other threads (arc-swap records its reference
//! in a slot of its own thread), so publishes on several threads scale; a subscribe or unregister
//! builds a new snapshot under `routes_writer` and swaps it in. Registrations are rare and
//! publishes frequent, so the copy is paid where it is cheap.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::c_void;

use std::hash::BuildHasher;

use arc_swap::ArcSwap;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use plugin_api::abi::{
    PhBytes, PhCommandCallback, PhDestroyCallback, PhEventCallback, PhHandle, PhPluginDescriptor,
    PhResult, PhStr, PH_MAX_EVENT_DEPTH, PH_MAX_REGISTRATIONS_PER_PLUGIN, PH_MAX_TOPIC_LEN,
};

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

/// The life cycle of a plugin, as its host context sees it.
///
/// The states are numbered in life-cycle order; the dispatch checks compare the numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PluginState {
    /// `init` is running: services work, the plugin is not yet listed.
    Initializing = 0,
    /// Initialised and serving.
    Active = 1,
    /// `shutdown` is running: no new registrations.
    ShuttingDown = 2,
    /// Shut down (or `init` failed): services return `ShutDown`.
    ShutDown = 3,
    /// A callback panicked: its registrations were removed and it gets no more calls.
    Faulted = 4,
}

impl PluginState {
    fn from_u8(value: u8) -> PluginState {
        match value {
            0 => PluginState::Initializing,
            1 => PluginState::Active,
            2 => PluginState::ShuttingDown,
            3 => PluginState::ShutDown,
            _ => PluginState::Faulted,
        }
    }
}

/// The host's per-plugin state; a pointer to it is the plugin's `PhHostContext`.
pub(crate) struct PluginContext {
    pub(crate) shared: Arc<Shared>,
    pub(crate) name: String,
    /// The plugin name followed by `::`, for log targets.
    pub(crate) target_prefix: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) path: String,
    pub(crate) abi_version: (u16, u16),
    pub(crate) layout: crate::loader::LayoutCheck,
    state: AtomicU8,
    /// How many registrations the plugin holds (at most `PH_MAX_REGISTRATIONS_PER_PLUGIN`).
    registrations: AtomicUsize,
    /// The descriptor, valid while the library is loaded (the host never unloads it).
    pub(crate) descriptor: *const PhPluginDescriptor,
    /// The plugin data returned by `init`.
    pub(crate) plugin_data: AtomicPtr,
    /// Why the plugin was faulted, once it is.
    pub(crate) fault_reason: Mutex<Option<String>>,
    /// The plugin's configuration: every key (nested ones by dotted path) and its value as text.
    /// Never changed after creation, so the values' bytes stay put while the context lives.
    pub(crate) config: std::collections::HashMap<String, Box<str>>,
}

/// An atomic `*mut c_void`.
pub(crate) struct AtomicPtr(std::sync::atomic::AtomicPtr<c_void>);

impl AtomicPtr {
    pub(crate) fn get(&self) -> *mut c_void {
        self.0.load(Ordering::Acquire)
    }
    pub(crate) fn set(&self, value: *mut c_void) {
        self.0.store(value, Ordering::Release)
    }
}

// SAFETY: the descriptor is immutable data owned by a library that is never unloaded, and the
// plugin data is only passed back to the plugin, whose table functions are thread-safe where the
// ABI says so; all mutable state is atomic.
unsafe impl Send for PluginContext {}
// SAFETY: as above.
unsafe impl Sync for PluginContext {}

impl PluginContext {
    pub(crate) fn new(
        shared: Arc<Shared>,
        descriptor: *const PhPluginDescriptor,
        info: crate::loader::DescriptorInfo,
        layout: crate::loader::LayoutCheck,
        config: std::collections::HashMap<String, Box<str>>,
    ) -> PluginContext {
        PluginContext {
            shared,
            target_prefix: format!("{}::", info.name),
            name: info.name,
            version: info.version,
            description: info.description,
            path: info.path,
            abi_version: info.abi_version,
            layout,
            state: AtomicU8::new(PluginState::Initializing as u8),
            registrations: AtomicUsize::new(0),
            descriptor,
            plugin_data: AtomicPtr(std::sync::atomic::AtomicPtr::new(std::ptr::null_mut())),
            fault_reason: Mutex::new(None),
            config,
        }
    }

    pub(crate) fn state(&self) -> PluginState {
        PluginState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: PluginState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Moves from `from` to `to`; false if the state was not `from`.
    fn transition(&self, from: PluginState, to: PluginState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Ends a successful `init`; false if the plugin faulted meanwhile.
    pub(crate) fn activate(&self) -> bool {
        self.transition(PluginState::Initializing, PluginState::Active)
    }

    /// Starts the shutdown of an active plugin; false if it is not active (shut down, faulted).
    pub(crate) fn begin_shutdown(&self) -> bool {
        self.transition(PluginState::Active, PluginState::ShuttingDown)
    }

    /// Whether the host dispatches to the plugin's callbacks (initialising or active).
    #[inline]
    fn receives_calls(&self) -> bool {
        self.state.load(Ordering::Acquire) <= PluginState::Active as u8
    }

    /// Whether the plugin may call services (during init, while active, during shutdown).
    #[inline]
    pub(crate) fn may_call(&self) -> bool {
        self.state.load(Ordering::Acquire) <= PluginState::ShuttingDown as u8
    }

    /// Takes one registration slot of the plugin; fails if it is not serving or at the limit.
    fn reserve_registration(&self) -> Result<(), PhResult> {
        if !self.receives_calls() {
            return Err(PhResult::ShutDown);
        }
        let held = self.registrations.fetch_add(1, Ordering::AcqRel);
        if held >= PH_MAX_REGISTRATIONS_PER_PLUGIN {
            self.registrations.fetch_sub(1, Ordering::AcqRel);
            return Err(PhResult::LimitExceeded);
        }
        Ok(())
    }

    /// Gives back `n` registration slots.
    fn release_registrations(&self, n: usize) {
        self.registrations.fetch_sub(n, Ordering::AcqRel);
    }

    /// The plugin's function table.
    pub(crate) fn vtable(&self) -> &plugin_api::abi::PhPluginVtable {
        // SAFETY: the loader checked the descriptor and its non-null vtable pointer; both live
        // as long as the library, which the host never unloads.
        unsafe { &*(*self.descriptor).vtable }
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
// SAFETY: as above.
unsafe impl<C: Sync> Sync for Registration<C> {}

impl<C> Registration<C> {
    /// Whether dispatches call it: not unregistered, and its plugin receives calls.
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire) && self.owner.receives_calls()
    }
}

impl<C> Drop for Registration<C> {
    /// The last reference is gone: no dispatch uses the user data any more, so it is released.
    fn drop(&mut self) {
        if let Some(destroy) = self.destroy {
            // SAFETY: the plugin gave this destroy function for this user data, and this is the
            // only call: the registration is dropped once.
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

/// A topic's subscribers, in subscription order.
type Subscribers = Arc<[Arc<Registration<PhEventCallback>>]>;

/// Where events go: one immutable snapshot of every subscriber list.
#[derive(Clone, Default)]
struct Routes {
    /// The subscribers of each topic that has any. Topics are short strings chosen by plugins,
    /// not by an adversary, so FxHash (a few instructions) rather than SipHash.
    topics: FxHashMap<Box<str>, Subscribers>,
    /// Subscribers of every topic (`*`).
    all: Subscribers,
}

/// A one-hash Bloom filter of the topics that have subscribers (all bits set while anyone
/// subscribes to `*`): a publish to a topic whose bit is clear reaches nobody, and returns after
/// a hash and one load of memory that only subscribe and unregister write.
///
/// Updated after the routes it describes, with release stores read by acquire loads: a publish
/// that starts after a subscribe returned sees the new bit, then the new routes.
#[derive(Default)]
struct TopicFilter {
    words: [AtomicU64; TopicFilter::WORDS],
}

impl TopicFilter {
    const WORDS: usize = 4;

    /// The word and bit of `topic`: the top bits of its FxHash.
    #[inline]
    fn position(topic: &str) -> (usize, u64) {
        let bit = (FxBuildHasher.hash_one(topic) >> 56) as usize % (Self::WORDS * 64);
        (bit / 64, 1 << (bit % 64))
    }

    /// The bits for `routes`.
    fn bits_of(routes: &Routes) -> [u64; TopicFilter::WORDS] {
        if !routes.all.is_empty() {
            return [u64::MAX; Self::WORDS];
        }
        let mut words = [0; Self::WORDS];
        for topic in routes.topics.keys() {
            let (word, bit) = Self::position(topic);
            words[word] |= bit;
        }
        words
    }

    fn store(&self, bits: [u64; TopicFilter::WORDS]) {
        for (word, bits) in self.words.iter().zip(bits) {
            word.store(bits, Ordering::Release);
        }
    }

    /// False if nobody subscribed to `topic` (nor to `*`) before this call.
    #[inline]
    fn may_have_subscribers(&self, topic: &str) -> bool {
        let (word, bit) = Self::position(topic);
        self.words[word].load(Ordering::Acquire) & bit != 0
    }
}

/// The host state shared by every plugin context.
pub(crate) struct Shared {
    /// Active plugins, in load order.
    pub(crate) plugins: RwLock<Vec<Arc<PluginContext>>>,
    commands: RwLock<FxHashMap<String, Arc<Registration<PhCommandCallback>>>>,
    /// The current routes; replaced whole by subscribe and unregister.
    routes: ArcSwap<Routes>,
    /// Held while building and swapping in new routes, so that no change is lost.
    routes_writer: Mutex<()>,
    /// Which topics may have subscribers, for publishes that nobody receives.
    topic_filter: TopicFilter,
    handles: Mutex<HashMap<PhHandle, (Arc<PluginContext>, Entry)>>,
    next_handle: AtomicU64,
}

/// The topic whose subscribers receive every event.
pub const ALL_TOPICS: &str = "*";

thread_local! {
    /// How many publishes are nested on this thread.
    static PUBLISH_DEPTH: Cell<u32> = const { Cell::new(0) };
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            plugins: RwLock::new(Vec::new()),
            commands: RwLock::new(FxHashMap::default()),
            routes: ArcSwap::from_pointee(Routes {
                topics: FxHashMap::default(),
                all: Arc::new([]),
            }),
            routes_writer: Mutex::new(()),
            topic_filter: TopicFilter::default(),
            handles: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
        }
    }

    fn new_handle(&self) -> PhHandle {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    fn lock_handles(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<PhHandle, (Arc<PluginContext>, Entry)>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a command for `owner`.
    pub(crate) fn register_command(
        &self,
        owner: &Arc<PluginContext>,
        name: &str,
        callback: PhCommandCallback,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
    ) -> Result<PhHandle, PhResult> {
        if !plugin_api::abi::is_valid_name(name) {
            return Err(PhResult::InvalidArgument);
        }
        let mut commands = self.commands.write_or_recover();
        if commands.contains_key(name) {
            return Err(PhResult::AlreadyExists);
        }
        owner.reserve_registration()?;
        let handle = self.new_handle();
        commands.insert(
            name.to_owned(),
            Arc::new(Registration {
                handle,
                owner: Arc::clone(owner),
                callback,
                user_data,
                destroy,
                active: AtomicBool::new(true),
            }),
        );
        drop(commands);
        self.lock_handles()
            .insert(handle, (Arc::clone(owner), Entry::Command(name.to_owned())));
        Ok(handle)
    }

    /// Subscribes a callback of `owner` to `topic`.
    pub(crate) fn subscribe(
        &self,
        owner: &Arc<PluginContext>,
        topic: &str,
        callback: PhEventCallback,
        user_data: *mut c_void,
        destroy: Option<PhDestroyCallback>,
    ) -> Result<PhHandle, PhResult> {
        if topic != ALL_TOPICS && !plugin_api::abi::is_valid_topic(topic) {
            return Err(PhResult::InvalidArgument);
        }
        owner.reserve_registration()?;
        let handle = self.new_handle();
        let registration = Arc::new(Registration {
            handle,
            owner: Arc::clone(owner),
            callback,
            user_data,
            destroy,
            active: AtomicBool::new(true),
        });
        self.update_subscribers(topic, |list| {
            list.iter()
                .cloned()
                .chain(std::iter::once(Arc::clone(&registration)))
                .collect()
        });
        self.lock_handles().insert(
            handle,
            (Arc::clone(owner), Entry::Subscription(topic.to_owned())),
        );
        Ok(handle)
    }

    /// Replaces the subscriber list of `topic` with `f(old list)`, in new routes.
    fn update_subscribers(&self, topic: &str, f: impl FnOnce(&Subscribers) -> Subscribers) {
        let _writer = self.routes_writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes = Routes::clone(&self.routes.load());
        if topic == ALL_TOPICS {
            routes.all = f(&routes.all);
        } else {
            let old = routes
                .topics
                .get(topic)
                .cloned()
                .unwrap_or_else(|| Arc::new([]));
            let new = f(&old);
            if new.is_empty() {
                routes.topics.remove(topic);
            } else {
                routes.topics.insert(topic.into(), new);
            }
        }
        let filter = TopicFilter::bits_of(&routes);
        self.routes.store(Arc::new(routes));
        // After the routes: a publish that sees a topic's bit also sees its subscribers.
        self.topic_filter.store(filter);
    }

    /// Ends the registration `handle` of `owner`. The removed registration is returned so that
    /// the caller drops it (and runs `destroy`) outside any lock.
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

    /// Removes one registration from the maps and deactivates it.
    fn remove_entry(&self, handle: PhHandle, entry: &Entry) {
        match entry {
            Entry::Command(name) => {
                let removed = {
                    let mut commands = self.commands.write_or_recover();
                    match commands.get(name) {
                        Some(r) if r.handle == handle => commands.remove(name),
                        _ => None,
                    }
                };
                if let Some(r) = removed {
                    r.active.store(false, Ordering::Release);
                }
            }
            Entry::Subscription(topic) => {
                let mut removed = None;
                self.update_subscribers(topic, |list| {
                    list.iter()
                        .filter(|r| {
                            if r.handle == handle {
                                r.active.store(false, Ordering::Release);
                                removed = Some(Arc::clone(r));
                                false
                            } else {
                                true
                            }
                        })
                        .cloned()
                        .collect()
                });
                drop(removed);
            }
        }
    }

    /// Removes every registration of `owner` (at shutdown, a failed init, or a fault).
    pub(crate) fn remove_all_of(&self, owner: &PluginContext) {
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
        self.commands.read_or_recover().get(name).cloned()
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
            .map(|(name, r)| (name.clone(), r.owner.name.clone()))
            .collect();
        names.sort();
        names
    }

    /// Delivers an event to every subscriber of `topic` and of `*`, on this thread.
    ///
    /// Returns [`PhResult::InvalidArgument`] for an invalid topic.
    pub(crate) fn publish(&self, topic: &str, payload: &[u8]) -> Result<(), PhResult> {
        if !is_valid_topic(topic.as_bytes()) {
            return Err(PhResult::InvalidArgument);
        }
        self.publish_valid(topic, payload)
    }

    /// [`Shared::publish`] of a topic already checked with [`is_valid_topic`].
    ///
    /// No lock, no allocation, no copy: the routes are read through arc-swap's guard, which
    /// keeps the snapshot (and so every registration in it) alive until the dispatch ends.
    pub(crate) fn publish_valid(&self, topic: &str, payload: &[u8]) -> Result<(), PhResult> {
        debug_assert!(plugin_api::abi::is_valid_topic(topic));
        let depth = PUBLISH_DEPTH.with(Cell::get);
        if !self.topic_filter.may_have_subscribers(topic) {
            // Nobody receives it; only the nesting limit still applies.
            return match depth >= PH_MAX_EVENT_DEPTH {
                true => Err(too_deep(topic)),
                false => Ok(()),
            };
        }
        let routes = self.routes.load();
        let subscribers = routes.topics.get(topic);
        if depth >= PH_MAX_EVENT_DEPTH {
            return Err(too_deep(topic));
        }
        if subscribers.is_none() && routes.all.is_empty() {
            return Ok(());
        }
        PUBLISH_DEPTH.with(|d| d.set(depth + 1));
        let _restore = RestoreDepth(depth);
        let ph_topic = PhStr::new(topic);
        let ph_payload = PhBytes::new(payload);
        for registration in subscribers
            .iter()
            .flat_map(|s| s.iter())
            .chain(routes.all.iter())
        {
            if !registration.is_active() {
                continue;
            }
            // SAFETY: the plugin registered this callback with this user data; the registration
            // is alive (the routes hold an `Arc` of it), so `destroy` has not run; topic and
            // payload outlive the call.
            let code =
                unsafe { (registration.callback.0)(registration.user_data, ph_topic, ph_payload) };
            if code != PhResult::Ok.code() {
                self.handler_failed(registration, topic, code);
            }
        }
        Ok(())
    }

    /// Reports a handler that did not return `Ok`; faults its plugin if it panicked.
    #[cold]
    fn handler_failed(
        &self,
        registration: &Registration<PhEventCallback>,
        topic: &str,
        code: plugin_api::abi::PhResultCode,
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
    /// removed and it gets no further calls. Reported once.
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

    /// Calls a plugin's command enumeration; the host-side wrapper of `enumerate_commands`.
    pub(crate) fn enumerate_commands_of(
        &self,
        plugin: &Arc<PluginContext>,
        callback: plugin_api::abi::PhCommandInfoCallback,
        user_data: *mut c_void,
    ) -> Result<(), PhResult> {
        if plugin.state() != PluginState::Active {
            return Err(PhResult::NotFound);
        }
        let Some(enumerate) = plugin.vtable().enumerate_commands else {
            return Err(PhResult::Error);
        };
        // SAFETY: the plugin's own function with its own plugin data; `callback` and
        // `user_data` are valid for the call (the caller's contract).
        let code = unsafe { (enumerate.0)(plugin.plugin_data.get(), callback, user_data) };
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

/// Whether `topic` is a valid event topic: [`plugin_api::abi::is_valid_topic`], the ABI's rule,
/// checked with a table and no branch per byte (a publish checks its topic on every call). A
/// valid topic is ASCII, hence valid UTF-8.
#[inline]
pub(crate) fn is_valid_topic(topic: &[u8]) -> bool {
    let invalid = |b: u8| INVALID_TOPIC_BYTE[usize::from(b)];
    // Four bytes a step into two accumulators, so that the lookups run in parallel.
    let (mut a, mut b) = (0u8, 0u8);
    let mut chunks = topic.chunks_exact(4);
    for chunk in &mut chunks {
        a |= invalid(chunk[0]) | invalid(chunk[1]);
        b |= invalid(chunk[2]) | invalid(chunk[3]);
    }
    for &byte in chunks.remainder() {
        a |= invalid(byte);
    }
    a | b == 0 && !topic.is_empty() && topic.len() <= PH_MAX_TOPIC_LEN
}

/// 1 for each byte that a topic may not contain, 0 for ASCII letters, digits, `-`, `_` and `.`.
static INVALID_TOPIC_BYTE: [u8; 256] = {
    let mut table = [1u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.' {
            table[b] = 0;
        }
        b += 1;
    }
    table
};

/// Logs an event that nested too deeply; returns the error for the publisher.
#[cold]
fn too_deep(topic: &str) -> PhResult {
    log::error!(
        "event `{topic}` not delivered: events nested deeper than {PH_MAX_EVENT_DEPTH} (a handler publishing what it handles?)"
    );
    PhResult::LimitExceeded
}

/// Restores the publish depth of this thread when a publish ends, even by a panic.
struct RestoreDepth(u32);

impl Drop for RestoreDepth {
    fn drop(&mut self) {
        PUBLISH_DEPTH.with(|d| d.set(self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_topic;

    #[test]
    fn topic_check_is_the_abi_rule() {
        for b in 0..=u8::MAX {
            let one = [b];
            let text = [b'a', b, b'z'];
            for bytes in [&one[..], &text[..]] {
                let abi = std::str::from_utf8(bytes).is_ok_and(plugin_api::abi::is_valid_topic);
                assert_eq!(is_valid_topic(bytes), abi, "{bytes:?}");
            }
        }
        // Every length, with one bad byte at every place.
        for len in 1..=40 {
            let good = vec![b'a'; len];
            assert!(is_valid_topic(&good), "{len}");
            for at in 0..len {
                let mut bad = good.clone();
                bad[at] = b' ';
                assert!(!is_valid_topic(&bad), "{len} {at}");
            }
        }
        let longest = "t".repeat(plugin_api::abi::PH_MAX_TOPIC_LEN);
        assert!(is_valid_topic(longest.as_bytes()));
        assert!(!is_valid_topic(format!("{longest}t").as_bytes()));
        assert!(!is_valid_topic(b""));
        assert!(is_valid_topic(b"wordfreq.totals"));
        assert!(!is_valid_topic(b"*"));
    }
}
