//! Interfaces (ABI 1.3): typed function tables that one participant provides and others call
//! directly. [`Host::provide`] and [`Host::query`] for plugins; `#[plugin_api::interface]`
//! generates an [`Interface`] from a trait.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
use abi_stable::type_layout::TypeLayout;
use abi_stable::StableAbi;

use crate::abi::{
    PhDestroyCallback, PhHandle, PhInterface, PhInterfaceDecl, PhInterfaceVersion, PhResult, PhStr,
    PH_INTERFACE_OPTIONAL, PH_INVALID_HANDLE,
};
use crate::error::Error;
use crate::host::{Handle, Host};
use crate::link::HostLink;
use crate::state::StateSlot;

/// An interface: the id, version and function table of a contract between a provider and its
/// callers. `#[plugin_api::interface(id = "...", version = N)]` on a trait implements it for
/// `dyn Trait`, with the table, the provider's side ([`ProvidedBy`]: a table per implementing
/// type) and the caller's side (`Remote<dyn Trait>` implements the trait).
///
/// # Safety
///
/// `Self::Table` must be the `#[repr(C)]` table of id [`Interface::ID`] and version
/// [`Interface::MAJOR`].[`Interface::MINOR`] that every provider and caller of that id and major
/// agrees on.
pub unsafe trait Interface: 'static {
    /// The interface's id, such as `plughost.kv` (the rules of names).
    const ID: &'static str;
    /// Its major version.
    const MAJOR: u16;
    /// Its minor version: the table of a newer minor only adds functions at the end.
    const MINOR: u16;
    /// The table's signature: each method's name and types, as `#[plugin_api::interface]`
    /// writes them. A Rust caller compares it with the provider's when it queries, so that a
    /// table of the same id and version but different functions is refused, not called.
    const SIGNATURE: &'static str;
    /// The `#[repr(C)]` function table. Its abi_stable layout travels with each provision
    /// ([`PhInterfaceDecl::layout`], see [`table_layout`]), and a Rust caller whose table's
    /// layout is not compatible with the provider's refuses it when it queries.
    type Table: 'static + Sync + StableAbi;
}

/// The address of abi_stable's type layout of `I`'s table, as [`PhInterfaceDecl::layout`] carries
/// it: static data of this library, valid for the rest of the process. [`Host::provide`] and
/// plughost's `PluginHost::provide` pass it; give it to `PluginHost::provide_raw` for a table of
/// `I` provided raw.
pub fn table_layout<I: Interface + ?Sized>() -> *const c_void {
    let layout: &'static TypeLayout = <I::Table as StableAbi>::LAYOUT;
    (layout as *const TypeLayout).cast()
}

/// The table of the interface `Self` whose functions call the methods of the type `S`:
/// `#[plugin_api::interface]` implements it for every `S` that implements the trait
/// (`dyn Kv: ProvidedBy<MyKv>` when `MyKv: Kv`). Each function of [`ProvidedBy::TABLE`] takes
/// a `*const S` as its user data (a thin pointer to the state itself), calls `S`'s method
/// directly (no `dyn` call) inside the panic boundary, and writes the error message only when
/// the method fails.
///
/// [`Arc<S>`](Arc) provides through it (see [`IntoProvision`]); for state that lives elsewhere
/// (a plugin's own state, for instance), build a [`Provision`] from this table with
/// [`Provision::from_raw`].
///
/// # Safety
///
/// Every function of [`ProvidedBy::TABLE`] must accept, as its first argument, a pointer to an
/// `S` that is valid for the call, and may be called from any thread, several at once.
pub unsafe trait ProvidedBy<S>: Interface {
    /// The table whose functions call `S`'s methods on a `*const S`.
    const TABLE: &'static Self::Table;
}

/// A provider of the interface `I` ready to be handed to a host: the table, the state pointer
/// its functions receive first (the `user_data` of `provide_interface`), and the destroy that
/// releases that state. [`Host::provide`] (and plughost's `PluginHost::provide`) take it, or
/// anything that turns into one ([`IntoProvision`]).
///
/// The host runs the destroy exactly once, after the provision ended and every caller
/// released its reference (docs/abi.md, section 17); a `Provision` dropped before it was
/// handed to a host runs it on drop.
pub struct Provision<I: Interface + ?Sized> {
    table: &'static I::Table,
    state: *mut c_void,
    destroy: unsafe extern "C" fn(*mut c_void),
}

// SAFETY: the table's functions and the destroy may be called with the state from any thread
// (the contract of `Provision::from_raw`).
unsafe impl<I: Interface + ?Sized> Send for Provision<I> {}

