//! The [`Plugin`] trait and the glue that [`crate::export_plugin!`] exports for it.

use std::ffi::c_void;
use std::sync::Arc;

use crate::abi::{
    PhBytes, PhBytesSink, PhHostContext, PhHostServices, PhInitFn, PhInterfaceVersion,
    PhPluginDescriptor, PhPluginVtable, PhRestoreStateFn, PhResult, PhResultCode, PhSaveStateFn,
    PhShutdownFn, PhStr, PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR,
};
use crate::boundary::guard;
use crate::error::Error;
use crate::host::Host;
use crate::link::HostLink;
use crate::logger;
use crate::state::{ErasedSlot, StateSlot};

/// A plugin written in safe Rust.
///
/// Implement it on your plugin's state and export it with [`crate::export_plugin!`]. The host
/// calls [`Plugin::init`] once after loading the library, and [`Plugin::shutdown`] once when it
/// shuts the plugin down (never after a fault), both on the host's main thread. The library is
/// never unloaded (see the lifetime model in [`crate::abi`]).
pub trait Plugin: Sized + Send + Sync + 'static {
    /// The plugin's unique name, its id: 1 to [`crate::abi::PH_MAX_NAME_LEN`] bytes of ASCII
    /// letters, digits, `-`, `_` or `.`.
    const NAME: &'static str;
    /// The plugin's version. Default (empty): the `version` of the plugin crate's `Cargo.toml`
    /// (`CARGO_PKG_VERSION`), which [`crate::export_plugin!`] fills in from the crate it is
    /// used in.
    ///
    /// [`linked_descriptor`] (and so the mock host of `plughost-testing`) is not expanded in
    /// the plugin's crate: it takes the version of the package Cargo runs (`cargo test`,
    /// `cargo run`) when the plugin's type is defined in that package's library, and leaves it
    /// empty otherwise (see [`linked_descriptor`]).
    const VERSION: &'static str = "";
    /// One line saying what the plugin does. Default (empty): the `description` of the plugin
    /// crate's `Cargo.toml` (`CARGO_PKG_DESCRIPTION`), filled in by [`crate::export_plugin!`],
    /// as for [`Plugin::VERSION`].
    const DESCRIPTION: &'static str = "";
    /// The interfaces the plugin provides during `init` (with [`Host::provide`]), such as
    /// `&[plugin_api::provides::<Kv>()]`. The host inits providers before their users. Default:
    /// none.
    const PROVIDES: &'static [PhInterfaceVersion] = &[];
    /// The interfaces the plugin requires, such as `&[plugin_api::requires::<Kv>()]` (or
    /// [`crate::requires_optional`]). The host inits their providers first and refuses the
    /// plugin, before `init`, if a requirement that is not optional is not provided. Default:
    /// none.
    const REQUIRES: &'static [PhInterfaceVersion] = &[];

    /// Sets the plugin up: register commands and subscriptions through `host`, and return the
    /// plugin's state.
    ///
    /// Handlers registered with [`Host::command`] and [`Host::on`] get `&Self`, this state, from
    /// the return of `init` until `shutdown` (a call before `init` returned fails, without running
    /// the handler). Those registered with [`Host::register_command`] and [`Host::subscribe`]
    /// get only what their closure holds. Keep a clone of `host` in the state if handlers need
    /// the host.
    ///
    /// # Errors
    ///
    /// An `Err` refuses the plugin: the host logs the message, undoes the registrations and does
    /// not call `shutdown`.
    fn init(host: &Host) -> Result<Self, Error>;

    /// Releases the plugin's resources; join any thread the plugin started. Registrations end
    /// when it returns. The default does nothing.
    fn shutdown(self, host: &Host) {
        let _ = host;
    }

    /// Whether the plugin hands its state over to its next build when the host reloads it
    /// (`plughost shell`'s `reload`, `PluginHost::reload`): then the host calls
    /// [`Plugin::save_state`] on the old version and [`Plugin::restore_state`] on the new one.
    /// Default: `false` (the state is not saved, and a saved state is not taken).
    const HANDS_OVER_STATE: bool = false;

    /// The state to hand over to the plugin's next build, in a format of your own: start it with
    /// a format version, since the next build may read it differently. Called once, on the host's
    /// main thread, just before [`Plugin::shutdown`], when none of the plugin's handlers runs any
    /// more and none will (so the state is at rest); only if [`Plugin::HANDS_OVER_STATE`].
    ///
    /// # Errors
    ///
    /// An `Err` hands nothing over; the host logs it, and the plugin still gets its `shutdown`.
    fn save_state(&self, host: &Host) -> Result<Vec<u8>, Error> {
        let _ = host;
        Ok(Vec::new())
    }

    /// Takes the state that the build this one replaces saved with [`Plugin::save_state`]
    /// (`from_version` is that build's version, as its descriptor gave it). Called once, on the
    /// host's main thread, after `init`, only if [`Plugin::HANDS_OVER_STATE`]. The plugin already
    /// serves when this runs: its handlers have received every call since the reload's swap (and
    /// may run on other threads meanwhile), so **merge** the old state into the current one (add
    /// counts, keep both lists), do not overwrite it.
    ///
    /// # Errors
    ///
    /// An `Err` (a state this build cannot read, for instance) is logged; the state is lost and
    /// the plugin goes on serving.
    fn restore_state(&self, host: &Host, from_version: &str, state: &[u8]) -> Result<(), Error> {
        let _ = (host, from_version, state);
        Ok(())
    }
}

