//! [`Cursor`]: a position in one JSON record, and the grammar: strings, escapes, numbers, values
//! skipped whole. Every method gives up ([`GiveUp`]) where the input leaves the subset the direct
//! decoder handles exactly.

use super::{GiveUp, Step};

/// Nesting deeper than this (in values the schema does not name) is left to arrow-json.
const MAX_DEPTH: usize = 64;

/// A position in one record, checked to be UTF-8 once ([`Cursor::new`]): the texts it hands out
/// are slices of it, never checked again.
pub(super) struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Cursor {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    /// Whether the whole record has been read.
    pub(super) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    pub(super) fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    pub(super) fn expect(&mut self, byte: u8) -> Step {
        if self.peek() != Some(byte) {
            return Err(GiveUp);
        }
        self.pos += 1;
        Ok(())
    }

    pub(super) fn literal(&mut self, word: &[u8]) -> Step {
        if !self.bytes[self.pos..].starts_with(word) {
            return Err(GiveUp);
        }
        self.pos += word.len();
        Ok(())
    }

    /// Consumes `bytes` if they come next.
    pub(super) fn skip_if_next(&mut self, bytes: &[u8]) -> bool {
        let next = self.bytes.get(self.pos..self.pos + bytes.len());
        if !next.is_some_and(|next| same_bytes(next, bytes)) {
            return false;
        }
        self.pos += bytes.len();
        true
    }

    /// Consumes `null` if it comes next.
    pub(super) fn null(&mut self) -> Step<bool> {
        if self.peek() != Some(b'n') {
            return Ok(false);
        }
        self.literal(b"null")?;
        Ok(true)
    }

    /// A string without escapes (the opening quote next), borrowed from the record.
    pub(super) fn plain_string(&mut self) -> Step<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let end = start + quote_or_backslash(&self.bytes[start..]).ok_or(GiveUp)?;
        if self.bytes[end] != b'"' {
            return Err(GiveUp);
        }
        self.pos = end + 1;
        // Both ends are next to an ASCII quote: character boundaries.
        Ok(&self.text[start..end])
    }

    /// A string (the opening quote next) unescaped onto `out`.
    pub(super) fn string_into(&mut self, out: &mut Vec<u8>) -> Step {
        self.string(Some(out))
    }

    /// Checks and skips a string (the opening quote next): `out` takes its unescaped bytes.
    fn string(&mut self, mut out: Option<&mut Vec<u8>>) -> Step {
        self.expect(b'"')?;
        loop {
            let rest = &self.bytes[self.pos..];
            let end = quote_or_backslash(rest).ok_or(GiveUp)?;
            if let Some(out) = out.as_deref_mut() {
                out.extend_from_slice(&rest[..end]);
            }
            self.pos += end + 1;
            if rest[end] == b'"' {
                return Ok(());
            }
            self.escape(out.as_deref_mut())?;
        }
    }

    /// The escape after a backslash, unescaped onto `out`.
    fn escape(&mut self, out: Option<&mut Vec<u8>>) -> Step {
        let byte = self.peek().ok_or(GiveUp)?;
        self.pos += 1;
        let plain = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let c = self.unicode_escape()?;
                if let Some(out) = out {
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                return Ok(());
            }
            _ => return Err(GiveUp),
        };
        if let Some(out) = out {
            out.push(plain);
        }
        Ok(())
    }

    /// The character of `\uXXXX` (the `u` consumed), a surrogate pair taken whole.
    fn unicode_escape(&mut self) -> Step<char> {
        let high = self.hex4()?;
        let code = match high {
            0xD800..=0xDBFF => {
                self.literal(b"\\u")?;
                let low = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(GiveUp);
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(GiveUp),
            _ => high,
        };
        char::from_u32(code).ok_or(GiveUp)
    }

    fn hex4(&mut self) -> Step<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4).ok_or(GiveUp)?;
        let mut code = 0;
        for &d in digits {
            code = code * 16 + (d as char).to_digit(16).ok_or(GiveUp)?;
        }
        self.pos += 4;
        Ok(code)
    }

    /// A number in strict JSON grammar: its text and whether it is an integer.
    pub(super) fn number(&mut self) -> Step<(&'a str, bool)> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(GiveUp),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.some_digits()?;
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.some_digits()?;
            integer = false;
        }
        Ok((&self.text[start..self.pos], integer))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Step {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            return Err(GiveUp);
        }
        Ok(())
    }

    /// Checks and skips any JSON value (a field the schema does not name).
    pub(super) fn skip_value(&mut self, depth: usize) -> Step {
        if depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        match self.peek().ok_or(GiveUp)? {
            b'"' => self.string(None),
            b'{' => self.skip_container(b'}', depth, true),
            b'[' => self.skip_container(b']', depth, false),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }

    fn skip_container(&mut self, close: u8, depth: usize, keyed: bool) -> Step {
        self.pos += 1;
        self.skip_whitespace();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if keyed {
                self.string(None)?;
                self.skip_whitespace();
                self.expect(b':')?;
                self.skip_whitespace();
            }
            self.skip_value(depth + 1)?;
            if self.separator(close)? {
                return Ok(());
            }
        }
    }

    /// After a member: `,` (false: more follow) or `close` (true), whitespace skipped.
    pub(super) fn separator(&mut self, close: u8) -> Step<bool> {
        self.skip_whitespace();
        let byte = self.peek().ok_or(GiveUp)?;
        self.pos += 1;
        if byte == close {
            return Ok(true);
        }
        if byte != b',' {
            return Err(GiveUp);
        }
        self.skip_whitespace();
        Ok(false)
    }
}

