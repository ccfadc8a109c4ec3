//! Grace periods: waiting until no thread is inside a call that began earlier.
//!
//! One mechanism, used on both sides of the boundary, each copy with its own state (every
//! library that links this crate has its own statics):
//!
//! - **The host** (plughost re-exports this module as its `quiesce`). A plugin's own threads (and
//!   other plugins' threads) call host services at any time, and a service such as `publish` or
//!   `enumerate_commands` calls into plugins. Before the host releases what such a call may be
//!   using (a plugin's data, at shutdown) it marks the plugin as no longer receiving calls and
//!   then waits for a grace period: every thread that was inside a service call when the mark
//!   was made has left it. A call that starts after the mark sees it and does not call the
//!   plugin.
//! - **A plugin's library** (the safe layer). An interface provided on the plugin's own state
//!   ([`Host::provide_state`](crate::Host::provide_state)) is called straight from its callers,
//!   without host code, so the host's grace period does not see those calls. Each call of such
//!   an interface is marked here, in the provider's copy, and the plugin's `shutdown` waits for
//!   a grace period of its own after it hid the state and before it drops it.
//!
//! This is read-copy-update's rule, applied to plugin calls.
//!
//! # Cost on the call path
//!
//! Each thread owns a `Slot` with a counter that is odd while the thread is inside an outermost
//! service call. Entering stores to it and leaving stores to it again: no read-modify-write, no
//! lock, no memory shared with other threads' calls. The ordering between "a thread enters, then
//! reads a plugin's state" and "the host writes the state, then reads the slots" needs a full
//! fence on both sides; [`synchronize`] pays for both with Linux's `membarrier` system call
//! (expedited, private to the process), so that the call path has only a compiler fence. Where
//! `membarrier` is not available (another OS, an old kernel, valgrind), every outermost entry pays
//! a real `SeqCst` fence instead.
//!
//! # Thread-safety
//!
//! [`enter`] may be called on any thread, nested to any depth. [`synchronize`] must not be called
//! on a thread that is inside a service call (it would wait for itself); it returns at once for
//! its own thread's slot.

use std::cell::Cell;
use std::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// One thread's marker: odd while the thread is inside an outermost service call.
struct Slot {
    generation: AtomicU64,
    /// Whether a live thread owns this slot (a slot is reused once its thread has exited).
    owned: AtomicBool,
}

/// Every slot ever made; slots are never freed (a few bytes per thread that ever called).
static SLOTS: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());

/// Whether `membarrier` serves [`synchronize`], so that entries need only a compiler fence.
static ASYMMETRIC: AtomicBool = AtomicBool::new(false);

static INIT: Once = Once::new();

thread_local! {
    /// How deeply this thread is nested in service calls.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// This thread's slot, once it has one.
    static SLOT: Cell<Option<&'static Slot>> = const { Cell::new(None) };
    /// Gives the slot back when the thread exits.
    static OWNER: SlotOwner = const { SlotOwner };
}

/// Releases this thread's slot for reuse when the thread exits.
struct SlotOwner;

impl Drop for SlotOwner {
    fn drop(&mut self) {
        if let Ok(Some(slot)) = SLOT.try_with(Cell::get) {
            // The generation is even: a thread exits outside any call.
            slot.owned.store(false, Ordering::Release);
        }
    }
}

/// Chooses between the asymmetric fence (`membarrier`) and a fence per entry. Called before the
/// first [`enter`] of this copy can happen (by plughost's `PluginHost::new`, and by
/// `Host::provide_state` in a plugin); later calls do nothing.
pub fn init() {
    INIT.call_once(|| ASYMMETRIC.store(membarrier::register(), Ordering::Release));
}

/// A number that identifies the calling thread among the threads alive now (the address of one
/// of its thread-locals): cheaper than [`std::thread::current`].
#[inline]
pub fn thread_id() -> usize {
    DEPTH.with(|d| d as *const Cell<u32> as usize)
}

