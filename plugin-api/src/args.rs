//! Typed command arguments: [`FromArgs`], what a handler registered with
//! [`Host::command`](crate::Host::command) receives, built from the command's arguments by
//! [`Args`]; and [`FromArg`], one argument from its text.

use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use crate::error::Error;

/// The arguments of one command call, read from the front: what [`FromArgs::from_args`] takes
/// its values from.
///
/// ```
/// use plugin_api::{Args, Error, FromArgs};
///
/// /// `[--limit N]`
/// #[derive(Debug)]
/// struct Limit(Option<usize>);
///
/// impl FromArgs for Limit {
///     fn from_args(args: &mut Args<'_>) -> Result<Self, Error> {
///         if args.take_flag("--limit") {
///             return Ok(Limit(Some(args.value("--limit")?)));
///         }
///         Ok(Limit(None))
///     }
/// }
///
/// assert_eq!(Args::parse::<Limit>(&["--limit", "3"]).unwrap().0, Some(3));
/// assert_eq!(
///     Args::parse::<Limit>(&["--limit", "x"]).unwrap_err().message(),
///     "--limit: invalid value `x`: invalid digit found in string"
/// );
/// assert_eq!(
///     Args::parse::<Limit>(&["3"]).unwrap_err().message(),
///     "unexpected argument `3`"
/// );
/// ```
#[derive(Debug)]
pub struct Args<'a> {
    rest: &'a [&'a str],
    /// How many arguments were taken: the position of the next one is `taken + 1`.
    taken: usize,
}

impl<'a> Args<'a> {
    /// The arguments `args`, none taken yet.
    #[inline]
    pub fn new(args: &'a [&'a str]) -> Args<'a> {
        Args {
            rest: args,
            taken: 0,
        }
    }

    /// Reads all of `args` as a `T`: [`FromArgs::from_args`], then an error for the first
    /// argument it left (`unexpected argument `X``). This is what [`Host::command`](crate::Host::command)
    /// does before it calls the handler.
    ///
    /// # Errors
    ///
    /// The error of `T`'s [`FromArgs::from_args`], or the one for a left-over argument: one line
    /// each.
    #[inline]
    pub fn parse<T: FromArgs>(args: &'a [&'a str]) -> Result<T, Error> {
        let mut args = Args::new(args);
        let value = T::from_args(&mut args)?;
        args.finish()?;
        Ok(value)
    }

    /// The arguments not taken yet.
    #[inline]
    pub fn rest(&self) -> &'a [&'a str] {
        self.rest
    }

    /// The next argument, without taking it.
    #[inline]
    pub fn peek(&self) -> Option<&'a str> {
        self.rest.first().copied()
    }

    /// Takes the next argument.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<&'a str> {
        let (first, rest) = self.rest.split_first()?;
        self.rest = rest;
        self.taken += 1;
        Some(first)
    }

    /// Takes every argument left: for a parser of its own that reads a slice.
    pub fn take_rest(&mut self) -> &'a [&'a str] {
        let rest = std::mem::take(&mut self.rest);
        self.taken += rest.len();
        rest
    }

    /// Takes the next argument if it is `flag` (such as `--verbose`); whether it was.
    pub fn take_flag(&mut self, flag: &str) -> bool {
        if self.peek() == Some(flag) {
            self.next();
            true
        } else {
            false
        }
    }

    /// Takes the next argument as the value of the option `name` (such as `--top`), which the
    /// caller took just before.
    ///
    /// # Errors
    ///
    /// `NAME: missing value` if there is no next argument; `NAME: invalid value `X`: REASON` if it
    /// does not parse.
    pub fn value<T: FromArg>(&mut self, name: &str) -> Result<T, Error> {
        let text = self
            .next()
            .ok_or_else(|| Error::new(format!("{name}: missing value")))?;
        T::from_arg(text).map_err(|reason| invalid(name, text, &reason))
    }

    /// Takes the next argument as a positional `T`, called `argument N` in errors.
    fn positional<T: FromArg>(&mut self) -> Result<T, Error> {
        let position = self.taken + 1;
        let text = self
            .next()
            .ok_or_else(|| Error::new(format!("missing argument {position}")))?;
        T::from_arg(text).map_err(|reason| invalid(&format!("argument {position}"), text, &reason))
    }

    /// Succeeds if every argument was taken.
    ///
    /// # Errors
    ///
    /// `unexpected argument `X`` for the first one left.
    #[inline]
    pub fn finish(&self) -> Result<(), Error> {
        match self.peek() {
            None => Ok(()),
            Some(arg) => Err(unexpected(arg)),
        }
    }
}

/// The one-line error of an argument left over.
#[cold]
#[inline(never)]
fn unexpected(arg: &str) -> Error {
    Error::new(format!("unexpected argument `{arg}`"))
}

/// The one-line error of an argument that does not parse.
#[cold]
fn invalid(name: &str, text: &str, reason: &str) -> Error {
    Error::new(format!("{name}: invalid value `{text}`: {reason}"))
}

