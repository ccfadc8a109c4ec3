//! abi_stable's type layout of the whole ABI, carried by Rust plugins and checked by the host.
//!
//! A Rust plugin exported with [`crate::export_plugin!`] also exports abi_stable's root module,
//! [`PluginModule`]. Its only field is the plugin's entry point, whose return type leads to every
//! other ABI type, so abi_stable's layout data for it describes the layout of the whole ABI (field
//! names, types, sizes, alignments, function signatures) as the plugin was compiled. The host
//! compares it with the layout of the ABI minor version the plugin declares (its own, or a frozen
//! older one such as [`v1_0`]) before it calls any plugin code, and refuses a plugin built against
//! a different layout.
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

/// The type layout of ABI 1.0, frozen, for Rust plugins built against it.
///
/// A minor version adds fields at the end of a table the host fills (1.1 added
/// [`crate::abi::PhHostServices::config_get`]). Tables have their size and version, so a plugin
/// of an older minor reads a newer host's table correctly; but abi_stable's layout check compares
/// whole types, and the host-services table is part of the layout a Rust plugin carries (through
/// `init`'s signature). The host therefore checks a Rust plugin that declares minor 0 against this
/// copy of the 1.0 types: each has the name, fields and types it had in 1.0 (abi_stable compares
/// names, not module paths). The other ABI types have not changed since 1.0 and are shared.
///
/// Never edit these types: they describe what plugins built against 1.0 carry. The fields are
/// documented on the current types of [`crate::abi`].
#[allow(missing_docs)]
pub mod v1_0 {
    use std::ffi::c_void;

    use abi_stable::library::RootModule;
    use abi_stable::sabi_types::VersionStrings;
    use abi_stable::StableAbi;

    use crate::abi::{
        PhBytes, PhCommandCallback, PhCommandInfoCallback, PhDestroyCallback,
        PhEnumerateCommandsFn, PhEventCallback, PhHandle, PhHostContext, PhPluginInfoCallback,
        PhResultCode, PhShutdownFn, PhStr,
    };

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhHostServices {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,

        pub log: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            level: u32,
            target: PhStr,
            message: PhStr,
        ) -> PhResultCode,

        pub log_max_level: unsafe extern "C" fn(ctx: *mut PhHostContext) -> u32,

        pub register_command: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            name: PhStr,
            callback: Option<PhCommandCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub unregister:
            unsafe extern "C" fn(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode,

        pub subscribe: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            callback: Option<PhEventCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub publish: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            payload: PhBytes,
        ) -> PhResultCode,

        pub enumerate_plugins: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            callback: Option<PhPluginInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,

        pub enumerate_commands: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            plugin_name: PhStr,
            callback: Option<PhCommandInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhInitFn(
        pub  unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            host: *const PhHostServices,
            out_plugin_data: *mut *mut c_void,
        ) -> PhResultCode,
    );

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginVtable {
        pub struct_size: u32,
        pub init: Option<PhInitFn>,
        pub shutdown: Option<PhShutdownFn>,
        pub enumerate_commands: Option<PhEnumerateCommandsFn>,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginDescriptor {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,
        pub name: PhStr,
        pub version: PhStr,
        pub description: PhStr,
        pub vtable: *const PhPluginVtable,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhEntryPoint(pub unsafe extern "C" fn() -> *const PhPluginDescriptor);

    /// The root module of a Rust plugin built against ABI 1.0.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct PluginModule {
        #[sabi(last_prefix_field)]
        pub entry: PhEntryPoint,
    }

    impl RootModule for PluginModuleRef {
        abi_stable::declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "plughost_plugin";
        const NAME: &'static str = "plughost_plugin";
        const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
    }
}

/// The type layout of ABI 1.1, frozen, for Rust plugins built against it: as [`v1_0`], with the
/// host-services table of 1.1 (which ends with `config_get`; 1.2 added
/// [`crate::abi::PhHostServices::register_command_with_info`]).
///
/// Never edit these types: they describe what plugins built against 1.1 carry.
#[allow(missing_docs)]
pub mod v1_1 {
    use std::ffi::c_void;

    use abi_stable::library::RootModule;
    use abi_stable::sabi_types::VersionStrings;
    use abi_stable::StableAbi;

    use crate::abi::{
        PhBytes, PhCommandCallback, PhCommandInfoCallback, PhDestroyCallback,
        PhEnumerateCommandsFn, PhEventCallback, PhHandle, PhHostContext, PhPluginInfoCallback,
        PhResultCode, PhShutdownFn, PhStr,
    };

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhHostServices {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,

        pub log: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            level: u32,
            target: PhStr,
            message: PhStr,
        ) -> PhResultCode,