impl<I: Interface + ?Sized> Provision<I> {
    /// A provision of `table`, whose functions receive `state` first, and which `destroy`
    /// releases: `Provision::<dyn Kv>::from_raw(<dyn Kv as ProvidedBy<MyKv>>::TABLE,
    /// my_kv_pointer.cast(), release)`.
    ///
    /// # Safety
    ///
    /// `table`'s functions accept `state` as their first argument, from any thread, several at
    /// once, until `destroy(state)` runs; `destroy` may run on any thread and is called once.
    pub unsafe fn from_raw(
        table: &'static I::Table,
        state: *mut c_void,
        destroy: unsafe extern "C" fn(*mut c_void),
    ) -> Provision<I> {
        Provision {
            table,
            state,
            destroy,
        }
    }

    /// The table, the state and the destroy, for a host that registers them: the caller now
    /// runs `destroy(state)` exactly once, after the last call.
    pub fn into_raw(
        self,
    ) -> (
        &'static I::Table,
        *mut c_void,
        unsafe extern "C" fn(*mut c_void),
    ) {
        let this = std::mem::ManuallyDrop::new(self);
        (this.table, this.state, this.destroy)
    }
}

impl<I: Interface + ?Sized> Drop for Provision<I> {
    fn drop(&mut self) {
        // SAFETY: never handed to a host (`into_raw` forgets `self`), so this is the one call of
        // `destroy` (the contract of `from_raw`).
        unsafe { (self.destroy)(self.state) }
    }
}

impl<I: Interface + ?Sized> std::fmt::Debug for Provision<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provision")
            .field("id", &I::ID)
            .field("major", &I::MAJOR)
            .field("state", &self.state)
            .finish()
    }
}

/// What [`Host::provide`] accepts as the provider of `I`:
///
/// - a [`Provision`];
/// - `Arc<S>` for any `S` that implements the trait: the table of `S`
///   ([`ProvidedBy<S>`](ProvidedBy)), the state pointer is the `Arc`'s own (one indirect call
///   per method call, no `dyn`); the `Arc` is dropped after the last release;
/// - `Arc<dyn Trait>` (`#[plugin_api::interface]` implements it): as `Arc<S>`, plus a `dyn`
///   call to the object per method call.
pub trait IntoProvision<I: Interface + ?Sized> {
    /// The provision.
    fn into_provision(self) -> Provision<I>;
}

impl<I: Interface + ?Sized> IntoProvision<I> for Provision<I> {
    fn into_provision(self) -> Provision<I> {
        self
    }
}

impl<I: ProvidedBy<S> + ?Sized, S: Send + Sync + 'static> IntoProvision<I> for Arc<S> {
    fn into_provision(self) -> Provision<I> {
        // SAFETY: `I::TABLE`'s functions take a `*const S` (the contract of `ProvidedBy`), valid
        // here until `drop_arc::<S>` gives the `Arc` back, once; `S` is `Send + Sync`.
        unsafe {
            Provision::from_raw(
                <I as ProvidedBy<S>>::TABLE,
                Arc::into_raw(self).cast_mut().cast(),
                rt::drop_arc::<S>,
            )
        }
    }
}

/// A provider bound to the plugin's own state: what [`Host::provide_state`] provides. For an
/// interface made with `#[plugin_api::interface]`, `OnState<S>` implements the trait when `S`
/// does, and each method calls `S`'s on the state [`crate::Plugin::init`] returned, as a handler
/// of [`Host::command`] gets it.
///
/// # Lifetime
///
/// Callers reach the provider directly, without host code, so the host's grace period before
/// the plugin's `shutdown` does not cover their calls. Each call therefore marks itself in this
/// library's grace-period counter (thread-local loads and stores on entry and on exit, each
/// through `__tls_get_addr` in a shared library: no lock, no read-modify-write, no memory shared
/// with other threads' calls), and `shutdown` hides the state and waits until every such call under way
/// has returned before it drops the state. A call that starts once the state is hidden (before
/// `init` returned, or after `shutdown` began) fails with the plugin's "state not available"
/// error without calling `S`; a caller whose reference outlives the provision gets
/// [`PhResult::ShutDown`] from its [`Remote`] as for any provider.
pub struct OnState<S> {
    slot: Arc<StateSlot<S>>,
}

/// The plugin's state for one call of an [`OnState`] provider: marks the call for the grace
/// period of the plugin's `shutdown` until dropped.
pub struct StateCall<'a, S> {
    state: &'a S,
    _inside: crate::quiesce::Inside,
}

impl<S> std::ops::Deref for StateCall<'_, S> {
    type Target = S;

    #[inline]
    fn deref(&self) -> &S {
        self.state
    }
}

