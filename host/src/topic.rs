//! [`Topic`]: an event topic checked against the ABI's rule and hashed in one pass over its
//! bytes, and [`TopicIndex`], the table of subscribed topics that a publish searches with that
//! hash. A publish reads its topic once: the check, the topic filter (`crate::events`) and the
//! lookup of the topic's subscribers all come from that one pass.
//!
//! # The pass
//!
//! The bytes are read 16 at a time, as two little-endian `u64` words; a topic shorter than 16
//! bytes is read as words that overlap or repeat (see [`scan`]), never beyond its end. Each block
//! is checked byte by byte in parallel (SSE2 on x86-64, which every x86-64 processor has; a table
//! elsewhere) and folded into the hash with one 64×64→128-bit multiplication. Topics are short
//! strings that plugins choose, not an adversary, so the hash aims at speed and an even spread,
//! as FxHash did before it.

use plugin_api::abi::PH_MAX_TOPIC_LEN;
use rustc_hash::FxHashMap;

/// A valid event topic and its hash ([`Topic::check`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Topic<'a> {
    name: &'a str,
    hash: u64,
}

impl<'a> Topic<'a> {
    /// `bytes` as a topic if it is a valid one by the ABI's rule
    /// ([`plugin_api::abi::is_valid_topic`]: 1 to [`PH_MAX_TOPIC_LEN`] ASCII letters, digits,
    /// `-`, `_` and `.`), with its hash. A valid topic is ASCII, hence UTF-8: no check of its own.
    /// A topic that is too long is refused before its bytes are read.
    #[inline]
    pub(crate) fn check(bytes: &'a [u8]) -> Option<Topic<'a>> {
        if bytes.len().wrapping_sub(1) >= PH_MAX_TOPIC_LEN {
            return None;
        }
        let (valid, hash) = scan(bytes);
        if !valid {
            return None;
        }
        // SAFETY: every byte is an ASCII letter, digit, `-`, `_` or `.` (checked by `scan`), so
        // the bytes are UTF-8.
        let name = unsafe { std::str::from_utf8_unchecked(bytes) };
        Some(Topic { name, hash })
    }

    /// The topic.
    #[inline]
    pub(crate) fn as_str(self) -> &'a str {
        self.name
    }

    /// Its hash, as [`hash`] computes it.
    #[inline]
    pub(crate) fn hash(self) -> u64 {
        self.hash
    }
}

/// The hash of `topic`, valid or not: the one [`Topic::check`] computes for a valid topic.
pub(crate) fn hash(topic: &str) -> u64 {
    scan(topic.as_bytes()).1
}

/// The hash before the first block: mixed with the length, so that topics whose blocks overlap
/// differently (different lengths) start apart.
const SEED: u64 = 0x243f_6a88_85a3_08d3;
/// XORed into the second word of each block. Some of its bytes are not ASCII, so the second word
/// of a valid topic never equals it and the multiplication in [`mix`] never has a zero factor
/// from it.
const KEY: u64 = 0x1319_8a2e_0370_7344 ^ 0x8080_8080_8080_8080;

/// Folds the block `lo`, `hi` into `hash`: the high and low halves of one full multiplication,
/// XORed (each bit of the result depends on most bits of both words).
#[inline(always)]
fn mix(hash: u64, lo: u64, hi: u64) -> u64 {
    let product = u128::from(hash ^ lo) * u128::from(hi ^ KEY);
    (product as u64) ^ ((product >> 64) as u64)
}

/// One pass over `bytes`: whether every byte may appear in a topic and `bytes` is not empty, and
/// the hash. The length limit is [`Topic::check`]'s.
///
/// Blocks of 16 bytes: from the start, 16 bytes further each, and the last one ending at the
/// end (overlapping the one before unless the length is a multiple of 16). Shorter topics are
/// one block: 8 to 15 bytes, the first and the last 8 (overlapping); 4 to 7 bytes, the first and
/// the last 4 as one word, twice; 1 to 3 bytes, the first, middle and last byte and five bytes
/// `a`, twice. Every byte is in some block, and the length (mixed into the seed) with the blocks
/// determines the bytes.
#[inline(always)]
fn scan(bytes: &[u8]) -> (bool, u64) {
    let len = bytes.len();
    let mut hash = SEED ^ len as u64;
    let mut invalid = 0;
    let mut block = |lo: u64, hi: u64| {
        invalid |= invalid_bytes(lo, hi);
        hash = mix(hash, lo, hi);
    };
    if let (Some(first), Some(last)) = (bytes.first_chunk::<16>(), bytes.last_chunk::<16>()) {
        // 16 bytes or more: most topics take one or two blocks, without a loop.
        let (lo, hi) = words(first);
        block(lo, hi);
        if len > 32 {
            let mut at = 16;
            while at + 16 < len {
                // Always there: `at + 16 < len`.
                let Some(chunk) = bytes.get(at..).and_then(<[u8]>::first_chunk::<16>) else {
                    break;
                };
                let (lo, hi) = words(chunk);
                block(lo, hi);
                at += 16;
            }
        }
        if len > 16 {
            let (lo, hi) = words(last);
            block(lo, hi);
        }
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
        block(u64::from_le_bytes(*first), u64::from_le_bytes(*last));
    } else if let (Some(first), Some(last)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        let word =
            u64::from(u32::from_le_bytes(*first)) | u64::from(u32::from_le_bytes(*last)) << 32;
        block(word, word);
    } else if let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) {
        let middle = bytes[len / 2];
        let word = u64::from_le_bytes([first, middle, last, b'a', b'a', b'a', b'a', b'a']);
        block(word, word);
    } else {
        return (false, hash);
    }
    (invalid == 0, hash)
}