/// A command's arguments in a typed form: the second parameter of a handler registered with
/// [`Host::command`](crate::Host::command), read from the arguments before the handler runs. An
/// error becomes the command's one-line error, and the handler does not run.
///
/// Implemented for:
///
/// - `()`: no arguments;
/// - every [`FromArg`] type (`String`, `PathBuf`, numbers, `bool`, ...): exactly one argument;
/// - `Option<T>` of a [`FromArg`] type: one argument or none;
/// - `Vec<T>` of a [`FromArg`] type: every argument left;
/// - tuples of up to six of these, each taking its arguments in turn: `(String, Option<u32>)` is
///   `NAME [COUNT]`, `(usize, Vec<PathBuf>)` is `N FILE...`.
///
/// Implement it for options and flags, with the methods of [`Args`] (see its example).
/// Arguments left over are an error (`unexpected argument `X``).
pub trait FromArgs: Sized {
    /// Takes this value's arguments from the front of `args`.
    ///
    /// # Errors
    ///
    /// One line saying which argument is wrong and why.
    fn from_args(args: &mut Args<'_>) -> Result<Self, Error>;
}

/// One command argument from its text: see [`FromArgs`].
///
/// Implemented for `String`, `OsString`, `PathBuf`, `bool`, `char`, the integer and floating
/// point types and IP addresses (through their [`std::str::FromStr`]). Implement it for your own
/// types, for instance with `text.parse().map_err(|e| e.to_string())`.
pub trait FromArg: Sized {
    /// Parses `text`.
    ///
    /// # Errors
    ///
    /// Why `text` is not a valid value (the caller names the argument).
    fn from_arg(text: &str) -> Result<Self, String>;
}

macro_rules! from_arg_by_from_str {
    ($($t:ty),* $(,)?) => {
        $(
            impl FromArg for $t {
                fn from_arg(text: &str) -> Result<Self, String> {
                    text.parse().map_err(|e: <$t as std::str::FromStr>::Err| e.to_string())
                }
            }
        )*
    };
}

from_arg_by_from_str!(
    String, OsString, PathBuf, bool, char, i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128,
    usize, f32, f64, IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr,
);

impl FromArgs for () {
    #[inline]
    fn from_args(_: &mut Args<'_>) -> Result<Self, Error> {
        Ok(())
    }
}

impl<T: FromArg> FromArgs for T {
    fn from_args(args: &mut Args<'_>) -> Result<Self, Error> {
        args.positional()
    }
}

impl<T: FromArg> FromArgs for Option<T> {
    fn from_args(args: &mut Args<'_>) -> Result<Self, Error> {
        if args.peek().is_none() {
            return Ok(None);
        }
        args.positional().map(Some)
    }
}

impl<T: FromArg> FromArgs for Vec<T> {
    fn from_args(args: &mut Args<'_>) -> Result<Self, Error> {
        let mut values = Vec::with_capacity(args.rest().len());
        while args.peek().is_some() {
            values.push(args.positional()?);
        }
        Ok(values)
    }
}

macro_rules! from_args_tuple {
    ($($name:ident),+) => {
        impl<$($name: FromArgs),+> FromArgs for ($($name,)+) {
            fn from_args(args: &mut Args<'_>) -> Result<Self, Error> {
                Ok(($($name::from_args(args)?,)+))
            }
        }
    };
}

from_args_tuple!(A);
from_args_tuple!(A, B);
from_args_tuple!(A, B, C);
from_args_tuple!(A, B, C, D);
from_args_tuple!(A, B, C, D, E);
from_args_tuple!(A, B, C, D, E, F);

#[cfg(test)]
mod tests {
    use super::*;

    fn message<T: FromArgs + std::fmt::Debug>(args: &[&str]) -> String {
        Args::parse::<T>(args).unwrap_err().message().to_owned()
    }

    #[test]
    fn positional_values() {
        assert_eq!(Args::parse::<String>(&["Ada"]).unwrap(), "Ada");
        assert_eq!(
            Args::parse::<(String, Option<u32>)>(&["Ada", "3"]).unwrap(),
            ("Ada".to_owned(), Some(3))
        );
        assert_eq!(
            Args::parse::<(String, Option<u32>)>(&["Ada"]).unwrap(),
            ("Ada".to_owned(), None)
        );
        assert_eq!(
            Args::parse::<(usize, Vec<PathBuf>)>(&["2", "a", "b"]).unwrap(),
            (2, vec![PathBuf::from("a"), PathBuf::from("b")])
        );
        assert_eq!(Args::parse::<Vec<u8>>(&[]).unwrap(), Vec::<u8>::new());
        Args::parse::<()>(&[]).unwrap();
    }

    #[test]
    fn errors_are_one_line_naming_the_argument() {
        assert_eq!(message::<String>(&[]), "missing argument 1");
        assert_eq!(
            message::<(String, u32)>(&["Ada", "three"]),
            "argument 2: invalid value `three`: invalid digit found in string"
        );
        assert_eq!(message::<()>(&["x"]), "unexpected argument `x`");
        assert_eq!(
            message::<Option<u8>>(&["1", "2"]),
            "unexpected argument `2`"
        );
        assert_eq!(
            message::<Vec<bool>>(&["true", "yes"]),
            "argument 2: invalid value `yes`: provided string was not `true` or `false`"
        );
    }
}