impl<S: Send + Sync + 'static> OnState<S> {
    /// Enters a call: the state, or the "state not available" error when there is none. The
    /// methods that `#[plugin_api::interface]` writes for `OnState<S>` call this first.
    ///
    /// # Errors
    ///
    /// [`PhResult::Error`] with a fixed message before `init` returned and from the start of
    /// `shutdown` on.
    #[doc(hidden)]
    #[inline]
    pub fn enter(&self) -> Result<StateCall<'_, S>, Error> {
        // Inside before the load of the state: a `shutdown` that hides the state after this
        // entry waits for this call (see `crate::quiesce`).
        let inside = crate::quiesce::enter();
        // SAFETY: the state is used only through the returned `StateCall`, which keeps this
        // thread inside a call of this library until it is dropped; `shutdown` hides the state
        // and then waits for every such call before it drops it (`Host::provide_state`).
        match unsafe { self.slot.get() } {
            Some(state) => Ok(StateCall {
                state,
                _inside: inside,
            }),
            None => Err(StateSlot::<S>::not_available()),
        }
    }
}

impl Host {
    /// Provides the interface `I`, implemented by the plugin's own state `S` (the type
    /// [`crate::Plugin::init`] returns, named here: `host.provide_state::<dyn Kv, Self>()?` in
    /// `init`): the methods get `&self` of the state, as the handlers of [`Host::command`] do,
    /// with no `Arc` to share it. See [`OnState`] for the lifetime rules: a call under way when
    /// the plugin's `shutdown` begins finishes before the state is dropped, and later calls fail.
    ///
    /// Each call costs the grace-period marks of [`OnState`] more than a provider given to
    /// [`Host::provide`]: a few thread-local accesses, no lock.
    ///
    /// ```
    /// use plugin_api::{Error, Host, Plugin};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// #[plugin_api::interface(id = "example.counter", version = 1)]
    /// pub trait Counter {
    ///     fn next(&self) -> Result<u64, Error>;
    /// }
    ///
    /// /// The plugin's state, which also implements the interface.
    /// struct Counting(AtomicU64);
    ///
    /// impl Counter for Counting {
    ///     fn next(&self) -> Result<u64, Error> {
    ///         Ok(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    ///     }
    /// }
    ///
    /// impl Plugin for Counting {
    ///     const NAME: &'static str = "counting";
    ///     const PROVIDES: &'static [plugin_api::abi::PhInterfaceVersion] =
    ///         &[plugin_api::provides::<dyn Counter>()];
    ///
    ///     fn init(host: &Host) -> Result<Self, Error> {
    ///         host.provide_state::<dyn Counter, Self>()?;
    ///         Ok(Counting(AtomicU64::new(0)))
    ///     }
    /// }
    /// # let mut host = plughost_testing::MockHost::new();
    /// # host.load::<Counting>().unwrap();
    /// # let counter = host.interface::<dyn Counter>().unwrap();
    /// # assert_eq!((counter.next().unwrap(), counter.next().unwrap()), (1, 2));
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`Host::provide`]; [`PhResult::InvalidArgument`] if `S` is not this plugin's type.
    pub fn provide_state<I, S>(&self) -> Result<Handle, Error>
    where
        I: Interface + ProvidedBy<OnState<S>> + ?Sized,
        S: Send + Sync + 'static,
    {
        let slot = self.state_slot::<S>(&format!("interface `{}`", I::ID))?;
        crate::quiesce::init();
        slot.serve_direct_calls();
        self.provide::<I>(Arc::new(OnState { slot }))
    }
}

/// The descriptor entry of the interface `I` with `flags`.
const fn version<I: Interface + ?Sized>(flags: u32) -> PhInterfaceVersion {
    PhInterfaceVersion {
        id: PhStr::new(I::ID),
        major: I::MAJOR,
        minor: I::MINOR,
        flags,
    }
}

/// The entry of [`crate::Plugin::PROVIDES`] for the interface `I`.
pub const fn provides<I: Interface + ?Sized>() -> PhInterfaceVersion {
    version::<I>(0)
}

/// The entry of [`crate::Plugin::REQUIRES`] for the interface `I`: the plugin needs at least
/// `I`'s minor of `I`'s major.
pub const fn requires<I: Interface + ?Sized>() -> PhInterfaceVersion {
    version::<I>(0)
}

/// As [`requires`], for an interface the plugin can do without: the host inits its provider
/// first if there is one, and loads the plugin anyway if there is none.
pub const fn requires_optional<I: Interface + ?Sized>() -> PhInterfaceVersion {
    version::<I>(PH_INTERFACE_OPTIONAL)
}

/// How a [`Remote`] gives its reference back.
enum Releaser {
    /// Through the host services of the plugin that queried it.
    Plugin(Arc<HostLink>),
    /// Through the embedding application's host.
    Custom(Box<dyn Fn(PhHandle) + Send + Sync>),
}

