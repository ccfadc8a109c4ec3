//! Counting in parallel: the same counts as one [`Counter`], on several threads.
//!
//! The input is read in large blocks. Each block is cut into at most [`ParallelCounter::parts`]
//! pieces, each counted by one task into a counter of its own, and the counters are merged at
//! the end. A cut is made only just after a *safe byte*, one that is ASCII and not alphanumeric:
//! such a byte ends any word and any UTF-8 sequence before it, so the pieces hold whole words and
//! whole characters, and counting them apart gives what counting them in a row gives.
//!
//! The end of a block is not a safe place: a word or a character may continue in the next
//! block. The last piece of a block therefore goes to the counter that will also get the first
//! piece of the next block (the *open* counter), which carries the cut word or character across,
//! exactly as [`Counter::feed`] does for any chunking. A block without any safe byte is one
//! piece, counted by the open counter alone. Every other counter is always between words.
//!
//! Memory: one counter per part, each holding at most every distinct word, and the caller's
//! block buffer; never the input.

use crossbeam_utils::CachePadded;
use std::convert::Infallible;
use std::io::Read;
use std::sync::Mutex;

use crate::Counter;

/// Bytes per part in a block ([`block_size`]).
const PART_BYTES: usize = 1024 * 1024;

/// The largest block [`block_size`] proposes, whatever the number of parts.
const MAX_BLOCK: usize = 16 * 1024 * 1024;

/// Runs tasks, possibly in parallel: the host's worker threads in the plugin, other pools in
/// tests and benchmarks.
pub trait Tasks {
    /// What running the tasks can fail with.
    type Error;

    /// Calls `task(0)`, ..., `task(count - 1)`, in any order and possibly at once, and returns
    /// when every call has returned.
    fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) -> Result<(), Self::Error>;
}

/// Runs every task in turn on the calling thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct InTurn;

impl Tasks for InTurn {
    type Error = Infallible;

    fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) -> Result<(), Infallible> {
        (0..count).for_each(task);
        Ok(())
    }
}

/// Runs each task on a thread of its own (`std::thread::scope`), started for the call.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScopedThreads;

impl Tasks for ScopedThreads {
    type Error = Infallible;

    fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) -> Result<(), Infallible> {
        std::thread::scope(|scope| {
            for i in 1..count {
                scope.spawn(move || task(i));
            }
            if count > 0 {
                task(0);
            }
        });
        Ok(())
    }
}

/// The block size for `parts` parts: 1 MiB per part, at most 16 MiB.
pub fn block_size(parts: usize) -> usize {
    parts
        .saturating_mul(PART_BYTES)
        .clamp(PART_BYTES, MAX_BLOCK)
}

/// Reads from `reader` until `buffer` is full or the input ends; returns how many bytes were
/// read (fewer than `buffer.len()` only at the end of the input).
///
/// # Errors
///
/// The reader's errors, except `Interrupted`, which is retried.
pub fn read_block(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Whether a block may be cut just after `byte`: it is ASCII and not alphanumeric, so it ends
/// any word and any UTF-8 sequence before it.
fn is_safe(byte: u8) -> bool {
    byte.is_ascii() && !byte.is_ascii_alphanumeric()
}

/// Why [`ParallelCounter::count_reader`] failed.
#[derive(Debug)]
pub enum CountError<E> {
    /// Reading the input failed.
    Read(std::io::Error),
    /// Running the tasks failed.
    Tasks(E),
}

impl<E: std::fmt::Display> std::fmt::Display for CountError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CountError::Read(e) => e.fmt(f),
            CountError::Tasks(e) => e.fmt(f),
        }
    }
}

/// Where to cut `block` into at most `parts` pieces: the start of each piece, then the end of
/// the block. Each start but the first is just after a safe byte at or after an equal share of
/// the block; a piece whose share has no safe byte is joined to the one before.
fn cuts(block: &[u8], parts: usize) -> Vec<usize> {
    let mut cuts = Vec::with_capacity(parts + 1);
    cuts.push(0);
    let mut last = 0;
    for j in 1..parts {
        let target = (block.len() / parts * j).max(last);
        match block[target..].iter().position(|&b| is_safe(b)) {
            Some(at) if target + at + 1 < block.len() => {
                last = target + at + 1;
                cuts.push(last);
            }
            // No safe byte before the end: the rest is one piece.
            _ => break,
        }
    }
    cuts.push(block.len());
    cuts
}

/// Word counts of any number of inputs, counted in parallel; the same counts as a [`Counter`]
/// given the same bytes.
pub struct ParallelCounter {
    /// One counter per part; a task locks only its own, so the locks are never contended. Each
    /// on cache lines of its own: the tasks write their counters at every word, and two counters
    /// side by side in one line made the cores fight over it (false sharing), slowing the count
    /// by up to a third depending on where the heap put the vector.
    parts: Vec<CachePadded<Mutex<Counter>>>,
    /// The counter that may hold a word or character cut by the end of the last block.
    open: usize,
}

