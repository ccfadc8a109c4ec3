//! Typed interfaces between plugins, through the host core.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use plughost_testing::MockHost;
use plugin_api::abi::PhResult;
use plugin_api::{Command, Error, Host, Plugin, Remote};

#[plugin_api::interface(id = "test.kv", version = 1)]
pub trait Kv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    fn put(&self, key: &str, value: &[u8]) -> Result<(), Error>;
    fn count(&self) -> Result<u64, Error>;
    fn scan(&self, prefix: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), Error>;
}

#[derive(Default)]
struct MemKv(Mutex<BTreeMap<String, Vec<u8>>>);

impl Kv for MemKv {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::with_code(PhResult::InvalidArgument, "empty key"));
        }
        self.0
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    fn count(&self) -> Result<u64, Error> {
        Ok(self.0.lock().unwrap().len() as u64)
    }
    fn scan(&self, prefix: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), Error> {
        for (k, v) in self.0.lock().unwrap().range(prefix.to_owned()..) {
            if !k.starts_with(prefix) || !f(k, v) {
                break;
            }
        }
        Ok(())
    }
}

struct Provider;

impl Plugin for Provider {
    const NAME: &'static str = "provider";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Provides test.kv";
    const PROVIDES: &'static [plugin_api::abi::PhInterfaceVersion] =
        &[plugin_api::provides::<dyn Kv>()];

    fn init(host: &Host) -> Result<Self, Error> {
        host.provide::<dyn Kv>(Arc::new(MemKv::default()))?;
        Ok(Provider)
    }
}

struct Caller;

impl Plugin for Caller {
    const NAME: &'static str = "caller";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Uses test.kv";
    const REQUIRES: &'static [plugin_api::abi::PhInterfaceVersion] =
        &[plugin_api::requires::<dyn Kv>()];

    fn init(host: &Host) -> Result<Self, Error> {
        let kv: Arc<Remote<dyn Kv>> = Arc::new(host.query::<dyn Kv>()?);
        host.register_command(Command::new("kv"), move |args, out| {
            match args {
                ["put", key, value] => kv.put(key, value.as_bytes())?,
                ["get", key] => match kv.get(key)? {
                    Some(value) => writeln!(out, "{}", String::from_utf8_lossy(&value))?,
                    None => writeln!(out, "(none)")?,
                },
                ["count"] => writeln!(out, "{}", kv.count()?)?,
                ["scan", prefix, limit] => {
                    let mut left: usize = limit.parse()?;
                    kv.scan(prefix, &mut |k, v| {
                        let _ = writeln!(out, "{k}={}", String::from_utf8_lossy(v));
                        left -= 1;
                        left > 0
                    })?;
                }
                _ => return Err(Error::new("usage")),
            }
            Ok(())
        })?;
        Ok(Caller)
    }
}

#[test]
fn a_plugin_calls_what_another_provides() {
    let mut host = MockHost::new();
    host.load::<Provider>().unwrap();
    host.load::<Caller>().unwrap();
    assert_eq!(host.run("kv", &["get", "a"]).unwrap(), "(none)\n");
    host.run("kv", &["put", "a.1", "one"]).unwrap();
    host.run("kv", &["put", "a.2", "two"]).unwrap();
    host.run("kv", &["put", "b", "three"]).unwrap();
    assert_eq!(host.run("kv", &["get", "a.2"]).unwrap(), "two\n");
    assert_eq!(host.run("kv", &["count"]).unwrap(), "3\n");
    // The callback stops the scan after one entry: EnumWindows style, across the boundary.
    assert_eq!(host.run("kv", &["scan", "a.", "1"]).unwrap(), "a.1=one\n");
    assert_eq!(
        host.run("kv", &["scan", "a.", "9"]).unwrap(),
        "a.1=one\na.2=two\n"
    );
    // The provider's error crosses with its code and message.
    let error = host.run("kv", &["put", "", "x"]).unwrap_err();
    assert_eq!(error.code(), PhResult::InvalidArgument);
    assert!(error.message().contains("empty key"), "{}", error.message());
}

#[test]
fn a_caller_whose_requirement_is_missing_is_refused() {
    let mut host = MockHost::new();
    let error = host.load::<Caller>().unwrap_err();
    assert!(
        error
            .message()
            .contains("requires the interface test.kv 1.0"),
        "{}",
        error.message()
    );
}

