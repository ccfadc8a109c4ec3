//! Commands: [`Command`], [`Host::register_command`] and [`Host::command`] (the same, with a
//! handler bound to the plugin's state and typed arguments), the command callback of the safe
//! layer and the [`Output`] a command writes to.

use std::ffi::c_void;
use std::io;

use crate::abi::{
    read_sized, PhBytes, PhCommandCallback, PhCommandInfo, PhCommandOutput, PhDestroyCallback,
    PhResult, PhResultCode, PhStr,
};
use crate::args::{Args, FromArgs};
use crate::boundary::guard;
use crate::callback::{drop_callback, Callback};
use crate::error::{Error, Outcome};
use crate::host::{Handle, Host};
use crate::state::StateSlot;

/// The description of a command to register: its name, a one-line description and its usage.
#[derive(Debug, Clone)]
pub struct Command {
    name: String,
    about: String,
    usage: String,
}

impl Command {
    /// A command named `name`: 1 to [`crate::abi::PH_MAX_NAME_LEN`] bytes of ASCII letters,
    /// digits, `-`, `_` or `.`.
    pub fn new(name: impl Into<String>) -> Command {
        Command {
            name: name.into(),
            about: String::new(),
            usage: String::new(),
        }
    }

    /// Sets the one-line description shown by `plughost list`.
    pub fn about(mut self, about: impl Into<String>) -> Command {
        self.about = about.into();
        self
    }

    /// Sets the arguments' synopsis, such as `[--top N] FILE...`.
    pub fn usage(mut self, usage: impl Into<String>) -> Command {
        self.usage = usage.into();
        self
    }
}

impl From<&str> for Command {
    /// [`Command::new`]: a command with no description or usage.
    fn from(name: &str) -> Command {
        Command::new(name)
    }
}

impl From<String> for Command {
    /// [`Command::new`]: a command with no description or usage.
    fn from(name: String) -> Command {
        Command::new(name)
    }
}

