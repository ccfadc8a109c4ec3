//! The plughost host as a C library: an application written in C, C++, Python, C#, Go or any
//! language with a C foreign-function interface embeds the host (the same `plughost::PluginHost`
//! as the `plughost` binary) instead of writing its own.
//!
//! Library: `libplughost_host.so` (`.dylib` on macOS, `plughost_host.dll` on Windows), built by
//! `cargo build --release -p plughost-capi` into `target/release/`. Header: this file,
//! `host/capi/include/plughost_host.h`, which includes the plugin ABI's header `plughost.h`
//! (`plugin-api/include/`) for the types both sides share: `PhStr`, `PhBytes`, `PhResultCode`,
//! `PhHandle`, `PhPluginInfo`, `PhCommandInfo` and the callback types. Compile and link with
//!
//! ```text
//!     cc -I plugin-api/include -I host/capi/include app.c -L target/release -lplughost_host
//! ```
//!
//! The plugin side of the contract (what plugins may do, the events' order, the limits) is
//! docs/abi.md; embedding from C, Python and C# is docs/embedding.md.
//!
//! # Threads
//!
//! Each function carries one tag:
//!
//! - `[main-thread]`: takes the host to itself. Call it from one thread at a time, while no other
//!   call on the same host is under way on any thread, and never from inside a callback of this
//!   library (a callback may run inside the call: a plugin's `init` publishes, the refusal
//!   callback). The thread may change between calls (it need not be the process's first thread),
//!   as long as the calls do not overlap. These are `ph_host_new`, `ph_host_new_with_log`,
//!   `ph_host_set_config`, `ph_host_set_allow_insecure`, `ph_host_load_dir`, `ph_host_load_file`,
//!   `ph_host_shutdown` and `ph_host_free`.
//! - `[thread-safe]`: any thread, several at once, and from inside the callbacks of other
//!   `[thread-safe]` calls (an output callback may publish, an event callback may run a command).
//!   Plugins run on the calling thread; event callbacks run on the publisher's thread, which may
//!   be a thread a plugin started.
//!
//! Freeing a host (`ph_host_free`) while another thread is still inside a call on it, or may
//! still start one, is the caller's bug and undefined behaviour: join or stop those threads
//! first. The library does not count calls in flight (that would cost every call an atomic
//! read-modify-write on a shared cache line).
//!
//! # Strings, bytes and paths
//!
//! Strings are `PhStr` views, `(pointer, length)`, UTF-8, not NUL-terminated; byte payloads are
//! `PhBytes`. A view may have a NULL pointer only when its length is 0. Paths are `PhBytes`: any
//! bytes on Unix (file names there are bytes), UTF-8 on Windows. Everything passed in is borrowed
//! for the call only: the library copies what it keeps. Everything passed to a callback (views,
//! info structs) is borrowed for that callback's call: copy what you keep.
//!
//! # Callbacks
//!
//! Every callback comes with a `void *user_data` that the library passes back untouched. A
//! callback must return normally: no C++ exception, `longjmp`, Rust panic or other unwinding may
//! leave it (catch them inside, as docs/embedding.md shows for Python and C#). Return values are
//! read defensively, so that a callback that returns garbage (a ctypes callback that raised, for
//! one) cannot harm the host: a `bool` is true only when its byte is exactly 1, any other byte is
//! false; an unknown `PhResultCode` is `PH_RESULT_ERROR`.
//!
//! A registration's `destroy(user_data)` (`ph_host_subscribe`, `ph_host_new_with_log`) runs
//! exactly once, whatever happens: before the function returns when it fails, else after the
//! registration ended and no call uses it any more. `destroy` may be NULL.
//!
//! # Result codes
//!
//! Functions return a `PhResultCode` of `plughost.h` (`PH_RESULT_*`); each function says which
//! codes it returns and when. When arguments break several rules, the code is that of the first
//! check that fails, in this order: the host pointer (NULL: `PH_RESULT_NULL_POINTER`); the
//! callback a function needs; the other arguments in the order of the parameter list, each
//! checked for a NULL view, then UTF-8 (`PH_RESULT_INVALID_UTF8`), then its own rule; then the
//! host's state. On failure nothing is written through an output pointer.
//! `PH_RESULT_HOST_FAILED` from a function of this library means that the host itself failed (a
//! Rust panic inside the library, caught at its boundary); the failures of plugins are reported
//! otherwise (see `ph_host_run`). `ph_host_result_message` gives each code's description.
//!
//! # Lifetimes
//!
//! A `PhHost` lives from `ph_host_new` until `ph_host_free`, which shuts its plugins down (in
//! reverse load order) and ends its subscriptions. Plugin libraries are never unloaded: they
//! stay mapped, with a few hundred bytes of host state per plugin, until the process exits
//! (docs/abi.md, section 6), so plugin threads that outlive the host stay safe.

mod boundary;
mod enumerate;
mod events;
mod host;
mod interfaces;
mod log_sink;
mod run;
mod types;

pub use enumerate::{ph_host_enumerate_commands, ph_host_enumerate_plugins};
pub use events::{ph_host_publish, ph_host_subscribe, ph_host_unregister};
pub use host::{
    ph_host_free, ph_host_isolate, ph_host_load_dir, ph_host_load_file, ph_host_new,
    ph_host_new_with_log, ph_host_result_message, ph_host_set_allow_insecure,
    ph_host_set_call_timeout, ph_host_set_child_program, ph_host_set_config, ph_host_shutdown,
};
pub use interfaces::{
    ph_host_provide_interface, ph_host_query_interface, ph_host_release_interface,
};
pub use run::ph_host_run;
pub use types::{
    CBool, CommandInfoCallback, PhHost, PhHostErrorCallback, PhHostLogCallback,
    PhHostOutputCallback, PhHostRefusedCallback, PluginInfoCallback,
};

/// Whether two strings are equal, at compile time.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// The host skips the file of this library in a plugins folder by the name it knows; this crate's
// library name (Cargo.toml, `[lib] name`) must be that name.
const _: () = assert!(
    same(env!("CARGO_CRATE_NAME"), plughost::C_LIBRARY_NAME),
    "the library's name differs from plughost::C_LIBRARY_NAME"
);
