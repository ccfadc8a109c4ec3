//! Finding, opening and checking plugin libraries, before any plugin code but the entry point runs.

use std::ffi::{c_void, OsStr};
use std::path::{Path, PathBuf};
use std::time::Duration;
#[cfg(not(target_os = "linux"))]
use std::time::Instant;

use abi_stable::library::{AbiHeaderRef, LibraryError, RootModule};
use plugin_api::abi::{
    is_valid_name, PhEntryPoint, PhInterfaceVersion, PhPluginDescriptor, PhPluginVtable, PhStr,
    PH_ABI_VERSION_MAJOR, PH_ABI_VERSION_MINOR, PH_ENTRY_POINT_SYMBOL, PH_INTERFACE_OPTIONAL,
    PH_MAX_DESCRIPTION_LEN, PH_MAX_INTERFACES, PH_MAX_NAME_LEN, PH_MAX_VERSION_LEN,
};
use plugin_api::layout::{PluginModuleRef, ROOT_MODULE_SYMBOL};

use crate::error::{DiscoverError, LoadError, LoadErrorKind};
use crate::trust::TrustPass;

/// The base name of the host's own C library (the `plughost-capi` package): its file is
/// `libplughost_host.so` on Linux, `libplughost_host.dylib` on macOS, `plughost_host.dll` on
/// Windows. It is no plugin, and cargo builds it into the folder that holds the `plughost` binary
/// and the plugins, so [`discover`] skips a file of that name.
pub const C_LIBRARY_NAME: &str = "plughost_host";

/// The base names of the libraries that cargo builds beside the `plughost` binary and that are no
/// plugins, which [`discover`] skips: the host's C library ([`C_LIBRARY_NAME`]) and the procedural
/// macros of `plugin-api` (the package `plugin-api-macros`, a library the compiler loads). So
/// `cargo build --workspace` leaves no library in `target/PROFILE` that `plughost list` would
/// show as refused.
const NOT_PLUGINS: &[&str] = &[C_LIBRARY_NAME, "plugin_api_macros"];

/// The files in `dir` named like shared libraries of this platform (`.so`, `.dylib`, `.dll`),
/// sorted by file name so that load order is stable; except the libraries of this workspace that
/// are no plugins (the host's own C library, see [`C_LIBRARY_NAME`], and `plugin-api`'s procedural
/// macros).
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, DiscoverError> {
    let error = |source| DiscoverError {
        path: dir.to_owned(),
        source,
    };
    let not_plugins: Vec<String> = NOT_PLUGINS
        .iter()
        .map(|base| {
            format!(
                "{}{base}{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            )
        })
        .collect();
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let path = entry.map_err(error)?.path();
        if path.extension() == Some(OsStr::new(std::env::consts::DLL_EXTENSION))
            && !not_plugins
                .iter()
                .any(|name| path.file_name() == Some(OsStr::new(name)))
        {
            paths.push(path);
        }
    }
    // All in `dir`: sorting the whole paths as bytes sorts them by file name, and is cheaper than
    // comparing them component by component.
    paths.sort_unstable_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(paths)
}

/// Whether the library carried abi_stable's type layout and passed its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutCheck {
    /// The layout matched the host's.
    Passed,
    /// The library carries no layout data (a plugin written in C): only the ABI version and the
    /// table sizes were checked.
    NotCarried,
    /// The plugin is linked into the application ([`crate::PluginHost::load_static`]): the
    /// compiler checked its types against the same ABI definitions, so there is nothing to check.
    Linked,
}

/// An interface a plugin declares it provides or requires (ABI 1.3), as its descriptor says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceVersion {
    /// The interface's id, such as `plughost.kv`.
    pub id: String,
    /// Its major version.
    pub major: u16,
    /// The minor provided, or the minimum minor required.
    pub minor: u16,
    /// For a requirement: whether the plugin loads without it.
    pub optional: bool,
}

impl std::fmt::Display for InterfaceVersion {
    /// `plughost.kv 1.0`, and ` (optional)` for an optional requirement.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}.{}", self.id, self.major, self.minor)?;
        if self.optional {
            f.write_str(" (optional)")?;
        }
        Ok(())
    }
}

/// What the descriptor says, read and validated.
#[derive(Debug, Clone)]
pub(crate) struct DescriptorInfo {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) path: String,
    /// The file as given, for what the host shows of it (`path` is its lossy UTF-8 form, which
    /// plugins see).
    pub(crate) file: PathBuf,
    pub(crate) abi_version: (u16, u16),
    /// The interfaces it declares it provides (ABI 1.3).
    pub(crate) provides: Vec<InterfaceVersion>,
    /// The interfaces it declares it requires (ABI 1.3).
    pub(crate) requires: Vec<InterfaceVersion>,
}

/// An opened and checked plugin library, not yet initialised.
pub(crate) struct Candidate {
    /// The plugin's function table, copied (zero-extended for a plugin of an older minor).
    pub(crate) vtable: PhPluginVtable,
    pub(crate) info: DescriptorInfo,
    pub(crate) layout: LayoutCheck,
}

/// Whether the function `function` of a plugin's function table (`init`, `shutdown`,
/// `enumerate_commands`, `save_state`, `restore_state`) may be NULL in a plugin built for ABI
/// 1.`abi_minor`: from ABI 1.2 on the host keeps the text of commands itself, so
/// `enumerate_commands` is optional; state handoff (1.4) is optional; `init` and `shutdown` are
/// required.
#[must_use]
pub fn is_optional_function(function: &str, abi_minor: u16) -> bool {
    match function {
        "enumerate_commands" => abi_minor >= 2,
        "save_state" | "restore_state" => true,
        _ => false,
    }
}

