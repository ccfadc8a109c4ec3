//! The host's side of an isolated plugin: [`Link`], the conversation with its child process, and
//! the proxy plugin whose `init`, commands, subscriptions and `shutdown` forward to the child.
//!
//! The proxy is a plugin of the ABI, with a descriptor built from what the child found in the
//! library ([`descriptor`]), so the host core serves it as any plugin: it registers, publishes
//! and logs through the host services, with its own host context.
//!
//! The host reads the conversation's socket only while one of its threads is in a call into the
//! child ([`Link::call`]). What the plugin's own threads send (events they publish, log records,
//! unregistrations) comes on a second socket, one-way, which a thread of the host, the child's
//! *listener* (named `events-PID`), reads as it comes: it serves each message through the host
//! services with the proxy's context, as the plugin's own thread would in-process (so the
//! handlers of such an event run on the listener, and may call into the plugin). The listener
//! ends when the child's end closes (its exit, or its kill); the proxy's `shutdown` waits for
//! it, so that what the plugin's threads sent before the child exited is served first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use plugin_api::abi::{
    PhBytes, PhCommandCallback, PhCommandInfo, PhCommandInfoCallback, PhCommandOutput,
    PhDestroyCallback, PhEventCallback, PhHandle, PhHostContext, PhHostServices, PhInitFn,
    PhPluginDescriptor, PhPluginInfo, PhPluginInfoCallback, PhPluginVtable, PhResult, PhResultCode,
    PhShutdownFn, PhStr, PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR,
};

use super::spin::Spin;
use super::wire::{self, decode_up, Down, FrameReader, Up, WireError};
use super::{Process, Sockets};
use crate::boundary::guard;
use crate::context::PluginContext;
use crate::services::HOST_SERVICES;

/// The call under way in the child, for the fault's message: `init`, ``command `NAME` ``...
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase<'a> {
    Opening,
    Init,
    Command(&'a str),
    Event(&'a str),
    Shutdown,
    /// A message on the socket of the plugin's own threads.
    Thread,
    /// Between calls: the child ended while the host asked nothing of it.
    Idle,
}

impl std::fmt::Display for Phase<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Opening => f.write_str("while opening the library"),
            Phase::Init => f.write_str("in init"),
            Phase::Command(name) => write!(f, "in command `{name}`"),
            Phase::Event(topic) => write!(f, "in its handler of event `{topic}`"),
            Phase::Shutdown => f.write_str("in shutdown"),
            Phase::Thread => f.write_str("from a thread of its own"),
            Phase::Idle => f.write_str("while idle"),
        }
    }
}

/// The socket and its buffers; locked for one read or write at a time.
struct Io {
    stream: UnixStream,
    reader: FrameReader,
    scratch: Vec<u8>,
    /// Whether a wait for the child spins before it blocks ([`super::spin`]).
    spin: Spin,
}

impl Io {
    fn new(stream: UnixStream) -> Io {
        Io {
            stream,
            reader: FrameReader::new(),
            scratch: Vec::new(),
            spin: Spin::default(),
        }
    }
}

/// Which thread converses with the child: one at a time, and that one again for nested calls
/// (a request from the child served by the host calling back into the plugin).
#[derive(Default)]
struct Turn {
    state: Mutex<TurnState>,
    free: Condvar,
}

#[derive(Default)]
struct TurnState {
    /// The thread that holds the turn, and how many times it entered it.
    owner: Option<ThreadId>,
    depth: usize,
    /// The threads waiting for the turn: the turn's end wakes one only if there is one (a wake-up
    /// is a system call, which the call path of a lone caller does without).
    waiting: usize,
}

struct TurnGuard<'a>(&'a Turn);

impl Turn {
    fn lock(&self) -> std::sync::MutexGuard<'_, TurnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this thread holds the turn.
    fn is_mine(&self) -> bool {
        self.lock().owner == Some(std::thread::current().id())
    }

    /// Whether any thread holds the turn: a call is under way.
    fn is_held(&self) -> bool {
        self.lock().owner.is_some()
    }

    fn enter(&self) -> TurnGuard<'_> {
        let me = std::thread::current().id();
        let mut state = self.lock();
        while state.owner.is_some_and(|t| t != me) {
            state.waiting += 1;
            state = self.free.wait(state).unwrap_or_else(|e| e.into_inner());
            state.waiting -= 1;
        }
        state.owner = Some(me);
        state.depth += 1;
        TurnGuard(self)
    }
}

impl Drop for TurnGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.depth -= 1;
        if state.depth == 0 {
            state.owner = None;
            if state.waiting > 0 {
                self.0.free.notify_one();
            }
        }
    }
}

/// A read of the conversation that fails with `TimedOut` once the call's deadline passed. The
/// socket's read timeout bounds each read; this bounds a frame whose bytes trickle in, each
/// within that timeout (without it, a child could hold a call for as long as it takes to send a
/// frame of [`wire::MAX_FRAME`] bytes, one a timeout). The first read of a frame needs no clock:
/// the socket's timeout bounds it, and the call checks its deadline after each frame.
struct Bounded<R> {
    inner: R,
    deadline: Option<Instant>,
    /// The reads made so far for this frame.
    reads: u32,
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.reads > 0 && self.deadline.is_some_and(|d| Instant::now() > d) {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.reads = self.reads.saturating_add(1);
        self.inner.read(buffer)
    }
}

/// One isolated plugin: its child process and the conversation with it.
pub(crate) struct Link {
    /// The plugin's name.
    pub(crate) name: String,
    /// The child process; replaced when the plugin is restarted.
    process: Mutex<Arc<Process>>,
    /// How to start the child again, and whether to ([`super::Restart`]).
    respawn: super::Respawn,
    /// The crashes since the last call that succeeded, and when the last one was.
    crashes: Mutex<(u32, Option<Instant>)>,
    io: Mutex<Io>,
    turn: Turn,
    /// Set while the turn's thread hands output or a log record to the application, which the
    /// child sent without waiting: a call into the plugin from there cannot be served in order.
    delivering: std::sync::atomic::AtomicBool,
    timeout: Option<Duration>,
    /// Why the link failed, once it did; every later call fails at once.
    fault: Mutex<Option<String>>,
    /// Set once the host told the child to exit (`Shutdown`, `Bye`): its end is expected.
    closing: std::sync::atomic::AtomicBool,
    /// Set once a restart's `init` failed: the old child's registrations ended and the new one
    /// made none (or not all), so no later call may come to restart it; the plugin is faulted
    /// as under [`super::Restart::Never`].
    gave_up: std::sync::atomic::AtomicBool,
    /// The proxy's host context, from its `init` on.
    ctx: AtomicPtr<PhHostContext>,
    /// The child's registration handles and the proxy's, for unregister.
    handles: Mutex<HashMap<u64, PhHandle>>,
    /// The plugin's configuration, as TOML text, for its `init`.
    pub(crate) config: Mutex<String>,
    /// The socket of the plugin's own threads, then the thread that reads it.
    events: Mutex<Events>,
}

/// The host's end of the socket of the plugin's own threads: waiting for [`Link::listen`], or
/// read by the child's listener.
enum Events {
    Pending(UnixStream),
    Listening(Listener),
    Ended,
}

/// The thread that reads the socket of a child's own threads.
struct Listener {
    thread: JoinHandle<()>,
    /// A second handle of the socket, to end the listener's read if the child's end stays open
    /// (a process the plugin forked keeps it).
    stream: UnixStream,
    ended: Arc<Ended>,
}

/// Set by a listener when it ends.
#[derive(Default)]
struct Ended {
    ended: Mutex<bool>,
    changed: Condvar,
    /// The messages it served so far: while this grows, it is still at work on what the
    /// plugin's threads sent.
    served: std::sync::atomic::AtomicU64,
}