        pub log_max_level: unsafe extern "C" fn(ctx: *mut PhHostContext) -> u32,

        pub register_command: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            name: PhStr,
            callback: Option<PhCommandCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub unregister:
            unsafe extern "C" fn(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode,

        pub subscribe: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            callback: Option<PhEventCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub publish: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            payload: PhBytes,
        ) -> PhResultCode,

        pub enumerate_plugins: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            callback: Option<PhPluginInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,

        pub enumerate_commands: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            plugin_name: PhStr,
            callback: Option<PhCommandInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,

        pub config_get: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            key: PhStr,
            out_value: *mut PhStr,
        ) -> PhResultCode,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhInitFn(
        pub  unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            host: *const PhHostServices,
            out_plugin_data: *mut *mut c_void,
        ) -> PhResultCode,
    );

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginVtable {
        pub struct_size: u32,
        pub init: Option<PhInitFn>,
        pub shutdown: Option<PhShutdownFn>,
        pub enumerate_commands: Option<PhEnumerateCommandsFn>,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginDescriptor {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,
        pub name: PhStr,
        pub version: PhStr,
        pub description: PhStr,
        pub vtable: *const PhPluginVtable,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhEntryPoint(pub unsafe extern "C" fn() -> *const PhPluginDescriptor);

    /// The root module of a Rust plugin built against ABI 1.1.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct PluginModule {
        #[sabi(last_prefix_field)]
        pub entry: PhEntryPoint,
    }

    impl RootModule for PluginModuleRef {
        abi_stable::declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "plughost_plugin";
        const NAME: &'static str = "plughost_plugin";
        const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
    }
}

/// The type layout of ABI 1.2, frozen, for Rust plugins built against it: as [`v1_1`], with the
/// host-services table of 1.2 (which ends with `register_command_with_info`; 1.3 added the
/// interface services) and the descriptor of 1.0 to 1.2 (1.3 added `provides` and `requires`).
///
/// Never edit these types: they describe what plugins built against 1.2 carry.
#[allow(missing_docs)]
pub mod v1_2 {
    use std::ffi::c_void;

    use abi_stable::library::RootModule;
    use abi_stable::sabi_types::VersionStrings;
    use abi_stable::StableAbi;

    use crate::abi::{
        PhBytes, PhCommandCallback, PhCommandInfo, PhCommandInfoCallback, PhDestroyCallback,
        PhEnumerateCommandsFn, PhEventCallback, PhHandle, PhHostContext, PhPluginInfoCallback,
        PhResultCode, PhShutdownFn, PhStr,
    };

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhHostServices {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,

        pub log: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            level: u32,
            target: PhStr,
            message: PhStr,
        ) -> PhResultCode,

        pub log_max_level: unsafe extern "C" fn(ctx: *mut PhHostContext) -> u32,

        pub register_command: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            name: PhStr,
            callback: Option<PhCommandCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub unregister:
            unsafe extern "C" fn(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode,

        pub subscribe: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            callback: Option<PhEventCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub publish: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            payload: PhBytes,
        ) -> PhResultCode,

        pub enumerate_plugins: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            callback: Option<PhPluginInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,

        pub enumerate_commands: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            plugin_name: PhStr,
            callback: Option<PhCommandInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,

        pub config_get: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            key: PhStr,
            out_value: *mut PhStr,
        ) -> PhResultCode,

        pub register_command_with_info: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            info: *const PhCommandInfo,
            callback: Option<PhCommandCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhInitFn(
        pub  unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            host: *const PhHostServices,
            out_plugin_data: *mut *mut c_void,
        ) -> PhResultCode,
    );

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginVtable {
        pub struct_size: u32,
        pub init: Option<PhInitFn>,
        pub shutdown: Option<PhShutdownFn>,
        pub enumerate_commands: Option<PhEnumerateCommandsFn>,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginDescriptor {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,
        pub name: PhStr,
        pub version: PhStr,
        pub description: PhStr,
        pub vtable: *const PhPluginVtable,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhEntryPoint(pub unsafe extern "C" fn() -> *const PhPluginDescriptor);

    /// The root module of a Rust plugin built against ABI 1.2.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct PluginModule {
        #[sabi(last_prefix_field)]
        pub entry: PhEntryPoint,
    }

    impl RootModule for PluginModuleRef {
        abi_stable::declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "plughost_plugin";
        const NAME: &'static str = "plughost_plugin";
        const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
    }
}