/// What the host learned about a library before calling any of its plugin functions but the entry
/// point: the result of each check, in order, up to the first that failed. See [`inspect`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Inspection {
    /// The dynamic loader opened the file.
    pub opened: bool,
    /// The library exports the entry point.
    pub entry_point: bool,
    /// The ABI version the descriptor declares: (major, minor).
    pub abi_version: Option<(u16, u16)>,
    /// The descriptor's `struct_size`.
    pub descriptor_size: Option<u32>,
    /// The outcome of abi_stable's type-layout check (`None` if it did not run).
    pub layout: Option<LayoutCheck>,
    /// The function table's `struct_size`.
    pub vtable_size: Option<u32>,
    /// Whether each function of the table is present.
    pub functions: Vec<(&'static str, bool)>,
    /// The plugin name, version and description, once read.
    pub name: Option<String>,
    /// The plugin's version.
    pub version: Option<String>,
    /// The plugin's description.
    pub description: Option<String>,
    /// The interfaces the descriptor says the plugin provides (ABI 1.3).
    pub provides: Vec<InterfaceVersion>,
    /// The interfaces the descriptor says the plugin requires (ABI 1.3).
    pub requires: Vec<InterfaceVersion>,
}

/// Opens `path` and runs every check the host makes before `init`, recording what it found.
/// Returns the inspection and the first failed check, if any.
///
/// The file and its folder must pass the host's trust rule (see
/// [`crate::PluginHost::set_allow_insecure`]); [`inspect_with`] can waive it.
///
/// Opening a library runs its initialisers; the library stays loaded for the rest of the
/// process (see [`crate::PluginHost::load`]).
pub fn inspect(path: &Path) -> (Inspection, Option<LoadError>) {
    inspect_with(path, false)
}

/// [`inspect`], loading files and folders that fail the trust rule if `allow_insecure` is true
/// (as [`crate::PluginHost::set_allow_insecure`] does for loading).
pub fn inspect_with(path: &Path, allow_insecure: bool) -> (Inspection, Option<LoadError>) {
    let mut inspection = Inspection::default();
    let error = check(
        path,
        allow_insecure,
        &mut Pass::default(),
        Via::Descriptor,
        Some(&mut inspection),
    )
    .err()
    .map(|kind| LoadError {
        path: path.to_owned(),
        kind,
    });
    (inspection, error)
}

/// How long an entry point, a library's initialisers or a plugin's `init` may take before the
/// host logs a warning naming the plugin: 2 seconds. The host cannot interrupt a plugin's code
/// in its own process, so it can only say which plugin made it wait.
pub const SLOW_CALL: Duration = Duration::from_secs(2);

/// A reading of the clock that times calls for [`warn_if_slow`].
///
/// On Linux the coarse monotonic clock (`CLOCK_MONOTONIC_COARSE`): its resolution is the kernel's
/// tick, a few milliseconds, plenty to tell a call past [`SLOW_CALL`], and it is read without the
/// time stamp counter. Loading a plugin reads it five times, mostly right after the dynamic
/// loader or the plugin ran, when the clock's code and data are no longer in the caches; with
/// the precise clock that was about half a microsecond per plugin loaded (`load-100`, 2% of
/// what plain `dlopen` takes). Elsewhere [`Instant`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp(
    #[cfg(target_os = "linux")] Duration,
    #[cfg(not(target_os = "linux"))] Instant,
);

impl Stamp {
    /// Now.
    pub(crate) fn now() -> Stamp {
        #[cfg(target_os = "linux")]
        {
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `now` is a writable `timespec`; the call only writes it. (It cannot fail:
            // the clock exists since Linux 2.6.32; were it to, `now` stays 0 and nothing is
            // reported as slow.)
            unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
            Stamp(Duration::new(
                u64::try_from(now.tv_sec).unwrap_or(0),
                u32::try_from(now.tv_nsec).unwrap_or(0),
            ))
        }
        #[cfg(not(target_os = "linux"))]
        Stamp(Instant::now())
    }

    /// The time from `earlier` to this reading (zero if `earlier` is later).
    fn since(self, earlier: Stamp) -> Duration {
        #[cfg(target_os = "linux")]
        return self.0.saturating_sub(earlier.0);
        #[cfg(not(target_os = "linux"))]
        return self.0.saturating_duration_since(earlier.0);
    }
}

/// Logs a warning if more than [`SLOW_CALL`] passed since `started`: `what` (such as
/// ``plugin `x`: init``) took so long. Returns the time it read, now, which a next step can
/// take as its start.
pub(crate) fn warn_if_slow(started: Stamp, what: impl FnOnce() -> String) -> Stamp {
    let now = Stamp::now();
    let took = now.since(started);
    if took > SLOW_CALL {
        log::warn!(
            "{} took {:.1} s, more than {} s; the host cannot interrupt a plugin while it waits",
            what(),
            took.as_secs_f64(),
            SLOW_CALL.as_secs_f64()
        );
    }
    now
}

/// Opens `path` and checks it: who can change the file and its folder (unless `allow_insecure`),
/// entry point, ABI version, type layout, table sizes, required functions, name, the lengths of
/// the version and description. Runs only the
/// library's initialisers, its entry point and (for Rust plugins) abi_stable's root-module
/// constructor.
///
/// The library stays loaded for the rest of the process, whatever the outcome: unloading code that
/// may have registered thread-local destructors is not safe, and abi_stable never unloads either.
///
/// `pass` is what the loads of this pass share (see [`Pass`]).
pub(crate) fn open(
    path: &Path,
    allow_insecure: bool,
    pass: &mut Pass,
) -> Result<Candidate, LoadError> {
    check(path, allow_insecure, pass, Via::Descriptor, None).map_err(|kind| LoadError {
        path: path.to_owned(),
        kind,
    })
}

/// [`open`] for a private copy that the host made in a folder of its own ([`crate::copy`]):
/// the same checks, but the dynamic loader opens the file by its path, which is never used
/// again in this process, so no descriptor needs to stay open (see [`open_library`]).
pub(crate) fn open_private(path: &Path, allow_insecure: bool) -> Result<Candidate, LoadErrorKind> {
    // Each copy has a folder of its own: a pass of its own.
    check(path, allow_insecure, &mut Pass::default(), Via::Path, None)
}

/// What the loads of one pass share: [`crate::PluginHost::load_dir`] loads the libraries of a
/// folder in one pass; any other load is a pass of its own. The pass ends when this is dropped.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    /// What the trust rule learned in this pass.
    pub(crate) trust: TrustPass,
    /// A symbol lookup found nothing, and the dynamic loader's message about it was not read:
    /// see [`LoadedLibrary::symbol`].
    unread_message: bool,
}

