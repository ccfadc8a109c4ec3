//! Interfaces (ABI 1.3): typed function tables that one participant (a plugin, or the
//! application) provides and others query, then call directly.
//!
//! # Lifetimes
//!
//! A provided interface is a registration of its provider, like a subscription: its user data
//! (the provider's state behind the table) is released by its `destroy`, exactly once, after the
//! provision ended **and** every reference that callers queried was released. Each reference has
//! its own `alive` word, which callers read (acquire) before each call through the table, with no
//! host code on the call path; the host sets it to 0 when the caller releases the reference, when
//! the caller ends, and, for every reference at once, when the provision ends (unregistered, or
//! its provider shut down, faulted or refused). So a call that starts after any of these is not
//! made; a call already under way finishes with the provider's user data still valid (the
//! reference keeps it), and the provider's library is never unmapped. The `alive` words are never
//! freed (4 bytes for each query, for the rest of the process, allocated in blocks of 1024), so
//! a stale reference can always be checked.
//!
//! When a provision ends, the host publishes the event [`INTERFACE_ENDED_TOPIC`] with the payload
//! `ID MAJOR`, so that dependents learn it without polling.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use plugin_api::abi::{PhHandle, PhInterface, PhResult, PhStr};

use crate::context::PluginContext;
use crate::registry::{Entry, LockExt, Registration, Shared};

/// The topic of the event the host publishes when a provided interface ends; the payload is the
/// interface's id and major, such as `plughost.kv 1`.
pub const INTERFACE_ENDED_TOPIC: &str = "plughost.interface-ended";

/// The topic of the event the host publishes when a reload replaced a provider by its new build:
/// the references to the old build's interface read `alive` 0, and a new query gets the new
/// build's. The payload is the interface's id and major, such as `plughost.kv 1`.
pub const INTERFACE_REPLACED_TOPIC: &str = "plughost.interface-replaced";

/// A provider's function table, as a registration's callback.
#[derive(Clone, Copy)]
pub(crate) struct Table(pub(crate) *const c_void);

// SAFETY: the table is the provider's immutable data, valid until its `destroy`; the host only
// hands its address to callers, which the ABI lets call it from any thread.
unsafe impl Send for Table {}
// SAFETY: shared references only copy the address.
unsafe impl Sync for Table {}

/// The address of a provided table's type layout ([`plugin_api::abi::PhInterfaceDecl::layout`]):
/// the host never reads through it, it only hands it to callers.
#[derive(Clone, Copy)]
pub(crate) struct Layout(pub(crate) *const c_void);

// SAFETY: only the address is used (copied into references); what it points to is the provider's
// static data, which the host never reads.
unsafe impl Send for Layout {}
// SAFETY: as for `Send`.
unsafe impl Sync for Layout {}

/// An interface someone provides.
pub(crate) struct Provided {
    pub(crate) registration: Registration<Table>,
    pub(crate) id: String,
    pub(crate) major: u16,
    pub(crate) minor: u16,
    pub(crate) table_size: u32,
    /// The signature the provider declared (may be empty), given to callers.
    pub(crate) signature: String,
    /// The layout the provider declared (may be NULL), given to callers.
    pub(crate) layout: Layout,
    /// The `alive` words of the references callers hold. Locked to add one and to end the
    /// provision, so that a query either lands before the end (and is revoked with the others)
    /// or sees `ended`.
    references: Mutex<Vec<&'static AtomicU32>>,
    ended: AtomicBool,
}

