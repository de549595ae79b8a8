//! `path.format`: the Joda-Time pattern syntax of kafka-connect-hdfs's TimeBasedPartitioner
//! (`'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH`), translated to chrono format strings, one per
//! directory level.
//!
//! A level written `'name'=<pattern>` becomes a Hive-style partition column `name`; any other
//! level (`YYYY-MM`) is a plain directory without a column name. Supported fields: `y`/`Y`/`u`
//! (year; `yy` two digits), `x` (week-year), `M` (month; `MMM` short name, `MMMM` full name),
//! `d`, `D`/`DDD` (day of year), `H`, `h`, `m`, `s`, `SSS`/`SSSSSS` (fraction), `E` (day name),
//! `e` (ISO day number), `a` (AM/PM), `w` (ISO week). Names of months and days are English, so
//! they need an English `locale`; numeric fields work in every locale.

/// One directory level of a `path.format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLevel {
    /// `Some("year")` for `'year'=YYYY`; `None` for a level without `name=`.
    pub name: Option<String>,
    /// chrono format of the level's value (or of the whole level when unnamed).
    pub chrono: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Field(char, usize),
}

fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // '' is a quote; 'text' is literal text.
            if chars.get(i + 1) == Some(&'\'') {
                lit.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => return Err(format!("unterminated quote at position {i}")),
                    Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                        lit.push('\'');
                        j += 2;
                    }
                    Some('\'') => break,
                    Some(&ch) => {
                        lit.push(ch);
                        j += 1;
                    }
                }
            }
            i = j + 1;
        } else if c.is_ascii_alphabetic() {
            if !lit.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut lit)));
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            tokens.push(Token::Field(c, n));
            i += n;
        } else {
            lit.push(c);
            i += 1;
        }
    }
    if !lit.is_empty() {
        tokens.push(Token::Literal(lit));
    }
    Ok(tokens)
}

fn is_english(locale: &str) -> bool {
    let l = locale.trim().to_ascii_lowercase();
    l.is_empty() || l == "en" || l.starts_with("en_") || l.starts_with("en-")
}

fn field_to_chrono(c: char, n: usize, locale: &str) -> Result<&'static str, String> {
    let text = |f: &'static str| {
        if is_english(locale) {
            Ok(f)
        } else {
            Err(format!(
                "'{}' writes English names, but locale is '{locale}'; only English names are supported (use numeric fields, or locale=en)",
                c.to_string().repeat(n)
            ))
        }
    };
    let r = match (c, n) {
        ('y' | 'Y' | 'u', 2) => "%y",
        ('y' | 'Y' | 'u', _) => "%Y",
        ('x', 2) => "%g",
        ('x', _) => "%G",
        ('M', 1) => "%-m",
        ('M', 2) => "%m",
        ('M', 3) => return text("%b"),
        ('M', _) => return text("%B"),
        ('d', 1) => "%-d",
        ('d', 2) => "%d",
        ('D', 1) => "%-j",
        ('D', 3) => "%j",
        ('H', 1) => "%-H",
        ('H', 2) => "%H",
        ('h', 1) => "%-I",
        ('h', 2) => "%I",
        ('m', 1) => "%-M",
        ('m', 2) => "%M",
        ('s', 1) => "%-S",
        ('s', 2) => "%S",
        ('S', 3) => "%3f",
        ('S', 6) => "%6f",
        ('E', 1..=3) => return text("%a"),
        ('E', _) => return text("%A"),
        ('e', 1) => "%u",
        ('a', 1) => return text("%p"),
        ('w', 1) => "%-V",
        ('w', 2) => "%V",
        _ => {
            return Err(format!(
                "unsupported pattern letter(s) '{}' (supported: y Y u x M d D H h m s S E e a w; quote literal text as 'text')",
                c.to_string().repeat(n)
            ))
        }
    };
    Ok(r)
}

fn push_literal(out: &mut String, s: &str) {
    out.push_str(&s.replace('%', "%%"));
}