/// A reference to an interface someone provides: calls go straight to the provider's functions.
/// For an interface made with `#[plugin_api::interface]`, `Remote<dyn Trait>` implements the
/// trait, and every call returns [`PhResult::ShutDown`] once the provider is gone (or this
/// reference was released), without calling it. Dropping it releases the reference.
///
/// The query that makes a `Remote` checks that the provider's table is `I`'s, by its signature
/// and, since ABI 1.5, its abi_stable type layout (see [`Remote::check_provider`]); a table that
/// differs is refused with [`PhResult::VersionMismatch`] and one line, before any call.
///
/// `Send + Sync`: calls may be made from any thread, several at once.
pub struct Remote<I: Interface + ?Sized> {
    raw: PhInterface,
    release: Releaser,
    _interface: PhantomData<fn() -> Box<I>>,
}

// SAFETY: the table is immutable and `Sync`; the provider's functions may be called with its
// user data from any thread, several at once (the ABI's contract of `provide_interface`); the
// `alive` word is read atomically; the releaser is `Send + Sync`.
unsafe impl<I: Interface + ?Sized> Send for Remote<I> {}
// SAFETY: as for `Send`: shared references only call the provider and read `alive`.
unsafe impl<I: Interface + ?Sized> Sync for Remote<I> {}

impl<I: Interface + ?Sized> Remote<I> {
    /// A reference from the raw result of a query, released by `release` when dropped.
    ///
    /// # Safety
    ///
    /// `raw` comes from a successful `query_interface` of `I`'s id and major with at least
    /// `size_of::<I::Table>()` bytes of table, and has not been released.
    #[doc(hidden)]
    pub unsafe fn from_raw(raw: PhInterface, release: Box<dyn Fn(PhHandle) + Send + Sync>) -> Self {
        Remote {
            raw,
            release: Releaser::Custom(release),
            _interface: PhantomData,
        }
    }

    /// Whether calls still reach the provider.
    #[inline]
    pub fn is_alive(&self) -> bool {
        // SAFETY: the host's `alive` word stays valid for the rest of the process (the ABI's
        // contract of `PhInterface::alive`), and is only ever accessed atomically.
        unsafe { AtomicU32::from_ptr(self.raw.alive.cast_mut()) }.load(Ordering::Acquire) != 0
    }

    /// Checks that the provider's table is `I`'s: its signature and its type layout, each when
    /// the provider declared one (a C provider declares neither, and is not checked). A mismatch
    /// is an error (and the reference is released when `self` is dropped), so no call is made
    /// through a table that differs from `I`'s. `Host::query` and plughost's
    /// `PluginHost::interface` call it before they return the reference.
    ///
    /// - **Signature**: `I`'s functions must be the first functions of the provider's (a provider
    ///   of a newer minor has more at the end).
    /// - **Layout** (ABI 1.5): when the provider's table has the size of `I`'s (the same minor),
    ///   abi_stable's check of the two layouts must pass: the same functions with the same
    ///   parameter types, down to the fields of the structs they pass, and those types declared
    ///   by the same crate (name, and semver-compatible version). The same layout (the same
    ///   library) is not checked again.
    ///
    /// # Errors
    ///
    /// [`PhResult::VersionMismatch`] with one line naming the interface and what differs: the
    /// first function, or abi_stable's first error (as the host's load-time check reports it).
    #[doc(hidden)]
    pub fn check_provider(&self) -> Result<(), Error> {
        self.check_signature()?;
        self.check_layout()
    }

    fn check_signature(&self) -> Result<(), Error> {
        // SAFETY: the host's copy of the provider's signature, valid until this reference is
        // released (the ABI's contract of `PhInterface::signature`).
        let theirs = unsafe { self.raw.signature.to_str() }.unwrap_or("");
        if theirs.is_empty() || theirs == I::SIGNATURE {
            return Ok(());
        }
        // A provider of a newer minor: its table starts with ours.
        if theirs.starts_with(I::SIGNATURE)
            && (I::SIGNATURE.is_empty() || I::SIGNATURE.ends_with(';'))
        {
            return Ok(());
        }
        let ours: Vec<&str> = I::SIGNATURE.split_terminator(';').collect();
        let provider: Vec<&str> = theirs.split_terminator(';').collect();
        let (here, there) = ours
            .iter()
            .zip(provider.iter())
            .find(|(a, b)| a != b)
            .map(|(a, b)| (format!("`{a}`"), format!("`{b}`")))
            .unwrap_or_else(|| {
                (
                    format!("{} functions", ours.len()),
                    format!("{} functions", provider.len()),
                )
            });
        Err(mismatch::<I>(format!(
            "it has {there} where this one has {here}"
        )))
    }

