//! `embed-call`: a command run through the host's C library, as a C program embeds it
//! (`ph_host_run` of `libplughost_host.so`, opened with `dlopen`), against the same command run
//! through `PluginHost::run_command` from Rust. Both look the command up by name, run the same
//! plugin function, and give it an output whose writes go nowhere.

use std::ffi::c_void;
use std::hint::black_box;
use std::os::unix::ffi::OsStrExt;

use plughost::PluginHost;
use plugin_api::abi::{PhBytes, PhResult, PhResultCode, PhStr};

use crate::report::{Figure, Target};
use crate::setup::Paths;
use crate::Settings;

/// `PhHostOutputCallback`.
type OutputFn = unsafe extern "C" fn(user_data: *mut c_void, bytes: PhBytes) -> u8;
/// `PhHostErrorCallback`.
type ErrorFn = unsafe extern "C" fn(user_data: *mut c_void, code: PhResultCode, message: PhStr);
/// `PhHostRefusedCallback`.
type RefusedFn = unsafe extern "C" fn(user_data: *mut c_void, path: PhStr, reason: PhStr);
/// `ph_host_new`.
type NewFn = unsafe extern "C" fn(out_host: *mut *mut c_void) -> PhResultCode;
/// `ph_host_free`.
type FreeFn = unsafe extern "C" fn(host: *mut c_void);
/// `ph_host_load_file`.
type LoadFileFn = unsafe extern "C" fn(
    host: *mut c_void,
    file: PhBytes,
    refused: Option<RefusedFn>,
    user_data: *mut c_void,
) -> PhResultCode;
/// `ph_host_run`.
type RunFn = unsafe extern "C" fn(
    host: *const c_void,
    command: PhStr,
    args: *const PhStr,
    arg_count: usize,
    output: Option<OutputFn>,
    error: Option<ErrorFn>,
    user_data: *mut c_void,
) -> PhResultCode;

/// The output callback of the C side: takes every piece, keeps nothing (as `io::sink`).
///
/// # Safety
///
/// None: it reads none of its arguments (`unsafe` only to have the callback's type).
unsafe extern "C" fn ignore_output(_user_data: *mut c_void, _bytes: PhBytes) -> u8 {
    1
}

/// The functions of the C library that the figure calls.
struct CApi {
    new: NewFn,
    free: FreeFn,
    load_file: LoadFileFn,
    run: RunFn,
    /// Keeps the functions mapped.
    _library: libloading::Library,
}

impl CApi {
    fn open(paths: &Paths) -> Result<CApi, String> {
        let path = paths.c_library();
        // SAFETY: the host's own C library, built by this workspace: its initialisers are Rust's
        // and its functions have the types declared above (those of plughost_host.h).
        let library = unsafe { libloading::Library::new(&path) }
            .map_err(|e| format!("{}: {e}", path.display()))?;
        /// Copies the function pointer of `name` out of the library.
        ///
        /// # Safety
        ///
        /// `T` must be the type of the function `name`.
        unsafe fn symbol<T: Copy>(library: &libloading::Library, name: &str) -> Result<T, String> {
            // SAFETY: the caller guarantees the type; the pointer is used only while the
            // library stays loaded (`CApi` keeps it).
            unsafe { library.get::<T>(name.as_bytes()) }
                .map(|s| *s)
                .map_err(|e| format!("{name}: {e}"))
        }
        // SAFETY: each type is the function's declaration in plughost_host.h.
        unsafe {
            Ok(CApi {
                new: symbol(&library, "ph_host_new")?,
                free: symbol(&library, "ph_host_free")?,
                load_file: symbol(&library, "ph_host_load_file")?,
                run: symbol(&library, "ph_host_run")?,
                _library: library,
            })
        }
    }
}

/// `embed-call`: `ph_host_run(host, "bench-noop", NULL, 0, output, NULL, NULL)` through the C
/// library against `PluginHost::run_command("bench-noop", &[], &mut io::sink())`, each on a host
/// that loaded only the bench plugin.
pub fn figure(paths: &Paths, settings: &Settings) -> Result<Figure, String> {
    let iters = settings.scale(2_000_000);
    let samples = settings.samples(15, 30);
    let plugin = paths.bench_plugin();

    let mut rust_host = PluginHost::new();
    rust_host.load(&plugin).map_err(|e| e.to_string())?;

    let api = CApi::open(paths)?;
    let mut c_host: *mut c_void = std::ptr::null_mut();
    // SAFETY: `c_host` is writable.
    let made = unsafe { (api.new)(&mut c_host) };
    if made != PhResult::Ok.code() {
        return Err(format!("ph_host_new: {}", PhResult::from_code(made)));
    }
    let file = PhBytes::new(plugin.as_os_str().as_bytes());
    // SAFETY: a live host used by this thread only; `file` views bytes alive for the call.
    let loaded = unsafe { (api.load_file)(c_host, file, None, std::ptr::null_mut()) };
    if loaded != PhResult::Ok.code() {
        // SAFETY: the host made above, used by nothing else.
        unsafe { (api.free)(c_host) };
        return Err(format!("ph_host_load_file {}: refused", plugin.display()));
    }

    let no_args: [&str; 0] = [];
    let mut sink = std::io::sink();
    let failures = std::cell::Cell::new(0u64);
    let command = PhStr::new("bench-noop");
    let (c_ns, rust_ns) = crate::measure::best_pair(
        iters,
        samples,
        || {
            // SAFETY: a live host, not used by any [main-thread] function meanwhile; the command
            // name is a static string; no arguments; the output callback reads nothing.
            let code = unsafe {
                (api.run)(
                    black_box(c_host),
                    black_box(command),
                    std::ptr::null(),
                    0,
                    Some(ignore_output),
                    None,
                    std::ptr::null_mut(),
                )
            };
            if code != PhResult::Ok.code() {
                failures.set(failures.get() + 1);
            }
        },
        || {
            if rust_host
                .run_command(black_box("bench-noop"), black_box(&no_args), &mut sink)
                .is_err()
            {
                failures.set(failures.get() + 1);
            }
        },
    );
    // For the record: the same call with a resolved command handle, no lookup.
    let handle = rust_host.command("bench-noop").map_err(|e| e.to_string())?;
    let handle_ns = crate::measure::best_of(samples / 3 + 1, || {
        crate::measure::ns_per_iter(iters / 4, &mut || {
            if handle.run(black_box(&no_args), &mut sink).is_err() {
                failures.set(failures.get() + 1);
            }
        })
    });
    // SAFETY: the host made above; no call on it is under way.
    unsafe { (api.free)(c_host) };
    if failures.get() > 0 {
        return Err(format!("embed-call: {} failed calls", failures.get()));
    }
    Ok(Figure {
        name: "embed-call",
        value: c_ns,
        unit: "ns",
        ratio: c_ns / rust_ns,
        target: Target::RatioAtMost(1.1),
        bound: None,
        details: format!(
            "PluginHost::run_command {rust_ns:.2} ns; CommandHandle::run {handle_ns:.2} ns; best of {samples}x{iters}"
        ),
    })
}