impl Drop for Pass {
    /// Reads (and so discards) the dynamic loader's message about a missing symbol, if a lookup of
    /// this pass left one: nobody sees it later from `dlerror`.
    fn drop(&mut self) {
        #[cfg(unix)]
        if self.unread_message {
            // SAFETY: `dlerror(3)` takes no arguments; the message it returns is not used.
            let _ = unsafe { libc::dlerror() };
        }
    }
}

/// How the dynamic loader opens a checked file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// Through the open file that was checked (on Linux): nobody can swap the file in between.
    Descriptor,
    /// By its path: only for the host's private copies, in a folder that only the host's user
    /// can change, each copy under a name used once.
    Path,
}

/// The checks of [`open`], recording what they find in `seen` if given.
fn check(
    path: &Path,
    allow_insecure: bool,
    pass: &mut Pass,
    via: Via,
    mut seen: Option<&mut Inspection>,
) -> Result<Candidate, LoadErrorKind> {
    let file = check_file(path, allow_insecure, &mut pass.trust)?;
    let started = Stamp::now();
    // Never closed, whatever happens next: see `open`.
    let library = open_library(path, file, via)?;
    let opened = warn_if_slow(started, || {
        format!("library {}: its initialisers", path.display())
    });
    note(&mut seen, |seen| seen.opened = true);

    let entry = library
        .symbol(&ENTRY_POINT_SYMBOL, pass)
        .ok_or(LoadErrorKind::NoEntryPoint {
            symbol: PH_ENTRY_POINT_SYMBOL,
        })?;
    // SAFETY: the ABI defines the entry point's type as `PhEntryPoint`, a function pointer (as
    // large as the address); a library that exports the symbol with another type breaks the
    // ABI's contract, which no check can detect. The function stays valid because `library` is
    // never closed.
    let entry = PhEntryPoint(unsafe {
        std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> *const PhPluginDescriptor>(
            entry.as_ptr(),
        )
    });
    note(&mut seen, |seen| seen.entry_point = true);
    // The symbol lookup since the library opened is part of what this times: one clock read less.
    let started = opened;
    // SAFETY: the entry point is code of a library that stays loaded (`library` is never
    // closed); the ABI defines it as taking no arguments, returning a pointer and calling nothing
    // of the host, so there is no precondition of ours to meet. Running it means trusting the
    // plugin's code, as opening the library already did.
    let descriptor = unsafe { (entry.0)() };
    warn_if_slow(started, || {
        format!("library {}: the entry point", path.display())
    });
    // SAFETY: what the entry point returns is NULL or the library's descriptor, which stays
    // mapped with its tables and strings (the library is never closed).
    unsafe {
        check_descriptor(descriptor, path, seen, |minor| {
            check_layout(&library, minor, pass)
        })
    }
}