    fn check_layout(&self) -> Result<(), Error> {
        let ours: &'static TypeLayout = <I::Table as StableAbi>::LAYOUT;
        let theirs = self.raw.layout.cast::<TypeLayout>();
        if theirs.is_null()
            || std::ptr::eq(theirs, ours)
            || self.raw.table_size as usize != std::mem::size_of::<I::Table>()
        {
            return Ok(());
        }
        // SAFETY: a provider's layout is NULL or the `TypeLayout` of its table, static data of
        // its library (the ABI's contract of `PhInterfaceDecl::layout`); libraries are never
        // unloaded, so it is valid for the rest of the process. Its format is abi_stable 0.11's:
        // the host checked at load that every Rust plugin's abi_stable is compatible with its
        // own, which is this one (docs/abi.md, section 4).
        let theirs: &'static TypeLayout = unsafe { &*theirs };
        check_layout_compatibility(ours, theirs).map_err(|errors| {
            let report = errors.to_string();
            log::debug!(
                "interface {} {}: full type layout report:\n{report}",
                I::ID,
                I::MAJOR
            );
            let summary = crate::layout::summary(&report);
            mismatch::<I>(match crate::layout::field_path(&report) {
                Some(path) => format!("at {path}: {summary}"),
                None => summary,
            })
        })
    }

    /// The provider's minor version of the interface.
    pub fn minor(&self) -> u16 {
        self.raw.minor
    }

    /// The table and the provider's user data, if the provider is still there: for the methods
    /// that `#[plugin_api::interface]` generates.
    ///
    /// # Errors
    ///
    /// [`PhResult::ShutDown`] once the provider is gone or the reference was released.
    #[doc(hidden)]
    #[inline]
    pub fn table(&self) -> Result<(&I::Table, *mut c_void), Error> {
        if !self.is_alive() {
            return Err(gone::<I>());
        }
        // SAFETY: the query checked that the table is at least `I::Table`'s size (the contract
        // of `from_raw` and `Host::query`), and the provider keeps it valid and unchanged until
        // its destroy, which waits for this reference's release.
        Ok((
            unsafe { &*self.raw.table.cast::<I::Table>() },
            self.raw.user_data,
        ))
    }
}

/// The error of a provider whose table differs from `I`'s: `what` says how.
#[cold]
fn mismatch<I: Interface + ?Sized>(what: String) -> Error {
    Error::with_code(
        PhResult::VersionMismatch,
        format!(
            "interface {} {}: the provider's table differs from this one: {what}",
            I::ID,
            I::MAJOR
        ),
    )
}

#[cold]
fn gone<I: Interface + ?Sized>() -> Error {
    Error::with_code(
        PhResult::ShutDown,
        format!("the provider of {} {} is gone", I::ID, I::MAJOR),
    )
}

impl<I: Interface + ?Sized> Drop for Remote<I> {
    fn drop(&mut self) {
        match &self.release {
            Releaser::Plugin(link) => {
                if let Ok(services) = link.services() {
                    // SAFETY: `ctx` and `services` are the host's, valid on any thread while the
                    // link is active (`HostLink::services`); the handle is this reference's.
                    unsafe { (services.release_interface)(link.ctx, self.raw.handle) };
                }
            }
            Releaser::Custom(release) => release(self.raw.handle),
        }
    }
}

