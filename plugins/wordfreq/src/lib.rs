//! `wordfreq`: counts the most frequent words of text files.
//!
//! Command `wordfreq [--top N] FILE...` prints the N most frequent words over all files, one per line as `COUNT<TAB>WORD`, most frequent first, ties in alphabetical order. A word
//! is a maximal run of Unicode alphanumeric characters (`char::is_alphanumeric`), lowercased. Files
//! are streamed in fixed-size chunks, so memory grows with the number of distinct words, not with
//! the size of the input. Bytes that are not valid UTF-8 separate words.
//!
//! N is 10 unless the plugin's configuration sets `top` (with `plughost --config FILE`, a file
//! holding `[plugins.wordfreq]` and `top = 20`); `--top` overrides both.
//!
//! When done it publishes an event on [`TOTALS_TOPIC`] whose payload is
//! `files=F words=W distinct=D bytes=B`.

use std::io::{Read, Write};

use plugin_api::{Command, Error, Host, Output, Plugin};
use rustc_hash::FxHashMap;

/// The topic of the event published after each run.
pub const TOTALS_TOPIC: &str = "wordfreq.totals";

/// How many words are printed when neither `--top` nor the configuration's `top` says.
pub const DEFAULT_TOP: usize = 10;

/// Input is read in chunks of this many bytes.
const CHUNK: usize = 256 * 1024;

/// The plugin. It keeps nothing between runs.
pub struct WordFreq;

impl Plugin for WordFreq {
    const NAME: &'static str = "wordfreq";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Counts the most frequent words of text files";

    fn init(host: &Host) -> Result<Self, Error> {
        let default_top = host.config_parse("top")?.unwrap_or(DEFAULT_TOP);
        let publisher = host.clone();
        host.register_command(
            Command::new("wordfreq")
                .about("Print the most frequent words of FILEs as COUNT<TAB>WORD")
                .usage("[--top N] FILE..."),
            move |args, out| run(&publisher, default_top, args, out),
        )?;
        Ok(WordFreq)
    }
}

plugin_api::export_plugin!(WordFreq);

/// The parsed arguments of the command.
#[derive(Debug, PartialEq, Eq)]
struct Args<'a> {
    top: usize,
    files: Vec<&'a str>,
}

/// The command's arguments; `top` is the number of words when `--top` is not given.
fn parse_args<'a>(args: &[&'a str], mut top: usize) -> Result<Args<'a>, Error> {
    let mut files = Vec::new();
    let mut rest = args.iter();
    let mut options_done = false;
    while let Some(&arg) = rest.next() {
        let value = if options_done {
            None
        } else if arg == "--" {
            options_done = true;
            continue;
        } else if arg == "--top" || arg == "-n" {
            Some(
                *rest
                    .next()
                    .ok_or_else(|| Error::new(format!("{arg} needs a number")))?,
            )
        } else if let Some(v) = arg.strip_prefix("--top=") {
            Some(v)
        } else if arg.starts_with('-') && arg.len() > 1 {
            return Err(Error::new(format!(
                "unknown option {arg:?}; usage: wordfreq [--top N] FILE..."
            )));
        } else {
            None
        };
        match value {
            Some(v) => {
                top = v
                    .parse()
                    .map_err(|_| Error::new(format!("--top: {v:?} is not a whole number")))?
            }
            None => files.push(arg),
        }
    }
    if files.is_empty() {
        return Err(Error::new(
            "no FILE given; usage: wordfreq [--top N] FILE...",
        ));
    }
    Ok(Args { top, files })
}

/// Word counts over any number of inputs.
#[derive(Default)]
pub struct Counter {
    counts: FxHashMap<Box<str>, u64>,
    /// The word being read; it may continue in the next chunk.
    word: String,
    /// Bytes of a character cut by the end of the previous chunk.
    carry: Vec<u8>,
    words: u64,
    bytes: u64,
}

impl Counter {
    /// An empty counter.
    pub fn new() -> Counter {
        Counter::default()
    }

