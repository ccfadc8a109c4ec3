//! [`Error`]: the error of every operation of the safe layer, a result code and a message.

use std::fmt;

use crate::abi::{PhResult, PhResultCode};

/// The result of a plugin operation: `plugin_api::Result<T>` is `Result<T, plugin_api::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a handler bound to the plugin's state returns ([`Host::command`](crate::Host::command),
/// [`Host::on`](crate::Host::on)): `Result<(), Error>`, or `()` for a handler that cannot fail.
pub trait Outcome {
    /// The handler's result.
    ///
    /// # Errors
    ///
    /// The handler's error.
    fn into_result(self) -> Result<(), Error>;
}

impl Outcome for () {
    #[inline]
    fn into_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl Outcome for Result<(), Error> {
    #[inline]
    fn into_result(self) -> Result<(), Error> {
        self
    }
}

/// An error of a plugin operation: a [`PhResult`] code and a message for the user.
///
/// Any `std::error::Error` converts into it with `?` (code [`PhResult::Error`]), so command
/// bodies can use `?` on I/O and parse errors.
pub struct Error {
    code: PhResult,
    /// Borrowed for the fixed messages of the safe layer, so that making one allocates nothing
    /// (and cannot unwind) on a call path.
    message: std::borrow::Cow<'static, str>,
}

impl Error {
    /// An error with code [`PhResult::Error`] and `message`.
    pub fn new(message: impl Into<String>) -> Error {
        Error::with_code(PhResult::Error, message)
    }

    /// An error with a specific code. An error is never reported as success: one made with
    /// [`PhResult::Ok`] crosses the boundary (a failed `init`, command, event handler or
    /// interface method) as [`PhResult::Error`].
    pub fn with_code(code: PhResult, message: impl Into<String>) -> Error {
        Error {
            code,
            message: std::borrow::Cow::Owned(message.into()),
        }
    }

    /// The code this error crosses the boundary with where an error must not read as success:
    /// [`Error::code`], or [`PhResult::Error`] for an error made with code `Ok`.
    pub(crate) fn failure_code(&self) -> PhResult {
        match self.code {
            PhResult::Ok => PhResult::Error,
            code => code,
        }
    }

    /// The error code carried across the boundary.
    pub fn code(&self) -> PhResult {
        self.code
    }

    /// An error with `code` and a fixed `message`: allocates nothing.
    #[inline]
    pub(crate) const fn fixed(code: PhResult, message: &'static str) -> Error {
        Error {
            code,
            message: std::borrow::Cow::Borrowed(message),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error of a host service `operation` that returned `code`, or `Ok` for success.
    #[inline]
    pub(crate) fn check(operation: &str, code: PhResultCode) -> Result<(), Error> {
        if code == PhResult::Ok.code() {
            return Ok(());
        }
        Err(Error::failed(operation, code))
    }

    /// The error of a host service `operation` that returned the error `code`.
    #[cold]
    pub(crate) fn failed(operation: &str, code: PhResultCode) -> Error {
        let code = PhResult::from_code(code);
        Error::with_code(code, format!("{operation}: {code}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}: {})", self.code, self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Error {
        Error::new(error.to_string())
    }
}