/// The two little-endian words of a block.
#[inline(always)]
fn words(block: &[u8; 16]) -> (u64, u64) {
    let both = u128::from_le_bytes(*block);
    (both as u64, (both >> 64) as u64)
}

/// Not zero if a byte of the block `lo`, `hi` may not appear in a topic: SSE2, 16 bytes at once.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn invalid_bytes(lo: u64, hi: u64) -> u32 {
    // SAFETY: this build enables SSE2 (the `cfg` above; every x86-64 processor has it), so the
    // processor that runs it does too.
    unsafe { invalid_bytes_sse2(lo, hi) }
}

/// [`invalid_bytes`] with SSE2.
///
/// # Safety
///
/// The processor must have SSE2.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
#[inline]
unsafe fn invalid_bytes_sse2(lo: u64, hi: u64) -> u32 {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
    };
    let byte = |b: u8| _mm_set1_epi8(b as i8);
    let bytes = _mm_set_epi64x(hi as i64, lo as i64);
    // The comparisons are signed: a byte of 0x80 or more is negative, below every bound.
    // Letters: with bit 5 set, `A`-`Z` become `a`-`z`, and nothing else does.
    let folded = _mm_or_si128(bytes, byte(0x20));
    let letter = _mm_and_si128(
        _mm_cmpgt_epi8(folded, byte(b'a' - 1)),
        _mm_cmplt_epi8(folded, byte(b'z' + 1)),
    );
    // `-`, `.`, `/` and the digits are 0x2d to 0x39; all but `/`.
    let digit_dash_dot = _mm_andnot_si128(
        _mm_cmpeq_epi8(bytes, byte(b'/')),
        _mm_and_si128(
            _mm_cmpgt_epi8(bytes, byte(b'-' - 1)),
            _mm_cmplt_epi8(bytes, byte(b'9' + 1)),
        ),
    );
    let underscore = _mm_cmpeq_epi8(bytes, byte(b'_'));
    let valid = _mm_or_si128(_mm_or_si128(letter, digit_dash_dot), underscore);
    !(_mm_movemask_epi8(valid) as u32) & 0xffff
}

/// Not zero if a byte of the block `lo`, `hi` may not appear in a topic: a table, where SSE2 is
/// not at hand.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn invalid_bytes(lo: u64, hi: u64) -> u32 {
    invalid_bytes_by_table(lo, hi)
}

/// [`invalid_bytes`] with a table and no branch per byte: the portable version, which the tests
/// compare with the SSE2 one.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline(always)]
fn invalid_bytes_by_table(lo: u64, hi: u64) -> u32 {
    let invalid = |b: u8| INVALID_TOPIC_BYTE[usize::from(b)];
    let (mut a, mut b) = (0u8, 0u8);
    for (x, y) in lo.to_le_bytes().into_iter().zip(hi.to_le_bytes()) {
        a |= invalid(x);
        b |= invalid(y);
    }
    u32::from(a | b)
}

/// 1 for each byte that a topic may not contain, 0 for ASCII letters, digits, `-`, `_` and `.`.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
static INVALID_TOPIC_BYTE: [u8; 256] = {
    let mut table = [1u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.' {
            table[b] = 0;
        }
        b += 1;
    }
    table
};

/// One subscribed topic in a [`TopicIndex`].
struct Slot<T> {
    hash: u64,
    topic: Box<str>,
    value: T,
}

/// A table from topics to `T` (the subscriber lists), searched with a [`Topic`]'s hash, so that
/// a publish does not hash its topic again: open addressing with linear probing, at most half
/// full. Built whole from a map and never changed (the routes it belongs to are an immutable
/// snapshot, replaced by every change of the subscriptions).
pub(crate) struct TopicIndex<T> {
    /// A power of two of slots, or none.
    slots: Box<[Option<Slot<T>>]>,
}

impl<T: Clone> TopicIndex<T> {
    /// The index of `map`.
    pub(crate) fn new(map: &FxHashMap<Box<str>, T>) -> TopicIndex<T> {
        if map.is_empty() {
            return TopicIndex {
                slots: Box::new([]),
            };
        }
        let size = (2 * map.len()).next_power_of_two();
        let mut slots: Box<[Option<Slot<T>>]> = (0..size).map(|_| None).collect();
        for (topic, value) in map {
            let hash = hash(topic);
            let mut at = home(hash, size - 1);
            while slots[at].is_some() {
                at = (at + 1) & (size - 1);
            }
            slots[at] = Some(Slot {
                hash,
                topic: topic.clone(),
                value: value.clone(),
            });
        }
        TopicIndex { slots }
    }
}