impl<I: Interface + ?Sized> std::fmt::Debug for Remote<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("id", &I::ID)
            .field("major", &I::MAJOR)
            .field("minor", &self.raw.minor)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Host {
    /// Provides the interface `I`, implemented by `provider`: an `Arc` of a type that
    /// implements the trait (`host.provide::<dyn Kv>(Arc::new(MyKv))`: the table of that type,
    /// calls reach its methods directly), an `Arc<dyn Trait>`, or a [`Provision`] of state the
    /// plugin keeps elsewhere (see [`IntoProvision`]). Every plugin and the application may then
    /// query it; declare it in [`crate::Plugin::PROVIDES`] so that the host inits this plugin
    /// before its users. The provider is dropped (its destroy runs) once the interface ended
    /// (unregistered, or this plugin's end) and every caller released it; on an error, before
    /// this returns.
    ///
    /// # Errors
    ///
    /// [`PhResult::AlreadyExists`] if someone provides that id and major already,
    /// [`PhResult::ShutDown`] after shutdown, [`PhResult::LimitExceeded`];
    /// [`PhResult::NotFound`] from a host older than ABI 1.3.
    pub fn provide<I: Interface + ?Sized>(
        &self,
        provider: impl IntoProvision<I>,
    ) -> Result<Handle, Error> {
        let provision = provider.into_provision();
        let services = self.link.services()?;
        if services.abi_minor < 3 {
            return Err(Error::with_code(
                PhResult::NotFound,
                "the host is older than ABI 1.3: no interfaces",
            ));
        }
        let (table, state, destroy) = provision.into_raw();
        let decl = PhInterfaceDecl {
            struct_size: std::mem::size_of::<PhInterfaceDecl>() as u32,
            minor: I::MINOR,
            major: I::MAJOR,
            id: PhStr::new(I::ID),
            table: (table as *const I::Table).cast(),
            table_size: std::mem::size_of::<I::Table>() as u32,
            signature: PhStr::new(I::SIGNATURE),
            layout: table_layout::<I>(),
        };
        self.register(
            &format!("provide_interface({:?}, {})", I::ID, I::MAJOR),
            state,
            |user_data, out| {
                // SAFETY: `ctx` and `services` are the host's, valid on any thread while the
                // link is active (`HostLink::services`), of ABI 1.3 or later (checked above);
                // `decl` outlives the call; `user_data` is the provision's state, which its
                // table's functions take and its destroy releases, once (the contract of
                // `Provision::from_raw`); the host runs `destroy` also when it refuses.
                unsafe {
                    (services.provide_interface)(
                        self.link.ctx,
                        &decl,
                        user_data,
                        Some(PhDestroyCallback(destroy)),
                        out,
                    )
                }
            },
        )
    }

    /// Queries the interface `I` (its id and major, with a table at least as large as `I`'s):
    /// `host.query::<dyn Kv>()?.get("key")`. Keep the [`Remote`] for as long as you call it;
    /// dropping it releases the reference. Declare the requirement in
    /// [`crate::Plugin::REQUIRES`] so that the provider is initialised first.
    ///
    /// # Errors
    ///
    /// [`PhResult::NotFound`] if nobody provides it (or the host is older than ABI 1.3),
    /// [`PhResult::VersionMismatch`] if the provider's table is older than `I`'s, or differs from
    /// it (its signature or its type layout: see [`Remote`]), [`PhResult::ShutDown`],
    /// [`PhResult::LimitExceeded`].
    pub fn query<I: Interface + ?Sized>(&self) -> Result<Remote<I>, Error> {
        let services = self.link.services()?;
        if services.abi_minor < 3 {
            return Err(Error::with_code(
                PhResult::NotFound,
                "the host is older than ABI 1.3: no interfaces",
            ));
        }
        let mut raw = PhInterface {
            struct_size: std::mem::size_of::<PhInterface>() as u32,
            minor: 0,
            reserved: 0,
            table: std::ptr::null(),
            table_size: 0,
            user_data: std::ptr::null_mut(),
            alive: std::ptr::null(),
            handle: PH_INVALID_HANDLE,
            signature: PhStr::EMPTY,
            // A host of ABI 1.3 or 1.4 leaves it NULL.
            layout: std::ptr::null(),
        };
        // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link is
        // active (`HostLink::services`), of ABI 1.3 or later (checked above); the id outlives
        // the call and `raw` is writable with its size set.
        let code = unsafe {
            (services.query_interface)(
                self.link.ctx,
                PhStr::new(I::ID),
                I::MAJOR,
                std::mem::size_of::<I::Table>() as u32,
                &mut raw,
            )
        };
        Error::check(&format!("query_interface({:?}, {})", I::ID, I::MAJOR), code)?;
        let remote = Remote {
            raw,
            release: Releaser::Plugin(Arc::clone(&self.link)),
            _interface: PhantomData,
        };
        remote.check_provider()?;
        Ok(remote)
    }
}

/// What the code generated by `#[plugin_api::interface]` calls; not a public API.
#[doc(hidden)]
pub mod rt {
    use std::ffi::c_void;
    use std::sync::Arc;

    use crate::abi::{PhBytes, PhBytesSink, PhResult, PhResultCode, PhStr};
    use crate::boundary::guard;
    use crate::error::Error;

    /// Collects what the other side writes to a [`PhBytesSink`].
    #[derive(Default)]
    pub struct Collector {
        bytes: Vec<u8>,
        written: bool,
    }

    impl Collector {
        /// An empty collector.
        pub fn new() -> Collector {
            Collector::default()
        }

        /// The sink that fills this collector; valid while the collector is neither moved nor
        /// dropped.
        pub fn sink(&mut self) -> PhBytesSink {
            PhBytesSink {
                context: (self as *mut Collector).cast(),
                write: collect,
            }
        }

        /// The bytes written.
        pub fn into_bytes(self) -> Vec<u8> {
            self.bytes
        }

        /// The bytes written, if any were.
        pub fn into_option_bytes(self) -> Option<Vec<u8>> {
            self.written.then_some(self.bytes)
        }