/// Marks this thread as inside a service call until the returned guard is dropped.
#[inline]
pub fn enter() -> Inside {
    let depth = DEPTH.with(Cell::get);
    DEPTH.with(|d| d.set(depth + 1));
    if depth == 0 {
        let slot = SLOT.with(Cell::get).unwrap_or_else(claim_slot);
        let generation = slot.generation.load(Ordering::Relaxed);
        slot.generation.store(generation + 1, Ordering::Relaxed);
        if ASYMMETRIC.load(Ordering::Relaxed) {
            // `synchronize` runs `membarrier`, which orders this store before any later load on
            // this thread as seen by the host; the compiler must not move them either.
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }
    Inside {
        _not_send: std::marker::PhantomData,
    }
}

/// Whether this thread is inside a service call (or a call of the application into the host
/// that calls plugins): [`synchronize`] would not wait for it.
pub fn inside() -> bool {
    DEPTH.with(Cell::get) > 0
}

/// A thread's stay inside a service call; leaving is dropping it.
pub struct Inside {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Inside {
    #[inline]
    fn drop(&mut self) {
        let depth = DEPTH.with(Cell::get) - 1;
        DEPTH.with(|d| d.set(depth));
        if depth == 0 {
            if let Some(slot) = SLOT.with(Cell::get) {
                let generation = slot.generation.load(Ordering::Relaxed);
                // Release: what the call did happens before the host sees that it left.
                slot.generation.store(generation + 1, Ordering::Release);
            }
        }
    }
}

/// Gives this thread a slot: a free one, or a new one.
#[cold]
fn claim_slot() -> &'static Slot {
    let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    let slot = match slots.iter().find(|s| {
        s.owned
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }) {
        Some(slot) => *slot,
        None => {
            let slot: &'static Slot = Box::leak(Box::new(Slot {
                generation: AtomicU64::new(0),
                owned: AtomicBool::new(true),
            }));
            slots.push(slot);
            slot
        }
    };
    drop(slots);
    SLOT.with(|s| s.set(Some(slot)));
    // Registers the destructor that frees the slot; a thread already exiting keeps it.
    let _ = OWNER.try_with(|_| ());
    slot
}

/// How long [`synchronize`] waits before it warns that a call does not return.
const WARN_AFTER: Duration = Duration::from_secs(2);

/// Waits until every thread that is inside a service call now (other than this one) has left
/// it. Whatever the caller stored before calling this (a plugin's state) is seen by every call
/// that starts afterwards.
pub fn synchronize(why: &dyn std::fmt::Display) {
    init();
    if ASYMMETRIC.load(Ordering::Acquire) {
        fence(Ordering::SeqCst);
        if !membarrier::barrier() {
            // Cannot happen once registered; a fence on this side alone would not be enough, so
            // say so rather than go on unordered.
            log::error!(
                "membarrier failed after registration; waiting for a grace period may miss a call"
            );
        }
    } else {
        fence(Ordering::SeqCst);
    }
    let own = SLOT.with(Cell::get).map(|s| s as *const Slot);
    let busy: Vec<(&'static Slot, u64)> = SLOTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|s| Some(**s as *const Slot) != own)
        .map(|s| (*s, s.generation.load(Ordering::Acquire)))
        .filter(|(_, generation)| generation % 2 == 1)
        .collect();
    let start = Instant::now();
    let mut warned = false;
    for (slot, generation) in busy {
        let mut spins = 0u32;
        while slot.generation.load(Ordering::Acquire) == generation {
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else if spins < 256 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
            if !warned && start.elapsed() > WARN_AFTER {
                warned = true;
                log::warn!(
                    "{why}: waiting for a call on another thread that has not returned for {} s",
                    WARN_AFTER.as_secs()
                );
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod membarrier {
    //! Linux's `membarrier(2)`, expedited and private to this process.

    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    /// Registers the process for expedited barriers; false if the kernel cannot do them.
    pub(super) fn register() -> bool {
        // SAFETY: `membarrier(2)` takes two integer arguments and touches no memory of ours; on a
        // kernel without it the call fails with an error code, which is returned as `false`.
        unsafe { libc::syscall(libc::SYS_membarrier, CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0 }
    }

    /// A full memory barrier on every running thread of this process.
    pub(super) fn barrier() -> bool {
        // SAFETY: `membarrier(2)` with two integer arguments reads and writes no memory of ours;
        // if this process did not register (or the kernel lacks it) it fails with an error code.
        unsafe { libc::syscall(libc::SYS_membarrier, CMD_PRIVATE_EXPEDITED, 0) == 0 }
    }
}

#[cfg(not(target_os = "linux"))]
mod membarrier {
    //! No asymmetric fence here: entries pay a fence of their own.
    pub(super) fn register() -> bool {
        false
    }
    pub(super) fn barrier() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn synchronize_waits_for_a_call_under_way_and_not_for_later_ones() {
        super::init();
        let entered = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let left = Arc::new(AtomicU32::new(0));
        let thread = {
            let (entered, release, left) = (entered.clone(), release.clone(), left.clone());
            std::thread::spawn(move || {
                let inside = super::enter();
                let nested = super::enter();
                entered.store(true, Ordering::SeqCst);
                while !release.load(Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                drop(nested);
                left.store(1, Ordering::SeqCst);
                drop(inside);
            })
        };
        while !entered.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let releaser = {
            let release = release.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                release.store(true, Ordering::SeqCst);
            })
        };
        super::synchronize(&"test");
        // The outermost call had ended, so its nested one had too.
        assert_eq!(left.load(Ordering::SeqCst), 1);
        thread.join().unwrap();
        releaser.join().unwrap();
        // No thread inside: returns at once, also while this thread is inside a call itself.
        let _inside = super::enter();
        super::synchronize(&"test");
    }
}
