//! The definition of a word, written as plainly as possible, for the tests of the counters: no
//! chunks, no fast paths, one `char` at a time.

use std::collections::BTreeMap;

/// The counts of every word of `inputs` (each a file: no word continues into the next), most
/// frequent first, ties in alphabetical order; and the number of words.
pub(crate) fn count(inputs: &[&[u8]]) -> (Vec<(String, u64)>, u64) {
    let mut counts = BTreeMap::<String, u64>::new();
    let mut words = 0;
    let mut word = String::new();
    let mut end_word = |word: &mut String| {
        if !word.is_empty() {
            words += 1;
            *counts.entry(std::mem::take(word)).or_default() += 1;
        }
    };
    for input in inputs {
        for piece in input.utf8_chunks() {
            for c in piece.valid().chars() {
                if c.is_alphanumeric() {
                    word.extend(c.to_lowercase());
                } else {
                    end_word(&mut word);
                }
            }
            if !piece.invalid().is_empty() {
                end_word(&mut word);
            }
        }
        end_word(&mut word);
    }
    let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (counts, words)
}

/// Arbitrary input for property tests: mostly pieces that meet the counters' special cases
/// (ASCII letters of both cases, digits, separators, letters of two to four bytes, characters
/// that lowercase to two, non-letters outside ASCII, invalid and cut sequences), and any byte.
pub(crate) fn input() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        4 => proptest::sample::select(vec![
            "a", "Z", "the", "The", "THE", "cat", "x9", "42", " ", "  ", ",", ".\n", "_", "-",
            "é", "É", "ß", "İ", "Σ", "ς", "東京", "٣", "😀", "\u{a0}", "€", "ǅ", "ﬀ", "Ⅻ",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => proptest::sample::select(vec![
            &b"\xff"[..], b"\xc3", b"\xe6\x9d", b"\xf0\x9f\x98", b"\x80", b"\xed\xa0\x80",
            b"\xc0\xaf",
        ])
        .prop_map(|b| b.to_vec()),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    proptest::collection::vec(piece, 0..80).prop_map(|pieces| pieces.concat())
}
