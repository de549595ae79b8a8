//! Tests of [`super::store_encryption`]: store encryption and ACL settings honoured or refused
//! through `Config::from_raw`, as every entry point prepares a job.

use super::validate_tests::{err, ok};

/// The Confluent S3 sink's encryption and ACL keys are honoured (mapped to object_store's
/// encryption options) or refused with the reason; before, both were accepted and ignored.
#[test]
fn s3_encryption_and_acl_keys_are_honoured_or_refused() {
    fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut all = vec![("store.url", "s3://bucket/prefix")];
        all.extend_from_slice(extra);
        all
    }
    let c = ok(&with(&[
        ("s3.ssea.name", "AES256"),
        ("s3.acl.canned", "private"),
    ]));
    assert_eq!(c.store_options["aws_server_side_encryption"], "AES256");
    let c = ok(&with(&[
        ("s3.ssea.name", "aws:kms"),
        ("s3.sse.kms.key.id", "k-1"),
    ]));
    assert_eq!(c.store_options["aws_sse_kms_key_id"], "k-1");
    let c = ok(&with(&[
        (
            "s3.sse.customer.key",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        ),
        ("s3.sse.customer.algorithm", "AES256"),
    ]));
    assert_eq!(c.store_options["aws_server_side_encryption"], "sse-c");
    assert_eq!(
        c.store_options["aws_sse_customer_key_base64"],
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    );
    assert!(ok(&with(&[("s3.ssea.name", "")])).store_options.is_empty());
    for (extra, names) in [
        (
            vec![("s3.acl.canned", "bucket-owner-full-control")],
            "s3.acl.canned",
        ),
        (vec![("s3.ssea.name", "rot13")], "s3.ssea.name"),
        (
            vec![("s3.ssea.name", "AES256"), ("s3.sse.kms.key.id", "k")],
            "s3.sse.kms.key.id",
        ),
        (
            vec![
                ("s3.ssea.name", "AES256"),
                ("s3.sse.customer.key", "TOPSECRETKEY"),
            ],
            "s3.sse.customer.key",
        ),
    ] {
        let e = err(&with(&extra)).to_string();
        assert!(e.contains(names) && !e.contains("TOPSECRETKEY"), "{e}");
    }
    let e = err(&[("s3.ssea.name", "AES256")]).to_string();
    assert!(e.contains("s3://"), "{e}");
}

/// object_store applies `aws_sse_kms_key_id`, `aws_sse_bucket_key_enabled` and
/// `aws_sse_customer_key_base64` only with a matching `aws_server_side_encryption`, and a
/// Confluent key silently replaced a different `store.aws_server_side_encryption`: each of these
/// was accepted and ignored. Also refused: an SSE-C key that is not 256 bits (S3 refuses it at
/// the first write) and `s3.sse.customer.algorithm` without a key.
#[test]
fn s3_encryption_settings_that_would_be_ignored_are_refused() {
    const KEY32: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    let s3 = |extra: &[(&'static str, &'static str)]| {
        let mut all = vec![("store.url", "s3://bucket/prefix")];
        all.extend_from_slice(extra);
        all
    };
    for (extra, named) in [
        (
            vec![("store.aws_sse_kms_key_id", "k")],
            "store.aws_sse_kms_key_id",
        ),
        (vec![("store.sse_kms_key_id", "k")], "store.sse_kms_key_id"),
        (
            vec![("store.aws_sse_bucket_key_enabled", "true")],
            "store.aws_sse_bucket_key_enabled",
        ),
        (
            vec![
                ("store.aws_server_side_encryption", "AES256"),
                ("store.aws_sse_kms_key_id", "k"),
            ],
            "store.aws_sse_kms_key_id",
        ),
        (
            vec![("store.aws_sse_customer_key_base64", KEY32)],
            "store.aws_sse_customer_key_base64",
        ),
        (
            vec![("store.aws_server_side_encryption", "sse-c")],
            "store.aws_server_side_encryption",
        ),
        (
            vec![("store.aws_server_side_encryption", "rot13")],
            "store.aws_server_side_encryption",
        ),
        (
            vec![
                ("s3.ssea.name", "AES256"),
                ("store.aws_server_side_encryption", "aws:kms"),
            ],
            "s3.ssea.name",
        ),
        (
            vec![("s3.sse.customer.algorithm", "AES256")],
            "s3.sse.customer.algorithm",
        ),
        (vec![("s3.sse.customer.key", "a2V5")], "s3.sse.customer.key"),
        (
            vec![
                ("store.aws_server_side_encryption", "sse-c"),
                ("store.aws_sse_customer_key_base64", "bm90IGJhc2U2NCEhIQ"),
            ],
            "store.aws_sse_customer_key_base64",
        ),
    ] {
        let e = err(&s3(&extra)).to_string();
        assert!(e.contains(named), "{extra:?}: {e}");
        assert!(!e.contains(KEY32), "the key is never shown: {e}");
    }
    // The same settings agreeing, or object_store's own keys alone, are fine.
    let c = ok(&s3(&[
        ("s3.ssea.name", "aws:kms"),
        ("store.aws_server_side_encryption", "aws:kms"),
        ("store.aws_sse_kms_key_id", "k"),
        ("store.aws_sse_bucket_key_enabled", "false"),
    ]));
    assert_eq!(c.store_options["aws_sse_kms_key_id"], "k");
    ok(&s3(&[
        ("store.server_side_encryption", "sse-c"),
        ("store.sse_customer_key_base64", KEY32),
    ]));
}

/// object_store 0.13 can set neither an Azure encryption scope / customer-provided key nor a GCS
/// KMS / customer-supplied key; such store options passed check-config and the REST API (only
/// the ingest's store builder refused them, as unknown). Refused by name here, with the reason.
#[test]
fn azure_and_gcs_encryption_options_are_refused_with_the_reason() {
    for (url, key, reason) in [
        (
            "az://container/p",
            "store.encryption_scope",
            "encryption scope",
        ),
        (
            "az://container/p",
            "store.azure_encryption_scope",
            "encryption scope",
        ),
        (
            "abfss://c@acct.dfs.core.windows.net/p",
            "store.azure_encryption_key",
            "customer-provided key",
        ),
        ("gs://bucket/p", "store.kms_key_name", "KMS"),
        (
            "gs://bucket/p",
            "store.google_encryption_key",
            "customer-supplied",
        ),
        ("gs://bucket/p", "store.aws_server_side_encryption", "s3://"),
        ("az://container/p", "s3.ssea.name", "s3://"),
    ] {
        let e = err(&[("store.url", url), (key, "AES256")]).to_string();
        assert!(e.contains(key) && e.contains(reason), "{key}: {e}");
    }
}
