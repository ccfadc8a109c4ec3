//! `event-fanout` and `event-fanout-2-threads`: one publish delivered to 1,000 subscriber
//! callbacks of 10 C plugins (100 each).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use plughost::PluginHost;
use plugin_api::abi::{PhBytes, PhEventCallback, PhResult, PhStr};

use crate::report::{Figure, Target};
use crate::Settings;

/// How many plugins subscribe.
pub const PLUGINS: usize = 10;
/// How many callbacks each plugin subscribes.
pub const PER_PLUGIN: usize = 100;
/// The topic they subscribe to.
pub const TOPIC: &str = "bench.fanout";

/// The subscribers of one C bench plugin, read through its `bench_subscribers` export.
type SubscribersFn =
    unsafe extern "C" fn(*mut PhEventCallback, *mut *mut std::ffi::c_void, usize) -> usize;
/// How many events a C bench plugin's subscribers counted (`bench_counted`).
type CountedFn = unsafe extern "C" fn() -> u64;

/// The plugin names of the fanout libraries.
pub fn names() -> Vec<String> {
    (0..PLUGINS).map(|i| format!("fanout{i}")).collect()
}

/// The callbacks and user data that the plugins in `dir` subscribed, for the plain loop, and
/// their counting functions. The libraries are the ones the host loaded (same paths, so the
/// dynamic loader hands back the same instances).
struct Subscribers {
    table: Vec<(PhEventCallback, usize)>,
    counted: Vec<CountedFn>,
    _libraries: Vec<libloading::Library>,
}

impl Subscribers {
    fn read(dir: &Path) -> Result<Subscribers, String> {
        let mut table = Vec::new();
        let mut counted = Vec::new();
        let mut libraries = Vec::new();
        for path in plughost::discover(dir).map_err(|e| e.to_string())? {
            // SAFETY: `path` is one of the bench's own C plugins, which the host in `figures` has
            // already loaded from this path: the dynamic loader returns that instance (it defines no
            // initialisers anyway), and opening it only takes another reference.
            let library = unsafe { libloading::Library::new(&path) }.map_err(|e| e.to_string())?;
            // SAFETY: `bench_plugin.c` exports `bench_subscribers` and `bench_counted` with exactly
            // these C signatures; the copied function pointers stay valid because `library` is
            // kept in `_libraries` (and the library is never unloaded by the host either).
            let (subscribers, count) = unsafe {
                (
                    *library
                        .get::<SubscribersFn>(b"bench_subscribers\0")
                        .map_err(|e| e.to_string())?,
                    *library
                        .get::<CountedFn>(b"bench_counted\0")
                        .map_err(|e| e.to_string())?,
                )
            };
            let mut callbacks = vec![None::<PhEventCallback>; PER_PLUGIN];
            let mut user_data = vec![std::ptr::null_mut(); PER_PLUGIN];
            // SAFETY: both arrays hold `PER_PLUGIN` writable slots and the capacity passed is
            // `PER_PLUGIN`, so `bench_subscribers` writes inside them; `Option<PhEventCallback>`
            // has the layout of the C nullable function pointer it writes.
            let n = unsafe {
                subscribers(
                    callbacks.as_mut_ptr().cast(),
                    user_data.as_mut_ptr(),
                    PER_PLUGIN,
                )
            };
            if n != PER_PLUGIN {
                return Err(format!("{}: {n} subscribers", path.display()));
            }
            for (callback, data) in callbacks.into_iter().zip(user_data) {
                let callback = callback.ok_or("a NULL subscriber")?;
                table.push((callback, data as usize));
            }
            counted.push(count);
            libraries.push(library);
        }
        Ok(Subscribers {
            table,
            counted,
            _libraries: libraries,
        })
    }

    /// Calls every callback once, in a plain loop; returns how many did not return `Ok`.
    #[inline(always)]
    fn call_all(&self, topic: PhStr, payload: PhBytes) -> usize {
        let mut failed = 0;
        for &(callback, user_data) in &self.table {
            // SAFETY: each pair is a subscriber's callback and user data as the plugin itself
            // reported them: `on_event` and a pointer into its static `slots`, valid as long as
            // the library, which `_libraries` keeps open. `on_event` may run on any thread and
            // writes only when the payload starts with 'c'; topic and payload outlive the call.
            let code = unsafe { (callback.0)(user_data as *mut _, topic, payload) };
            if code != PhResult::Ok.code() {
                failed += 1;
            }
        }
        failed
    }

