//! The host services: the `extern "C"` functions of [`HOST_SERVICES`], the table given to plugins.
//!
//! Each function resolves the plugin's context, checks its arguments, and calls into
//! [`crate::registry::Shared`], all inside the host's [`guard`] and inside a service call as
//! [`crate::quiesce`] counts them (so that a plugin's shutdown waits for the calls under way).
//!
//! Contexts are never freed (see [`crate::context`]), so a context pointer a plugin was given is
//! always safe to read; a context whose plugin has ended answers `SHUT_DOWN`.

use std::ffi::c_void;
use std::sync::Arc;

use plugin_api::abi::{
    read_grown, read_sized, sized_out, write_grown, PhBytes, PhCommandCallback, PhCommandInfo,
    PhCommandInfoCallback, PhDestroyCallback, PhEventCallback, PhHandle, PhHostContext,
    PhHostServices, PhInterface, PhInterfaceDecl, PhLogLevel, PhPluginInfo, PhPluginInfoCallback,
    PhResult, PhResultCode, PhStr, PhTaskFn, PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR,
};

use crate::boundary::guard;
use crate::commands::CommandText;
use crate::context::PluginContext;
use crate::interfaces::{Declaration, Table};
use crate::registry::Registration;
use crate::topic::Topic;

/// The table of host services, shared by every plugin.
pub(crate) static HOST_SERVICES: PhHostServices = PhHostServices {
    abi_major: PH_ABI_VERSION_MAJOR,
    abi_minor: PH_ABI_VERSION_MINOR,
    struct_size: std::mem::size_of::<PhHostServices>() as u32,
    log: host_log,
    log_max_level: host_log_max_level,
    register_command: host_register_command,
    unregister: host_unregister,
    subscribe: host_subscribe,
    publish: host_publish,
    enumerate_plugins: host_enumerate_plugins,
    enumerate_commands: host_enumerate_commands,
    config_get: host_config_get,
    register_command_with_info: host_register_command_with_info,
    provide_interface: host_provide_interface,
    query_interface: host_query_interface,
    release_interface: host_release_interface,
    run_tasks: host_run_tasks,
    task_threads: host_task_threads,
};

/// Runs the body of a service for the plugin whose context is `ctx`.
///
/// Returns [`PhResult::NullPointer`] for a NULL context and [`PhResult::ShutDown`] for a plugin
/// that is shut down or faulted, without running `f`.
fn with_context(
    ctx: *mut PhHostContext,
    what: &str,
    f: impl FnOnce(&PluginContext) -> Result<(), PhResult>,
) -> PhResultCode {
    guard(what, PhResult::HostFailed.code(), || {
        // SAFETY: a non-null `ctx` is the context the host gave this plugin at init: a pointer
        // from `Arc::as_ptr` of a `PluginContext`, which is never freed (`context::RETAINED`).
        let Some(context) = (unsafe { ctx.cast::<PluginContext>().as_ref() }) else {
            return PhResult::NullPointer.code();
        };
        let _inside = crate::quiesce::enter();
        if !context.may_call() {
            return PhResult::ShutDown.code();
        }
        match f(context) {
            Ok(()) => PhResult::Ok.code(),
            Err(code) => code.code(),
        }
    })
}

/// A new strong reference to the context behind `context`, to record a registration's owner.
fn owner_of(context: &PluginContext) -> Arc<PluginContext> {
    let ptr: *const PluginContext = context;
    // SAFETY: every context given to a plugin comes from `Arc::as_ptr` of an `Arc` that
    // `context::RETAINED` holds forever, so the count is at least 1; incrementing it and taking a
    // new `Arc` from the same pointer is the documented way to clone from a raw pointer.
    unsafe {
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    }
}

/// Reads a string argument.
///
/// # Safety
///
/// `s` must satisfy the contract of [`PhStr::to_str`] for `'a`.
unsafe fn arg<'a>(s: PhStr) -> Result<&'a str, PhResult> {
    // SAFETY: `s` meets `to_str`'s contract for `'a` (this function's contract).
    unsafe { s.to_str() }
}

/// Writes `handle` to `out` if `out` is not NULL.
///
/// # Safety
///
/// A non-null `out` must be writable.
unsafe fn write_handle(out: *mut PhHandle, handle: PhHandle) {
    if !out.is_null() {
        // SAFETY: the caller guarantees that a non-null `out` is writable.
        unsafe { out.write(handle) };
    }
}

