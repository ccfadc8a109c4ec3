//! `journal`: records every event published on the host.
//!
//! It subscribes to every topic (`*`), logs each event at info level, and keeps per topic the
//! number of events and the last payload. Command `journal` prints them, one line per topic:
//! `COUNT<TAB>TOPIC<TAB>LAST PAYLOAD` (the payload as text, cut at 80 characters).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use plugin_api::{Command, Error, Event, Host, Plugin};

/// Payloads are shown cut at this many characters.
const PREVIEW_CHARS: usize = 80;

/// What the journal saw of one topic.
#[derive(Debug, Default, Clone)]
struct TopicRecord {
    count: u64,
    last_payload: String,
}

/// The plugin: the record of events, shared with its callbacks.
pub struct Journal {
    _seen: Arc<Mutex<BTreeMap<String, TopicRecord>>>,
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

impl Plugin for Journal {
    const NAME: &'static str = "journal";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Records the events published by plugins";

    fn init(host: &Host) -> Result<Self, Error> {
        let seen: Arc<Mutex<BTreeMap<String, TopicRecord>>> = Arc::default();
        let record = Arc::clone(&seen);
        host.subscribe("*", move |event: &Event<'_>| {
            let text = preview(event.payload);
            log::info!("event {}: {text}", event.topic);
            let mut seen = record.lock().unwrap_or_else(|e| e.into_inner());
            let entry = seen.entry(event.topic.to_owned()).or_default();
            entry.count += 1;
            entry.last_payload = text;
            Ok(())
        })?;
        let report = Arc::clone(&seen);
        host.register_command(
            Command::new("journal")
                .about("Print the events seen so far: COUNT<TAB>TOPIC<TAB>LAST PAYLOAD")
                .usage(""),
            move |args, out| {
                if !args.is_empty() {
                    return Err(Error::new("usage: journal (no arguments)"));
                }
                let seen = report.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for (topic, record) in &seen {
                    writeln!(out, "{}\t{topic}\t{}", record.count, record.last_payload)?;
                }
                Ok(())
            },
        )?;
        Ok(Journal { _seen: seen })
    }
}

plugin_api::export_plugin!(Journal);

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn previews_are_text_cut_at_the_limit() {
        assert_eq!(preview(b"files=1\nwords=2"), "files=1 words=2");
        assert_eq!(preview(b"\xff"), "\u{fffd}");
        let long = "é".repeat(100);
        let p = preview(long.as_bytes());
        assert_eq!(p.chars().count(), 81);
        assert!(p.ends_with('…'));
    }
}
