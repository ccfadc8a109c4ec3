//! `plughost shell --watch`: watches the plugins folder and follows what happens to its libraries.
//! A changed library is reloaded ([`PluginHost::reload`]), a new one loaded, a removed one
//! unloaded, each reported in one line.
//!
//! Builds write files in steps (a linker writes its output piece by piece, cargo then links it
//! into place), so changes are debounced: the watcher acts once nothing has changed in the folder
//! for [`QUIET`]. A library whose file is the same as when it was last loaded (same device,
//! inode, size, modification time and mode) is left alone, so that touching the folder reloads
//! nothing. A build caught half written fails to load and the old version keeps serving; the
//! rest of the write changes the file again, and the next attempt loads it.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use plughost::PluginHost;

use super::display;
use super::escape::{escape, quote_path};
use super::shell::{reload_failed, reloaded_line};

/// How long the folder must stay unchanged before the watcher acts.
pub(crate) const QUIET: Duration = Duration::from_millis(300);

/// Where the watcher's lines go: above the prompt on a terminal, to standard error otherwise.
pub(crate) type Report = Box<dyn FnMut(String) + Send>;

/// A running watcher; dropping it stops the watch and waits for the thread that acts on it.
pub(crate) struct Watch {
    watcher: Option<notify::RecommendedWatcher>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        // Dropping the watcher closes the channel, which ends the thread.
        drop(self.watcher.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts watching `folder` for `host`.
pub(crate) fn start(
    host: Arc<RwLock<PluginHost>>,
    folder: &Path,
    report: Report,
) -> Result<Watch, String> {
    let (sender, events) = channel();
    let mut watcher = notify::recommended_watcher(sender)
        .map_err(|e| format!("cannot watch {}: {e}", quote_path(folder)))?;
    watcher
        .watch(folder, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", quote_path(folder)))?;
    let mut state = State {
        host,
        report,
        folder: folder.to_owned(),
        seen: HashMap::new(),
    };
    // What is loaded now is the starting point: only changes from here on count.
    let plugins = state.read().plugins();
    for plugin in plugins {
        if let Some(name) = plugin.path.file_name() {
            state
                .seen
                .insert(name.to_owned(), Fingerprint::of(&plugin.path));
        }
    }
    let thread = std::thread::Builder::new()
        .name("plughost-watch".into())
        .spawn(move || state.run(&events))
        .map_err(|e| format!("cannot start the watcher: {e}"))?;
    Ok(Watch {
        watcher: Some(watcher),
        thread: Some(thread),
    })
}

/// What the watcher knows of a library file, to tell a new build from the same file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(Option<(u64, u64, u64, i64, i64, u32)>);

impl Fingerprint {
    fn of(path: &Path) -> Fingerprint {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Fingerprint(std::fs::metadata(path).ok().map(|m| {
                (
                    m.dev(),
                    m.ino(),
                    m.size(),
                    m.mtime(),
                    m.mtime_nsec(),
                    m.mode(),
                )
            }))
        }
        #[cfg(not(unix))]
        {
            Fingerprint(std::fs::metadata(path).ok().map(|m| {
                let modified = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .unwrap_or_default();
                (
                    0,
                    0,
                    m.len(),
                    modified.as_secs() as i64,
                    i64::from(modified.subsec_nanos()),
                    0,
                )
            }))
        }
    }
}

/// The watcher thread's state.
struct State {
    host: Arc<RwLock<PluginHost>>,
    report: Report,
    /// The plugins folder, as given: a library is named as `load_dir` names it, `FOLDER/FILE`.
    folder: PathBuf,
    /// The fingerprint of each library file (by file name) when it was last tried.
    seen: HashMap<OsString, Fingerprint>,
}

impl State {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, PluginHost> {
        self.host.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Acts on the changes, debounced, until the watcher is dropped.
    fn run(&mut self, events: &Receiver<notify::Result<notify::Event>>) {
        loop {
            let mut changed = BTreeSet::new();
            match events.recv() {
                Ok(event) => collect(event, &mut changed),
                Err(_) => return,
            }
            loop {
                match events.recv_timeout(QUIET) {
                    Ok(event) => collect(event, &mut changed),
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            for path in changed {
                self.follow(&path);
            }
        }
    }

    /// Brings the host in line with the library file `path`.
    fn follow(&mut self, path: &Path) {
        let Some(file_name) = path.file_name() else {
            return;
        };
        let path = &self.folder.join(file_name);
        let fingerprint = Fingerprint::of(path);
        if self.seen.get(file_name) == Some(&fingerprint) {
            return;
        }
        self.seen.insert(file_name.to_owned(), fingerprint.clone());
        let loaded = self
            .read()
            .plugins()
            .into_iter()
            .find(|p| p.path.file_name() == Some(file_name))
            .map(|p| p.name);
        let line = match (fingerprint.0.is_some(), loaded) {
            (true, Some(name)) => match self.read().reload(&name) {
                Ok(reloaded) => reloaded_line(&reloaded),
                Err(e) => reload_failed(&name, &e),
            },
            (true, None) => {
                let mut host = self.host.write().unwrap_or_else(|e| e.into_inner());
                match host.load(path) {
                    Ok(name) => {
                        let version = host
                            .plugins()
                            .into_iter()
                            .find(|p| p.name == name)
                            .map(|p| p.version)
                            .unwrap_or_default();
                        format!(
                            "loaded {} {} from {}",
                            escape(&name),
                            escape(&version),
                            quote_path(path)
                        )
                    }
                    Err(e) => format!("refused {}", display::refusal(&e)),
                }
            }
            (false, Some(name)) => match self.read().unload(&name) {
                Ok(()) => format!(
                    "unloaded {} ({} was removed)",
                    escape(&name),
                    quote_path(path)
                ),
                Err(e) => escape(&e.to_string()).to_string(),
            },
            (false, None) => return,
        };
        (self.report)(format!("watch: {line}"));
    }
}

/// Adds the library files that `event` changed to `changed`. Reads and opens (the host's own,
/// when it copies a library) are not changes.
fn collect(event: notify::Result<notify::Event>, changed: &mut BTreeSet<PathBuf>) {
    let Ok(event) = event else {
        return;
    };
    let relevant = match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any | EventKind::Other => true,
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Metadata(_)) => {
            true
        }
        EventKind::Modify(ModifyKind::Any | ModifyKind::Other) => true,
        EventKind::Access(_) => false,
    };
    if !relevant {
        return;
    }
    for path in event.paths {
        let library = path.extension() == Some(OsStr::new(std::env::consts::DLL_EXTENSION));
        let hidden = path
            .file_name()
            .and_then(OsStr::to_str)
            .is_some_and(|n| n.starts_with('.'));
        if library && !hidden {
            changed.insert(path);
        }
    }
}