unsafe extern "C" fn host_log(
    ctx: *mut PhHostContext,
    level: u32,
    target: PhStr,
    message: PhStr,
) -> PhResultCode {
    with_context(ctx, "log", |context| {
        let level = PhLogLevel::record_level(level).ok_or(PhResult::InvalidArgument)?;
        // SAFETY: the plugin passes views valid for the call (the ABI's contract).
        let (target, message) = unsafe { (arg(target)?, arg(message)?) };
        let full_target;
        let target = if target.is_empty() || target == context.name {
            context.name.as_str()
        } else if target.starts_with(&context.target_prefix) {
            target
        } else {
            full_target = format!("{}{target}", context.target_prefix);
            &full_target
        };
        if level == log::Level::Error {
            // Whatever the filter: a refusal shows why `init` failed.
            context.note_init_error(message);
        }
        let metadata = log::Metadata::builder().level(level).target(target).build();
        let emit = |to: &dyn Fn(&log::Record<'_>)| {
            to(&log::Record::builder()
                .metadata(metadata.clone())
                .args(format_args!("{message}"))
                .build())
        };
        match &context.shared.observer {
            None => {
                let logger = log::logger();
                if logger.enabled(&metadata) {
                    emit(&|record| logger.log(record));
                }
            }
            Some(observer) if level <= observer.max_level() => {
                emit(&|record| observer.log(&context.name, record));
            }
            Some(_) => {}
        }
        Ok(())
    })
}

unsafe extern "C" fn host_log_max_level(ctx: *mut PhHostContext) -> u32 {
    guard("log_max_level", log::max_level() as u32, || {
        // SAFETY: NULL, or the context the host gave this plugin at init, never freed
        // (`context::RETAINED`): readable at any time, on any thread.
        let observer = unsafe { ctx.cast::<PluginContext>().as_ref() }
            .and_then(|context| context.shared.observer.as_ref());
        match observer {
            Some(observer) => observer.max_level() as u32,
            None => log::max_level() as u32,
        }
    })
}

