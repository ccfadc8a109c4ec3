//! The host's worker threads: [`Host::run_tasks`] and [`Host::task_threads`] (ABI 1.4).

use std::ffi::c_void;
use std::sync::Mutex;

use crate::abi::{PhResult, PhResultCode, PhTaskFn};
use crate::boundary::guard;
use crate::error::Error;
use crate::host::Host;
use crate::link::HostLink;

impl Host {
    /// Runs `task(0)`, `task(1)`, ..., `task(count - 1)` on the host's worker threads, several at
    /// once and in any order, and returns when all of them have returned.
    ///
    /// Use it to split one piece of work (a command's, usually) into parts that run in parallel;
    /// [`Host::task_threads`] says how many run at once. `task` borrows from the caller: the
    /// host runs no task after this returns.
    ///
    /// # Thread rules
    ///
    /// Call it from any thread of the plugin, also from inside a task (nested calls share the
    /// same worker threads and do not deadlock), but not while holding a lock that a task
    /// takes. Tasks run on the host's worker threads (and possibly on the calling thread); `log`
    /// records and host services work there as anywhere.
    ///
    /// # Errors
    ///
    /// The error of the failed task with the lowest index, after every task ran. A task that
    /// panics faults the plugin, like a panic in any handler: the tasks not started yet are
    /// skipped and the error's code is [`PhResult::Panicked`]. [`PhResult::ShutDown`] once the
    /// plugin is shutting down (the tasks not started yet are skipped).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(host: &plugin_api::Host) -> Result<(), plugin_api::Error> {
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// let chunks: Vec<Vec<u64>> = vec![vec![1, 2], vec![3], vec![4, 5, 6]];
    /// let total = AtomicU64::new(0);
    /// host.run_tasks(chunks.len(), |i| {
    ///     total.fetch_add(chunks[i].iter().sum::<u64>(), Ordering::Relaxed);
    ///     Ok(())
    /// })?;
    /// assert_eq!(total.into_inner(), 21);
    /// # Ok(())
    /// # }
    /// ```
    pub fn run_tasks<F>(&self, count: usize, task: F) -> Result<(), Error>
    where
        F: Fn(usize) -> Result<(), Error> + Sync,
    {
        let count = u32::try_from(count).map_err(|_| {
            Error::with_code(
                PhResult::InvalidArgument,
                format!("run_tasks: {count} tasks, at most {} in one call", u32::MAX),
            )
        })?;
        let services = self.link.services()?;
        let tasks = Tasks {
            task,
            link: &self.link,
            failed: Mutex::new(None),
        };
        // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link is
        // active (`HostLink::services`); `tasks` outlives the call, and the host calls
        // `run_task::<F>` with it only before `run_tasks` returns.
        let code = unsafe {
            (services.run_tasks)(
                self.link.ctx,
                Some(PhTaskFn(run_task::<F>)),
                std::ptr::addr_of!(tasks).cast_mut().cast::<c_void>(),
                count,
            )
        };
        if code == PhResult::Ok.code() {
            return Ok(());
        }
        let failed = tasks.failed.into_inner().unwrap_or_else(|e| e.into_inner());
        match failed {
            // The task's own error, with its message (not a panic, and not a skip).
            Some((_, error)) if code == error.code().code() => Err(error),
            _ => Err(Error::failed("run_tasks", code)),
        }
    }

    /// How many tasks of [`Host::run_tasks`] run at once: the host's worker threads, at least 1.
    /// Split work into this many parts (or a few times more, for balance) to bound its memory.
    pub fn task_threads(&self) -> usize {
        match self.link.services() {
            // SAFETY: `ctx` and `services` are the host's, valid on any thread while the link is
            // active (`HostLink::services`); `task_threads` reads nothing through `ctx`.
            Ok(services) => unsafe { (services.task_threads)(self.link.ctx) }.max(1) as usize,
            Err(_) => 1,
        }
    }
}

/// What [`Host::run_tasks`] passes to its tasks as user data.
struct Tasks<'a, F> {
    task: F,
    link: &'a HostLink,
    /// The error of the failed task with the lowest index, written on the error path only.
    failed: Mutex<Option<(usize, Error)>>,
}

/// One task: the [`PhTaskFn`] of [`Host::run_tasks`].
unsafe extern "C" fn run_task<F>(user_data: *mut c_void, index: u32) -> PhResultCode
where
    F: Fn(usize) -> Result<(), Error> + Sync,
{
    // SAFETY: `user_data` is the `Tasks<F>` of the `run_tasks` call under way, which outlives
    // every task of it; it is only read here (`F: Sync`, the error slot is a mutex).
    let tasks = unsafe { &*user_data.cast::<Tasks<'_, F>>() };
    let index = index as usize;
    guard(
        Some(tasks.link),
        "a task",
        PhResult::Panicked.code(),
        || {
            match (tasks.task)(index) {
                Ok(()) => PhResult::Ok.code(),
                Err(error) => {
                    // An error must not read as success to the host.
                    let code = error.failure_code();
                    let mut failed = tasks.failed.lock().unwrap_or_else(|e| e.into_inner());
                    if failed.as_ref().is_none_or(|(at, _)| index < *at) {
                        *failed = Some((index, Error::with_code(code, error.message())));
                    }
                    code.code()
                }
            }
        },
    )
}
