//! Isolation on Linux: the child process (start, parent-death signal, reaping), the host's
//! registry of isolated plugins, and loading a plugin in a child.

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{proxy, PluginMode, Restart};

/// The hidden first argument that makes `plughost` an isolated plugin's child process.
pub(crate) const CHILD_ARGUMENT: &str = "__isolate-child";

/// The file descriptor on which the child finds its end of the socket pair.
pub(crate) const CHILD_FD: i32 = 3;

/// The file descriptor on which the child finds its end of the second socket pair, one-way to
/// the host: the messages of the plugin's own threads (see [`super::child`]).
pub(crate) const CHILD_EVENTS_FD: i32 = 4;

/// A child's ends of its two socket pairs, when it starts: the conversation with the host, and
/// the messages of the plugin's own threads.
pub(crate) struct Sockets {
    /// The host's end of the conversation ([`CHILD_FD`] in the child).
    pub(crate) calls: UnixStream,
    /// The host's end of the plugin's threads' socket ([`CHILD_EVENTS_FD`] in the child), read
    /// by the host's listener of this child.
    pub(crate) events: UnixStream,
}

/// How to start an isolated plugin's child again.
pub(crate) struct Respawn {
    pub(crate) program: PathBuf,
    pub(crate) file: PathBuf,
    pub(crate) options: ChildOptions,
    pub(crate) restart: Restart,
}

/// The `plughost` binary: this program if it is `plughost`, else `plughost` in its folder or the
/// folder above (where cargo puts a test binary's `plughost`).
pub(crate) fn default_program() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot locate plughost: {e}"))?;
    let file = format!("plughost{}", std::env::consts::EXE_SUFFIX);
    if exe.file_name().is_some_and(|n| n == file.as_str()) {
        return Ok(exe);
    }
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(&file))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!(
                "cannot find the plughost binary beside {} (set it with PluginHost::set_child_program)",
                exe.display()
            )
        })
}

/// What a child is told at its start, besides the library file.
#[derive(Clone)]
pub(crate) struct ChildOptions {
    pub(crate) allow_insecure: bool,
    pub(crate) private_copies: bool,
    /// The host's maximum log level (0 = off ... 5 = trace): the child filters records by it.
    pub(crate) log_level: u32,
}

/// A child process: its pid, and its exit status once the reaper thread has reaped it.
pub(crate) struct Process {
    pub(crate) pid: u32,
    /// `None` once reaped. Locked to kill (so that a reaped pid, which may be reused, is never
    /// signalled) and to reap.
    child: Mutex<Option<std::process::Child>>,
    /// Once reaped: the exit status, or `None` if waiting for it failed.
    status: Mutex<Option<Option<ExitStatus>>>,
    exited: Condvar,
    /// Second handles of the host's ends of the child's two sockets, which the reaper shuts
    /// down once it reaped the child (see [`Process::spawn`]). Let go of with
    /// [`Process::release_ends`] when the host drops its link to a child it did not end: the
    /// child then sees the end of its socket and exits, as it would without them.
    ends: Mutex<Option<(UnixStream, UnixStream)>>,
}