/// Checks a descriptor (from a library's entry point, or linked into the application): ABI
/// version, the type layout (`layout`, given the plugin's ABI minor), table sizes, required
/// functions, name, the lengths of the version and description, recording what it finds in
/// `seen` if given (the host's own loads want no record: it costs a copy of each string).
///
/// `path` is what the host shows as the plugin's file.
///
/// # Safety
///
/// `descriptor` is NULL or points to a descriptor of any ABI version, readable for its first
/// three fields and then for as many bytes as its `struct_size` says; its function table and
/// strings, if not NULL, stay valid for the rest of the process (only what their sizes cover is
/// read).
pub(crate) unsafe fn check_descriptor(
    descriptor: *const PhPluginDescriptor,
    path: &Path,
    mut seen: Option<&mut Inspection>,
    layout: impl FnOnce(u16) -> Result<LayoutCheck, LoadErrorKind>,
) -> Result<Candidate, LoadErrorKind> {
    if descriptor.is_null() {
        return Err(LoadErrorKind::NoDescriptor);
    }
    // SAFETY: non-null, so readable for at least its first three fields (the caller's contract),
    // which every ABI version's descriptor has at the same place; reading them through
    // `addr_of!` makes no reference to the rest, whose size is not checked yet.
    let (major, minor, struct_size) = unsafe {
        (
            std::ptr::addr_of!((*descriptor).abi_major).read(),
            std::ptr::addr_of!((*descriptor).abi_minor).read(),
            std::ptr::addr_of!((*descriptor).struct_size).read(),
        )
    };
    note(&mut seen, |seen| {
        seen.abi_version = Some((major, minor));
        seen.descriptor_size = Some(struct_size);
    });
    if major != PH_ABI_VERSION_MAJOR || minor > PH_ABI_VERSION_MINOR {
        return Err(LoadErrorKind::AbiVersion {
            major,
            minor,
            host_major: PH_ABI_VERSION_MAJOR,
            host_minor: PH_ABI_VERSION_MINOR,
        });
    }
    let layout = layout(minor)?;
    note(&mut seen, |seen| seen.layout = Some(layout));
    let (descriptor_needed, vtable_needed) = table_sizes(minor);
    check_size("the descriptor", struct_size, descriptor_needed)?;
    // A descriptor of an older minor is shorter: copy what it has into a zeroed one of this
    // version (the fields it lacks read as zero: no interfaces).
    let copied = (struct_size as usize).min(std::mem::size_of::<PhPluginDescriptor>());
    // SAFETY: every field of `PhPluginDescriptor` is an integer, a raw pointer or a `PhStr` (a
    // pointer and a length), for which all-zero bytes are a valid value.
    let mut d: PhPluginDescriptor = unsafe { std::mem::zeroed() };
    // SAFETY: the source is readable for `struct_size` bytes (the caller's contract) and
    // `copied` is at most that and at most the destination's size; the two do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            descriptor.cast::<u8>(),
            std::ptr::addr_of_mut!(d).cast::<u8>(),
            copied,
        );
    }
    let d = &d;
    if d.vtable.is_null() {
        return Err(LoadErrorKind::MissingFunction("vtable"));
    }
    // SAFETY: `d.vtable` is non-null (checked above) and, by the ABI, points to the plugin's
    // function table, valid while the library is loaded; its first field, `struct_size`, exists
    // in every version, so reading it alone (through `addr_of!`) stays inside the table.
    let vtable_size = unsafe { std::ptr::addr_of!((*d.vtable).struct_size).read() };
    note(&mut seen, |seen| seen.vtable_size = Some(vtable_size));
    check_size("the function table", vtable_size, vtable_needed)?;
    // A function table of an older minor is shorter too: copied into a zeroed one of this version
    // (the functions it lacks read as NULL, absent).
    // SAFETY: every field of `PhPluginVtable` is a `u32` or an optional function pointer, for
    // which all-zero bytes are a valid value (0, or `None`).
    let mut vtable: PhPluginVtable = unsafe { std::mem::zeroed() };
    // SAFETY: the source is the plugin's table, non-null and readable for its `struct_size` bytes
    // while the library is loaded (the ABI's rule); `vtable_size as usize` capped at the
    // destination's size is at most both; the two do not overlap (one is on this stack).
    unsafe {
        std::ptr::copy_nonoverlapping(
            d.vtable.cast::<u8>(),
            std::ptr::addr_of_mut!(vtable).cast::<u8>(),
            (vtable_size as usize).min(std::mem::size_of::<PhPluginVtable>()),
        );
    }
    let functions = [
        ("init", vtable.init.is_some()),
        ("shutdown", vtable.shutdown.is_some()),
        ("enumerate_commands", vtable.enumerate_commands.is_some()),
        ("save_state", vtable.save_state.is_some()),
        ("restore_state", vtable.restore_state.is_some()),
    ];
    note(&mut seen, |seen| seen.functions = functions.to_vec());
    if let Some((missing, _)) = functions
        .iter()
        .find(|(function, present)| !present && !is_optional_function(function, minor))
    {
        return Err(LoadErrorKind::MissingFunction(missing));
    }

    // SAFETY: the descriptor's strings stay valid and unchanged for the rest of the process (the
    // caller's contract): `d.name` meets `descriptor_str`'s contract for as long as `name` is
    // used.
    let name = unsafe { descriptor_str("name", d.name) }?;
    note(&mut seen, |seen| seen.name = Some(name.to_owned()));
    check_name(name)?;
    // SAFETY: `d.version` is a string of the descriptor, which the ABI keeps valid and unchanged
    // while the library is loaded, and the library is never closed.
    let version = unsafe { descriptor_str("version", d.version) }?;
    note(&mut seen, |seen| seen.version = Some(version.to_owned()));
    check_len("version", version, PH_MAX_VERSION_LEN)?;
    // SAFETY: `d.description` is a string of the descriptor, which the ABI keeps valid and
    // unchanged while the library is loaded, and the library is never closed.
    let description = unsafe { descriptor_str("description", d.description) }?;
    note(&mut seen, |seen| {
        seen.description = Some(description.to_owned())
    });
    check_len("description", description, PH_MAX_DESCRIPTION_LEN)?;
    // SAFETY: the lists are the descriptor's, which the ABI keeps valid and unchanged while the
    // library is loaded (the caller's contract), zero for a descriptor of an older minor.
    let provides = unsafe { interface_list("provides", d.provides, d.provides_count) }?;
    // SAFETY: as the line above says for `provides`, for the other list of the same descriptor.
    let requires = unsafe { interface_list("requires", d.requires, d.requires_count) }?;
    note(&mut seen, |seen| {
        seen.provides = provides.clone();
        seen.requires = requires.clone();
    });
    Ok(Candidate {
        vtable,
        info: DescriptorInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            path: path.to_string_lossy().into_owned(),
            file: path.to_owned(),
            abi_version: (major, minor),
            provides,
            requires,
        },
        layout,
    })
}

/// Records what a check found in `seen`, if the caller asked for a record.
fn note(seen: &mut Option<&mut Inspection>, record: impl FnOnce(&mut Inspection)) {
    if let Some(seen) = seen {
        record(seen);
    }
}

/// Reads one of a descriptor's interface lists (`provides` or `requires`, named `field`).
///
/// # Safety
///
/// `list` is NULL or points to `count` readable `PhInterfaceVersion`s whose strings stay valid
/// while they are read.
unsafe fn interface_list(
    field: &'static str,
    list: *const PhInterfaceVersion,
    count: usize,
) -> Result<Vec<InterfaceVersion>, LoadErrorKind> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if list.is_null() || count > PH_MAX_INTERFACES {
        return Err(LoadErrorKind::BadInterfaceList { field, count });
    }
    // SAFETY: non-null and `count` readable entries (this function's contract).
    let entries = unsafe { std::slice::from_raw_parts(list, count) };
    let mut versions = Vec::with_capacity(count);
    for entry in entries {
        // SAFETY: the entry's id is a string of the descriptor, valid while it is read (this
        // function's contract).
        let id = unsafe { descriptor_str(field, entry.id) }?;
        if !is_valid_name(id) {
            return Err(LoadErrorKind::BadInterfaceList { field, count });
        }
        versions.push(InterfaceVersion {
            id: id.to_owned(),
            major: entry.major,
            minor: entry.minor,
            optional: entry.flags & PH_INTERFACE_OPTIONAL != 0,
        });
    }
    Ok(versions)
}

