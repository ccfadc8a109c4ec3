//! plughost: a plugin host that loads shared-library plugins through a C ABI.
//!
//! The host is a library first: [`PluginHost`] loads a folder of plugin libraries, hands each the
//! table of host services, and runs the commands and dispatches the events that plugins register.
//! The `plughost` binary is a thin command line over it.
//!
//! The ABI itself lives in [`plugin_api::abi`].
#![deny(missing_docs)]

mod boundary;
mod call;
mod commands;
mod config;
mod context;
mod copy;
mod enumerate;
mod error;
mod events;
mod host;
mod interfaces;
pub mod isolate;
mod loader;
mod observer;
mod order;
mod output;
mod process;
/// Grace periods: the one mechanism, shared with the plugin side (see its module docs).
use plugin_api::__private::quiesce;
mod registration;
mod registry;
mod reload;
mod services;
mod tasks;
pub mod template;
mod topic;
mod trust;
pub mod validate;

pub use call::{current_call, enter_call, CallGuard, CallKind, PluginCall};
pub use commands::CommandHandle;
pub use config::{Config, ConfigError};
pub use context::PluginState;
pub use error::{CommandError, DiscoverError, HostError, LoadError, LoadErrorKind, ReloadError};
pub use events::ALL_TOPICS;
pub use host::{CommandSummary, PluginHost, PluginSummary, LINKED_PATH};
pub use interfaces::{INTERFACE_ENDED_TOPIC, INTERFACE_REPLACED_TOPIC};
pub use isolate::{PluginMode, Restart, DEFAULT_CALL_TIMEOUT};
pub use loader::{
    discover, inspect, inspect_with, is_optional_function, Inspection, InterfaceVersion,
    LayoutCheck, C_LIBRARY_NAME, SLOW_CALL,
};
pub use observer::Observer;
pub use reload::{Reloaded, StateHandoff};
