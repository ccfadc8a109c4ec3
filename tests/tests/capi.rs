//! The host's C API (`plughost-capi`, `host/capi/`), called as C calls it, on real plugins: each
//! function's result codes, the callbacks (output, error, refusals, enumerations, events, log),
//! `destroy` exactly once, and callbacks that return garbage.
//!
//! The functions are called through the crate's Rust library (the same code as
//! `libplughost_host.so`); `embed_c.rs` and `embed_python.rs` go through the shared library.

use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use integration_tests::{plugins_dir, reference_word_counts, run, workspace_root};
use plughost_host::*;
use plugin_api::abi::{
    PhBytes, PhBytesSink, PhCommandInfo, PhDestroyCallback, PhEventCallback, PhHandle, PhInterface,
    PhInterfaceDecl, PhPluginInfo, PhResult, PhResultCode, PhStr,
};

const OK: PhResultCode = PhResult::Ok as u32;

fn code(result: PhResult) -> PhResultCode {
    result.code()
}

/// The bytes of a path, as the C API takes them.
fn path_bytes(path: &Path) -> PhBytes {
    use std::os::unix::ffi::OsStrExt;
    PhBytes::new(path.as_os_str().as_bytes())
}

/// Reads a view the library passed to a callback.
///
/// # Safety
///
/// `s` must view readable bytes for the duration of the borrow.
unsafe fn string(s: PhStr) -> String {
    // SAFETY: the caller's contract.
    String::from_utf8_lossy(unsafe { PhBytes::from(s).to_bytes() }.unwrap()).into_owned()
}

/// A host made and freed through the C API.
struct Host(*mut PhHost);

impl Host {
    fn new() -> Host {
        let mut host = std::ptr::null_mut();
        // SAFETY: `host` is writable.
        assert_eq!(unsafe { ph_host_new(&mut host) }, OK);
        assert!(!host.is_null());
        Host(host)
    }

    /// Loads `dir`; returns the code and the refusals as `PATH: REASON` lines.
    fn load_dir(&self, dir: &Path) -> (PhResultCode, Vec<String>) {
        let mut lines: Vec<String> = Vec::new();
        // SAFETY: a live host used by this thread only; `lines` outlives the call.
        let code = unsafe {
            ph_host_load_dir(
                self.0,
                path_bytes(dir),
                Some(PhHostRefusedCallback(collect_refusal)),
                (&mut lines as *mut Vec<String>).cast(),
            )
        };
        (code, lines)
    }

    /// Runs a command; returns the code, the output and the error callback's (code, message).
    fn run(&self, command: &str, args: &[&str]) -> Ran {
        self.run_with(command, args, Some(PhHostOutputCallback(collect_output)))
    }

    fn run_with(&self, command: &str, args: &[&str], output: Option<PhHostOutputCallback>) -> Ran {
        let views: Vec<PhStr> = args.iter().map(|a| PhStr::new(a)).collect();
        self.run_views(PhStr::new(command), &views, output)
    }

    fn run_views(
        &self,
        command: PhStr,
        views: &[PhStr],
        output: Option<PhHostOutputCallback>,
    ) -> Ran {
        let mut ran = Ran::default();
        // SAFETY: a live host; the views borrow strings alive for the call; `ran` outlives it.
        ran.code = unsafe {
            ph_host_run(
                self.0,
                command,
                views.as_ptr(),
                views.len(),
                output,
                Some(PhHostErrorCallback(collect_error)),
                (&mut ran as *mut Ran).cast(),
            )
        };
        ran
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // SAFETY: the host was made by `ph_host_new*` and nothing else uses it any more.
        unsafe { ph_host_free(self.0) };
    }
}

/// What `ph_host_run` gave.
#[derive(Default, Debug)]
struct Ran {
    code: PhResultCode,
    output: Vec<u8>,
    /// Set by the output callback that returns this byte instead of `true`.
    answer: Option<u8>,
    error: Option<(PhResultCode, String)>,
    errors: usize,
}

unsafe extern "C" fn collect_refusal(user_data: *mut c_void, path: PhStr, reason: PhStr) {
    // SAFETY: `user_data` is the `Vec<String>` of `Host::load_dir`; the views are valid.
    unsafe {
        let lines = &mut *user_data.cast::<Vec<String>>();
        lines.push(format!("{}: {}", string(path), string(reason)));
    }
}

unsafe extern "C" fn collect_output(user_data: *mut c_void, bytes: PhBytes) -> CBool {
    // SAFETY: `user_data` is the `Ran` of `Host::run_views`; the view is valid.
    unsafe {
        let ran = &mut *user_data.cast::<Ran>();
        ran.output.extend_from_slice(bytes.to_bytes().unwrap());
        ran.answer.unwrap_or(1)
    }
}

