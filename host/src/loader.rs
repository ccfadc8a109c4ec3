//! Finding, opening and checking plugin libraries, before any plugin code but the entry point runs.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use abi_stable::library::{AbiHeaderRef, LibraryError, RootModule};
use plugin_api::abi::{
    is_valid_name, PhEntryPoint, PhPluginDescriptor, PhPluginVtable, PhStr, PH_ABI_VERSION_MAJOR,
    PH_ABI_VERSION_MINOR, PH_ENTRY_POINT_SYMBOL, PH_MAX_NAME_LEN,
};
use plugin_api::layout::{PluginModuleRef, ROOT_MODULE_SYMBOL};

use crate::error::{DiscoverError, LoadError, LoadErrorKind};

/// The files in `dir` named like shared libraries of this platform (`.so`, `.dylib`, `.dll`),
/// sorted by file name so that load order is stable.
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, DiscoverError> {
    let error = |source| DiscoverError {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let path = entry.map_err(error)?.path();
        if path.extension() == Some(OsStr::new(std::env::consts::DLL_EXTENSION)) {
            paths.push(path);
        }
    }
    paths.sort();
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
}

/// What the descriptor says, read and validated.
#[derive(Debug, Clone)]
pub(crate) struct DescriptorInfo {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) path: String,
    pub(crate) abi_version: (u16, u16),
}

/// An opened and checked plugin library, not yet initialised.
pub(crate) struct Candidate {
    pub(crate) descriptor: *const PhPluginDescriptor,
    pub(crate) info: DescriptorInfo,
    pub(crate) layout: LayoutCheck,
}

/// Opens `path` and checks it: entry point, ABI version, type layout, table sizes, required
/// functions, name. Runs only the library's initialisers, its entry point and (for Rust plugins)
/// abi_stable's root-module constructor.
///
/// The library stays loaded for the rest of the process, whatever the outcome: unloading code that
/// may have registered thread-local destructors is not safe, and abi_stable never unloads either.
pub(crate) fn open(path: &Path) -> Result<Candidate, LoadError> {
    open_inner(path).map_err(|kind| LoadError {
        path: path.to_owned(),
        kind,
    })
}

fn open_inner(path: &Path) -> Result<Candidate, LoadErrorKind> {
    let metadata = std::fs::metadata(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LoadErrorKind::NotAFile
        } else {
            LoadErrorKind::Open(e.to_string())
        }
    })?;
    if !metadata.is_file() {
        return Err(LoadErrorKind::NotAFile);
    }
    let library = open_library(path)?;
    // Never unloaded: see `open`.
    let library: &'static libloading::Library = Box::leak(Box::new(library));

    let entry = symbol_name(PH_ENTRY_POINT_SYMBOL);
    // SAFETY: the ABI defines the entry point's type as `PhEntryPoint`; a library that exports
    // the symbol with another type breaks the ABI's contract, which no check can detect.
    let entry: PhEntryPoint = unsafe { library.get::<PhEntryPoint>(&entry) }
        .map(|symbol| *symbol)
        .map_err(|_| LoadErrorKind::NoEntryPoint {
            symbol: PH_ENTRY_POINT_SYMBOL,
        })?;
    // SAFETY: the entry point takes no arguments and returns a pointer (the ABI's contract).
    let descriptor = unsafe { (entry.0)() };
    if descriptor.is_null() {
        return Err(LoadErrorKind::NoDescriptor);
    }
    // SAFETY: a non-null descriptor is readable for at least its first three fields, which every
    // ABI version has at the same place (`abi_major`, `abi_minor`, `struct_size`).
    let (major, minor, struct_size) = unsafe {
        (
            std::ptr::addr_of!((*descriptor).abi_major).read(),
            std::ptr::addr_of!((*descriptor).abi_minor).read(),
            std::ptr::addr_of!((*descriptor).struct_size).read(),
        )
    };
    if major != PH_ABI_VERSION_MAJOR || minor > PH_ABI_VERSION_MINOR {
        return Err(LoadErrorKind::AbiVersion {
            major,
            minor,
            host_major: PH_ABI_VERSION_MAJOR,
            host_minor: PH_ABI_VERSION_MINOR,
        });
    }
    let layout = check_layout(library)?;
    check_size(
        "the descriptor",
        struct_size,
        std::mem::size_of::<PhPluginDescriptor>(),
    )?;
    // SAFETY: non-null, and `struct_size` says the whole descriptor of this ABI version is there.
    let d = unsafe { &*descriptor };
    if d.vtable.is_null() {
        return Err(LoadErrorKind::MissingFunction("vtable"));
    }
    // SAFETY: non-null; its first field, `struct_size`, exists in every version.
    let vtable_size = unsafe { std::ptr::addr_of!((*d.vtable).struct_size).read() };
    check_size(
        "the function table",
        vtable_size,
        std::mem::size_of::<PhPluginVtable>(),
    )?;
    // SAFETY: non-null and at least as large as this version's table.
    let vtable = unsafe { &*d.vtable };
    if vtable.init.is_none() {
        return Err(LoadErrorKind::MissingFunction("init"));
    }
    if vtable.shutdown.is_none() {
        return Err(LoadErrorKind::MissingFunction("shutdown"));
    }
    if vtable.enumerate_commands.is_none() {
        return Err(LoadErrorKind::MissingFunction("enumerate_commands"));
    }

    // SAFETY (all three): the descriptor's strings are owned by the library, which stays loaded.
    let name = unsafe { descriptor_str("name", d.name) }?;
    check_name(name)?;
    let version = unsafe { descriptor_str("version", d.version) }?;
    let description = unsafe { descriptor_str("description", d.description) }?;
    Ok(Candidate {
        descriptor,
        info: DescriptorInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            description: description.to_owned(),
            path: path.to_string_lossy().into_owned(),
            abi_version: (major, minor),
        },
        layout,
    })
}