impl Ended {
    fn set(&self) {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Whether it is set, waiting up to `wait` for it.
    fn wait(&self, wait: Duration) -> bool {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        let (ended, _) = self
            .changed
            .wait_timeout_while(ended, wait, |ended| !*ended)
            .unwrap_or_else(|e| e.into_inner());
        *ended
    }
}

/// Ends a listener's thread when it returns, even by a panic: its end is set.
struct SetOnDrop(Arc<Ended>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// A request of the child, copied out of the reader's buffer before it is served (serving it
/// may read more frames).
enum Request {
    Register {
        handle: u64,
        name: String,
        description: String,
        usage: String,
    },
    Subscribe {
        handle: u64,
        topic: String,
    },
    Unregister {
        handle: u64,
    },
    Publish {
        topic: String,
        payload: Vec<u8>,
    },
    EnumeratePlugins,
    EnumerateCommands {
        plugin: String,
    },
}

/// The host's answer to a request of the child.
enum Reply {
    Code(u32),
    Plugins(Vec<[String; 4]>, Vec<(u16, u16)>),
    Commands(u32, Vec<(String, String, String)>),
}

/// Why a child gave no descriptor.
pub(crate) enum HelloError {
    /// Its checks refused the library (the message is the reason, without the file).
    Refused(String),
    /// It died, timed out or broke the protocol while opening the library; the link failed.
    Failed(String),
}

impl HelloError {
    fn reason(self) -> String {
        match self {
            HelloError::Refused(reason) | HelloError::Failed(reason) => reason,
        }
    }
}

/// What the child said of the library: its descriptor's fields.
pub(crate) struct Hello {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) abi: (u16, u16),
    pub(crate) layout_checked: bool,
    /// The interfaces it declares, as (`id major.minor`, provided, optional).
    pub(crate) interfaces: Vec<(String, bool, bool)>,
}

thread_local! {
    /// The link whose proxy `init` is about to run on this thread ([`PluginHost::start`] calls
    /// it on the loading thread).
    pub(crate) static PENDING: RefCell<Option<Arc<Link>>> = const { RefCell::new(None) };
    /// The events this thread publishes for a child, as (link, topic address, payload
    /// address): the proxy's own subscriptions skip them, as the child delivered them to its
    /// plugin already. An event is known by the addresses of its topic and payload, which the host hands to
    /// each subscriber as the publisher gave them: a handler that publishes the payload it got
    /// under another topic (a relay) publishes another event, which the plugin receives.
    static ECHO: RefCell<Vec<(usize, usize, usize)>> = const { RefCell::new(Vec::new()) };
}

impl Drop for Link {
    /// The host lets go of the child: a child still running (one the host did not end) sees the
    /// end of its socket and exits.
    fn drop(&mut self) {
        self.process
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .release_ends();
    }
}

impl Link {
    /// A link to the child `process` over its `sockets`; its listener starts with
    /// [`Link::listen`].
    pub(crate) fn new(
        name: String,
        process: Arc<Process>,
        sockets: Sockets,
        timeout: Option<Duration>,
        respawn: super::Respawn,
    ) -> std::io::Result<Link> {
        let Sockets {
            calls: stream,
            events,
        } = sockets;
        stream.set_read_timeout(timeout)?;
        Ok(Link {
            name,
            process: Mutex::new(process),
            respawn,
            crashes: Mutex::new((0, None)),
            io: Mutex::new(Io::new(stream)),
            turn: Turn::default(),
            delivering: std::sync::atomic::AtomicBool::new(false),
            timeout,
            fault: Mutex::new(None),
            closing: std::sync::atomic::AtomicBool::new(false),
            gave_up: std::sync::atomic::AtomicBool::new(false),
            ctx: AtomicPtr::new(std::ptr::null_mut()),
            handles: Mutex::new(HashMap::new()),
            config: Mutex::new(String::new()),
            events: Mutex::new(Events::Pending(events)),
        })
    }

    /// Starts the listener of the child's own threads' socket (see the module docs).
    pub(crate) fn listen(self: &Arc<Link>) -> std::io::Result<()> {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        let Events::Pending(stream) = std::mem::replace(&mut *events, Events::Ended) else {
            return Ok(());
        };
        *events = Events::Listening(self.start_listener(self.process(), stream)?);
        Ok(())
    }

    /// Starts a listener that reads `stream`, the socket of the threads of the child `process`.
    fn start_listener(
        self: &Arc<Link>,
        process: Arc<Process>,
        stream: UnixStream,
    ) -> std::io::Result<Listener> {
        let ended = Arc::new(Ended::default());
        let reading = stream.try_clone()?;
        let link = Arc::downgrade(self);
        let set = SetOnDrop(Arc::clone(&ended));
        let thread = std::thread::Builder::new()
            .name(format!("events-{}", process.pid))
            .spawn(move || {
                let counted = Arc::clone(&set.0);
                let _set = set;
                listen(&link, &process, reading, &counted.served);
            })?;
        Ok(Listener {
            thread,
            stream,
            ended,
        })
    }

    /// Waits for the listener to end (the child exited, or was killed): it served what the
    /// plugin's threads sent before. Bounded: if the listener served nothing for 5 s and has not
    /// ended (the child's end stays open: a process the plugin forked keeps it), the socket is
    /// shut down. Not from the listener itself.
    fn end_listener(&self) {
        let listener = {
            let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
            match std::mem::replace(&mut *events, Events::Ended) {
                Events::Listening(listener)
                    if listener.thread.thread().id() != std::thread::current().id() =>
                {
                    listener
                }
                other => {
                    *events = other;
                    return;
                }
            }
        };
        // A backlog of messages is served to the end, however long it takes, as long as the
        // listener makes progress.
        let mut served = listener.ended.served.load(Ordering::Relaxed);
        while !listener.ended.wait(Duration::from_secs(5)) {
            let now = listener.ended.served.load(Ordering::Relaxed);
            if now != served {
                served = now;
                continue;
            }
            log::warn!(
                "plugin `{}`: the socket of its threads is still open after its child process ended; closing it",
                self.name
            );
            let _ = listener.stream.shutdown(std::net::Shutdown::Both);
            if !listener.ended.wait(Duration::from_secs(5)) {
                // Its thread is still serving a message (a handler that does not return): it
                // ends by itself when that returns, dropping its reference to the link then.
                return;
            }
            break;
        }
        let _ = listener.thread.join();
    }