unsafe extern "C" fn collect_error(user_data: *mut c_void, code: PhResultCode, message: PhStr) {
    // SAFETY: `user_data` is the `Ran` of `Host::run_views`; the view is valid.
    unsafe {
        let ran = &mut *user_data.cast::<Ran>();
        ran.error = Some((code, string(message)));
        ran.errors += 1;
    }
}

/// Counts the calls of `destroy` on an `AtomicUsize`.
unsafe extern "C" fn count_destroy(user_data: *mut c_void) {
    // SAFETY: `user_data` points to an `AtomicUsize` that outlives the host.
    unsafe { &*user_data.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
}

fn counter_ptr(counter: &AtomicUsize) -> *mut c_void {
    (counter as *const AtomicUsize).cast_mut().cast()
}

#[test]
fn a_folder_loads_and_each_refused_library_is_one_line() {
    let dir = plugins_dir(&["wordfreq", "not_a_plugin", "journal"]);
    let host = Host::new();
    let (loaded, refused) = host.load_dir(dir.path());
    assert_eq!(loaded, OK);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("libnot_a_plugin.so: not a plugin: no entry point"));

    // The same line as `plughost list` prints for it.
    let output = integration_tests::plughost(dir.path())
        .arg("list")
        .output()
        .unwrap();
    assert!(
        integration_tests::stdout(&output).contains(&format!("refused: {}", refused[0])),
        "{}",
        integration_tests::stdout(&output)
    );

    // A folder that does not exist: one line naming it, NOT_FOUND.
    let missing = dir.path().join("no-such-folder");
    let (missing_code, lines) = host.load_dir(&missing);
    assert_eq!(missing_code, code(PhResult::NotFound));
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with(&format!(
        "{}: cannot read the plugins folder: ",
        missing.display()
    )));

    // One file: loaded, then refused as a duplicate.
    let (duplicate, lines) = load_file(&host, &dir.path().join("libwordfreq.so"));
    assert_eq!(duplicate, code(PhResult::Error));
    assert!(
        lines[0].contains("duplicate plugin name `wordfreq`"),
        "{lines:?}"
    );
    let fresh = Host::new();
    let (loaded, lines) = load_file(&fresh, &dir.path().join("libwordfreq.so"));
    assert_eq!((loaded, lines.len()), (OK, 0));
}

fn load_file(host: &Host, file: &Path) -> (PhResultCode, Vec<String>) {
    let mut lines: Vec<String> = Vec::new();
    // SAFETY: a live host used by this thread only; `lines` outlives the call.
    let code = unsafe {
        ph_host_load_file(
            host.0,
            path_bytes(file),
            Some(PhHostRefusedCallback(collect_refusal)),
            (&mut lines as *mut Vec<String>).cast(),
        )
    };
    (code, lines)
}

