//! The child process of an isolated plugin: a host core of its own, with the one plugin loaded
//! in-process, serving the host's requests over the socket ([`super::wire`]) and forwarding
//! what the plugin asks of its host: registrations (through hooks of the registry,
//! [`ChildLink::registered`]), log records and published events (as the core's [`Observer`]).
//!
//! The child's main thread serves the host: it runs the plugin's `init`, commands, handlers and
//! `shutdown`, and its requests (register, subscribe, publish, enumerate) nest in the host's
//! call, on the conversation's socket, as do its log records. The plugin's own threads (those it
//! starts) send on a second socket, one-way, which a thread of the host reads as messages come
//! ([`super::proxy`]): their log records, the events they publish and their unregistrations
//! reach the host promptly, whatever the main thread does. Such a publish returns once the
//! child's own subscribers received the event and the message is on the socket, before the
//! host's subscribers run (they run on the host's listener, as they would on the plugin's thread
//! in-process); when the host is slow the thread blocks on the socket's buffer, which bounds
//! the memory held. Requests that need the host's answer are served from the main thread only:
//! from another thread, registering, subscribing and enumerating fail with `WRONG_THREAD`.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;

use std::ffi::c_void;

use plugin_api::abi::{
    PhCommandInfo, PhCommandInfoCallback, PhPluginInfo, PhPluginInfoCallback, PhResult, PhStr,
};

use super::spin::Spin;
use super::wire::{self, decode_down, Down, FrameReader, Up, CHUNK};
use crate::observer::Observer;
use crate::registry::Shared;
use crate::{Config, PluginHost};

/// A request of the host, copied out of the reader's buffer before it is served (serving it may
/// read more frames).
enum Request {
    Init(String),
    Bye,
    Call(String, Vec<String>),
    Deliver(u64, String, Vec<u8>),
    Answer(u32),
    Plugins(Vec<([String; 4], (u16, u16))>),
    Commands(u32, Vec<(String, String, String)>),
    Shutdown,
}

/// Why the child stops serving.
enum Stop {
    /// The host asked for `shutdown`.
    Shutdown,
    /// The host closed its end, or broke the protocol: exit now.
    Gone,
}

/// The child's end of the socket and what serving the host needs.
pub(crate) struct ChildLink {
    writer: Mutex<(UnixStream, Vec<u8>)>,
    /// The socket of the plugin's own threads, one-way to the host.
    threads: Mutex<(UnixStream, Vec<u8>)>,
    /// The socket's reading end, its frames, and whether a wait for the host spins before it
    /// blocks ([`super::spin`]).
    reader: Mutex<(UnixStream, FrameReader, Spin)>,
    /// The thread that serves the host.
    main: ThreadId,
    shared: OnceLock<Arc<Shared>>,
    /// The host core, once the plugin's `init` returned (commands are served from then on).
    host: AtomicPtr<PluginHost>,
}

impl ChildLink {
    /// Sends a message that needs no answer. A failure means the host is gone: exit.
    fn send(&self, message: &Up<'_>) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let (stream, scratch) = &mut *writer;
        if wire::send(stream, scratch, message).is_err() {
            std::process::exit(0);
        }
    }

    /// Sends a message that needs no answer on the socket of the calling thread: the
    /// conversation's for the main thread, the threads' socket for the others. A failure means
    /// the host is gone: exit.
    fn send_from_any(&self, message: &Up<'_>) {
        if self.on_main_thread() {
            return self.send(message);
        }
        let mut writer = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let (stream, scratch) = &mut *writer;
        if wire::send(stream, scratch, message).is_err() {
            // Not `exit`, whose handlers would run while the main thread may still be running
            // the plugin's code: nothing of the child is worth keeping once the host is gone.
            // SAFETY: `_exit` ends the process at once; it touches no Rust state.
            unsafe { libc::_exit(0) };
        }
    }

