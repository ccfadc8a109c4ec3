//! Running a command: `ph_host_run`, its output callback and its error message.

use std::ffi::c_void;
use std::io::Write;

use plughost::CommandError;
use plugin_api::abi::{PhBytes, PhResult, PhResultCode, PhStr};

use crate::boundary::{boundary, shared, text, HOST_FAILED};
use crate::types::{PhHost, PhHostErrorCallback, PhHostOutputCallback, TRUE};

/// How many arguments are converted on the stack; more are collected in a `Vec`. The host passes
/// the same number to the plugin without allocating.
const INLINE_ARGS: usize = 8;

/// Runs the command `command` with `arg_count` arguments `args` (the words after the command
/// name). `[thread-safe]`
///
/// The command runs on this thread, and returns before this does. Its output goes to `output`,
/// piece by piece, on this thread (NULL discards it). If it fails, `error` (may be NULL) receives
/// the code and the message, once, before this returns.
///
/// - `command`, `args`: UTF-8 views, borrowed for the call (`args` may be NULL when `arg_count`
///   is 0).
/// - `user_data`: passed to `output` and `error`.
///
/// Returns:
///
/// - `PH_RESULT_OK`: the command succeeded;
/// - `PH_RESULT_NULL_POINTER`: `host` is NULL, `args` is NULL with a count, or a view is NULL
///   with a length; `PH_RESULT_INVALID_UTF8`: the name or an argument is not UTF-8 (nothing ran);
/// - `PH_RESULT_NOT_FOUND`: no active plugin registered a command of that name;
/// - `PH_RESULT_ERROR`: the command ran and failed: `error` receives the command's own code (a
///   plugin's code, `PH_RESULT_ERROR` if it is not one the ABI knows) and its message, such as
///   `wordfreq: /no/such/file: No such file or directory (os error 2)`; or it panicked: `error`
///   receives `PH_RESULT_PANICKED`, and its plugin is now faulted (its commands are gone);
/// - `PH_RESULT_IO`: `output` stopped the output (see `PhHostOutputCallback`);
/// - `PH_RESULT_HOST_FAILED`: the host failed.
///
/// # Safety
///
/// `host` must be NULL or a live host, not used by a `[main-thread]` function during the call.
/// `command` and each of the `arg_count` views at `args` must view readable bytes (or be NULL
/// with length 0); a non-null `args` must point to `arg_count` views. `output` and `error` must be
/// safe to call with `user_data` on this thread.
#[no_mangle]
pub unsafe extern "C" fn ph_host_run(
    host: *const PhHost,
    command: PhStr,
    args: *const PhStr,
    arg_count: usize,
    output: Option<PhHostOutputCallback>,
    error: Option<PhHostErrorCallback>,
    user_data: *mut c_void,
) -> PhResultCode {
    boundary(HOST_FAILED, || {
        let mut out = Output {
            callback: output,
            user_data,
            refusal: None,
        };
        // SAFETY: this function's contract covers `run`'s.
        match unsafe { run(host, command, args, arg_count, &mut out) } {
            Ok(()) => PhResult::Ok.code(),
            Err(failure) => {
                // SAFETY: the caller's contract of `error`.
                unsafe { failure.report(error, user_data, &out) }
            }
        }
    })
}

