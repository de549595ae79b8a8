//! Scalars in the subset the direct decoder reads: JSON integers, floats and timestamp strings,
//! each read exactly as arrow-json reads it (anything this module does not read the same way it
//! gives up on, or hands to the parser arrow-json uses).

use arrow::array::timezone::Tz;
use arrow::compute::kernels::cast_utils::string_to_datetime;
use arrow::datatypes::TimeUnit;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};

use super::{GiveUp, Step};

/// An integer in JSON grammar (`-`, then digits without a leading zero) as `T`, if it fits.
pub(super) fn integer_value<T: TryFrom<i64>>(text: &str) -> Step<T> {
    let (negative, digits) = split_sign(text);
    let mut magnitude: i64 = 0;
    for &d in digits {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_sub(i64::from(d - b'0')))
            .ok_or(GiveUp)?;
    }
    // Accumulated as a negative number: i64::MIN has no positive counterpart.
    let value = if negative {
        magnitude
    } else {
        magnitude.checked_neg().ok_or(GiveUp)?
    };
    T::try_from(value).map_err(|_| GiveUp)
}

/// Whether a JSON number is negative, and its bytes after the sign.
fn split_sign(text: &str) -> (bool, &[u8]) {
    match text.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        all => (false, all),
    }
}

/// A JSON number as the nearest `f64`, as `str::parse` (and arrow-json) read it: a number of at
/// most 15 digits without an exponent is exact as an integer and divided by an exact power of
/// ten, one correctly rounded operation (Clinger's fast path); anything else goes to the parser.
pub(super) fn float64(text: &str) -> Step<f64> {
    const POWERS: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, unsigned) = split_sign(text);
    let (mut mantissa, mut digits, mut scale) = (0u64, 0usize, None::<usize>);
    for &b in unsigned {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
                scale = scale.map(|s| s + 1);
            }
            b'.' => scale = Some(0),
            _ => return text.parse().map_err(|_| GiveUp), // an exponent
        }
        if digits > 15 {
            return text.parse().map_err(|_| GiveUp);
        }
    }
    let magnitude = mantissa as f64 / POWERS[scale.unwrap_or(0)];
    Ok(if negative { -magnitude } else { magnitude })
}