/// `name` with its terminating NUL, as the loader wants it, made at compile time: a name without
/// it costs an allocation per lookup. `N` is the name's length plus one.
const fn symbol_name<const N: usize>(name: &str) -> [u8; N] {
    let bytes = name.as_bytes();
    assert!(bytes.len() + 1 == N, "N is the name's length plus one");
    let mut with_nul = [0; N];
    let mut at = 0;
    while at < bytes.len() {
        with_nul[at] = bytes[at];
        at += 1;
    }
    with_nul
}

/// [`PH_ENTRY_POINT_SYMBOL`] with its NUL.
const ENTRY_POINT_SYMBOL: [u8; PH_ENTRY_POINT_SYMBOL.len() + 1] =
    symbol_name(PH_ENTRY_POINT_SYMBOL);

/// abi_stable's root-module symbol ([`ROOT_MODULE_SYMBOL`]) with its NUL.
const ROOT_MODULE_SYMBOL_NUL: [u8; ROOT_MODULE_SYMBOL.len() + 1] = symbol_name(ROOT_MODULE_SYMBOL);

/// How much of a file [`check_file`] reads at once: the ELF header and the program headers of an
/// ordinary library fit in its first kilobyte (64 bytes and 56 per header on 64 bits: ordinary
/// libraries have 8 to 12 headers; the dynamic loader reads 832 bytes first). A longer table is
/// read in a second `read`.
const HEAD_LEN: usize = 1024;

/// Opens `path` and refuses, before the dynamic loader sees it, a file in a folder that fails the
/// trust rule (unless `allow_insecure`), a path that is not a regular file, a file that fails the
/// trust rule (unless `allow_insecure`; see [`crate::trust`]), and a file that is an object file
/// but would crash the loader (see [`check_elf`]). Returns the open file, for
/// [`open_library`]: the checks and the load see the same file.
///
/// One `open`, one `fstat` and (usually) one `read` of the file, and one `stat` of its folder the
/// first time the pass (`trust`) meets it: this is what the checks add to each load. A symbolic link is
/// judged by the file it leads to (the one opened) and by the link's own folder.
pub(crate) fn check_file(
    path: &Path,
    allow_insecure: bool,
    trust: &mut TrustPass,
) -> Result<std::fs::File, LoadErrorKind> {
    #[cfg(unix)]
    if !allow_insecure {
        if let Some(reason) = trust.distrust_folder(crate::trust::folder_of(path)) {
            return Err(LoadErrorKind::Insecure { reason });
        }
    }
    #[cfg(not(unix))]
    let _ = trust;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Opening a FIFO for reading blocks until a writer comes; non-blocking, it opens at once (and
    // is then refused as not a regular file). The flag changes nothing for regular files.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Only on this error path: was it a symbolic link to nothing?
            return Err(match std::fs::symlink_metadata(path) {
                Ok(link) if link.file_type().is_symlink() => {
                    LoadErrorKind::NotAFile("a dangling symbolic link")
                }
                _ => LoadErrorKind::Open(e.to_string()),
            });
        }
        Err(e) => return Err(LoadErrorKind::Open(e.to_string())),
    };
    let metadata = file
        .metadata()
        .map_err(|e| LoadErrorKind::Open(e.to_string()))?;
    if metadata.is_dir() {
        return Err(LoadErrorKind::NotAFile("a directory"));
    }
    if !metadata.is_file() {
        return Err(LoadErrorKind::NotAFile("not a regular file"));
    }
    #[cfg(unix)]
    if !allow_insecure {
        if let Some(reason) = trust.distrust_file(&metadata) {
            return Err(LoadErrorKind::Insecure { reason });
        }
    }
    let file_len = metadata.len();
    // On the stack: no allocation per file.
    let mut head = [0u8; HEAD_LEN];
    let read = read_head(&mut file, &mut head).map_err(|e| LoadErrorKind::Open(e.to_string()))?;
    check_object(&head[..read], &mut file, file_len)?;
    Ok(file)
}

