//! Escaping of untrusted text for the terminal: everything a plugin supplies (names, versions,
//! descriptions, usage, error messages) and file names.
//!
//! A terminal acts on control characters and escape sequences: a newline or a carriage return in a
//! plugin's version would forge a row of `plughost list`, `ESC [ 1 A` would move the cursor up over
//! another plugin's row, a bidi override would reorder what follows. [`escape`] shows every such
//! character as text instead, the way Rust's own escapes read:
//!
//! - `\n`, `\r`, `\t`, and `\\` for a backslash (so that the escaped text reads back unambiguously);
//! - `\xNN` for the other C0 controls and DEL (`\x1b` for ESC);
//! - `\u{NNNN}` for the C1 controls (U+0080 to U+009F) and for the invisible format characters
//!   that change how text around them is shown: bidi controls such as U+202E, zero-width
//!   characters, line and paragraph separators, tag characters.
//!
//! Everything else, including all printable non-ASCII text, is shown as it is.

use std::fmt::{self, Display, Write as _};
use std::path::Path;

/// `text`, shown with the characters a terminal would act on escaped (see the module docs).
/// Formatting it writes the escaped text; it allocates nothing.
pub(crate) fn escape(text: &str) -> Escaped<'_> {
    Escaped { text, max: None }
}

/// `text` escaped like [`escape`], but only its first `max` bytes (cut at a character
/// boundary), followed by `… (N bytes)` when it is longer: for strings that may be huge.
pub(crate) fn escape_at_most(text: &str, max: usize) -> Escaped<'_> {
    Escaped {
        text,
        max: Some(max),
    }
}

/// Text that is shown escaped: see [`escape`] and [`escape_at_most`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Escaped<'a> {
    text: &'a str,
    /// Show at most this many bytes of `text`.
    max: Option<usize>,
}

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = match self.max {
            Some(max) if self.text.len() > max => {
                let mut end = max;
                while !self.text.is_char_boundary(end) {
                    end -= 1;
                }
                &self.text[..end]
            }
            _ => self.text,
        };
        for c in shown.chars() {
            write_char(f, c)?;
        }
        if shown.len() < self.text.len() {
            write!(f, "… ({} bytes)", self.text.len())?;
        }
        Ok(())
    }
}

/// A path as the terminal should show it: as it is when it is valid UTF-8 made only of printable
/// characters other than spaces, quotes and backslashes (`/usr/lib/libx.so`); otherwise between
/// double quotes, with `"` shown as `\"`, the characters [`escape`] escapes escaped the same way,
/// and each byte that is not UTF-8 as `\xNN` (`"/tmp/my plugin\n.so"`).
pub(crate) fn quote_path(path: &Path) -> QuotedPath<'_> {
    QuotedPath(path)
}

/// A path that is shown quoted if needed: see [`quote_path`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuotedPath<'a>(&'a Path);

impl Display for QuotedPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0.as_os_str().as_encoded_bytes();
        if let Ok(text) = std::str::from_utf8(bytes) {
            if text.chars().all(is_plain_in_path) && !text.is_empty() {
                return f.write_str(text);
            }
        }
        f.write_char('"')?;
        for chunk in bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c == '"' {
                    f.write_str("\\\"")?;
                } else {
                    write_char(f, c)?;
                }
            }
            for byte in chunk.invalid() {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        f.write_char('"')
    }
}

/// Whether `c` may appear in a path shown without quotes.
fn is_plain_in_path(c: char) -> bool {
    !(needs_escape(c)
        || c.is_whitespace()
        || c == '"'
        || c == '\''
        || (c == '\\' && !cfg!(windows)))
}

/// Writes `c`, escaped if [`needs_escape`] says so, or if it is a backslash. The one place that
/// decides how an escaped character reads.
fn write_char(out: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\\' => out.write_str("\\\\"),
        '\n' => out.write_str("\\n"),
        '\r' => out.write_str("\\r"),
        '\t' => out.write_str("\\t"),
        c if c.is_ascii() && needs_escape(c) => write!(out, "\\x{:02x}", u32::from(c)),
        c if needs_escape(c) => write!(out, "\\u{{{:x}}}", u32::from(c)),
        c => out.write_char(c),
    }
}