#[test]
fn the_host_never_loads_its_own_c_library_as_a_plugin() {
    let dir = plugins_dir(&["wordfreq"]);
    let library = integration_tests::c_library();
    std::fs::copy(&library, dir.path().join(library.file_name().unwrap())).unwrap();
    let host = Host::new();
    assert_eq!(host.load_dir(dir.path()), (OK, Vec::new()));
    let output = integration_tests::plughost(dir.path())
        .args(["--strict", "list"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        integration_tests::stderr(&output)
    );
    assert!(!integration_tests::stdout(&output).contains("refused"));
}

#[test]
fn a_command_runs_as_through_the_rust_library() {
    let dir = plugins_dir(&["wordfreq", "journal", "probe"]);
    let text = workspace_root().join("tests/data/udhr-article-1.txt");
    let text = text.to_str().unwrap();
    let host = Host::new();
    assert_eq!(host.load_dir(dir.path()).0, OK);

    let ran = host.run("wordfreq", &["--top", "5", text]);
    assert_eq!((ran.code, ran.errors), (OK, 0), "{ran:?}");
    let (rust_host, _dir) = integration_tests::host_with(&["wordfreq", "journal", "probe"]);
    let expected = run(&rust_host, "wordfreq", &["--top", "5", text]).unwrap();
    assert_eq!(String::from_utf8(ran.output).unwrap(), expected);
    let counts = reference_word_counts(&std::fs::read_to_string(text).unwrap());
    assert!(expected.starts_with(&format!("{}\t{}\n", counts[0].1, counts[0].0)));

    // More arguments than the library converts on the stack.
    let many: Vec<&str> = std::iter::repeat_n(text, 12).collect();
    let ran = host.run("wordfreq", &many);
    assert_eq!(ran.code, OK, "{ran:?}");

    // NULL output: discarded.
    let ran = host.run_with("probe-ok", &[], None);
    assert_eq!((ran.code, ran.output.len()), (OK, 0));
}

#[test]
fn failures_of_run_each_have_their_code_and_one_message() {
    let dir = plugins_dir(&["wordfreq", "probe"]);
    let host = Host::new();
    assert_eq!(host.load_dir(dir.path()).0, OK);

    // The command's own failure: ERROR, with the plugin's code and message.
    let ran = host.run("wordfreq", &["/no/such/file.txt"]);
    assert_eq!(ran.code, code(PhResult::Error));
    let (reported, message) = ran.error.clone().unwrap();
    assert_ne!(reported, OK);
    assert!(
        message.starts_with("wordfreq: /no/such/file.txt: "),
        "{message}"
    );
    assert_eq!(ran.errors, 1);

    let ran = host.run("no-such-command", &[]);
    assert_eq!(ran.code, code(PhResult::NotFound));
    assert_eq!(ran.error.unwrap().0, code(PhResult::NotFound));

    // Arguments that break the rules: nothing runs.
    let bad = [b'a', 0xff];
    let views = [PhStr {
        ptr: bad.as_ptr(),
        len: bad.len(),
    }];
    let ran = host.run_views(PhStr::new("probe-ok"), &views, None);
    assert_eq!(ran.code, code(PhResult::InvalidUtf8));
    assert_eq!(
        ran.error.unwrap(),
        (
            code(PhResult::InvalidUtf8),
            "argument 1: invalid UTF-8".to_owned()
        )
    );
    let null = [PhStr {
        ptr: std::ptr::null(),
        len: 3,
    }];
    let ran = host.run_views(PhStr::new("probe-ok"), &null, None);
    assert_eq!(ran.code, code(PhResult::NullPointer));
    let mut ran = Ran::default();
    // SAFETY: a live host; `args` is NULL with a count, which the library must refuse.
    ran.code = unsafe {
        ph_host_run(
            host.0,
            PhStr::new("probe-ok"),
            std::ptr::null(),
            2,
            None,
            Some(PhHostErrorCallback(collect_error)),
            (&mut ran as *mut Ran).cast(),
        )
    };
    assert_eq!(ran.code, code(PhResult::NullPointer));
    assert_eq!(ran.error.unwrap().1, "args: null pointer");

    // A panicking command: ERROR, reported as PANICKED; its plugin is faulted.
    let ran = host.run("probe-panic", &[]);
    assert_eq!(ran.code, code(PhResult::Error));
    assert_eq!(ran.error.unwrap().0, code(PhResult::Panicked));
    assert_eq!(host.run("probe-ok", &[]).code, code(PhResult::NotFound));

    // NULL host.
    let nobody = Host(std::ptr::null_mut());
    assert_eq!(
        nobody.run("probe-ok", &[]).code,
        code(PhResult::NullPointer)
    );
    std::mem::forget(nobody);
}

#[test]
fn an_output_callback_that_returns_garbage_stops_the_output_and_nothing_else() {
    let dir = plugins_dir(&["wordfreq", "probe"]);
    let host = Host::new();
    assert_eq!(host.load_dir(dir.path()).0, OK);
    for answer in [0u8, 2, 124, 255] {
        let views = [PhStr::new("x")];
        let mut ran = Ran {
            answer: Some(answer),
            ..Ran::default()
        };
        // SAFETY: a live host; `ran` outlives the call.
        ran.code = unsafe {
            ph_host_run(
                host.0,
                PhStr::new("probe-log"),
                views.as_ptr(),
                1,
                Some(PhHostOutputCallback(collect_output)),
                Some(PhHostErrorCallback(collect_error)),
                (&mut ran as *mut Ran).cast(),
            )
        };
        assert_eq!(ran.code, code(PhResult::Io), "answer {answer}");
        let (reported, message) = ran.error.unwrap();
        assert_eq!(reported, code(PhResult::Io));
        assert!(
            message.starts_with("probe-log: the output callback "),
            "{message}"
        );
        if answer != 0 {
            assert!(message.contains(&format!("returned {answer}, which is not a bool")));
        }
    }
    // The host and the plugin are fine.
    assert_eq!(host.run("probe-ok", &[]).output, b"ok\n");
}

/// What the enumeration callbacks saw, and what they answer.
struct Listing {
    names: Vec<String>,
    /// The answer for each call, in turn; `1` once they run out.
    answers: Vec<u8>,
}

unsafe extern "C" fn list_plugin(user_data: *mut c_void, info: *const PhPluginInfo) -> CBool {
    // SAFETY: `user_data` is a `Listing`; `info` is valid for the call.
    unsafe {
        let listing = &mut *user_data.cast::<Listing>();
        let info = &*info;
        assert_eq!(
            info.struct_size as usize,
            std::mem::size_of::<PhPluginInfo>()
        );
        listing.names.push(string(info.name));
        let turn = listing.names.len() - 1;
        listing.answers.get(turn).copied().unwrap_or(1)
    }
}

unsafe extern "C" fn list_command(user_data: *mut c_void, info: *const PhCommandInfo) -> CBool {
    // SAFETY: `user_data` is a `Listing`; `info` is valid for the call.
    unsafe {
        let listing = &mut *user_data.cast::<Listing>();
        let info = &*info;
        listing
            .names
            .push(format!("{} [{}]", string(info.name), string(info.usage)));
        let turn = listing.names.len() - 1;
        listing.answers.get(turn).copied().unwrap_or(1)
    }
}

fn plugins(host: &Host, answers: &[u8]) -> (PhResultCode, Vec<String>) {
    let mut listing = Listing {
        names: Vec::new(),
        answers: answers.to_vec(),
    };
    // SAFETY: a live host; `listing` outlives the call.
    let code = unsafe {
        ph_host_enumerate_plugins(
            host.0,
            Some(PluginInfoCallback(list_plugin)),
            (&mut listing as *mut Listing).cast(),
        )
    };
    (code, listing.names)
}

#[test]
fn enumerations_stop_on_false_and_on_any_byte_but_true() {
    let dir = plugins_dir(&["wordfreq", "inventory", "journal"]);
    let host = Host::new();
    assert_eq!(host.load_dir(dir.path()).0, OK);
    assert_eq!(
        plugins(&host, &[]),
        (
            OK,
            vec!["inventory".into(), "journal".into(), "wordfreq".into()]
        )
    );
    assert_eq!(plugins(&host, &[1, 0]).1.len(), 2);
    for garbage in [2u8, 124, 255] {
        assert_eq!(plugins(&host, &[garbage]), (OK, vec!["inventory".into()]));
    }
    // SAFETY: a NULL callback must be refused.
    let code_null = unsafe { ph_host_enumerate_plugins(host.0, None, std::ptr::null_mut()) };
    assert_eq!(code_null, code(PhResult::NullPointer));

    let mut listing = Listing {
        names: Vec::new(),
        answers: Vec::new(),
    };
    // SAFETY: a live host; `listing` outlives the call.
    let found = unsafe {
        ph_host_enumerate_commands(
            host.0,
            PhStr::new("wordfreq"),
            Some(CommandInfoCallback(list_command)),
            (&mut listing as *mut Listing).cast(),
        )
    };
    assert_eq!(found, OK);
    assert_eq!(listing.names, ["wordfreq [[--top N] FILE...]"]);
    // SAFETY: as above.
    let missing = unsafe {
        ph_host_enumerate_commands(
            host.0,
            PhStr::new("nobody"),
            Some(CommandInfoCallback(list_command)),
            (&mut listing as *mut Listing).cast(),
        )
    };
    assert_eq!(missing, code(PhResult::NotFound));
}

/// Events an application callback received, and the code it returns.
struct Inbox {
    events: Mutex<Vec<String>>,
    answer: PhResultCode,
}

unsafe extern "C" fn receive(user_data: *mut c_void, topic: PhStr, payload: PhBytes) -> u32 {
    // SAFETY: `user_data` is an `Inbox` that outlives the subscription; the views are valid.
    unsafe {
        let inbox = &*user_data.cast::<Inbox>();
        let payload = String::from_utf8_lossy(payload.to_bytes().unwrap()).into_owned();
        inbox
            .events
            .lock()
            .unwrap()
            .push(format!("{} {payload}", string(topic)));
        inbox.answer
    }
}

fn subscribe(host: &Host, topic: PhStr, inbox: &Inbox) -> (PhResultCode, PhHandle) {
    let mut handle = 0;
    // SAFETY: a live host; `inbox` outlives the host in every test.
    let code = unsafe {
        ph_host_subscribe(
            host.0,
            topic,
            Some(PhEventCallback(receive)),
            (inbox as *const Inbox).cast_mut().cast(),
            None,
            &mut handle,
        )
    };
    (code, handle)
}

#[test]
fn the_application_subscribes_receives_and_unregisters() {
    let dir = plugins_dir(&["wordfreq", "probe"]);
    let host = Host::new();
    assert_eq!(host.load_dir(dir.path()).0, OK);
    let inbox = Inbox {
        events: Mutex::new(Vec::new()),
        answer: 0xdead_beef, // garbage: logged, harmless
    };
    let (subscribed, handle) = subscribe(&host, PhStr::new("wordfreq.totals"), &inbox);
    assert_eq!(subscribed, OK);
    let file = dir.path().join("words.txt");
    std::fs::write(&file, "one two two").unwrap();
    assert_eq!(host.run("wordfreq", &[file.to_str().unwrap()]).code, OK);
    assert_eq!(
        *inbox.events.lock().unwrap(),
        ["wordfreq.totals files=1 words=3 distinct=2 bytes=11"]
    );

    // Events from plugin threads arrive on those threads; all of them arrive.
    let (star, star_handle) = subscribe(&host, PhStr::new("*"), &inbox);
    assert_eq!(star, OK);
    assert_eq!(host.run("probe-threads", &["3", "50"]).code, OK);
    assert_eq!(
        inbox
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.starts_with("probe.tick "))
            .count(),
        200
    );

    // The application publishes.
    let payload = b"from the application";
    // SAFETY: a live host; the views are valid for the call.
    let published =
        unsafe { ph_host_publish(host.0, PhStr::new("app.hello"), PhBytes::new(payload)) };
    assert_eq!(published, OK);
    assert!(inbox
        .events
        .lock()
        .unwrap()
        .contains(&"app.hello from the application".to_owned()));
    // SAFETY: as above.
    let refused = unsafe { ph_host_publish(host.0, PhStr::new("*"), PhBytes::EMPTY) };
    assert_eq!(refused, code(PhResult::InvalidArgument));

    // SAFETY: a live host.
    unsafe {
        assert_eq!(ph_host_unregister(host.0, handle), OK);
        assert_eq!(ph_host_unregister(host.0, star_handle), OK);
        assert_eq!(
            ph_host_unregister(host.0, handle),
            code(PhResult::UnknownHandle)
        );
    }
    let before = inbox.events.lock().unwrap().len();
    assert_eq!(host.run("wordfreq", &[file.to_str().unwrap()]).code, OK);
    assert_eq!(inbox.events.lock().unwrap().len(), before);
}

