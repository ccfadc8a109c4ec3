//! `wordfreq` through the mock host: the same function tables as the real host, no host binary.

use plughost_testing::{CommandRecord, MockHost};
use plugin_api::abi::PhResult;
use wordfreq::WordFreq;

fn host() -> MockHost {
    let mut host = MockHost::new();
    host.load::<WordFreq>().unwrap();
    host
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[test]
fn registers_one_command_and_enumerates_it() {
    let host = host();
    assert_eq!(host.commands(), ["wordfreq"]);
    assert!(host.subscriptions().is_empty());
    assert_eq!(
        host.command_records("wordfreq").unwrap(),
        [CommandRecord {
            name: "wordfreq".into(),
            description: "Print the most frequent words of FILEs as COUNT<TAB>WORD".into(),
            usage: "[--top N] FILE...".into(),
        }]
    );
}

#[test]
fn counts_words_over_several_files() {
    let host = host();
    let a = file("Le chat. LE CHIEN; le chat!");
    let b = file("chat 42 42 ");
    let (a, b) = (a.path().to_str().unwrap(), b.path().to_str().unwrap());
    assert_eq!(
        host.run("wordfreq", &["--top", "3", a, b]).unwrap(),
        "3\tchat\n3\tle\n2\t42\n"
    );
    assert_eq!(
        host.run("wordfreq", &[a]).unwrap(),
        "3\tle\n2\tchat\n1\tchien\n"
    );
}

#[test]
fn publishes_its_totals_and_logs_through_the_host() {
    let host = host();
    let a = file("one two two");
    host.run("wordfreq", &[a.path().to_str().unwrap()]).unwrap();
    let published = host.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].publisher, "wordfreq");
    assert_eq!(published[0].topic, wordfreq::TOTALS_TOPIC);
    assert_eq!(published[0].payload, b"files=1 words=3 distinct=2 bytes=11");
    let logs = host.logs();
    assert!(
        logs.iter().any(|r| r.level == log::Level::Info
            && r.plugin == "wordfreq"
            && r.message == "counted 3 words (2 distinct) in 1 files"),
        "{logs:?}"
    );
}

#[test]
fn errors_are_results_with_messages() {
    let host = host();
    let error = host.run("wordfreq", &[]).unwrap_err();
    assert_eq!(error.code(), PhResult::Error);
    assert!(error.message().starts_with("no FILE given"), "{error}");
    let error = host.run("wordfreq", &["/no/such/file"]).unwrap_err();
    assert!(error.message().starts_with("/no/such/file: "), "{error}");
    let error = host.run("wordfreq", &["--top", "many", "x"]).unwrap_err();
    assert!(error.message().contains("not a whole number"), "{error}");
    assert!(host.published().is_empty());
}

#[test]
fn shutdown_ends_every_registration() {
    let mut host = host();
    host.shutdown();
    assert!(host.commands().is_empty());
    assert_eq!(
        host.run("wordfreq", &["x"]).unwrap_err().code(),
        PhResult::NotFound
    );
}

#[test]
fn the_configuration_sets_the_default_top() {
    let text = file("a a a b b c");
    let path = text.path().to_str().unwrap();
    let mut host = MockHost::new();
    host.set_config("wordfreq", "top", "2");
    host.load::<WordFreq>().unwrap();
    assert_eq!(host.run("wordfreq", &[path]).unwrap(), "3\ta\n2\tb\n");
    assert_eq!(
        host.run("wordfreq", &["--top", "1", path]).unwrap(),
        "3\ta\n"
    );

    let mut host = MockHost::new();
    host.set_config("wordfreq", "top", "many");
    let error = host.load::<WordFreq>().unwrap_err();
    assert_eq!(error.code(), PhResult::InvalidArgument);
    assert!(
        error.message().contains("init failed"),
        "{}",
        error.message()
    );
    let logs = host.logs();
    assert!(
        logs.iter().any(|r| r
            .message
            .contains("configuration key `top`: invalid value \"many\"")),
        "{logs:?}"
    );
}

/// A few MiB of mixed text: more than one block per worker thread, so that words and
/// characters are cut by block ends, and the parts are counted on the host's worker threads.
fn big_text(seed: u64, size: usize) -> String {
    const WORDS: &[&str] = &[
        "the",
        "The",
        "THE",
        "of",
        "and",
        "Rights",
        "rights",
        "42",
        "x9",
        "Straße",
        "STRASSE",
        "ärger",
        "Ärger",
        "東京",
        "人人生而自由",
        "İstanbul",
        "ΣΊΣΥΦΟΣ",
        "свободными",
        "٣٤",
        "naïve",
    ];
    const SEPARATORS: &[&str] = &[" ", " ", " ", ", ", ".\n", "\n", "，", " — ", "\u{a0}", "_"];
    let mut state = seed | 1;
    let mut next = move |n: usize| {
        // xorshift64: a fixed sequence for each seed.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut text = String::with_capacity(size + 64);
    while text.len() < size {
        text.push_str(WORDS[next(WORDS.len())]);
        if next(8) == 0 {
            // Words run together: long words, and words with ASCII and other letters.
            continue;
        }
        text.push_str(SEPARATORS[next(SEPARATORS.len())]);
    }
    text
}

#[test]
fn large_files_count_as_the_sequential_counter_counts_them() {
    let host = host();
    // The first file ends inside a word and the second starts with one: two words, not one.
    let a = big_text(1, 5 << 20) + "zzq";
    let b = "zzq ".to_owned() + &big_text(2, 3 << 20);
    let (fa, fb) = (file(&a), file(&b));
    let mut expected = wordfreq::Counter::new();
    for text in [&a, &b] {
        expected.feed(text.as_bytes());
        expected.finish_input();
    }
    let wanted: String = expected
        .top(30)
        .iter()
        .map(|(word, count)| format!("{count}\t{word}\n"))
        .collect();
    assert!(expected.top(usize::MAX).contains(&("zzq", 2)));
    let args = [
        "--top",
        "30",
        fa.path().to_str().unwrap(),
        fb.path().to_str().unwrap(),
    ];
    assert_eq!(host.run("wordfreq", &args).unwrap(), wanted);
    let published = host.published();
    assert_eq!(
        published[0].payload,
        format!(
            "files=2 words={} distinct={} bytes={}",
            expected.words(),
            expected.distinct(),
            a.len() + b.len()
        )
        .as_bytes()
    );
}
