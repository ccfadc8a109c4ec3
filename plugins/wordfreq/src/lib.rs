//! `wordfreq`: counts the most frequent words of text files.
//!
//! Command `wordfreq [--top N] FILE...` prints the N most frequent words over all files, one per line as `COUNT<TAB>WORD`, most frequent first, ties in alphabetical order. A word
//! is a maximal run of Unicode alphanumeric characters (`char::is_alphanumeric`), lowercased
//! (`char::to_lowercase`); bytes that are not valid UTF-8 separate words, and a word never
//! continues into the next file. Files are read in blocks that the host's worker threads count in
//! parallel ([`Host::run_tasks`], see [`parallel`]), so memory grows with the number of distinct
//! words times the worker threads, not with the size of the input.
//!
//! N is 10 unless the plugin's configuration sets `top` (with `plughost --config FILE`, a file
//! holding `[plugins.wordfreq]` and `top = 20`); `--top` overrides both.
//!
//! When done it publishes an event on [`TOTALS_TOPIC`] whose payload is
//! `files=F words=W distinct=D bytes=B`.

use std::io::Write;

use plugin_api::{Command, Error, Host, Output, Plugin};

/// The topic of the event published after each run.
pub const TOTALS_TOPIC: &str = "wordfreq.totals";

/// How many words are printed when neither `--top` nor the configuration's `top` says.
pub const DEFAULT_TOP: usize = 10;

mod count;
#[cfg(test)]
mod oracle;
pub mod parallel;

pub use count::Counter;
pub use parallel::{CountError, ParallelCounter};

/// Input is read in chunks of this many bytes.
pub(crate) const CHUNK: usize = 256 * 1024;

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

/// Runs the counting tasks on the host's worker threads ([`Host::run_tasks`]).
struct HostTasks<'a>(&'a Host);

impl parallel::Tasks for HostTasks<'_> {
    type Error = Error;

    fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) -> Result<(), Error> {
        self.0.run_tasks(count, |i| {
            task(i);
            Ok(())
        })
    }
}

fn run(host: &Host, default_top: usize, args: &[&str], out: &mut Output<'_>) -> Result<(), Error> {
    let args = parse_args(args, default_top)?;
    // One part per worker thread: memory is the distinct words times the threads, plus a block.
    let threads = host.task_threads();
    let mut counter = ParallelCounter::new(threads);
    let mut buffer = vec![0u8; parallel::block_size(threads)];
    let tasks = HostTasks(host);
    for file in &args.files {
        let reader = std::fs::File::open(file).map_err(|e| Error::new(format!("{file}: {e}")))?;
        counter
            .count_reader(reader, &mut buffer, &tasks)
            .map_err(|e| match e {
                CountError::Read(e) => Error::new(format!("{file}: {e}")),
                CountError::Tasks(e) => e,
            })?;
    }
    let counter = counter.into_counter();
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
        counter.bytes()
    );
    host.publish(TOTALS_TOPIC, totals.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