        /// The text written.
        ///
        /// # Errors
        ///
        /// [`PhResult::InvalidUtf8`] if it is not UTF-8.
        pub fn into_string(self) -> Result<String, Error> {
            String::from_utf8(self.bytes).map_err(|_| {
                Error::with_code(PhResult::InvalidUtf8, "the provider's text is not UTF-8")
            })
        }

        /// The text written, if any was.
        ///
        /// # Errors
        ///
        /// As [`Collector::into_string`].
        pub fn into_option_string(self) -> Result<Option<String>, Error> {
            if !self.written {
                return Ok(None);
            }
            self.into_string().map(Some)
        }
    }

    /// Where the provider writes the message of a failed call, and the sink it writes it
    /// through: nothing until it does. A successful call costs three stores (the sink's two
    /// fields, "no message") and a compare with zero when it is dropped; the sink's address is
    /// the context it passes, so the caller computes one address for both.
    ///
    /// The message is boxed so that "none" is a NULL pointer: an `Option<Vec<u8>>` would store
    /// and compare a 64-bit niche constant instead (two more instructions per call); and it is
    /// released out of line, so that the caller's loop keeps its registers.
    #[repr(C)]
    pub struct ErrorMessage {
        /// The sink [`ErrorMessage::sink`] passes; its context is the address of `self`, once
        /// `sink` ran.
        sink: PhBytesSink,
        /// The bytes written, if any were: NULL, or a `Box<Vec<u8>>` of [`collect_message`]'s,
        /// which [`ErrorMessage::take`] gives back.
        message: *mut Vec<u8>,
    }

    impl Drop for ErrorMessage {
        #[inline(always)]
        fn drop(&mut self) {
            if !self.message.is_null() {
                drop(self.take());
            }
        }
    }

    impl Default for ErrorMessage {
        #[inline(always)]
        fn default() -> ErrorMessage {
            ErrorMessage::new()
        }
    }

    impl ErrorMessage {
        /// No message yet.
        #[inline(always)]
        pub fn new() -> ErrorMessage {
            ErrorMessage {
                sink: PhBytesSink {
                    // Set by `sink`, which knows where `self` is.
                    context: std::ptr::null_mut(),
                    // Generic only so that each calling crate has its own copy, whose address
                    // is an instruction-relative constant rather than a load from the GOT.
                    write: collect_message::<()>,
                },
                message: std::ptr::null_mut(),
            }
        }

        /// The message written, if any was; none is left.
        #[cold]
        #[inline(never)]
        fn take(&mut self) -> Option<Vec<u8>> {
            let message = std::mem::replace(&mut self.message, std::ptr::null_mut());
            // SAFETY: NULL or a `Box` that `collect_message` leaked for this message, and only
            // for it: this is its one owner.
            (!message.is_null()).then(|| *unsafe { Box::from_raw(message) })
        }

        /// The sink that writes the message here, to pass to the provider; valid while `self`
        /// is neither moved nor dropped.
        #[inline(always)]
        pub fn sink(&mut self) -> *const PhBytesSink {
            let this: *mut ErrorMessage = self;
            // SAFETY: `this` is `self`, valid; the sink and the context are both derived from
            // it, so the write function's access to the message (through the context) and the
            // provider's reads of the sink do not invalidate each other.
            unsafe {
                (*this).sink.context = this.cast();
                std::ptr::addr_of!((*this).sink)
            }
        }

        /// The error of a call (`what`) that returned `code`, with the message written here.
        #[cold]
        #[inline(never)]
        pub fn into_error(mut self, what: &str, code: PhResultCode) -> Error {
            let code = PhResult::from_code(code);
            match self.take() {
                Some(bytes) if !bytes.is_empty() => {
                    Error::with_code(code, format!("{what}: {}", String::from_utf8_lossy(&bytes)))
                }
                _ => Error::with_code(code, format!("{what}: {code}")),
            }
        }
    }

    /// The write function of [`ErrorMessage::sink`]. `T` is unused: being generic, the function
    /// is compiled into each crate that calls an interface, where its address is a constant.
    #[allow(clippy::extra_unused_type_parameters)]
    unsafe extern "C" fn collect_message<T>(context: *mut c_void, bytes: PhBytes) {
        guard(None, "an interface's error message", (), || {
            // SAFETY: `context` is the `ErrorMessage` of `ErrorMessage::sink`, on the stack of
            // the caller, which waits for the call that received the sink. Only its message is
            // borrowed: the provider may hold a pointer to its sink.
            let message =
                unsafe { &mut *std::ptr::addr_of_mut!((*context.cast::<ErrorMessage>()).message) };
            // SAFETY: the provider passes bytes valid for this call.
            if let Ok(bytes) = unsafe { bytes.to_bytes() } {
                if message.is_null() {
                    *message = Box::into_raw(Box::default());
                }
                // SAFETY: a `Box` leaked just above or by an earlier write of this call, owned
                // by the `ErrorMessage`, which only this call's writes touch until it returns.
                unsafe { &mut **message }.extend_from_slice(bytes);
            }
        })
    }

