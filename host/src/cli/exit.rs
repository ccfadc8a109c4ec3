//! What `plughost` does when a plugin calls `exit()`: command output goes through a buffer that
//! the exit handler can reach, and the handler reports the plugin and its call in one line and
//! ends the process with a failure status, keeping the output written so far.

use std::io::Write;
use std::sync::Mutex;

use plughost::CallKind;

/// Command output not yet written to standard output, in a global so that the exit handler can
/// write it (see [`plugin_exited`]).
static OUTPUT: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// How much output [`Output`] keeps before writing it.
const OUTPUT_BUFFER: usize = 8 * 1024;

/// Standard output, buffered in [`OUTPUT`]. Every write of the buffer also flushes the standard
/// library's own buffer, so that nothing is left there when the exit handler writes the rest.
/// On a terminal each write of the plugin is shown at once (a long command's progress lines
/// appear as it prints them); into a pipe or a file, output is written in blocks.
pub(crate) struct Output;

/// Whether standard output is a terminal, asked once.
fn to_terminal() -> bool {
    use std::io::IsTerminal;
    static TERMINAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TERMINAL.get_or_init(|| std::io::stdout().is_terminal())
}

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buffer = OUTPUT.lock().unwrap_or_else(|e| e.into_inner());
        if buffer.len() + bytes.len() > OUTPUT_BUFFER {
            write_out(&mut buffer)?;
        }
        if bytes.len() >= OUTPUT_BUFFER {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes)?;
            stdout.flush()?;
        } else {
            buffer.extend_from_slice(bytes);
            if to_terminal() {
                write_out(&mut buffer)?;
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        write_out(&mut OUTPUT.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Writes and empties `buffer`.
fn write_out(buffer: &mut Vec<u8>) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(buffer).and_then(|()| stdout.flush());
    buffer.clear();
    written
}

/// The status plughost exits with when a plugin calls `exit` during its `init` or a command: 70,
/// `EX_SOFTWARE` of `sysexits.h` (an internal software error), distinct from the 1 of a failed
/// command.
const PLUGIN_EXITED: i32 = 70;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" {
    /// glibc's `on_exit(3)`: like `atexit`, but the handler also receives the exit status.
    fn on_exit(
        function: extern "C" fn(status: libc::c_int, arg: *mut libc::c_void),
        arg: *mut libc::c_void,
    ) -> libc::c_int;
}

/// Registers [`plugin_exited`] to run when the process exits through `exit` (which is also how
/// `main` returning ends it): with glibc through `on_exit`, which passes the status the plugin
/// gave; elsewhere on Unix through `atexit`, which does not.
pub(crate) fn install_exit_handler() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" fn handler(status: libc::c_int, _: *mut libc::c_void) {
            plugin_exited(Some(status));
        }
        // SAFETY: the `extern` block above declares glibc's `on_exit` with its C signature;
        // `handler` is a function of this binary, so it lives as long as the process, and it
        // ignores its pointer argument, so NULL is fine.
        let failed = unsafe { on_exit(handler, std::ptr::null_mut()) } != 0;
        if failed {
            log::debug!("on_exit failed: a plugin calling exit() will not be reported");
        }
    }
    #[cfg(all(unix, not(all(target_os = "linux", target_env = "gnu"))))]
    {
        extern "C" fn handler() {
            plugin_exited(None);
        }
        // SAFETY: `handler` is a function of this binary, so it lives as long as the process,
        // and has the `extern "C" fn()` type `atexit(3)` calls.
        let failed = unsafe { libc::atexit(handler) } != 0;
        if failed {
            log::debug!("atexit failed: a plugin calling exit() will not be reported");
        }
    }
}

/// The exit handler. If a plugin call is under way ([`plughost::current_call`]), a plugin called
/// `exit` inside it: writes the command's output so far, says on standard error which plugin did
/// it during what, and ends the process at once with [`PLUGIN_EXITED`], whatever status the plugin
/// gave. Otherwise (plughost exiting normally) does nothing.
///
/// Only writes to the raw descriptors 1 and 2 and takes no lock it could wait on: the plugin may
/// have called `exit` from anywhere, holding anything.
#[cfg(unix)]
fn plugin_exited(status: Option<libc::c_int>) {
    let Some(call) = plughost::current_call() else {
        return;
    };
    let kept = match OUTPUT.try_lock() {
        Ok(buffer) => write_fd(1, &buffer),
        Err(std::sync::TryLockError::Poisoned(e)) => write_fd(1, &e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => false,
    };
    let exit = match status {
        Some(status) => format!("exit({status})"),
        None => "exit()".to_owned(),
    };
    let consequence = match call.kind {
        CallKind::Command(_) => "the command did not finish",
        _ => "plughost did not finish",
    };
    let lost = if kept {
        ""
    } else {
        " (its output so far may be lost)"
    };
    let line = format!(
        "plughost: plugin `{}` called {exit} during {}; {consequence}{lost}\n",
        call.plugin, call.kind
    );
    write_fd(2, line.as_bytes());
    // SAFETY: `_exit(2)` has no preconditions: it ends the process at once, so nothing runs
    // afterwards that could see the state it leaves. Skipping the remaining exit handlers is the
    // point (they may belong to the plugin that is in the middle of a call); the output was
    // written above.
    unsafe { libc::_exit(PLUGIN_EXITED) }
}

/// Writes all of `bytes` to the descriptor `fd`, retrying when interrupted. Whether it did.
#[cfg(unix)]
fn write_fd(fd: libc::c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: `write(2)` reads `bytes.len()` bytes from `bytes`, a live slice; a bad
        // descriptor is reported as an error, not undefined behaviour.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if written == 0 {
            return false;
        }
        bytes = &bytes[written as usize..];
    }
    true
}