    /// Sends a chunk of output.
    fn send_output(&self, bytes: &[u8]) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let (stream, scratch) = &mut *writer;
        wire::encode_output(bytes, scratch);
        if stream.write_all(scratch).is_err() {
            std::process::exit(0);
        }
    }

    /// Reads the host's next request. Called right after the child sent a message or served a
    /// request, when the host's next one is likely to come soon: the wait spins briefly before
    /// it blocks ([`super::spin`]), so a child that idles between calls ends up blocked.
    fn receive(&self) -> Result<Request, Stop> {
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let (stream, frames, spin) = &mut *reader;
        let frame = frames
            .next(&mut spin.reader(stream))
            .map_err(|_| Stop::Gone)?;
        Ok(match decode_down(frame).map_err(|_| Stop::Gone)? {
            Down::Init { config } => Request::Init(config.to_owned()),
            Down::Bye => Request::Bye,
            Down::Call { command, args } => Request::Call(
                command.to_owned(),
                args.into_iter().map(str::to_owned).collect(),
            ),
            Down::Deliver {
                handle,
                topic,
                payload,
            } => Request::Deliver(handle, topic.to_owned(), payload.to_owned()),
            Down::Answer { code } => Request::Answer(code),
            Down::Shutdown => Request::Shutdown,
            Down::Plugins { plugins } => Request::Plugins(
                plugins
                    .into_iter()
                    .map(|p| {
                        (
                            [p.name, p.version, p.description, p.path].map(str::to_owned),
                            p.abi,
                        )
                    })
                    .collect(),
            ),
            Down::Commands { code, commands } => Request::Commands(
                code,
                commands
                    .into_iter()
                    .map(|(n, d, u)| (n.to_owned(), d.to_owned(), u.to_owned()))
                    .collect(),
            ),
        })
    }

    /// Sends a request and serves the host until its answer. Only on the main thread.
    fn request(&self, message: &Up<'_>) -> Request {
        self.send(message);
        match self.serve(true) {
            Ok(answer) => answer,
            Err(Stop::Gone | Stop::Shutdown) => std::process::exit(0),
        }
    }

    /// A request answered with a code (a protocol error, any other answer: exit).
    fn request_code(&self, message: &Up<'_>) -> u32 {
        match self.request(message) {
            Request::Answer(code) => code,
            _ => std::process::exit(1),
        }
    }

    /// Serves the host's requests: until an answer (`until_answer`, returned), or until a
    /// shutdown or the host's end.
    fn serve(&self, until_answer: bool) -> Result<Request, Stop> {
        loop {
            match self.receive()? {
                answer @ (Request::Answer(_) | Request::Plugins(_) | Request::Commands(..))
                    if until_answer =>
                {
                    return Ok(answer)
                }
                Request::Call(command, args) => {
                    let host = self.host.load(Ordering::Acquire);
                    let (code, message) = if host.is_null() {
                        (
                            PhResult::ShutDown.code(),
                            Some("not initialised".to_owned()),
                        )
                    } else {
                        // SAFETY: the host core lives in `run`'s frame until the process ends,
                        // and is only borrowed shared while it serves.
                        let host = unsafe { &*host };
                        let mut out = ChunkWriter { link: self };
                        match host.run_command(&command, &args, &mut out) {
                            Ok(()) => (PhResult::Ok.code(), None),
                            Err(crate::CommandError::Failed { code, message, .. }) => {
                                (code.code(), Some(message))
                            }
                            Err(crate::CommandError::Panicked { .. }) => {
                                (PhResult::Panicked.code(), None)
                            }
                            Err(e) => (PhResult::Error.code(), Some(e.to_string())),
                        }
                    };
                    self.send(&Up::Done {
                        code,
                        message: message.as_deref(),
                    });
                }
                Request::Deliver(handle, topic, payload) => {
                    let code = match self.shared.get() {
                        Some(shared) => shared.deliver_one(handle, &topic, &payload),
                        None => PhResult::ShutDown.code(),
                    };
                    self.send(&Up::Done {
                        code,
                        message: None,
                    });
                }
                Request::Shutdown => return Err(Stop::Shutdown),
                Request::Answer(_)
                | Request::Plugins(_)
                | Request::Commands(..)
                | Request::Init(_)
                | Request::Bye => return Err(Stop::Gone),
            }
        }
    }

    fn on_main_thread(&self) -> bool {
        std::thread::current().id() == self.main
    }

    /// The plugin registered a command or subscribed (a hook of the registry): the host
    /// registers the same for the proxy. An error is the host's answer (the name is taken there,
    /// say); the registry then undoes the registration.
    pub(crate) fn registered(&self, entry: Registered<'_>) -> Result<(), PhResult> {
        if !self.on_main_thread() {
            return Err(PhResult::WrongThread);
        }
        let message = match entry {
            Registered::Command {
                handle,
                name,
                description,
                usage,
            } => Up::Register {
                handle,
                name,
                description,
                usage,
            },
            Registered::Subscription { handle, topic } => Up::Subscribe { handle, topic },
        };
        match self.request_code(&message) {
            0 => Ok(()),
            code => Err(PhResult::from_code(code)),
        }
    }

    /// The plugin enumerates the plugins (the host service `enumerate_plugins`): the host's,
    /// the isolated plugin among them, each given to `callback` until it returns `false`.
    pub(crate) fn enumerate_plugins(
        &self,
        callback: PhPluginInfoCallback,
        user_data: *mut c_void,
    ) -> Result<(), PhResult> {
        if !self.on_main_thread() {
            return Err(PhResult::WrongThread);
        }
        let Request::Plugins(plugins) = self.request(&Up::EnumeratePlugins) else {
            std::process::exit(1);
        };
        for ([name, version, description, path], (abi_major, abi_minor)) in &plugins {
            let info = PhPluginInfo {
                struct_size: std::mem::size_of::<PhPluginInfo>() as u32,
                abi_major: *abi_major,
                abi_minor: *abi_minor,
                name: PhStr::new(name),
                version: PhStr::new(version),
                description: PhStr::new(description),
                path: PhStr::new(path),
            };
            // SAFETY: the plugin's callback with its user data; `info` and its strings outlive
            // the call.
            if !unsafe { (callback.0)(user_data, &info) } {
                break;
            }
        }
        Ok(())
    }

    /// The plugin enumerates the commands of the plugin `plugin` (the host service
    /// `enumerate_commands`), from the host's records.
    pub(crate) fn enumerate_commands(
        &self,
        plugin: &str,
        callback: PhCommandInfoCallback,
        user_data: *mut c_void,
    ) -> Result<(), PhResult> {
        if !self.on_main_thread() {
            return Err(PhResult::WrongThread);
        }
        let Request::Commands(code, commands) = self.request(&Up::EnumerateCommands { plugin })
        else {
            std::process::exit(1);
        };
        if code != PhResult::Ok.code() {
            return Err(PhResult::from_code(code));
        }
        for (name, description, usage) in &commands {
            let info = PhCommandInfo {
                struct_size: std::mem::size_of::<PhCommandInfo>() as u32,
                name: PhStr::new(name),
                description: PhStr::new(description),
                usage: PhStr::new(usage),
            };
            // SAFETY: the plugin's callback with its user data; `info` and its strings outlive
            // the call.
            if !unsafe { (callback.0)(user_data, &info) } {
                break;
            }
        }
        Ok(())
    }

    /// The plugin ended a registration (a hook of the registry), on any thread.
    pub(crate) fn unregistered(&self, handle: u64) {
        self.send_from_any(&Up::Unregister { handle });
    }
}