/// A timestamp string (without escapes) as arrow-json reads it, in `unit`: RFC 3339 with a zone
/// of its own (what most producers write) read here, anything else by arrow-cast's parser.
pub(super) fn timestamp(text: &str, unit: TimeUnit, zone: &Tz) -> Step<i64> {
    match rfc3339(text.as_bytes()) {
        Some(date) => in_unit(date, unit),
        None => in_unit(string_to_datetime(zone, text).map_err(|_| GiveUp)?, unit),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]` followed by `Z` or `±HH:MM`, with a fraction of 1 to 9 digits
/// and a second below 60; `None` for anything else (left to arrow-cast, which reads these the
/// same way: the tests compare the two).
fn rfc3339(text: &[u8]) -> Option<DateTime<FixedOffset>> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1, b'T', h0, h1, b':', i0, i1, b':', s0, s1, rest @ ..] =
        text
    else {
        return None;
    };
    let (nanos, zone) = fraction(rest)?;
    let offset = match zone {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), oh0, oh1, b':', om0, om1] => {
            let seconds = digits(&[*oh0, *oh1])? * 3600 + digits(&[*om0, *om1])? * 60;
            if *sign == b'-' {
                -(seconds as i32)
            } else {
                seconds as i32
            }
        }
        _ => return None,
    };
    let date = NaiveDate::from_ymd_opt(
        digits(&[*y0, *y1, *y2, *y3])? as i32,
        digits(&[*m0, *m1])?,
        digits(&[*d0, *d1])?,
    )?;
    let second = digits(&[*s0, *s1])?;
    if second >= 60 {
        return None; // a leap second: arrow-cast's rules
    }
    let time = date.and_hms_nano_opt(digits(&[*h0, *h1])?, digits(&[*i0, *i1])?, second, nanos)?;
    FixedOffset::east_opt(offset)?
        .from_local_datetime(&time)
        .single()
}

/// The nanoseconds of an optional `.fraction` (1 to 9 digits) and what follows it.
fn fraction(text: &[u8]) -> Option<(u32, &[u8])> {
    let Some((b'.', rest)) = text.split_first() else {
        return Some((0, text));
    };
    let count = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=9).contains(&count) {
        return None;
    }
    let nanos = digits(&rest[..count])? * 10u32.pow(9 - count as u32);
    Some((nanos, &rest[count..]))
}

/// ASCII digits as a number (at most 9 of them); `None` if one is not a digit.
fn digits(text: &[u8]) -> Option<u32> {
    text.iter().try_fold(0u32, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
    })
}

/// `date` as a count of `unit` since the epoch.
fn in_unit<Z: TimeZone>(date: DateTime<Z>, unit: TimeUnit) -> Step<i64> {
    match unit {
        TimeUnit::Second => Ok(date.timestamp()),
        TimeUnit::Millisecond => Ok(date.timestamp_millis()),
        TimeUnit::Microsecond => Ok(date.timestamp_micros()),
        TimeUnit::Nanosecond => date.timestamp_nanos_opt().ok_or(GiveUp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What arrow-json would store for `text`, by arrow-cast's parser alone.
    fn by_arrow_cast(text: &str, unit: TimeUnit, zone: &Tz) -> Option<i64> {
        in_unit(string_to_datetime(zone, text).ok()?, unit).ok()
    }

    #[test]
    fn floats_read_here_equal_the_parsers_reading() {
        let mut next = super::super::tests::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1",
            "0.1",
            "0.3",
            "123.45",
            "-99.99",
            "999999999999999",
            "9999999999999999",
            "0.000000000000001",
            "1.000000000000000",
            "12345678901234567890",
            "1e5",
            "1.5E-3",
            "-2.5e+10",
            "4.35",
            "1.7976931348623157",
        ]
        .map(String::from)
        .to_vec();
        for _ in 0..20_000 {
            let digits = (next() % 18 + 1) as usize;
            let number = next() % 10u64.pow(digits as u32);
            let mut text = format!("{number:0digits$}");
            let point = (next() % (digits as u64 + 1)) as usize;
            if point < digits {
                text.insert(point.max(1), '.');
            }
            if next().is_multiple_of(2) {
                text.insert(0, '-');
            }
            texts.push(text);
        }
        for text in texts {
            let expected: f64 = text.parse().unwrap();
            let got = float64(&text).unwrap();
            assert_eq!(got.to_bits(), expected.to_bits(), "{text}");
        }
    }

    #[test]
    fn timestamps_read_here_equal_arrow_casts_reading() {
        let zone: Tz = "+03:00".parse().unwrap();
        let texts = [
            "2026-12-01T10:20:30Z",
            "2026-12-01T10:20:30.1Z",
            "2026-12-01T10:20:30.123Z",
            "2026-12-01T10:20:30.123456Z",
            "2026-12-01T10:20:30.123456789Z",
            "2026-12-01T10:20:30.5+05:30",
            "2026-12-01T00:00:00-08:00",
            "2026-12-01T23:59:59.999-00:00",
            "1969-12-31T23:59:59.999Z",
            "1900-02-28T12:00:00.000001Z",
            "2024-02-29T00:00:00Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999+14:00",
        ];
        for text in texts {
            let date = rfc3339(text.as_bytes()).unwrap_or_else(|| panic!("{text} read here"));
            for unit in [
                TimeUnit::Second,
                TimeUnit::Millisecond,
                TimeUnit::Microsecond,
                TimeUnit::Nanosecond,
            ] {
                assert_eq!(
                    in_unit(date, unit).ok(),
                    by_arrow_cast(text, unit, &zone),
                    "{text} in {unit:?}"
                );
            }
        }
    }

    #[test]
    fn timestamps_outside_the_common_form_are_left_to_arrow_cast() {
        let zone: Tz = "+03:00".parse().unwrap();
        for text in [
            "2026-12-01T10:20:30",             // no zone: the column's zone applies
            "2026-12-01 10:20:30Z",            // a space
            "2026-12-01T10:20:30.Z",           // an empty fraction
            "2026-12-01T10:20:30.1234567891Z", // ten digits
            "2026-12-01T10:20:60Z",            // a leap second
            "2026-02-30T10:20:30Z",            // no such day
            "2026-12-01T24:00:00Z",            // no such hour
            "2026-12-01T10:20:30+0530",        // an offset without a colon
            "2026-12-01T10:20:30+05",
            "2026-12-01T10:20:30z",
            "2026-12-01T10:20:30Zjunk",
            "2026-12-01",
            "+2026-12-01T10:20:30Z",
            "2026-1a-01T10:20:30Z",
        ] {
            assert!(rfc3339(text.as_bytes()).is_none(), "{text}");
            // And `timestamp` still gives what arrow-cast gives (or gives up where it fails).
            let unit = TimeUnit::Microsecond;
            assert_eq!(
                timestamp(text, unit, &zone).ok(),
                by_arrow_cast(text, unit, &zone),
                "{text}"
            );
        }
    }
}
