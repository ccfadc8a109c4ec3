//! A host that embeds the library in an application that does not ignore `SIGPIPE` (a C
//! program's default) survives writing to the socket of an isolated plugin whose child died: the
//! host's writes to a child never raise `SIGPIPE`. The child dies while the host serves its
//! request, so the host's answer is certain to meet the closed socket (a child that dies between
//! calls is noticed before any write). A test binary of its own, since it changes the
//! process's disposition of `SIGPIPE`.
#![cfg(target_os = "linux")]

use integration_tests::{build, compile_c};
use plughost::{PluginHost, PluginMode};

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}

/// `SIGPIPE` on Linux.
const SIGPIPE: i32 = 13;
/// `SIG_DFL`: the default action, which for `SIGPIPE` ends the process.
const SIG_DFL: usize = 0;

#[test]
fn writing_to_a_dead_childs_socket_does_not_raise_sigpipe() {
    // SAFETY: `signal` with a valid signal number and `SIG_DFL` changes only the disposition of
    // SIGPIPE, as a C application's default is; no handler runs Rust code.
    unsafe { signal(SIGPIPE, SIG_DFL) };
    build();
    let dir = tempfile::tempdir().unwrap();
    compile_c(dir.path(), "isolate.c", "iso", &[]);
    let mut host = PluginHost::new();
    host.set_child_program(build().join("plughost"));
    host.isolate("iso");
    host.load_dir(dir.path()).unwrap();
    let PluginMode::Isolated { pid } = host.plugins()[0].mode else {
        panic!("iso is not isolated");
    };
    // `iso-ping` publishes `isolate.ping` and waits for the host's answer. The application's
    // handler kills the child and waits for its death before it returns: the host then writes
    // its answer to a socket whose peer is gone (EPIPE, never SIGPIPE).
    host.subscribe("isolate.ping", move |_, _| {
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let stat = format!("/proc/{pid}/stat");
        let mut waited = 0;
        while std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z ")) && waited < 200 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            waited += 1;
        }
    })
    .unwrap();
    let mut out = Vec::new();
    let error = host
        .run_command::<&str>("iso-ping", &[], &mut out)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("was killed by signal SIGKILL in command `iso-ping`"),
        "{error}"
    );
}