/// The type layout of ABI 1.3, frozen, for Rust plugins built against it: the host-services table
/// of 1.3 (which ends with `release_interface`; 1.4 added `run_tasks` and `task_threads`), the
/// function table of 1.0 to 1.3 (1.4 added `save_state` and `restore_state`), the descriptor
/// of 1.3, and the interface declaration and reference of 1.3 and 1.4 (1.5 added `layout` to
/// both).
///
/// Never edit these types: they describe what plugins built against 1.3 carry.
#[allow(missing_docs)]
pub mod v1_3 {
    use std::ffi::c_void;

    use abi_stable::library::RootModule;
    use abi_stable::sabi_types::VersionStrings;
    use abi_stable::StableAbi;

    use crate::abi::{
        PhBytes, PhCommandCallback, PhCommandInfo, PhCommandInfoCallback, PhDestroyCallback,
        PhEnumerateCommandsFn, PhEventCallback, PhHandle, PhHostContext, PhInterfaceVersion,
        PhPluginInfoCallback, PhResultCode, PhShutdownFn, PhStr,
    };

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhInterfaceDecl {
        pub struct_size: u32,
        pub minor: u16,
        pub major: u16,
        pub id: PhStr,
        pub table: *const c_void,
        pub table_size: u32,
        pub signature: PhStr,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhInterface {
        pub struct_size: u32,
        pub minor: u16,
        pub reserved: u16,
        pub table: *const c_void,
        pub table_size: u32,
        pub user_data: *mut c_void,
        pub alive: *const u32,
        pub handle: PhHandle,
        pub signature: PhStr,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhHostServices {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,

        pub log: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            level: u32,
            target: PhStr,
            message: PhStr,
        ) -> PhResultCode,

        pub log_max_level: unsafe extern "C" fn(ctx: *mut PhHostContext) -> u32,

        pub register_command: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            name: PhStr,
            callback: Option<PhCommandCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub unregister:
            unsafe extern "C" fn(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode,

        pub subscribe: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            callback: Option<PhEventCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub publish: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            payload: PhBytes,
        ) -> PhResultCode,

        pub enumerate_plugins: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            callback: Option<PhPluginInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,

        pub enumerate_commands: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            plugin_name: PhStr,
            callback: Option<PhCommandInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,

        pub config_get: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            key: PhStr,
            out_value: *mut PhStr,
        ) -> PhResultCode,

        pub register_command_with_info: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            info: *const PhCommandInfo,
            callback: Option<PhCommandCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub provide_interface: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            decl: *const PhInterfaceDecl,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub query_interface: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            id: PhStr,
            major: u16,
            min_table_size: u32,
            out: *mut PhInterface,
        ) -> PhResultCode,

        pub release_interface:
            unsafe extern "C" fn(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhInitFn(
        pub  unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            host: *const PhHostServices,
            out_plugin_data: *mut *mut c_void,
        ) -> PhResultCode,
    );

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginVtable {
        pub struct_size: u32,
        pub init: Option<PhInitFn>,
        pub shutdown: Option<PhShutdownFn>,
        pub enumerate_commands: Option<PhEnumerateCommandsFn>,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginDescriptor {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,
        pub name: PhStr,
        pub version: PhStr,
        pub description: PhStr,
        pub vtable: *const PhPluginVtable,
        pub provides: *const PhInterfaceVersion,
        pub provides_count: usize,
        pub requires: *const PhInterfaceVersion,
        pub requires_count: usize,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhEntryPoint(pub unsafe extern "C" fn() -> *const PhPluginDescriptor);

    /// The root module of a Rust plugin built against ABI 1.3.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct PluginModule {
        #[sabi(last_prefix_field)]
        pub entry: PhEntryPoint,
    }

    impl RootModule for PluginModuleRef {
        abi_stable::declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "plughost_plugin";
        const NAME: &'static str = "plughost_plugin";
        const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
    }
}

/// The type layout of ABI 1.4, frozen, for Rust plugins built against it: the host-services table
/// of 1.4, whose `provide_interface` and `query_interface` take the interface declaration and
/// reference of 1.3 and 1.4 ([`v1_3::PhInterfaceDecl`], [`v1_3::PhInterface`]: 1.5 added
/// `layout` to both), and the function table and descriptor that lead to it (unchanged in 1.5
/// but for that).
///
/// Never edit these types: they describe what plugins built against 1.4 carry.
#[allow(missing_docs)]
pub mod v1_4 {
    use std::ffi::c_void;

    use abi_stable::library::RootModule;
    use abi_stable::sabi_types::VersionStrings;
    use abi_stable::StableAbi;