/// A registration, as the registry's hook reports it to [`ChildLink::registered`].
pub(crate) enum Registered<'a> {
    Command {
        handle: u64,
        name: &'a str,
        description: &'a str,
        usage: &'a str,
    },
    Subscription {
        handle: u64,
        topic: &'a str,
    },
}

/// A command's output, sent to the host as it is written (nothing is kept in the child: what a
/// command wrote before its process died has reached the host).
struct ChunkWriter<'a> {
    link: &'a ChildLink,
}

impl Write for ChunkWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        for chunk in bytes.chunks(CHUNK) {
            self.link.send_output(chunk);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The child's observer: log records and published events go to the host.
struct ChildObserver {
    link: Arc<ChildLink>,
    level: log::LevelFilter,
}

/// The most of a log record's message that the child sends to the host, in bytes: a record is
/// text for people, and a plugin that logs megabytes at once (which it may do in-process) should
/// not have each of them copied through the socket. Far below [`super::wire::MAX_FRAME`], with
/// room for the target and the cut's note.
const LOG_MESSAGE_MAX: usize = 960 * 1024;

/// The most of a log record's target that the child sends to the host, in bytes.
const LOG_TARGET_MAX: usize = 1024;

impl Observer for ChildObserver {
    fn max_level(&self) -> log::LevelFilter {
        self.level
    }

