//! Commands: the host's records of them (callback and text), their registration, and running
//! one ([`CommandHandle`], the call path of [`crate::PluginHost::run_command`]); its output goes
//! through [`crate::output`]. Listing them is [`crate::enumerate`]'s.

use std::io::Write;
use std::sync::Arc;

use plugin_api::abi::{
    PhCommandCallback, PhCommandOutput, PhHandle, PhResult, PhSetErrorFn, PhStr, PhWriteFn,
    PH_MAX_DESCRIPTION_LEN, PH_MAX_USAGE_LEN,
};

use crate::error::CommandError;
use crate::output::{sink_set_error, sink_write, Sink};
use crate::registry::{Entry, LockExt, Registration, Shared};

/// The registration of an `Arc` made a moment ago and never shared.
pub(crate) fn unshared<C>(registration: Arc<Registration<C>>) -> Registration<C> {
    Arc::try_unwrap(registration)
        .unwrap_or_else(|_| unreachable!("a new registration has no other reference"))
}

/// A registered command: the callback, and the text the host shows for it.
pub(crate) struct CommandRecord {
    pub(crate) registration: Arc<Registration<PhCommandCallback>>,
    pub(crate) description: Box<str>,
    pub(crate) usage: Box<str>,
    /// Whether the text came with the registration (ABI 1.2); if not, the host asks the plugin's
    /// `enumerate_commands` for it.
    pub(crate) described: bool,
}

/// A command as an enumeration lists it: handle (registration order), name, description, usage,
/// and whether the text is known.
pub(crate) type Listed = (PhHandle, String, Box<str>, Box<str>, bool);

/// What a plugin says about a command when it registers it (ABI 1.2), or `None` for the text of
/// an older plugin's enumeration.
pub(crate) struct CommandText<'a> {
    pub(crate) description: &'a str,
    pub(crate) usage: &'a str,
}

impl Shared {
    /// Registers the command `name` for the registration's owner, with its text (`None` for a
    /// plugin older than ABI 1.2). On error the registration is refused (see
    /// [`Registration::refuse`]).
    pub(crate) fn register_command(
        &self,
        registration: Registration<PhCommandCallback>,
        name: &str,
        text: Option<CommandText<'_>>,
    ) -> Result<PhHandle, PhResult> {
        if !plugin_api::abi::is_valid_name(name) {
            return Err(registration.refuse(PhResult::InvalidArgument));
        }
        if let Some(text) = &text {
            if text.description.len() > PH_MAX_DESCRIPTION_LEN
                || text.usage.len() > PH_MAX_USAGE_LEN
            {
                return Err(registration.refuse(PhResult::LimitExceeded));
            }
        }
        // In an isolated plugin's child: the host registers the same command for its proxy.
        let hook_text = self.child.get().map(|_| match &text {
            Some(text) => (text.description.to_owned(), text.usage.to_owned()),
            None => Default::default(),
        });
        let (description, usage, described) = match text {
            Some(text) => (text.description.into(), text.usage.into(), true),
            None => (Box::default(), Box::default(), false),
        };
        let owner = Arc::clone(&registration.owner);
        let mut first = None;
        let added = self.add(
            registration,
            Entry::Command(name.to_owned()),
            |registration| {
                // The new version of a reload stages its commands (see `crate::reload`): the
                // old version's names are not taken for it, its own staged ones are.
                let staging = owner.is_staged().then(|| self.staging.lookup(&owner, name));
                let mut commands = self.commands.write_or_recover();
                let taken = match (commands.get(name), &staging) {
                    (_, Some(staged)) if staged.already_staged => Some(Arc::clone(&owner)),
                    (Some(record), Some(staged)) if staged.replaces(&record.registration.owner) => {
                        None
                    }
                    (Some(record), _) => Some(Arc::clone(&record.registration.owner)),
                    (None, _) => None,
                };
                if let Some(taken) = taken {
                    first = Some(taken);
                    return Err((registration, PhResult::AlreadyExists));
                }
                let record = CommandRecord {
                    registration: Arc::new(registration),
                    description,
                    usage,
                    described,
                };
                if staging.is_none() {
                    commands.insert(name.to_owned(), record);
                    return Ok(());
                }
                drop(commands);
                // Refused (its `destroy` after the lock) if the reload ended meanwhile, which
                // cannot happen (see `Staging::add_command`).
                self.staging
                    .add_command(&owner, name, record)
                    .map_err(|record| (unshared(record.registration), PhResult::ShutDown))
            },
        );
        if let Some(first) = first {
            log::warn!(
                "plugin `{}` ({}) cannot register the command `{name}`: plugin `{}` ({}) registered it first",
                owner.name,
                owner.path,
                first.name,
                first.path
            );
        }
        if let (Some(child), Ok(handle), Some((description, usage))) =
            (self.child.get(), &added, hook_text)
        {
            let registered = crate::isolate::child::Registered::Command {
                handle: *handle,
                name,
                description: &description,
                usage: &usage,
            };
            if let Err(code) = child.registered(registered) {
                let _ = self.unregister(&owner, *handle);
                return Err(code);
            }
        }
        added
    }

