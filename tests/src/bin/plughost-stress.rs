//! `plughost-stress ROUNDS LIBRARY [reload]`: the lifetime stress test's driver (see
//! `tests/tests/stress.rs`).
//!
//! Each round makes a new host, loads the `stress` test plugin (whose `init` starts worker
//! threads that register, publish, enumerate and unregister without pause and are never joined),
//! publishes `stress.count` events, and ends the plugin one of three ways: `shutdown`, a fault
//! (a command that reports a panic) followed by dropping the host, or dropping the host alone.
//! With `reload`, each round also reloads the plugin [`RELOADS_PER_ROUND`] times while another
//! thread publishes `stress.count` without pause: the workers of the old version (retired, then
//! shut down) and of the new one (its registrations staged during its `init`, then swapped in)
//! run into every step of the reload. Each reload loads a private copy of the library, with its
//! own counters: the driver adds up the counters of every copy loaded (found in
//! `/proc/self/maps`).
//!
//! After the last round it waits for every worker to see `SHUT_DOWN` and exit, then checks the
//! plugin's counters:
//!
//! - every registration call got its `destroy` exactly once (destroyed == attempts: accepted
//!   ones when they ended, refused ones before the call returned);
//! - no callback or `destroy` saw a token whose `destroy` had run (bad magic == 0), and the
//!   plugin's `enumerate_commands` never got freed plugin data;
//! - every `stress.count` published while the plugin was active was delivered, exactly once.
//!
//! Prints one `key=value` line per figure and exits 0 if every check holds, 1 otherwise.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use plughost::PluginHost;

/// `stress.count` events published per round.
const EVENTS_PER_ROUND: u64 = 5;