    fn log(&self, _plugin: &str, record: &log::Record<'_>) {
        let message = record.args().to_string();
        let target = record.target();
        // A longer record is cut, never refused (which would fault the plugin for what it may
        // do in-process).
        let (kept_message, kept_target) = (
            crate::context::prefix_at_most(&message, LOG_MESSAGE_MAX),
            crate::context::prefix_at_most(target, LOG_TARGET_MAX),
        );
        let cut;
        let message = if kept_message.len() < message.len() {
            cut = format!(
                "{kept_message}... ({} bytes, cut: an isolated plugin's log record is at most {} KiB)",
                message.len(),
                LOG_MESSAGE_MAX / 1024
            );
            &cut
        } else {
            &message
        };
        self.link.send_from_any(&Up::Log {
            level: record.level() as u32,
            target: kept_target,
            message,
        });
    }

    fn published(&self, _plugin: &str, topic: &str, payload: &[u8]) {
        match self.link.on_main_thread() {
            // The host's subscribers first, then the child's (the core's order, as for any
            // observer).
            true => {
                self.link.request_code(&Up::Publish { topic, payload });
            }
            // Without an answer: the host's listener serves it.
            false => self.link.send_from_any(&Up::Publish { topic, payload }),
        }
    }
}

/// If this process was started as an isolated plugin's child (its first argument is the hidden
/// `__isolate-child`), serves the host until it shuts the plugin down or goes away, and returns
/// the exit code; otherwise returns `None` at once. The `plughost` binary calls it first thing
/// in `main`.
#[doc(hidden)]
pub fn child_main_if_requested() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if !matches!(args.next(), Some(a) if a == super::CHILD_ARGUMENT) {
        return None;
    }
    let args: Vec<_> = args.collect();
    let [file, allow_insecure, private_copies, level] = &args[..] else {
        eprintln!("plughost: {}: wrong arguments", super::CHILD_ARGUMENT);
        return Some(ExitCode::from(2));
    };
    let number = |s: &std::ffi::OsString| s.to_str().and_then(|s| s.parse::<u32>().ok());
    let level = match number(level) {
        Some(0) => log::LevelFilter::Off,
        Some(1) => log::LevelFilter::Error,
        Some(2) => log::LevelFilter::Warn,
        Some(3) => log::LevelFilter::Info,
        Some(4) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    Some(run(
        PathBuf::from(file),
        number(allow_insecure) == Some(1),
        number(private_copies) == Some(1),
        level,
    ))
}

fn run(
    file: PathBuf,
    allow_insecure: bool,
    private_copies: bool,
    level: log::LevelFilter,
) -> ExitCode {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .try_init();
    // SAFETY: the host put the child's ends of the socket pairs on these descriptors for this
    // process, which owns them from now on; nothing else in the process uses them.
    let (stream, threads) = unsafe {
        (
            UnixStream::from_raw_fd(super::CHILD_FD),
            UnixStream::from_raw_fd(super::CHILD_EVENTS_FD),
        )
    };
    // Not inherited by the programs the plugin runs: the host sees the end of the child's
    // sockets when the child ends.
    for socket in [&stream, &threads] {
        if rustix::io::fcntl_setfd(socket, rustix::io::FdFlags::CLOEXEC).is_err() {
            return ExitCode::FAILURE;
        }
    }
    let Ok(reading) = stream.try_clone() else {
        return ExitCode::FAILURE;
    };
    let link = Arc::new(ChildLink {
        writer: Mutex::new((stream, Vec::new())),
        threads: Mutex::new((threads, Vec::new())),
        reader: Mutex::new((reading, FrameReader::from_host(), Spin::default())),
        main: std::thread::current().id(),
        shared: OnceLock::new(),
        host: AtomicPtr::new(std::ptr::null_mut()),
    });
    let mut host = PluginHost::with_observer(Arc::new(ChildObserver {
        link: Arc::clone(&link),
        level,
    }));
    host.set_allow_insecure(allow_insecure);
    let _ = link.shared.set(Arc::clone(&host.shared));
    let _ = host.shared.child.set(Arc::clone(&link));
    let opened = if private_copies {
        crate::copy::open_copy(&file, allow_insecure, &mut Default::default())
            .map(|(candidate, copy)| (candidate, Some(copy)))
    } else {
        crate::loader::open(&file, allow_insecure, &mut Default::default())
            .map(|candidate| (candidate, None))
    };
    let (candidate, copy) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            link.send(&Up::Refused {
                message: &e.kind.to_string(),
            });
            return ExitCode::SUCCESS;
        }
    };
    if let Some(copy) = copy {
        host.copies
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .push(copy);
    }
    let info = &candidate.info;
    let interfaces: Vec<(String, bool, bool)> = info
        .provides
        .iter()
        .map(|i| (format!("{} {}.{}", i.id, i.major, i.minor), true, false))
        .chain(info.requires.iter().map(|i| {
            (
                format!("{} {}.{}", i.id, i.major, i.minor),
                false,
                i.optional,
            )
        }))
        .collect();
    link.send(&Up::Hello {
        interfaces: interfaces
            .iter()
            .map(|(id, provided, optional)| (id.as_str(), *provided, *optional))
            .collect(),
        name: &info.name,
        version: &info.version,
        description: &info.description,
        abi: info.abi_version,
        layout_checked: candidate.layout == crate::LayoutCheck::Passed,
    });
    let config = match link.receive() {
        Ok(Request::Init(config)) => config,
        _ => return ExitCode::SUCCESS,
    };
    match Config::from_toml(&config) {
        Ok(config) => host.set_config(config),
        Err(e) => {
            link.send(&Up::Done {
                code: PhResult::InvalidArgument.code(),
                message: Some(&e.to_string()),
            });
            return ExitCode::SUCCESS;
        }
    }
    if let Err(e) = host.start(&file, candidate) {
        // An `init` that failed: its code and the plugin's reason, which the host shows as it
        // shows an in-process plugin's (`init failed: CODE: REASON`); any other refusal: its
        // line.
        let (code, message) = match &e.kind {
            crate::LoadErrorKind::Init { code, message } => (*code, message.clone()),
            kind => (PhResult::Error, Some(kind.to_string())),
        };
        link.send(&Up::Done {
            code: code.code(),
            message: message.as_deref(),
        });
        return ExitCode::SUCCESS;
    }
    link.host.store(&mut host, Ordering::Release);
    link.send(&Up::Done {
        code: PhResult::Ok.code(),
        message: None,
    });
    let stop = link.serve(false);
    link.host.store(std::ptr::null_mut(), Ordering::Release);
    match stop {
        Err(Stop::Shutdown) => {
            host.shutdown();
            link.send(&Up::Done {
                code: PhResult::Ok.code(),
                message: None,
            });
            ExitCode::SUCCESS
        }
        _ => ExitCode::SUCCESS,
    }
}