#[test]
fn destroy_runs_exactly_once_on_every_path() {
    let dir = plugins_dir(&["journal"]);
    let destroys = AtomicUsize::new(0);
    let subscribe_counted = |host: *const PhHost, topic: &str, callback: bool| {
        let mut handle = 0;
        // SAFETY: `host` is NULL or live; `destroys` outlives every host of this test.
        let code = unsafe {
            ph_host_subscribe(
                host,
                PhStr::new(topic),
                callback.then_some(PhEventCallback(receive)),
                counter_ptr(&destroys),
                Some(PhDestroyCallback(count_destroy)),
                &mut handle,
            )
        };
        (code, handle)
    };
    {
        let host = Host::new();
        assert_eq!(host.load_dir(dir.path()).0, OK);
        // Refusals: before the call returns.
        let refusals = [
            (std::ptr::null(), "a.b", true, PhResult::NullPointer),
            (host.0.cast_const(), "a.b", false, PhResult::NullPointer),
            (
                host.0.cast_const(),
                "no spaces",
                true,
                PhResult::InvalidArgument,
            ),
            (host.0.cast_const(), "", true, PhResult::InvalidArgument),
        ];
        for (n, (h, topic, callback, expected)) in refusals.into_iter().enumerate() {
            assert_eq!(subscribe_counted(h, topic, callback).0, code(expected));
            assert_eq!(destroys.load(Ordering::SeqCst), n + 1);
        }
        // Unregistered: once.
        let (ok, handle) = subscribe_counted(host.0, "a.b", true);
        assert_eq!(ok, OK);
        // SAFETY: a live host.
        assert_eq!(unsafe { ph_host_unregister(host.0, handle) }, OK);
        assert_eq!(destroys.load(Ordering::SeqCst), 5);
        // Still subscribed when the host is shut down: at the shutdown.
        assert_eq!(subscribe_counted(host.0, "a.b", true).0, OK);
        // SAFETY: a live host, used by this thread only.
        assert_eq!(unsafe { ph_host_shutdown(host.0) }, OK);
        assert_eq!(destroys.load(Ordering::SeqCst), 6);
        // After the shutdown: refused, destroyed at once.
        assert_eq!(
            subscribe_counted(host.0, "a.b", true).0,
            code(PhResult::ShutDown)
        );
        assert_eq!(destroys.load(Ordering::SeqCst), 7);
        assert_eq!(host.run("journal", &[]).code, code(PhResult::NotFound));
        // Still subscribed when the host is freed: at the free.
        let other = Host::new();
        assert_eq!(subscribe_counted(other.0, "*", true).0, OK);
        drop(other);
        assert_eq!(destroys.load(Ordering::SeqCst), 8);
    }
    assert_eq!(destroys.load(Ordering::SeqCst), 8);
}