    fn counted(&self) -> u64 {
        // SAFETY: `bench_counted` (of a library kept open by `_libraries`) only reads the
        // plugin's static counters; it is called on the main thread while no publish runs, so
        // no subscriber writes them at the same time.
        self.counted.iter().map(|f| unsafe { f() }).sum()
    }
}

/// Publishes `publishes` events on each of `threads` threads at once; returns deliveries per
/// second. The threads start together (a barrier) and each times itself, so the rate is over the
/// slowest thread's time, without the main thread's wake-ups.
fn fanout_rate(host: &PluginHost, threads: usize, publishes: u64) -> f64 {
    let barrier = std::sync::Barrier::new(threads);
    let slowest = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..publishes {
                        host.publish(black_box(TOPIC), black_box(b"x"))
                            .expect("publish to the fanout topic");
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a publishing thread panicked"))
            .max()
            .unwrap_or_default()
    });
    (threads as u64 * publishes * (PLUGINS * PER_PLUGIN) as u64) as f64 / slowest.as_secs_f64()
}

/// Both fanout figures, with the C plugins in `dir` loaded into a fresh host.
pub fn figures(dir: &Path, settings: &Settings) -> Result<Vec<Figure>, String> {
    let mut host = PluginHost::new();
    host.load_dir(dir).map_err(|e| e.to_string())?;
    if let Some(refused) = host.refused().first() {
        return Err(format!("fanout plugin refused: {refused}"));
    }
    let subscribers = Subscribers::read(dir)?;
    let total = PLUGINS * PER_PLUGIN;
    if subscribers.table.len() != total {
        return Err(format!(
            "{} subscribers, not {total}",
            subscribers.table.len()
        ));
    }

    // Check that both ways reach every subscriber once.
    let before = subscribers.counted();
    host.publish(TOPIC, b"count").map_err(|e| e.to_string())?;
    let failed = subscribers.call_all(PhStr::new(TOPIC), PhBytes::new(b"count"));
    let delivered = subscribers.counted() - before;
    if delivered != 2 * total as u64 || failed != 0 {
        return Err(format!(
            "fanout check: {delivered} deliveries, expected {}",
            2 * total
        ));
    }

    // One thread: the host's publish against the plain loop.
    let publishes = settings.scale(4_000);
    let samples = settings.samples(15, 30);
    let (publish_ns, loop_ns) = crate::measure::best_pair(
        publishes,
        samples,
        || {
            host.publish(black_box(TOPIC), black_box(b"x"))
                .expect("publish to the fanout topic");
        },
        || {
            let failed = subscribers.call_all(PhStr::new(black_box(TOPIC)), PhBytes::new(b"x"));
            assert_eq!(failed, 0, "a subscriber failed");
        },
    );
    let host_rate = total as f64 * 1e9 / publish_ns;
    let loop_rate = total as f64 * 1e9 / loop_ns;

    // Two threads against one, sampled in turn.
    let (mut one, mut two) = (0f64, 0f64);
    for _ in 0..samples {
        one = one.max(fanout_rate(&host, 1, 2 * publishes));
        two = two.max(fanout_rate(&host, 2, 2 * publishes));
    }
    host.shutdown();
    Ok(vec![
        Figure {
            name: "event-fanout",
            value: host_rate,
            unit: "deliveries/s",
            ratio: host_rate / loop_rate,
            target: Target::RatioAtLeast(0.5),
            bound: None,
            details: format!(
                "plain loop {loop_rate:.0} deliveries/s; {:.2} ns vs {:.2} ns per delivery; best of {samples}x{publishes} publishes",
                publish_ns / total as f64,
                loop_ns / total as f64
            ),
        },
        Figure {
            name: "event-fanout-2-threads",
            value: two,
            unit: "deliveries/s",
            ratio: two / one,
            target: Target::RatioAtLeast(1.7),
            bound: None,
            details: format!("1 thread {one:.0} deliveries/s; best of {samples}"),
        },
    ])
}