/// Fills `buf` from the start of `file` (open at its start), or as much of it as the file has;
/// returns how many bytes it read.
fn read_head(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::io::Read;

    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The object-file part of [`check_file`], on the first bytes of the file (`head`), reading more
/// from `file` only when the program headers lie beyond them. Files that are not object files at
/// all are left to the dynamic loader, which refuses them cleanly.
fn check_object(head: &[u8], file: &mut std::fs::File, file_len: u64) -> Result<(), LoadErrorKind> {
    use object::elf::{FileHeader32, FileHeader64};
    use object::{Endianness, FileKind};

    match FileKind::parse(head) {
        Ok(FileKind::Elf64) => check_elf::<FileHeader64<Endianness>>(head, file, file_len),
        Ok(FileKind::Elf32) => check_elf::<FileHeader32<Endianness>>(head, file, file_len),
        _ => Ok(()),
    }
}

/// Checks that every loadable segment an ELF file declares lies inside the file. The dynamic
/// loader maps segments without that check, and touching a page past the end of the file kills
/// the process (`SIGBUS`): a truncated library would take the host down. Only the file header and
/// the program headers are read, so that a file cut anywhere after them is still diagnosed.
fn check_elf<Elf>(head: &[u8], file: &mut std::fs::File, file_len: u64) -> Result<(), LoadErrorKind>
where
    Elf: object::read::elf::FileHeader<Endian = object::Endianness>,
{
    use object::read::elf::ProgramHeader;

    let malformed = |why: String| LoadErrorKind::Malformed(why);
    let header = Elf::parse(head).map_err(|e| malformed(format!("bad ELF header: {e}")))?;
    let endian = header
        .endian()
        .map_err(|e| malformed(format!("bad ELF header: {e}")))?;
    if header.e_type(endian) != object::elf::ET_DYN {
        return Err(malformed(
            "not a shared library (ELF type is not ET_DYN)".into(),
        ));
    }
    // The program headers end here; past the head only in unusual files.
    let table_end = Into::<u64>::into(header.e_phoff(endian))
        .saturating_add(u64::from(header.e_phentsize(endian)) * u64::from(header.e_phnum(endian)));
    let more;
    let data = if table_end > head.len() as u64 && table_end <= file_len {
        more = read_prefix(file, table_end)?;
        &more[..]
    } else {
        head
    };
    let segments = header
        .program_headers(endian, data)
        .map_err(|e| malformed(format!("truncated: {e}")))?;
    for segment in segments {
        if segment.p_type(endian) != object::elf::PT_LOAD {
            continue;
        }
        let offset: u64 = segment.p_offset(endian).into();
        let size: u64 = segment.p_filesz(endian).into();
        if offset.checked_add(size).is_none_or(|end| end > file_len) {
            return Err(malformed(format!(
                "truncated: a loadable segment spans bytes {offset}..{} but the file has {file_len}",
                offset.saturating_add(size)
            )));
        }
    }
    Ok(())
}

/// The first `len` bytes of `file` (at most 16 MiB, far more than any program header table).
fn read_prefix(file: &mut std::fs::File, len: u64) -> Result<Vec<u8>, LoadErrorKind> {
    use std::io::{Read, Seek, SeekFrom};

    const MAX: u64 = 16 << 20;
    if len > MAX {
        return Err(LoadErrorKind::Malformed(format!(
            "the program headers end at byte {len}, past the {MAX} bytes the host reads"
        )));
    }
    let mut bytes = vec![0; len as usize];
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|e| LoadErrorKind::Open(e.to_string()))?;
    Ok(bytes)
}

/// Opens the library `file` (open at `path`, and checked by [`check_file`]), binding every symbol
/// now so that a missing one is an error here rather than a crash later.
///
/// # Platform-specific behaviour
///
/// On Linux the dynamic loader opens the same open file, through its name `/proc/self/fd/N`, so
/// that nobody can swap the file between the checks and the load. The loader then knows the
/// library by that name, and would hand the library back to any later `dlopen` of the same name:
/// once the load succeeds, the descriptor therefore stays open (and its number unused) for the
/// rest of the process, as the library stays loaded. That is one descriptor per library opened
/// (close-on-exec, so no child process inherits it). A second load of the same file finds the
/// library already loaded by its device and inode, as a load by path would. `$ORIGIN` in the
/// library's run path means `/proc/self/fd`.
///
/// Elsewhere the loader opens `path` again after the checks.
///
/// A private copy of the host's own ([`Via::Path`]) is opened by its path everywhere, and its
/// descriptor closed: its name is used once in the process, and the file cannot be swapped, so a
/// reload costs no descriptor for the rest of the process.
fn open_library(
    path: &Path,
    file: std::fs::File,
    via: Via,
) -> Result<LoadedLibrary, LoadErrorKind> {
    #[cfg(target_os = "linux")]
    let name = match via {
        Via::Descriptor => fd_path(std::os::fd::AsRawFd::as_raw_fd(&file)),
        Via::Path => path.to_owned(),
    };
    #[cfg(not(target_os = "linux"))]
    let name = {
        let _ = via;
        path.to_owned()
    };
    #[cfg(unix)]
    let opened = {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
        // SAFETY: opening a library runs its initialisers; loading plugins means trusting them to
        // that extent, as every native plugin host does.
        unsafe { Library::open(Some(&name), RTLD_NOW | RTLD_LOCAL) }.map(|library| LoadedLibrary {
            handle: library.into_raw(),
        })
    };
    #[cfg(not(unix))]
    // SAFETY: opening a library runs its initialisers (and `DllMain`); loading plugins means
    // trusting them to that extent, as every native plugin host does.
    let opened = unsafe { libloading::Library::new(&name) }.map(|library| LoadedLibrary {
        library: std::mem::ManuallyDrop::new(library),
    });
    match opened {
        Ok(library) => {
            // Kept open for as long as the library is loaded, that is until the process exits:
            // see above.
            #[cfg(target_os = "linux")]
            if via == Via::Descriptor {
                let _ = std::os::fd::IntoRawFd::into_raw_fd(file);
            }
            #[cfg(not(target_os = "linux"))]
            drop(file);
            Ok(library)
        }
        Err(e) => {
            // The loader's message names what it opened, usually first: say the file instead,
            // which the error already names.
            let shown = path.display().to_string();
            let message = one_line(&e.to_string()).replace(&*name.to_string_lossy(), &shown);
            let prefix = format!("{shown}: ");
            let mut message = message.strip_prefix(&prefix).unwrap_or(&message).to_owned();
            #[cfg(target_os = "linux")]
            if !Path::new("/proc/self/fd").is_dir() {
                message.push_str(
                    " (the host loads libraries through /proc/self/fd: is /proc mounted?)",
                );
            }
            Err(LoadErrorKind::Open(message))
        }
    }
}

/// A library the dynamic loader opened. It is never closed (see [`open`]): dropping this closes
/// nothing.
struct LoadedLibrary {
    /// What `dlopen` returned (not NULL: `libloading` makes NULL an error).
    #[cfg(unix)]
    handle: *mut c_void,
    /// The library, kept from closing when dropped.
    #[cfg(not(unix))]
    library: std::mem::ManuallyDrop<libloading::Library>,
}