unsafe extern "C" fn host_register_command(
    ctx: *mut PhHostContext,
    name: PhStr,
    callback: Option<PhCommandCallback>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> PhResultCode {
    registering(ctx, "register_command", user_data, destroy, |context| {
        let registration = new_registration(context, callback, user_data, destroy)?;
        // SAFETY: the plugin passes a view valid for the call.
        let name = match unsafe { arg(name) } {
            Ok(name) => name,
            Err(code) => return Err(registration.refuse(code)),
        };
        let handle = context.shared.register_command(registration, name, None)?;
        // SAFETY: the plugin passes NULL or a writable handle.
        unsafe { write_handle(out_handle, handle) };
        Ok(())
    })
}

unsafe extern "C" fn host_register_command_with_info(
    ctx: *mut PhHostContext,
    info: *const PhCommandInfo,
    callback: Option<PhCommandCallback>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> PhResultCode {
    registering(
        ctx,
        "register_command_with_info",
        user_data,
        destroy,
        |context| {
            let registration = new_registration(context, callback, user_data, destroy)?;
            // SAFETY: the plugin passes NULL or an info of its ABI version, valid for the call
            // (the ABI's contract of `register_command_with_info`).
            let info = match unsafe { read_sized::<PhCommandInfo>(info) } {
                Ok(info) => info,
                Err(code) => return Err(registration.refuse(code)),
            };
            // SAFETY: the plugin passes views valid for the call.
            let read = unsafe { (arg(info.name), arg(info.description), arg(info.usage)) };
            let (name, description, usage) = match read {
                (Ok(name), Ok(description), Ok(usage)) => (name, description, usage),
                (Err(code), _, _) | (_, Err(code), _) | (_, _, Err(code)) => {
                    return Err(registration.refuse(code))
                }
            };
            let text = CommandText { description, usage };
            let handle = context
                .shared
                .register_command(registration, name, Some(text))?;
            // SAFETY: the plugin passes NULL or a writable handle.
            unsafe { write_handle(out_handle, handle) };
            Ok(())
        },
    )
}

/// Runs a registering service: like [`with_context`], but a registration refused before `f` runs
/// (a context that has ended) or by the panic boundary still gets its `destroy` (ABI 1.2 plugins;
/// see [`Registration::refuse`]). `f` itself refuses through [`Registration::refuse`].
fn registering(
    ctx: *mut PhHostContext,
    what: &str,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    f: impl FnOnce(&PluginContext) -> Result<(), PhResult>,
) -> PhResultCode {
    let mut reached = false;
    let code = with_context(ctx, what, |context| {
        reached = true;
        f(context)
    });
    if !reached && code != PhResult::NullPointer.code() {
        // SAFETY: not NULL (that is the only case with another code and no context), and the
        // context of a plugin, never freed.
        let context = unsafe { &*ctx.cast::<PluginContext>() };
        release_refused(context, user_data, destroy);
    }
    code
}

/// Calls `destroy(user_data)` of a registration refused before it became a [`Registration`], for
/// plugins of ABI 1.2 and later.
fn release_refused(
    context: &PluginContext,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
) {
    if context.destroys_refused() {
        if let Some(destroy) = destroy {
            // SAFETY: the plugin's destroy function for this user data, which the host did not
            // keep: this is its one call.
            unsafe { (destroy.0)(user_data) };
        }
    }
}

/// The registration of `callback` by `context`'s plugin, owning `user_data` from now on; a NULL
/// callback is refused.
fn new_registration<C>(
    context: &PluginContext,
    callback: Option<C>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
) -> Result<Registration<C>, PhResult> {
    let Some(callback) = callback else {
        release_refused(context, user_data, destroy);
        return Err(PhResult::NullPointer);
    };
    Ok(Registration::new(
        context.shared.new_handle(),
        owner_of(context),
        callback,
        user_data,
        destroy,
    ))
}

unsafe extern "C" fn host_unregister(ctx: *mut PhHostContext, handle: PhHandle) -> PhResultCode {
    with_context(ctx, "unregister", |context| {
        context.shared.unregister(context, handle)
    })
}

unsafe extern "C" fn host_subscribe(
    ctx: *mut PhHostContext,
    topic: PhStr,
    callback: Option<PhEventCallback>,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> PhResultCode {
    registering(ctx, "subscribe", user_data, destroy, |context| {
        let registration = new_registration(context, callback, user_data, destroy)?;
        // SAFETY: the plugin passes a view valid for the call.
        let topic = match unsafe { arg(topic) } {
            Ok(topic) => topic,
            Err(code) => return Err(registration.refuse(code)),
        };
        let handle = context.shared.subscribe(registration, topic)?;
        // SAFETY: the plugin passes NULL or a writable handle.
        unsafe { write_handle(out_handle, handle) };
        Ok(())
    })
}

unsafe extern "C" fn host_publish(
    ctx: *mut PhHostContext,
    topic: PhStr,
    payload: PhBytes,
) -> PhResultCode {
    with_context(ctx, "publish", |context| {
        // SAFETY: the plugin passes views valid for the call.
        let (topic, payload) = unsafe { (PhBytes::from(topic).to_bytes()?, payload.to_bytes()?) };
        // One pass over the topic checks it (a valid topic is ASCII, so it needs no UTF-8 check
        // of its own) and hashes it for the filter and the routes.
        let Some(checked) = Topic::check(topic) else {
            return Err(invalid_topic(topic));
        };
        if let Some(observer) = &context.shared.observer {
            observer.published(&context.name, checked.as_str(), payload);
        }
        context.shared.publish_valid(checked, payload)
    })
}

unsafe extern "C" fn host_enumerate_plugins(
    ctx: *mut PhHostContext,
    callback: Option<PhPluginInfoCallback>,
    user_data: *mut c_void,
) -> PhResultCode {
    with_context(ctx, "enumerate_plugins", |context| {
        let callback = callback.ok_or(PhResult::NullPointer)?;
        // An isolated plugin's child process: the host's plugins (`crate::isolate`).
        if let Some(child) = context.shared.child.get() {
            return child.enumerate_plugins(callback, user_data);
        }
        context.shared.enumerate_plugins(|plugin| {
            let info = plugin_info(plugin);
            // SAFETY: the plugin's callback with its user data; `info` and its strings outlive
            // the call.
            unsafe { (callback.0)(user_data, &info) }
        })
    })
}

/// The error for a topic that is not valid: as for any string argument, invalid UTF-8 first.
#[cold]
fn invalid_topic(topic: &[u8]) -> PhResult {
    match std::str::from_utf8(topic) {
        Ok(_) => PhResult::InvalidArgument,
        Err(_) => PhResult::InvalidUtf8,
    }
}

/// The [`PhPluginInfo`] of a plugin, borrowing its strings.
pub(crate) fn plugin_info(plugin: &PluginContext) -> PhPluginInfo {
    PhPluginInfo {
        struct_size: std::mem::size_of::<PhPluginInfo>() as u32,
        abi_major: plugin.abi_version.0,
        abi_minor: plugin.abi_version.1,
        name: PhStr::new(&plugin.name),
        version: PhStr::new(&plugin.version),
        description: PhStr::new(&plugin.description),
        path: PhStr::new(&plugin.path),
    }
}

unsafe extern "C" fn host_enumerate_commands(
    ctx: *mut PhHostContext,
    plugin_name: PhStr,
    callback: Option<PhCommandInfoCallback>,
    user_data: *mut c_void,
) -> PhResultCode {
    with_context(ctx, "enumerate_commands", |context| {
        let callback = callback.ok_or(PhResult::NullPointer)?;
        // SAFETY: the plugin passes a view valid for the call.
        let plugin_name = unsafe { arg(plugin_name)? };
        // An isolated plugin's child process: the host's records (`crate::isolate`).
        if let Some(child) = context.shared.child.get() {
            return child.enumerate_commands(plugin_name, callback, user_data);
        }
        let target = context
            .shared
            .active_plugins()
            .into_iter()
            .find(|p| p.name == plugin_name)
            .ok_or(PhResult::NotFound)?;
        context
            .shared
            .enumerate_commands_of(&target, &mut |command| {
                let info = PhCommandInfo {
                    struct_size: std::mem::size_of::<PhCommandInfo>() as u32,
                    name: PhStr::new(command.name),
                    description: PhStr::new(command.description),
                    usage: PhStr::new(command.usage),
                };
                // SAFETY: the plugin's callback with its user data; `info` and its strings outlive
                // the call.
                unsafe { (callback.0)(user_data, &info) }
            })
    })
}

unsafe extern "C" fn host_config_get(
    ctx: *mut PhHostContext,
    key: PhStr,
    out_value: *mut PhStr,
) -> PhResultCode {
    with_context(ctx, "config_get", |context| {
        // SAFETY: the plugin passes a view valid for the call (the ABI's contract).
        let key = unsafe { arg(key)? };
        if out_value.is_null() {
            return Err(PhResult::NullPointer);
        }
        let value = context.config.get(key).ok_or(PhResult::NotFound)?;
        // SAFETY: non-null, and the plugin passes a pointer it may write (the ABI's contract). The
        // bytes belong to the context, which outlives the plugin's `shutdown`, and never change.
        unsafe { out_value.write(PhStr::new(value)) };
        Ok(())
    })
}

unsafe extern "C" fn host_provide_interface(
    ctx: *mut PhHostContext,
    decl: *const PhInterfaceDecl,
    user_data: *mut c_void,
    destroy: Option<PhDestroyCallback>,
    out_handle: *mut PhHandle,
) -> PhResultCode {
    registering(ctx, "provide_interface", user_data, destroy, |context| {
        // SAFETY: the plugin passes NULL or a declaration of its ABI version, valid for the call
        // (the ABI's contract of `provide_interface`); one of 1.3 or 1.4 has no `layout` (NULL).
        let decl = match unsafe { read_grown::<PhInterfaceDecl>(decl) } {
            Ok(decl) => decl,
            Err(code) => {
                release_refused(context, user_data, destroy);
                return Err(code);
            }
        };
        let registration = new_registration(context, Some(Table(decl.table)), user_data, destroy)?;
        // SAFETY: the declaration's id and signature are views valid for the call.
        let (id, signature) = match unsafe { (arg(decl.id), arg(decl.signature)) } {
            (Ok(id), Ok(signature)) => (id, signature),
            (Err(code), _) | (_, Err(code)) => return Err(registration.refuse(code)),
        };
        let declaration = Declaration {
            id,
            major: decl.major,
            minor: decl.minor,
            table_size: decl.table_size,
            signature,
            layout: decl.layout,
        };
        let handle = context
            .shared
            .provide_interface(registration, declaration)?;
        // SAFETY: the plugin passes NULL or a writable handle.
        unsafe { write_handle(out_handle, handle) };
        Ok(())
    })
}

unsafe extern "C" fn host_query_interface(
    ctx: *mut PhHostContext,
    id: PhStr,
    major: u16,
    min_table_size: u32,
    out: *mut PhInterface,
) -> PhResultCode {
    with_context(ctx, "query_interface", |context| {
        // SAFETY: the plugin passes NULL or a `PhInterface` of its ABI version that it may write,
        // whose `struct_size` (its first field, a `u32` every version has) it set.
        let size = unsafe { sized_out(out)? };
        // SAFETY: the plugin passes a view valid for the call.
        let id = unsafe { arg(id)? };
        let reference =
            context
                .shared
                .query_interface(&owner_of(context), id, major, min_table_size)?;
        // SAFETY: writable for `size` bytes, what `sized_out` returned (the plugin's contract).
        unsafe { write_grown(out, reference, size) };
        Ok(())
    })
}

unsafe extern "C" fn host_release_interface(
    ctx: *mut PhHostContext,
    handle: PhHandle,
) -> PhResultCode {
    with_context(ctx, "release_interface", |context| {
        context.shared.release_interface(context, handle)
    })
}

unsafe extern "C" fn host_run_tasks(
    ctx: *mut PhHostContext,
    task: Option<PhTaskFn>,
    user_data: *mut c_void,
    count: u32,
) -> PhResultCode {
    with_context(ctx, "run_tasks", |context| {
        let task = task.ok_or(PhResult::NullPointer)?;
        crate::tasks::run(&owner_of(context), task, user_data, count)
    })
}

unsafe extern "C" fn host_task_threads(_ctx: *mut PhHostContext) -> u32 {
    guard("task_threads", 1, crate::tasks::threads)
}
