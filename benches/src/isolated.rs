//! Isolation's cost: `isolated-call`, the round trip of a no-op command in an isolated plugin
//! against a plain socket-pair ping-pong of the same message sizes with another process, and
//! `wordfreq-isolated`, `plughost run wordfreq` with `--isolate wordfreq` against in-process on
//! the same input.
//!
//! The ping-pong of the limit blocks in `read` on both sides, the plain way. The isolation polls
//! the socket briefly before it blocks (`plughost::isolate`'s spin), which on an idle machine saves
//! the wake-up of a halted core per message; the figure's details also give a ping-pong that
//! polls the same way, for reference only.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;

use plughost::PluginHost;

use crate::report::{Figure, Target};
use crate::setup::Paths;
use crate::Settings;

/// The frames of a call of `noop` and of its answer, as the host and the child send them
/// (`plughost::isolate`'s wire format: a 4-byte length, then the postcard message): `Call {
/// command: "noop", args: [] }` and `Done { code: 0, message: None }`.
const REQUEST_BYTES: usize = 4 + 1 + 1 + "noop".len() + 1;
const ANSWER_BYTES: usize = 4 + 1 + 1 + 1;

/// The descriptor on which the ping-pong child finds its socket.
const CHILD_FD: i32 = 3;

/// Set (to anything) in the environment of a ping-pong child that polls before it blocks.
const SPIN_VARIABLE: &str = "PLUGHOST_BENCH_PINGPONG_SPIN";

/// How long the polling ping-pong polls before it blocks: the isolation's window
/// (`SPIN_WINDOW` of `plughost::isolate`'s spin, private to the host).
const SPIN_WINDOW: std::time::Duration = std::time::Duration::from_micros(50);

/// How often the polling ping-pong yields its core after the yield it starts with: the
/// isolation's interval (`YIELD_INTERVAL`).
const YIELD_INTERVAL: std::time::Duration = std::time::Duration::from_micros(5);

/// The other side of the ping-pong, in a process of its own (`plughost-bench --child pingpong
/// -`): reads a request, writes an answer, until the socket closes. It polls before it blocks if
/// [`SPIN_VARIABLE`] is set.
pub fn child_pingpong() -> Result<(), String> {
    // SAFETY: the parent put its socket on this descriptor for this process, which owns it.
    let mut socket = unsafe { UnixStream::from_raw_fd(CHILD_FD) };
    let spin = std::env::var_os(SPIN_VARIABLE).is_some();
    let mut request = [0u8; REQUEST_BYTES];
    let answer = [0u8; ANSWER_BYTES];
    loop {
        let received = match spin {
            true => read_exact_spinning(&mut socket, &mut request),
            false => socket.read_exact(&mut request),
        };
        if received.is_err() {
            return Ok(());
        }
        socket.write_all(&answer).map_err(|e| e.to_string())?;
    }
}