impl LoadedLibrary {
    /// The address of the symbol `name` (with its NUL) in the library, or `None` if it exports no
    /// such symbol (or one whose address is NULL, which neither the entry point nor abi_stable's
    /// root module can be).
    ///
    /// On Unix a lookup that finds nothing leaves the dynamic loader's message, which no one
    /// reads: formatting it (`dlerror` translates and formats it each time) would be most of
    /// what a C plugin's missing abi_stable root module costs. glibc drops the message at the
    /// next `dl*` call, and `pass` discards it when it ends, so no later `dlerror` sees it.
    fn symbol(&self, name: &[u8], pass: &mut Pass) -> Option<std::ptr::NonNull<c_void>> {
        debug_assert_eq!(name.last(), Some(&0), "NUL-terminated");
        #[cfg(unix)]
        {
            // SAFETY: `handle` is a live handle from `dlopen` (never closed) and `name` is
            // NUL-terminated; `dlsym` only reads both.
            let address = unsafe { libc::dlsym(self.handle, name.as_ptr().cast()) };
            let found = std::ptr::NonNull::new(address);
            pass.unread_message |= found.is_none();
            found
        }
        #[cfg(not(unix))]
        {
            let _ = pass;
            // SAFETY: the symbol's address is read as a plain pointer, which any symbol has.
            unsafe { self.library.get::<*mut c_void>(name) }
                .ok()
                .and_then(|symbol| std::ptr::NonNull::new(*symbol))
        }
    }
}

/// `/proc/self/fd/FD`, the name of the open file `fd` (without the formatting machinery: this is
/// once per library loaded).
#[cfg(target_os = "linux")]
fn fd_path(fd: std::os::fd::RawFd) -> PathBuf {
    const PREFIX: &str = "/proc/self/fd/";
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    let mut rest = fd.unsigned_abs();
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut name = String::with_capacity(PREFIX.len() + digits.len());
    name.push_str(PREFIX);
    name.extend(digits[start..].iter().map(|&d| char::from(d)));
    PathBuf::from(name)
}

/// Checks abi_stable's type layout if the library carries it, against the layout of the ABI minor
/// version the plugin declares (see [`plugin_api::layout::v1_0`]).
fn check_layout(
    library: &LoadedLibrary,
    minor: u16,
    pass: &mut Pass,
) -> Result<LayoutCheck, LoadErrorKind> {
    let Some(address) = library.symbol(&ROOT_MODULE_SYMBOL_NUL, pass) else {
        return Ok(LayoutCheck::NotCarried);
    };
    // SAFETY: abi_stable's root-module symbol is a static whose address is the library header;
    // `AbiHeaderRef` is a transparent non-null reference to it, and reading the address as one
    // is exactly what abi_stable's own loader does (through `libloading`'s symbol). `upgrade`
    // checks abi_stable's header version before reading anything else. The reference is
    // `'static` in fact: `library` is never closed.
    let header = unsafe { std::mem::transmute::<std::ptr::NonNull<c_void>, AbiHeaderRef>(address) };
    let layout_error = |e: LibraryError| {
        let report = e.to_string();
        log::debug!("full type layout report:\n{report}");
        LoadErrorKind::Layout {
            summary: plugin_api::layout::summary(&report),
            report,
        }
    };
    let header = header.upgrade().map_err(layout_error)?;
    // Each minor version before the host's needs its frozen layout here.
    const _: () = assert!(
        PH_ABI_VERSION_MINOR == 5,
        "add the layout of the previous minor"
    );
    match minor {
        0 => header
            .check_layout::<plugin_api::layout::v1_0::PluginModuleRef>()
            .map(drop),
        1 => header
            .check_layout::<plugin_api::layout::v1_1::PluginModuleRef>()
            .map(drop),
        2 => header
            .check_layout::<plugin_api::layout::v1_2::PluginModuleRef>()
            .map(drop),
        3 => header
            .check_layout::<plugin_api::layout::v1_3::PluginModuleRef>()
            .map(drop),
        4 => header
            .check_layout::<plugin_api::layout::v1_4::PluginModuleRef>()
            .map(drop),
        _ => header.check_layout::<PluginModuleRef>().map(drop),
    }
    .map_err(layout_error)?;
    debug_assert_eq!(PluginModuleRef::NAME, "plughost_plugin");
    Ok(LayoutCheck::Passed)
}

/// The first line of a message, trimmed.
fn one_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_owned()
}

/// The smallest `struct_size` of the descriptor and of the function table that a plugin built for
/// ABI minor `minor` may declare: the size of each table in that minor (docs/abi.md, "Versions and
/// sizes"). A minor that grows one of them keeps the older size here for older minors, or plugins
/// built for them would be refused.
fn table_sizes(minor: u16) -> (usize, usize) {
    // 1.5 grew neither table (only the interface declaration and reference, see
    // `services::host_provide_interface`).
    const _: () = assert!(
        PH_ABI_VERSION_MINOR == 5,
        "a new minor: say here which table sizes each older minor needs"
    );
    let descriptor = match minor {
        // 1.3 added `provides` and `requires` at the end of the descriptor.
        0..=2 => std::mem::offset_of!(PhPluginDescriptor, provides),
        _ => std::mem::size_of::<PhPluginDescriptor>(),
    };
    let vtable = match minor {
        // 1.4 added `save_state` and `restore_state` at the end of the function table.
        0..=3 => std::mem::offset_of!(PhPluginVtable, save_state),
        _ => std::mem::size_of::<PhPluginVtable>(),
    };
    (descriptor, vtable)
}

fn check_size(table: &'static str, size: u32, needed: usize) -> Result<(), LoadErrorKind> {
    if (size as usize) < needed {
        return Err(LoadErrorKind::StructTooSmall {
            table,
            size,
            needed,
        });
    }
    Ok(())
}