    /// Counts the words of everything `reader` yields, reading it in fixed-size chunks.
    pub fn count_reader(&mut self, mut reader: impl Read) -> std::io::Result<()> {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.feed(&buffer[..n]);
        }
        self.finish_input();
        Ok(())
    }

    /// Counts the words in `chunk`, the next bytes of the current input.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        let mut input = chunk;
        if !self.carry.is_empty() {
            // `carry` is the start of a character cut by the previous chunk: complete it.
            let need = utf8_sequence_len(self.carry[0]).saturating_sub(self.carry.len());
            if chunk.len() < need {
                self.carry.extend_from_slice(chunk);
                return;
            }
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(&chunk[..need]);
            match std::str::from_utf8(&joined) {
                Ok(c) => {
                    self.feed_str(c);
                    input = &chunk[need..];
                }
                // Not a character after all: it separates words, and the chunk is read afresh
                // (a byte that broke the sequence may start a character of its own).
                Err(_) => self.end_word(),
            }
        }
        loop {
            match std::str::from_utf8(input) {
                Ok(s) => {
                    self.feed_str(s);
                    return;
                }
                Err(e) => {
                    let (valid, rest) = input.split_at(e.valid_up_to());
                    self.feed_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(bad) => {
                            self.end_word();
                            input = &rest[bad..];
                        }
                        None => {
                            self.carry = rest.to_vec();
                            return;
                        }
                    }
                }
            }
        }
    }

    fn feed_str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if b.is_ascii_alphanumeric() {
                // A run of ASCII letters and digits is copied and lowercased at once, rather than
                // a character at a time: most text is mostly ASCII.
                let end = bytes[i..]
                    .iter()
                    .position(|b| !b.is_ascii_alphanumeric())
                    .map_or(bytes.len(), |n| i + n);
                let start = self.word.len();
                // `i` and `end` are at ASCII bytes (or the end), so at character boundaries.
                self.word.push_str(&s[i..end]);
                self.word[start..].make_ascii_lowercase();
                i = end;
            } else if b.is_ascii() {
                self.end_word();
                i += 1;
            } else {
                let Some(c) = s[i..].chars().next() else {
                    break;
                };
                if c.is_alphanumeric() {
                    self.word.extend(c.to_lowercase());
                } else {
                    self.end_word();
                }
                i += c.len_utf8();
            }
        }
    }

    fn end_word(&mut self) {
        if self.word.is_empty() {
            return;
        }
        self.words += 1;
        if let Some(count) = self.counts.get_mut(self.word.as_str()) {
            *count += 1;
        } else {
            self.counts.insert(self.word.as_str().into(), 1);
        }
        self.word.clear();
    }

    /// Ends the current input: a word cannot continue into the next file.
    pub fn finish_input(&mut self) {
        self.carry.clear();
        self.end_word();
    }

    /// The `n` most frequent words, most frequent first, ties in alphabetical order.
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self.counts.iter().map(|(w, c)| (&**w, *c)).collect();
        let order = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if n < all.len() {
            all.select_nth_unstable_by(n, order);
            all.truncate(n);
        }
        all.sort_unstable_by(order);
        all
    }

    /// How many words were counted.
    pub fn words(&self) -> u64 {
        self.words
    }

    /// How many distinct words were counted.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }
}

