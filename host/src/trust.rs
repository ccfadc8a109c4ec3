//! Whether a plugin file and its folder can be trusted: the rule ssh applies to `authorized_keys`
//! and sudo to its plugins.
//!
//! A library runs with all the host's rights, so anyone who can change it, or replace it in its
//! folder, can run code as the user running the host. The host therefore refuses a file or folder
//! that is writable by group or others, or owned by a user who is neither the one running the host
//! (the effective user) nor root. A sticky world-writable folder such as `/tmp` is refused too, as
//! ssh refuses it: the owner of a file there can still change it.
//!
//! # Platform-specific behaviour
//!
//! Unix only; elsewhere nothing is checked.

use std::path::{Path, PathBuf};

/// Why the folder `dir` cannot be trusted by the user `me`, such as
/// `its folder /srv/plugins is writable by others (mode 0777)`; `None` if it can. A folder that
/// cannot be examined is left to the file's own checks (opening the file will fail too).
#[cfg(unix)]
fn distrust_folder(dir: &Path, me: u32) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(dir).ok()?;
    distrust(metadata.mode(), metadata.uid(), me)
        .map(|why| format!("its folder {} is {why}", dir.display()))
}

/// What the trust rule learns during one pass, such as one [`crate::PluginHost::load_dir`], so
/// that it learns it once rather than once per file: who runs the host (the effective user), and
/// the verdict on each folder met (a `stat` of its path saved per file).
///
/// A verdict cannot go stale by the hand of someone the rule distrusts: a folder that passes is
/// owned by the user running the host or by root, and only they can change its mode or owner.
/// A pass takes as long as loading its files; a new pass examines the folders again.
#[derive(Debug, Default)]
pub(crate) struct TrustPass {
    /// The effective user, once read.
    #[cfg_attr(not(unix), allow(dead_code))]
    me: Option<u32>,
    /// Each folder examined in this pass, with the verdict.
    #[cfg_attr(not(unix), allow(dead_code))]
    folders: Vec<(PathBuf, Option<String>)>,
}

#[cfg(unix)]
impl TrustPass {
    /// The effective user, read the first time this pass needs it.
    fn me(&mut self) -> u32 {
        // SAFETY: `geteuid(2)` takes no arguments, touches no memory and always succeeds.
        *self.me.get_or_insert_with(|| unsafe { libc::geteuid() })
    }

    /// Why the folder `dir` cannot be trusted, such as
    /// `its folder /srv/plugins is writable by others (mode 0777)`; `None` if it can. Examined
    /// only the first time this pass meets it.
    pub(crate) fn distrust_folder(&mut self, dir: &Path) -> Option<String> {
        if let Some((_, verdict)) = self.folders.iter().find(|(seen, _)| seen.as_path() == dir) {
            return verdict.clone();
        }
        let verdict = distrust_folder(dir, self.me());
        self.folders.push((dir.to_owned(), verdict.clone()));
        verdict
    }

    /// Why the file whose metadata is `metadata` cannot be trusted, such as
    /// `writable by others (mode 0666)`; `None` if it can.
    pub(crate) fn distrust_file(&mut self, metadata: &std::fs::Metadata) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        distrust(metadata.mode(), metadata.uid(), self.me())
    }
}

/// The folder that holds `file` as the host names it: its parent, or `.` for a bare file name.
/// For a symbolic link this is the link's folder, the one the plugins folder is.
pub(crate) fn folder_of(file: &Path) -> &Path {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The rule, on a mode and an owner, for the user `me`.
#[cfg(unix)]
fn distrust(mode: u32, owner: u32, me: u32) -> Option<String> {
    let shown = mode & 0o7777;
    if mode & 0o002 != 0 {
        return Some(format!("writable by others (mode {shown:04o})"));
    }
    if mode & 0o020 != 0 {
        return Some(format!("writable by group (mode {shown:04o})"));
    }
    if owner != me && owner != 0 {
        return Some(format!(
            "owned by uid {owner}, neither the user running the host (uid {me}) nor root"
        ));
    }
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        // SAFETY: `geteuid(2)` takes no arguments, touches no memory and always succeeds.
        let me = unsafe { libc::geteuid() };
        for (mode, owner, expected) in [
            (0o100644, me, None),
            (0o100755, 0, None),
            (0o100600, me, None),
            (0o100666, me, Some("writable by others (mode 0666)")),
            (0o100664, me, Some("writable by group (mode 0664)")),
            (0o041777, 0, Some("writable by others (mode 1777)")),
            (0o040775, 0, Some("writable by group (mode 0775)")),
        ] {
            assert_eq!(distrust(mode, owner, me).as_deref(), expected, "{mode:o}");
        }
        let stranger = if me == 65534 { 65533 } else { 65534 };
        assert_eq!(
            distrust(0o100644, stranger, me),
            Some(format!(
                "owned by uid {stranger}, neither the user running the host (uid {me}) nor root"
            ))
        );
        assert_eq!(folder_of(Path::new("libx.so")), Path::new("."));
        assert_eq!(folder_of(Path::new("a/libx.so")), Path::new("a"));
    }

    #[test]
    fn a_pass_examines_each_folder_once() {
        use std::os::unix::fs::PermissionsExt;
        let chmod = |dir: &Path, mode: u32| {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut pass = TrustPass::default();
        assert_eq!(pass.distrust_folder(dir.path()), None);
        chmod(dir.path(), 0o777);
        // This pass keeps its verdict; a new one examines the folder again.
        assert_eq!(pass.distrust_folder(dir.path()), None);
        let insecure = format!(
            "its folder {} is writable by others (mode 0777)",
            dir.path().display()
        );
        let mut next = TrustPass::default();
        assert_eq!(next.distrust_folder(dir.path()), Some(insecure.clone()));
        chmod(dir.path(), 0o700);
        assert_eq!(next.distrust_folder(dir.path()), Some(insecure));
        // Each folder has its own verdict.
        chmod(other.path(), 0o770);
        assert_eq!(
            pass.distrust_folder(other.path()),
            Some(format!(
                "its folder {} is writable by group (mode 0770)",
                other.path().display()
            ))
        );
        assert_eq!(pass.distrust_folder(dir.path()), None);
    }
}
