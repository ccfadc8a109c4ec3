//! The `plughost` binary's parts apart from its argument parsing in `main.rs`: terminal output
//! (`display`, `escape`) and what happens when a plugin calls `exit()` (`exit`).

pub(crate) mod display;
pub(crate) mod escape;
pub(crate) mod exit;