/// Reloads per round in `reload` mode.
const RELOADS_PER_ROUND: u64 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(rounds), Some(library)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: plughost-stress ROUNDS LIBRARY [reload]");
        return ExitCode::from(2);
    };
    let reload = match args.get(3).map(String::as_str) {
        None => false,
        Some("reload") => true,
        Some(other) => {
            eprintln!("plughost-stress: unknown mode {other:?}");
            return ExitCode::from(2);
        }
    };
    let Ok(rounds) = rounds.parse::<u64>() else {
        eprintln!("plughost-stress: ROUNDS must be a number, not {rounds:?}");
        return ExitCode::from(2);
    };
    let library = std::path::Path::new(library);
    let start = Instant::now();
    let mut ends = [0u64; 3];
    let mut published = 0;
    let mut reloads = 0;
    for round in 0..rounds {
        let mut host = PluginHost::new();
        if let Err(e) = host.load(library) {
            eprintln!("plughost-stress: round {round}: {e}");
            return ExitCode::FAILURE;
        }
        for _ in 0..EVENTS_PER_ROUND {
            if let Err(e) = host.publish("stress.count", b"") {
                eprintln!("plughost-stress: round {round}: {e}");
                return ExitCode::FAILURE;
            }
            published += 1;
            std::thread::yield_now();
        }
        if reload {
            let stop = std::sync::atomic::AtomicBool::new(false);
            let outcome = std::thread::scope(|scope| {
                let publisher = scope.spawn(|| {
                    let mut sent = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        host.publish("stress.count", b"")
                            .map_err(|e| e.to_string())?;
                        sent += 1;
                    }
                    Ok::<u64, String>(sent)
                });
                let mut result = Ok(());
                for _ in 0..RELOADS_PER_ROUND {
                    if let Err(e) = host.reload("stress") {
                        result = Err(e.to_string());
                        break;
                    }
                    reloads += 1;
                }
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                let sent = publisher
                    .join()
                    .map_err(|_| "the publisher panicked".to_owned());
                result.and(sent.and_then(|sent| sent))
            });
            match outcome {
                Ok(sent) => published += sent,
                Err(e) => {
                    eprintln!("plughost-stress: round {round}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let end = (round % 3) as usize;
        ends[end] += 1;
        match end {
            0 => host.shutdown(),
            1 => {
                let failed = host.run_command("stress-fault-now", &[] as &[&str], &mut Vec::new());
                if !matches!(failed, Err(plughost::CommandError::Panicked { .. })) {
                    eprintln!("plughost-stress: round {round}: the fault command gave {failed:?}");
                    return ExitCode::FAILURE;
                }
            }
            _ => {}
        }
        drop(host);
    }
    let copies = loaded_copies(library);
    let counters = || {
        let mut sum = [0u64; 10];
        for copy in &copies {
            let mut values = [0u64; 10];
            // SAFETY: `copy` is the file or a private copy of the stress plugin, which the hosts
            // above loaded and never unload: the dynamic loader finds it among the loaded
            // libraries (by its name, or its file) and returns it without loading anything or
            // running an initialiser, and forgetting the handle keeps it open. Its
            // `stress_counters` has the declared type (see the fixture) and writes
            // `COUNTERS` = 10 `u64`s to `values`, an aligned local array of exactly 10.
            unsafe {
                let lib = libloading::Library::new(copy).expect("the stress plugin is loaded");
                let f: libloading::Symbol<unsafe extern "C" fn(*mut u64)> =
                    lib.get(b"stress_counters\0").expect("stress_counters");
                f(values.as_mut_ptr());
                std::mem::forget(lib);
            }
            for (total, value) in sum.iter_mut().zip(values) {
                *total += value;
            }
        }
        sum
    };
    // The workers stop by themselves after a few `SHUT_DOWN` answers.
    let deadline = Instant::now() + Duration::from_secs(120);
    while counters()[8] > 0 {
        if Instant::now() > deadline {
            eprintln!("plughost-stress: worker threads still running after 120 s");
            return ExitCode::FAILURE;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let [attempts, accepted, refused_shut_down, destroyed, bad_magic, counted, dead_data, after_end, live, ticks] =
        counters();
    println!(
        "rounds={rounds} (shutdown {}, fault {}, drop {}) reloads={reloads} libraries={}",
        ends[0],
        ends[1],
        ends[2],
        copies.len()
    );
    println!("registrations={attempts} accepted={accepted} refused_shut_down={refused_shut_down} destroyed={destroyed}");
    println!("published={published} delivered={counted} ticks={ticks}");
    println!("bad_magic={bad_magic} dead_plugin_data={dead_data} shut_down_answers={after_end} live_threads={live}");
    println!("seconds={:.2}", start.elapsed().as_secs_f64());
    let mut ok = true;
    let mut expect = |what: &str, holds: bool| {
        if !holds {
            eprintln!("plughost-stress: FAILED: {what}");
            ok = false;
        }
    };
    expect(
        "every registration destroyed exactly once (destroyed == registrations)",
        destroyed == attempts,
    );
    expect(
        "no callback or destroy on a destroyed token (bad_magic == 0)",
        bad_magic == 0,
    );
    expect("no enumeration given released plugin data", dead_data == 0);
    expect(
        "every stress.count delivered exactly once",
        counted == published,
    );
    expect(
        "workers saw SHUT_DOWN after the end of their plugin",
        after_end > 0,
    );
    expect(
        "one library per reload, beside the file itself",
        copies.len() as u64 == reloads + 1,
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The stress plugin's libraries loaded in this process: `library` itself, and the private copy
/// that each reload loaded (named like it, in folders of their own; their hosts are gone, so the
/// files are too, and `/proc/self/maps` marks them deleted). The dynamic loader still knows each
/// by its name.
fn loaded_copies(library: &std::path::Path) -> Vec<std::path::PathBuf> {
    let file_name = library.file_name().expect("a library file");
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    let mut found = vec![library.to_owned()];
    let original = std::fs::canonicalize(library).ok();
    for line in maps.lines() {
        // ADDRESS PERMS OFFSET DEVICE INODE PATH: the path is what follows the fifth field.
        let Some(path) = line.splitn(6, char::is_whitespace).nth(5) else {
            continue;
        };
        let path = path.trim_start();
        let path = std::path::PathBuf::from(path.strip_suffix(" (deleted)").unwrap_or(path));
        if path.file_name() == Some(file_name)
            && Some(&path) != original.as_ref()
            && !found.contains(&path)
        {
            found.push(path);
        }
    }
    found
}