/// The records a log callback received.
struct Records(Mutex<Vec<String>>);

unsafe extern "C" fn record(
    user_data: *mut c_void,
    level: u32,
    plugin: PhStr,
    target: PhStr,
    message: PhStr,
) {
    // SAFETY: `user_data` is the `Records` of the test's `Arc`; the views are valid.
    unsafe {
        let records = &*user_data.cast::<Records>();
        records.0.lock().unwrap().push(format!(
            "{level} {} {} {}",
            string(plugin),
            string(target),
            string(message)
        ));
    }
}

/// The `destroy` of the log callback: drops the `Arc<Records>` given to the host.
unsafe extern "C" fn drop_records(user_data: *mut c_void) {
    // SAFETY: `user_data` is the `Arc::into_raw` of the test, given back once.
    drop(unsafe { Arc::from_raw(user_data.cast::<Records>().cast_const()) });
}

#[test]
fn plugin_log_records_reach_the_log_callback_at_its_level() {
    let dir = plugins_dir(&["probe"]);
    let records = Arc::new(Records(Mutex::new(Vec::new())));
    let mut host = std::ptr::null_mut();
    // SAFETY: the callback and destroy accept the `Arc` on any thread; `host` is writable.
    let made = unsafe {
        ph_host_new_with_log(
            2, // warn
            Some(PhHostLogCallback(record)),
            Arc::into_raw(Arc::clone(&records)).cast_mut().cast(),
            Some(PhDestroyCallback(drop_records)),
            &mut host,
        )
    };
    assert_eq!(made, OK);
    let host = Host(host);
    assert_eq!(host.load_dir(dir.path()).0, OK);
    let ran = host.run("probe-log", &["hello"]);
    assert_eq!(ran.code, OK);
    // The plugin filters debug records on its side: the level it reads is the callback's.
    assert_eq!(ran.output, b"debug-enabled=false\n");
    assert_eq!(*records.0.lock().unwrap(), ["2 probe probe hello"]);
    assert_eq!(Arc::strong_count(&records), 2);
    drop(host);
    assert_eq!(Arc::strong_count(&records), 1, "destroy ran at the free");

    // Refused: destroy before the call returns.
    let records = Arc::new(Records(Mutex::new(Vec::new())));
    let mut host = std::ptr::null_mut();
    // SAFETY: as above.
    let refused = unsafe {
        ph_host_new_with_log(
            6,
            Some(PhHostLogCallback(record)),
            Arc::into_raw(Arc::clone(&records)).cast_mut().cast(),
            Some(PhDestroyCallback(drop_records)),
            &mut host,
        )
    };
    assert_eq!(refused, code(PhResult::InvalidArgument));
    assert!(host.is_null());
    assert_eq!(Arc::strong_count(&records), 1);
}