impl ParallelCounter {
    /// An empty counter that counts a block in at most `parts` pieces at once (at least 1).
    pub fn new(parts: usize) -> ParallelCounter {
        ParallelCounter {
            parts: (0..parts.max(1))
                .map(|_| CachePadded::new(Mutex::new(Counter::new())))
                .collect(),
            open: 0,
        }
    }

    /// How many pieces a block is cut into at most.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// Counts the words of `block`, the next bytes of the current input, running one task per
    /// piece with `tasks`.
    ///
    /// # Errors
    ///
    /// What `tasks` fails with; the counts are then incomplete.
    pub fn feed<T: Tasks + ?Sized>(&mut self, block: &[u8], tasks: &T) -> Result<(), T::Error> {
        if block.is_empty() {
            return Ok(());
        }
        let n = self.parts.len();
        let cuts = cuts(block, n);
        let pieces = cuts.len() - 1;
        let open = self.open;
        let parts = &self.parts;
        // Piece `i` goes to counter `open + i`: the first continues what the open counter holds,
        // the others are between words. Each piece has a counter of its own.
        let count_piece =
            |i: usize| lock(&parts[(open + i) % n]).feed(&block[cuts[i]..cuts[i + 1]]);
        if pieces == 1 {
            count_piece(0);
        } else {
            tasks.run(pieces, &count_piece)?;
        }
        // The last piece may end inside a word or a character.
        self.open = (open + pieces - 1) % n;
        Ok(())
    }

    /// Ends the current input: a word cannot continue into the next file.
    pub fn finish_input(&mut self) {
        for part in &mut self.parts {
            lock(part).finish_input();
        }
    }

    /// Counts every byte of `reader` as one input, in blocks read into `buffer` (whose size
    /// is the block size, see [`block_size`]), then ends the input.
    ///
    /// # Errors
    ///
    /// A read error, or what `tasks` fails with; the input is then counted in part. An empty
    /// `buffer` is an error of kind `InvalidInput`.
    pub fn count_reader<T: Tasks + ?Sized>(
        &mut self,
        mut reader: impl Read,
        buffer: &mut [u8],
        tasks: &T,
    ) -> Result<(), CountError<T::Error>> {
        if buffer.is_empty() {
            return Err(CountError::Read(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "wordfreq: an empty block buffer",
            )));
        }
        loop {
            let n = read_block(&mut reader, buffer).map_err(CountError::Read)?;
            if n == 0 {
                break;
            }
            self.feed(&buffer[..n], tasks).map_err(CountError::Tasks)?;
            if n < buffer.len() {
                break;
            }
        }
        self.finish_input();
        Ok(())
    }

    /// The counts of every part, merged into one counter.
    pub fn into_counter(self) -> Counter {
        let mut merged = Counter::new();
        for part in self.parts {
            merged.merge(
                CachePadded::into_inner(part)
                    .into_inner()
                    .unwrap_or_else(|e| e.into_inner()),
            );
        }
        merged
    }
}

