//! Sample data for benchmarks and tests: realistic ~1 KB JSON clickstream events, deterministic
//! from their index (no randomness), with the matching `value.schema` DDL and Arrow schema.

use std::fmt::Write;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

const EVENT_TYPES: [&str; 7] = [
    "page_view",
    "click",
    "scroll",
    "add_to_cart",
    "purchase",
    "search",
    "video_play",
];
const SECTIONS: [&str; 6] = [
    "electronics",
    "home-garden",
    "fashion",
    "sports",
    "books",
    "toys",
];
const PRODUCTS: [&str; 8] = [
    "wireless-noise-cancelling-headphones",
    "stainless-steel-water-bottle",
    "ergonomic-office-chair",
    "trail-running-shoes",
    "cast-iron-skillet",
    "mechanical-keyboard-brown-switches",
    "organic-cotton-bedsheet-set",
    "smart-home-security-camera",
];
const REFERRERS: [&str; 5] = [
    "https://www.google.com/search?q=best+deals+online",
    "https://www.bing.com/search?q=product+reviews",
    "https://news.ycombinator.com/item?id=38123456",
    "https://t.co/a1B2c3D4e5",
    "https://www.facebook.com/ads/landing/campaign",
];
const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36 Edg/124.0.2478.67",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.122 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
];
/// (os, browser, mobile) per user agent above.
const DEVICES: [(&str, &str, bool); 4] = [
    ("Windows", "Edge", false),
    ("iOS", "Safari", true),
    ("macOS", "Chrome", false),
    ("Android", "Chrome", true),
];
const COUNTRIES: [&str; 10] = ["US", "DE", "FR", "GB", "JP", "BR", "IN", "CA", "AU", "NL"];
const TAGS: [&str; 8] = [
    "returning",
    "newsletter",
    "promo-spring",
    "mobile-web",
    "vip",
    "first-visit",
    "ab-b",
    "eu",
];
const TITLES: [&str; 4] = [
    "Great deals on top rated products - Example Shop",
    "Your cart and saved items - Example Shop",
    "Search results for popular items this week - Example Shop",
    "Product details, reviews and shipping information - Example Shop",
];
const EXPERIMENTS: [&str; 3] = ["checkout-v2", "search-ranking-b", "control"];
const QUERIES: [&str; 5] = [
    "wireless headphones under 200",
    "water bottle insulated 1l",
    "office chair lumbar support",
    "running shoes men size 44",
    "gift ideas for kids",
];
const CATEGORIES: [&str; 4] = [
    "Home > Electronics > Audio > Headphones",
    "Home > Kitchen > Cookware > Pans",
    "Home > Sports > Running > Shoes",
    "Home > Furniture > Office > Chairs",
];
const CURRENCIES: [&str; 4] = ["USD", "EUR", "GBP", "JPY"];

/// 2024-06-01T00:00:00Z in epoch milliseconds.
const BASE_TS_MS: i64 = 1_717_200_000_000;

/// A deterministic 64-bit mix of `x` (splitmix64).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn pick<T: Copy>(items: &[T], h: u64) -> T {
    items[(h % items.len() as u64) as usize]
}