    use super::v1_3::{PhInterface, PhInterfaceDecl};
    use crate::abi::{
        PhBytes, PhCommandCallback, PhCommandInfo, PhCommandInfoCallback, PhDestroyCallback,
        PhEnumerateCommandsFn, PhEventCallback, PhHandle, PhHostContext, PhInterfaceVersion,
        PhPluginInfoCallback, PhRestoreStateFn, PhResultCode, PhSaveStateFn, PhShutdownFn, PhStr,
        PhTaskFn,
    };

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhHostServices {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,

        pub log: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            level: u32,
            target: PhStr,
            message: PhStr,
        ) -> PhResultCode,

        pub log_max_level: unsafe extern "C" fn(ctx: *mut PhHostContext) -> u32,

        pub register_command: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            name: PhStr,
            callback: Option<PhCommandCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub unregister:
            unsafe extern "C" fn(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode,

        pub subscribe: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            callback: Option<PhEventCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub publish: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            topic: PhStr,
            payload: PhBytes,
        ) -> PhResultCode,

        pub enumerate_plugins: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            callback: Option<PhPluginInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,

        pub enumerate_commands: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            plugin_name: PhStr,
            callback: Option<PhCommandInfoCallback>,
            user_data: *mut c_void,
        ) -> PhResultCode,

        pub config_get: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            key: PhStr,
            out_value: *mut PhStr,
        ) -> PhResultCode,

        pub register_command_with_info: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            info: *const PhCommandInfo,
            callback: Option<PhCommandCallback>,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub provide_interface: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            decl: *const PhInterfaceDecl,
            user_data: *mut c_void,
            destroy: Option<PhDestroyCallback>,
            out_handle: *mut PhHandle,
        ) -> PhResultCode,

        pub query_interface: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            id: PhStr,
            major: u16,
            min_table_size: u32,
            out: *mut PhInterface,
        ) -> PhResultCode,

        pub release_interface:
            unsafe extern "C" fn(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode,

        pub run_tasks: unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            task: Option<PhTaskFn>,
            user_data: *mut c_void,
            count: u32,
        ) -> PhResultCode,

        pub task_threads: unsafe extern "C" fn(ctx: *mut PhHostContext) -> u32,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhInitFn(
        pub  unsafe extern "C" fn(
            ctx: *mut PhHostContext,
            host: *const PhHostServices,
            out_plugin_data: *mut *mut c_void,
        ) -> PhResultCode,
    );

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginVtable {
        pub struct_size: u32,
        pub init: Option<PhInitFn>,
        pub shutdown: Option<PhShutdownFn>,
        pub enumerate_commands: Option<PhEnumerateCommandsFn>,
        pub save_state: Option<PhSaveStateFn>,
        pub restore_state: Option<PhRestoreStateFn>,
    }

    #[repr(C)]
    #[derive(StableAbi)]
    pub struct PhPluginDescriptor {
        pub abi_major: u16,
        pub abi_minor: u16,
        pub struct_size: u32,
        pub name: PhStr,
        pub version: PhStr,
        pub description: PhStr,
        pub vtable: *const PhPluginVtable,
        pub provides: *const PhInterfaceVersion,
        pub provides_count: usize,
        pub requires: *const PhInterfaceVersion,
        pub requires_count: usize,
    }

    #[repr(transparent)]
    #[derive(StableAbi, Clone, Copy)]
    pub struct PhEntryPoint(pub unsafe extern "C" fn() -> *const PhPluginDescriptor);

    /// The root module of a Rust plugin built against ABI 1.4.
    #[repr(C)]
    #[derive(StableAbi)]
    #[sabi(kind(Prefix(prefix_ref = PluginModuleRef)))]
    #[sabi(missing_field(panic))]
    pub struct PluginModule {
        #[sabi(last_prefix_field)]
        pub entry: PhEntryPoint,
    }

    impl RootModule for PluginModuleRef {
        abi_stable::declare_root_module_statics! {PluginModuleRef}
        const BASE_NAME: &'static str = "plughost_plugin";
        const NAME: &'static str = "plughost_plugin";
        const VERSION_STRINGS: VersionStrings = abi_stable::package_version_strings!();
    }
}

