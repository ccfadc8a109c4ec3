//! `checksum`: the example plugin written in C.
//!
//! The plugin is `checksum.c`, written against the generated header
//! (`plugin-api/include/plughost.h`) alone. This package holds no Rust code of the plugin: its
//! build script compiles the C file with the `cc` crate's compiler into a shared library,
//! [`LIBRARY_NAME`] with this platform's prefix and suffix (`libchecksum.so` on Linux), and puts
//! it in the profile folder (`target/debug`, `target/release`) beside the Rust plugins and the
//! `plughost` binary, so that a plain `cargo build` of the workspace builds it and
//! `plughost list` shows it.
//!
//! See `docs/writing-a-plugin-in-c.md` for how it is made.
#![deny(missing_docs)]

/// The plugin's name, and the base name of its library file.
pub const LIBRARY_NAME: &str = "checksum";
