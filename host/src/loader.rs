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
}

/// Opens `path` and runs every check the host makes before `init`, recording what it found.
/// Returns the inspection and the first failed check, if any.
///
/// Opening a library runs its initialisers; the library stays loaded for the rest of the
/// process (see [`crate::PluginHost::load`]).
pub fn inspect(path: &Path) -> (Inspection, Option<LoadError>) {
    let mut inspection = Inspection::default();
    let error = check(path, &mut inspection).err().map(|kind| LoadError {
        path: path.to_owned(),
        kind,
    });
    (inspection, error)
}

/// Opens `path` and checks it: entry point, ABI version, type layout, table sizes, required
/// functions, name. Runs only the library's initialisers, its entry point and (for Rust plugins)
/// abi_stable's root-module constructor.
///
/// The library stays loaded for the rest of the process, whatever the outcome: unloading code that
/// may have registered thread-local destructors is not safe, and abi_stable never unloads either.
pub(crate) fn open(path: &Path) -> Result<Candidate, LoadError> {
    check(path, &mut Inspection::default()).map_err(|kind| LoadError {
        path: path.to_owned(),
        kind,
    })
}

/// The checks of [`open`], recording what they find in `seen`.
fn check(path: &Path, seen: &mut Inspection) -> Result<Candidate, LoadErrorKind> {
    let link = std::fs::symlink_metadata(path).map_err(|e| LoadErrorKind::Open(e.to_string()))?;
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && link.file_type().is_symlink() => {
            return Err(LoadErrorKind::NotAFile("a dangling symbolic link"));
        }
        Err(e) => return Err(LoadErrorKind::Open(e.to_string())),
    };
    if metadata.is_dir() {
        return Err(LoadErrorKind::NotAFile("a directory"));
    }
    if !metadata.is_file() {
        return Err(LoadErrorKind::NotAFile("not a regular file"));
    }
    check_file_layout(path, metadata.len())?;
    // Never closed, whatever happens next: see `open`. (`ManuallyDrop` keeps the handle without
    // a heap allocation, so memory checkers see nothing lost.)
    let library = std::mem::ManuallyDrop::new(open_library(path)?);
    seen.opened = true;

    let entry = symbol_name(PH_ENTRY_POINT_SYMBOL);
    // SAFETY: the ABI defines the entry point's type as `PhEntryPoint`; a library that exports
    // the symbol with another type breaks the ABI's contract, which no check can detect.
    let entry: PhEntryPoint = unsafe { library.get::<PhEntryPoint>(&entry) }
        .map(|symbol| *symbol)
        .map_err(|_| LoadErrorKind::NoEntryPoint {
            symbol: PH_ENTRY_POINT_SYMBOL,
        })?;
    seen.entry_point = true;
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
    seen.abi_version = Some((major, minor));
    seen.descriptor_size = Some(struct_size);
    if major != PH_ABI_VERSION_MAJOR || minor > PH_ABI_VERSION_MINOR {
        return Err(LoadErrorKind::AbiVersion {
            major,
            minor,
            host_major: PH_ABI_VERSION_MAJOR,
            host_minor: PH_ABI_VERSION_MINOR,
        });
    }
    let layout = check_layout(&library)?;
    seen.layout = Some(layout);
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
    seen.vtable_size = Some(vtable_size);
    check_size(
        "the function table",
        vtable_size,
        std::mem::size_of::<PhPluginVtable>(),
    )?;
    // SAFETY: non-null and at least as large as this version's table.
    let vtable = unsafe { &*d.vtable };
    seen.functions = vec![
        ("init", vtable.init.is_some()),
        ("shutdown", vtable.shutdown.is_some()),
        ("enumerate_commands", vtable.enumerate_commands.is_some()),
    ];
    if let Some((missing, _)) = seen.functions.iter().find(|(_, present)| !present) {
        return Err(LoadErrorKind::MissingFunction(missing));
    }

    // SAFETY: the descriptor's strings are owned by the library, which stays loaded.
    let name = unsafe { descriptor_str("name", d.name) }?;
    seen.name = Some(name.to_owned());
    check_name(name)?;
    // SAFETY: as for the name.
    let version = unsafe { descriptor_str("version", d.version) }?;
    seen.version = Some(version.to_owned());
    // SAFETY: as for the name.
    let description = unsafe { descriptor_str("description", d.description) }?;
    seen.description = Some(description.to_owned());
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

