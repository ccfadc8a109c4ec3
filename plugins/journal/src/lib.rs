//! `journal`: records every event published on the host.
//!
//! It subscribes to every topic (`*`), logs each event at info level, and keeps per topic the
//! number of events and the last payload. Command `journal` prints them, one line per topic:
//! `COUNT<TAB>TOPIC<TAB>LAST PAYLOAD` (the payload as text, cut at 80 characters).
//!
//! # Kept across runs, with `plughost.kv`
//!
//! The journal requires the interface `plughost.kv` 1 optionally (the `kv` plugin provides it).
//! When it is there, each event is stored in it as it arrives, under a key of its own
//! (`journal/TIME-PROCESS-SEQUENCE`, the time in nanoseconds since 1970, so the keys sort in
//! order of arrival), with the value `TOPIC<TAB>PAYLOAD TEXT`: so `journal` shows the events of
//! earlier runs (and of other processes using the same store) along with this run's, and two
//! processes recording at once lose nothing. `journal --clear` deletes the stored events (and
//! forgets this run's). An event that cannot be stored (the store failed, or its provider is
//! gone) is kept in memory, with a warning, and shown after the stored ones.
//!
//! Without `plughost.kv`, the journal keeps this run's events in memory only, and `journal`
//! takes no arguments.
//!
//! # Kept across a reload
//!
//! When the host reloads the journal (`reload journal` in `plughost shell`), the old build hands
//! the events it keeps in memory to the new one (state handoff): `journal` shows the same counts
//! before and after. The state is text, `journal-state 1` then one `COUNT<TAB>TOPIC<TAB>LAST
//! PAYLOAD` line per topic (payload previews hold no tab or newline).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use plughost_kv_api::Kv;
use plugin_api::abi::PhResult;
use plugin_api::{Command, Error, Event, Host, Plugin, Remote};

/// Payloads are shown cut at this many characters.
const PREVIEW_CHARS: usize = 80;

/// The prefix of the journal's keys in `plughost.kv`.
const KEY_PREFIX: &str = "journal/";

/// What the journal saw of one topic.
#[derive(Debug, Default, Clone)]
struct TopicRecord {
    count: u64,
    last_payload: String,
}

/// The journal's state, shared with its callbacks.
struct State {
    /// The store, when `plughost.kv` is provided.
    store: Option<Remote<dyn Kv>>,
    /// The events of this run that are not in the store: all of them without a store.
    unsaved: Mutex<BTreeMap<String, TopicRecord>>,
    /// The sequence number of the next stored event of this process.
    sequence: AtomicU64,
    /// Whether the warning about an event that could not be stored was given.
    warned: AtomicBool,
}

/// The plugin: the record of events, shared with its callbacks.
pub struct Journal {
    state: Arc<State>,
}

/// The payload as text for a log line or a report.
fn preview(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    let mut preview: String = text
        .chars()
        .take(PREVIEW_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > PREVIEW_CHARS {
        preview.push('…');
    }
    preview
}

/// The key of a stored event: sorts by time, then process, then sequence.
fn event_key(nanos: u128, process: u32, sequence: u64) -> String {
    format!("{KEY_PREFIX}{nanos:020}-{process:010}-{sequence:010}")
}

/// The topic and payload text of a stored event's value (`TOPIC<TAB>TEXT`).
fn parse_value(value: &[u8]) -> (String, String) {
    let value = String::from_utf8_lossy(value);
    match value.split_once('\t') {
        Some((topic, text)) => (topic.to_owned(), text.to_owned()),
        None => (value.into_owned(), String::new()),
    }
}

impl State {
    /// Records an event: in the store if there is one and it works, else in memory.
    fn record(&self, topic: &str, text: String) {
        if let Some(store) = &self.store {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
            let key = event_key(nanos, std::process::id(), sequence);
            match store.put(&key, format!("{topic}\t{text}").as_bytes()) {
                Ok(()) => return,
                Err(e) => {
                    if !self.warned.swap(true, Ordering::Relaxed) {
                        log::warn!("events are kept in memory only from now on: {e}");
                    }
                }
            }
        }
        let mut unsaved = self.unsaved.lock().unwrap_or_else(|e| e.into_inner());
        let entry = unsaved.entry(topic.to_owned()).or_default();
        entry.count += 1;
        entry.last_payload = text;
    }

    /// Every topic seen: the stored events in order, then the ones kept in memory.
    fn report(&self) -> BTreeMap<String, TopicRecord> {
        let mut records: BTreeMap<String, TopicRecord> = BTreeMap::new();
        if let Some(store) = &self.store {
            let scanned = store.scan(KEY_PREFIX, &mut |_, value| {
                let (topic, text) = parse_value(value);
                let entry = records.entry(topic).or_default();
                entry.count += 1;
                entry.last_payload = text;
                true
            });
            if let Err(e) = scanned {
                log::warn!(
                    "the stored events cannot be read; showing this run's unsaved events only: {e}"
                );
            }
        }
        let unsaved = self.unsaved.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, record) in unsaved.iter() {
            let entry = records.entry(topic.clone()).or_default();
            entry.count += record.count;
            entry.last_payload.clone_from(&record.last_payload);
        }
        records
    }

    /// Deletes the stored events and forgets the unsaved ones; how many there were.
    fn clear(&self, store: &Remote<dyn Kv>) -> Result<u64, Error> {
        let mut keys = Vec::new();
        store.scan(KEY_PREFIX, &mut |key, _| {
            keys.push(key.to_owned());
            true
        })?;
        let mut cleared = 0;
        for key in &keys {
            cleared += u64::from(store.delete(key)?);
        }
        let mut unsaved = self.unsaved.lock().unwrap_or_else(|e| e.into_inner());
        cleared += unsaved.values().map(|r| r.count).sum::<u64>();
        unsaved.clear();
        Ok(cleared)
    }
}