/// What `init` hands to the host as the plugin data.
struct Instance<P> {
    plugin: P,
    host: Host,
    /// Where bound handlers find `plugin` (see [`crate::state`]).
    slot: Arc<StateSlot<P>>,
}

/// The `init` of the function table of `P`.
unsafe extern "C" fn init<P: Plugin>(
    ctx: *mut PhHostContext,
    services: *const PhHostServices,
    out_plugin_data: *mut *mut c_void,
) -> PhResultCode {
    guard(None, "init", PhResult::Panicked.code(), || {
        if ctx.is_null() || services.is_null() || out_plugin_data.is_null() {
            return PhResult::NullPointer.code();
        }
        // SAFETY: not NULL (checked above); the host's table starts with the same three fields
        // in every ABI version (`abi_major`, `abi_minor`, `struct_size`), read here without a
        // reference to the rest, whose size is not checked yet.
        let (major, size) = unsafe {
            (
                std::ptr::addr_of!((*services).abi_major).read(),
                std::ptr::addr_of!((*services).struct_size).read(),
            )
        };
        if major != PH_ABI_VERSION_MAJOR || (size as usize) < std::mem::size_of::<PhHostServices>()
        {
            return PhResult::InvalidArgument.code();
        }
        let slot = StateSlot::<P>::new();
        // SAFETY: the context and table the host gives `init` stay valid for as long as this
        // library is mapped (the ABI's lifetime model); the table has every field of this ABI
        // version (checked above).
        let link = Arc::new(unsafe { HostLink::new(ctx, services, ErasedSlot::new(&slot)) });
        logger::attach(&link, link.max_level());
        let host = Host {
            link: Arc::clone(&link),
        };
        // A panic in `P::init` is caught by the inner guard, which logs it to this plugin.
        let result = guard(Some(&link), "init", None, || Some(P::init(&host)));
        match result {
            Some(Ok(plugin)) => {
                let instance = Box::into_raw(Box::new(Instance {
                    plugin,
                    host,
                    slot: Arc::clone(&slot),
                }));
                // SAFETY: the instance is the plugin data from now on: it stays in place, and its
                // state unchanged, until `shutdown` takes it back, which clears the slot first and
                // runs only after every call into the plugin has returned (the ABI's lifetime
                // model); a plugin that faults is never given back, so the state stays forever.
                unsafe { slot.publish(std::ptr::addr_of!((*instance).plugin)) };
                // SAFETY: checked non-null; the host gives a writable slot.
                unsafe { *out_plugin_data = instance.cast() };
                PhResult::Ok.code()
            }
            Some(Err(error)) => {
                // The host shows the last error-level record of a failed `init` with its
                // refusal (`init failed: CODE: MESSAGE`), whatever the log filter.
                link.log(log::Level::Error, "init", &error.to_string());
                end(&link);
                error.failure_code().code()
            }
            None => {
                end(&link);
                PhResult::Panicked.code()
            }
        }
    })
}