impl Process {
    /// Starts `program` as the child of the library `file`, with its ends of two new socket
    /// pairs on [`CHILD_FD`] and [`CHILD_EVENTS_FD`]; returns it with the host's ends. A thread
    /// waits for the child's exit and reaps it, so that no zombie is left.
    pub(crate) fn spawn(
        program: &Path,
        file: &Path,
        options: &ChildOptions,
    ) -> std::io::Result<(Arc<Process>, Sockets)> {
        let (host_end, child_end) = UnixStream::pair()?;
        let (events_end, child_events_end) = UnixStream::pair()?;
        // The child's end of a socket may outlive it, held by a process the plugin forked: its
        // exit then closes neither socket. The reaper shuts the host's ends down once the child
        // is reaped, so that a call under way or the listener sees the end (what the child sent
        // before stays readable), not a read that lasts until the call timeout, or for ever.
        let ends = Some((host_end.try_clone()?, events_end.try_clone()?));
        // The child's ends, on descriptors above the two it receives them on, so that putting
        // one in place never overwrites the other (close-on-exec, as every descriptor of the
        // host: only the two copies made in the child cross the exec).
        let above = |stream: &UnixStream| {
            rustix::io::fcntl_dupfd_cloexec(stream, CHILD_EVENTS_FD + 1)
                .map_err(std::io::Error::from)
        };
        let (child_fd, child_events_fd) = (above(&child_end)?, above(&child_events_end)?);
        drop((child_end, child_events_end));
        let moves = [
            (std::os::fd::AsRawFd::as_raw_fd(&child_fd), CHILD_FD),
            (
                std::os::fd::AsRawFd::as_raw_fd(&child_events_fd),
                CHILD_EVENTS_FD,
            ),
        ];
        let mut command = std::process::Command::new(program);
        command
            .arg(CHILD_ARGUMENT)
            .arg(file)
            .arg(u8::from(options.allow_insecure).to_string())
            .arg(u8::from(options.private_copies).to_string())
            .arg(options.log_level.to_string())
            .stdin(std::process::Stdio::null());
        // SAFETY: the closure runs in the child between fork and exec and makes only a system
        // call that is async-signal-safe (dup2), touching no lock and allocating nothing.
        unsafe {
            command.pre_exec(move || {
                // `dup2` clears close-on-exec on the new descriptor, so the child keeps it; the
                // sources are above both targets, so neither move overwrites the other's source.
                for (from, to) in moves {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        // Nothing else of the host's process: only the two sockets cross the exec.
        crate::process::inherit_none_from(&mut command, CHILD_EVENTS_FD as u32 + 1);
        // Never outlive the host.
        crate::process::die_with_parent(&mut command);
        // On the spawner thread: the parent-death signal must not follow the caller's thread.
        let child = crate::process::spawn(command)?;
        drop((child_fd, child_events_fd));
        let process = Arc::new(Process {
            pid: child.id(),
            child: Mutex::new(Some(child)),
            status: Mutex::new(None),
            exited: Condvar::new(),
            ends: Mutex::new(ends),
        });
        let reaper = Arc::clone(&process);
        let spawned = std::thread::Builder::new()
            .name(format!("plughost-reaper-{}", process.pid))
            .spawn(move || reaper.reap());
        if let Err(e) = spawned {
            // No reaper: the child is killed and reaped here rather than left running, then a
            // zombie.
            let child = process
                .child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(mut child) = child {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(e);
        }
        Ok((
            process,
            Sockets {
                calls: host_end,
                events: events_end,
            },
        ))
    }

    /// Waits for the child's exit without reaping it, then reaps it under the lock that `kill`
    /// takes, and records its status.
    fn reap(&self) {
        let pid = rustix::process::Pid::from_raw(self.pid as i32);
        if let Some(pid) = pid {
            let options =
                rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOWAIT;
            while let Err(rustix::io::Errno::INTR) =
                rustix::process::waitid(rustix::process::WaitId::Pid(pid), options)
            {}
        }
        let status = {
            let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
            let status = child.as_mut().and_then(|c| c.wait().ok());
            *child = None;
            status
        };
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        self.exited.notify_all();
        let ends = self.ends.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((calls, events)) = ends {
            let _ = calls.shutdown(std::net::Shutdown::Both);
            let _ = events.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Lets go of the second handles of the host's ends of the child's sockets: the host has no
    /// other left once its link to the child is dropped, and a child still running sees the
    /// end of its socket and exits.
    pub(crate) fn release_ends(&self) {
        drop(self.ends.lock().unwrap_or_else(|e| e.into_inner()).take());
    }

    /// Kills the child (SIGKILL) unless it was reaped already.
    pub(crate) fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(child) = child.as_mut() {
            let _ = child.kill();
        }
    }

    /// Whether the child was reaped, waiting up to `wait` for it, with its exit status if it is
    /// known: `None` if it is still running, `Some(None)` if reaped without a status.
    pub(crate) fn status(&self, wait: Duration) -> Option<Option<ExitStatus>> {
        let status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let (status, _) = self
            .exited
            .wait_timeout_while(status, wait, |s| s.is_none())
            .unwrap_or_else(|e| e.into_inner());
        *status
    }
}

pub(crate) use crate::process::describe_exit;

/// The host's isolated plugins, by name, for `list` and shutdown.
#[derive(Default)]
pub(crate) struct Registry {
    links: Mutex<Vec<Arc<proxy::Link>>>,
    /// What [`Registry::mode_of`] still needs of the links let go of: (context, child's pid).
    ended: Mutex<Vec<(usize, u32)>>,
}

impl Registry {
    /// Adds the link of a plugin loaded (or reloaded) in a child, and lets go of those of plugins
    /// shut down since (their child was told to exit and is reaped), keeping only their context
    /// and pid for [`Registry::mode_of`]: each link holds its buffers, and a host that reloads
    /// a plugin often (`shell --watch`) would otherwise keep one per reload.
    pub(crate) fn add(&self, link: Arc<proxy::Link>) {
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        links.retain(|l| {
            if !l.ended() {
                return true;
            }
            ended.push((l.context_ptr() as usize, l.process().pid));
            false
        });
        links.push(link);
    }

    /// The mode of the plugin whose host context is `context`.
    pub(crate) fn mode_of(&self, context: *const crate::context::PluginContext) -> PluginMode {
        let context = context as usize;
        let live = self
            .links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|l| l.context_ptr() as usize == context)
            .map(|l| l.process().pid);
        let pid = live.or_else(|| {
            self.ended
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|(c, _)| *c == context)
                .map(|(_, pid)| *pid)
        });
        pid.map_or(PluginMode::InProcess, |pid| PluginMode::Isolated { pid })
    }
}

impl Drop for Registry {
    /// A host dropped: its children are killed if still running (those of plugins shut down
    /// exited already).
    fn drop(&mut self) {
        for link in self
            .links
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            link.process().kill();
        }
    }
}

/// A plugin's build started in a child process and checked, not initialised yet: what
/// [`crate::PluginHost::reload`] needs to initialise it as the new version of an isolated plugin.
pub(crate) struct IsolatedBuild {
    link: Arc<proxy::Link>,
    process: Arc<Process>,
    name: String,
}

impl IsolatedBuild {
    /// Runs `initialise` (the host's call of the proxy's `init`) with this build's link pending,
    /// so that the proxy's `init` talks to this build's child.
    pub(crate) fn initialise_with<R>(&self, initialise: impl FnOnce() -> R) -> R {
        proxy::PENDING.with(|p| *p.borrow_mut() = Some(Arc::clone(&self.link)));
        let result = initialise();
        proxy::PENDING.with(|p| p.borrow_mut().take());
        result
    }

    /// The build serves: its child is one of the host's isolated plugins from now on.
    pub(crate) fn keep(self, registry: &Registry) {
        registry.add(self.link);
    }

    /// The build was given up: its child ends. The one-line reason of a failure in the child,
    /// if it failed there.
    pub(crate) fn discard(self) -> Option<String> {
        // Its end is the host's doing, not a crash between calls.
        self.link.closing();
        self.process.kill();
        self.link
            .fault()
            .map(|reason| format!("plugin `{}`: {reason}", self.name))
    }
}

impl crate::PluginHost {
    /// Loads `path` in a child process if it holds a plugin that is isolated; `None` if it holds
    /// one that is not (the caller loads it in-process).
    pub(crate) fn load_isolated(
        &mut self,
        path: &Path,
    ) -> Option<Result<String, crate::LoadError>> {
        let (candidate, build) = match self.isolated_build(path)? {
            Ok(prepared) => prepared,
            Err(error) => return Some(Err(error)),
        };
        let started = build.initialise_with(|| self.start(path, candidate));
        Some(match started {
            Ok(name) => {
                build.keep(&self.shared.isolated);
                Ok(name)
            }
            Err(error) => match build.discard() {
                Some(reason) => Err(crate::LoadError {
                    path: path.to_owned(),
                    kind: crate::LoadErrorKind::Isolated(reason),
                }),
                None => Err(error),
            },
        })
    }

    /// Starts `path` in a child process and checks what it holds, as a candidate whose `init`
    /// runs in the child; `None` if it holds a plugin that is not isolated, or that the
    /// in-process loader refuses (the caller loads it in-process, or refuses it there with the
    /// same reason).
    pub(crate) fn isolated_build(
        &self,
        path: &Path,
    ) -> Option<Result<(crate::loader::Candidate, IsolatedBuild), crate::LoadError>> {
        let refuse = |message: String| crate::LoadError {
            path: path.to_owned(),
            kind: crate::LoadErrorKind::Isolated(message),
        };
        let program = match &self.isolation.program {
            Some(program) => program.clone(),
            None => match default_program() {
                Ok(program) => program,
                Err(e) => return Some(Err(refuse(e))),
            },
        };
        let level = self
            .shared
            .observer
            .as_ref()
            .map_or_else(log::max_level, |o| o.max_level());
        let options = ChildOptions {
            allow_insecure: self.allow_insecure,
            private_copies: self.private_copies,
            log_level: level as u32,
        };
        let respawn = Respawn {
            program: program.clone(),
            file: path.to_owned(),
            options: options.clone(),
            restart: self.isolation.restart,
        };
        let (process, sockets) = match Process::spawn(&program, path, &options) {
            Ok(spawned) => spawned,
            Err(e) => {
                return Some(Err(refuse(format!(
                    "cannot start {} for an isolated plugin: {e}",
                    program.display()
                ))))
            }
        };
        let link = match proxy::Link::new(
            String::new(),
            Arc::clone(&process),
            sockets,
            self.isolation.call_timeout,
            respawn,
        ) {
            Ok(link) => link,
            Err(e) => {
                process.kill();
                return Some(Err(refuse(format!("isolation: {e}"))));
            }
        };
        let hello = match link.hello() {
            Ok(hello) => hello,
            // The library's checks failed: the in-process loader refuses it with the same
            // reason, as a `LoadError` of its kind, without calling any of its plugin's code.
            Err(proxy::HelloError::Refused(_)) => return None,
            // How the child died while opening the library.
            Err(proxy::HelloError::Failed(reason)) => return Some(Err(refuse(reason))),
        };
        if !self.isolation.wants(&hello.name) {
            link.bye();
            return None;
        }
        // Interfaces are tables of functions called in-process: they do not cross to a child.
        let held: Vec<String> = hello
            .interfaces
            .iter()
            .filter(|(_, provided, optional)| *provided || !*optional)
            .map(|(id, provided, _)| {
                format!("{} {id}", if *provided { "provides" } else { "requires" })
            })
            .collect();
        if !held.is_empty() {
            link.bye();
            let why = format!(
                "plugin `{}` {}: interfaces do not cross to a child process",
                hello.name,
                held.join(", ")
            );
            if self.isolation.names.contains(&hello.name) {
                return Some(Err(refuse(format!("{why}; it cannot be isolated"))));
            }
            log::warn!("{why}; it runs in-process");
            return None;
        }
        for (id, _, _) in &hello.interfaces {
            log::warn!(
                "plugin `{}` is isolated: the interface it may use, {id}, does not cross to its child process",
                hello.name
            );
        }
        let mut link = link;
        link.name = hello.name.clone();
        *link.config.lock().unwrap_or_else(|e| e.into_inner()) =
            self.config.plugin_toml(&hello.name);
        let link = Arc::new(link);
        if let Err(e) = link.listen() {
            process.kill();
            return Some(Err(refuse(format!("isolation: {e}"))));
        }
        let descriptor = proxy::descriptor(&hello);
        // SAFETY: a leaked descriptor, valid with its strings and table for the rest of the
        // process.
        let candidate = unsafe {
            crate::loader::check_descriptor(descriptor, path, None, |_| {
                Ok(crate::LayoutCheck::Linked)
            })
        };
        let candidate = match candidate {
            Ok(mut candidate) => {
                candidate.info.abi_version = hello.abi;
                candidate.layout = match hello.layout_checked {
                    true => crate::LayoutCheck::Passed,
                    false => crate::LayoutCheck::NotCarried,
                };
                candidate
            }
            Err(kind) => {
                process.kill();
                return Some(Err(crate::LoadError {
                    path: path.to_owned(),
                    kind,
                }));
            }
        };
        Some(Ok((
            candidate,
            IsolatedBuild {
                link,
                process,
                name: hello.name,
            },
        )))
    }
}