unsafe extern "C" fn keep_error(user_data: *mut c_void, code: PhResultCode, message: PhStr) {
    // SAFETY: `user_data` is an `Option<(PhResultCode, String)>`; the view is valid.
    unsafe {
        *user_data.cast::<Option<(PhResultCode, String)>>() = Some((code, string(message)));
    }
}

#[test]
fn configuration_and_the_trust_waiver() {
    let dir = plugins_dir(&["wordfreq"]);
    let host = Host::new();
    let mut error: Option<(PhResultCode, String)> = None;
    let mut allow: CBool = 7;
    let set = |text: &str, error: &mut Option<(PhResultCode, String)>, allow: &mut CBool| {
        // SAFETY: a live host used by this thread only; `error` and `allow` outlive the call.
        unsafe {
            ph_host_set_config(
                host.0,
                PhStr::new(text),
                Some(PhHostErrorCallback(keep_error)),
                (error as *mut Option<(PhResultCode, String)>).cast(),
                allow,
            )
        }
    };
    assert_eq!(
        set("[plugins.wordfreq\n", &mut error, &mut allow),
        code(PhResult::InvalidArgument)
    );
    let (reported, message) = error.take().unwrap();
    assert_eq!(reported, code(PhResult::InvalidArgument));
    assert!(message.starts_with("invalid configuration: "), "{message}");
    assert_eq!(allow, 7, "nothing written on failure");
    assert_eq!(
        set(
            "allow_insecure = true\n[plugins.wordfreq]\ntop = 2\n",
            &mut error,
            &mut allow
        ),
        OK
    );
    assert_eq!((allow, error), (1, None));
    assert_eq!(host.load_dir(dir.path()).0, OK);
    let text = workspace_root().join("tests/data/udhr-article-1.txt");
    let ran = host.run("wordfreq", &[text.to_str().unwrap()]);
    assert_eq!(String::from_utf8(ran.output).unwrap().lines().count(), 2);

    // SAFETY: a live host used by this thread only.
    unsafe {
        assert_eq!(ph_host_set_allow_insecure(host.0, 1), OK);
        assert_eq!(ph_host_set_allow_insecure(host.0, 0), OK);
        assert_eq!(
            ph_host_set_allow_insecure(host.0, 2),
            code(PhResult::InvalidArgument)
        );
    }
}