impl Provided {
    fn lock_references(&self) -> std::sync::MutexGuard<'_, Vec<&'static AtomicU32>> {
        self.references.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the provision: every reference's `alive` reads 0 from now on.
    pub(crate) fn end(&self) {
        let references = self.lock_references();
        self.ended.store(true, Ordering::Release);
        for alive in references.iter() {
            alive.store(0, Ordering::Release);
        }
        self.registration.deactivate();
    }
}

/// How many `alive` words one block of [`new_alive_word`] holds.
const ALIVE_BLOCK: usize = 1024;

/// The `alive` words handed out so far: blocks that are never freed (kept reachable here, so
/// that leak checkers do not count them as lost), and how many of the last block are used.
static ALIVE_WORDS: Mutex<(Vec<&'static [AtomicU32]>, usize)> = Mutex::new((Vec::new(), 0));

/// A new `alive` word, reading 1, valid for the rest of the process.
fn new_alive_word() -> &'static AtomicU32 {
    let mut words = ALIVE_WORDS.lock().unwrap_or_else(|e| e.into_inner());
    let (blocks, used) = &mut *words;
    let block = match blocks.last() {
        Some(block) if *used < ALIVE_BLOCK => *block,
        _ => {
            let block: &'static [AtomicU32] =
                Box::leak((0..ALIVE_BLOCK).map(|_| AtomicU32::new(0)).collect());
            blocks.push(block);
            *used = 0;
            block
        }
    };
    let word = &block[*used];
    *used += 1;
    word.store(1, Ordering::Release);
    word
}

/// A reference a caller queried: what it keeps alive and the word it reads.
#[derive(Clone)]
pub(crate) struct Reference {
    pub(crate) provided: Arc<Provided>,
    pub(crate) alive: &'static AtomicU32,
}

/// What a provider gives with an interface.
pub(crate) struct Declaration<'a> {
    pub(crate) id: &'a str,
    pub(crate) major: u16,
    pub(crate) minor: u16,
    pub(crate) table_size: u32,
    pub(crate) signature: &'a str,
    /// NULL, or the address of the table's type layout (not read by the host).
    pub(crate) layout: *const c_void,
}

