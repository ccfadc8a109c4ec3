//! A command's output as the host serves it: the `PhCommandOutput` of a running command, and its
//! thread rule (only the command's own thread may write; others get `WRONG_THREAD`).

use std::ffi::c_void;
use std::io::Write;

use plugin_api::abi::{PhBytes, PhResult, PhResultCode, PhStr};

use crate::boundary::guard;

/// Where a command's output goes during [`crate::PluginHost::run_command`].
///
/// Only the thread that runs the command may use it (the ABI's thread rule of
/// `PhCommandOutput`): `thread` is that thread, set before the call and never changed, so any
/// thread may read it; everything else belongs to that thread.
pub(crate) struct Sink<'a> {
    pub(crate) thread: usize,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) error: Option<String>,
    pub(crate) io_error: Option<std::io::Error>,
}

pub(crate) unsafe extern "C" fn sink_write(context: *mut c_void, bytes: PhBytes) -> PhResultCode {
    guard("output write", PhResult::HostFailed.code(), || {
        // SAFETY: `context` is the `Sink` of the running command, alive until it returns (the
        // ABI's contract), on this thread or another.
        let Some(sink) = (unsafe { own_sink(context) }) else {
            return PhResult::WrongThread.code();
        };
        if sink.io_error.is_some() {
            return PhResult::Io.code();
        }
        // SAFETY: the plugin passes a view valid for the call.
        let bytes = match unsafe { bytes.to_bytes() } {
            Ok(bytes) => bytes,
            Err(code) => return code.code(),
        };
        match sink.out.write_all(bytes) {
            Ok(()) => PhResult::Ok.code(),
            Err(e) => {
                sink.io_error = Some(e);
                PhResult::Io.code()
            }
        }
    })
}

pub(crate) unsafe extern "C" fn sink_set_error(context: *mut c_void, message: PhStr) {
    guard("output set_error", (), || {
        // SAFETY: `context` is the `Sink` of the running command, alive until it returns (the
        // ABI's contract of `PhCommandOutput`), on this thread or another.
        let Some(sink) = (unsafe { own_sink(context) }) else {
            return;
        };
        // SAFETY: the plugin passes a view valid for the call.
        let message = unsafe { message.to_str() }.unwrap_or("<invalid UTF-8 error message>");
        sink.error = Some(message.to_owned());
    })
}

/// The sink behind an output `context`, if this thread is the command's.
///
/// # Safety
///
/// `context` must be the `Sink` of a command that is running (on any thread).
unsafe fn own_sink<'s>(context: *mut c_void) -> Option<&'s mut Sink<'s>> {
    let sink = context.cast::<Sink<'s>>();
    // SAFETY: the sink is alive (the caller's contract) and `thread` is never written while the
    // command runs, so reading it races with nothing.
    let thread = unsafe { std::ptr::addr_of!((*sink).thread).read() };
    if thread != crate::quiesce::thread_id() {
        return None;
    }
    // SAFETY: this is the command's thread, which is inside the plugin's call: `call_command`
    // does not touch the sink until the call returns, so this is the only reference.
    Some(unsafe { &mut *sink })
}