/// Whether a terminal could act on `c` rather than show it: a control character (C0, DEL, C1),
/// or an invisible format character (Unicode general categories Cf, Zl and Zp) such as a bidi
/// override.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Soft hyphen; Arabic number signs and letter mark; Syriac abbreviation mark;
            // Mongolian vowel separator.
            '\u{ad}'
                | '\u{600}'..='\u{605}'
                | '\u{61c}'
                | '\u{6dd}'
                | '\u{70f}'
                | '\u{890}'..='\u{891}'
                | '\u{8e2}'
                | '\u{180e}'
                // Zero-width space, joiners, left-to-right and right-to-left marks.
                | '\u{200b}'..='\u{200f}'
                // Line and paragraph separators; bidi embeddings and overrides (U+202A-202E).
                | '\u{2028}'..='\u{202e}'
                // Word joiner, invisible operators, bidi isolates, deprecated format characters.
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                // Byte order mark / zero-width no-break space; interlinear annotation.
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{110cd}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                // Tag characters.
                | '\u{e0001}'
                | '\u{e0020}'..='\u{e007f}'
        )
}

/// JSON text written by serde_json, made safe for a terminal: every character that
/// [`needs_escape`] flags and that the serializer wrote as it is (DEL, C1 controls, format
/// characters; serde_json already escapes the C0 controls in strings) becomes a `\uXXXX` escape
/// (two, a surrogate pair, above U+FFFF). The line feeds of pretty-printing stay. The JSON value is
/// unchanged: such characters can only occur inside JSON strings, where the escape means the same.
pub(crate) fn json_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if needs_escape(c) && c != '\n' {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_unchanged() {
        for text in [
            "wordfreq",
            "1.2.0-beta+3",
            "Zählt Wörter, 数える",
            "a \"b\" 'c' ✓",
        ] {
            assert_eq!(escape(text).to_string(), text);
        }
    }

    #[test]
    fn controls_and_format_characters_are_escaped() {
        assert_eq!(
            escape("a\nb\r\tc\x1b[2J\x00\x7f\\").to_string(),
            r"a\nb\r\tc\x1b[2J\x00\x7f\\"
        );
        assert_eq!(
            escape("\u{85}\u{9b}\u{202e}x\u{200b}\u{2028}\u{feff}\u{e0041}").to_string(),
            r"\u{85}\u{9b}\u{202e}x\u{200b}\u{2028}\u{feff}\u{e0041}"
        );
    }

    #[test]
    fn escaped_text_has_nothing_a_terminal_acts_on() {
        let all: String = (0..0x3000u32)
            .chain(0xe0000..0xe0080)
            .filter_map(char::from_u32)
            .collect();
        let escaped = escape(&all).to_string();
        assert!(!escaped.chars().any(needs_escape), "{escaped}");
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        assert_eq!(escape_at_most("abc", 3).to_string(), "abc");
        assert_eq!(escape_at_most("abcd", 3).to_string(), "abc… (4 bytes)");
        // `é` is two bytes: the cut moves back before it.
        assert_eq!(escape_at_most("aé\n", 2).to_string(), "a… (4 bytes)");
        assert_eq!(escape_at_most("\n\n", 1).to_string(), r"\n… (2 bytes)");
    }

    #[cfg(unix)]
    #[test]
    fn paths_are_quoted_when_needed() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;

        let shown = |bytes: &[u8]| quote_path(Path::new(OsStr::from_bytes(bytes))).to_string();
        assert_eq!(shown(b"/usr/lib/libx.so"), "/usr/lib/libx.so");
        assert_eq!(shown(b"/tmp/\xc3\xa9.so"), "/tmp/é.so");
        assert_eq!(shown(b"/tmp/my plugin.so"), r#""/tmp/my plugin.so""#);
        assert_eq!(shown(b"/tmp/a\"b'\\.so"), r#""/tmp/a\"b'\\.so""#);
        assert_eq!(shown(b"/tmp/x\n\x1b[2J.so"), r#""/tmp/x\n\x1b[2J.so""#);
        assert_eq!(shown(b"/tmp/\xff\xfe.so"), r#""/tmp/\xff\xfe.so""#);
        assert_eq!(shown(b""), r#""""#);
    }

    #[test]
    fn json_stays_the_same_value() {
        let value = serde_json::json!({ "m": "a\x1b\x7f\u{9b}\u{202e}\u{e0041}\n\"é" });
        let text = json_for_terminal(&serde_json::to_string_pretty(&value).unwrap());
        assert!(
            !text.chars().any(|c| needs_escape(c) && c != '\n'),
            "{text}"
        );
        assert!(text.contains(r"\u007f\u009b\u202e\udb40\udc41"), "{text}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).unwrap(),
            value
        );
    }
}
