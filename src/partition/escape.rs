//! Hive's path escaping of partition names and values (`FileUtils.escapePathName`): control
//! characters, `"`, `#`, `%`, `'`, `*`, `/`, `:`, `=`, `?`, `\`, DEL, `{`, `[`, `]` and `^` become
//! `%XX` (upper-case hex of the character); everything else, spaces and non-ASCII included, stays.
//! A null or empty value is Hive's default partition.

/// The directory name Hive uses for null and empty partition values.
pub const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{01}'
            ..='\u{1F}'
                | '"'
                | '#'
                | '%'
                | '\''
                | '*'
                | '/'
                | ':'
                | '='
                | '?'
                | '\\'
                | '\u{7F}'
                | '{'
                | '['
                | ']'
                | '^'
    )
}

/// Escapes one path segment as Hive does; `None` and `""` give [`DEFAULT_PARTITION`].
pub fn escape_value(value: Option<&str>, out: &mut String) {
    match value {
        None | Some("") => out.push_str(DEFAULT_PARTITION),
        Some(v) => escape_into(v, out),
    }
}

/// Escapes `s` into `out`.
pub fn escape_into(s: &str, out: &mut String) {
    if !s.chars().any(needs_escape) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        if needs_escape(c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
}

/// Escapes `s` into a new string.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(s, &mut out);
    out
}

/// Reverses [`escape`] (for reading partition values back from paths).
pub fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_hive() {
        assert_eq!(escape("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(escape("100%"), "100%25");
        assert_eq!(escape("x:y?z#"), "x%3Ay%3Fz%23");
        assert_eq!(escape("tab\there"), "tab%09here");
        assert_eq!(escape("[a]{b}^'\"*\\"), "%5Ba%5D%7Bb}%5E%27%22%2A%5C");
        assert_eq!(escape("with space"), "with space");
        assert_eq!(escape("Grüße 東京"), "Grüße 東京");
        assert_eq!(escape("a-b_c.d"), "a-b_c.d");
    }

    #[test]
    fn null_and_empty_are_the_default_partition() {
        let mut s = String::new();
        escape_value(None, &mut s);
        assert_eq!(s, DEFAULT_PARTITION);
        s.clear();
        escape_value(Some(""), &mut s);
        assert_eq!(s, DEFAULT_PARTITION);
    }

    #[test]
    fn unescape_reverses_escape() {
        for v in ["a/b=c", "100%", "Grüße/東京", "%", "x%2"] {
            assert_eq!(unescape(&escape(v)), v);
        }
    }
}
