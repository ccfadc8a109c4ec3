//! The `plughost` binary's parts apart from its argument parsing in `main.rs`: terminal output
//! (`display`, `escape`, and `json` for `--json`), where plugins are looked for by default
//! (`folder`), standard output closed by its reader (`pipe`), what happens when a plugin calls `exit()` (`exit`), and `plughost shell` (`shell`,
//! with its line splitting in `words`, completion in `complete`, Ctrl-C during a command in
//! `interrupt`, and `--watch` in `watch`).

pub(crate) mod complete;
pub(crate) mod display;
pub(crate) mod escape;
pub(crate) mod exit;
pub(crate) mod folder;
pub(crate) mod interrupt;
pub(crate) mod json;
pub(crate) mod pipe;
pub(crate) mod shell;
pub(crate) mod watch;
pub(crate) mod words;