/// Reads a descriptor string.
///
/// # Safety
///
/// Unless `s.ptr` is NULL, its `s.len` bytes must be readable and unchanged for `'a`: a string of
/// the descriptor of a library that stays loaded.
unsafe fn descriptor_str<'a>(field: &'static str, s: PhStr) -> Result<&'a str, LoadErrorKind> {
    // SAFETY: our contract is `PhStr::to_str`'s, word for word, and `s` is passed on unchanged.
    unsafe { s.to_str() }.map_err(|code| LoadErrorKind::BadString { field, code })
}

/// Refuses a descriptor string longer than the ABI's limit for it.
fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), LoadErrorKind> {
    if value.len() > max {
        return Err(LoadErrorKind::TooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), LoadErrorKind> {
    if is_valid_name(name) {
        return Ok(());
    }
    let why = if name.is_empty() {
        "empty".to_owned()
    } else if name.len() > PH_MAX_NAME_LEN {
        format!("longer than {PH_MAX_NAME_LEN} bytes")
    } else {
        "only ASCII letters, digits, '-', '_' and '.' are allowed".to_owned()
    };
    // At most the limit and a little more of a long name: the message is one line to read.
    let shown = crate::context::prefix_at_most(name, PH_MAX_NAME_LEN + 4);
    Err(LoadErrorKind::InvalidName {
        name: shown.to_owned() + if shown.len() < name.len() { "…" } else { "" },
        why,
    })
}

#[cfg(all(
    test,
    target_os = "linux",
    target_pointer_width = "64",
    target_endian = "little"
))]
mod tests {
    use super::*;

    /// This test binary (a position-independent ELF64 executable, `ET_DYN` like a library) with its
    /// program header table moved to byte `at`.
    fn program_headers_at(at: usize) -> Vec<u8> {
        let mut bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let field = |bytes: &[u8], at: usize, len: usize| {
            let mut value = [0u8; 8];
            value[..len].copy_from_slice(&bytes[at..at + len]);
            u64::from_le_bytes(value) as usize
        };
        assert_eq!(field(&bytes, 0x10, 2), object::elf::ET_DYN as usize);
        let (phoff, entsize, count) = (
            field(&bytes, 0x20, 8),
            field(&bytes, 0x36, 2),
            field(&bytes, 0x38, 2),
        );
        let table = bytes[phoff..phoff + entsize * count].to_vec();
        bytes[at..at + table.len()].copy_from_slice(&table);
        bytes[0x20..0x28].copy_from_slice(&(at as u64).to_le_bytes());
        bytes
    }

    fn check_bytes(bytes: &[u8]) -> Result<(), LoadErrorKind> {
        // In a folder of its own: the temporary folder itself (`/tmp`) fails the trust rule.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("far.so");
        std::fs::write(&file, bytes).unwrap();
        check_file(&file, false, &mut TrustPass::default()).map(drop)
    }

    #[test]
    fn program_headers_past_the_head_are_read() {
        // Past the head that `check_file` reads first.
        let bytes = program_headers_at(8192);
        assert!(check_bytes(&bytes).is_ok());
        // Cut after the table but inside the loadable segments (code follows the headers; the
        // debug information at the end of the file is not loaded).
        match check_bytes(&bytes[..16 * 1024]) {
            Err(LoadErrorKind::Malformed(why)) => {
                assert!(why.starts_with("truncated: a loadable segment"), "{why}")
            }
            other => panic!("expected a truncated library, got {other:?}"),
        }
        // Cut inside the table itself.
        match check_bytes(&bytes[..8192 + 8]) {
            Err(LoadErrorKind::Malformed(why)) => assert!(why.starts_with("truncated: "), "{why}"),
            other => panic!("expected a truncated library, got {other:?}"),
        }
        // Across the end of the head: the part past it is read too, and checked.
        let bytes = program_headers_at(HEAD_LEN - 8);
        assert!(check_bytes(&bytes).is_ok());
        // The first loadable segment (its header lies past the head: only 8 bytes of the first
        // header are in it) made to end past the file.
        let mut short = bytes;
        let load = (0..)
            .map(|i| HEAD_LEN - 8 + i * 56)
            .find(|&at| short[at..at + 4] == object::elf::PT_LOAD.to_le_bytes())
            .unwrap();
        let file_len = short.len() as u64;
        short[load + 0x20..load + 0x28].copy_from_slice(&(file_len + 1).to_le_bytes());
        match check_bytes(&short) {
            Err(LoadErrorKind::Malformed(why)) => {
                assert!(why.starts_with("truncated: a loadable segment"), "{why}")
            }
            other => panic!("expected a truncated library, got {other:?}"),
        }
    }

    #[test]
    fn fd_paths() {
        for (fd, name) in [
            (0, "/proc/self/fd/0"),
            (7, "/proc/self/fd/7"),
            (1024, "/proc/self/fd/1024"),
            (i32::MAX, "/proc/self/fd/2147483647"),
        ] {
            assert_eq!(fd_path(fd), Path::new(name));
        }
    }

    #[test]
    fn a_named_pipe_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.so");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(
            check_file(&fifo, false, &mut TrustPass::default()),
            Err(LoadErrorKind::NotAFile("not a regular file"))
        ));
    }
}

#[cfg(test)]
mod discover_tests {
    use super::*;

    #[test]
    fn discover_skips_the_hosts_own_c_library_and_the_api_macros() {
        let dir = tempfile::tempdir().unwrap();
        let file = |base: &str| {
            format!(
                "{}{base}{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            )
        };
        for name in [
            file("b"),
            file(C_LIBRARY_NAME),
            file("plugin_api_macros"),
            file("a"),
            "notes.txt".into(),
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let found = discover(dir.path()).unwrap();
        assert_eq!(
            found,
            [dir.path().join(file("a")), dir.path().join(file("b"))]
        );
    }
}
