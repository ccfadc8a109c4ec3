//! What the host's child processes have in common: the children of isolated plugins
//! ([`crate::isolate`]) and the checks of `plughost validate` ([`crate::validate`]). A child never
//! outlives the host ([`die_with_parent`]) and lives as long as the host needs it, whichever
//! thread started it ([`spawn`]); how it ended is said the same way in every one-line message
//! ([`describe_exit`]).

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::Mutex;

/// A request to the spawner thread: the command, and where to send the child.
type SpawnRequest = (Command, SyncSender<io::Result<Child>>);

/// Starts `command` on the host's spawner thread, a thread that lives as long as the process,
/// and returns the child. The kernel's parent-death signal ([`die_with_parent`]) follows the
/// thread that spawned the child, not the process: a child spawned on the caller's thread
/// would be killed when that thread ends, such as an application's worker thread that loaded
/// its plugins and returned. The child inherits that thread's attributes rather than the
/// caller's (its signal mask, CPU affinity, scheduling policy): the spawner is started by the
/// first call in the process (in each process, after a `fork`), from the calling thread.
///
/// # Errors
///
/// What [`Command::spawn`] returns, or an error if the spawner thread cannot be started.
pub(crate) fn spawn(command: Command) -> io::Result<Child> {
    /// The spawner of the process whose id is kept with it. A process made by `fork` without
    /// `exec` (a pre-fork server embedding the host) inherits the sender but not the thread:
    /// it starts a spawner of its own.
    static SPAWNER: Mutex<Option<(u32, Sender<SpawnRequest>)>> = Mutex::new(None);
    let gone = || io::Error::other("the thread that spawns child processes is gone");
    let requests = {
        let mut spawner = SPAWNER.lock().unwrap_or_else(|e| e.into_inner());
        let me = std::process::id();
        match &*spawner {
            Some((pid, requests)) if *pid == me => requests.clone(),
            _ => {
                let (requests, receive) = mpsc::channel::<SpawnRequest>();
                std::thread::Builder::new()
                    .name("plughost-spawner".to_owned())
                    .spawn(move || {
                        // Ends only with the process: `SPAWNER` holds a sender for good.
                        for (mut command, answer) in receive {
                            let _ = answer.send(command.spawn());
                        }
                    })
                    .map_err(|e| {
                        io::Error::new(
                            e.kind(),
                            format!("cannot start the thread that spawns child processes: {e}"),
                        )
                    })?;
                *spawner = Some((me, requests.clone()));
                requests
            }
        }
    };
    let (answer, child) = mpsc::sync_channel(1);
    requests.send((command, answer)).map_err(|_| gone())?;
    child.recv().map_err(|_| gone())?
}

/// Makes the child that `command` starts die (`SIGKILL`) when its parent does: the kernel's
/// parent-death signal, which follows the thread that spawns the child, so start it with
/// [`spawn`]. If the parent died before the child could ask for the signal, the child exits at
/// once (status 1). Elsewhere than on Linux, does nothing.
///
/// Adds a `pre_exec` hook; hooks added before it run first.
pub(crate) fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id();
        // SAFETY: the hook runs in the child between fork and exec and makes only system calls
        // that are async-signal-safe (prctl, getppid, _exit), touching no lock and allocating
        // nothing.
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))?;
                if rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32)
                    != Some(parent)
                {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

/// Makes the child that `command` starts inherit no descriptor from `first` on: the host's
/// descriptors are close-on-exec, but not necessarily those of the application that embeds it or
/// of its in-process plugins (C code opens files, sockets and pipes without the flag by
/// default); a child that inherited one would keep a file or socket open, or the write end of a
/// pipe whose reader then never sees its end. On Linux 5.11 or later (`close_range` with
/// `CLOSE_RANGE_CLOEXEC`); elsewhere, or on an older kernel, does nothing.
///
/// Adds a `pre_exec` hook; hooks added before it run first, so descriptors they put in place
/// below `first` are kept.
pub(crate) fn inherit_none_from(command: &mut Command, first: u32) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the hook runs in the child between fork and exec and makes one system call,
        // which is async-signal-safe, touching no lock and allocating nothing. Marked rather
        // than closed: the standard library's own descriptor (close-on-exec already) reports a
        // failed exec to the parent.
        unsafe {
            command.pre_exec(move || {
                // An error (a kernel without the call or the flag) leaves the descriptors as
                // they were.
                libc::syscall(
                    libc::SYS_close_range,
                    first,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (command, first);
}

/// Makes the child that `command` starts the leader of a process group of its own, which the
/// processes it starts join unless they leave it: [`end_group`] ends them with it. Elsewhere
/// than on Unix, does nothing.
pub(crate) fn own_group(command: &mut Command) {
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    #[cfg(not(unix))]
    let _ = command;
}

/// Kills (`SIGKILL`) what is left of the process group of the child `pid`, made with
/// [`own_group`]: the processes it started and left behind, which would otherwise keep what it
/// held (the write ends of its output pipes among them). Call it once the child ended and was
/// reaped: while any of them runs, the group keeps its id, so no other process gets it.
pub(crate) fn end_group(pid: u32) {
    #[cfg(unix)]
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// How a child ended, for a one-line message: `exited with status 3`, `was killed by signal
/// SIGSEGV (segmentation fault)`. `status` is `None` if the child did not exit when killed,
/// `Some(None)` if it was reaped without a known status.
pub(crate) fn describe_exit(status: Option<Option<ExitStatus>>) -> String {
    let status = match status {
        None => return "did not exit when killed".to_owned(),
        Some(None) => return "ended (its exit status is unknown)".to_owned(),
        Some(Some(status)) => status,
    };
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("was killed by signal {}", signal_name(signal));
        }
    }
    format!("ended ({status})")
}

/// A signal's name and what it usually means.
#[cfg(unix)]
fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGSEGV => "SIGSEGV (segmentation fault)",
        libc::SIGABRT => "SIGABRT (abort)",
        libc::SIGKILL => "SIGKILL",
        libc::SIGBUS => "SIGBUS (bus error)",
        libc::SIGILL => "SIGILL (illegal instruction)",
        libc::SIGFPE => "SIGFPE (arithmetic error)",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE (broken pipe)",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS (bad system call)",
        libc::SIGXCPU => "SIGXCPU (CPU time limit)",
        libc::SIGXFSZ => "SIGXFSZ (file size limit)",
        other => return format!("{other}"),
    };
    name.to_owned()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn an_exit_reads_as_its_status_or_its_signal() {
        assert_eq!(
            describe_exit(Some(Some(ExitStatus::from_raw(3 << 8)))),
            "exited with status 3"
        );
        assert_eq!(
            describe_exit(Some(Some(ExitStatus::from_raw(libc::SIGSEGV)))),
            "was killed by signal SIGSEGV (segmentation fault)"
        );
        assert_eq!(
            describe_exit(Some(Some(ExitStatus::from_raw(60)))),
            "was killed by signal 60"
        );
        assert_eq!(describe_exit(None), "did not exit when killed");
    }
}
