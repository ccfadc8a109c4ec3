//! Isolation on platforms other than Linux: not supported. Loading a plugin that is isolated
//! fails with one line saying so; nothing else changes.

use std::path::Path;
use std::process::ExitCode;

/// The host's isolated plugins: none on this platform.
#[derive(Default)]
pub(crate) struct Registry;

impl Registry {
    /// Every plugin runs in-process here.
    pub(crate) fn mode_of(
        &self,
        _context: *const crate::context::PluginContext,
    ) -> super::PluginMode {
        super::PluginMode::InProcess
    }
}

/// Never a child process here: returns `None`.
#[doc(hidden)]
pub fn child_main_if_requested() -> Option<ExitCode> {
    None
}

/// A build started in a child process: never, on this platform.
pub(crate) enum IsolatedBuild {}

impl IsolatedBuild {
    pub(crate) fn initialise_with<R>(&self, _initialise: impl FnOnce() -> R) -> R {
        match *self {}
    }
    pub(crate) fn keep(self, _registry: &Registry) {
        match self {}
    }
    pub(crate) fn discard(self) -> Option<String> {
        match self {}
    }
}

impl crate::PluginHost {
    /// No plugin is isolated here: a reload never asks for a child.
    pub(crate) fn isolated_build(
        &self,
        path: &Path,
    ) -> Option<Result<(crate::loader::Candidate, IsolatedBuild), crate::LoadError>> {
        Some(Err(crate::LoadError {
            path: path.to_owned(),
            kind: crate::LoadErrorKind::Isolated(
                "isolation (--isolate) is supported on Linux only".to_owned(),
            ),
        }))
    }

    /// Refuses a library while isolation is asked for: it is supported on Linux only.
    pub(crate) fn load_isolated(
        &mut self,
        path: &Path,
    ) -> Option<Result<String, crate::LoadError>> {
        Some(Err(crate::LoadError {
            path: path.to_owned(),
            kind: crate::LoadErrorKind::Isolated(
                "isolation (--isolate) is supported on Linux only".to_owned(),
            ),
        }))
    }
}

/// The child side's hooks, which never run here (no child process exists).
pub(crate) mod child {
    use std::ffi::c_void;

    use plugin_api::abi::{PhCommandInfoCallback, PhPluginInfoCallback, PhResult};

    /// The link of a child process to its host: none on this platform.
    pub(crate) enum ChildLink {}

    /// A registration, as the registry's hook reports it.
    #[allow(dead_code)]
    pub(crate) enum Registered<'a> {
        Command {
            handle: u64,
            name: &'a str,
            description: &'a str,
            usage: &'a str,
        },
        Subscription {
            handle: u64,
            topic: &'a str,
        },
    }

    impl ChildLink {
        pub(crate) fn registered(&self, _entry: Registered<'_>) -> Result<(), PhResult> {
            match *self {}
        }

        pub(crate) fn unregistered(&self, _handle: u64) {
            match *self {}
        }

        pub(crate) fn enumerate_plugins(
            &self,
            _callback: PhPluginInfoCallback,
            _user_data: *mut c_void,
        ) -> Result<(), PhResult> {
            match *self {}
        }

        pub(crate) fn enumerate_commands(
            &self,
            _plugin: &str,
            _callback: PhCommandInfoCallback,
            _user_data: *mut c_void,
        ) -> Result<(), PhResult> {
            match *self {}
        }
    }
}
