//! `wordfreq`: `plughost run wordfreq` on a large text built from real text, against the
//! coreutils pipeline on the same file; wall time and peak memory of both.

use std::ffi::CString;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::report::{Figure, Target};
use crate::setup::Paths;
use crate::Settings;

/// The coreutils pipeline of the issue; the file is `$1`.
const PIPELINE: &str = "LC_ALL=C tr -cs '[:alnum:]' '\\n' < \"$1\" | tr '[:upper:]' '[:lower:]' \
                        | sort | uniq -c | sort -rn | head";

/// The peak memory `plughost run wordfreq` may use, in MiB, whatever the input size.
const MEMORY_BOUND_MIB: f64 = 64.0;

pub(crate) const MIB: u64 = 1024 * 1024;

/// The real texts the input is made of.
pub(crate) fn sources(paths: &Paths) -> Vec<PathBuf> {
    [
        "tests/data/udhr-article-1.txt",
        "README.md",
        "tests/data/README.md",
    ]
    .iter()
    .map(|p| paths.root.join(p))
    .collect()
}

/// Writes `size` bytes (rounded up to a whole line) of the lines of `sources`, shuffled again for
/// each pass, to `path`.
pub(crate) fn generate(path: &Path, size: u64, sources: &[PathBuf]) -> Result<(), String> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for source in sources {
        let text = std::fs::read(source).map_err(|e| format!("{}: {e}", source.display()))?;
        lines.extend(
            text.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| [l, b"\n"].concat()),
        );
    }
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = BufWriter::with_capacity(MIB as usize, file);
    // xorshift64*: a fixed seed, so every run counts the same text.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut written = 0u64;
    while written < size {
        for i in (1..lines.len()).rev() {
            lines.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        for line in &lines {
            out.write_all(line).map_err(|e| e.to_string())?;
            written += line.len() as u64;
            if written >= size {
                break;
            }
        }
    }
    out.flush().map_err(|e| e.to_string())
}

/// Free bytes on the file system of `dir` (what `df` reports as available).
fn free_bytes(dir: &Path) -> Result<u64, String> {
    let c_dir = CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: `statvfs` is a C struct of integers only, for which all-zero bytes are a valid
    // value.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_dir` is a NUL-terminated string and `stat` a writable `statvfs`, both alive for
    // the call, which is all `statvfs(3)` reads and writes.
    if unsafe { libc::statvfs(c_dir.as_ptr(), &mut stat) } != 0 {
        return Err(format!("statvfs {}", dir.display()));
    }
    Ok(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// What a measured child process did.
pub(crate) struct Run {
    pub(crate) seconds: f64,
    pub(crate) max_rss_mib: f64,
    pub(crate) stdout: String,
}

/// Runs `command`, reaping it with `wait4` for its resource usage: wall time, and the peak
/// resident memory of the child or of the largest of the children it waited for.
pub(crate) fn run_measured(mut command: Command) -> Result<Run, String> {
    command.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let start = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("{command:?}: {e}"))?;
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout)
            .map_err(|e| e.to_string())?;
    }
    let mut status = 0;
    // SAFETY: `rusage` is a C struct of integers and `timeval`s only, for which all-zero bytes
    // are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `wait4` writes only to `status` and `usage`, locals alive for the call. The pid
    // is our own child, not yet reaped (nothing else waits for it: `child` is dropped without
    // `wait`), so no other process's status is taken.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    if pid < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{command:?} failed (wait status {status})"));
    }
    Ok(Run {
        seconds,
        // Linux reports `ru_maxrss` in KiB.
        max_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        stdout,
    })
}

/// The first line of each output as (count, word).
fn top_word(output: &str) -> Option<(u64, String)> {
    let line = output.lines().find(|l| !l.trim().is_empty())?;
    let mut parts = line.split_whitespace();
    let count = parts.next()?.parse().ok()?;
    Some((count, parts.next()?.to_owned()))
}

/// The figure: generates the input in a temporary folder (removed afterwards), runs both.
pub fn figure(paths: &Paths, settings: &Settings) -> Result<Figure, String> {
    let size = settings.wordfreq_mib * MIB;
    let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    // The input, and room for sort's temporary files.
    let needed = 3 * size + 512 * MIB;
    let free = free_bytes(dir.path())?;
    if free < needed {
        return Err(format!(
            "wordfreq: {} MiB free in {}, {} MiB needed; use --wordfreq-mib",
            free / MIB,
            dir.path().display(),
            needed / MIB
        ));
    }
    let input = dir.path().join("input.txt");
    let started = Instant::now();
    generate(&input, size, &sources(paths))?;
    let generated = started.elapsed().as_secs_f64();

    // A plugins folder with wordfreq only.
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).map_err(|e| e.to_string())?;
    let library = paths.rust_plugin("wordfreq");
    std::fs::copy(
        &library,
        plugins.join(library.file_name().unwrap_or_default()),
    )
    .map_err(|e| format!("{}: {e}", library.display()))?;

    let wordfreq = || {
        let mut command = Command::new(paths.plughost());
        command
            .arg("--plugins")
            .arg(&plugins)
            .args(["run", "wordfreq", "--top", "10"])
            .arg(&input)
            .env_remove("RUST_LOG");
        run_measured(command)
    };
    let pipeline = || {
        let mut command = Command::new("sh");
        command.args(["-c", PIPELINE, "sh"]).arg(&input);
        run_measured(command)
    };
    // The file is in the page cache for both (it was just written, and memory is ample).
    let mut ours = wordfreq()?;
    if !settings.quick {
        let again = wordfreq()?;
        if again.seconds < ours.seconds {
            ours = again;
        }
    }
    let theirs = pipeline()?;
    let agree = match (top_word(&ours.stdout), top_word(&theirs.stdout)) {
        (Some(a), Some(b)) if a == b => format!("top word agrees: {} x{}", a.1, a.0),
        (a, b) => format!("top words differ: {a:?} vs {b:?}"),
    };
    Ok(Figure {
        name: "wordfreq",
        value: ours.seconds,
        unit: "s",
        ratio: ours.seconds / theirs.seconds,
        target: Target::FasterAndBounded,
        bound: Some((ours.max_rss_mib, MEMORY_BOUND_MIB)),
        details: format!(
            "{} MiB input; {:.0} MB/s; coreutils pipeline {:.2} s; max RSS {:.1} MiB (bound {MEMORY_BOUND_MIB} MiB) vs pipeline {:.1} MiB; {agree}; input generated in {generated:.1} s",
            settings.wordfreq_mib,
            size as f64 / 1e6 / ours.seconds,
            theirs.seconds,
            ours.max_rss_mib,
            theirs.max_rss_mib,
        ),
    })
}