    /// The child process (the current one, after restarts).
    pub(crate) fn process(&self) -> Arc<Process> {
        Arc::clone(&self.process.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether a crash restarts the plugin rather than faulting it.
    fn restarts(&self) -> bool {
        self.respawn.restart == super::Restart::OnCrash && !self.gave_up.load(Ordering::Acquire)
    }

    /// Records a crash of the plugin (under the restart policy `on-crash`): once per failure
    /// of the link, by [`Link::fail_first`], whichever thread noticed it.
    fn record_crash(&self) {
        let mut crashes = self.crashes.lock().unwrap_or_else(|e| e.into_inner());
        crashes.0 += 1;
        crashes.1 = Some(Instant::now());
    }

    /// The crashes in a row (under `on-crash`), and the delay before the next start.
    fn crashed(&self) -> (u32, Duration) {
        let count = self.crashes.lock().unwrap_or_else(|e| e.into_inner()).0;
        (count, super::restart_delay(count))
    }

    /// Starts the plugin again in a new child process, if its restart delay has passed: the
    /// proxy's registrations end, and the new child's `init` makes them again. Called with the
    /// turn held, after the link failed.
    fn restart(self: &Arc<Link>, failed: &str) -> Result<(), String> {
        let (count, last) = *self.crashes.lock().unwrap_or_else(|e| e.into_inner());
        let delay = super::restart_delay(count);
        let waited = last.map_or(delay, |at| at.elapsed());
        if waited < delay {
            return Err(format!(
                "{failed}; it restarts in {:.1} s",
                (delay - waited).as_secs_f64()
            ));
        }
        let (process, sockets) = Process::spawn(
            &self.respawn.program,
            &self.respawn.file,
            &self.respawn.options,
        )
        .map_err(|e| format!("{failed}; restarting it failed: {e}"))?;
        let restarting = |e: std::io::Error| {
            process.kill();
            format!("{failed}; restarting it failed: {e}")
        };
        sockets
            .calls
            .set_read_timeout(self.timeout)
            .map_err(restarting)?;
        let listener = self
            .start_listener(Arc::clone(&process), sockets.events)
            .map_err(restarting)?;
        let old = std::mem::replace(
            &mut *self.events.lock().unwrap_or_else(|e| e.into_inner()),
            Events::Listening(listener),
        );
        // The old child is dead: its listener ends at the end of its socket, which this ends
        // even if a process the plugin forked still holds the child's end.
        if let Events::Listening(old) = old {
            let _ = old.stream.shutdown(std::net::Shutdown::Both);
        }
        *self.process.lock().unwrap_or_else(|e| e.into_inner()) = Arc::clone(&process);
        *self.io.lock().unwrap_or_else(|e| e.into_inner()) = Io::new(sockets.calls);
        *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = None;
        match self.hello() {
            Ok(hello) if hello.name == self.name => {}
            Ok(hello) => {
                process.kill();
                let reason = format!(
                    "its file now holds plugin `{}`, not `{}`",
                    hello.name, self.name
                );
                *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
                self.record_crash();
                return Err(reason);
            }
            Err(error) => return Err(error.reason()),
        }
        // The old child's registrations end; the new one registers its own during `init`.
        let ctx = self.ctx.load(Ordering::Acquire);
        let handles: Vec<PhHandle> = self.handles_map().drain().map(|(_, h)| h).collect();
        for handle in handles {
            // SAFETY: the proxy's context and one of its handles.
            unsafe { (HOST_SERVICES.unregister)(ctx, handle) };
        }
        let config = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let initialised = self.call(&Down::Init { config: &config }, Phase::Init, None);
        if !matches!(initialised, Ok((0, _))) {
            // Its registrations are gone: the caller faults the plugin for good.
            self.gave_up.store(true, Ordering::Release);
        }
        match initialised {
            Ok((0, _)) => {
                log::info!(
                    "plugin `{}` restarted after {count} crash{} in a row: its child process is pid {}",
                    self.name,
                    if count == 1 { "" } else { "es" },
                    process.pid
                );
                Ok(())
            }
            Ok((code, message)) => {
                process.kill();
                let code = PhResult::from_code(code);
                let reason = match message {
                    // Whatever the child wrote, one line of at most 1 KiB.
                    Some(message) => format!(
                        "its init failed after a restart: {code}: {}",
                        crate::context::one_line(&message, crate::context::INIT_ERROR_MAX)
                    ),
                    None => format!("its init failed after a restart: {code}"),
                };
                *self.fault.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
                self.record_crash();
                Err(reason)
            }
            Err(reason) => Err(reason),
        }
    }

    pub(crate) fn context_ptr(&self) -> *const c_void {
        self.ctx.load(Ordering::Acquire).cast_const().cast()
    }

    /// Why the link failed, if it did.
    pub(crate) fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The child's first message: the library's descriptor, or why it refused the library.
    pub(crate) fn hello(&self) -> Result<Hello, HelloError> {
        let _turn = self.turn.enter();
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let Io { stream, reader, .. } = &mut *io;
        // Bounded as a call is: the library's constructors run in the child before its hello
        // and may write on the socket.
        let mut bounded = Bounded {
            inner: &*stream,
            deadline: self.timeout.and_then(|t| Instant::now().checked_add(t)),
            reads: 0,
        };
        let message = reader.next(&mut bounded).and_then(|frame| {
            Ok(match decode_up(frame)? {
                Up::Hello {
                    name,
                    version,
                    description,
                    abi,
                    layout_checked,
                    interfaces,
                } => Ok(Hello {
                    layout_checked,
                    interfaces: interfaces
                        .into_iter()
                        .map(|(id, provided, optional)| (id.to_owned(), provided, optional))
                        .collect(),
                    name: name.to_owned(),
                    version: version.to_owned(),
                    description: description.to_owned(),
                    abi,
                }),
                Up::Refused { message } => Err(Some(message.to_owned())),
                _ => Err(None),
            })
        });
        drop(io);
        match message {
            Ok(Ok(hello)) => Ok(hello),
            Ok(Err(Some(message))) => Err(HelloError::Refused(message)),
            Ok(Err(None)) => Err(HelloError::Failed(self.fail(
                Phase::Opening,
                WireError::Malformed(postcard::Error::DeserializeBadEncoding),
            ))),
            Err(e) => Err(HelloError::Failed(self.fail(Phase::Opening, e))),
        }
    }

    /// Marks the child's end as the host's doing (a shutdown, a build given up): the listener
    /// does not fault the plugin when it sees it.
    pub(crate) fn closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Whether the host told the child to exit (a shutdown, a build given up) and it is reaped:
    /// nothing more comes of this link.
    pub(crate) fn ended(&self) -> bool {
        self.closing.load(Ordering::Acquire) && self.process().status(Duration::ZERO).is_some()
    }

    /// Tells a child that found a plugin the host does not isolate to exit.
    pub(crate) fn bye(&self) {
        self.closing();
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let Io {
            stream, scratch, ..
        } = &mut *io;
        if wire::send(stream, scratch, &Down::Bye).is_err() {
            self.process().kill();
        }
    }

    /// Records why the link failed (the first cause only), kills the child and waits for its
    /// status; returns the one-line reason.
    fn fail(&self, phase: Phase<'_>, error: WireError) -> String {
        self.fail_first(phase, error).0
    }

    /// [`Link::fail`], and whether this was the link's first failure. Under `on-crash` a first
    /// failure counts as a crash.
    fn fail_first(&self, phase: Phase<'_>, error: WireError) -> (String, bool) {
        self.fail_first_of(None, phase, error)
            .unwrap_or_else(|| (String::new(), false))
    }

    /// [`Link::fail_first`] for a failure of the child `expected`, if it is given: if the
    /// plugin has another child by now (a restart), `expected` is killed and `None` returned,
    /// the link untouched. Checked under the lock of the fault, which a restart clears only
    /// after it replaced the child.
    fn fail_first_of(
        &self,
        expected: Option<&Arc<Process>>,
        phase: Phase<'_>,
        error: WireError,
    ) -> Option<(String, bool)> {
        let mut fault = self.fault.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reason) = &*fault {
            return Some((reason.clone(), false));
        }
        let process = self.process();
        if let Some(expected) = expected {
            if !Arc::ptr_eq(&process, expected) {
                expected.kill();
                return None;
            }
        }
        process.kill();
        // Killed (or dead already): wait until the reaper thread reaped it, so that no zombie
        // is left once the call returns.
        let status = process.status(Duration::from_secs(10));
        let pid = process.pid;
        let reason = match error {
            WireError::TimedOut => format!(
                "timed out {phase} after {} s (--call-timeout); its child process (pid {pid}) was killed",
                self.timeout.map_or(0.0, |t| t.as_secs_f64())
            ),
            WireError::Closed | WireError::Io(_) => {
                format!(
                    "its child process (pid {pid}) {} {phase}",
                    super::describe_exit(status)
                )
            }
            error => format!("its child process (pid {pid}) sent {error} {phase}; it was killed"),
        };
        *fault = Some(reason.clone());
        if self.restarts() {
            self.record_crash();
        }
        Some((reason, true))
    }

    /// Sends `request` to the child and serves it until its answer, [`Up::Done`]: its code and
    /// message. Output goes to `output` (a command's). Fails, with the reason, if the child
    /// died, broke the protocol or timed out: the link is then failed for good.
    ///
    /// Each wait for the child's next message spins briefly before it blocks
    /// ([`super::spin`]); the blocking read then has the call timeout, so a call that hangs
    /// still times out (at most [`super::spin::SPIN_WINDOW`] later).
    pub(crate) fn call(
        self: &Arc<Link>,
        request: &Down<'_>,
        phase: Phase<'_>,
        output: Option<&PhCommandOutput>,
    ) -> Result<(u32, Option<String>), String> {
        let _turn = self.turn.enter();
        if let Some(reason) = self.fault() {
            let down = matches!(phase, Phase::Command(_) | Phase::Event(_));
            if !(down && self.restarts()) {
                return Err(reason);
            }
            self.restart(&format!("it crashed ({reason})"))?;
        }
        // A timeout too long to count from now (`Duration::MAX`) is no limit.
        let mut deadline = self.timeout.and_then(|t| Instant::now().checked_add(t));
        // A chunk of output, copied out of the reader's buffer.
        let mut chunk = Vec::new();
        {
            let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
            let Io {
                stream, scratch, ..
            } = &mut *io;
            if let Err(e) = wire::send(stream, scratch, request) {
                drop(io);
                return Err(self.fail(phase, WireError::Io(e)));
            }
        }
        loop {
            let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
            let Io {
                stream,
                reader,
                spin,
                ..
            } = &mut *io;
            // Right after a message went to the child or came from it: the next one is likely
            // to come soon, so the wait spins briefly before it blocks ([`super::spin`]).
            let mut bounded = Bounded {
                inner: spin.reader(stream),
                deadline,
                reads: 0,
            };
            let message = match reader.next(&mut bounded).and_then(decode_up) {
                Ok(message) => message,
                Err(e) => {
                    drop(io);
                    return Err(self.fail(phase, e));
                }
            };
            if deadline.is_some_and(|d| Instant::now() > d) {
                drop(io);
                return Err(self.fail(phase, WireError::TimedOut));
            }
            let request = match message {
                // Output and log records go to the application's writer and observer, which may
                // call back into this plugin (on this thread): copied out, outside the lock.
                Up::Output { bytes } => {
                    let Some(output) = output else { continue };
                    chunk.clear();
                    chunk.extend_from_slice(bytes);
                    drop(io);
                    // An error (the host's output failed) is kept by the host's sink and
                    // reported when the command returns.
                    self.delivering.store(true, Ordering::Relaxed);
                    // SAFETY: `output` is the running command's, valid for its call, on this
                    // thread (the command's).
                    unsafe { (output.write.0)(output.context, PhBytes::new(&chunk)) };
                    self.delivering.store(false, Ordering::Relaxed);
                    continue;
                }
                Up::Log {
                    level,
                    target,
                    message,
                } => {
                    let (target, message) = (target.to_owned(), message.to_owned());
                    drop(io);
                    self.delivering.store(true, Ordering::Relaxed);
                    self.log(level, &target, &message);
                    self.delivering.store(false, Ordering::Relaxed);
                    continue;
                }
                Up::Done { code, message } => {
                    if !matches!(phase, Phase::Init) {
                        *self.crashes.lock().unwrap_or_else(|e| e.into_inner()) = (0, None);
                    }
                    return Ok((code, message.map(str::to_owned)));
                }
                Up::Hello { .. } | Up::Refused { .. } => {
                    drop(io);
                    return Err(self.fail(
                        phase,
                        WireError::Malformed(postcard::Error::DeserializeBadEnum),
                    ));
                }
                Up::Register {
                    handle,
                    name,
                    description,
                    usage,
                } => Request::Register {
                    handle,
                    name: name.to_owned(),
                    description: description.to_owned(),
                    usage: usage.to_owned(),
                },
                Up::Subscribe { handle, topic } => Request::Subscribe {
                    handle,
                    topic: topic.to_owned(),
                },
                Up::Unregister { handle } => Request::Unregister { handle },
                Up::Publish { topic, payload } => Request::Publish {
                    topic: topic.to_owned(),
                    payload: payload.to_owned(),
                },
                Up::EnumeratePlugins => Request::EnumeratePlugins,
                Up::EnumerateCommands { plugin } => Request::EnumerateCommands {
                    plugin: plugin.to_owned(),
                },
            };
            drop(io);
            let started = Instant::now();
            let answer = self.serve(request);
            // The time the host spent serving is not the child's.
            deadline = deadline.and_then(|d| d.checked_add(started.elapsed()));
            if let Some(reply) = answer {
                let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
                let Io {
                    stream, scratch, ..
                } = &mut *io;
                let sent = match &reply {
                    Reply::Code(code) => wire::send(stream, scratch, &Down::Answer { code: *code }),
                    Reply::Plugins(texts, abis) => {
                        let plugins = texts
                            .iter()
                            .zip(abis)
                            .map(
                                |([name, version, description, path], abi)| wire::PluginRow {
                                    name,
                                    version,
                                    description,
                                    path,
                                    abi: *abi,
                                },
                            )
                            .collect();
                        wire::send(stream, scratch, &Down::Plugins { plugins })
                    }
                    Reply::Commands(code, commands) => {
                        let commands = commands
                            .iter()
                            .map(|(n, d, u)| (n.as_str(), d.as_str(), u.as_str()))
                            .collect();
                        wire::send(
                            stream,
                            scratch,
                            &Down::Commands {
                                code: *code,
                                commands,
                            },
                        )
                    }
                };
                if let Err(e) = sent {
                    drop(io);
                    return Err(self.fail(phase, WireError::Io(e)));
                }
            }
        }
    }

    /// Serves a request of the child through the host services, as the proxy plugin; returns
    /// the answer's code, if the request has one.
    fn serve(self: &Arc<Link>, request: Request) -> Option<Reply> {
        let ctx = self.ctx.load(Ordering::Acquire);
        match request {
            Request::Register {
                handle,
                name,
                description,
                usage,
            } => {
                let info = PhCommandInfo {
                    struct_size: std::mem::size_of::<PhCommandInfo>() as u32,
                    name: PhStr::new(&name),
                    description: PhStr::new(&description),
                    usage: PhStr::new(&usage),
                };
                let proxy = Box::into_raw(Box::new(CommandProxy {
                    link: Arc::clone(self),
                    name,
                }));
                let mut out = 0;
                // SAFETY: the proxy's context; `info` is borrowed for the call; the user data is
                // a `CommandProxy` that `destroy_command` frees, once (also on error: the proxy
                // declares the current ABI minor).
                let code = unsafe {
                    (HOST_SERVICES.register_command_with_info)(
                        ctx,
                        &info,
                        Some(PhCommandCallback(proxy_command)),
                        proxy.cast(),
                        Some(PhDestroyCallback(destroy_command)),
                        &mut out,
                    )
                };
                if code == PhResult::Ok.code() {
                    self.handles_map().insert(handle, out);
                }
                Some(Reply::Code(code))
            }
            Request::Subscribe { handle, topic } => {
                let proxy = Box::into_raw(Box::new(EventProxy {
                    link: Arc::clone(self),
                    handle,
                }));
                let mut out = 0;
                // SAFETY: as for `Register`, with an `EventProxy` that `destroy_event` frees.
                let code = unsafe {
                    (HOST_SERVICES.subscribe)(
                        ctx,
                        PhStr::new(&topic),
                        Some(PhEventCallback(proxy_event)),
                        proxy.cast(),
                        Some(PhDestroyCallback(destroy_event)),
                        &mut out,
                    )
                };
                if code == PhResult::Ok.code() {
                    self.handles_map().insert(handle, out);
                }
                Some(Reply::Code(code))
            }
            Request::Unregister { handle } => {
                if let Some(handle) = self.handles_map().remove(&handle) {
                    // SAFETY: the proxy's context and one of its handles.
                    unsafe { (HOST_SERVICES.unregister)(ctx, handle) };
                }
                None
            }
            Request::Publish { topic, payload } => {
                Some(Reply::Code(self.publish(&topic, &payload)))
            }
            Request::EnumeratePlugins => {
                let mut listed: (Vec<[String; 4]>, Vec<(u16, u16)>) = Default::default();
                unsafe extern "C" fn collect(
                    user_data: *mut c_void,
                    info: *const PhPluginInfo,
                ) -> bool {
                    guard("isolation: plugin enumeration", false, || {
                        // SAFETY: the lists on the stack of `serve`, which waits for the
                        // enumeration; the host passes a valid info for the call.
                        let (listed, info) = unsafe {
                            (
                                &mut *user_data.cast::<(Vec<[String; 4]>, Vec<(u16, u16)>)>(),
                                &*info,
                            )
                        };
                        // SAFETY: the host's own strings, valid for the call.
                        let text = |s: PhStr| unsafe { s.to_str() }.unwrap_or("").to_owned();
                        listed.0.push([
                            text(info.name),
                            text(info.version),
                            text(info.description),
                            text(info.path),
                        ]);
                        listed.1.push((info.abi_major, info.abi_minor));
                        true
                    })
                }
                // SAFETY: the proxy's context; `collect` matches the callback type and the
                // lists outlive the call.
                unsafe {
                    (HOST_SERVICES.enumerate_plugins)(
                        ctx,
                        Some(PhPluginInfoCallback(collect)),
                        (&mut listed as *mut (Vec<[String; 4]>, Vec<(u16, u16)>)).cast(),
                    )
                };
                Some(Reply::Plugins(listed.0, listed.1))
            }
            Request::EnumerateCommands { plugin } => {
                let mut listed: Vec<(String, String, String)> = Vec::new();
                unsafe extern "C" fn collect(
                    user_data: *mut c_void,
                    info: *const PhCommandInfo,
                ) -> bool {
                    guard("isolation: command enumeration", false, || {
                        // SAFETY: the list on the stack of `serve`, which waits for the
                        // enumeration; the host passes a valid info for the call.
                        let (listed, info) = unsafe {
                            (
                                &mut *user_data.cast::<Vec<(String, String, String)>>(),
                                &*info,
                            )
                        };
                        // SAFETY: the host's own strings, valid for the call.
                        let text = |s: PhStr| unsafe { s.to_str() }.unwrap_or("").to_owned();
                        listed.push((text(info.name), text(info.description), text(info.usage)));
                        true
                    })
                }
                // SAFETY: the proxy's context; the name is borrowed for the call; `collect`
                // matches the callback type and the list outlives the call.
                let code = unsafe {
                    (HOST_SERVICES.enumerate_commands)(
                        ctx,
                        PhStr::new(&plugin),
                        Some(PhCommandInfoCallback(collect)),
                        (&mut listed as *mut Vec<(String, String, String)>).cast(),
                    )
                };
                Some(Reply::Commands(code, listed))
            }
        }
    }

    /// Publishes in the host, through the host service with the proxy's context, an event that
    /// the plugin published in the child (which delivered it to the plugin's own subscribers
    /// already: the proxy's subscriptions skip it). Returns the service's code.
    fn publish(self: &Arc<Link>, topic: &str, payload: &[u8]) -> u32 {
        let ctx = self.ctx.load(Ordering::Acquire);
        let key = (
            Arc::as_ptr(self) as usize,
            topic.as_ptr() as usize,
            payload.as_ptr() as usize,
        );
        ECHO.with(|e| e.borrow_mut().push(key));
        // SAFETY: the proxy's context (or NULL before its init, which the service refuses);
        // topic and payload are borrowed for the call.
        let code =
            unsafe { (HOST_SERVICES.publish)(ctx, PhStr::new(topic), PhBytes::new(payload)) };
        ECHO.with(|e| e.borrow_mut().pop());
        code
    }

    /// Logs in the host, through the host service with the proxy's context, a record that the
    /// plugin wrote in the child.
    fn log(&self, level: u32, target: &str, message: &str) {
        let ctx = self.ctx.load(Ordering::Acquire);
        // SAFETY: the proxy's context (or NULL before its init, which the service refuses); the
        // strings are borrowed for the call.
        unsafe { (HOST_SERVICES.log)(ctx, level, PhStr::new(target), PhStr::new(message)) };
    }

    /// A message on the socket of the plugin's own threads broke the protocol: the link fails
    /// (the child is killed), and the plugin is faulted, or down until its restart
    /// ([`super::Restart::OnCrash`]), with one line. Only if `process` is still the plugin's
    /// child: a listener of an older child just kills it.
    fn fail_from_thread(&self, process: &Arc<Process>, error: WireError) {
        self.fail_unasked(process, Phase::Thread, error);
    }

    /// The socket of the child's threads ended: the child exited or was killed (no other
    /// process holds that socket's end, unless the plugin forked one). If the host did not tell
    /// it to exit and no call is under way (a call reports the end itself, naming the call),
    /// the plugin is faulted (or, under `on-crash`, restarts at its next call) now, with one
    /// line, rather than at its next call.
    fn ended_while_idle(&self, process: &Arc<Process>) {
        if self.closing.load(Ordering::Acquire) || self.turn.is_held() {
            return;
        }
        // The end of the socket comes with the child's exit; a child that is still running
        // closed it some other way, and its next call finds out what became of it.
        if process.status(Duration::from_secs(5)).is_none() {
            return;
        }
        // A call that began meanwhile, or the host's `Shutdown`, saw the end first, or will:
        // `fail_first` keeps the first cause, and a shutdown expects the end.
        if self.closing.load(Ordering::Acquire) {
            return;
        }
        self.fail_unasked(process, Phase::Idle, WireError::Closed);
    }

    /// Fails the link outside any call (`phase`: a thread's message, or idle): faults the plugin
    /// or, under `on-crash`, records the crash, each with one line. Only if `process` is still
    /// the plugin's child: a listener of an older child just kills it.
    fn fail_unasked(&self, process: &Arc<Process>, phase: Phase<'_>, error: WireError) {
        let Some((reason, true)) = self.fail_first_of(Some(process), phase, error) else {
            return;
        };
        if self.restarts() {
            let (count, delay) = self.crashed();
            log::error!(
                "plugin `{}` crashed: {reason}; {}",
                self.name,
                when_restarted(count, delay)
            );
        } else {
            self.fault_plugin(&reason, false);
        }
    }

    /// Ends the registration `handle` of the child `process`, for one of its threads (the
    /// listener serves it). Only if `process` is still the plugin's child: after a restart the
    /// old child's registrations were ended already, and the new child numbers its own from
    /// the same start, so a late unregistration of the old child (from its listener's backlog)
    /// would end the new child's. Checked under the lock of the handles, which a restart takes
    /// only after it replaced the child.
    fn unregister_of(&self, process: &Arc<Process>, handle: u64) {
        let removed = {
            let mut handles = self.handles_map();
            if !Arc::ptr_eq(&self.process(), process) {
                return;
            }
            handles.remove(&handle)
        };
        if let Some(handle) = removed {
            let ctx = self.ctx.load(Ordering::Acquire);
            // SAFETY: the proxy's context and one of its handles.
            unsafe { (HOST_SERVICES.unregister)(ctx, handle) };
        }
    }

    /// Whether this thread is handing the plugin's output or a log record to the application
    /// (see `delivering`): a call into the plugin from there is refused.
    fn reentered(&self) -> bool {
        self.delivering.load(Ordering::Relaxed) && self.turn.is_mine()
    }

    fn handles_map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, PhHandle>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Faults the proxy plugin in the host after the link failed with `reason`: its
    /// registrations end and it gets no more calls. `quiet` when the caller reports the reason
    /// itself (a command's error).
    fn fault_plugin(&self, reason: &str, quiet: bool) {
        let ctx = self.context_ptr().cast::<PluginContext>();
        if ctx.is_null() {
            return;
        }
        // SAFETY: the proxy's context, which the host never frees (`context::RETAINED`).
        let context = unsafe { &*ctx };
        let found = context
            .shared
            .active_plugins()
            .into_iter()
            .find(|p| std::ptr::eq(Arc::as_ptr(p), ctx));
        if let Some(plugin) = found {
            context.shared.fault_with(&plugin, reason, !quiet);
        }
    }
}

/// The listener of the child `process`: serves what the plugin's own threads send on `stream`,
/// until the child's end closes or the link is gone. Each message is validated as those of the
/// conversation: one that is malformed, or that is not one of a thread's (a log record, a
/// publish, an unregistration), fails the link.
fn listen(
    link: &Weak<Link>,
    process: &Arc<Process>,
    mut stream: UnixStream,
    served: &std::sync::atomic::AtomicU64,
) {
    let mut reader = FrameReader::new();
    loop {
        let frame = match reader.next(&mut stream) {
            Ok(frame) => frame,
            // The child exited or was killed.
            Err(WireError::Closed | WireError::Io(_) | WireError::TimedOut) => {
                if let Some(link) = link.upgrade() {
                    link.ended_while_idle(process);
                }
                return;
            }
            Err(error) => {
                if let Some(link) = link.upgrade() {
                    link.fail_from_thread(process, error);
                }
                return;
            }
        };
        let Some(link) = link.upgrade() else { return };
        served.fetch_add(1, Ordering::Relaxed);
        match decode_up(frame) {
            // Served from the reader's buffer: nothing is read meanwhile.
            Ok(Up::Log {
                level,
                target,
                message,
            }) => link.log(level, target, message),
            Ok(Up::Publish { topic, payload }) => {
                // As for a plugin's own thread in-process, the publisher does not learn of the
                // handlers; a refusal (the plugin shut down, or faulted) ends the event here.
                let code = link.publish(topic, payload);
                if code != PhResult::Ok.code() {
                    log::debug!(
                        "plugin `{}`: event `{topic}` of a thread of its own not published: {}",
                        link.name,
                        PhResult::from_code(code)
                    );
                }
            }
            Ok(Up::Unregister { handle }) => link.unregister_of(process, handle),
            Ok(_) => {
                link.fail_from_thread(
                    process,
                    WireError::Malformed(postcard::Error::DeserializeBadEnum),
                );
                return;
            }
            Err(error) => {
                link.fail_from_thread(process, error);
                return;
            }
        }
    }
}

/// The user data of a proxy command.
struct CommandProxy {
    link: Arc<Link>,
    name: String,
}

/// The user data of a proxy subscription: the child's handle.
struct EventProxy {
    link: Arc<Link>,
    handle: u64,
}

unsafe extern "C" fn destroy_command(user_data: *mut c_void) {
    guard("isolation: destroy", (), || {
        // SAFETY: the `CommandProxy` made by `Link::serve`, freed once (the host's rule).
        drop(unsafe { Box::from_raw(user_data.cast::<CommandProxy>()) });
    })
}

unsafe extern "C" fn destroy_event(user_data: *mut c_void) {
    guard("isolation: destroy", (), || {
        // SAFETY: the `EventProxy` made by `Link::serve`, freed once (the host's rule).
        drop(unsafe { Box::from_raw(user_data.cast::<EventProxy>()) });
    })
}

/// When a plugin that crashed `count` times in a row restarts: the end of its crash's line.
fn when_restarted(count: u32, delay: Duration) -> String {
    match delay.is_zero() {
        true => "it restarts at its next call".to_owned(),
        false => format!(
            "it restarts at its first call after {:.1} s ({count} crashes in a row)",
            delay.as_secs_f64()
        ),
    }
}

/// A command of the isolated plugin: runs it in the child, its output streamed to `output`.
unsafe extern "C" fn proxy_command(
    user_data: *mut c_void,
    args: *const PhStr,
    arg_count: usize,
    output: *const PhCommandOutput,
) -> PhResultCode {
    guard("isolation: command", PhResult::HostFailed.code(), || {
        // SAFETY: the `CommandProxy` of this registration, alive while the host dispatches it.
        let proxy = unsafe { &*user_data.cast::<CommandProxy>() };
        // SAFETY: the host passes `arg_count` valid views (or none) and a valid output.
        let (args, output) = unsafe {
            (
                match arg_count {
                    0 => &[][..],
                    n => std::slice::from_raw_parts(args, n),
                },
                &*output,
            )
        };
        // SAFETY: the host's own views of UTF-8 strings, valid for the call.
        let args: Vec<&str> = args
            .iter()
            .map(|a| unsafe { a.to_str() }.unwrap_or(""))
            .collect();
        let request = Down::Call {
            command: &proxy.name,
            args,
        };
        let set_error = |message: &str| {
            // SAFETY: the running command's output, on its thread.
            unsafe { (output.set_error.0)(output.context, PhStr::new(message)) };
        };
        if proxy.link.reentered() {
            set_error(&format!(
                "plugin `{}` is isolated: it cannot be called from the writer of its own command's output or from the observer of its log records",
                proxy.link.name
            ));
            return PhResult::WrongThread.code();
        }
        match proxy
            .link
            .call(&request, Phase::Command(&proxy.name), Some(output))
        {
            Ok((code, message)) => {
                if let Some(message) = message {
                    set_error(&message);
                }
                code
            }
            Err(reason) if proxy.link.restarts() => {
                // Down, or crashed just now: a restart at a later call.
                if proxy.link.fault().as_deref() == Some(reason.as_str()) {
                    let (count, delay) = proxy.link.crashed();
                    set_error(&format!(
                        "plugin `{}` crashed: {reason}; {}",
                        proxy.link.name,
                        when_restarted(count, delay)
                    ));
                } else {
                    set_error(&format!("plugin `{}` is down: {reason}", proxy.link.name));
                }
                PhResult::HostFailed.code()
            }
            Err(reason) => {
                proxy.link.fault_plugin(&reason, true);
                set_error(&format!(
                    "plugin `{}` is faulted: {reason}",
                    proxy.link.name
                ));
                PhResult::HostFailed.code()
            }
        }
    })
}

/// A subscription of the isolated plugin: delivers the event to it in the child.
unsafe extern "C" fn proxy_event(
    user_data: *mut c_void,
    topic: PhStr,
    payload: PhBytes,
) -> PhResultCode {
    guard("isolation: event", PhResult::HostFailed.code(), || {
        // SAFETY: the `EventProxy` of this registration, alive while the host dispatches it.
        let proxy = unsafe { &*user_data.cast::<EventProxy>() };
        let key = (
            Arc::as_ptr(&proxy.link) as usize,
            topic.ptr as usize,
            payload.ptr as usize,
        );
        if ECHO.with(|e| e.borrow().contains(&key)) {
            return PhResult::Ok.code();
        }
        if proxy.link.reentered() {
            // The host logs the code as the handler's failure.
            return PhResult::WrongThread.code();
        }
        // SAFETY: the host's views of the event, valid for the call.
        let (topic, payload) = match unsafe { (topic.to_str(), payload.to_bytes()) } {
            (Ok(topic), Ok(payload)) => (topic, payload),
            _ => return PhResult::InvalidArgument.code(),
        };
        let request = Down::Deliver {
            handle: proxy.handle,
            topic,
            payload,
        };
        match proxy.link.call(&request, Phase::Event(topic), None) {
            Ok((code, _)) => code,
            Err(reason) if proxy.link.restarts() => {
                if proxy.link.fault().as_deref() == Some(reason.as_str()) {
                    let (count, delay) = proxy.link.crashed();
                    log::error!(
                        "plugin `{}` crashed: {reason}; {}",
                        proxy.link.name,
                        when_restarted(count, delay)
                    );
                }
                PhResult::Ok.code()
            }
            Err(reason) => {
                proxy.link.fault_plugin(&reason, false);
                PhResult::Ok.code()
            }
        }
    })
}

/// The proxy's `init`: the plugin's `init` in the child, registering in the host what the
/// plugin registers there.
unsafe extern "C" fn proxy_init(
    ctx: *mut PhHostContext,
    _host: *const PhHostServices,
    out_plugin_data: *mut *mut c_void,
) -> PhResultCode {
    guard("isolation: init", PhResult::HostFailed.code(), || {
        let Some(link) = PENDING.with(|p| p.borrow_mut().take()) else {
            return PhResult::HostFailed.code();
        };
        link.ctx.store(ctx, Ordering::Release);
        let config = link
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let request = Down::Init { config: &config };
        match link.call(&request, Phase::Init, None) {
            Ok((code, _)) if code == PhResult::Ok.code() => {
                // SAFETY: the host gives a writable pointer to `init`.
                unsafe { *out_plugin_data = Arc::into_raw(link).cast_mut().cast() };
                code
            }
            Ok((code, message)) => {
                // The plugin's reason, as an in-process plugin's error record during `init`
                // would be: the refusal is `init failed: CODE: REASON`, one line however the
                // child wrote it.
                // SAFETY: the host passes its context for this plugin, which lives for the rest
                // of the process (`context::RETAINED`).
                let context = unsafe { ctx.cast::<crate::context::PluginContext>().as_ref() };
                if let (Some(message), Some(context)) = (message, context) {
                    context.note_init_error(&message);
                }
                code
            }
            Err(_) => PhResult::HostFailed.code(),
        }
    })
}

/// The proxy's `shutdown`: the plugin's `shutdown` in the child, which then exits.
unsafe extern "C" fn proxy_shutdown(plugin_data: *mut c_void) -> PhResultCode {
    guard("isolation: shutdown", PhResult::HostFailed.code(), || {
        // SAFETY: the `Arc<Link>` that `proxy_init` gave as plugin data; `shutdown` is called
        // once.
        let link = unsafe { Arc::from_raw(plugin_data.cast_const().cast::<Link>()) };
        let down = link.restarts() && link.fault().is_some();
        link.closing();
        let code = match link.call(&Down::Shutdown, Phase::Shutdown, None) {
            Ok((code, _)) => code,
            // A plugin down after a crash has nothing to shut down.
            Err(_) if down => PhResult::Ok.code(),
            Err(reason) => {
                log::error!("plugin `{}`: {reason}", link.name);
                PhResult::HostFailed.code()
            }
        };
        let process = link.process();
        if process.status(Duration::from_secs(5)).is_none() {
            process.kill();
        }
        // What the plugin's threads sent before the child exited is served before the plugin
        // is shut down (its context still takes service calls).
        link.end_listener();
        code
    })
}

static PROXY_VTABLE: PhPluginVtable = PhPluginVtable {
    struct_size: std::mem::size_of::<PhPluginVtable>() as u32,
    init: Some(PhInitFn(proxy_init)),
    shutdown: Some(PhShutdownFn(proxy_shutdown)),
    enumerate_commands: None,
    // No state handoff for an isolated plugin: a reload starts its new build in a new child.
    save_state: None,
    restore_state: None,
};

/// The proxy's descriptor for the plugin the child described. Leaked: a descriptor must stay
/// valid for the rest of the process, as a library's does.
pub(crate) fn descriptor(hello: &Hello) -> &'static PhPluginDescriptor {
    let leak = |s: &str| -> PhStr { PhStr::new(Box::leak(s.to_owned().into_boxed_str())) };
    Box::leak(Box::new(PhPluginDescriptor {
        abi_major: PH_ABI_VERSION_MAJOR,
        abi_minor: PH_ABI_VERSION_MINOR,
        struct_size: std::mem::size_of::<PhPluginDescriptor>() as u32,
        name: leak(&hello.name),
        version: leak(&hello.version),
        description: leak(&hello.description),
        vtable: &PROXY_VTABLE,
        provides: std::ptr::null(),
        provides_count: 0,
        requires: std::ptr::null(),
        requires_count: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolate::{ChildOptions, Respawn, Restart};
    use proptest::prelude::*;

    /// A stand-in child: a shell script that writes `bytes` to the socket (after a valid hello)
    /// and exits, closing it.
    fn fake_child(dir: &std::path::Path, bytes: &[u8]) -> Arc<Link> {
        fake_child_with_threads(dir, bytes, &[])
    }

    /// [`fake_child`] that also writes `threads` to the socket of the plugin's threads.
    fn fake_child_with_threads(dir: &std::path::Path, bytes: &[u8], threads: &[u8]) -> Arc<Link> {
        use std::os::unix::fs::PermissionsExt;
        let mut hello = Vec::new();
        wire::encode(
            &Up::Hello {
                name: "fake",
                version: "1.0.0",
                description: "",
                abi: (1, 3),
                layout_checked: false,
                interfaces: Vec::new(),
            },
            &mut hello,
        );
        hello.extend_from_slice(bytes);
        let data = dir.join("frames.bin");
        std::fs::write(&data, &hello).unwrap();
        let events = dir.join("threads.bin");
        std::fs::write(&events, threads).unwrap();
        let script = dir.join("child.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncat '{}' >&4\ncat '{}' >&3\n",
                events.display(),
                data.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let options = ChildOptions {
            allow_insecure: false,
            private_copies: false,
            log_level: 0,
        };
        let (process, sockets) = Process::spawn(&script, &data, &options).unwrap();
        let respawn = Respawn {
            program: script,
            file: data,
            options,
            restart: Restart::Never,
        };
        let link = Link::new(
            "fake".to_owned(),
            process,
            sockets,
            Some(Duration::from_secs(20)),
            respawn,
        )
        .unwrap();
        Arc::new(link)
    }

    /// One frame of a well-formed message of the child, with arbitrary contents.
    fn message() -> impl Strategy<Value = Vec<u8>> {
        let text = "[a-z.*]{0,12}|\\PC{0,8}";
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|b| frame(&Up::Output { bytes: &b })),
            (0u32..8, text, text).prop_map(|(level, t, m)| frame(&Up::Log {
                level,
                target: &t,
                message: &m
            })),
            (any::<u64>(), text, text).prop_map(|(handle, n, d)| frame(&Up::Register {
                handle,
                name: &n,
                description: &d,
                usage: ""
            })),
            (any::<u64>(), text)
                .prop_map(|(handle, t)| frame(&Up::Subscribe { handle, topic: &t })),
            any::<u64>().prop_map(|handle| frame(&Up::Unregister { handle })),
            (text, proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(t, p)| frame(
                &Up::Publish {
                    topic: &t,
                    payload: &p
                }
            )),
            Just(frame(&Up::EnumeratePlugins)),
            text.prop_map(|p| frame(&Up::EnumerateCommands { plugin: &p })),
            (any::<u32>(), proptest::option::of(text)).prop_map(|(code, m)| frame(&Up::Done {
                code,
                message: m.as_deref()
            })),
            Just(frame(&Up::Refused { message: "again" })),
        ]
    }

    fn frame(message: &Up<'_>) -> Vec<u8> {
        let mut bytes = Vec::new();
        wire::encode(message, &mut bytes);
        bytes
    }

    /// Starts the listener of `link` and waits for its end.
    fn listen_to_the_end(link: &Arc<Link>) {
        link.listen().unwrap();
        link.end_listener();
        let events = link.events.lock().unwrap();
        assert!(matches!(*events, Events::Ended), "the listener ended");
    }

    #[test]
    fn the_messages_of_a_childs_threads_are_served_and_others_fail_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let threads = [
            frame(&Up::Log {
                level: 3,
                target: "fake",
                message: "from a thread",
            }),
            frame(&Up::Publish {
                topic: "fake.topic",
                payload: b"x",
            }),
            frame(&Up::Unregister { handle: 7 }),
        ]
        .concat();
        let link = fake_child_with_threads(dir.path(), &[], &threads);
        assert!(link.hello().is_ok());
        listen_to_the_end(&link);
        // The thread's messages were served; what fails the link is only the child's exit
        // between calls, which the listener notices at once.
        let fault = link.fault().unwrap();
        assert!(
            fault.starts_with("its child process (pid ")
                && fault.ends_with(") exited with status 0 while idle"),
            "{fault}"
        );

        // A call's answer is not a thread's message: the link fails, the child is killed.
        let dir = tempfile::tempdir().unwrap();
        let done = frame(&Up::Done {
            code: 0,
            message: None,
        });
        let link = fake_child_with_threads(dir.path(), &[], &done);
        assert!(link.hello().is_ok());
        let pid = link.process().pid;
        listen_to_the_end(&link);
        let reason = link.fault().expect("the link failed");
        assert!(
            reason.starts_with(&format!(
                "its child process (pid {pid}) sent a malformed message"
            )) && reason.ends_with("from a thread of its own; it was killed"),
            "{reason}"
        );
        assert!(link.process().status(Duration::ZERO).is_some(), "reaped");
    }

    #[test]
    fn the_registry_lets_go_of_the_links_of_children_shut_down() {
        let dir = tempfile::tempdir().unwrap();
        let registry = crate::isolate::Registry::default();
        // A plugin shut down: its child told to exit, then reaped (the fake child exits).
        let old = fake_child(dir.path(), &[]);
        // Told apart by their contexts, which the proxy's `init` would set (never dereferenced
        // here).
        old.ctx
            .store(std::ptr::dangling_mut::<u64>().cast(), Ordering::Release);
        old.closing();
        assert!(old.process().status(Duration::from_secs(20)).is_some());
        registry.add(Arc::clone(&old));
        // A plugin loaded later: its link is added, the other one's let go of.
        let dir = tempfile::tempdir().unwrap();
        let new = fake_child(dir.path(), &[]);
        new.ctx.store(
            std::ptr::dangling_mut::<u64>().wrapping_add(1).cast(),
            Ordering::Release,
        );
        registry.add(Arc::clone(&new));
        assert_eq!(Arc::strong_count(&old), 1);
        assert_eq!(Arc::strong_count(&new), 2);
        // Its mode is still known (a plugin shut down is still listed until it is unloaded).
        let pid = old.process().pid;
        assert_eq!(
            registry.mode_of(old.context_ptr().cast()),
            crate::PluginMode::Isolated { pid }
        );
    }

    #[test]
    fn a_child_whose_link_is_dropped_sees_the_end_of_its_socket_and_exits() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // A child that reads its socket to the end, then exits.
        let script = dir.path().join("child.sh");
        std::fs::write(&script, "#!/bin/sh\ncat <&3 >/dev/null\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let options = ChildOptions {
            allow_insecure: false,
            private_copies: false,
            log_level: 0,
        };
        let (process, sockets) = Process::spawn(&script, &script, &options).unwrap();
        let respawn = Respawn {
            program: script.clone(),
            file: script,
            options,
            restart: Restart::Never,
        };
        let link = Link::new(
            "fake".to_owned(),
            Arc::clone(&process),
            sockets,
            None,
            respawn,
        )
        .unwrap();
        assert!(process.status(Duration::ZERO).is_none(), "the child runs");
        drop(link);
        // Not killed: it exits by itself, status 0 (the reaper's handles of the sockets do not
        // keep them open).
        let status = process.status(Duration::from_secs(20));
        assert_eq!(status.flatten().and_then(|s| s.code()), Some(0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Any messages, then any bytes, on the socket of the plugin's threads: the listener
        /// serves them or fails the link in one line, and ends at the socket's end (the fake
        /// child's exit, a fault `while idle` if nothing failed before). Never a panic, never
        /// a hang.
        #[test]
        fn the_listener_survives_any_bytes_from_a_childs_threads(
            messages in proptest::collection::vec(message(), 0..8),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut bytes: Vec<u8> = messages.concat();
            bytes.extend_from_slice(&tail);
            let link = fake_child_with_threads(dir.path(), &[], &bytes);
            prop_assert!(link.hello().is_ok());
            listen_to_the_end(&link);
            // Either a thread's message broke the protocol, or all were served and the
            // child's exit between calls failed the link.
            if let Some(reason) = link.fault() {
                prop_assert!(
                    reason.contains("from a thread of its own") || reason.ends_with(" while idle"),
                    "{}",
                    reason
                );
                prop_assert_eq!(reason.lines().count(), 1);
            }
        }

        /// Well-formed messages in any order, with any contents (requests the proxy serves
        /// without a host context here, answers out of turn), then any bytes: the call returns.
        #[test]
        fn the_host_survives_any_messages_from_a_child(
            messages in proptest::collection::vec(message(), 0..12),
            tail in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut bytes: Vec<u8> = messages.concat();
            bytes.extend_from_slice(&tail);
            let link = fake_child(dir.path(), &bytes);
            prop_assert!(link.hello().is_ok());
            let request = Down::Call { command: "fake-go", args: vec![] };
            if let Err(reason) = link.call(&request, Phase::Command("fake-go"), None) {
                prop_assert_eq!(link.fault(), Some(reason));
            }
        }

        /// Whatever a child sends after its hello, a call returns: an answer, or the link
        /// fails with a reason and the child is reaped. Never a panic, never a hang.
        #[test]
        fn the_host_survives_any_bytes_from_a_child(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let link = fake_child(dir.path(), &bytes);
            prop_assert_eq!(link.hello().ok().map(|h| h.name), Some("fake".to_owned()));
            let request = Down::Call { command: "fake-go", args: vec!["a"] };
            match link.call(&request, Phase::Command("fake-go"), None) {
                Ok(_) => {}
                Err(reason) => {
                    prop_assert_eq!(link.fault(), Some(reason.clone()));
                    prop_assert!(reason.contains("in command `fake-go`"), "{}", reason);
                    prop_assert!(link.process().status(Duration::ZERO).is_some(), "reaped");
                }
            }
        }
    }
}
