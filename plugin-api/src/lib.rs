//! The plughost plugin ABI and the safe Rust layer for plugin authors.
//!
//! - [`abi`]: the C ABI itself, every type that crosses the boundary. The host, C plugins (through
//!   the generated header) and the safe layer all use it.
//! - The safe layer: implement [`Plugin`], export it with [`export_plugin!`], and use the [`Host`]
//!   handle for the host services. No `unsafe`, no `extern "C"`: every call across the boundary is
//!   wrapped so that a panic becomes an error result and a log record, never an abort.
//! - Testing a plugin in-process: the crate `plughost-testing` (folder `testing`) runs it in the
//!   real host's core, linked in with [`linked_descriptor`].
//! - `log::info!` and the other `log` macros inside a plugin reach the host's logger, with the
//!   plugin's name as the target; records above the host's level are dropped on the plugin side.
//!
//! # Example
//!
//! ```
//! use plugin_api::{Command, Error, Event, Host, Plugin};
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! /// The plugin's state, which its handlers get as `&self`.
//! struct Hello {
//!     events: AtomicU64,
//! }
//!
//! impl Plugin for Hello {
//!     const NAME: &'static str = "hello";
//!     // VERSION and DESCRIPTION: those of the crate's Cargo.toml, by default.
//!
//!     fn init(host: &Host) -> Result<Self, Error> {
//!         host.command(
//!             Command::new("hello").about("Greets NAME").usage("NAME [TIMES]"),
//!             |me: &Self, (name, times): (String, Option<u32>), out| {
//!                 let events = me.events.load(Ordering::Relaxed);
//!                 for _ in 0..times.unwrap_or(1) {
//!                     writeln!(out, "Hello, {name}! ({events} events so far)")?;
//!                 }
//!                 Ok(())
//!             },
//!         )?;
//!         host.on("*", |me: &Self, _: &Event<'_>| {
//!             me.events.fetch_add(1, Ordering::Relaxed);
//!         })?;
//!         Ok(Hello { events: AtomicU64::new(0) })
//!     }
//! }
//!
//! plugin_api::export_plugin!(Hello);
//! ```
//!
//! Handlers may also be closures over what they need, with the raw arguments:
//! [`Host::register_command`] and [`Host::subscribe`], on which [`Host::command`] and
//! [`Host::on`] are built.
#![deny(missing_docs)]

// The modules form layers; each imports only modules of the layers before it:
// 1. `abi` (the C ABI), `layout` (its abi_stable type layout);
// 2. `error`, then `link` (the raw context and services), `logger`, `boundary` (the one
//    `catch_unwind`), `callback` (the state behind a registration);
// 3. `host` (the `Host` handle), `state` (the plugin's state for bound handlers), `args` (typed
//    command arguments), then one module per host service: `command`, `config`, `enumerate`,
//    `event`, `interface`;
// 4. `plugin` (the `Plugin` trait and the exported function table).
pub mod abi;
mod args;
mod boundary;
mod callback;
mod command;
mod config;
mod enumerate;
mod error;
mod event;
mod host;
mod interface;
pub mod layout;
mod link;
mod logger;
mod plugin;
#[doc(hidden)]
pub mod quiesce;
mod state;
mod tasks;

pub use args::{Args, FromArg, FromArgs};
pub use command::{Command, Output};
pub use enumerate::{CommandInfo, PluginInfo};
pub use error::{Error, Outcome, Result};
pub use event::Event;
pub use host::{Handle, Host};
pub use interface::{
    provides, requires, requires_optional, table_layout, Interface, IntoProvision, OnState,
    ProvidedBy, Provision, Remote, StateCall,
};
pub use plugin::{linked_descriptor, Plugin};
/// Turns a trait into a typed interface between plugins (ABI 1.3): see [`Interface`].
///
/// `#[plugin_api::interface(id = "...", version = N)]` (and `minor = M`, default 0) on a trait
/// generates its `#[repr(C)]` function table `TraitTable`, the provider's side
/// ([`ProvidedBy`]) and the caller's (`Remote<dyn Trait>` implements the trait). Methods take
/// `&self`, then arguments of these types: `&str`, `&[u8]`, integers, floats, `bool`, a
/// `#[repr(C)]` type of the crate's own that derives abi_stable's `StableAbi` (passed as is),
/// and `&mut dyn FnMut(..) -> bool` callbacks (whose arguments are of the other types); they
/// return `Result<T, Error>`, `T` one of `()`, the plain types above, `String`, `Vec<u8>`,
/// `Option<String>`, `Option<Vec<u8>>`.
///
/// The table derives abi_stable's `StableAbi`: its layout travels with each provision, and a
/// Rust caller whose table's layout differs refuses the provider when it queries
/// ([`Remote::check_provider`]), also where the signatures agree: a struct of the same name with
/// other fields, say. So the crate that declares an interface lists `abi_stable = "0.11"` among
/// its own `[dependencies]` (the derive's code names `::abi_stable`, which plugin-api's
/// re-export cannot stand in for; without it the attribute fails with one line saying so), and
/// a type passed as is derives `StableAbi` too:
///
/// ```
/// use plugin_api::Error;
///
/// #[repr(C)]
/// #[derive(Clone, Copy, abi_stable::StableAbi)]
/// pub struct Size {
///     pub width: u32,
///     pub height: u32,
/// }
///
/// #[plugin_api::interface(id = "example.shape", version = 1)]
/// pub trait Shape {
///     fn area(&self, size: Size) -> Result<u64, Error>;
/// }
/// ```
///
/// A type without it is refused where it is used:
///
/// ```compile_fail
/// use plugin_api::Error;
///
/// #[repr(C)]
/// #[derive(Clone, Copy)]
/// pub struct Size {
///     pub width: u32,
///     pub height: u32,
/// }
///
/// #[plugin_api::interface(id = "example.shape", version = 1)]
/// pub trait Shape {
///     fn area(&self, size: Size) -> Result<u64, Error>;
/// }
/// ```
///
/// abi_stable compares types by name, fields and the crate that declared them (its name, and a
/// semver-compatible version): declare an interface once, in a crate that its providers and
/// callers depend on (as `plughost-kv-api` declares `plughost.kv`), not in each of them.
pub use plugin_api_macros::interface;

/// Items used by [`export_plugin!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::interface::rt as iface;
    pub use crate::logger::route_every_call;
    pub use crate::plugin::{descriptor, vtable, Package};
    pub use crate::quiesce;
    pub use abi_stable;
}