impl Shared {
    /// Provides an interface for the registration's owner. On error the registration is refused
    /// (see [`Registration::refuse`]).
    pub(crate) fn provide_interface(
        &self,
        registration: Registration<Table>,
        declaration: Declaration<'_>,
    ) -> Result<PhHandle, PhResult> {
        if !plugin_api::abi::is_valid_name(declaration.id) || registration.callback.0.is_null() {
            return Err(registration.refuse(PhResult::InvalidArgument));
        }
        let key = (declaration.id.to_owned(), declaration.major);
        let owner = Arc::clone(&registration.owner);
        let added = self.add(
            registration,
            Entry::Interface(key.clone()),
            |registration| {
                // The new version of a reload stages its interfaces (see `crate::reload`): the
                // old version's are not taken for it, its own staged ones are.
                let staging = owner
                    .is_staged()
                    .then(|| self.staging.lookup_interface(&owner, &key));
                let mut interfaces = self.interfaces.write_or_recover();
                let taken = match (interfaces.get(&key), &staging) {
                    (_, Some(staged)) if staged.already_staged => true,
                    (Some(p), Some(staged)) => !staged.replaces(&p.registration.owner),
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if taken {
                    return Err((registration, PhResult::AlreadyExists));
                }
                let provided = Provided {
                    registration,
                    id: key.0.clone(),
                    major: key.1,
                    minor: declaration.minor,
                    table_size: declaration.table_size,
                    signature: declaration.signature.to_owned(),
                    layout: Layout(declaration.layout),
                    references: Mutex::new(Vec::new()),
                    ended: AtomicBool::new(false),
                };
                if staging.is_none() {
                    interfaces.insert(key.clone(), Arc::new(provided));
                    return Ok(());
                }
                drop(interfaces);
                // Refused if the reload ended meanwhile, which cannot happen (see
                // `Staging::add_command`).
                self.staging
                    .add_interface(key.clone(), Box::new(provided))
                    .map_err(|provided| (provided.registration, PhResult::ShutDown))
            },
        );
        if added.is_ok() {
            log::debug!(
                "interface {} {}.{} provided",
                declaration.id,
                declaration.major,
                declaration.minor
            );
        }
        added
    }

    /// Queries the interface `id` of `major` with a table of at least `min_table_size` bytes for
    /// `caller`, as a new reference of the caller.
    pub(crate) fn query_interface(
        &self,
        caller: &Arc<PluginContext>,
        id: &str,
        major: u16,
        min_table_size: u32,
    ) -> Result<PhInterface, PhResult> {
        let provided = self
            .interfaces
            .read_or_recover()
            .get(&(id.to_owned(), major))
            .cloned()
            .ok_or(PhResult::NotFound)?;
        if provided.table_size < min_table_size {
            return Err(PhResult::VersionMismatch);
        }
        let alive = new_alive_word();
        let handle = self.new_handle();
        let mut handles = self.lock_handles();
        caller.reserve_registration()?;
        {
            let mut references = provided.lock_references();
            if provided.ended.load(Ordering::Acquire) {
                drop(references);
                caller.release_registrations(1);
                return Err(PhResult::NotFound);
            }
            references.push(alive);
        }
        let reference = Reference {
            provided: Arc::clone(&provided),
            alive,
        };
        handles.insert(handle, (Arc::clone(caller), Entry::Reference(reference)));
        drop(handles);
        Ok(PhInterface {
            struct_size: std::mem::size_of::<PhInterface>() as u32,
            minor: provided.minor,
            reserved: 0,
            table: provided.registration.callback.0,
            table_size: provided.table_size,
            user_data: provided.registration.user_data,
            alive: alive.as_ptr().cast_const(),
            handle,
            signature: PhStr::new(&provided.signature),
            layout: provided.layout.0,
        })
    }

    /// Releases the reference `handle` of `owner`.
    pub(crate) fn release_interface(
        &self,
        owner: &PluginContext,
        handle: PhHandle,
    ) -> Result<(), PhResult> {
        let entry = {
            let mut handles = self.lock_handles();
            match handles.get(&handle) {
                Some((by, Entry::Reference(_))) if std::ptr::eq(Arc::as_ptr(by), owner) => {}
                _ => return Err(PhResult::UnknownHandle),
            }
            handles.remove(&handle).map(|(_, entry)| entry)
        };
        if let Some(entry) = entry {
            owner.release_registrations(1);
            self.remove_entry(handle, &entry);
        }
        Ok(())
    }

    /// Removes the provided interface `key` (its registration ended): revokes every reference,
    /// then tells dependents with [`INTERFACE_ENDED_TOPIC`].
    pub(crate) fn end_interface(&self, handle: PhHandle, key: &(String, u16)) {
        let removed = {
            let mut interfaces = self.interfaces.write_or_recover();
            match interfaces.get(key) {
                Some(p) if p.registration.handle == handle => interfaces.remove(key),
                _ => None,
            }
        };
        if let Some(provided) = removed {
            self.end_provided(&provided, false);
        }
    }

    /// Ends a provision taken out of the map: revokes every reference, then tells dependents
    /// with [`INTERFACE_REPLACED_TOPIC`] if a new build of its provider took its place, else with
    /// [`INTERFACE_ENDED_TOPIC`].
    pub(crate) fn end_provided(&self, provided: &Provided, replaced: bool) {
        provided.end();
        let (id, major) = (&provided.id, provided.major);
        let topic = if replaced {
            log::debug!("interface {id} {major} replaced by a new build of its provider");
            INTERFACE_REPLACED_TOPIC
        } else {
            log::debug!("interface {id} {major} ended");
            INTERFACE_ENDED_TOPIC
        };
        let payload = format!("{id} {major}");
        // Nobody may be subscribed, and the nesting limit may be reached: neither matters.
        let _ = self.publish(topic, payload.as_bytes());
    }

    /// Ends one reference (released, or its caller ended).
    pub(crate) fn end_reference(&self, reference: &Reference) {
        reference.alive.store(0, Ordering::Release);
        let mut references = reference.provided.lock_references();
        references.retain(|a| !std::ptr::eq(*a, reference.alive));
    }

    /// Whether an interface `id` of `major` with at least minor `minor` is provided now, and if
    /// not, what is (for the error message).
    pub(crate) fn interface_available(
        &self,
        id: &str,
        major: u16,
        minor: u16,
    ) -> Result<(), Option<String>> {
        let interfaces = self.interfaces.read_or_recover();
        if let Some(p) = interfaces.get(&(id.to_owned(), major)) {
            if p.minor >= minor {
                return Ok(());
            }
        }
        let found: Vec<String> = interfaces
            .values()
            .filter(|p| p.id == id)
            .map(|p| format!("{} {}.{}", p.id, p.major, p.minor))
            .collect();
        Err((!found.is_empty()).then(|| found.join(", ")))
    }

    /// Every interface provided now, as `(id, major, minor, provider)`, sorted.
    pub(crate) fn provided_interfaces(&self) -> Vec<(String, u16, u16, String)> {
        let mut all: Vec<_> = self
            .interfaces
            .read_or_recover()
            .values()
            .map(|p| {
                (
                    p.id.clone(),
                    p.major,
                    p.minor,
                    p.registration.owner.name.clone(),
                )
            })
            .collect();
        all.sort();
        all
    }
}