    /// Looks up a command.
    pub(crate) fn command(&self, name: &str) -> Option<Arc<Registration<PhCommandCallback>>> {
        self.commands
            .read_or_recover()
            .get(name)
            .map(|r| Arc::clone(&r.registration))
    }

    /// The names of all registered commands, sorted, with their plugins.
    pub(crate) fn command_names(&self) -> Vec<(String, String)> {
        let mut names: Vec<(String, String)> = self
            .commands
            .read_or_recover()
            .iter()
            .map(|(name, r)| (name.clone(), r.registration.owner.name.clone()))
            .collect();
        names.sort();
        names
    }
}

/// A command resolved once by [`PluginHost::command`](crate::PluginHost::command): runs it without looking it up again.
///
/// A handle borrows its host, so it cannot outlive it nor a shutdown. If the command's plugin
/// is reloaded ([`PluginHost::reload`](crate::PluginHost::reload)), the handle runs the new
/// version's command from then on (looking it up by name at each run). If the plugin
/// unregisters it, faults or is unloaded, [`CommandHandle::run`] returns
/// [`CommandError::Unknown`]. While a handle exists, the registration's user data stays alive:
/// its `destroy` runs when the last handle is dropped, as it waits for a dispatch under way.
///
/// # Thread-safety
///
/// `Send + Sync`: one handle may run its command on several threads at once.
pub struct CommandHandle<'host> {
    pub(crate) shared: &'host Shared,
    pub(crate) name: String,
    pub(crate) registration: Arc<Registration<PhCommandCallback>>,
}

impl CommandHandle<'_> {
    /// The command name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the command with `args` (the words after the command name); its output goes to
    /// `out`. Up to 8 arguments are passed without allocating.
    ///
    /// # Errors
    ///
    /// As [`PluginHost::run_command`](crate::PluginHost::run_command);
    /// [`CommandError::Unknown`] once the command is gone.
    #[inline]
    pub fn run<S: AsRef<str>>(&self, args: &[S], out: &mut dyn Write) -> Result<(), CommandError> {
        if args.is_empty() {
            return self.run_views(&[], out);
        }
        with_views(args, |views| self.run_views(views, out))
    }

    /// [`CommandHandle::run`] with the arguments as views: one frame for the whole call on the
    /// host's side (the grace-period mark, the liveness check, the output and the call).
    fn run_views(&self, args: &[PhStr], out: &mut dyn Write) -> Result<(), CommandError> {
        // Inside before the check: a shutdown of the plugin that begins after the check waits
        // for the call (see `crate::quiesce`).
        let _inside = crate::quiesce::enter();
        if !self.registration.is_active() {
            return self.run_current(args, out);
        }
        call_command(self.shared, &self.name, &self.registration, args, out)
    }

    /// Runs the command of the same name and plugin that is registered now: the new version's,
    /// after a reload of the plugin.
    #[cold]
    #[inline(never)]
    fn run_current(&self, args: &[PhStr], out: &mut dyn Write) -> Result<(), CommandError> {
        let current = self
            .shared
            .command(&self.name)
            .filter(|c| c.is_active() && c.owner.name == self.registration.owner.name)
            .ok_or_else(|| CommandError::Unknown(self.name.clone()))?;
        call_command(self.shared, &self.name, &current, args, out)
    }
}

