//! Standard output closed by its reader (`plughost list | head -1`): not an error of plughost.
//!
//! Rust ignores `SIGPIPE`, so a write to a pipe whose reader has gone fails with `EPIPE`
//! (`ErrorKind::BrokenPipe`) instead of ending the process. plughost keeps it that way, since a
//! plugin's own sockets and pipes must not kill the host, and treats that one error on its own
//! standard output as the reader's choice: the action stops writing, shuts its plugins down as
//! usual, and `plughost` exits with status 0 without a message, as `cat` or `ripgrep` would.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a write to standard output failed because its reader closed it.
static READER_LEFT: AtomicBool = AtomicBool::new(false);

/// The message of a failed write to standard output, noting a reader that left (see
/// [`reader_left`]).
pub(crate) fn output_error(error: &io::Error) -> String {
    note(error);
    format!("writing output: {error}")
}

/// Notes `error` if it is the reader of standard output closing it.
pub(crate) fn note(error: &io::Error) {
    if error.kind() == io::ErrorKind::BrokenPipe {
        READER_LEFT.store(true, Ordering::Relaxed);
    }
}

/// Whether the reader of standard output closed it: `main` then ends quietly with status 0.
pub(crate) fn reader_left() -> bool {
    READER_LEFT.load(Ordering::Relaxed)
}

/// Writes `text` and a newline to standard output; the error as [`output_error`] words it.
pub(crate) fn println(text: std::fmt::Arguments<'_>) -> Result<(), String> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| output_error(&e))
}
