//! Private copies of plugin libraries: what [`crate::PluginHost::reload`] (and
//! [`crate::PluginHost::load`] with [`crate::PluginHost::set_private_copies`]) loads instead of the
//! file itself.
//!
//! A library stays mapped for the rest of the process (libraries are never unloaded), and the
//! dynamic loader knows it by its path and its file: loading a rebuilt file at the same path would
//! hand back the library already loaded, and a rebuild written over the mapped file in place
//! would change the code that runs. So the host copies the file into a folder of its own and
//! loads the copy:
//!
//! 1. the file is opened and checked as [`crate::PluginHost::load`] checks it (trust rule for the
//!    file and its folder, regular file, ELF segments inside the file), and copied from that open
//!    file, so the copy is what was checked;
//! 2. the copy goes into a new folder, `plughost-copy-PID-N` in the user's cache folder
//!    (`$XDG_CACHE_HOME/plughost`, `~/.cache/plughost` on Linux; the temporary folder when there is
//!    none), made with mode `0700`, the copy with mode `0700`: they pass the trust rule, and only
//!    the host's user can change them;
//! 3. the copy is checked and loaded ([`crate::loader::open_private`]) under its own name, used
//!    once in the process;
//! 4. the copy stays in its folder while the host that loaded it lives, so that debuggers,
//!    profilers, memory checkers and Rust backtraces can read its symbols and debug information;
//!    dropping the host removes the folders ([`PrivateCopy`]). The library stays mapped, and the
//!    file's data on disk with it, until the process exits. Folders left by a process that died
//!    are removed by the next process that makes a copy.

use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{LoadError, LoadErrorKind};
use crate::loader::{self, Candidate, Pass};

/// Loads a private copy of the library `path`: checks the file as [`loader::open`] does, copies
/// it into a private folder, checks and opens the copy. The candidate names `path` as its file,
/// as if the file itself had been loaded. The copy stays until the returned [`PrivateCopy`] is
/// dropped. `pass` is what the loads of this pass share (see [`Pass`]).
///
/// # Errors
///
/// A [`LoadError`] naming `path` and the first check that failed, on the file or on its copy
/// (or the copy itself failing: a full disk). The copy is removed then.
pub(crate) fn open_copy(
    path: &Path,
    allow_insecure: bool,
    pass: &mut Pass,
) -> Result<(Candidate, PrivateCopy), LoadError> {
    let refuse = |kind| LoadError {
        path: path.to_owned(),
        kind,
    };
    let mut original = loader::check_file(path, allow_insecure, &mut pass.trust).map_err(refuse)?;
    let folder = PrivateCopy::new().map_err(|e| {
        refuse(LoadErrorKind::Open(format!(
            "cannot make a private folder for its copy: {e}"
        )))
    })?;
    let name = path.file_name().unwrap_or(path.as_os_str());
    let copy = folder.path.join(name);
    write_copy(&mut original, &copy).map_err(|e| {
        refuse(LoadErrorKind::Open(format!(
            "cannot copy it to {}: {e}",
            copy.display()
        )))
    })?;
    drop(original);
    let mut candidate = loader::open_private(&copy, allow_insecure)
        .map_err(|kind| refuse(shown_as(kind, &copy, path)))?;
    candidate.info.path = path.to_string_lossy().into_owned();
    candidate.info.file = path.to_owned();
    Ok((candidate, folder))
}

/// Copies the whole of `original` into a new file `copy`, readable, writable and executable by its
/// owner only.
fn write_copy(original: &mut std::fs::File, copy: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o700);
    let mut out = options.open(copy)?;
    original.seek(SeekFrom::Start(0))?;
    std::io::copy(original, &mut out)?;
    Ok(())
}

/// A message about the copy, told about the file: the copy's path replaced by the file's.
fn shown_as(kind: LoadErrorKind, copy: &Path, path: &Path) -> LoadErrorKind {
    let copy = copy.display().to_string();
    let path = path.display().to_string();
    match kind {
        LoadErrorKind::Open(message) => LoadErrorKind::Open(message.replace(&copy, &path)),
        LoadErrorKind::Malformed(message) => {
            LoadErrorKind::Malformed(message.replace(&copy, &path))
        }
        LoadErrorKind::Insecure { reason } => LoadErrorKind::Insecure {
            reason: format!("its private copy {copy}: {reason}"),
        },
        kind => kind,
    }
}

/// The prefix of the private folders' names, followed by the process id and a number.
const FOLDER_PREFIX: &str = "plughost-copy-";

/// A private copy's folder, which only this user can change; removed (with the copy) when
/// dropped. The library loaded from it stays mapped.
pub(crate) struct PrivateCopy {
    path: PathBuf,
}

impl PrivateCopy {
    fn new() -> std::io::Result<PrivateCopy> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static SWEPT: std::sync::Once = std::sync::Once::new();
        let parent = match dirs::cache_dir() {
            Some(cache) => cache.join("plughost"),
            None => std::env::temp_dir(),
        };
        std::fs::create_dir_all(&parent)?;
        SWEPT.call_once(|| sweep(&parent));
        loop {
            let path = parent.join(format!(
                "{FOLDER_PREFIX}{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(&path) {
                Ok(()) => return Ok(PrivateCopy { path }),
                // Left by an earlier process with the same id: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            log::debug!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// Removes the private folders in `parent` of processes that no longer run (they died before
/// their hosts were dropped).
///
/// # Platform-specific behaviour
///
/// Linux only (a process runs if `/proc/PID` exists); elsewhere nothing is removed.
fn sweep(parent: &Path) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(FOLDER_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