/// Locks a part's counter. A panic while counting (which faults the plugin) cannot leave a
/// counter unusable, only with partial counts, so a poisoned lock is taken as it is.
fn lock(part: &Mutex<Counter>) -> std::sync::MutexGuard<'_, Counter> {
    part.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::oracle;

    /// What a counter found: every word with its count in order, words, distinct words, bytes.
    type Found = (Vec<(String, u64)>, u64, usize, u64);

    fn found(counter: &Counter) -> Found {
        let top = counter
            .top(usize::MAX)
            .into_iter()
            .map(|(w, n)| (w.to_owned(), n))
            .collect();
        (top, counter.words(), counter.distinct(), counter.bytes())
    }

    /// The sequential counter over `inputs`, each fed whole.
    fn sequential(inputs: &[&[u8]]) -> Found {
        let mut counter = Counter::new();
        for input in inputs {
            counter.feed(input);
            counter.finish_input();
        }
        found(&counter)
    }

    /// The parallel counter over `inputs`, in blocks of `block` bytes cut into `parts` pieces.
    fn parallel<T>(inputs: &[&[u8]], block: usize, parts: usize, tasks: &T) -> Found
    where
        T: Tasks<Error = Infallible>,
    {
        let mut counter = ParallelCounter::new(parts);
        let mut buffer = vec![0; block];
        for input in inputs {
            counter.count_reader(*input, &mut buffer, tasks).unwrap();
        }
        found(&counter.into_counter())
    }

    /// Records which pieces each block was cut into.
    struct Recording(Mutex<Vec<usize>>);

    impl Tasks for Recording {
        type Error = Infallible;

        fn run(&self, count: usize, task: &(dyn Fn(usize) + Sync)) -> Result<(), Infallible> {
            lock_vec(&self.0).push(count);
            // Last first: the order of the tasks must not matter.
            (0..count).rev().for_each(task);
            Ok(())
        }
    }

    fn lock_vec(v: &Mutex<Vec<usize>>) -> std::sync::MutexGuard<'_, Vec<usize>> {
        v.lock().unwrap()
    }

    #[test]
    fn same_counts_as_one_counter_on_multilingual_text() {
        let text = "Alle Menschen sind frei und gleich an Würde und Rechten geboren. \
                    人人生而自由，在尊严和权利上一律平等。 Все люди рождаются свободными. \
                    STRASSE Straße İstanbul ΣΊΣΥΦΟΣ 42 x_y\n";
        let text = text.repeat(50);
        let (words, count) = oracle::count(&[text.as_bytes()]);
        let expected = sequential(&[text.as_bytes()]);
        assert_eq!((&expected.0, expected.1), (&words, count));
        for parts in [1, 2, 3, 8] {
            for block in [1, 2, 7, 64, 1000, 1 << 20] {
                assert_eq!(
                    parallel(&[text.as_bytes()], block, parts, &InTurn),
                    expected,
                    "{parts} parts, blocks of {block} bytes"
                );
            }
            assert_eq!(
                parallel(&[text.as_bytes()], 4096, parts, &ScopedThreads),
                expected,
                "{parts} parts on threads"
            );
        }
    }

    #[test]
    fn blocks_are_cut_into_pieces_in_parallel() {
        let text = b"one two three four five six seven eight nine ten ".repeat(10);
        let tasks = Recording(Mutex::new(Vec::new()));
        let mut counter = ParallelCounter::new(4);
        counter.feed(&text, &tasks).unwrap();
        counter.finish_input();
        assert_eq!(*lock_vec(&tasks.0), [4], "four pieces for four parts");
        let counter = counter.into_counter();
        assert_eq!(counter.words(), 100);
        assert_eq!(counter.top(1), [("eight", 10)]);
    }

    #[test]
    fn a_block_without_a_safe_byte_is_one_piece() {
        // No ASCII separator at all: neither letters nor a CJK text may be cut.
        let tasks = Recording(Mutex::new(Vec::new()));
        let mut counter = ParallelCounter::new(4);
        let text = "人人生而自由在尊严和权利上一律平等".repeat(100);
        let half = text.len() / 2 + 1; // inside a character
        counter.feed(&text.as_bytes()[..half], &tasks).unwrap();
        counter.feed(&text.as_bytes()[half..], &tasks).unwrap();
        counter.feed(b"ab", &tasks).unwrap();
        counter.finish_input();
        assert!(
            lock_vec(&tasks.0).is_empty(),
            "each block is one piece, counted in place"
        );
        let word = format!("{text}ab");
        assert_eq!(counter.into_counter().top(5), [(word.as_str(), 1)]);
    }

    #[test]
    fn words_continue_across_blocks_but_not_across_inputs() {
        let inputs: [&[u8]; 3] = [b"abc de", b"f ghi", b"\xc3"];
        assert_eq!(parallel(&inputs, 4, 2, &InTurn), sequential(&inputs));
        let mut counter = ParallelCounter::new(2);
        counter.feed(b"ab", &InTurn).unwrap();
        counter.feed(b"c ", &InTurn).unwrap();
        counter.feed(b"x ca", &InTurn).unwrap();
        counter.feed(b"f\xc3", &InTurn).unwrap();
        counter.feed(b"\xa9 x", &InTurn).unwrap();
        counter.finish_input();
        counter.feed(b"yz", &InTurn).unwrap();
        counter.finish_input();
        let counter = counter.into_counter();
        // "yz" is a word of its own: it does not continue the first input's last "x".
        assert_eq!(
            counter.top(9),
            [("x", 2), ("abc", 1), ("café", 1), ("yz", 1)]
        );
        assert_eq!(counter.words(), 5);
    }

    #[test]
    fn an_empty_buffer_is_an_error_not_an_empty_input() {
        let mut counter = ParallelCounter::new(2);
        match counter.count_reader(&b"words"[..], &mut [], &InTurn) {
            Err(CountError::Read(e)) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn block_size_grows_with_parts_and_is_bounded() {
        assert_eq!(block_size(0), PART_BYTES);
        assert_eq!(block_size(1), PART_BYTES);
        assert_eq!(block_size(2), 2 * PART_BYTES);
        assert_eq!(block_size(1000), MAX_BLOCK);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn any_bytes_blocks_and_parts_give_the_sequential_counts(
            inputs in proptest::collection::vec(oracle::input(), 1..4),
            block in 1usize..64,
            parts in 1usize..6,
        ) {
            let inputs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let expected = sequential(&inputs);
            let (words, count) = oracle::count(&inputs);
            prop_assert_eq!((&expected.0, expected.1), (&words, count));
            prop_assert_eq!(parallel(&inputs, block, parts, &InTurn), expected);
        }
    }
}
