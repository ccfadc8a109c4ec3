//! A plugin's host context: the host's state for one loaded plugin, and its life cycle.
//!
//! # Lifetime
//!
//! A pointer to a [`PluginContext`] is the plugin's `PhHostContext`. Plugins keep it in threads
//! and statics that may outlive their shutdown, a fault, a refused `init` and the host itself, and
//! their libraries are never unloaded; so a context is never freed either: [`PluginContext::new`]
//! puts every context in [`RETAINED`], a process-wide list, where it stays. After its plugin is shut
//! down, faulted or refused, a context answers every service call with `SHUT_DOWN` (see
//! [`crate::services`]). What a context keeps is small (names, the configuration, one reference to
//! its host's [`crate::registry::Shared`], whose maps are empty once every plugin is shut down).

use std::ffi::c_void;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use plugin_api::abi::{
    PhPluginVtable, PhResult, PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR,
    PH_MAX_REGISTRATIONS_PER_PLUGIN,
};

use crate::registry::Shared;

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
    /// `shutdown` is running: no new registrations, no more calls into the plugin.
    ShuttingDown = 2,
    /// Shut down (or `init` failed, or the host is gone): services return `SHUT_DOWN`.
    ShutDown = 3,
    /// A callback panicked: its registrations were removed and it gets no more calls, except
    /// the destroy callbacks of its registrations, each once.
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

/// [`PluginContext::reload_role`]: not part of a reload.
const NOT_RELOADING: u8 = 0;
/// The new version of a plugin during its `init` in a reload: its registrations are staged, not
/// yet seen by anyone (see [`crate::reload`]).
const STAGED: u8 = 1;
/// The old version of a plugin after a reload swapped in the new one: it still receives the
/// calls that had already found it, and refuses new registrations with `SHUT_DOWN`.
const RETIRED: u8 = 2;

/// The most of a plugin's message about its failed `init` that a refusal shows, in bytes (and
/// `...` when it is cut): a refusal is one line.
pub(crate) const INIT_ERROR_MAX: usize = 1024;

/// `text` as one line for a refusal, which any program may show: each control character (a
/// newline among them) and each Unicode line or paragraph separator becomes a space, and text
/// longer than `max` bytes is cut at a character boundary and ends with `...`. What a terminal
/// would act on besides is the displayer's to escape, as for every other text of a plugin.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let kept = prefix_at_most(text, max);
    let mut line: String = kept
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    if kept.len() < text.len() {
        line.push_str("...");
    }
    line
}

/// The longest start of `text` of at most `max` bytes that ends at a character boundary.
pub(crate) fn prefix_at_most(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Every context ever made, so that none is freed (see the module docs).
static RETAINED: Mutex<Vec<Arc<PluginContext>>> = Mutex::new(Vec::new());

/// What the loader read from a plugin's descriptor.
pub(crate) use crate::loader::DescriptorInfo;

/// The host's per-plugin state; a pointer to it is the plugin's `PhHostContext`.
pub(crate) struct PluginContext {
    pub(crate) shared: Arc<Shared>,
    pub(crate) name: String,
    /// The plugin name followed by `::`, for log targets.
    pub(crate) target_prefix: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) path: String,
    /// The library file as given (`path` is its lossy UTF-8 form, which plugins see).
    pub(crate) file: std::path::PathBuf,
    pub(crate) abi_version: (u16, u16),
    pub(crate) layout: crate::loader::LayoutCheck,
    state: AtomicU8,
    /// Its part in a reload ([`crate::reload`]): [`NOT_RELOADING`], [`STAGED`] or [`RETIRED`].
    /// Changed only under the registry's handle lock, where registrations read it.
    reload_role: AtomicU8,
    /// How many registrations the plugin holds (at most `PH_MAX_REGISTRATIONS_PER_PLUGIN`).
    registrations: AtomicUsize,
    /// The plugin's function table, copied from its descriptor by the loader.
    vtable: PhPluginVtable,
    /// The plugin data returned by `init`; passed to the plugin only while it is active.
    pub(crate) plugin_data: AtomicPtr,
    /// Why the plugin was faulted, once it is.
    pub(crate) fault_reason: Mutex<Option<String>>,
    /// The last error-level record the plugin logged during its `init` (see
    /// [`PluginContext::note_init_error`]): why `init` failed, if it did.
    init_error: Mutex<Option<String>>,
    /// The thread that runs the plugin's `init` ([`crate::quiesce::thread_id`]), or 0.
    init_thread: std::sync::atomic::AtomicUsize,
    /// The plugin's configuration: every key (nested ones by dotted path) and its value as text.
    /// Never changed after creation, so the values' bytes stay put while the context lives.
    pub(crate) config: std::collections::HashMap<String, Box<str>>,
    /// The interfaces its descriptor says it provides (ABI 1.3).
    pub(crate) provides: Vec<crate::InterfaceVersion>,
    /// The interfaces its descriptor says it requires (ABI 1.3).
    pub(crate) requires: Vec<crate::InterfaceVersion>,
    /// Whether this is the context of the application that embeds the host
    /// ([`PluginContext::application`]), not of a plugin.
    pub(crate) is_application: bool,
}

