//! The words of a `plughost shell` line: split at unquoted whitespace, with the quoting of a POSIX
//! shell and nothing else (no variables, globs or pipes): `'...'` keeps everything as it is,
//! `"..."` keeps everything but `\"` and `\\`, and a backslash outside quotes keeps the next
//! character. `wordfreq "my notes.txt"` is two words.

/// The words of `line`, or why it cannot be split (an unterminated quote, a trailing backslash).
pub(crate) fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word has begun: `''` is a word, empty.
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated \" quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated \" quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a backslash ends the line".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn words_and_quotes() {
        let ok = |line: &str| split(line).unwrap();
        assert_eq!(ok(""), Vec::<String>::new());
        assert_eq!(ok("  \t "), Vec::<String>::new());
        assert_eq!(
            ok("wordfreq --top 5 a.txt"),
            ["wordfreq", "--top", "5", "a.txt"]
        );
        assert_eq!(ok("  list  "), ["list"]);
        assert_eq!(
            ok(r#"wordfreq "my notes.txt""#),
            ["wordfreq", "my notes.txt"]
        );
        assert_eq!(ok("wordfreq 'it''s'"), ["wordfreq", "its"]);
        assert_eq!(ok(r"wordfreq my\ notes.txt"), ["wordfreq", "my notes.txt"]);
        assert_eq!(ok(r#"x "a\"b\\c\d" 'a\b'"#), ["x", r#"a"b\c\d"#, r"a\b"]);
        assert_eq!(ok("x '' \"\""), ["x", "", ""]);
        assert_eq!(ok("a'b'\"c\"d"), ["abcd"]);
        assert_eq!(ok("Zählt 数える"), ["Zählt", "数える"]);
    }

    #[test]
    fn unterminated() {
        assert!(split("x 'a").unwrap_err().contains("unterminated '"));
        assert!(split("x \"a").unwrap_err().contains("unterminated \""));
        assert!(split("x \"a\\").unwrap_err().contains("unterminated \""));
        assert!(split("x a\\").unwrap_err().contains("backslash"));
    }
}
