//! Where `plughost` looks for plugins when neither `--plugins` nor `PLUGHOST_PLUGINS` says.
//!
//! In this order (clap handles the first two, see `main.rs`):
//!
//! 1. `--plugins DIR`;
//! 2. the environment variable `PLUGHOST_PLUGINS`;
//! 3. the folder that holds the `plughost` binary, if it holds at least one plugin candidate (a
//!    file [`plughost::discover`] finds there): that is where cargo puts the plugins it builds
//!    beside `target/PROFILE/plughost`;
//! 4. otherwise the plugins folder in the platform's data folder, [`data_plugins_dir`]
//!    (`$XDG_DATA_HOME/plughost/plugins`, by default `~/.local/share/plughost/plugins`, on
//!    Linux): where an installed `plughost` (`cargo install --path host`, which puts only the
//!    binary in `~/.cargo/bin`) finds plugins.

use std::path::{Path, PathBuf};

use super::escape::quote_path;

/// The plugins folder under the platform's data folder: `plughost/plugins` in
/// [`dirs::data_dir`] (`$XDG_DATA_HOME` or `~/.local/share` on Linux, `~/Library/Application
/// Support` on macOS, `%APPDATA%` on Windows). `None` if the platform has no data folder (no
/// home folder).
pub(crate) fn data_plugins_dir() -> Option<PathBuf> {
    Some(dirs::data_dir()?.join("plughost").join("plugins"))
}

/// The plugins folder when none is given: the binary's own folder if it holds a plugin candidate,
/// otherwise [`data_plugins_dir`].
///
/// # Errors
///
/// One line saying what is missing and what to do: when the binary's folder holds no plugin
/// and the data folder's plugins folder does not exist (or there is no data folder).
pub(crate) fn default_plugins_dir() -> Result<PathBuf, String> {
    let beside = binary_dir()?;
    if plughost::discover(&beside).is_ok_and(|files| !files.is_empty()) {
        return Ok(beside);
    }
    let Some(data) = data_plugins_dir() else {
        return Err(format!(
            "no plugins beside the binary in {} and no data folder (is HOME set?); pass \
             --plugins DIR or set PLUGHOST_PLUGINS",
            quote_path(&beside)
        ));
    };
    if !data.is_dir() {
        return Err(format!(
            "no plugins folder: none beside the binary in {}, and {} does not exist; put plugin \
             libraries there, or pass --plugins DIR or set PLUGHOST_PLUGINS",
            quote_path(&beside),
            quote_path(&data)
        ));
    }
    Ok(data)
}

/// The folder that holds the running binary.
fn binary_dir() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot locate the plughost binary: {e}"))?;
    exe.parent()
        .map(Path::to_owned)
        .ok_or_else(|| "cannot locate the plughost binary's folder; pass --plugins DIR".to_owned())
}