/// Checks, before the dynamic loader maps the file, that every loadable segment the file declares
/// lies inside it. The loader maps segments without that check, and touching a page past the end
/// of the file kills the process (`SIGBUS`): a truncated library would take the host down.
///
/// Files that are not object files at all are left to the dynamic loader, which refuses them
/// cleanly.
fn check_file_layout(path: &Path, file_len: u64) -> Result<(), LoadErrorKind> {
    use object::elf::{FileHeader32, FileHeader64};
    use object::{Endianness, FileKind};

    let file = std::fs::File::open(path).map_err(|e| LoadErrorKind::Open(e.to_string()))?;
    let data = object::ReadCache::new(file);
    match FileKind::parse(&data) {
        Ok(FileKind::Elf64) => check_elf::<FileHeader64<Endianness>>(&data, file_len),
        Ok(FileKind::Elf32) => check_elf::<FileHeader32<Endianness>>(&data, file_len),
        _ => Ok(()),
    }
}

/// The ELF part of [`check_file_layout`]: only the file header and the program headers are read,
/// so that a file cut anywhere after them is still diagnosed.
fn check_elf<Elf>(
    data: &object::ReadCache<std::fs::File>,
    file_len: u64,
) -> Result<(), LoadErrorKind>
where
    Elf: object::read::elf::FileHeader<Endian = object::Endianness>,
{
    use object::read::elf::ProgramHeader;

    let malformed = |why: String| LoadErrorKind::Malformed(why);
    let header = Elf::parse(data).map_err(|e| malformed(format!("bad ELF header: {e}")))?;
    let endian = header
        .endian()
        .map_err(|e| malformed(format!("bad ELF header: {e}")))?;
    if header.e_type(endian) != object::elf::ET_DYN {
        return Err(malformed(
            "not a shared library (ELF type is not ET_DYN)".into(),
        ));
    }
    let segments = header
        .program_headers(endian, data)
        .map_err(|e| malformed(format!("truncated: {e}")))?;
    for segment in segments {
        if segment.p_type(endian) != object::elf::PT_LOAD {
            continue;
        }
        let offset: u64 = segment.p_offset(endian).into();
        let size: u64 = segment.p_filesz(endian).into();
        if offset.checked_add(size).map_or(true, |end| end > file_len) {
            return Err(malformed(format!(
                "truncated: a loadable segment spans bytes {offset}..{} but the file has {file_len}",
                offset.saturating_add(size)
            )));
        }
    }
    Ok(())
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
    opened.map_err(|e| {
        // The loader's message usually starts with the path, which the error already names.
        let message = one_line(&e.to_string());
        let prefix = format!("{}: ", path.display());
        LoadErrorKind::Open(message.strip_prefix(&prefix).unwrap_or(&message).to_owned())
    })
}

/// Checks abi_stable's type layout if the library carries it.
fn check_layout(library: &libloading::Library) -> Result<LayoutCheck, LoadErrorKind> {
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

/// One line out of abi_stable's multi-line layout report: the type that differs, the first error,
/// and the expected and found values, such as
/// `PhPluginDescriptor: incompatible type size (expected 64, found 72)`.
fn layout_summary(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(first_error) = lines.iter().position(|l| l.starts_with("Error:")) else {
        return one_line(report);
    };
    let error = lines[first_error].trim_start_matches("Error:");
    let ty = lines[..first_error]
        .iter()
        .rposition(|l| l.starts_with("Layout of expected type:"))
        .and_then(|start| {
            lines[start..first_error]
                .iter()
                .find(|l| l.starts_with("type:"))
        })
        .map(|l| l.trim_start_matches("type:"));
    let value_after = |label: &str| {
        lines[first_error..]
            .iter()
            .position(|l| *l == label)
            .and_then(|at| lines.get(first_error + at + 1))
            .copied()
    };
    let mut summary = match ty {
        Some(ty) => format!("{ty}: {error}"),
        None => error.to_owned(),
    };
    if let (Some(expected), Some(found)) = (value_after("Expected:"), value_after("Found:")) {
        summary.push_str(&format!(" (expected {expected}, found {found})"));
    }
    summary
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