/// The length of the UTF-8 sequence that `first` starts (1 for a byte that starts none).
fn utf8_sequence_len(first: u8) -> usize {
    match first {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

fn run(host: &Host, default_top: usize, args: &[&str], out: &mut Output<'_>) -> Result<(), Error> {
    let args = parse_args(args, default_top)?;
    let mut counter = Counter::new();
    for file in &args.files {
        let reader = std::fs::File::open(file).map_err(|e| Error::new(format!("{file}: {e}")))?;
        counter
            .count_reader(reader)
            .map_err(|e| Error::new(format!("{file}: {e}")))?;
    }
    for (word, count) in counter.top(args.top) {
        writeln!(out, "{count}\t{word}")?;
    }
    log::info!(
        "counted {} words ({} distinct) in {} files",
        counter.words(),
        counter.distinct(),
        args.files.len()
    );
    let totals = format!(
        "files={} words={} distinct={} bytes={}",
        args.files.len(),
        counter.words(),
        counter.distinct(),
        counter.bytes
    );
    host.publish(TOTALS_TOPIC, totals.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(chunks: &[&[u8]]) -> Vec<(String, u64)> {
        let mut c = Counter::new();
        for chunk in chunks {
            c.feed(chunk);
        }
        c.finish_input();
        c.top(usize::MAX)
            .into_iter()
            .map(|(w, n)| (w.to_owned(), n))
            .collect()
    }

    fn owned(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|(w, n)| (w.to_string(), *n)).collect()
    }

    #[test]
    fn words_are_alphanumeric_runs_lowercased() {
        assert_eq!(
            count(&[b"The cat, the CAT; the dog42 x_y"]),
            owned(&[("the", 3), ("cat", 2), ("dog42", 1), ("x", 1), ("y", 1)])
        );
    }

    #[test]
    fn unicode_letters_and_digits() {
        assert_eq!(
            count(&["Straße STRASSE Ärger ärger 東京 ٣٤".as_bytes()]),
            owned(&[
                ("ärger", 2),
                ("strasse", 1),
                ("straße", 1),
                ("٣٤", 1),
                ("東京", 1)
            ])
        );
    }

    #[test]
    fn any_chunking_gives_the_same_counts() {
        let text: &[u8] = b"caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac\xff na\xc3\xafve \xe2\x82 caf\xc3\xa9\xf0\x9f\x98\x80x";
        let whole = count(&[text]);
        assert_eq!(
            whole,
            owned(&[("café", 2), ("naïve", 1), ("x", 1), ("東京", 1)])
        );
        for size in 1..8 {
            let chunks: Vec<&[u8]> = text.chunks(size).collect();
            assert_eq!(count(&chunks), whole, "chunks of {size} bytes");
        }
    }

    #[test]
    fn chunk_boundaries_inside_words_and_characters() {
        let text = "héllo wörld héllo";
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            let (a, b) = bytes.split_at(split);
            assert_eq!(
                count(&[a, b]),
                owned(&[("héllo", 2), ("wörld", 1)]),
                "split at {split}"
            );
        }
        // One byte at a time.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(count(&singles), owned(&[("héllo", 2), ("wörld", 1)]));
    }

    #[test]
    fn invalid_utf8_separates_words() {
        assert_eq!(count(&[b"ab\xffcd ab"]), owned(&[("ab", 2), ("cd", 1)]));
        assert_eq!(
            count(&[b"ab\xe2", b"\x28cd"]),
            owned(&[("ab", 1), ("cd", 1)])
        );
    }

    #[test]
    fn ties_are_alphabetical_and_top_limits() {
        let mut c = Counter::new();
        c.feed(b"b a c b a d");
        c.finish_input();
        assert_eq!(c.top(3), vec![("a", 2), ("b", 2), ("c", 1)]);
        assert_eq!(c.top(0), vec![]);
        assert_eq!(c.words(), 6);
        assert_eq!(c.distinct(), 4);
    }

    #[test]
    fn argument_parsing() {
        assert_eq!(
            parse_args(&["--top", "3", "a.txt", "b.txt"], DEFAULT_TOP).unwrap(),
            Args {
                top: 3,
                files: vec!["a.txt", "b.txt"]
            }
        );
        assert_eq!(parse_args(&["--top=5", "a"], DEFAULT_TOP).unwrap().top, 5);
        assert_eq!(
            parse_args(&["--", "--top"], DEFAULT_TOP).unwrap().files,
            vec!["--top"]
        );
        assert_eq!(parse_args(&["a"], 20).unwrap().top, 20);
        assert_eq!(parse_args(&["--top", "3", "a"], 20).unwrap().top, 3);
        assert!(parse_args(&[], DEFAULT_TOP).is_err());
        assert!(parse_args(&["--top", "x", "a"], DEFAULT_TOP).is_err());
        assert!(parse_args(&["--top"], DEFAULT_TOP).is_err());
        assert!(parse_args(&["--bogus", "a"], DEFAULT_TOP).is_err());
    }
}