impl Host {
    /// Registers a command. The host runs `f` with the arguments that follow the command name and
    /// an [`Output`] for what it prints; an `Err` is reported to the user.
    ///
    /// `f` may run on any thread, several times at once. A panic in `f` is caught, logged and
    /// reported as a failed command.
    ///
    /// # Errors
    ///
    /// [`PhResult::AlreadyExists`] if any plugin registered that name, [`PhResult::InvalidArgument`]
    /// for an invalid name, [`PhResult::ShutDown`] after shutdown.
    pub fn register_command<F>(&self, command: Command, f: F) -> Result<Handle, Error>
    where
        F: Fn(&[&str], &mut Output<'_>) -> Result<(), Error> + Send + Sync + 'static,
    {
        let services = self.link.services()?;
        let name = &command.name;
        let info = PhCommandInfo {
            struct_size: std::mem::size_of::<PhCommandInfo>() as u32,
            name: PhStr::new(name),
            description: PhStr::new(&command.about),
            usage: PhStr::new(&command.usage),
        };
        let user_data = Callback::into_user_data(&self.link, format!("command `{name}`"), f);
        self.register(
            &format!("register_command({name:?})"),
            user_data,
            |user_data, out| {
                // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link
                // is active (`HostLink::services`) (of this ABI version, checked at init); `info`
                // and its strings outlive the call; `user_data` is a `Callback<F>` matching the
                // trampoline and the destroy function.
                unsafe {
                    (services.register_command_with_info)(
                        self.link.ctx,
                        &info,
                        Some(PhCommandCallback(command_trampoline::<F>)),
                        user_data,
                        Some(PhDestroyCallback(drop_callback::<F>)),
                        out,
                    )
                }
            },
        )
    }
}

impl Host {
    /// Registers a command whose handler gets the plugin's state and its arguments parsed: `f`
    /// runs with `&S`, the value [`Plugin::init`](crate::Plugin::init) returned (`S` is the
    /// plugin's type, checked here), the arguments as an `A` (see [`FromArgs`]: `()`, `String`,
    /// `(String, Option<u32>)`, `Vec<PathBuf>`, your own type), and the [`Output`]; it returns
    /// `Result<(), Error>` or `()` (see [`Outcome`]). `command` is a [`Command`] or just its
    /// name.
    ///
    /// This is [`Host::register_command`] with the state found for you: the same registration,
    /// threads and errors, and no lock, allocation or reference count on the call path beyond
    /// what `A` allocates. Arguments that do not parse fail the command with one line (such as
    /// `argument 2: invalid value `x`: invalid digit found in string`) and `f` does not run.
    ///
    /// `f` runs only while the state exists: from the return of `init` until the host begins the
    /// plugin's `shutdown` (it calls nothing of the plugin after that). A call before `init`
    /// returned, which the host may make as soon as the registration succeeds, fails without
    /// running `f`.
    ///
    /// ```
    /// use plugin_api::{Error, Host, Plugin};
    /// use std::io::Write;
    ///
    /// struct Greeter {
    ///     greeting: String,
    /// }
    ///
    /// impl Plugin for Greeter {
    ///     const NAME: &'static str = "greeter";
    ///
    ///     fn init(host: &Host) -> Result<Self, Error> {
    ///         host.command("greet", |me: &Self, (name, times): (String, Option<u32>), out| {
    ///             for _ in 0..times.unwrap_or(1) {
    ///                 writeln!(out, "{}, {name}!", me.greeting)?;
    ///             }
    ///             Ok(())
    ///         })?;
    ///         Ok(Greeter { greeting: "Hello".into() })
    ///     }
    /// }
    /// # let mut host = plughost_testing::MockHost::new();
    /// # host.load::<Greeter>().unwrap();
    /// # assert_eq!(host.run("greet", &["Ada", "2"]).unwrap(), "Hello, Ada!\nHello, Ada!\n");
    /// # assert_eq!(host.run("greet", &[]).unwrap_err().message(), "missing argument 1");
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`Host::register_command`]; [`PhResult::InvalidArgument`] if `S` is not this
    /// plugin's type.
    pub fn command<S, A, R, F>(&self, command: impl Into<Command>, f: F) -> Result<Handle, Error>
    where
        S: Send + Sync + 'static,
        A: FromArgs,
        R: Outcome,
        F: Fn(&S, A, &mut Output<'_>) -> R + Send + Sync + 'static,
    {
        let command = command.into();
        let slot = self.state_slot::<S>(&format!("command `{}`", command.name))?;
        self.register_command(command, move |args, out| {
            // SAFETY: this closure runs only in the command trampoline, during a call the host
            // dispatched into the plugin (it is moved into the registration, which nothing else
            // calls), and the state is used only until it returns.
            match unsafe { slot.get() } {
                Some(state) => f(state, Args::parse(args)?, out).into_result(),
                None => Err(StateSlot::<S>::not_available()),
            }
        })
    }
}

/// How many command arguments the command trampoline reads without allocating.
const INLINE_ARGS: usize = 8;

/// The command callback of the safe layer: runs the closure in a [`guard`].
unsafe extern "C" fn command_trampoline<F>(
    user_data: *mut c_void,
    args: *const PhStr,
    arg_count: usize,
    output: *const PhCommandOutput,
) -> PhResultCode
where
    F: Fn(&[&str], &mut Output<'_>) -> Result<(), Error> + Send + Sync + 'static,
{
    // SAFETY: `user_data` is the `Callback<F>` registered with this trampoline, alive until the
    // host calls `destroy`, which it does not do while a dispatch is under way.
    let command = unsafe { &*user_data.cast::<Callback<F>>() };
    guard(
        Some(&command.link),
        &command.what,
        PhResult::Panicked.code(),
        || {
            // SAFETY: the host passes NULL or its output, valid for the duration of the call (the
            // contract of `PhCommandCallback`).
            let output = match unsafe { read_sized(output) } {
                Ok(output) => output,
                Err(code) => return code.code(),
            };
            if arg_count == 0 {
                return run_command(&command.f, &[], output);
            }
            if args.is_null() {
                return PhResult::NullPointer.code();
            }
            // SAFETY: the host passes `arg_count` readable views, valid for the call (the ABI's
            // contract of a command callback); `args` is not NULL (checked above).
            let raw = unsafe { std::slice::from_raw_parts(args, arg_count) };
            // SAFETY: the views are the host's arguments, valid until this callback returns,
            // which is after `with_args` returns.
            unsafe { with_args(raw, |args| run_command(&command.f, args, output)) }
        },
    )
}

/// Calls `f` with the arguments `raw`, read as strings: up to `INLINE_ARGS` into an array on the
/// stack, more into a `Vec`, so that a command call allocates nothing unless it has many
/// arguments. Returns the error code of an argument that is not a valid string.
///
/// # Safety
///
/// Every view of `raw` must satisfy the contract of [`PhStr::to_str`] until this returns.
#[inline(never)]
unsafe fn with_args(raw: &[PhStr], f: impl FnOnce(&[&str]) -> PhResultCode) -> PhResultCode {
    if raw.len() <= INLINE_ARGS {
        let mut inline = [""; INLINE_ARGS];
        for (slot, arg) in inline.iter_mut().zip(raw) {
            // SAFETY: each view is valid until this returns (this function's contract), and the
            // strings are only used by `f`, before that.
            match unsafe { arg.to_str() } {
                Ok(arg) => *slot = arg,
                Err(code) => return code.code(),
            }
        }
        return f(&inline[..raw.len()]);
    }
    match raw
        .iter()
        // SAFETY: each view is valid until this returns (this function's contract), and the
        // strings are only used by `f`, before that.
        .map(|a| unsafe { a.to_str() })
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(args) => f(&args),
        Err(code) => code.code(),
    }
}

/// Runs a command closure with its arguments and output; returns its result code.
#[inline(always)]
fn run_command<F>(f: &F, args: &[&str], output: &PhCommandOutput) -> PhResultCode
where
    F: Fn(&[&str], &mut Output<'_>) -> Result<(), Error>,
{
    let mut out = Output::new(output);
    match f(args, &mut out).and(out.finish()) {
        Ok(()) => PhResult::Ok.code(),
        // Reported through the host's output: `out` is not needed for it.
        Err(error) => command_error(output, error),
    }
}

/// Reports a command's error to the host through its output; returns its code.
#[cold]
#[inline(never)]
fn command_error(output: &PhCommandOutput, error: Error) -> PhResultCode {
    // SAFETY: the host's output is valid for the duration of the command, of which this is a
    // part; the message outlives the call.
    unsafe { (output.set_error.0)(output.context, PhStr::new(error.message())) }
    error.failure_code().code()
}

/// Where a command writes its output. Implements [`std::io::Write`]; output is buffered and sent
/// to the host in chunks.
pub struct Output<'a> {
    raw: &'a PhCommandOutput,
    buffer: Vec<u8>,
}

/// Output is sent to the host in chunks of this many bytes.
const OUTPUT_CHUNK: usize = 16 * 1024;

impl<'a> Output<'a> {
    #[inline]
    fn new(raw: &'a PhCommandOutput) -> Output<'a> {
        Output {
            raw,
            buffer: Vec::new(),
        }
    }

    #[inline]
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.send_buffer()
    }