impl<T> TopicIndex<T> {
    /// The value of `topic`, if it has one.
    #[cfg(test)]
    pub(crate) fn get(&self, topic: Topic<'_>) -> Option<&T> {
        self.find(topic.name, topic.hash)
    }

    /// The value of `topic`, whose hash ([`Topic::hash`], [`hash`]) is `hash`, if it has one. (With
    /// another hash, it finds nothing, or by chance the value.)
    #[inline]
    pub(crate) fn find(&self, topic: &str, hash: u64) -> Option<&T> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut at = home(hash, mask);
        // Ends: at most half the slots are taken.
        loop {
            let slot = self.slots[at].as_ref()?;
            if slot.hash == hash && *slot.topic == *topic {
                return Some(&slot.value);
            }
            at = (at + 1) & mask;
        }
    }

    /// Every topic with its hash.
    pub(crate) fn hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().flatten().map(|slot| slot.hash)
    }
}

/// The first slot to try for `hash` in a table of `mask + 1` slots: bits from the 24th up, below
/// the top byte that the topic filter uses.
#[inline]
fn home(hash: u64, mask: usize) -> usize {
    (hash >> 24) as usize & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ABI's rule, for `bytes` that need not be UTF-8.
    fn abi_valid(bytes: &[u8]) -> bool {
        std::str::from_utf8(bytes).is_ok_and(plugin_api::abi::is_valid_topic)
    }

    #[test]
    fn the_check_is_the_abi_rule() {
        // Every byte, alone and at every place of every length up to two blocks and a half.
        for b in 0..=u8::MAX {
            for len in 1..=40 {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    let topic = Topic::check(&bytes);
                    assert_eq!(topic.is_some(), abi_valid(&bytes), "{bytes:?}");
                    if let Some(topic) = topic {
                        assert_eq!(topic.as_str().as_bytes(), &bytes[..]);
                        assert_eq!(topic.hash(), hash(topic.as_str()));
                    }
                }
            }
        }
        // Every length up to the limit (every way of splitting into blocks), with a bad byte of
        // each kind at every place.
        for len in 1..=PH_MAX_TOPIC_LEN {
            let good: Vec<u8> = (0..len).map(|i| b"az09-_.AZ"[i % 9]).collect();
            assert!(Topic::check(&good).is_some(), "{len}");
            for at in 0..len {
                for b in [b' ', b'/', b'*', b'`', 0x7f, 0x80, 0xff] {
                    let mut bad = good.clone();
                    bad[at] = b;
                    assert!(Topic::check(&bad).is_none(), "{len} {at} {b}");
                }
            }
        }
        let longest = "t".repeat(PH_MAX_TOPIC_LEN);
        assert!(Topic::check(longest.as_bytes()).is_some());
        assert!(Topic::check(format!("{longest}t").as_bytes()).is_none());
        assert!(Topic::check(b"").is_none());
        assert!(Topic::check(b"wordfreq.totals").is_some());
        assert!(Topic::check(b"*").is_none());
        assert!(Topic::check("caf\u{e9}".as_bytes()).is_none());
    }

    #[test]
    fn the_table_check_is_the_sse2_check() {
        for b in 0..=u8::MAX {
            for at in 0..16 {
                let mut block = [b'a'; 16];
                block[at] = b;
                let (lo, hi) = words(&block);
                assert_eq!(
                    invalid_bytes(lo, hi) != 0,
                    invalid_bytes_by_table(lo, hi) != 0,
                    "{block:?}"
                );
                assert_eq!(invalid_bytes(lo, hi) == 0, abi_valid(&block), "{block:?}");
            }
        }
    }

    #[test]
    fn different_topics_hash_apart() {
        // Not a promise (a hash may collide), but these must not: they differ by their length,
        // their last byte or one byte in a part that two blocks overlap.
        let mut topics: Vec<String> = Vec::new();
        for len in 1..=48 {
            let base: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            topics.push(base.clone());
            for at in 0..len {
                let mut other = base.clone().into_bytes();
                other[at] = b'.';
                topics.push(String::from_utf8(other).unwrap());
            }
        }
        let mut hashes: Vec<u64> = topics.iter().map(|t| hash(t)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), topics.len());
    }

    #[test]
    fn the_index_finds_each_topic_and_nothing_else() {
        let map: FxHashMap<Box<str>, usize> = (0..1000)
            .map(|i| (format!("topic.{i}").into_boxed_str(), i))
            .collect();
        let index = TopicIndex::new(&map);
        assert_eq!(index.hashes().count(), 1000);
        for i in 0..1000 {
            let name = format!("topic.{i}");
            let topic = Topic::check(name.as_bytes()).unwrap();
            assert_eq!(index.get(topic), Some(&i));
            let other = format!("other.{i}");
            assert_eq!(index.get(Topic::check(other.as_bytes()).unwrap()), None);
        }
        let empty = TopicIndex::<usize>::new(&FxHashMap::default());
        assert_eq!(empty.get(Topic::check(b"topic.1").unwrap()), None);
    }
}
