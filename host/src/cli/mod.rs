//! The `plughost` binary's terminal output, apart from its argument parsing in `main.rs`.

pub(crate) mod display;
pub(crate) mod escape;