#[test]
fn the_application_provides_to_plugins_and_calls_what_they_provide() {
    // A fake provider from the test: the plugin that requires it is tested alone.
    let mut host = MockHost::new();
    let fake = Arc::new(MemKv::default());
    fake.put("seeded", b"by the test").unwrap();
    host.provide::<dyn Kv>(fake).unwrap();
    host.load::<Caller>().unwrap();
    assert_eq!(host.run("kv", &["get", "seeded"]).unwrap(), "by the test\n");
    host.shutdown();

    // The other way: the test calls the plugin's provider.
    let mut host = MockHost::new();
    host.load::<Provider>().unwrap();
    let kv = host.interface::<dyn Kv>().unwrap();
    kv.put("k", b"v").unwrap();
    assert_eq!(kv.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(kv.minor(), 0);
}

/// Provides `test.kv` and faults on demand.
struct Fragile;

impl Plugin for Fragile {
    const NAME: &'static str = "fragile";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Provides test.kv, panics in `crash`";

    fn init(host: &Host) -> Result<Self, Error> {
        host.provide::<dyn Kv>(Arc::new(MemKv::default()))?;
        host.register_command(Command::new("crash"), |_, _| panic!("crash"))?;
        Ok(Fragile)
    }
}

#[test]
fn a_caller_gets_an_error_once_the_provider_faults_or_shuts_down() {
    let mut host = MockHost::new();
    let ended = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ended);
    host.host()
        .subscribe(plughost::INTERFACE_ENDED_TOPIC, move |_, payload| {
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(payload).into_owned());
        })
        .unwrap();
    host.load::<Fragile>().unwrap();
    let kv = host.interface::<dyn Kv>().unwrap();
    kv.put("a", b"1").unwrap();
    assert!(kv.is_alive());
    assert_eq!(
        host.run("crash", &[]).unwrap_err().code(),
        PhResult::Panicked
    );
    // Faulted: every later call is refused without reaching the provider.
    assert!(!kv.is_alive());
    assert_eq!(kv.get("a").unwrap_err().code(), PhResult::ShutDown);
    assert_eq!(*ended.lock().unwrap(), ["test.kv 1"]);
    // Nobody provides it any more.
    assert_eq!(
        host.interface::<dyn Kv>().unwrap_err().code(),
        PhResult::NotFound
    );

    let mut host = MockHost::new();
    host.load::<Provider>().unwrap();
    let kv = host.interface::<dyn Kv>().unwrap();
    host.shutdown();
    assert_eq!(kv.count().unwrap_err().code(), PhResult::ShutDown);
    drop(kv);
}

#[test]
fn versions_and_sizes_must_match() {
    let host = MockHost::new();
    // A provider whose table is smaller than the caller's (an older minor of the same major).
    static SHORT: [usize; 1] = [0];
    // SAFETY: the table is never called (the query is refused), and `destroy` is NULL.
    unsafe {
        host.host()
            .provide_raw(
                "test.kv",
                1,
                0,
                "",
                std::ptr::null(),
                SHORT.as_ptr().cast(),
                std::mem::size_of_val(&SHORT) as u32,
                std::ptr::null_mut(),
                None,
            )
            .unwrap();
    }
    assert_eq!(
        host.interface::<dyn Kv>().unwrap_err().code(),
        PhResult::VersionMismatch
    );
    // Another major is another interface.
    let Err(other) = host.host().query_raw("test.kv", 2, 0) else {
        panic!("major 2 is not provided");
    };
    assert!(other.to_string().contains("not found"), "{other}");
}

mod other {
    use plugin_api::Error;

    /// `test.kv` 1 as another crate might (wrongly) define it: the same id and version, other
    /// functions.
    #[plugin_api::interface(id = "test.kv", version = 1)]
    pub trait Kv {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;
        fn put(&self, key: &str, value: &[u8]) -> Result<(), Error>;
        fn count(&self) -> Result<u64, Error>;
        fn scan(&self, prefix: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), Error>;
    }
}

#[test]
fn a_table_with_other_functions_under_the_same_version_is_refused_in_one_line() {
    let mut host = MockHost::new();
    host.load::<Provider>().unwrap();
    let error = host.interface::<dyn other::Kv>().unwrap_err();
    assert_eq!(error.code(), PhResult::VersionMismatch);
    assert_eq!(error.message().lines().count(), 1, "{}", error.message());
    assert!(
        error.message().contains(
            "interface test.kv 1: the provider's table differs from this one: it has \
             `get(&str)->Result<Option<Vec<u8>>,Error>` where this one has \
             `get(&[u8])->Result<Option<Vec<u8>>,Error>`"
        ),
        "{}",
        error.message()
    );
    // The matching definition works.
    assert!(host.interface::<dyn Kv>().is_ok());
}