/// The civil date (year, month, day) of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// ISO-8601 UTC text with milliseconds of an epoch-milliseconds timestamp.
fn iso_millis(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// The event time of event `i`, epoch milliseconds (increasing with `i`).
pub fn clickstream_ts_ms(i: u64) -> i64 {
    BASE_TS_MS + (i as i64) * 173 + (mix(i ^ 0x5A5A) % 150) as i64
}

/// Clickstream event `i` as one JSON object of about 1 KB.
pub fn clickstream_event(i: u64) -> String {
    let h = mix(i);
    let h2 = mix(h);
    let user_id = 100_000 + (h % 5_000_000) as i64;
    let device = (h2 % 4) as usize;
    let (os, browser, mobile) = DEVICES[device];
    let mut s = String::with_capacity(1280);
    // Writing into a String cannot fail.
    let _ = write!(
        s,
        r#"{{"event_id":"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}","user_id":{user_id},"#,
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        0x8000 | (h2 >> 48) & 0x3fff,
        h2 & 0xffff_ffff_ffff,
    );
    let _ = write!(
        s,
        r#""session_id":"sess_{:016x}","event_type":"{}","#,
        mix(user_id as u64 ^ (i / 64)),
        pick(&EVENT_TYPES, h >> 7),
    );
    let _ = write!(
        s,
        r#""url":"https://shop.example.com/{}/{}-{}?utm_source=newsletter&utm_medium=email&utm_campaign=summer_sale_{}&utm_content=hero_banner_{}","#,
        pick(&SECTIONS, h >> 11),
        pick(&PRODUCTS, h >> 13),
        10_000 + (h >> 17) % 90_000,
        2024 + (h >> 19) % 2,
        (h >> 20) % 10,
    );
    if (h >> 23).is_multiple_of(9) {
        s.push_str(r#""referrer":null,"#);
    } else {
        let _ = write!(s, r#""referrer":"{}","#, pick(&REFERRERS, h >> 23));
    }
    let _ = write!(
        s,
        r#""user_agent":"{}","ip":"{}.{}.{}.{}","country":"{}","#,
        USER_AGENTS[device],
        11 + (h2 >> 8) % 200,
        (h2 >> 16) % 256,
        (h2 >> 24) % 256,
        1 + (h2 >> 32) % 254,
        pick(&COUNTRIES, h2 >> 40),
    );
    let _ = write!(
        s,
        r#""device":{{"os":"{os}","browser":"{browser}","mobile":{mobile}}},"ts":"{}","value":{}.{:02},"tags":["#,
        iso_millis(clickstream_ts_ms(i)),
        (h2 >> 20) % 500,
        (h2 >> 30) % 100,
    );
    let tag_count = 1 + (h >> 29) % 4;
    for t in 0..tag_count {
        if t > 0 {
            s.push(',');
        }
        let _ = write!(s, r#""{}""#, pick(&TAGS, (h >> 31) + t * 3));
    }
    let _ = write!(
        s,
        r#"],"properties":{{"page_title":"{}","scroll_depth":{},"duration_ms":{},"experiment":"{}","logged_in":{},"cart_items":{},"#,
        pick(&TITLES, h2 >> 44),
        (h2 >> 46) % 101,
        (h2 >> 50) % 120_000,
        pick(&EXPERIMENTS, h2 >> 52),
        !(h2 >> 56).is_multiple_of(3),
        (h2 >> 58) % 8,
    );
    let _ = write!(
        s,
        r#""search_query":"{}","category_path":"{}","product_sku":"SKU-{:08}","currency":"{}","price":{}.{:02}}}}}"#,
        pick(&QUERIES, h2 >> 3),
        pick(&CATEGORIES, h2 >> 5),
        (h2 >> 7) % 100_000_000,
        pick(&CURRENCIES, h2 >> 9),
        5 + (h2 >> 11) % 995,
        (h2 >> 13) % 100,
    );
    s
}

/// The `value.schema` DDL matching [`clickstream_event`].
pub fn clickstream_schema_ddl() -> &'static str {
    "event_id STRING, user_id BIGINT, session_id STRING, event_type STRING, url STRING, \
     referrer STRING, user_agent STRING, ip STRING, country STRING, \
     device STRUCT<os STRING, browser STRING, mobile BOOLEAN>, ts TIMESTAMP, value DOUBLE, \
     tags ARRAY<STRING>, properties STRUCT<page_title STRING, scroll_depth BIGINT, \
     duration_ms BIGINT, experiment STRING, logged_in BOOLEAN, cart_items BIGINT, \
     search_query STRING, category_path STRING, product_sku STRING, currency STRING, \
     price DOUBLE>"
}

/// The Arrow schema of [`clickstream_schema_ddl`]: all fields nullable, TIMESTAMP as
/// Timestamp(ms, UTC), ARRAY<T> as List with the default `item` element field.
pub fn clickstream_schema() -> SchemaRef {
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, true);
    let int64 = |name: &str| Field::new(name, DataType::Int64, true);
    let boolean = |name: &str| Field::new(name, DataType::Boolean, true);
    let device = Fields::from(vec![utf8("os"), utf8("browser"), boolean("mobile")]);
    let properties = Fields::from(vec![
        utf8("page_title"),
        int64("scroll_depth"),
        int64("duration_ms"),
        utf8("experiment"),
        boolean("logged_in"),
        int64("cart_items"),
        utf8("search_query"),
        utf8("category_path"),
        utf8("product_sku"),
        utf8("currency"),
        Field::new("price", DataType::Float64, true),
    ]);
    Arc::new(Schema::new(vec![
        utf8("event_id"),
        int64("user_id"),
        utf8("session_id"),
        utf8("event_type"),
        utf8("url"),
        utf8("referrer"),
        utf8("user_agent"),
        utf8("ip"),
        utf8("country"),
        Field::new("device", DataType::Struct(device), true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("value", DataType::Float64, true),
        Field::new_list("tags", Field::new_list_field(DataType::Utf8, true), true),
        Field::new("properties", DataType::Struct(properties), true),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::json::JsonDecoder;
    use crate::decode::{RecordBuffer, ValueDecoder};
    use arrow::array::{Array, TimestampMillisecondArray};

    #[test]
    fn dates() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(BASE_TS_MS), "2024-06-01T00:00:00.000Z");
        assert_eq!(iso_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_millis(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
    }

    #[test]
    fn events_decode_with_the_schema() {
        let n = 5000u64;
        let mut b = RecordBuffer::new(false, false);
        let (mut min, mut max) = (usize::MAX, 0);
        for i in 0..n {
            let e = clickstream_event(i);
            (min, max) = (min.min(e.len()), max.max(e.len()));
            assert!(
                (900..=1200).contains(&e.len()),
                "event {i} is {} bytes: {e}",
                e.len()
            );
            b.push(i as i64, 0, None, Some(e.as_bytes()), Vec::new);
        }
        eprintln!("clickstream events: {min}..={max} bytes");
        assert_eq!(clickstream_event(42), clickstream_event(42));
        let mut dec = JsonDecoder::new("clicks".into(), Some(clickstream_schema()), 4096);
        let d = dec.decode(&b).unwrap();
        assert!(
            d.rejected.is_empty(),
            "{:?}",
            &d.rejected[..d.rejected.len().min(3)]
        );
        assert_eq!(d.batch.num_rows(), n as usize);
        let ts = d.batch.column_by_name("ts").unwrap();
        let ts = ts
            .as_any()
            .downcast_ref::<TimestampMillisecondArray>()
            .unwrap();
        assert_eq!(ts.null_count(), 0);
        assert!((0..n).all(|i| ts.value(i as usize) == clickstream_ts_ms(i)));
        let referrer = d.batch.column_by_name("referrer").unwrap();
        assert!(referrer.null_count() > 0 && referrer.null_count() < n as usize / 4);
    }

    #[test]
    fn ddl_names_the_schema_fields_in_order() {
        let ddl = clickstream_schema_ddl();
        let mut depth = 0;
        let mut names = Vec::new();
        let mut start = 0;
        for (pos, c) in ddl.char_indices().chain([(ddl.len(), ',')]) {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                ',' if depth == 0 => {
                    names.push(ddl[start..pos].split_whitespace().next().unwrap_or(""));
                    start = pos + 1;
                }
                _ => {}
            }
        }
        let schema = clickstream_schema();
        let expected: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, expected);
    }
}