/// The store, if someone provides `plughost.kv` in a version the journal can use.
fn query_store(host: &Host) -> Option<Remote<dyn Kv>> {
    match host.query::<dyn Kv>() {
        Ok(store) => {
            log::debug!("events are kept in plughost.kv");
            Some(store)
        }
        Err(e) if e.code() == PhResult::NotFound => None,
        Err(e) => {
            log::warn!("events are kept in memory only: {e}");
            None
        }
    }
}

/// The first line of the state the journal hands over, with the format's version.
const STATE_HEADER: &str = "journal-state 1";

/// The state to hand over: the events kept in memory.
fn encode_state(unsaved: &BTreeMap<String, TopicRecord>) -> Vec<u8> {
    let mut state = format!("{STATE_HEADER}\n");
    for (topic, record) in unsaved {
        state.push_str(&format!(
            "{}\t{topic}\t{}\n",
            record.count, record.last_payload
        ));
    }
    state.into_bytes()
}

/// Merges a handed-over state into `unsaved`: counts add up; the last payload seen by this build,
/// which is newer, wins.
fn merge_state(unsaved: &mut BTreeMap<String, TopicRecord>, state: &[u8]) -> Result<(), Error> {
    let state = std::str::from_utf8(state).map_err(|e| Error::new(format!("state: {e}")))?;
    let mut lines = state.lines();
    if lines.next() != Some(STATE_HEADER) {
        return Err(Error::new(format!(
            "state: not in a format this build reads (expected `{STATE_HEADER}`)"
        )));
    }
    let mut records = Vec::new();
    for line in lines {
        let mut fields = line.splitn(3, '\t');
        let (Some(count), Some(topic), Some(last)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(Error::new(format!("state: malformed line {line:?}")));
        };
        let count: u64 = count
            .parse()
            .map_err(|e| Error::new(format!("state: count {count:?}: {e}")))?;
        records.push((topic, count, last));
    }
    for (topic, count, last) in records {
        let entry = unsaved.entry(topic.to_owned()).or_default();
        if entry.count == 0 {
            last.clone_into(&mut entry.last_payload);
        }
        entry.count += count;
    }
    Ok(())
}

impl Plugin for Journal {
    const NAME: &'static str = "journal";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Records the events published by plugins";
    const REQUIRES: &'static [plugin_api::abi::PhInterfaceVersion] =
        &[plugin_api::requires_optional::<dyn Kv>()];

