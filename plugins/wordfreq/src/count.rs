//! The sequential word counter: the definition of a word, and the reference that the parallel
//! counter ([`crate::parallel`]) must match exactly.

use std::io::Read;

use hashbrown::HashTable;

use crate::CHUNK;

/// Word counts over any number of inputs.
#[derive(Default)]
pub struct Counter {
    /// Every word seen, with its count.
    counts: HashTable<Entry>,
    /// The word being read, lowercased, in UTF-8; it may continue in the next chunk.
    word: Vec<u8>,
    /// Bytes of a character cut by the end of the previous chunk.
    carry: Vec<u8>,
    words: u64,
    bytes: u64,
    /// The class and lowercase of characters outside ASCII seen recently.
    chars: CharCache,
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
            // `carry` is the start of a character cut by the previous chunk: complete it, with
            // as many bytes as this chunk has.
            let need = utf8_sequence_len(self.carry[0]).saturating_sub(self.carry.len());
            let take = need.min(chunk.len());
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(&chunk[..take]);
            match std::str::from_utf8(&joined) {
                Ok(c) => {
                    self.feed_str(c);
                    input = &chunk[take..];
                }
                // Still the start of a character: the chunk was shorter than the rest of it.
                Err(e) if e.error_len().is_none() => {
                    self.carry = joined;
                    return;
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

    /// Counts the words of `s`, which continues the current input.
    ///
    /// The loop goes a run at a time. A run of ASCII letters and digits is found eight bytes at
    /// a time ([`ascii_mask`]); a whole word of up to seven bytes (most words) is lowercased in
    /// that same eight-byte number and counted from it ([`bump_short`]), a longer whole word
    /// is counted straight from the input if it is in lowercase: one hash, no copy. Otherwise
    /// the run is appended, lowercased, to `word`, which is counted when the word ends. Other
    /// characters are looked up in a small cache of their class and lowercase, so the Unicode
    /// tables are read once per distinct character, not per occurrence.
    fn feed_str(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let len = bytes.len();
        let mut i = 0;
        while i < len {
            let class = CLASS[usize::from(bytes[i])];
            if class == SEPARATOR {
                self.end_word();
                i += 1;
            } else if class == OTHER {
                // Not ASCII: `i` is at the start of a character (ASCII bytes and whole
                // characters are all that the loop steps over).
                let Some(c) = s[i..].chars().next() else {
                    break;
                };
                match self.chars.class(c) {
                    CharClass::Separator => self.end_word(),
                    CharClass::Lower(lower) => push_char(&mut self.word, lower),
                    CharClass::Several => {
                        for lower in c.to_lowercase() {
                            push_char(&mut self.word, lower);
                        }
                    }
                }
                i += c.len_utf8();
            } else {
                // A run of ASCII letters and digits.
                if self.word.is_empty() && i + 8 <= len {
                    // The common case: a word of up to seven ASCII letters and digits followed
                    // by a separator, lowercased and counted from one read of eight bytes.
                    let x = read8(bytes, i);
                    let (alnum, capitals) = ascii_mask(x);
                    let stop = !alnum & HIGH_BITS;
                    // Bytes are little-endian: the first byte that ends the run is the lowest.
                    let n = stop.trailing_zeros() as usize / 8;
                    if n < 8 && CLASS[usize::from(bytes[i + n])] == SEPARATOR {
                        let keep = (1u64 << (8 * n)) - 1;
                        // Bit 5 set on each capital (its high bit, moved) lowercases it.
                        let head = (x | (capitals >> 2)) & keep;
                        self.words += 1;
                        bump_short(&mut self.counts, head, n);
                        i += n + 1;
                        continue;
                    }
                }
                let start = i;
                let (end, upper) = ascii_run(bytes, i);
                i = end;
                let run = &bytes[start..i];
                let ends_here = i < len && CLASS[usize::from(bytes[i])] == SEPARATOR;
                if ends_here && !upper && self.word.is_empty() {
                    self.words += 1;
                    bump(&mut self.counts, run);
                    i += 1;
                } else {
                    let at = self.word.len();
                    self.word.extend_from_slice(run);
                    if upper {
                        self.word[at..].make_ascii_lowercase();
                    }
                }
            }
        }
    }

    fn end_word(&mut self) {
        if self.word.is_empty() {
            return;
        }
        self.words += 1;
        bump(&mut self.counts, &self.word);
        self.word.clear();
    }

    /// Ends the current input: a word cannot continue into the next file.
    pub fn finish_input(&mut self) {
        self.carry.clear();
        self.end_word();
    }

    /// The `n` most frequent words, most frequent first, ties in alphabetical order.
    pub fn top(&self, n: usize) -> Vec<(&str, u64)> {
        // Every word is UTF-8: runs of ASCII letters and digits, and whole characters.
        let mut all: Vec<(&str, u64)> = self
            .counts
            .iter()
            .map(|e| (std::str::from_utf8(&e.word).unwrap_or("\u{fffd}"), e.count))
            .collect();
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

    /// How many bytes were read.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds the counts of `other` to these, as if this counter had read `other`'s input too.
    pub fn merge(&mut self, other: Counter) {
        if other.counts.len() > self.counts.len() {
            // Insert the smaller map into the larger one.
            let mine = std::mem::replace(&mut self.counts, other.counts);
            self.add_counts(mine);
        } else {
            self.add_counts(other.counts);
        }
        self.words += other.words;
        self.bytes += other.bytes;
    }

    fn add_counts(&mut self, counts: HashTable<Entry>) {
        self.counts.reserve(counts.len(), Entry::hash);
        for entry in counts {
            let hash = entry.hash();
            match self
                .counts
                .find_mut(hash, |e| e.is(entry.head, &entry.word))
            {
                Some(e) => e.count += entry.count,
                None => {
                    self.counts.insert_unique(hash, entry, Entry::hash);
                }
            }
        }
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

/// Where the run of ASCII letters and digits that starts at `start` ends in `bytes`, and
/// whether it holds a capital letter.
///
/// Eight bytes at a time while there are eight: [`ascii_mask`] finds the letters, digits and
/// capitals among them, so a word of up to seven letters takes one step and no branch per byte.
#[inline]
fn ascii_run(bytes: &[u8], start: usize) -> (usize, bool) {
    let mut i = start;
    let mut upper = 0;
    while i + 8 <= bytes.len() {
        let x = read8(bytes, i);
        let (alnum, capitals) = ascii_mask(x);
        let stop = !alnum & HIGH_BITS;
        if stop == 0 {
            upper |= capitals;
            i += 8;
            continue;
        }
        // Bytes are read little-endian: the first byte that ends the run is the lowest.
        let inside = stop.trailing_zeros() / 8;
        upper |= capitals & ((1u64 << (8 * inside)) - 1);
        return (i + inside as usize, upper != 0);
    }
    let mut seen = 0;
    while let Some(&b) = bytes.get(i) {
        let class = CLASS[usize::from(b)];
        if class & ALNUM == 0 {
            break;
        }
        seen |= class;
        i += 1;
    }
    (i, upper != 0 || seen & UPPER != 0)
}

/// The high bit of every byte.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
/// 1 in every byte.
const ONES: u64 = 0x0101_0101_0101_0101;

/// The high bit of each byte of `x` that is ASCII and strictly between `low` and `high`
/// (`high` at most 128). Each byte is computed on its own low seven bits, so no borrow or carry
/// crosses into the next byte.
#[inline]
fn bytes_between(x: u64, low: u64, high: u64) -> u64 {
    let seven = x & (ONES * 127);
    let below_high = (ONES * (127 + high)).wrapping_sub(seven);
    let above_low = seven.wrapping_add(ONES * (127 - low));
    below_high & above_low & !x & HIGH_BITS
}

/// Of the eight bytes of `x`: the high bit of each ASCII letter or digit, and of each ASCII
/// capital letter.
#[inline]
fn ascii_mask(x: u64) -> (u64, u64) {
    let digits = bytes_between(x, u64::from(b'0') - 1, u64::from(b'9') + 1);
    // Setting bit 5 maps A-Z onto a-z, and no other ASCII byte into a-z.
    let letters = bytes_between(x | (ONES * 0x20), u64::from(b'a') - 1, u64::from(b'z') + 1);
    let capitals = bytes_between(x, u64::from(b'A') - 1, u64::from(b'Z') + 1);
    (digits | letters, capitals)
}

/// A word and its count, in [`Counter`]'s table.
#[derive(Debug, Clone)]
struct Entry {
    word: Box<[u8]>,
    /// [`head`] of `word`: comparing a word of up to eight bytes reads nothing else.
    head: u64,
    count: u64,
}

impl Entry {
    /// Whether this is the entry of `word`, whose head is `head`.
    #[inline]
    fn is(&self, head: u64, word: &[u8]) -> bool {
        self.head == head
            && self.word.len() == word.len()
            && (word.len() <= 8 || self.word[8..] == word[8..])
    }

    fn hash(&self) -> u64 {
        hash_word(self.head, &self.word)
    }
}

/// Adds one to the count of `word`: one hash and one probe, whether the word is new or not.
#[inline]
fn bump(counts: &mut HashTable<Entry>, word: &[u8]) {
    let head = head(word);
    let hash = hash_word(head, word);
    match counts.find_mut(hash, |e| e.is(head, word)) {
        Some(entry) => entry.count += 1,
        None => insert(counts, hash, head, word),
    }
}

/// [`bump`] for a word of `len` bytes, 1 to 7, given as its [`head`]: no branch on the length
/// and no loop over bytes.
#[inline]
fn bump_short(counts: &mut HashTable<Entry>, head: u64, len: usize) {
    let hash = finish(mix((len as u64).wrapping_mul(K), head));
    match counts.find_mut(hash, |e| e.head == head && e.word.len() == len) {
        Some(entry) => entry.count += 1,
        None => insert(counts, hash, head, &head.to_le_bytes()[..len]),
    }
}

#[cold]
fn insert(counts: &mut HashTable<Entry>, hash: u64, head: u64, word: &[u8]) {
    let entry = Entry {
        word: word.into(),
        head,
        count: 1,
    };
    counts.insert_unique(hash, entry, Entry::hash);
}

/// Appends `c` to `word` in UTF-8.
fn push_char(word: &mut Vec<u8>, c: char) {
    let mut buffer = [0; 4];
    word.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
}

/// The multiplier of rustc-hash's FxHasher.
const K: u64 = 0xf135_7aea_2e62_a9c5;

/// Eight bytes of `bytes` from `at`, as a number (little-endian: the first byte is the lowest).
#[inline]
fn read8(bytes: &[u8], at: usize) -> u64 {
    let mut eight = [0; 8];
    eight.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(eight)
}

/// The first eight bytes of `word` as a number, little-endian, zero-padded when it is shorter.
#[inline]
fn head(word: &[u8]) -> u64 {
    let mut eight = [0; 8];
    let n = word.len().min(8);
    eight[..n].copy_from_slice(&word[..n]);
    u64::from_le_bytes(eight)
}

/// One step of the hash, as FxHash mixes a word.
#[inline]
fn mix(h: u64, x: u64) -> u64 {
    (h.rotate_left(5) ^ x).wrapping_mul(K)
}

/// The last step of the hash: the table takes its slot from the low bits, so bring the
/// well-mixed high bits down.
#[inline]
fn finish(h: u64) -> u64 {
    h.rotate_left(26)
}

/// The hash of a word whose [`head`] is `head`: its length, its head, then its other bytes
/// eight at a time (the last read overlaps the one before when the length is not a multiple of
/// eight). A word of up to eight bytes costs two multiplications.
#[inline]
fn hash_word(head: u64, word: &[u8]) -> u64 {
    let n = word.len();
    let mut h = mix((n as u64).wrapping_mul(K), head);
    if n > 8 {
        let mut at = 8;
        while at + 8 < n {
            h = mix(h, read8(word, at));
            at += 8;
        }
        h = mix(h, read8(word, n - 8));
    }
    finish(h)
}

/// [`CLASS`] of an ASCII byte that is neither a letter nor a digit.
const SEPARATOR: u8 = 0;
/// Bit of [`CLASS`]: an ASCII letter or digit.
const ALNUM: u8 = 1;
/// Bit of [`CLASS`]: an ASCII capital letter.
const UPPER: u8 = 2;
/// [`CLASS`] of a byte outside ASCII.
const OTHER: u8 = 4;

/// The class of each byte value, for the scanning loop of [`Counter::feed_str`].
static CLASS: [u8; 256] = {
    let mut table = [SEPARATOR; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        table[b] = if !byte.is_ascii() {
            OTHER
        } else if byte.is_ascii_uppercase() {
            ALNUM | UPPER
        } else if byte.is_ascii_alphanumeric() {
            ALNUM
        } else {
            SEPARATOR
        };
        b += 1;
    }
    table
};

/// What a character outside ASCII is to the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharClass {
    /// Not alphanumeric: it ends a word.
    Separator,
    /// Alphanumeric, and this is its lowercase.
    Lower(char),
    /// Alphanumeric, with a lowercase of several characters (`İ`).
    Several,
}

impl CharClass {
    fn of(c: char) -> CharClass {
        if !c.is_alphanumeric() {
            return CharClass::Separator;
        }
        let mut lower = c.to_lowercase();
        match (lower.next(), lower.next()) {
            (Some(l), None) => CharClass::Lower(l),
            _ => CharClass::Several,
        }
    }
}

/// Slots of [`CharCache`], a power of two.
const CHAR_SLOTS: usize = 512;

/// A direct-mapped cache of [`CharClass::of`] for characters outside ASCII.
#[derive(Debug, Clone)]
struct CharCache {
    /// Slot `c % CHAR_SLOTS` holds `c` and its class; `'\0'`, which is ASCII and never looked
    /// up, marks an empty slot.
    slots: Box<[(char, CharClass)]>,
}

impl Default for CharCache {
    fn default() -> CharCache {
        CharCache {
            slots: vec![('\0', CharClass::Separator); CHAR_SLOTS].into_boxed_slice(),
        }
    }
}

impl CharCache {
    /// The class of `c`, which is not ASCII.
    #[inline]
    fn class(&mut self, c: char) -> CharClass {
        let slot = &mut self.slots[c as usize % CHAR_SLOTS];
        if slot.0 != c {
            *slot = (c, CharClass::of(c));
        }
        slot.1
    }
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
    fn a_cut_character_broken_by_a_short_chunk() {
        // The chunk after the cut `\xe6` is shorter than the rest of the character, and its
        // `A` is not a continuation byte: `A` starts a word, which goes on in the next chunk.
        assert_eq!(count(&[b"\xe6", b"A", b"b"]), owned(&[("ab", 1)]));
        assert_eq!(
            count(&[b"x\xf0\x9f", b"\x98", b"y"]),
            owned(&[("x", 1), ("y", 1)])
        );
    }

    #[test]
    fn eight_byte_masks_match_the_ascii_predicates() {
        for b in 0..=255u8 {
            for at in 0..8 {
                // `b` among bytes of other classes, at each place.
                let mut bytes = *b"aZ9 \xc3-_q";
                bytes[at] = b;
                let (alnum, capitals) = ascii_mask(u64::from_le_bytes(bytes));
                for (i, &byte) in bytes.iter().enumerate() {
                    let bit = 0x80u64 << (8 * i);
                    assert_eq!(
                        alnum & bit != 0,
                        byte.is_ascii_alphanumeric(),
                        "{byte:#x} at {i}"
                    );
                    assert_eq!(
                        capitals & bit != 0,
                        byte.is_ascii_uppercase(),
                        "{byte:#x} at {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn byte_classes_match_the_ascii_predicates() {
        for b in 0..=255u8 {
            let class = CLASS[usize::from(b)];
            assert_eq!(class == OTHER, !b.is_ascii(), "{b:#x}");
            assert_eq!(class & ALNUM != 0, b.is_ascii_alphanumeric(), "{b:#x}");
            assert_eq!(class & UPPER != 0, b.is_ascii_uppercase(), "{b:#x}");
        }
    }

    #[test]
    fn characters_sharing_a_cache_slot_keep_their_own_class() {
        // U+00E9 and U+02E9 (a tone letter, not alphanumeric) fall in the same slot.
        assert_eq!('é' as usize % CHAR_SLOTS, '\u{2e9}' as usize % CHAR_SLOTS);
        assert_eq!(count(&["é\u{2e9}É\u{2e9}é".as_bytes()]), owned(&[("é", 3)]));
        // A capital whose lowercase is two characters, seen twice (from the cache).
        assert_eq!(count(&["İx İx".as_bytes()]), owned(&[("i\u{307}x", 2)]));
    }

    #[test]
    fn whole_lowercase_words_and_words_that_continue() {
        // Counted straight from the input, lowercased into the buffer, continued by a
        // character outside ASCII, and cut by the end of the chunk.
        assert_eq!(
            count(&[b"abc Abc abc\xc3\xa9 ab", b"c abc"]),
            owned(&[("abc", 4), ("abcé", 1)])
        );
    }

    /// The table entry of `word` with count 1.
    fn entry(word: &[u8]) -> Entry {
        Entry {
            word: word.into(),
            head: head(word),
            count: 1,
        }
    }

    #[test]
    fn words_of_every_length_compare_and_hash_by_every_byte() {
        for n in 0..=24 {
            let word: Vec<u8> = (0..n as u8).map(|i| b'a' + i).collect();
            assert!(entry(&word).is(head(&word), &word));
            for at in 0..n {
                let mut other = word.clone();
                other[at] = b'Z';
                assert!(!entry(&word).is(head(&other), &other), "{n} bytes, at {at}");
                assert_ne!(
                    entry(&word).hash(),
                    entry(&other).hash(),
                    "{n} bytes, at {at}"
                );
            }
            if n > 0 {
                let shorter = &word[..n - 1];
                assert!(!entry(&word).is(head(shorter), shorter), "{n} bytes");
            }
        }
    }

    #[test]
    fn short_words_are_counted_in_the_same_entries_either_way() {
        let mut counts = HashTable::new();
        for word in [&b"a"[..], b"the", b"seven77", b"the", b"eight888", b"a"] {
            bump(&mut counts, word);
            if word.len() < 8 {
                bump_short(&mut counts, head(word), word.len());
            }
        }
        let mut found: Vec<(&[u8], u64)> = counts.iter().map(|e| (&*e.word, e.count)).collect();
        found.sort();
        assert_eq!(
            found,
            [
                (&b"a"[..], 4),
                (b"eight888", 1),
                (b"seven77", 2),
                (b"the", 4)
            ]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        #[test]
        fn entries_are_equal_exactly_when_words_are(
            a in proptest::collection::vec(0u8..4, 0..20),
            b in proptest::collection::vec(0u8..4, 0..20),
        ) {
            proptest::prop_assert_eq!(entry(&a).is(head(&b), &b), a == b);
            if a == b {
                proptest::prop_assert_eq!(entry(&a).hash(), entry(&b).hash());
            }
        }

        #[test]
        fn any_bytes_in_any_chunks_count_as_the_definition_says(
            input in crate::oracle::input(),
            chunk in 1usize..40,
        ) {
            let chunks: Vec<&[u8]> = input.chunks(chunk).collect();
            let mut c = Counter::new();
            for piece in &chunks {
                c.feed(piece);
            }
            c.finish_input();
            let (expected, words) = crate::oracle::count(&[&input]);
            proptest::prop_assert_eq!(count(&chunks), expected);
            proptest::prop_assert_eq!(c.words(), words);
            proptest::prop_assert_eq!(c.bytes(), input.len() as u64);
        }
    }
}
