//! The host's worker threads: the pool behind the `run_tasks` and `task_threads` services (ABI
//! 1.4).
//!
//! One pool serves every host of the process (a plugin's tasks are short, CPU-bound parts of one
//! call, as with CLAP's thread-pool extension): [`rayon`]'s work-stealing pool, built on first
//! use with one thread per core, or `PLUGHOST_TASK_THREADS` threads. The calling thread waits
//! inside the service call, so a grace period ([`crate::quiesce`]) that waits for it also waits
//! for every task it started: no task runs once a plugin's `shutdown` is called.

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use plugin_api::abi::{PhResult, PhTaskFn};
use rayon::prelude::*;

use crate::context::PluginContext;

/// The environment variable that sets the number of worker threads (a positive integer); read
/// once, when the pool is built.
pub const TASK_THREADS_ENV: &str = "PLUGHOST_TASK_THREADS";

/// The pool, or why it could not be built (logged once).
static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();

/// The process's worker pool, built on first use; `None` if the system refused its threads.
fn pool() -> Option<&'static rayon::ThreadPool> {
    POOL.get_or_init(|| {
        let threads = std::env::var(TASK_THREADS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        match rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("plughost-task-{i}"))
            .build()
        {
            Ok(pool) => Some(pool),
            Err(e) => {
                log::error!("cannot start the host's worker threads: {e}");
                None
            }
        }
    })
    .as_ref()
}

/// How many tasks run at once (the `task_threads` service): the pool's threads, at least 1.
pub(crate) fn threads() -> u32 {
    pool().map_or(1, |p| {
        u32::try_from(p.current_num_threads())
            .unwrap_or(u32::MAX)
            .max(1)
    })
}

/// The plugin's `user_data`, passed to its tasks on the pool's threads.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

impl UserData {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    fn get(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the host never dereferences the pointer, it only passes it back to the plugin's task
// function, which the ABI requires to accept it on any thread (`PhTaskFn` is `[thread-safe]`).
unsafe impl Send for UserData {}
// SAFETY: shared only to be copied and passed back, as for `Send` above.
unsafe impl Sync for UserData {}

/// Runs tasks `0..count` of `plugin` (the body of the `run_tasks` service; see its docs in
/// [`plugin_api::abi::PhHostServices::run_tasks`]).
pub(crate) fn run(
    plugin: &Arc<PluginContext>,
    task: PhTaskFn,
    user_data: *mut c_void,
    count: u32,
) -> Result<(), PhResult> {
    if count == 0 {
        return Ok(());
    }
    if !plugin.receives_calls() {
        return Err(PhResult::ShutDown);
    }
    let pool = pool().ok_or(PhResult::HostFailed)?;
    let user_data = UserData(user_data);
    let stopped = AtomicBool::new(false);
    let skipped = AtomicBool::new(false);
    // The failed task with the lowest index, and its code: written on the error path only.
    let failed: Mutex<Option<(u32, PhResult)>> = Mutex::new(None);
    pool.install(|| {
        (0..count).into_par_iter().for_each(|index| {
            if stopped.load(Ordering::Relaxed) {
                return;
            }
            // No call into a plugin that is shutting down, faulted or shut down.
            if !plugin.receives_calls() {
                skipped.store(true, Ordering::Relaxed);
                return;
            }
            // SAFETY: the plugin's own task function with the `user_data` it gave for this call,
            // which it keeps valid until `run_tasks` returns (the ABI's contract); the plugin is
            // active (checked just above) and cannot finish its shutdown before this call
            // returns, because its shutdown waits for the thread inside `run_tasks`.
            let code = PhResult::from_code(unsafe { (task.0)(user_data.get(), index) });
            if code == PhResult::Ok {
                return;
            }
            if code == PhResult::Panicked {
                stopped.store(true, Ordering::Relaxed);
                plugin
                    .shared
                    .fault(plugin, &format!("its task {index} of {count} panicked"));
            }
            let mut failed = failed.lock().unwrap_or_else(|e| e.into_inner());
            let replace = match *failed {
                None => true,
                Some((_, PhResult::Panicked)) => false,
                Some((at, _)) => code == PhResult::Panicked || index < at,
            };
            if replace {
                *failed = Some((index, code));
            }
        });
    });
    let failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    match failed {
        Some((_, PhResult::Panicked)) => Err(PhResult::Panicked),
        _ if skipped.load(Ordering::Relaxed) => Err(PhResult::ShutDown),
        Some((_, code)) => Err(code),
        None => Ok(()),
    }
}