/// `read_exact`, each read polling (`MSG_DONTWAIT`) for at most [`SPIN_WINDOW`] before it blocks,
/// yielding the core at once and then every [`YIELD_INTERVAL`], as the isolation's reads do on a
/// quiet machine (without their adaptation to a busy one).
fn read_exact_spinning(socket: &mut UnixStream, mut buffer: &mut [u8]) -> std::io::Result<()> {
    while !buffer.is_empty() {
        let started = std::time::Instant::now();
        let mut yielded: Option<std::time::Instant> = None;
        let read = loop {
            // SAFETY: `recv` writes at most `buffer.len()` bytes into `buffer`, valid and
            // exclusively borrowed; the descriptor is the socket's, open while it is borrowed.
            let read = unsafe {
                libc::recv(
                    socket.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if read >= 0 {
                break read as usize;
            }
            let error = std::io::Error::last_os_error();
            match error.kind() {
                std::io::ErrorKind::WouldBlock => {
                    let now = std::time::Instant::now();
                    if now - started >= SPIN_WINDOW {
                        break socket.read(buffer)?;
                    }
                    if yielded.is_none_or(|at| now - at >= YIELD_INTERVAL) {
                        std::thread::yield_now();
                        yielded = Some(now);
                    } else {
                        std::hint::spin_loop();
                    }
                }
                std::io::ErrorKind::Interrupted => {}
                _ => return Err(error),
            }
        };
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buffer = &mut buffer[read..];
    }
    Ok(())
}

/// A ping-pong child: this program with `--child pingpong -`, its end of a socket pair on
/// [`CHILD_FD`]; polling before it blocks if `spin`.
fn spawn_pingpong(spin: bool) -> Result<(std::process::Child, UnixStream), String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let fd = theirs.as_raw_fd();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command.args(["--child", "pingpong", "-"]);
    match spin {
        true => command.env(SPIN_VARIABLE, "1"),
        false => command.env_remove(SPIN_VARIABLE),
    };
    // SAFETY: between fork and exec the closure only calls `dup2`, which is async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, CHILD_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| e.to_string())?;
    drop(theirs);
    Ok((child, ours))
}

/// The C plugin `noop` (`benches/plugins/c/noop_plugin.c`), compiled into `dir`.
fn noop_plugin(paths: &Paths, dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let library = dir.join("libnoop.so");
    let status = Command::new("gcc")
        .args([
            "-O2",
            "-shared",
            "-fPIC",
            "-fvisibility=hidden",
            "-std=c11",
            "-Wall",
            "-Werror",
        ])
        .arg("-I")
        .arg(paths.root.join("plugin-api/include"))
        .arg(paths.root.join("benches/plugins/c/noop_plugin.c"))
        .arg("-o")
        .arg(&library)
        .status()
        .map_err(|e| format!("running gcc: {e}"))?;
    if !status.success() {
        return Err("gcc failed on noop_plugin.c".into());
    }
    Ok(library)
}

/// `isolated-call`: `CommandHandle::run` of the C plugin's `noop`, isolated, against a request
/// and answer of the same sizes over a socket pair with a process that only answers, both sides
/// blocking in `read`. The details add the same ping-pong with both sides polling before they
/// block, as the isolation does (for reference, not the limit).
pub fn call_figure(paths: &Paths, settings: &Settings) -> Result<Figure, String> {
    let iters = settings.scale(100_000);
    let samples = settings.samples(5, 15);
    let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let library = noop_plugin(paths, dir.path())?;
    let mut host = PluginHost::new();
    host.set_child_program(paths.plughost());
    host.isolate("noop");
    host.load(&library).map_err(|e| e.to_string())?;
    let command = host.command("noop").map_err(|e| e.to_string())?;
    let (mut child, mut socket) = spawn_pingpong(false)?;
    let no_args: [&str; 0] = [];
    let mut sink = std::io::sink();
    let failures = std::cell::Cell::new(0u64);
    let request = [0u8; REQUEST_BYTES];
    let mut answer = [0u8; ANSWER_BYTES];
    let (isolated_ns, pingpong_ns) = crate::measure::best_pair(
        iters,
        samples,
        || {
            if command.run(&no_args, &mut sink).is_err() {
                failures.set(failures.get() + 1);
            }
        },
        || {
            if socket.write_all(&request).is_err() || socket.read_exact(&mut answer).is_err() {
                failures.set(failures.get() + 1);
            }
        },
    );
    drop(socket);
    let _ = child.wait();
    let (mut child, mut socket) = spawn_pingpong(true)?;
    let mut spinning = || {
        if socket.write_all(&request).is_err()
            || read_exact_spinning(&mut socket, &mut answer).is_err()
        {
            failures.set(failures.get() + 1);
        }
    };
    crate::measure::ns_per_iter(iters / 10 + 1, &mut spinning);
    let spinning_ns = crate::measure::best_of(samples, || {
        crate::measure::ns_per_iter(iters, &mut spinning)
    });
    drop(socket);
    let _ = child.wait();
    let mut out = Vec::new();
    host.run_command("noop-count", &no_args, &mut out)
        .map_err(|e| e.to_string())?;
    let count: u64 = String::from_utf8_lossy(&out)
        .trim()
        .parse()
        .map_err(|e| format!("noop-count: {e}"))?;
    if failures.get() > 0 || count == 0 {
        return Err(format!(
            "isolated-call: {} failed calls, {count} counted",
            failures.get()
        ));
    }
    Ok(Figure {
        name: "isolated-call",
        value: isolated_ns / 1000.0,
        unit: "us",
        ratio: isolated_ns / pingpong_ns,
        target: Target::RatioAndValueAtMost(2.0, 5.0),
        bound: None,
        details: format!(
            "socket-pair ping-pong of {REQUEST_BYTES}+{ANSWER_BYTES} bytes with another process {:.2} us (polling {} us before blocking, as the isolation does: {:.2} us); goal at most 5 us; best of {samples}x{iters}",
            pingpong_ns / 1000.0,
            SPIN_WINDOW.as_micros(),
            spinning_ns / 1000.0
        ),
    })
}

/// `wordfreq-isolated`: the throughput of `plughost run wordfreq` with `--isolate wordfreq`
/// against in-process, on the same generated input (in the page cache).
pub fn wordfreq_figure(paths: &Paths, settings: &Settings) -> Result<Figure, String> {
    let size = settings.wordfreq_mib * crate::wordfreq::MIB;
    let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let input = dir.path().join("input.txt");
    crate::wordfreq::generate(&input, size, &crate::wordfreq::sources(paths))?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).map_err(|e| e.to_string())?;
    let library = paths.rust_plugin("wordfreq");
    std::fs::copy(
        &library,
        plugins.join(library.file_name().unwrap_or_default()),
    )
    .map_err(|e| format!("{}: {e}", library.display()))?;
    let run = |isolated: bool| {
        let mut command = Command::new(paths.plughost());
        command.arg("--plugins").arg(&plugins);
        if isolated {
            command.args(["--isolate", "wordfreq"]);
        }
        command
            .args(["run", "wordfreq", "--top", "10"])
            .arg(&input)
            .env_remove("RUST_LOG");
        crate::wordfreq::run_measured(command)
    };
    let samples = settings.samples(4, 6);
    let (mut inproc, mut isolated) = (f64::INFINITY, f64::INFINITY);
    let mut outputs = (String::new(), String::new());
    for _ in 0..samples {
        let a = run(false)?;
        let b = run(true)?;
        inproc = inproc.min(a.seconds);
        isolated = isolated.min(b.seconds);
        outputs = (a.stdout, b.stdout);
    }
    if outputs.0 != outputs.1 {
        return Err("wordfreq-isolated: the isolated output differs from in-process".into());
    }
    let mb = size as f64 / 1e6;
    Ok(Figure {
        name: "wordfreq-isolated",
        value: mb / isolated,
        unit: "MB/s",
        ratio: inproc / isolated,
        target: Target::RatioAtLeast(0.9),
        bound: None,
        details: format!(
            "{} MiB input; in-process {:.0} MB/s ({inproc:.3} s), isolated {isolated:.3} s; same output; best of {samples}",
            settings.wordfreq_mib,
            mb / inproc
        ),
    })
}