/// One line out of abi_stable's multi-line report of a layout mismatch (the `Display` of its
/// errors): the type that differs (the compared type itself, or the one inside it where the
/// first error is), the first error, and the expected and found values, such as
/// `PhPluginDescriptor: incompatible type size (expected 64, found 72)`. The host shows it when
/// it refuses a plugin (section 4 of `docs/abi.md`), and a Rust caller when it refuses an
/// interface whose table differs from its own (section 17).
pub fn summary(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(first_error) = lines.iter().position(|l| l.starts_with("Error:")) else {
        return report.lines().next().unwrap_or("").trim().to_owned();
    };
    let error = lines[first_error].trim_start_matches("Error:");
    let ty = lines[..first_error]
        .iter()
        .rposition(|l| l.starts_with("Layout of expected type:"))
        .and_then(|start| {
            lines[start..first_error]
                .iter()
                .find(|l| l.starts_with("type:"))
        })
        .or_else(|| {
            // An error at the compared type itself: that type, the first of the report.
            lines[..first_error].iter().find(|l| l.starts_with("type:"))
        })
        .map(|l| l.trim_start_matches("type:"));
    let value_after = |label: &str| {
        lines[first_error..]
            .iter()
            .position(|l| *l == label)
            .and_then(|at| lines.get(first_error + at + 1))
            .copied()
    };
    let mut summary = match ty {
        Some(ty) => format!("{ty}: {error}"),
        None => error.to_owned(),
    };
    if let (Some(expected), Some(found)) = (value_after("Expected:"), value_after("Found:")) {
        summary.push_str(&format!(" (expected {expected}, found {found})"));
    }
    summary
}

/// Where abi_stable's report (as for [`summary`]) places its first error: the names of the
/// fields it went through from the compared type down to the one that differs, joined by `.`,
/// such as `area.param_1.width` (the field `width` of the first parameter of the function in the
/// field `area`, whose parameter 0 is the provider's user data: abi_stable names an unnamed
/// parameter after its position). `None` when the error is at the compared type itself.
pub fn field_path(report: &str) -> Option<String> {
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    let first_error = lines.iter().position(|l| l.starts_with("Error:"))?;
    let inside = lines[..first_error]
        .iter()
        .rposition(|l| l.ends_with("error(s)inside:"))?;
    let end = lines[inside..first_error]
        .iter()
        .position(|l| l.starts_with("Layout of expected type:"))
        .map_or(first_error, |at| inside + at);
    let names: Vec<&str> = lines[inside..end]
        .iter()
        .filter_map(|l| l.strip_prefix("field_name:"))
        .collect();
    (!names.is_empty()).then(|| names.join("."))
}

/// The symbol under which abi_stable looks for the root module. [`crate::export_plugin!`] writes it
/// as a literal; a test checks that it matches abi_stable's own constant.
#[doc(hidden)]
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    use abi_stable::abi_stability::abi_checking::check_layout_compatibility;
    use abi_stable::StableAbi;

    mod ours {
        #[repr(C)]
        #[derive(abi_stable::StableAbi)]
        pub struct Pair {
            pub a: u32,
            pub b: Inner,
        }

        #[repr(C)]
        #[derive(abi_stable::StableAbi)]
        pub struct Inner {
            pub x: u32,
            pub y: u32,
        }
    }

    mod theirs {
        #[repr(C)]
        #[derive(abi_stable::StableAbi)]
        pub struct Pair {
            pub a: u32,
            pub b: Inner,
        }

        #[repr(C)]
        #[derive(abi_stable::StableAbi)]
        pub struct Inner {
            pub x: u32,
            pub y: f32,
        }
    }

    mod shorter {
        #[repr(C)]
        #[derive(abi_stable::StableAbi)]
        pub struct Pair {
            pub a: u32,
        }
    }

    fn report(
        ours: &'static abi_stable::type_layout::TypeLayout,
        theirs: &'static abi_stable::type_layout::TypeLayout,
    ) -> String {
        check_layout_compatibility(ours, theirs)
            .expect_err("the layouts differ")
            .to_string()
    }

    #[test]
    fn a_mismatch_inside_a_type_is_summarised_with_where_it_is() {
        let report = report(ours::Pair::LAYOUT, theirs::Pair::LAYOUT);
        assert!(report.lines().count() > 20, "{report}");
        assert_eq!(
            super::summary(&report),
            "u32: mismatched type (expected u32, found f32)"
        );
        assert_eq!(super::field_path(&report).as_deref(), Some("b.y"));
    }

    #[test]
    fn a_mismatch_of_the_compared_type_itself_names_it() {
        let report = report(ours::Pair::LAYOUT, shorter::Pair::LAYOUT);
        let summary = super::summary(&report);
        assert!(summary.starts_with("Pair: "), "{summary}\n{report}");
        assert_eq!(summary.lines().count(), 1);
        assert_eq!(super::field_path(&report), None);
    }

    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            super::ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
