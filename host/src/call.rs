//! Which call into a plugin is under way, for the one place that cannot be told: a process exit
//! handler, when a plugin calls `exit` inside the host's call.
//!
//! [`PluginHost::load`](crate::PluginHost::load) records each plugin's `init`; a front end records
//! what else it wants reported (the `plughost` binary records the command it runs), and its exit
//! handler reads [`current_call`]. Commands run through the library are not recorded: that would
//! cost a lock on every call, and only a front end knows whether it wants it.

use std::sync::Mutex;

/// A call into a plugin that is under way; see [`enter_call`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCall {
    /// The plugin's name.
    pub plugin: String,
    /// What the host called.
    pub kind: CallKind,
}

/// What the host called in a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallKind {
    /// The plugin's `init`.
    Init,
    /// The command of this name.
    Command(String),
}

impl std::fmt::Display for CallKind {
    /// `init`, or ``command `NAME` ``.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallKind::Init => f.write_str("init"),
            CallKind::Command(name) => write!(f, "command `{name}`"),
        }
    }
}

/// The calls under way, oldest first, each with the number of its guard.
static CALLS: Mutex<Vec<(u64, PluginCall)>> = Mutex::new(Vec::new());

/// Records that the host is calling `kind` in `plugin`, until the returned guard is dropped.
///
/// # Thread-safety
///
/// The record is process-wide: calls recorded on several threads at once are all kept, and
/// [`current_call`] returns the latest.
pub fn enter_call(plugin: &str, kind: CallKind) -> CallGuard {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let call = PluginCall {
        plugin: plugin.to_owned(),
        kind,
    };
    CALLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, call));
    CallGuard { id }
}

/// The latest call recorded by [`enter_call`] whose guard is still alive, if any.
///
/// Never blocks, so that an exit handler may call it while the process is in any state: `None`
/// also when another thread is recording a call at this very moment.
pub fn current_call() -> Option<PluginCall> {
    let calls = match CALLS.try_lock() {
        Ok(calls) => calls,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return None,
    };
    calls.last().map(|(_, call)| call.clone())
}

/// Keeps a call recorded by [`enter_call`] until dropped.
#[derive(Debug)]
#[must_use = "the call is recorded only while the guard lives"]
pub struct CallGuard {
    id: u64,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        let mut calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = calls.iter().rposition(|(id, _)| *id == self.id) {
            calls.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_kept_until_their_guards_drop() {
        // Other tests of this crate may record calls at the same time: look only at ours.
        let mine = || -> Vec<String> {
            let calls = CALLS.lock().unwrap_or_else(|e| e.into_inner());
            calls
                .iter()
                .filter(|(_, c)| c.plugin.starts_with("call-test-"))
                .map(|(_, c)| format!("{} {}", c.plugin, c.kind))
                .collect()
        };
        let outer = enter_call("call-test-a", CallKind::Init);
        let inner = enter_call("call-test-b", CallKind::Command("go".into()));
        assert_eq!(mine(), ["call-test-a init", "call-test-b command `go`"]);
        assert!(current_call().is_some());
        drop(outer);
        assert_eq!(mine(), ["call-test-b command `go`"]);
        drop(inner);
        assert!(mine().is_empty());
    }
}