/// Cuts the plugin's link to the host.
fn end(link: &HostLink) {
    link.deactivate();
    logger::detach(link);
}

/// The `shutdown` of the function table of `P`.
unsafe extern "C" fn shutdown<P: Plugin>(plugin_data: *mut c_void) -> PhResultCode {
    if plugin_data.is_null() {
        return PhResult::NullPointer.code();
    }
    // SAFETY: `plugin_data` is the `Instance<P>` that `init` gave to the host, which calls
    // `shutdown` once; ownership comes back here.
    let instance = unsafe { Box::from_raw(plugin_data.cast::<Instance<P>>()) };
    // The host calls nothing of the plugin any more (the ABI's lifetime model): no bound handler
    // runs, and none would find the state from now on.
    instance.slot.clear();
    let link = Arc::clone(&instance.host.link);
    let code = guard(
        Some(&link),
        "shutdown",
        PhResult::Panicked.code(),
        move || {
            let Instance { plugin, host, .. } = *instance;
            plugin.shutdown(&host);
            PhResult::Ok.code()
        },
    );
    end(&link);
    code
}

/// The `save_state` of the function table of `P`.
unsafe extern "C" fn save_state<P: Plugin>(
    plugin_data: *mut c_void,
    sink: *const PhBytesSink,
) -> PhResultCode {
    if plugin_data.is_null() || sink.is_null() {
        return PhResult::NullPointer.code();
    }
    // SAFETY: `plugin_data` is the `Instance<P>` that `init` gave to the host, which passes it
    // only while the plugin is active, before `shutdown` takes it back; it is only read here.
    let instance = unsafe { &*plugin_data.cast::<Instance<P>>() };
    let link = &instance.host.link;
    guard(Some(link), "save_state", PhResult::Panicked.code(), || {
        match instance.plugin.save_state(&instance.host) {
            Ok(state) => {
                // SAFETY: `sink` is not NULL (checked above) and is the host's sink, valid for
                // this call; `write` borrows the bytes for its own call only.
                unsafe {
                    let sink = &*sink;
                    (sink.write)(sink.context, PhBytes::new(&state));
                }
                PhResult::Ok.code()
            }
            Err(error) => {
                link.log(
                    log::Level::Error,
                    "",
                    &format!("save_state failed: {error}"),
                );
                error.failure_code().code()
            }
        }
    })
}

/// The `restore_state` of the function table of `P`.
unsafe extern "C" fn restore_state<P: Plugin>(
    plugin_data: *mut c_void,
    from_version: PhStr,
    state: PhBytes,
) -> PhResultCode {
    if plugin_data.is_null() {
        return PhResult::NullPointer.code();
    }
    // SAFETY: as in `save_state`: the plugin data of an active plugin, only read here.
    let instance = unsafe { &*plugin_data.cast::<Instance<P>>() };
    let link = &instance.host.link;
    guard(
        Some(link),
        "restore_state",
        PhResult::Panicked.code(),
        || {
            // SAFETY: the host passes views valid for the call.
            let (from_version, state) = match unsafe { (from_version.to_str(), state.to_bytes()) } {
                (Ok(version), Ok(state)) => (version, state),
                (Err(code), _) | (_, Err(code)) => return code.code(),
            };
            match instance
                .plugin
                .restore_state(&instance.host, from_version, state)
            {
                Ok(()) => PhResult::Ok.code(),
                Err(error) => {
                    link.log(
                        log::Level::Error,
                        "",
                        &format!("restore_state failed: {error}"),
                    );
                    error.failure_code().code()
                }
            }
        },
    )
}

