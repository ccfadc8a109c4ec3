//! The host's error types.

use std::io;
use std::path::PathBuf;

use plugin_api::abi::PhResult;

/// Why a library was refused. Shown as one line: `FILE: cause`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct LoadError {
    /// The library file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: LoadErrorKind,
}

/// The ways loading a plugin library can fail.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// An isolated plugin's child process failed: it could not start, died, timed out or broke
    /// the protocol before the plugin's `init` returned. The message names the plugin, the phase
    /// and the cause.
    #[error("{0}")]
    Isolated(String),
    /// The path is not a regular file: a directory, a dangling symbolic link, a device.
    #[error("not a plugin library: {0}")]
    NotAFile(&'static str),
    /// The file is an object file that the dynamic loader must not map: truncated, or not a
    /// shared library.
    #[error("malformed library: {0}")]
    Malformed(String),
    /// The file, or its folder, can be changed by someone the host does not trust: it is writable
    /// by group or others, or owned by a user who is neither the one running the host (the
    /// effective user) nor root. Refused unless insecure files are allowed
    /// ([`crate::PluginHost::set_allow_insecure`], `plughost --allow-insecure`).
    #[error("{reason}; pass --allow-insecure to load it anyway")]
    Insecure {
        /// Which file or folder and why, such as `writable by others (mode 0666)` or
        /// `its folder /srv/plugins is owned by uid 1001, neither the user running the host (uid
        /// 0) nor root`.
        reason: String,
    },
    /// The dynamic loader could not open the file (not a library, truncated, unreadable,
    /// unresolved symbols).
    #[error("cannot open library: {0}")]
    Open(String),
    /// The library does not export the entry point.
    #[error("not a plugin: no entry point `{symbol}`")]
    NoEntryPoint {
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// The entry point returned NULL.
    #[error("the entry point returned no descriptor")]
    NoDescriptor,
    /// The plugin was built for another ABI version.
    #[error("ABI version {major}.{minor} is not supported (host ABI {host_major}.{host_minor}: same major, minor at most {host_minor})")]
    AbiVersion {
        /// The plugin's ABI major version.
        major: u16,
        /// The plugin's ABI minor version.
        minor: u16,
        /// The host's ABI major version.
        host_major: u16,
        /// The host's ABI minor version.
        host_minor: u16,
    },
    /// abi_stable's type layout carried by the plugin differs from the host's.
    #[error("type layout of the ABI differs from the host's: {summary} (RUST_LOG=debug shows the full report)")]
    Layout {
        /// One line naming what differs.
        summary: String,
        /// abi_stable's full report.
        report: String,
    },
    /// A table is smaller than this ABI version requires.
    #[error("{table} is {size} bytes, the host needs at least {needed}")]
    StructTooSmall {
        /// The table.
        table: &'static str,
        /// Its declared `struct_size`.
        size: u32,
        /// The size the host needs.
        needed: usize,
    },
    /// A required function of the plugin's table is NULL.
    #[error("required function `{0}` is missing")]
    MissingFunction(&'static str),
    /// The plugin's name does not follow the rules.
    #[error("invalid plugin name {name:?}: {why}")]
    InvalidName {
        /// The name; one longer than the limit is cut after a few bytes more, and ends in `…`.
        name: String,
        /// Which rule it breaks.
        why: String,
    },
    /// A descriptor string is not valid UTF-8 or has a NULL pointer.
    #[error("descriptor field `{field}`: {code}")]
    BadString {
        /// The field.
        field: &'static str,
        /// Why it could not be read.
        code: PhResult,
    },
    /// A descriptor string is longer than the ABI allows (see `PH_MAX_VERSION_LEN` and
    /// `PH_MAX_DESCRIPTION_LEN` in [`plugin_api::abi`]).
    #[error("the descriptor's {field} is {len} bytes (at most {max})")]
    TooLong {
        /// The field: `version` or `description`.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most the ABI allows.
        max: usize,
    },
    /// Another library already provided a plugin with this name.
    #[error("duplicate plugin name `{name}`, already loaded from {}", first.display())]
    Duplicate {
        /// The plugin name.
        name: String,
        /// The library that provided it first.
        first: PathBuf,
    },
    /// The plugin's `init` failed.
    #[error("init failed: {code}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Init {
        /// The code `init` returned (`PANICKED` for a panic, or a fault during `init`).
        code: PhResult,
        /// Why, as the plugin said it: the last error-level record it logged during `init`
        /// (a Rust plugin's safe layer logs the `Error` its `init` returned, or its panic), cut
        /// to at most 1 KiB. `None` if it logged none.
        message: Option<String>,
    },
    /// The descriptor's list of provided or required interfaces is malformed: NULL with a
    /// nonzero count, more than [`plugin_api::abi::PH_MAX_INTERFACES`] entries, or an id that
    /// breaks the rules of names.
    #[error("the descriptor's `{field}` list ({count} entries) is malformed")]
    BadInterfaceList {
        /// `provides` or `requires`.
        field: &'static str,
        /// The count the descriptor gave.
        count: usize,
    },
    /// A required interface is provided by no loaded plugin and not by the application.
    #[error("requires the interface {required}, which nothing provides{}", found.as_ref().map(|f| format!(" (provided: {f})")).unwrap_or_default())]
    MissingInterface {
        /// The requirement.
        required: crate::InterfaceVersion,
        /// What is provided under that id, if anything (another major, or an older minor).
        found: Option<String>,
    },
    /// The plugin is part of a cycle of required interfaces.
    #[error("its required interfaces form a cycle: {cycle}")]
    InterfaceCycle {
        /// The plugins and interfaces of the cycle, such as `a -> b.api 1 -> b -> a.api 1 -> a`.
        cycle: String,
    },
}

/// Why the plugins folder could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read plugins folder {}: {source}", path.display())]
pub struct DiscoverError {
    /// The folder.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

/// Why running a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// No plugin registered a command of that name.
    #[error("no command named `{0}` (see `plughost list`)")]
    Unknown(String),
    /// The command reported an error.
    #[error("{command}: {message}")]
    Failed {
        /// The command.
        command: String,
        /// Its result code.
        code: PhResult,
        /// The message it set, or the code's description.
        message: String,
    },
    /// The command panicked; its plugin is now faulted.
    #[error("{command}: the command panicked; plugin `{plugin}` is faulted and its callbacks are unregistered")]
    Panicked {
        /// The command.
        command: String,
        /// Its plugin.
        plugin: String,
    },
    /// Writing the command's output failed.
    #[error("{command}: writing output: {source}")]
    Output {
        /// The command.
        command: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// Why a host operation on a plugin or topic failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// No active plugin has that name.
    #[error("no active plugin named `{0}`")]
    UnknownPlugin(String),
    /// The operation returned an error code.
    #[error("{operation}: {code}")]
    Code {
        /// What was attempted.
        operation: String,
        /// The result code.
        code: PhResult,
    },
}

impl HostError {
    /// The ABI's code for this error, as a front end in another language reports it:
    /// [`PhResult::NotFound`] for an unknown plugin, the operation's code otherwise.
    pub fn code(&self) -> PhResult {
        match self {
            HostError::UnknownPlugin(_) => PhResult::NotFound,
            HostError::Code { code, .. } => *code,
        }
    }
}

/// Why [`crate::PluginHost::reload`] or [`crate::PluginHost::unload`] failed. In every case the
/// plugin is as it was: a reload that fails leaves the old version in place and serving.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// No plugin of that name is loaded (active or faulted).
    #[error("no plugin named `{0}` is loaded")]
    UnknownPlugin(String),
    /// The plugin runs in a child process ([`crate::PluginHost::isolate`]) and its new build
    /// cannot: the in-process checks refuse it (the log says why), or it provides or requires an
    /// interface, which does not cross to a child. The old version keeps serving.
    #[error("the new build of `{0}` cannot run isolated: its checks fail, or it uses interfaces (see the log); the old version keeps serving")]
    Isolated(String),
    /// The plugin is linked into the application: it has no file to reload.
    #[error("plugin `{0}` is linked into the application: there is no file to reload")]
    Linked(String),
    /// The new build was refused: a check failed, or its `init` did.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The file now holds another plugin.
    #[error("{}: the file now holds plugin `{found}`, not `{expected}`", path.display())]
    NameChanged {
        /// The file.
        path: PathBuf,
        /// The plugin that was loaded from it.
        expected: String,
        /// The plugin it holds now.
        found: String,
    },
    /// While the new build initialised, another plugin registered the name of one of its
    /// commands; the new build was shut down.
    #[error("plugin `{name}`: its new build's command `{command}` was registered meanwhile by plugin `{plugin}`")]
    Taken {
        /// The plugin being reloaded.
        name: String,
        /// The command.
        command: String,
        /// The plugin that registered it.
        plugin: String,
    },
    /// Called from inside a callback (a command, an event handler, an enumeration), where the
    /// wait for the calls under way would wait for itself.
    #[error("reload and unload cannot be called from inside a plugin call or a callback")]
    InsideCall,
    /// The new build does not provide an interface that the old version provides and another
    /// plugin requires; the old version keeps serving.
    #[error(
        "the new build of `{name}` does not provide {interface}, which plugin `{plugin}` requires"
    )]
    DropsInterface {
        /// The plugin reloaded.
        name: String,
        /// The requirement, such as `plughost.kv 1.0`.
        interface: String,
        /// The plugin that requires it.
        plugin: String,
    },
}