/// A symbol name with its terminating NUL, as the loader wants it.
fn symbol_name(name: &str) -> Vec<u8> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    bytes
}

/// Opens the library, binding every symbol now so that a missing one is an error here rather
/// than a crash later.
fn open_library(path: &Path) -> Result<libloading::Library, LoadErrorKind> {
    #[cfg(unix)]
    let opened = {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
        // SAFETY: opening a library runs its initialisers; loading plugins means trusting them to
        // that extent, as every native plugin host does.
        unsafe { Library::open(Some(path), RTLD_NOW | RTLD_LOCAL) }.map(libloading::Library::from)
    };
    #[cfg(not(unix))]
    // SAFETY: as above.
    let opened = unsafe { libloading::Library::new(path) };
    opened.map_err(|e| LoadErrorKind::Open(one_line(&e.to_string())))
}

/// Checks abi_stable's type layout if the library carries it.
fn check_layout(library: &'static libloading::Library) -> Result<LayoutCheck, LoadErrorKind> {
    let symbol = symbol_name(ROOT_MODULE_SYMBOL);
    // SAFETY: abi_stable's root-module symbol is a static whose address is the library header;
    // reading it as `AbiHeaderRef` is exactly what abi_stable's own loader does, and `upgrade`
    // checks abi_stable's header version before reading anything else.
    let header = match unsafe { library.get::<AbiHeaderRef>(&symbol) } {
        Ok(header) => *header,
        Err(_) => return Ok(LayoutCheck::NotCarried),
    };
    let layout_error = |e: LibraryError| {
        let report = e.to_string();
        log::debug!("full type layout report:\n{report}");
        LoadErrorKind::Layout {
            summary: layout_summary(&report),
            report,
        }
    };
    let header = header.upgrade().map_err(layout_error)?;
    header
        .check_layout::<PluginModuleRef>()
        .map_err(layout_error)?;
    debug_assert_eq!(PluginModuleRef::NAME, "plughost_plugin");
    Ok(LayoutCheck::Passed)
}

/// One line out of abi_stable's multi-line layout report: the innermost type and error it names.
fn layout_summary(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let error = lines
        .iter()
        .find(|l| l.starts_with("Error:") || l.contains("mismatch") || l.contains("Mismatched"))
        .copied();
    let ty = lines
        .iter()
        .rev()
        .find(|l| l.starts_with("Layout of") || l.starts_with("Type:") || l.contains("type:"))
        .copied();
    match (error, ty) {
        (Some(e), Some(t)) => format!("{t}: {e}"),
        (Some(e), None) => e.to_owned(),
        _ => one_line(report),
    }
}

/// The first line of a message, trimmed.
fn one_line(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_owned()
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
/// `s` must point into the loaded library (or be empty).
unsafe fn descriptor_str<'a>(field: &'static str, s: PhStr) -> Result<&'a str, LoadErrorKind> {
    // SAFETY: forwarded to the caller.
    unsafe { s.to_str() }.map_err(|code| LoadErrorKind::BadString { field, code })
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
    Err(LoadErrorKind::InvalidName {
        name: name.to_owned(),
        why,
    })
}