/// The name of the application's context in messages.
pub(crate) const APPLICATION: &str = "application";

/// The application's function table: no function (the host never calls the application's
/// `init`, `shutdown` or enumeration).
const APPLICATION_VTABLE: PhPluginVtable = PhPluginVtable {
    struct_size: std::mem::size_of::<PhPluginVtable>() as u32,
    init: None,
    shutdown: None,
    enumerate_commands: None,
    save_state: None,
    restore_state: None,
};

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

impl PluginContext {
    /// A new context in state `Initializing`, retained for the life of the process.
    pub(crate) fn new(
        shared: Arc<Shared>,
        vtable: PhPluginVtable,
        info: DescriptorInfo,
        layout: crate::loader::LayoutCheck,
        config: std::collections::HashMap<String, Box<str>>,
    ) -> Arc<PluginContext> {
        let context = Arc::new(PluginContext {
            shared,
            // Without the formatting machinery: this is once per plugin loaded.
            target_prefix: [info.name.as_str(), "::"].concat(),
            name: info.name,
            version: info.version,
            description: info.description,
            path: info.path,
            file: info.file,
            abi_version: info.abi_version,
            layout,
            state: AtomicU8::new(PluginState::Initializing as u8),
            reload_role: AtomicU8::new(NOT_RELOADING),
            registrations: AtomicUsize::new(0),
            vtable,
            plugin_data: AtomicPtr(std::sync::atomic::AtomicPtr::new(std::ptr::null_mut())),
            fault_reason: Mutex::new(None),
            init_error: Mutex::new(None),
            init_thread: std::sync::atomic::AtomicUsize::new(0),
            config,
            provides: info.provides,
            requires: info.requires,
            is_application: false,
        });
        RETAINED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&context));
        context
    }

    /// The context of the application that embeds the host: the owner of the registrations made
    /// through [`crate::PluginHost`] itself (its subscriptions). Active from the start, never
    /// listed among the plugins, never faulted (a failure of its callbacks is logged), retained
    /// like every context.
    pub(crate) fn application(shared: Arc<Shared>) -> Arc<PluginContext> {
        let info = DescriptorInfo {
            name: APPLICATION.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "the application that embeds the host".to_owned(),
            path: "<application>".to_owned(),
            file: "<application>".into(),
            abi_version: (PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR),
            provides: Vec::new(),
            requires: Vec::new(),
        };
        let context = Arc::new(PluginContext {
            shared,
            target_prefix: format!("{APPLICATION}::"),
            name: info.name,
            version: info.version,
            description: info.description,
            path: info.path,
            file: info.file,
            abi_version: info.abi_version,
            layout: crate::loader::LayoutCheck::Linked,
            state: AtomicU8::new(PluginState::Active as u8),
            reload_role: AtomicU8::new(NOT_RELOADING),
            registrations: AtomicUsize::new(0),
            vtable: APPLICATION_VTABLE,
            plugin_data: AtomicPtr(std::sync::atomic::AtomicPtr::new(std::ptr::null_mut())),
            fault_reason: Mutex::new(None),
            init_error: Mutex::new(None),
            init_thread: std::sync::atomic::AtomicUsize::new(0),
            config: std::collections::HashMap::new(),
            provides: info.provides,
            requires: info.requires,
            is_application: true,
        });
        RETAINED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&context));
        context
    }

    /// The ABI minor version the plugin was built for.
    #[inline]
    pub(crate) fn abi_minor(&self) -> u16 {
        self.abi_version.1
    }

    /// Whether the host calls `destroy` of a registration it refuses: the rule since ABI 1.2
    /// (before, the plugin frees the user data itself on error).
    #[inline]
    pub(crate) fn destroys_refused(&self) -> bool {
        self.abi_minor() >= 2
    }

    pub(crate) fn state(&self) -> PluginState {
        PluginState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Marks the calling thread as the one that runs the plugin's `init`: only what it logs
    /// there counts as the reason `init` failed (a record of the plugin's own threads, or of
    /// another plugin of the same library, does not).
    pub(crate) fn begin_init_on_this_thread(&self) {
        self.init_thread
            .store(crate::quiesce::thread_id(), Ordering::Relaxed);
    }

    /// Keeps `message`, an error-level record the plugin logs, as the reason its `init` failed
    /// if it is still initialising and this is the thread that runs its `init` (the last such
    /// record wins), as one line of at most [`INIT_ERROR_MAX`] bytes (see [`one_line`]).
    pub(crate) fn note_init_error(&self, message: &str) {
        if self.state() != PluginState::Initializing
            || self.init_thread.load(Ordering::Relaxed) != crate::quiesce::thread_id()
        {
            return;
        }
        let kept = one_line(message, INIT_ERROR_MAX);
        *self.init_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(kept);
    }

    /// The reason the plugin gave for a failed `init` (see [`PluginContext::note_init_error`]),
    /// taken.
    pub(crate) fn take_init_error(&self) -> Option<String> {
        self.init_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Sets the state. `SeqCst`, so that a grace period that follows orders it before the
    /// threads' later reads (see [`crate::quiesce`]).
    pub(crate) fn set_state(&self, state: PluginState) {
        self.state.store(state as u8, Ordering::SeqCst);
    }

    /// Moves from `from` to `to`; false if the state was not `from`.
    pub(crate) fn transition(&self, from: PluginState, to: PluginState) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::SeqCst, Ordering::Acquire)
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
    pub(crate) fn receives_calls(&self) -> bool {
        self.state.load(Ordering::Acquire) <= PluginState::Active as u8
    }

    /// Whether the plugin may call services (during init, while active, during shutdown).
    #[inline]
    pub(crate) fn may_call(&self) -> bool {
        self.state.load(Ordering::Acquire) <= PluginState::ShuttingDown as u8
    }

    /// Takes one registration slot of the plugin; fails if it is not serving or at the limit.
    pub(crate) fn reserve_registration(&self) -> Result<(), PhResult> {
        if !self.receives_calls() || self.is_retired() {
            return Err(PhResult::ShutDown);
        }
        let held = self.registrations.fetch_add(1, Ordering::AcqRel);
        if held >= PH_MAX_REGISTRATIONS_PER_PLUGIN {
            self.registrations.fetch_sub(1, Ordering::AcqRel);
            return Err(PhResult::LimitExceeded);
        }
        Ok(())
    }

    /// Whether this is the new version of a plugin whose registrations a reload stages (see
    /// [`crate::reload`]). Read under the registry's handle lock.
    #[inline]
    pub(crate) fn is_staged(&self) -> bool {
        self.reload_role.load(Ordering::Acquire) == STAGED
    }

    /// Whether this is the old version of a plugin that a reload replaced: it refuses
    /// registrations with `SHUT_DOWN` until its shutdown.
    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.reload_role.load(Ordering::Acquire) == RETIRED
    }

    /// Marks a new context as the new version of a reload, before its `init`: its
    /// registrations are staged until [`PluginContext::unstage`].
    pub(crate) fn stage(&self) {
        self.reload_role.store(STAGED, Ordering::Release);
    }

    /// Ends the staging of the new version (under the handle lock, in the swap, or when the
    /// reload fails): its registrations go where every plugin's go.
    pub(crate) fn unstage(&self) {
        self.reload_role.store(NOT_RELOADING, Ordering::Release);
    }

    /// Marks the old version of a reload as replaced (under the handle lock, in the swap).
    pub(crate) fn retire(&self) {
        self.reload_role.store(RETIRED, Ordering::Release);
    }

    /// Gives back `n` registration slots.
    pub(crate) fn release_registrations(&self, n: usize) {
        self.registrations.fetch_sub(n, Ordering::AcqRel);
    }

    /// The plugin's function table.
    pub(crate) fn vtable(&self) -> &PhPluginVtable {
        &self.vtable
    }

    /// Why the plugin was faulted, if it was.
    pub(crate) fn fault_reason(&self) -> Option<String> {
        self.fault_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_refusals_reason_is_one_line_and_bounded() {
        assert_eq!(one_line("bad value", 100), "bad value");
        assert_eq!(
            one_line("two\nlines\r\tand\x1b[1A", 100),
            "two lines  and [1A"
        );
        assert_eq!(one_line("a\u{2028}b\u{2029}c", 100), "a b c");
        // Cut at a character boundary: `é` is two bytes, the limit falls inside it.
        assert_eq!(one_line("abé", 3), "ab...");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(one_line("", 3), "");
    }
}