/// Where the first `"` or `\` of `bytes` is. Most values are short: a word at a time finds
/// their end sooner than setting up a vector search, used past the first 32 bytes.
#[inline]
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    // The first 32 bytes eight at a time in a register (most strings end there), the rest
    // with memchr's vector search.
    const SHORT: usize = 32;
    let mut start = 0;
    while start < SHORT {
        let Some(word) = bytes.get(start..start + 8) else {
            break;
        };
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        let found = zero_bytes(word ^ repeated(b'"')) | zero_bytes(word ^ repeated(b'\\'));
        if found != 0 {
            return Some(start + found.trailing_zeros() as usize / 8);
        }
        start += 8;
    }
    memchr::memchr2(b'"', b'\\', &bytes[start..]).map(|i| i + start)
}

/// `a == b`, a word at a time without a call to `memcmp` (member names are short: the call and a
/// byte-by-byte loop cost more than the comparison). Words may overlap: a 10-byte name is
/// compared as bytes 0..8 and 2..10.
#[inline]
pub(super) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 4 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    if n < 8 {
        return word::<4>(a, 0) == word::<4>(b, 0) && word::<4>(a, n - 4) == word::<4>(b, n - 4);
    }
    let mut at = 0;
    while at + 8 < n {
        if word::<8>(a, at) != word::<8>(b, at) {
            return false;
        }
        at += 8;
    }
    word::<8>(a, n - 8) == word::<8>(b, n - 8)
}

/// The `N` bytes of `bytes` from `at` (which has them), as a number to compare.
#[inline(always)]
fn word<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    bytes[at..at + N].try_into().expect("N bytes")
}

/// `byte` in each of a word's eight bytes.
const fn repeated(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// A word whose lowest set bit is the high bit of the first (lowest addressed) zero byte of
/// `word`; 0 if it has none. Bits above that one may be set wrongly (a borrow), never below.
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(repeated(1)) & !word & repeated(0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_or_backslash_finds_the_first_of_either_anywhere() {
        // Bytes around the searched ones that could fool a word-at-a-time search: zero,
        // one, 0x80 and 0xff bytes, and the neighbours of `"` (0x22) and `\` (0x5c).
        let alphabet = [
            0u8, 1, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff, b'a',
        ];
        let mut next = super::super::tests::xorshift(0x9e37_79b9_7f4a_7c15);
        for len in 0..80 {
            for _ in 0..200 {
                let mut bytes: Vec<u8> = (0..len)
                    .map(|_| alphabet[next() as usize % alphabet.len()])
                    .collect();
                for _ in 0..next() % 3 {
                    if len > 0 {
                        let at = next() as usize % len;
                        bytes[at] = if next().is_multiple_of(2) {
                            b'"'
                        } else {
                            b'\\'
                        };
                    }
                }
                let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\');
                assert_eq!(quote_or_backslash(&bytes), expected, "{bytes:?}");
            }
        }
    }

    #[test]
    fn same_bytes_agrees_with_slice_equality_at_every_length_and_difference() {
        for len in 0..40usize {
            let a: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert!(same_bytes(&a, &a.clone()), "{len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same_bytes(&a, &b), "length {len}, byte {at} differs");
            }
            let longer = [a.as_slice(), b"x"].concat();
            assert!(!same_bytes(&a, &longer), "{len}");
            assert!(!same_bytes(&longer, &a), "{len}");
        }
    }

    #[test]
    fn skip_if_next_consumes_only_a_match() {
        let mut cursor = Cursor::new(r#""id": 1"#);
        assert!(!cursor.skip_if_next(br#""idx""#));
        assert!(!cursor.skip_if_next(br#""id": 1, "#));
        assert_eq!(cursor.pos, 0);
        assert!(cursor.skip_if_next(br#""id""#));
        assert_eq!(cursor.pos, 4);
    }
}