    /// Sends the buffered bytes, which are not empty.
    fn send_buffer(&mut self) -> io::Result<()> {
        // SAFETY: the host's output is valid for the duration of the command; the buffer outlives
        // the call.
        let code = unsafe { (self.raw.write.0)(self.raw.context, PhBytes::new(&self.buffer)) };
        self.buffer.clear();
        match PhResult::from_code(code) {
            PhResult::Ok => Ok(()),
            PhResult::Io => Err(io::Error::new(io::ErrorKind::BrokenPipe, "output closed")),
            code => Err(io::Error::other(format!("writing output: {code}"))),
        }
    }

    #[inline]
    fn finish(&mut self) -> Result<(), Error> {
        self.send()
            .map_err(|e| Error::with_code(PhResult::Io, e.to_string()))
    }
}

/// An `Output` is also a `dyn std::io::Write`, so that `write!`, `writeln!` and the other methods
/// of [`std::io::Write`] work on it without `use std::io::Write` (with the import, they call the
/// implementation below directly).
impl<'a> std::ops::Deref for Output<'a> {
    type Target = dyn io::Write + 'a;

    fn deref(&self) -> &Self::Target {
        self
    }
}

impl std::ops::DerefMut for Output<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self
    }
}

impl io::Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= OUTPUT_CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