/// The function table of `P`.
#[doc(hidden)]
pub const fn vtable<P: Plugin>() -> PhPluginVtable {
    PhPluginVtable {
        struct_size: std::mem::size_of::<PhPluginVtable>() as u32,
        init: Some(PhInitFn(init::<P>)),
        shutdown: Some(PhShutdownFn(shutdown::<P>)),
        // The host keeps the text of the commands (ABI 1.2): no enumeration of our own.
        enumerate_commands: None,
        save_state: if P::HANDS_OVER_STATE {
            Some(PhSaveStateFn(save_state::<P>))
        } else {
            None
        },
        restore_state: if P::HANDS_OVER_STATE {
            Some(PhRestoreStateFn(restore_state::<P>))
        } else {
            None
        },
    }
}

/// The metadata of the plugin's crate, for what the plugin leaves to it: the version and
/// description of its `Cargo.toml`, as [`export_plugin!`](crate::export_plugin) reads them in the
/// plugin's crate.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Package {
    /// `CARGO_PKG_VERSION`.
    pub version: &'static str,
    /// `CARGO_PKG_DESCRIPTION`.
    pub description: &'static str,
}

impl Package {
    /// No metadata: for a plugin linked into a program without [`export_plugin!`](crate::export_plugin).
    pub const UNKNOWN: Package = Package {
        version: "",
        description: "",
    };

    /// The metadata of the package that Cargo runs this program for (`cargo test`, `cargo
    /// run`: Cargo sets `CARGO_PKG_NAME`, `CARGO_PKG_VERSION` and `CARGO_PKG_DESCRIPTION` in the
    /// environment of what it runs), if `P` is defined in that package's library crate, whose
    /// name is the package's with `-` as `_`; else [`Package::UNKNOWN`]. A test of the plugin's
    /// own package, the usual home of a mock-host test, gets the plugin's metadata; a plugin
    /// of another package, or a program not run by Cargo, gets none rather than a wrong one.
    ///
    /// Each call that finds metadata leaks its two strings (as [`linked_descriptor`] leaks the
    /// descriptor).
    fn of_running_package<P>() -> Package {
        let Ok(package) = std::env::var("CARGO_PKG_NAME") else {
            return Package::UNKNOWN;
        };
        // `type_name` is meant for diagnostics; its first path segment is the defining crate's
        // name in every rustc so far. Should that change, the comparison fails and the
        // metadata is left out: never a wrong version.
        let crate_name = std::any::type_name::<P>().split("::").next().unwrap_or("");
        if crate_name != package.replace('-', "_") {
            return Package::UNKNOWN;
        }
        let leak = |key: &str| -> &'static str {
            match std::env::var(key) {
                Ok(value) if !value.is_empty() => Box::leak(value.into_boxed_str()),
                _ => "",
            }
        };
        Package {
            version: leak("CARGO_PKG_VERSION"),
            description: leak("CARGO_PKG_DESCRIPTION"),
        }
    }
}

/// `value`, or `default` if `value` is empty.
const fn or_default(value: &'static str, default: &'static str) -> &'static str {
    if value.is_empty() {
        default
    } else {
        value
    }
}

/// The descriptor of `P`, pointing to `vtable`, with what `P` leaves empty taken from `package`.
#[doc(hidden)]
pub const fn descriptor<P: Plugin>(
    vtable: &'static PhPluginVtable,
    package: Package,
) -> PhPluginDescriptor {
    PhPluginDescriptor {
        abi_major: PH_ABI_VERSION_MAJOR,
        abi_minor: PH_ABI_VERSION_MINOR,
        struct_size: std::mem::size_of::<PhPluginDescriptor>() as u32,
        name: PhStr::new(P::NAME),
        version: PhStr::new(or_default(P::VERSION, package.version)),
        description: PhStr::new(or_default(P::DESCRIPTION, package.description)),
        vtable,
        provides: P::PROVIDES.as_ptr(),
        provides_count: P::PROVIDES.len(),
        requires: P::REQUIRES.as_ptr(),
        requires_count: P::REQUIRES.len(),
    }
}

