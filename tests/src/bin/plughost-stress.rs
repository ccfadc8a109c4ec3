//! `plughost-stress ROUNDS LIBRARY`: the lifetime stress test's driver (see `tests/tests/stress.rs`).
//!
//! Each round makes a new host, loads the `stress` test plugin (whose `init` starts worker
//! threads that register, publish, enumerate and unregister without pause and are never joined),
//! publishes `stress.count` events, and ends the plugin one of three ways: `shutdown`, a fault
//! (a command that reports a panic) followed by dropping the host, or dropping the host alone.
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(rounds), Some(library)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: plughost-stress ROUNDS LIBRARY");
        return ExitCode::from(2);
    };
    let Ok(rounds) = rounds.parse::<u64>() else {
        eprintln!("plughost-stress: ROUNDS must be a number, not {rounds:?}");
        return ExitCode::from(2);
    };
    let library = std::path::Path::new(library);
    let start = Instant::now();
    let mut ends = [0u64; 3];
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
            std::thread::yield_now();
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
    let counters = || {
        let mut values = [0u64; 10];
        // SAFETY: `library` is the stress plugin, which the hosts above loaded and never unload:
        // opening it again runs no initialiser and returns the same instance, and forgetting the
        // handle keeps it open. Its `stress_counters` has the declared type (see the fixture) and
        // writes `COUNTERS` = 10 `u64`s to `values`, an aligned local array of exactly 10.
        unsafe {
            let lib = libloading::Library::new(library).expect("the stress plugin is loaded");
            let f: libloading::Symbol<unsafe extern "C" fn(*mut u64)> =
                lib.get(b"stress_counters\0").expect("stress_counters");
            f(values.as_mut_ptr());
            std::mem::forget(lib);
        }
        values
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
    let published = rounds * EVENTS_PER_ROUND;
    println!(
        "rounds={rounds} (shutdown {}, fault {}, drop {})",
        ends[0], ends[1], ends[2]
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
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
