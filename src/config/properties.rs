//! A parser for the subset of Java `.properties` files that Kafka Connect configurations use.
//!
//! Supported: `key=value`, `key: value` and `key value` separators; `#` and `!` comment lines;
//! blank lines; whitespace trimmed around keys and values; a line ending in an odd number of
//! backslashes continues on the next line (whose leading whitespace is dropped); the escapes `\n`,
//! `\t`, `\r`, `\f`, `\\`, `\=`, `\:`, `\#`, `\!`, `\ ` and `\uXXXX` (any other escaped character
//! stands for itself, as in Java). A line without a key (`=value`) is a syntax error naming the
//! file and the 1-based line where the entry starts.

use super::ConfigError;

/// Parses `text` into key/value pairs in file order (duplicates kept; the caller decides that the
/// later one wins). `path` is only used in error messages.
pub fn parse(text: &str, path: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let start_line = index + 1;
        let first = line.trim_start();
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = first.to_string();
        while ends_with_continuation(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start()),
                None => break,
            }
        }
        let (key, value) = split_entry(&logical).map_err(|msg| ConfigError::Syntax {
            path: path.to_string(),
            line: start_line,
            text: format!("{logical} ({msg})"),
        })?;
        if key.is_empty() {
            return Err(ConfigError::Syntax {
                path: path.to_string(),
                line: start_line,
                text: logical,
            });
        }
        out.push((key, value));
    }
    Ok(out)
}

/// True when the line ends in an odd number of backslashes (the last one escapes the newline).
fn ends_with_continuation(line: &str) -> bool {
    line.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

/// Splits one logical line into its unescaped, trimmed key and value.
fn split_entry(line: &str) -> Result<(String, String), String> {
    let chars: Vec<char> = line.chars().collect();
    // The key ends at the first unescaped '=', ':' or whitespace.
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' => break,
            c if c.is_whitespace() => break,
            _ => i += 1,
        }
    }
    let key_end = i.min(chars.len());
    // Skip whitespace, at most one separator, then whitespace again.
    let mut j = key_end;
    while j < chars.len() && chars[j].is_whitespace() {
        j += 1;
    }
    if j < chars.len() && (chars[j] == '=' || chars[j] == ':') {
        j += 1;
    }
    while j < chars.len() && chars[j].is_whitespace() {
        j += 1;
    }
    let key = unescape_trimmed(&chars[..key_end])?;
    let value = unescape_trimmed(&chars[j..])?;
    Ok((key, value))
}

/// Resolves escapes and trims unescaped whitespace at both ends.
fn unescape_trimmed(chars: &[char]) -> Result<String, String> {
    // (character, was escaped)
    let mut out: Vec<(char, bool)> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' {
            out.push((c, false));
            i += 1;
            continue;
        }
        let Some(&next) = chars.get(i + 1) else {
            // A lone trailing backslash (continuation at end of file): dropped.
            break;
        };
        i += 2;
        let resolved = match next {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'f' => '\u{c}',
            'u' => {
                let hex: String = chars.iter().skip(i).take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("malformed \\u escape \\u{hex}"))?;
                i += 4;
                code
            }
            other => other,
        };
        out.push((resolved, true));
    }
    let start = out
        .iter()
        .position(|(c, escaped)| *escaped || !c.is_whitespace())
        .unwrap_or(out.len());
    let end = out
        .iter()
        .rposition(|(c, escaped)| *escaped || !c.is_whitespace())
        .map_or(start, |p| p + 1);
    Ok(out[start..end.max(start)].iter().map(|(c, _)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<(String, String)> {
        parse(text, "t.properties").expect("parses")
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn separators() {
        assert_eq!(
            p("a=1\nb: 2\nc 3\nd   =   4  \n  e:5\nf\tsix"),
            vec![
                pair("a", "1"),
                pair("b", "2"),
                pair("c", "3"),
                pair("d", "4"),
                pair("e", "5"),
                pair("f", "six")
            ]
        );
    }

    #[test]
    fn comments_and_blank_lines() {
        assert_eq!(
            p("# comment\n! bang comment\n\n   \n  # indented\nk=v # not a comment\n"),
            vec![pair("k", "v # not a comment")]
        );
    }

    #[test]
    fn value_may_contain_separators() {
        assert_eq!(
            p("url=s3://bucket/a=b:c\nk==v"),
            vec![pair("url", "s3://bucket/a=b:c"), pair("k", "=v")]
        );
    }

    #[test]
    fn empty_value_and_key_only() {
        assert_eq!(
            p("a=\nb\nc:"),
            vec![pair("a", ""), pair("b", ""), pair("c", "")]
        );
    }

    #[test]
    fn continuation_lines() {
        assert_eq!(
            p("topics=a,\\\n    b,\\\n    c\nnext=1"),
            vec![pair("topics", "a,b,c"), pair("next", "1")]
        );
        // An even number of backslashes is an escaped backslash, not a continuation.
        assert_eq!(p("k=a\\\\\nx=1"), vec![pair("k", "a\\"), pair("x", "1")]);
        // Continuation at end of file.
        assert_eq!(p("k=a\\"), vec![pair("k", "a")]);
    }

    #[test]
    fn escapes() {
        assert_eq!(p(r"k=a\nb\tc\\d\=e\:f"), vec![pair("k", "a\nb\tc\\d=e:f")]);
        assert_eq!(p(r"my\=key\:x=v"), vec![pair("my=key:x", "v")]);
        assert_eq!(p(r"key\ with\ space=v"), vec![pair("key with space", "v")]);
        assert_eq!(p(r"k=\u00e9t\u00E9"), vec![pair("k", "été")]);
        assert_eq!(p(r"k=\ padded\ "), vec![pair("k", " padded ")]);
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(p("a=1\r\nb=2\r\n"), vec![pair("a", "1"), pair("b", "2")]);
    }

    #[test]
    fn duplicates_are_kept_in_order() {
        assert_eq!(p("a=1\na=2"), vec![pair("a", "1"), pair("a", "2")]);
    }

    #[test]
    fn a_line_without_key_is_an_error_with_line_number() {
        let err = parse("name=x\n=oops\n", "job.properties").unwrap_err();
        match &err {
            ConfigError::Syntax { path, line, text } => {
                assert_eq!(path, "job.properties");
                assert_eq!(*line, 2);
                assert_eq!(text, "=oops");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().starts_with("job.properties:2:"), "{err}");
        let err = parse("# c\n\n  : v", "f").unwrap_err();
        assert!(
            matches!(err, ConfigError::Syntax { line: 3, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_malformed_unicode_escape_is_an_error() {
        let err = parse("a=1\nk=\\u12", "f").unwrap_err();
        assert!(
            matches!(err, ConfigError::Syntax { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn continued_entry_reports_its_first_line() {
        let err = parse("a=1\n=x\\\n  y", "f").unwrap_err();
        assert!(
            matches!(err, ConfigError::Syntax { line: 2, .. }),
            "{err:?}"
        );
    }
}
