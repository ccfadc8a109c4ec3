//! Ctrl-C while a plugin command runs in the interactive shell.
//!
//! A call into a plugin cannot be interrupted (the ABI has no cancellation, and stopping a thread
//! inside a plugin would leave its state and the host's locks behind), so the first Ctrl-C during
//! a command says that it keeps running, and a second one ends plughost (exit status 130, as a
//! shell reports an interrupted program). At the prompt the line editor reads Ctrl-C as a key,
//! which clears the line: no signal is raised there.

use std::sync::atomic::{AtomicU32, Ordering};

/// How many times Ctrl-C was pressed during the current command.
static PRESSES: AtomicU32 = AtomicU32::new(0);

/// What the first Ctrl-C during a command prints.
const FIRST: &[u8] =
    b"\nplughost: a plugin command cannot be interrupted: it keeps running (Ctrl-C again ends plughost)\n";

/// The `SIGINT` handler. Async-signal-safe: an atomic add, `write` and `_exit` only.
#[cfg(unix)]
extern "C" fn on_interrupt(_signal: libc::c_int) {
    if PRESSES.fetch_add(1, Ordering::SeqCst) == 0 {
        // SAFETY: `write` is async-signal-safe; the buffer is a static of that length.
        unsafe { libc::write(libc::STDERR_FILENO, FIRST.as_ptr().cast(), FIRST.len()) };
    } else {
        // SAFETY: `_exit` is async-signal-safe and ends the process without running handlers
        // that could take locks the interrupted thread holds.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the handler for the rest of the process (the interactive shell calls it once).
///
/// # Errors
///
/// The system's error if `sigaction` fails (the shell then goes on with Ctrl-C ending it).
#[cfg(unix)]
pub(crate) fn install() -> std::io::Result<()> {
    // SAFETY: a zeroed `sigaction` is a valid value (no flags, empty mask) that is filled in
    // below before use.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid signal set to initialise; `sigaction` reads `action`
    // and writes no old action (NULL); the handler only does async-signal-safe work.
    let result = unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut())
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Where signals do not exist: nothing to install.
#[cfg(not(unix))]
pub(crate) fn install() -> std::io::Result<()> {
    Ok(())
}

/// Starts counting afresh: called before each line runs.
pub(crate) fn reset() {
    PRESSES.store(0, Ordering::SeqCst);
}
