//! abi_stable's type layout of the whole ABI, carried by Rust plugins and checked by the host.
//!
//! A Rust plugin exported with [`crate::export_plugin!`] also exports abi_stable's root module,
//! [`PluginModule`]. Its only field is the plugin's entry point, whose return type leads to every
//! other ABI type, so abi_stable's layout data for it describes the layout of the whole ABI (field
//! names, types, sizes, alignments, function signatures) as the plugin was compiled. The host
//! compares it with its own before it calls any plugin code, and refuses a plugin built against a
//! different layout.
//!
//! Plugins written in C do not carry this data: for them the host checks the ABI version and the
//! `struct_size` fields only.

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::StableAbi;

use crate::abi::PhEntryPoint;

/// abi_stable's root module of a Rust plugin: the carrier of the ABI's layout data.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
#[sabi(missing_field(panic))]
pub struct PluginModule {
    /// The plugin's entry point, the same function as the exported [`crate::abi::PH_ENTRY_POINT_SYMBOL`].
    #[sabi(last_prefix_field)]
    pub entry: PhEntryPoint,
}

impl RootModule for PluginModuleRef {
    abi_stable::declare_root_module_statics! {PluginModuleRef}
    const BASE_NAME: &'static str = "plughost_plugin";
    const NAME: &'static str = "plughost_plugin";
    const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
}

/// The symbol under which abi_stable looks for the root module. [`crate::export_plugin!`] writes it
/// as a literal; a test checks that it matches abi_stable's own constant.
#[doc(hidden)]
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
