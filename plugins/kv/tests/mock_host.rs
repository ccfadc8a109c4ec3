//! `kv` through the mock host: its command, the interface it provides, and a refused init.

use kv::KvPlugin;
use plughost_kv_api::Kv;
use plughost_testing::MockHost;
use plugin_api::abi::PhResult;

/// A mock host with `kv` loaded on the file `kv.redb` of `dir`.
fn host_on(dir: &std::path::Path) -> MockHost {
    let mut host = MockHost::new();
    host.set_config("kv", "path", dir.join("kv.redb").to_str().unwrap());
    host.load::<KvPlugin>().unwrap();
    host
}

#[test]
fn the_command_gets_puts_deletes_and_lists() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_on(dir.path());
    assert_eq!(host.commands(), ["kv"]);
    assert_eq!(host.run("kv", &["put", "b/1", "one"]).unwrap(), "");
    host.run("kv", &["put", "b/2", "two\tand\nmore"]).unwrap();
    host.run("kv", &["put", "c", ""]).unwrap();
    assert_eq!(host.run("kv", &["get", "b/1"]).unwrap(), "one\n");
    assert_eq!(host.run("kv", &["get", "b/2"]).unwrap(), "two\tand\nmore\n");
    assert_eq!(
        host.run("kv", &["list"]).unwrap(),
        "b/1\tone\nb/2\ttwo\\tand\\nmore\nc\t\n"
    );
    assert_eq!(
        host.run("kv", &["list", "b/"]).unwrap(),
        "b/1\tone\nb/2\ttwo\\tand\\nmore\n"
    );
    host.run("kv", &["delete", "b/1"]).unwrap();
    let missing = host.run("kv", &["get", "b/1"]).unwrap_err();
    assert_eq!(missing.code(), PhResult::NotFound);
    assert!(
        missing.message().contains("no key \"b/1\""),
        "{}",
        missing.message()
    );
    assert_eq!(
        host.run("kv", &["delete", "b/1"]).unwrap_err().code(),
        PhResult::NotFound
    );
    for bad in [
        &[][..],
        &["get"],
        &["put", "k"],
        &["list", "a", "b"],
        &["frobnicate"],
    ] {
        let error = host.run("kv", bad).unwrap_err();
        assert_eq!(error.code(), PhResult::InvalidArgument, "{bad:?}");
        assert_eq!(
            error.message(),
            "usage: kv get KEY | put KEY VALUE | delete KEY | list [PREFIX]"
        );
    }
    let info = &host.command_records("kv").unwrap()[0];
    assert_eq!(
        info.usage,
        "get KEY | put KEY VALUE | delete KEY | list [PREFIX]"
    );
}

#[test]
fn the_interface_reaches_the_same_file_and_outlives_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = host_on(dir.path());
    let kv = host.interface::<dyn Kv>().unwrap();
    kv.put("from/the/test", b"\x00\xffbytes").unwrap();
    assert_eq!(
        host.run("kv", &["list", "from/"]).unwrap(),
        "from/the/test\t\\x00\\xffbytes\n"
    );
    let mut seen = Vec::new();
    kv.scan("", &mut |k, v| {
        seen.push((k.to_owned(), v.to_vec()));
        false
    })
    .unwrap();
    assert_eq!(
        seen,
        [("from/the/test".to_owned(), b"\x00\xffbytes".to_vec())]
    );
    assert!(kv.delete("from/the/test").unwrap());
    assert!(!kv.delete("from/the/test").unwrap());
    host.shutdown();
    assert_eq!(kv.get("x").unwrap_err().code(), PhResult::ShutDown);

    // Another run on the same file.
    drop(kv);
    let host = host_on(dir.path());
    host.run("kv", &["put", "k", "v"]).unwrap();
    drop(host);
    let host = host_on(dir.path());
    assert_eq!(host.run("kv", &["get", "k"]).unwrap(), "v\n");
}

#[test]
fn a_file_that_is_not_a_database_refuses_init_in_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.redb");
    std::fs::write(&path, "some text, not a database\n").unwrap();
    let mut host = MockHost::new();
    host.set_config("kv", "path", path.to_str().unwrap());
    let error = host.load::<KvPlugin>().unwrap_err();
    assert!(
        error.message().contains("init failed"),
        "{}",
        error.message()
    );
    let errors: Vec<String> = host
        .logs()
        .into_iter()
        .filter(|r| r.level == log::Level::Error)
        .map(|r| r.message)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains(&format!("the database {} cannot be opened", path.display())),
        "{errors:?}"
    );
    assert!(!errors[0].contains('\n'), "{errors:?}");
    assert_eq!(
        host.interface::<dyn Kv>().unwrap_err().code(),
        PhResult::NotFound
    );
}

#[test]
fn bad_settings_refuse_init() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = MockHost::new();
    host.set_config("kv", "path", "");
    assert!(host.load::<KvPlugin>().is_err());
    let mut host = MockHost::new();
    host.set_config("kv", "path", dir.path().join("kv.redb").to_str().unwrap());
    host.set_config("kv", "busy_timeout_ms", "soon");
    assert!(host.load::<KvPlugin>().is_err());
}
