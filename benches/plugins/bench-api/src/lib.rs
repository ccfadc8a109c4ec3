//! The interfaces of `plughost-bench`'s `interface-call` figures, shared by the bench binary
//! (the application) and the bench plugin, and the trivial function behind both.
//!
//! - `bench.plugin-counter` 1 ([`PluginCounter`]): the bench plugin provides it, the application
//!   calls it (host→plugin).
//! - `bench.host-counter` 1 ([`HostCounter`]): the application provides it, the bench plugin
//!   calls it (plugin→host).
//!
//! Both are one method, `bump(by)`, implemented by [`Counter`]: a relaxed load and store of a
//! counter, returning the new value. Each side's limit calls the same [`Counter::bump`] directly,
//! inside a panic guard.
#![deny(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use plugin_api::Error;

/// `bench.plugin-counter` 1: provided by the bench plugin.
#[plugin_api::interface(id = "bench.plugin-counter", version = 1)]
pub trait PluginCounter {
    /// Adds `by` to the counter; its new value.
    fn bump(&self, by: u64) -> Result<u64, Error>;
}

/// `bench.host-counter` 1: provided by the application.
#[plugin_api::interface(id = "bench.host-counter", version = 1)]
pub trait HostCounter {
    /// Adds `by` to the counter; its new value.
    fn bump(&self, by: u64) -> Result<u64, Error>;
}

/// The trivial function behind both interfaces.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `by` (one relaxed load and store); the new value.
    ///
    /// Inlinable, as a provider's small method is: the interface's adapter for `Counter` is
    /// monomorphised in the provider's crate, and the optimiser may inline the method into it
    /// (and, seeing that it cannot unwind, drop the adapter's guard), as it does in
    /// [`bump_unguarded`]. The limits call it through a `black_box`ed function pointer, so they
    /// stay one call, inside a guard.
    #[inline]
    pub fn bump(&self, by: u64) -> Result<u64, Error> {
        let value = self.0.load(Ordering::Relaxed) + by;
        self.0.store(value, Ordering::Relaxed);
        Ok(value)
    }

    /// The counter's value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl PluginCounter for Counter {
    // Inlinable into the provider's crate (the bench plugin, the bench binary), as an
    // implementation written there would be.
    #[inline]
    fn bump(&self, by: u64) -> Result<u64, Error> {
        Counter::bump(self, by)
    }
}

impl HostCounter for Counter {
    // Inlinable into the provider's crate (the bench plugin, the bench binary), as an
    // implementation written there would be.
    #[inline]
    fn bump(&self, by: u64) -> Result<u64, Error> {
        Counter::bump(self, by)
    }
}

/// `f` inside a panic guard, as the safe layer's boundary has one: `None` if it panicked.
#[inline(always)]
pub fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// The limit of `interface-call`: [`Counter::bump`] called directly inside a panic guard;
/// whether it succeeded. The function's address goes through `black_box`, as the other call
/// figures' limits do: where the optimiser sees the callee, it proves that `bump` cannot unwind
/// and drops the guard (see [`bump_unguarded`]), and the limit would not be a guarded call.
#[inline(always)]
pub fn bump_guarded(counter: &Counter, by: u64) -> bool {
    let bump: fn(&Counter, u64) -> Result<u64, Error> = black_box(Counter::bump);
    matches!(guarded(|| bump(counter, by)), Some(Ok(_)))
}

/// [`Counter::bump`] called directly, its address known to the optimiser (which then drops a
/// panic guard around it): for the record.
#[inline(always)]
pub fn bump_unguarded(counter: &Counter, by: u64) -> bool {
    black_box(counter).bump(by).is_ok()
}