/// The descriptor of the plugin `P` linked into this program, for a host that loads it without a
/// library file (`plughost::PluginHost::load_static`, the mock host of `plughost-testing`): the
/// same descriptor and function table that [`export_plugin!`](crate::export_plugin) exports from a library.
///
/// The version and description `P` leaves empty ([`Plugin::VERSION`], [`Plugin::DESCRIPTION`])
/// come from the package Cargo runs, when `P` is defined in that package's library: a test of
/// the plugin's own package (`cargo test`) sees what the exported library shows. Otherwise they
/// stay empty.
///
/// Each call leaks one descriptor and one function table (about 100 bytes), which must live as
/// long as the process: call it once per load.
pub fn linked_descriptor<P: Plugin>() -> &'static PhPluginDescriptor {
    let vtable = Box::leak(Box::new(vtable::<P>()));
    let package = if P::VERSION.is_empty() || P::DESCRIPTION.is_empty() {
        Package::of_running_package::<P>()
    } else {
        Package::UNKNOWN
    };
    Box::leak(Box::new(descriptor::<P>(vtable, package)))
}

/// Exports a [`Plugin`] from the crate: the entry point the host looks for, and abi_stable's type
/// layout of the ABI.
///
/// The descriptor it exports takes the version and description the plugin leaves empty
/// ([`Plugin::VERSION`], [`Plugin::DESCRIPTION`]) from the `Cargo.toml` of the crate it is used
/// in.
///
/// Use it once per library, at the crate root, with the type that implements [`Plugin`]. The
/// crate must build as a `cdylib` (add `"rlib"` too, to test it in-process).
///
/// ```ignore
/// plugin_api::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            use $crate::__private::abi_stable::library::{
                CheckTypeLayout, LibHeader, RootModuleResult,
            };
            use $crate::__private::abi_stable::prefix_type::PrefixTypeTrait;

            static VTABLE: $crate::abi::PhPluginVtable = $crate::__private::vtable::<$plugin>();
            static DESCRIPTOR: $crate::abi::PhPluginDescriptor =
                $crate::__private::descriptor::<$plugin>(
                    &VTABLE,
                    // Expanded in the plugin's crate: its own `Cargo.toml`.
                    $crate::__private::Package {
                        version: env!("CARGO_PKG_VERSION"),
                        description: env!("CARGO_PKG_DESCRIPTION"),
                    },
                );

            /// The plugin's entry point: the address of its descriptor. Safe to call at any
            /// time, from any thread (it reads nothing).
            #[no_mangle]
            pub extern "C" fn plughost_plugin_entry() -> *const $crate::abi::PhPluginDescriptor {
                &DESCRIPTOR
            }

            fn root_module() -> $crate::layout::PluginModuleRef {
                $crate::layout::PluginModule {
                    entry: $crate::abi::PhEntryPoint(plughost_plugin_entry),
                }
                .leak_into_prefix()
            }

            extern "C" fn root_module_loader() -> RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(root_module)
            }

            /// abi_stable's library header: the type layout of the ABI, for the host's check.
            #[export_name = "_1as_0lib_1header_0root_bmodule_bloader"]
            pub static ROOT_MODULE_HEADER: LibHeader = {
                // SAFETY: the loader returns the root module of type `PluginModuleRef`, the type
                // the header is made for, as `abi_stable::export_root_module` does.
                unsafe {
                    LibHeader::from_constructor::<$crate::layout::PluginModuleRef>(
                        root_module_loader,
                        CheckTypeLayout::Yes,
                    )
                }
            };
        };
    };
}
