//! S3 server-side encryption on moto, checked through boto3 (not StreamX's client): every object
//! a job leaves in the bucket (data files published by a server-side copy, commit records,
//! compaction outputs, schema versions of an inferred-schema job) carries the encryption asked
//! for, with the Confluent keys (`s3.ssea.name`, `s3.sse.kms.key.id`, `s3.sse.customer.key`) and
//! with object_store's own `store.aws_*` options. The job is run twice (the second run recovers
//! from the commit records and stored schema versions), compacted and queried, so SSE-C is
//! exercised on reads, HEADs and copies too. moto 5 ignores SSE-C headers, so SSE-C runs through
//! tests/sse_c_proxy.py, which enforces them as S3 does (a read or copy source without the key
//! is refused).

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use common::compact::*;
use common::*;
use streamx::source::embedded::EmbeddedCluster;

const PARTITIONS: i32 = 2;
const PER_PARTITION: i64 = 200;
/// A base64 256-bit customer key (SSE-C).
const CUSTOMER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// What boto3 must report for every object.
#[derive(Clone, Copy)]
enum Expect {
    Sse(&'static str),
    Kms(&'static str),
    CustomerKey,
}

/// The SSE-C enforcing proxy in front of moto; killed on drop.
struct Proxy(Child, String);

impl Proxy {
    fn start(moto: &str) -> Proxy {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sse_c_proxy.py");
        let mut child = Command::new(service_env("STREAMX_TEST_PYTHON"))
            .args([script, moto])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{}", port.trim());
        Proxy(child, endpoint)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lists every object of `bucket` and HEADs it with boto3 (with the customer key for SSE-C, and
/// once more without it, which must be refused); `delete` removes them and the bucket after.
const BOTO3: &str = r#"
import sys, base64, boto3, botocore
endpoint, bucket, customer, delete = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
ssec = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64decode(customer)} if customer else {}
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])]
for key in keys:
    if delete == "1":
        s3.delete_object(Bucket=bucket, Key=key)
        continue
    head = s3.head_object(Bucket=bucket, Key=key, **ssec)
    refused = "-"
    if customer:
        try:
            s3.head_object(Bucket=bucket, Key=key)
            refused = "read-without-key"
        except botocore.exceptions.ClientError as e:
            refused = "refused-without-key"
    print(key, head.get("ServerSideEncryption", "none"), head.get("SSEKMSKeyId", "-"),
          head.get("SSECustomerAlgorithm", "-"), refused)
if delete == "1":
    s3.delete_bucket(Bucket=bucket)
"#;

fn boto3(endpoint: &str, bucket: &str, customer: &str, delete: bool) -> String {
    let out = Command::new(service_env("STREAMX_TEST_PYTHON"))
        .args(["-c", BOTO3, endpoint, bucket, customer])
        .arg(if delete { "1" } else { "0" })
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "boto3: {stderr}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Inferred-schema hourly job with `settings`, ingested twice, compacted, queried; then every
/// object's encryption as boto3 sees it.
fn round_trip(settings: &[(&str, &str)], expect: Expect) {
    init_logs();
    let moto = service_env("STREAMX_TEST_S3_ENDPOINT");
    let proxy = matches!(expect, Expect::CustomerKey).then(|| Proxy::start(&moto));
    let endpoint = proxy.as_ref().map_or(moto.clone(), |p| p.1.clone());
    let (bucket, owned) = s3_bucket(&endpoint, "sse");
    let url = format!("s3://{bucket}/run");
    let cluster = EmbeddedCluster::start(1).unwrap();
    let servers = cluster.bootstrap_servers();
    let topic = unique("sse");
    cluster.create_topic(&topic, PARTITIONS).unwrap();
    produce_hourly(&servers, &topic, PARTITIONS, PER_PARTITION);
    let mut pairs = hourly_job(&servers, &topic, &url, &owned, settings);
    pairs.retain(|(k, _)| k != "value.schema");
    ingest_to_end(&pairs);
    for p in 0..PARTITIONS {
        produce_timed_from(&servers, &topic, p, 30, (HOUR_BASE_MS, 1000), |n| {
            event(p, n as u64)
        });
    }
    ingest_to_end(&pairs);
    let report = compact(&pairs, false);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(report.files_out > 0, "compaction wrote outputs: {report:?}");
    let total = i64::from(PARTITIONS) * (PER_PARTITION + 30);
    let counted = streamx::query::run_to_string(
        &config(&pairs),
        &format!("SELECT count(*) AS n, count(DISTINCT _partition * 100000 + _offset) AS d FROM \"{topic}\""),
    )
    .unwrap();
    assert!(
        counted.contains(&format!("| {total} | {total} |")),
        "query sees every row once: {counted}"
    );
    let customer = if matches!(expect, Expect::CustomerKey) {
        CUSTOMER_KEY
    } else {
        ""
    };
    let listing = boto3(&endpoint, &bucket, customer, false);
    check_listing(&listing, &topic, expect);
    boto3(&endpoint, &bucket, "", true);
}

fn check_listing(listing: &str, topic: &str, expect: Expect) {
    let objects: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .collect();
    let count = |f: &dyn Fn(&str) -> bool| objects.iter().filter(|o| f(o[0])).count();
    let data = count(&|k| k.contains(&format!("topics/{topic}/")) && k.ends_with(".parquet"));
    let compacted = count(&|k| k.contains("+compacted+"));
    let commits = count(&|k| k.contains("_streamx/commits/"));
    let schemas = count(&|k| k.contains(&format!("_streamx/schemas/{topic}")));
    assert!(
        data > 0 && compacted > 0 && commits > 0 && schemas > 0,
        "data files, compaction outputs, commit records and schema versions: {listing}"
    );
    let wrong: Vec<_> = objects
        .iter()
        .filter(|o| match expect {
            Expect::Sse(sse) => o[1] != sse,
            Expect::Kms(key) => o[1] != "aws:kms" || o[2] != key,
            Expect::CustomerKey => o[3] != "AES256" || o[4] != "refused-without-key",
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "objects without the asked encryption: {wrong:?}"
    );
}

#[test]
fn sse_s3_aes256_on_every_object() {
    round_trip(&[("s3.ssea.name", "AES256")], Expect::Sse("AES256"));
}

#[test]
fn sse_kms_with_a_key_id_on_every_object() {
    round_trip(
        &[("s3.ssea.name", "aws:kms"), ("s3.sse.kms.key.id", KMS_KEY)],
        Expect::Kms(KMS_KEY),
    );
}

#[test]
fn sse_kms_from_object_store_options_on_every_object() {
    round_trip(
        &[
            ("store.aws_server_side_encryption", "aws:kms"),
            ("store.aws_sse_kms_key_id", KMS_KEY),
            ("store.aws_sse_bucket_key_enabled", "true"),
        ],
        Expect::Kms(KMS_KEY),
    );
}

#[test]
fn sse_c_on_every_object_and_every_read_and_copy() {
    round_trip(
        &[
            ("s3.sse.customer.key", CUSTOMER_KEY),
            ("s3.sse.customer.algorithm", "AES256"),
        ],
        Expect::CustomerKey,
    );
}

#[test]
fn sse_c_from_object_store_options_on_every_object() {
    round_trip(
        &[
            ("store.aws_server_side_encryption", "sse-c"),
            ("store.aws_sse_customer_key_base64", CUSTOMER_KEY),
        ],
        Expect::CustomerKey,
    );
}