/// A provider that counts its drops and panics on an empty prefix in `scan`.
struct Tracked {
    inner: MemKv,
    drops: Arc<std::sync::atomic::AtomicUsize>,
}

impl Tracked {
    fn new(drops: &Arc<std::sync::atomic::AtomicUsize>) -> Tracked {
        Tracked {
            inner: MemKv::default(),
            drops: Arc::clone(drops),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Kv for Tracked {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.inner.get(key)
    }
    fn put(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.inner.put(key, value)
    }
    fn count(&self) -> Result<u64, Error> {
        self.inner.count()
    }
    fn scan(&self, prefix: &str, f: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), Error> {
        assert!(!prefix.is_empty(), "scan of everything");
        self.inner.scan(prefix, f)
    }
}

fn drops() -> Arc<std::sync::atomic::AtomicUsize> {
    Arc::new(std::sync::atomic::AtomicUsize::new(0))
}

fn count_of(drops: &Arc<std::sync::atomic::AtomicUsize>) -> usize {
    drops.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn a_concrete_provider_is_called_directly_and_dropped_after_the_last_release() {
    let dropped = drops();
    let host = MockHost::new();
    // `Arc<Tracked>`, not `Arc<dyn Kv>`: the table of `Tracked`'s own adapters.
    let handle = host
        .host()
        .provide::<dyn Kv>(Arc::new(Tracked::new(&dropped)))
        .unwrap();
    let kv = host.interface::<dyn Kv>().unwrap();
    kv.put("a", b"1").unwrap();
    assert_eq!(kv.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    let error = kv.put("", b"x").unwrap_err();
    assert_eq!(error.code(), PhResult::InvalidArgument);
    assert!(error.message().contains("empty key"), "{}", error.message());
    // The provision ends: calls are refused, but the state stays until the last release.
    host.host().unregister(handle).unwrap();
    assert!(!kv.is_alive());
    assert_eq!(kv.count().unwrap_err().code(), PhResult::ShutDown);
    assert_eq!(count_of(&dropped), 0);
    drop(kv);
    assert_eq!(count_of(&dropped), 1);
}

#[test]
fn a_provider_method_that_panics_returns_panicked_and_the_provider_keeps_serving() {
    let dropped = drops();
    let host = MockHost::new();
    host.provide::<dyn Kv>(Arc::new(Tracked::new(&dropped)))
        .unwrap();
    let kv = host.interface::<dyn Kv>().unwrap();
    kv.put("a", b"1").unwrap();
    let error = kv.scan("", &mut |_, _| true).unwrap_err();
    assert_eq!(error.code(), PhResult::Panicked);
    assert!(kv.is_alive());
    assert_eq!(kv.count().unwrap(), 1);
}

#[test]
fn a_shared_trait_object_can_still_be_provided() {
    let dropped = drops();
    let mut host = MockHost::new();
    let shared: Arc<dyn Kv> = Arc::new(Tracked::new(&dropped));
    host.provide::<dyn Kv>(Arc::clone(&shared)).unwrap();
    let kv = host.interface::<dyn Kv>().unwrap();
    kv.put("k", b"v").unwrap();
    assert_eq!(shared.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    host.shutdown();
    drop(kv);
    // The host released its clone; the test's is the last.
    assert_eq!(count_of(&dropped), 0);
    drop(shared);
    assert_eq!(count_of(&dropped), 1);
}

/// The destroy of [`a_provider_can_serve_state_it_owns_through_the_table_of_its_type`].
unsafe extern "C" fn release_tracked(state: *mut std::ffi::c_void) {
    // SAFETY: the `Box<Tracked>` leaked by the test, given back once.
    drop(unsafe { Box::from_raw(state.cast::<Tracked>()) });
}

#[test]
fn a_provider_can_serve_state_it_owns_through_the_table_of_its_type() {
    use plugin_api::{ProvidedBy, Provision};

    let dropped = drops();
    let mut host = MockHost::new();
    let state = Box::into_raw(Box::new(Tracked::new(&dropped)));
    // SAFETY: the table of `Tracked`, called with a `*const Tracked` valid until the destroy,
    // which releases it once.
    let provision = unsafe {
        Provision::<dyn Kv>::from_raw(
            <dyn Kv as ProvidedBy<Tracked>>::TABLE,
            state.cast(),
            release_tracked,
        )
    };
    host.provide::<dyn Kv>(provision).unwrap();
    let kv = host.interface::<dyn Kv>().unwrap();
    kv.put("x", b"y").unwrap();
    // SAFETY: the state is alive (the provision holds it) and only read here.
    let own = unsafe { &*state };
    assert_eq!(own.get("x").unwrap().as_deref(), Some(&b"y"[..]));
    drop(kv);
    host.shutdown();
    assert_eq!(count_of(&dropped), 1);

    // A provision never given to a host releases its state when dropped.
    let dropped = drops();
    let state = Box::into_raw(Box::new(Tracked::new(&dropped)));
    // SAFETY: as above.
    let provision = unsafe {
        Provision::<dyn Kv>::from_raw(
            <dyn Kv as ProvidedBy<Tracked>>::TABLE,
            state.cast(),
            release_tracked,
        )
    };
    drop(provision);
    assert_eq!(count_of(&dropped), 1);
}

#[plugin_api::interface(id = "test.ping", version = 1)]
pub trait Ping {
    fn ping(&self) -> Result<u32, Error>;
}

#[plugin_api::interface(id = "test.pong", version = 1)]
pub trait Pong {
    fn pong(&self) -> Result<u32, Error>;
}

struct Answers(u32);

impl Ping for Answers {
    fn ping(&self) -> Result<u32, Error> {
        Ok(self.0)
    }
}

impl Pong for Answers {
    fn pong(&self) -> Result<u32, Error> {
        Ok(self.0)
    }
}

/// Provides `test.ping` and requires `test.pong`.
struct PingSide;

impl Plugin for PingSide {
    const NAME: &'static str = "ping-side";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Provides test.ping, requires test.pong";
    const PROVIDES: &'static [plugin_api::abi::PhInterfaceVersion] =
        &[plugin_api::provides::<dyn Ping>()];
    const REQUIRES: &'static [plugin_api::abi::PhInterfaceVersion] =
        &[plugin_api::requires::<dyn Pong>()];

    fn init(host: &Host) -> Result<Self, Error> {
        host.provide::<dyn Ping>(Arc::new(Answers(1)))?;
        Ok(PingSide)
    }
}

/// Provides `test.pong` and requires `test.ping`: a cycle with [`PingSide`].
struct PongSide;

impl Plugin for PongSide {
    const NAME: &'static str = "pong-side";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "Provides test.pong, requires test.ping";
    const PROVIDES: &'static [plugin_api::abi::PhInterfaceVersion] =
        &[plugin_api::provides::<dyn Pong>()];
    const REQUIRES: &'static [plugin_api::abi::PhInterfaceVersion] =
        &[plugin_api::requires::<dyn Ping>()];

    fn init(host: &Host) -> Result<Self, Error> {
        host.provide::<dyn Pong>(Arc::new(Answers(2)))?;
        Ok(PongSide)
    }
}

/// Neither provides nor requires anything.
struct Plain;

impl Plugin for Plain {
    const NAME: &'static str = "plain";
    const VERSION: &'static str = "1.0.0";
    const DESCRIPTION: &'static str = "No interfaces";

    fn init(_: &Host) -> Result<Self, Error> {
        Ok(Plain)
    }
}

#[test]
fn several_linked_plugins_are_initialised_providers_first() {
    use plugin_api::linked_descriptor;

    let mut host = MockHost::new();
    // The user comes first in the list; the provider is initialised first all the same.
    host.load_all(&[
        linked_descriptor::<Caller>(),
        linked_descriptor::<Provider>(),
    ])
    .unwrap();
    let order: Vec<String> = host.host().plugins().into_iter().map(|p| p.name).collect();
    assert_eq!(order, ["provider", "caller"]);
    host.run("kv", &["put", "a", "1"]).unwrap();
    assert_eq!(host.run("kv", &["count"]).unwrap(), "1\n");
    host.shutdown();

    // Without its provider, the user is refused in one line naming what it requires; the
    // others load.
    let mut host = MockHost::new();
    let error = host
        .load_all(&[linked_descriptor::<Caller>(), linked_descriptor::<Plain>()])
        .unwrap_err();
    assert_eq!(error.code(), PhResult::InvalidArgument);
    assert!(
        error
            .message()
            .contains("requires the interface test.kv 1.0"),
        "{}",
        error.message()
    );
    let order: Vec<String> = host.host().plugins().into_iter().map(|p| p.name).collect();
    assert_eq!(order, ["plain"]);
}

#[test]
fn a_cycle_of_linked_plugins_is_refused_naming_it() {
    use plugin_api::linked_descriptor;

    let mut host = MockHost::new();
    let error = host
        .load_all(&[
            linked_descriptor::<PingSide>(),
            linked_descriptor::<PongSide>(),
        ])
        .unwrap_err();
    assert!(
        error.message().contains(
            "ping-side requires test.pong 1.0 (pong-side), pong-side requires test.ping 1.0 (ping-side)"
        ),
        "{}",
        error.message()
    );
    assert!(host.host().plugins().is_empty());
}

/// `test.tally` 1: served by a plugin's own state (`Host::provide_state`).
#[plugin_api::interface(id = "test.tally", version = 1)]
pub trait Tally {
    fn add(&self, n: u64) -> Result<u64, Error>;
}

/// Provides `test.tally` on its state.
struct Tallying(std::sync::atomic::AtomicU64);

impl Tally for Tallying {
    fn add(&self, n: u64) -> Result<u64, Error> {
        Ok(self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n)
    }
}

impl Plugin for Tallying {
    const NAME: &'static str = "tallying";

    fn init(host: &Host) -> Result<Self, Error> {
        host.provide_state::<dyn Tally, Self>()?;
        Ok(Tallying(Default::default()))
    }
}

/// Names another plugin's type as its state.
struct Mistaken;

impl Plugin for Mistaken {
    const NAME: &'static str = "mistaken";

    fn init(host: &Host) -> Result<Self, Error> {
        host.provide_state::<dyn Tally, Tallying>()?;
        Ok(Mistaken)
    }
}

#[test]
fn a_plugin_provides_an_interface_on_its_own_state() {
    let mut host = MockHost::new();
    host.load::<Tallying>().unwrap();
    let tally = host.interface::<dyn Tally>().unwrap();
    assert_eq!(tally.add(2).unwrap(), 2);
    assert_eq!(tally.add(3).unwrap(), 5);

    // Naming a type that is not the plugin's is refused, as for a handler.
    let mut host = MockHost::new();
    let error = host.load::<Mistaken>().unwrap_err();
    assert_eq!(error.code(), PhResult::InvalidArgument);
    let logged: Vec<_> = host.logs().into_iter().map(|r| r.message).collect();
    assert!(
        logged.iter().any(|m| m.contains(
            "interface `test.tally`: bound to `&interfaces::Tallying`, but this plugin's state is \
             `interfaces::Mistaken`"
        )),
        "{logged:?}"
    );
}

/// `test.shape` 1 as two builds of one crate might declare it (same crate, so the same package
/// for abi_stable): the same methods, so the same signature, but a `Size` with other fields.
mod shape_u32 {
    use plugin_api::Error;

    /// A size in whole units.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, abi_stable::StableAbi)]
    pub struct Size {
        pub width: u32,
        pub height: u32,
    }

    #[plugin_api::interface(id = "test.shape", version = 1)]
    pub trait Shape {
        fn area(&self, size: Size) -> Result<u64, Error>;
        fn grown(&self, size: Size, by: u32) -> Result<Size, Error>;
    }
}

mod shape_f32 {
    use plugin_api::Error;

    /// The same name, the same size, other fields.
    #[repr(C)]
    #[derive(Clone, Copy, abi_stable::StableAbi)]
    pub struct Size {
        pub width: f32,
        pub height: f32,
    }

    #[plugin_api::interface(id = "test.shape", version = 1)]
    pub trait Shape {
        fn area(&self, size: Size) -> Result<u64, Error>;
        fn grown(&self, size: Size, by: u32) -> Result<Size, Error>;
    }
}

/// Provides `shape_u32::Shape` and counts the calls it gets.
#[derive(Default)]
struct Shapes(std::sync::atomic::AtomicU64);

impl shape_u32::Shape for Shapes {
    fn area(&self, size: shape_u32::Size) -> Result<u64, Error> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(u64::from(size.width) * u64::from(size.height))
    }
    fn grown(&self, size: shape_u32::Size, by: u32) -> Result<shape_u32::Size, Error> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(shape_u32::Size {
            width: size.width + by,
            height: size.height + by,
        })
    }
}

/// Calls `test.shape` as `shape_f32` declares it.
struct FloatShapes;

impl Plugin for FloatShapes {
    const NAME: &'static str = "float-shapes";

    fn init(host: &Host) -> Result<Self, Error> {
        let host = host.clone();
        host.clone()
            .register_command(Command::new("area"), move |_, out| {
                let shape = host.query::<dyn shape_f32::Shape>()?;
                let size = shape_f32::Size {
                    width: 1.5,
                    height: 2.0,
                };
                let area = shape_f32::Shape::area(&shape, size)?;
                writeln!(out, "{area}")?;
                Ok(())
            })?;
        Ok(FloatShapes)
    }
}

#[test]
fn a_table_whose_layout_differs_under_the_same_signature_is_refused_in_one_line() {
    use plugin_api::Interface;

    assert_eq!(
        <dyn shape_u32::Shape as Interface>::SIGNATURE,
        <dyn shape_f32::Shape as Interface>::SIGNATURE,
        "the signature cannot tell the two apart"
    );
    let mut host = MockHost::new();
    let shapes = Arc::new(Shapes::default());
    host.provide::<dyn shape_u32::Shape>(Arc::clone(&shapes))
        .unwrap();
    host.load::<FloatShapes>().unwrap();

    // A plugin's query (`Host::query`) and the application's (`PluginHost::interface`).
    let from_plugin = host.run("area", &[]).unwrap_err();
    let from_application = host.interface::<dyn shape_f32::Shape>().unwrap_err();
    for error in [&from_plugin, &from_application] {
        assert_eq!(error.code(), PhResult::VersionMismatch, "{error}");
        let message = error.message();
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(
            message
                .contains("interface test.shape 1: the provider's table differs from this one: "),
            "{message}"
        );
        // abi_stable's first error, reduced as the load-time check reduces it, and where: the
        // field `width` of `area`'s first argument.
        assert!(
            message.contains(
                "differs from this one: at area.param_1.width: f32: mismatched type \
                 (expected f32, found u32)"
            ),
            "{message}"
        );
    }
    assert_eq!(
        shapes.0.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no call reached the provider"
    );

    // The matching declaration queries and calls, user types in and out.
    let shape = host.interface::<dyn shape_u32::Shape>().unwrap();
    let size = shape_u32::Size {
        width: 3,
        height: 4,
    };
    assert_eq!(shape_u32::Shape::area(&shape, size).unwrap(), 12);
    assert_eq!(
        shape_u32::Shape::grown(&shape, size, 1).unwrap(),
        shape_u32::Size {
            width: 4,
            height: 5
        }
    );
    assert_eq!(shapes.0.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// `test.counter` 1.0 and 1.1, as the crate that declares it had them: 1.1 adds `add` at the end.
mod counter_1_0 {
    use plugin_api::Error;

    #[plugin_api::interface(id = "test.counter", version = 1)]
    pub trait Counter {
        fn get(&self) -> Result<u64, Error>;
    }
}

mod counter_1_1 {
    use plugin_api::Error;

    #[plugin_api::interface(id = "test.counter", version = 1, minor = 1)]
    pub trait Counter {
        fn get(&self) -> Result<u64, Error>;
        fn add(&self, n: u64) -> Result<u64, Error>;
    }
}

#[derive(Default)]
struct Count(std::sync::atomic::AtomicU64);

impl counter_1_0::Counter for Count {
    fn get(&self) -> Result<u64, Error> {
        Ok(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

impl counter_1_1::Counter for Count {
    fn get(&self) -> Result<u64, Error> {
        Ok(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
    fn add(&self, n: u64) -> Result<u64, Error> {
        Ok(self.0.fetch_add(n, std::sync::atomic::Ordering::SeqCst) + n)
    }
}

/// A minor only adds functions at the end: a caller of 1.0 uses a provider of 1.1 (its functions
/// are the first of the provider's; abi_stable's check, which compares whole tables, is left to
/// callers of the provider's own minor), and a caller of 1.1 refuses a provider of 1.0.
#[test]
fn a_caller_of_an_older_minor_uses_a_newer_provider() {
    let host = MockHost::new();
    host.provide::<dyn counter_1_1::Counter>(Arc::new(Count::default()))
        .unwrap();
    let newer = host.interface::<dyn counter_1_1::Counter>().unwrap();
    assert_eq!(counter_1_1::Counter::add(&newer, 2).unwrap(), 2);
    let older = host.interface::<dyn counter_1_0::Counter>().unwrap();
    assert_eq!(older.minor(), 1);
    assert_eq!(counter_1_0::Counter::get(&older).unwrap(), 2);
    drop((newer, older));

    let host = MockHost::new();
    host.provide::<dyn counter_1_0::Counter>(Arc::new(Count::default()))
        .unwrap();
    let error = host.interface::<dyn counter_1_1::Counter>().unwrap_err();
    assert_eq!(error.code(), PhResult::VersionMismatch, "{error}");
}

/// `test.divide` 1: provided raw by [`raw_divide`], which writes its error message in the ways a
/// C provider may.
#[plugin_api::interface(id = "test.divide", version = 1)]
pub trait Divide {
    fn divide(&self, n: u64) -> Result<u64, Error>;
}

/// The raw provider of `test.divide` (100 divided by `n`), for the sink's contract as a C
/// provider sees it: 0 fails with its message in two writes, reading the sink each time; 1 fails
/// with two writes through a copy of the sink taken first; 2 writes a message and yet succeeds
/// (the message is dropped); 3 fails without a message.
///
/// # Safety
///
/// `out` is writable, `error` NULL or a sink valid for the call.
unsafe extern "C" fn raw_divide(
    _user_data: *mut std::ffi::c_void,
    n: u64,
    out: *mut u64,
    error: *const plugin_api::abi::PhBytesSink,
) -> plugin_api::abi::PhResultCode {
    use plugin_api::abi::PhBytes;
    let write = |bytes: &[u8]| {
        // SAFETY: the caller's sink, valid for this call (this function's contract).
        let sink = unsafe { &*error };
        // SAFETY: the sink's own function and context; the bytes outlive the call.
        unsafe { (sink.write)(sink.context, PhBytes::new(bytes)) }
    };
    match n {
        0 => {
            write(b"division ");
            write(b"by zero");
            PhResult::InvalidArgument.code()
        }
        1 => {
            // SAFETY: as in `write`.
            let sink = unsafe { *error };
            for part in [&b"one is "[..], b"refused"] {
                // SAFETY: as in `write`.
                unsafe { (sink.write)(sink.context, PhBytes::new(part)) };
            }
            PhResult::LimitExceeded.code()
        }
        2 => {
            write(b"a message on success");
            // SAFETY: writable (this function's contract).
            unsafe { out.write(50) };
            PhResult::Ok.code()
        }
        3 => PhResult::NotFound.code(),
        _ => {
            // SAFETY: writable (this function's contract).
            unsafe { out.write(100 / n) };
            PhResult::Ok.code()
        }
    }
}

/// The destroy of [`raw_divide`]'s provision, which has no state.
unsafe extern "C" fn release_nothing(_: *mut std::ffi::c_void) {}

#[test]
fn a_raw_providers_error_message_reaches_the_caller_however_it_is_written() {
    static TABLE: DivideTable = DivideTable { divide: raw_divide };
    let host = MockHost::new();
    // SAFETY: `raw_divide` reads no state, from any thread; the destroy does nothing.
    let provision = unsafe {
        plugin_api::Provision::<dyn Divide>::from_raw(&TABLE, std::ptr::null_mut(), release_nothing)
    };
    host.provide::<dyn Divide>(provision).unwrap();
    let divide = host.interface::<dyn Divide>().unwrap();
    for _ in 0..3 {
        assert_eq!(divide.divide(4).unwrap(), 25);
        let error = divide.divide(0).unwrap_err();
        assert_eq!(error.code(), PhResult::InvalidArgument);
        assert!(
            error.message().ends_with(": division by zero"),
            "{}",
            error.message()
        );
        let error = divide.divide(1).unwrap_err();
        assert_eq!(error.code(), PhResult::LimitExceeded);
        assert!(
            error.message().ends_with(": one is refused"),
            "{}",
            error.message()
        );
        // A message written by a call that succeeds goes nowhere: not to the next failure.
        assert_eq!(divide.divide(2).unwrap(), 50);
        let error = divide.divide(3).unwrap_err();
        assert_eq!(error.code(), PhResult::NotFound);
        assert!(!error.message().contains("success"), "{}", error.message());
    }
}