#[test]
fn null_hosts_and_result_messages() {
    // SAFETY: every call gets a NULL host, which each function must refuse.
    unsafe {
        let null = std::ptr::null_mut();
        let refused = code(PhResult::NullPointer);
        assert_eq!(ph_host_new(std::ptr::null_mut()), refused);
        assert_eq!(ph_host_shutdown(null), refused);
        assert_eq!(ph_host_set_allow_insecure(null, 1), refused);
        assert_eq!(
            ph_host_set_config(null, PhStr::EMPTY, None, null.cast(), std::ptr::null_mut()),
            refused
        );
        assert_eq!(
            ph_host_load_dir(null, PhBytes::EMPTY, None, null.cast()),
            refused
        );
        assert_eq!(
            ph_host_load_file(null, PhBytes::EMPTY, None, null.cast()),
            refused
        );
        assert_eq!(
            ph_host_publish(null, PhStr::new("a"), PhBytes::EMPTY),
            refused
        );
        assert_eq!(ph_host_unregister(null, 1), refused);
        assert_eq!(
            ph_host_enumerate_plugins(null, Some(PluginInfoCallback(list_plugin)), null.cast()),
            refused
        );
        ph_host_free(null);
    }
    let message = |c: PhResultCode| {
        // SAFETY: the library returns static text.
        unsafe { string(ph_host_result_message(c)) }
    };
    assert_eq!(message(code(PhResult::InvalidUtf8)), "invalid UTF-8");
    assert_eq!(message(1000), "unknown result code");
}

/// A host pointer that threads share: the `[thread-safe]` functions allow it.
#[derive(Clone, Copy)]
struct Shared(*mut PhHost);

// SAFETY: the threads below only make `[thread-safe]` calls on the host, which the C API allows
// on any thread at once; the host outlives them (they are joined before it is freed).
unsafe impl Send for Shared {}

impl Shared {
    /// The pointer (a method, so that a closure captures the whole `Shared`, which is `Send`).
    fn get(self) -> *mut PhHost {
        self.0
    }
}

#[test]
fn thread_safe_functions_run_on_several_threads_at_once() {
    let dir = plugins_dir(&["probe", "journal"]);
    let host = Host::new();
    assert_eq!(host.load_dir(dir.path()).0, OK);
    let shared = Shared(host.0);
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                let borrowed = Host(shared.get());
                for i in 0..200 {
                    let ran = borrowed.run("probe-ok", &[]);
                    assert_eq!((ran.code, ran.output.as_slice()), (OK, &b"ok\n"[..]));
                    let topic = format!("thread{t}.event{}", i % 3);
                    // SAFETY: a live host; the views are valid for the call.
                    let published = unsafe {
                        ph_host_publish(borrowed.0, PhStr::new(&topic), PhBytes::new(b"x"))
                    };
                    assert_eq!(published, OK);
                    assert_eq!(plugins(&borrowed, &[]).1, ["journal", "probe"]);
                }
                // Not ours to free.
                std::mem::forget(borrowed);
            });
        }
    });
    let journal = String::from_utf8(host.run("journal", &[]).output).unwrap();
    for t in 0..4 {
        assert!(
            journal.contains(&format!("67\tthread{t}.event0\t")),
            "{journal}"
        );
    }
}