    fn init(host: &Host) -> Result<Self, Error> {
        let state = Arc::new(State {
            store: query_store(host),
            unsaved: Mutex::default(),
            sequence: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        });
        let record = Arc::clone(&state);
        host.subscribe("*", move |event: &Event<'_>| {
            let text = preview(event.payload);
            log::info!("event {}: {text}", event.topic);
            record.record(event.topic, text);
            Ok(())
        })?;
        let report = Arc::clone(&state);
        let command = if state.store.is_some() {
            Command::new("journal")
                .about("Print the events seen in this and earlier runs (kept in plughost.kv): COUNT<TAB>TOPIC<TAB>LAST PAYLOAD; --clear forgets them")
                .usage("[--clear]")
        } else {
            Command::new("journal")
                .about("Print the events seen so far: COUNT<TAB>TOPIC<TAB>LAST PAYLOAD")
                .usage("")
        };
        host.register_command(command, move |args, out| {
            match (args, &report.store) {
                ([], _) => {
                    for (topic, record) in &report.report() {
                        writeln!(out, "{}\t{topic}\t{}", record.count, record.last_payload)?;
                    }
                }
                (["--clear"], Some(store)) => {
                    let cleared = report.clear(store)?;
                    writeln!(out, "cleared {cleared} events")?;
                }
                (_, Some(_)) => return Err(Error::new("usage: journal [--clear]")),
                (_, None) => return Err(Error::new("usage: journal (no arguments)")),
            }
            Ok(())
        })?;
        Ok(Journal { state })
    }

    const HANDS_OVER_STATE: bool = true;

    fn save_state(&self, _host: &Host) -> Result<Vec<u8>, Error> {
        let unsaved = self.state.unsaved.lock().unwrap_or_else(|e| e.into_inner());
        Ok(encode_state(&unsaved))
    }

    fn restore_state(&self, _host: &Host, from_version: &str, state: &[u8]) -> Result<(), Error> {
        let mut unsaved = self.state.unsaved.lock().unwrap_or_else(|e| e.into_inner());
        merge_state(&mut unsaved, state)?;
        log::debug!("took the events of journal {from_version}");
        Ok(())
    }
}

plugin_api::export_plugin!(Journal);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{encode_state, event_key, merge_state, parse_value, preview, TopicRecord};

    fn record(count: u64, last: &str) -> TopicRecord {
        TopicRecord {
            count,
            last_payload: last.to_owned(),
        }
    }

    #[test]
    fn a_handed_over_state_adds_to_what_the_new_build_saw() {
        let old: BTreeMap<String, TopicRecord> = [
            ("a.x".to_owned(), record(3, "old a")),
            ("b.y".to_owned(), record(1, "")),
        ]
        .into();
        let state = encode_state(&old);
        assert!(state.starts_with(b"journal-state 1\n"));
        let mut new: BTreeMap<String, TopicRecord> =
            [("a.x".to_owned(), record(2, "new a"))].into();
        merge_state(&mut new, &state).unwrap();
        assert_eq!(new["a.x"].count, 5);
        assert_eq!(new["a.x"].last_payload, "new a");
        assert_eq!(new["b.y"].count, 1);
        assert_eq!(new["b.y"].last_payload, "");
    }

    #[test]
    fn a_state_in_another_format_is_refused_and_changes_nothing() {
        let mut new: BTreeMap<String, TopicRecord> = [("a.x".to_owned(), record(2, "a"))].into();
        for bad in [
            &b"journal-state 2\n1\ta\tb\n"[..],
            b"journal-state 1\nx\ta\tb\n",
            b"\xff",
        ] {
            assert!(merge_state(&mut new, bad).is_err(), "{bad:?}");
        }
        assert_eq!(new["a.x"].count, 2);
    }

    #[test]
    fn previews_are_text_cut_at_the_limit() {
        assert_eq!(preview(b"files=1\nwords=2"), "files=1 words=2");
        assert_eq!(preview(b"\xff"), "\u{fffd}");
        let long = "é".repeat(100);
        let p = preview(long.as_bytes());
        assert_eq!(p.chars().count(), 81);
        assert!(p.ends_with('…'));
    }

    #[test]
    fn keys_sort_by_time_then_process_then_sequence() {
        let keys = [
            event_key(9, 99, 5),
            event_key(10, 1, 0),
            event_key(10, 2, 0),
            event_key(10, 2, 10),
            event_key(1_000_000_000_000_000_000, 0, 0),
        ];
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
        assert_eq!(
            keys[0],
            "journal/00000000000000000009-0000000099-0000000005"
        );
    }

    #[test]
    fn stored_values_are_topic_tab_text() {
        assert_eq!(
            parse_value(b"a.topic\tsome\ttext"),
            ("a.topic".to_owned(), "some\ttext".to_owned())
        );
        assert_eq!(parse_value(b"no-tab"), ("no-tab".to_owned(), String::new()));
    }
}