impl std::fmt::Debug for CommandHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandHandle")
            .field("name", &self.name)
            .field("plugin", &self.registration.owner.name)
            .finish()
    }
}

/// How many arguments [`with_views`] passes from the stack; more are collected in a `Vec`.
const INLINE_ARGS: usize = 8;

/// Calls `f` with `args` as the ABI's views, without allocating for up to [`INLINE_ARGS`]
/// arguments.
#[inline]
pub(crate) fn with_views<S: AsRef<str>, R>(args: &[S], f: impl FnOnce(&[PhStr]) -> R) -> R {
    if args.len() <= INLINE_ARGS {
        let mut inline = [PhStr::EMPTY; INLINE_ARGS];
        for (slot, arg) in inline.iter_mut().zip(args) {
            *slot = PhStr::new(arg.as_ref());
        }
        return f(&inline[..args.len()]);
    }
    let spilled: Vec<PhStr> = args.iter().map(|a| PhStr::new(a.as_ref())).collect();
    f(&spilled)
}

/// Calls the command's callback with `args` and an output that writes to `out`: the body of
/// [`PluginHost::run_command`](crate::PluginHost::run_command) after the lookup, and of
/// [`CommandHandle::run`]. The success path is a few stores, the call and two checks; failures
/// are handled in [`command_failed`].
///
/// The caller entered a service call ([`crate::quiesce::enter`]) before it looked the command up
/// and checked that it is active, so that the plugin's shutdown waits for this call.
#[inline(always)]
pub(crate) fn call_command(
    shared: &Shared,
    name: &str,
    command: &Registration<PhCommandCallback>,
    args: &[PhStr],
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let mut sink = Sink {
        thread: crate::quiesce::thread_id(),
        out,
        error: None,
        io_error: None,
    };
    let output = PhCommandOutput {
        struct_size: std::mem::size_of::<PhCommandOutput>() as u32,
        context: (&mut sink as *mut Sink<'_>).cast(),
        write: PhWriteFn(sink_write),
        set_error: PhSetErrorFn(sink_set_error),
    };
    // SAFETY: the plugin registered this callback with this user data, alive while we hold the
    // registration; `args`, `output` and `sink` outlive the call.
    let code =
        unsafe { (command.callback.0)(command.user_data, args.as_ptr(), args.len(), &output) };
    if code == PhResult::Ok.code() && sink.io_error.is_none() {
        return Ok(());
    }
    command_failed(shared, name, command, PhResult::from_code(code), sink)
}

/// The error of a command that returned `code` (not `Ok`), or whose output failed.
#[cold]
#[inline(never)]
fn command_failed(
    shared: &Shared,
    name: &str,
    command: &Registration<PhCommandCallback>,
    code: PhResult,
    mut sink: Sink<'_>,
) -> Result<(), CommandError> {
    if let Some(source) = sink.io_error.take() {
        return Err(CommandError::Output {
            command: name.to_owned(),
            source,
        });
    }
    match code {
        PhResult::Ok => Ok(()),
        PhResult::Panicked => {
            shared.fault(&command.owner, &format!("its command `{name}` panicked"));
            Err(CommandError::Panicked {
                command: name.to_owned(),
                plugin: command.owner.name.clone(),
            })
        }
        code => Err(CommandError::Failed {
            command: name.to_owned(),
            code,
            message: sink.error.unwrap_or_else(|| code.message().to_owned()),
        }),
    }
}