#[test]
fn the_c_api_queries_and_provides_interfaces() {
    // A C plugin that provides `test.answer` (tests/fixtures/c/descriptor.c), in a private folder.
    let dir = tempfile::Builder::new()
        .prefix("capi-interfaces")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    integration_tests::compile_c_fixture(
        dir.path(),
        "provider",
        &[
            "FIXTURE_NAME=\"provider\"",
            "FIXTURE_PROVIDES=\"test.answer\"",
        ],
    );
    let host = Host::new();
    assert_eq!(host.load_dir(dir.path()).0, OK);

    #[repr(C)]
    struct Answer {
        answer: unsafe extern "C" fn(*mut c_void, *mut u32, *const PhBytesSink) -> PhResultCode,
    }
    // SAFETY: an all-zero `PhInterface` (integers and NULL pointers) is a valid value.
    let mut reference: PhInterface = unsafe { std::mem::zeroed() };
    reference.struct_size = std::mem::size_of::<PhInterface>() as u32;
    // SAFETY: a live host; the id outlives the call and `reference` is writable, its size set.
    let queried = unsafe {
        ph_host_query_interface(
            host.0,
            PhStr::new("test.answer"),
            1,
            std::mem::size_of::<Answer>() as u32,
            &mut reference,
        )
    };
    assert_eq!(queried, OK);
    // SAFETY: the host's `alive` word, valid for the rest of the process.
    let alive = unsafe { std::sync::atomic::AtomicU32::from_ptr(reference.alive.cast_mut()) };
    assert_eq!(alive.load(Ordering::Acquire), 1);
    let mut value = 0;
    // SAFETY: the provider's table of at least `Answer`'s size, its user data, alive (checked).
    let code = unsafe {
        let table = &*reference.table.cast::<Answer>();
        (table.answer)(reference.user_data, &mut value, std::ptr::null())
    };
    assert_eq!((code, value), (OK, 42));
    // The C provider declared no layout.
    assert!(reference.layout.is_null());
    // An application built against the 1.4 header passes a smaller reference: the host writes
    // only that much, and says so in `struct_size`.
    let older = std::mem::offset_of!(PhInterface, layout);
    // SAFETY: as above.
    let mut old: PhInterface = unsafe { std::mem::zeroed() };
    old.struct_size = older as u32;
    let beyond = 0x5a5a_usize as *const c_void;
    old.layout = beyond;
    // SAFETY: as for the first query.
    let queried =
        unsafe { ph_host_query_interface(host.0, PhStr::new("test.answer"), 1, 8, &mut old) };
    assert_eq!(queried, OK);
    assert_eq!((old.struct_size as usize, old.layout), (older, beyond));
    assert_eq!(old.table, reference.table);
    // SAFETY: a live host; the handle is that reference's, released once.
    assert_eq!(unsafe { ph_host_release_interface(host.0, old.handle) }, OK);
    // SAFETY: a live host; the handle is the reference's, released once.
    let released = unsafe { ph_host_release_interface(host.0, reference.handle) };
    assert_eq!(released, OK);
    assert_eq!(alive.load(Ordering::Acquire), 0);
    // Another major is another interface; a larger table than provided is a version mismatch.
    for (major, size, expected) in [
        (2, 8, PhResult::NotFound),
        (1, 64, PhResult::VersionMismatch),
    ] {
        // SAFETY: as for the first query.
        let code = unsafe {
            ph_host_query_interface(
                host.0,
                PhStr::new("test.answer"),
                major,
                size,
                &mut reference,
            )
        };
        assert_eq!(code, expected.code(), "{major} {size}");
    }
    // The application provides one too; a second provider of the same id and major is refused,
    // and its `destroy` runs before the call returns.
    unsafe extern "C" fn count_destroy(user_data: *mut c_void) {
        // SAFETY: `user_data` is the test's counter, alive for the whole test.
        unsafe { &*user_data.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
    }
    static TABLE: [usize; 1] = [0];
    let destroyed = AtomicUsize::new(0);
    let decl = PhInterfaceDecl {
        struct_size: std::mem::size_of::<PhInterfaceDecl>() as u32,
        minor: 0,
        major: 1,
        id: PhStr::new("test.answer"),
        table: TABLE.as_ptr().cast(),
        table_size: 8,
        signature: PhStr::EMPTY,
        layout: std::ptr::null(),
    };
    // SAFETY: a live host; `decl` outlives the call; the table is never called (refused).
    let code = unsafe {
        ph_host_provide_interface(
            host.0,
            &decl,
            (&destroyed as *const AtomicUsize).cast_mut().cast(),
            Some(PhDestroyCallback(count_destroy)),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(code, PhResult::AlreadyExists.code());
    assert_eq!(destroyed.load(Ordering::SeqCst), 1);
}

#[test]
fn an_application_isolates_a_plugin_and_survives_its_crash() {
    let dir = tempfile::tempdir().unwrap();
    integration_tests::compile_c(dir.path(), "isolate.c", "iso", &[]);
    integration_tests::compile_c(
        dir.path(),
        "isolate.c",
        "pong",
        &["FIXTURE_PONGER", "FIXTURE_NAME=\"pong\""],
    );
    let program = integration_tests::build().join("plughost");
    let host = Host::new();
    // SAFETY: a live host used by this thread only; the views are valid for the calls.
    unsafe {
        assert_eq!(ph_host_set_child_program(host.0, path_bytes(&program)), OK);
        assert_eq!(ph_host_isolate(host.0, PhStr::new("iso")), OK);
        assert_eq!(ph_host_set_call_timeout(host.0, 60_000), OK);
        assert_eq!(
            ph_host_isolate(std::ptr::null_mut(), PhStr::new("iso")),
            code(PhResult::NullPointer)
        );
    }
    assert_eq!(host.load_dir(dir.path()), (OK, Vec::new()));
    let ran = host.run("iso-echo", &["hi"]);
    assert_eq!((ran.code, ran.output.as_slice()), (OK, &b"hi\n"[..]));
    let ran = host.run("iso-segv", &[]);
    assert_ne!(ran.code, OK);
    assert_eq!(ran.output, b"before iso-segv\n");
    let (_, message) = ran.error.unwrap();
    assert!(
        message.contains("plugin `iso` is faulted")
            && message.contains("SIGSEGV")
            && message.contains("in command `iso-segv`"),
        "{message}"
    );
    let ran = host.run("pong-ok", &[]);
    assert_eq!((ran.code, ran.output.as_slice()), (OK, &b"ok\n"[..]));
}