    unsafe extern "C" fn collect(context: *mut c_void, bytes: PhBytes) {
        guard(None, "an interface's output", (), || {
            // SAFETY: `context` is the `Collector` of `Collector::sink`, on the stack of the
            // caller, which waits for the call that received the sink.
            let collector = unsafe { &mut *context.cast::<Collector>() };
            // SAFETY: the provider passes bytes valid for this call.
            if let Ok(bytes) = unsafe { bytes.to_bytes() } {
                collector.bytes.extend_from_slice(bytes);
                collector.written = true;
            }
        })
    }

    /// Writes `bytes` to `sink`, if it is not NULL.
    ///
    /// # Safety
    ///
    /// `sink` is NULL or a sink the caller passed, valid for the call under way.
    pub unsafe fn write_sink(sink: *const PhBytesSink, bytes: &[u8]) {
        // SAFETY: NULL or valid for the call (this function's contract).
        if let Some(sink) = unsafe { sink.as_ref() } {
            // SAFETY: the caller's function with its context; the bytes outlive the call.
            unsafe { (sink.write)(sink.context, PhBytes::new(bytes)) };
        }
    }

    /// The state behind an interface's user data (see [`super::ProvidedBy`]).
    ///
    /// # Safety
    ///
    /// `user_data` points to an `S` alive for `'a`.
    #[inline(always)]
    pub unsafe fn state<'a, S>(user_data: *mut c_void) -> &'a S {
        // SAFETY: this function's contract.
        unsafe { &*user_data.cast_const().cast::<S>() }
    }

    /// The destroy of a provision made from an `Arc<S>`: gives the `Arc` back and drops it (in
    /// the panic boundary).
    ///
    /// # Safety
    ///
    /// `state` comes from `Arc::<S>::into_raw`, and this is its one release.
    pub unsafe extern "C" fn drop_arc<S>(state: *mut c_void) {
        // SAFETY: this function's contract.
        let state = unsafe { Arc::from_raw(state.cast_const().cast::<S>()) };
        guard(None, "the drop of an interface's provider", (), move || {
            drop(state)
        });
    }

    /// Reads a string argument.
    ///
    /// # Safety
    ///
    /// `s` meets [`PhStr::to_str`]'s contract for `'a`.
    pub unsafe fn arg_str<'a>(s: PhStr) -> Result<&'a str, Error> {
        // SAFETY: this function's contract.
        unsafe { s.to_str() }
            .map_err(|code| Error::with_code(code, "an argument is not a valid string"))
    }

    /// Reads a bytes argument.
    ///
    /// # Safety
    ///
    /// `b` meets [`PhBytes::to_bytes`]'s contract for `'a`.
    pub unsafe fn arg_bytes<'a>(b: PhBytes) -> Result<&'a [u8], Error> {
        // SAFETY: this function's contract.
        unsafe { b.to_bytes() }
            .map_err(|code| Error::with_code(code, "an argument is not valid bytes"))
    }

    /// Runs a provider's method (`what`) in the panic boundary: `f` returns the method's
    /// result, delivered already; an error's message goes to `error` (on that path only), and
    /// its code is returned.
    ///
    /// # Safety
    ///
    /// `error` is NULL or a sink valid for the call under way.
    #[inline(always)]
    pub unsafe fn serve(
        what: &'static str,
        error: *const PhBytesSink,
        f: impl FnOnce() -> Result<(), Error>,
    ) -> PhResultCode {
        guard(None, what, PhResult::Panicked.code(), || match f() {
            Ok(()) => PhResult::Ok.code(),
            // SAFETY: NULL or valid for the call (this function's contract).
            Err(e) => unsafe { failed(error, e) },
        })
    }

    /// The error path of [`serve`]: writes the message to `error` and returns the code.
    ///
    /// # Safety
    ///
    /// As [`serve`].
    #[cold]
    #[inline(never)]
    unsafe fn failed(error: *const PhBytesSink, e: Error) -> PhResultCode {
        // SAFETY: NULL or valid for the call (this function's contract).
        unsafe { write_sink(error, e.message().as_bytes()) };
        e.failure_code().code()
    }

    /// Runs a caller's callback in the panic boundary: an error or a panic stops the enumeration.
    pub fn callback(f: impl FnOnce() -> Result<bool, Error>) -> bool {
        guard(None, "an interface callback", false, || {
            f().unwrap_or(false)
        })
    }
}
