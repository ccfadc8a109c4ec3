//! `wordfreq`: `plughost run wordfreq` on a large text built from real text, against the
//! coreutils pipeline on the same file (wall time and peak memory of both), and against its limit
//! with no plugin boundary at all: the plugin's own counting code (the `wordfreq` crate, linked
//! here) called directly on the same file, on one thread and on as many as the host's worker
//! threads.

use std::convert::Infallible;
use std::ffi::CString;
use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use rayon::prelude::*;
use wordfreq::parallel::{self, InTurn, Tasks};
use wordfreq::ParallelCounter;

use crate::report::{Figure, Target};
use crate::setup::Paths;
use crate::Settings;

/// The coreutils pipeline of the issue; the file is `$1`.
const PIPELINE: &str = "LC_ALL=C tr -cs '[:alnum:]' '\\n' < \"$1\" | tr '[:upper:]' '[:lower:]' \
                        | sort | uniq -c | sort -rn | head";

/// The peak memory `plughost run wordfreq` may use, in MiB, whatever the input size.
const MEMORY_BOUND_MIB: f64 = 64.0;

/// The speed `plughost run wordfreq` must reach, in MB/s (10^6 bytes per second).
const SPEED_TARGET_MBPS: f64 = 400.0;

/// The share of the no-boundary speed that `plughost run wordfreq` must reach.
const BOUNDARY_TARGET_RATIO: f64 = 0.95;

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

/// The host's worker threads, as the host counts them: `PLUGHOST_TASK_THREADS`, else one per
/// core (`host/src/tasks.rs`).
fn task_threads() -> usize {
    std::env::var("PLUGHOST_TASK_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// Tasks on a rayon pool of its own, run as the host runs them (`install`, then a parallel
/// iterator over the task indices), with no boundary in between.
struct Pool(rayon::ThreadPool);

impl Tasks for Pool {
    type Error = Infallible;

    fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) -> Result<(), Infallible> {
        self.0.install(|| (0..count).into_par_iter().for_each(task));
        Ok(())
    }
}

/// The limit: the plugin's counting code called directly on `input` in `parts` parts with
/// `tasks`, and its output printed as the command prints it (`COUNT<TAB>WORD`, top 10).
fn count_directly(
    input: &Path,
    parts: usize,
    tasks: &impl Tasks<Error = Infallible>,
) -> Result<(f64, String), String> {
    let start = Instant::now();
    let file = std::fs::File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let mut counter = ParallelCounter::new(parts);
    let mut buffer = vec![0u8; parallel::block_size(parts)];
    counter
        .count_reader(file, &mut buffer, tasks)
        .map_err(|e| format!("{}: {e}", input.display()))?;
    let counter = counter.into_counter();
    let mut output = String::new();
    for (word, count) in counter.top(10) {
        let _ = writeln!(output, "{count}\t{word}");
    }
    Ok((start.elapsed().as_secs_f64(), output))
}

/// The figures: generates the input in a temporary folder (removed afterwards), runs
/// `plughost`, the no-boundary limits and the pipeline on it.
///
/// - `wordfreq`: `plughost` against the coreutils pipeline, with its memory bound;
/// - `wordfreq-vs-direct`: `plughost`'s speed against the same code called directly on as many
///   threads (at least [`BOUNDARY_TARGET_RATIO`]);
/// - `wordfreq-speed`: `plughost`'s speed itself (at least [`SPEED_TARGET_MBPS`]).
pub fn figures(paths: &Paths, settings: &Settings) -> Result<Vec<Figure>, String> {
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
    let threads = task_threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| format!("rayon pool: {e}"))?;
    let pool = Pool(pool);
    // The file is in the page cache for all (it was just written, and memory is ample). Each is
    // run in turn, best of several, so that a slow spell of the machine hits all alike.
    let rounds = settings.samples(5, 3);
    let mut ours: Option<Run> = None;
    let mut direct = f64::INFINITY;
    let mut single = f64::INFINITY;
    let mut same_output = true;
    for _ in 0..rounds {
        let run = wordfreq()?;
        let (seconds, output) = count_directly(&input, threads, &pool)?;
        direct = direct.min(seconds);
        same_output &= output == run.stdout;
        let (seconds, output) = count_directly(&input, 1, &InTurn)?;
        single = single.min(seconds);
        same_output &= output == run.stdout;
        if ours.as_ref().is_none_or(|best| run.seconds < best.seconds) {
            ours = Some(run);
        }
    }
    let ours = ours.ok_or("no run")?;
    let theirs = pipeline()?;
    let agree = match (top_word(&ours.stdout), top_word(&theirs.stdout)) {
        (Some(a), Some(b)) if a == b => format!("top word agrees: {} x{}", a.1, a.0),
        (a, b) => format!("top words differ: {a:?} vs {b:?}"),
    };
    let mbps = |seconds: f64| size as f64 / 1e6 / seconds;
    let speed = mbps(ours.seconds);
    let limits = format!(
        "no boundary: {threads} threads {:.0} MB/s ({direct:.2} s), 1 thread {:.0} MB/s ({single:.2} s); {}",
        mbps(direct),
        mbps(single),
        if same_output {
            "same output"
        } else {
            "OUTPUTS DIFFER"
        }
    );
    Ok(vec![
        Figure {
            name: "wordfreq",
            value: ours.seconds,
            unit: "s",
            ratio: ours.seconds / theirs.seconds,
            target: Target::FasterAndBounded,
            bound: Some((ours.max_rss_mib, MEMORY_BOUND_MIB)),
            details: format!(
                "{} MiB input; {speed:.0} MB/s; coreutils pipeline {:.2} s; max RSS {:.1} MiB (bound {MEMORY_BOUND_MIB} MiB) vs pipeline {:.1} MiB; {agree}; input generated in {generated:.1} s",
                settings.wordfreq_mib,
                theirs.seconds,
                ours.max_rss_mib,
                theirs.max_rss_mib,
            ),
        },
        Figure {
            name: "wordfreq-vs-direct",
            value: speed,
            unit: "MB/s",
            // Speeds, so higher is better: plughost's over the limit's.
            ratio: if same_output { direct / ours.seconds } else { 0.0 },
            target: Target::RatioAtLeast(BOUNDARY_TARGET_RATIO),
            bound: None,
            details: format!("{limits}; best of {rounds}"),
        },
        Figure {
            name: "wordfreq-speed",
            value: speed,
            unit: "MB/s",
            ratio: speed / SPEED_TARGET_MBPS,
            target: Target::ValueAtLeast(SPEED_TARGET_MBPS),
            bound: None,
            details: format!(
                "{} MiB input, {threads} worker threads ({}); {limits}",
                settings.wordfreq_mib,
                crate::machine_state()
            ),
        },
    ])
}