/// Checks the arguments and runs the command.
///
/// # Safety
///
/// As for [`ph_host_run`].
#[inline]
unsafe fn run(
    host: *const PhHost,
    command: PhStr,
    args: *const PhStr,
    arg_count: usize,
    out: &mut Output,
) -> Result<(), Failure> {
    // SAFETY: the caller's contract is `shared`'s.
    let host = unsafe { shared(host) }.map_err(|code| Failure::argument(code, "the host"))?;
    // SAFETY: the caller passes a view valid for the call.
    let name = unsafe { text(command) }.map_err(|code| Failure::argument(code, "the command"))?;
    let views: &[PhStr] = match (args.is_null(), arg_count) {
        (_, 0) => &[],
        (true, _) => return Err(Failure::argument(PhResult::NullPointer, "args")),
        // SAFETY: `args` is not NULL and the caller guarantees it points to `arg_count` views.
        (false, n) => unsafe { std::slice::from_raw_parts(args, n) },
    };
    let argument = |i: usize, view: PhStr| {
        // SAFETY: the caller passes views valid for the call.
        unsafe { text(view) }
            .map_err(|code| Failure::argument(code, &format!("argument {}", i + 1)))
    };
    let ran = if views.is_empty() {
        host.host.run_command::<&str>(name, &[], out)
    } else if views.len() <= INLINE_ARGS {
        let mut inline = [""; INLINE_ARGS];
        for (i, (slot, view)) in inline.iter_mut().zip(views).enumerate() {
            *slot = argument(i, *view)?;
        }
        host.host.run_command(name, &inline[..views.len()], out)
    } else {
        let spilled = views
            .iter()
            .enumerate()
            .map(|(i, view)| argument(i, *view))
            .collect::<Result<Vec<&str>, Failure>>()?;
        host.host.run_command(name, &spilled, out)
    };
    ran.map_err(Failure::Command)
}

/// Why `ph_host_run` failed.
enum Failure {
    /// An argument broke its rule: the code, and which argument.
    Argument(PhResult, String),
    /// The host ran (or looked up) the command, which failed.
    Command(CommandError),
}

impl Failure {
    #[cold]
    fn argument(code: PhResult, what: &str) -> Failure {
        Failure::Argument(code, what.to_owned())
    }

    /// Sends the message to `error` and returns the code of `ph_host_run`.
    ///
    /// # Safety
    ///
    /// `error` must be safe to call with `user_data` on this thread.
    #[cold]
    #[inline(never)]
    unsafe fn report(
        self,
        error: Option<PhHostErrorCallback>,
        user_data: *mut c_void,
        out: &Output,
    ) -> PhResultCode {
        let (returned, reported, message) = match self {
            Failure::Argument(code, what) => (code, code, format!("{what}: {}", code.message())),
            Failure::Command(e) => match &e {
                CommandError::Unknown(_) => (PhResult::NotFound, PhResult::NotFound, e.to_string()),
                CommandError::Failed { code, .. } => (PhResult::Error, *code, e.to_string()),
                CommandError::Panicked { .. } => {
                    (PhResult::Error, PhResult::Panicked, e.to_string())
                }
                CommandError::Output { command, .. } => {
                    let why = out.refusal.as_deref().unwrap_or("output error");
                    (PhResult::Io, PhResult::Io, format!("{command}: {why}"))
                }
                _ => (PhResult::Error, PhResult::Error, e.to_string()),
            },
        };
        if let Some(error) = error {
            // SAFETY: our caller's contract; the message outlives the call.
            unsafe { (error.0)(user_data, reported.code(), PhStr::new(&message)) };
        }
        returned.code()
    }
}

/// A command's output, sent to the caller's callback.
struct Output {
    callback: Option<PhHostOutputCallback>,
    user_data: *mut c_void,
    /// Why the callback stopped the output, once it did.
    refusal: Option<String>,
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(callback) = self.callback else {
            return Ok(buf.len());
        };
        if buf.is_empty() {
            return Ok(0);
        }
        // SAFETY: `ph_host_run`'s caller guarantees `output` may be called with `user_data` on
        // this thread (the host writes only from the command's thread, which is this one); the
        // view borrows `buf`, alive for the call.
        let keep = unsafe { (callback.0)(self.user_data, PhBytes::new(buf)) };
        if keep == TRUE {
            return Ok(buf.len());
        }
        Err(self.stopped(keep))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    /// The error of a write that the callback refused with `value`.
    #[cold]
    fn stopped(&mut self, value: u8) -> std::io::Error {
        let why = if value == 0 {
            "the output callback stopped the output".to_owned()
        } else {
            format!(
                "the output callback returned {value}, which is not a bool (true is 1); the output stopped"
            )
        };
        self.refusal = Some(why.clone());
        std::io::Error::other(why)
    }
}