/// Translates a `path.format` into its directory levels.
pub fn parse_path_format(pattern: &str, locale: &str) -> Result<Vec<TimeLevel>, String> {
    let tokens = tokenize(pattern)?;
    // Split into levels on '/' in literal text.
    let mut levels: Vec<Vec<Token>> = vec![Vec::new()];
    for t in tokens {
        match t {
            Token::Literal(s) => {
                let mut parts = s.split('/');
                if let Some(first) = parts.next() {
                    if !first.is_empty() {
                        levels
                            .last_mut()
                            .unwrap_or(&mut Vec::new())
                            .push(Token::Literal(first.into()));
                    }
                }
                for part in parts {
                    levels.push(Vec::new());
                    if !part.is_empty() {
                        if let Some(l) = levels.last_mut() {
                            l.push(Token::Literal(part.into()));
                        }
                    }
                }
            }
            f => {
                if let Some(l) = levels.last_mut() {
                    l.push(f);
                }
            }
        }
    }
    let levels: Vec<_> = levels.into_iter().filter(|l| !l.is_empty()).collect();
    if levels.is_empty() {
        return Err("path.format is empty".into());
    }
    levels
        .into_iter()
        .map(|tokens| {
            let mut name = None;
            let mut chrono = String::new();
            for (i, t) in tokens.iter().enumerate() {
                match t {
                    Token::Literal(s) if i == 0 && s.contains('=') => {
                        let (n, rest) = s.split_once('=').unwrap_or((s, ""));
                        if n.is_empty() {
                            push_literal(&mut chrono, s);
                        } else {
                            name = Some(n.to_string());
                            push_literal(&mut chrono, rest);
                        }
                    }
                    Token::Literal(s) => push_literal(&mut chrono, s),
                    Token::Field(c, n) => chrono.push_str(field_to_chrono(*c, *n, locale)?),
                }
            }
            Ok(TimeLevel { name, chrono })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(name: Option<&str>, chrono: &str) -> TimeLevel {
        TimeLevel {
            name: name.map(String::from),
            chrono: chrono.into(),
        }
    }

    #[test]
    fn hive_style_levels() {
        assert_eq!(
            parse_path_format("'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH", "en").unwrap(),
            vec![
                lv(Some("year"), "%Y"),
                lv(Some("month"), "%m"),
                lv(Some("day"), "%d"),
                lv(Some("hour"), "%H")
            ]
        );
        assert_eq!(
            parse_path_format("'dt'=YYYY-MM-dd/'hr'=HH", "en").unwrap(),
            vec![lv(Some("dt"), "%Y-%m-%d"), lv(Some("hr"), "%H")]
        );
    }

    #[test]
    fn plain_levels_and_literals() {
        assert_eq!(
            parse_path_format("YYYY/MM/dd/HH", "de_DE").unwrap(),
            vec![
                lv(None, "%Y"),
                lv(None, "%m"),
                lv(None, "%d"),
                lv(None, "%H")
            ]
        );
        assert_eq!(
            parse_path_format("'data'/yyyy-MM-dd'T'HH'%'", "en").unwrap(),
            vec![lv(None, "data"), lv(None, "%Y-%m-%dT%H%%")]
        );
        assert_eq!(
            parse_path_format("'it''s'=mm", "en").unwrap(),
            vec![lv(Some("it's"), "%M")]
        );
    }

    #[test]
    fn names_need_an_english_locale() {
        assert_eq!(
            parse_path_format("'m'=MMM", "en_US").unwrap(),
            vec![lv(Some("m"), "%b")]
        );
        let e = parse_path_format("'m'=MMM", "fr_FR").unwrap_err();
        assert!(e.contains("fr_FR"), "{e}");
    }

    #[test]
    fn bad_patterns_say_why() {
        assert!(parse_path_format("'year=YYYY", "en")
            .unwrap_err()
            .contains("unterminated"));
        assert!(parse_path_format("kk", "en").unwrap_err().contains("'kk'"));
        assert!(parse_path_format("", "en").is_err());
    }
}
