//! Amazon MSK IAM authentication in the forms a Java client's config has it, mapped to
//! librdkafka's OAUTHBEARER with tokens StreamX signs (`crate::source::oauth`):
//!
//! | Java client config | mapped to |
//! |---|---|
//! | `sasl.mechanism=AWS_MSK_IAM`, `sasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required;`, `sasl.client.callback.handler.class=software.amazon.msk.auth.iam.IAMClientCallbackHandler` | `sasl.mechanism=OAUTHBEARER`, `sasl.oauthbearer.config=aws_msk_iam region=<r>` |
//! | `sasl.mechanism=OAUTHBEARER`, `sasl.login.callback.handler.class=software.amazon.msk.auth.iam.IAMOAuthBearerLoginCallbackHandler` (and the client one) | the same |
//!
//! The region is the one in the brokers' host names (`b-1.<cluster>.<id>.c2.kafka.<region>.
//! amazonaws.com`, `...kafka-serverless.<region>...`), as the Java library takes it, else
//! `AWS_REGION` / `AWS_DEFAULT_REGION`. Credentials come from the AWS chain at run time (env,
//! web identity, ECS, EC2 metadata); the IAMLoginModule's `awsProfileName` and `awsRoleArn` are
//! refused with the reason (that chain reads no profile files and assumes no role), the other
//! options (`awsDebugCreds`, `awsStsRegion`, ...) only tune those two and are ignored.

use std::collections::BTreeMap;

use super::kafka_security::{bad, CLASS_KEYS};
use super::ConfigError;

/// The `sasl.oauthbearer.config` value that asks `source::oauth` for MSK IAM tokens (followed by
/// ` region=<aws region>` once [`resolve_region`] ran).
pub const OAUTHBEARER_CONFIG: &str = "aws_msk_iam";

/// True when the value of a class key names one of the MSK IAM library's classes.
fn is_iam_class(class: &str) -> bool {
    class.starts_with("software.amazon.msk.auth.iam.")
}

/// Maps MSK IAM settings of one client (`prefix` = how the user spelt its keys) into `out`;
/// false (and `out` untouched) when the client does not use MSK IAM.
pub fn map(
    prefix: &str,
    entries: &BTreeMap<String, String>,
    out: &mut BTreeMap<String, String>,
) -> Result<bool, ConfigError> {
    let get = |k: &str| entries.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mechanism = get("sasl.mechanism");
    let jaas = get("sasl.jaas.config").and_then(|t| super::jaas::parse(t).ok());
    let iam_module = jaas
        .as_ref()
        .is_some_and(|j| j.module.ends_with("msk.auth.iam.IAMLoginModule"));
    let iam_class = CLASS_KEYS.iter().any(|k| get(k).is_some_and(is_iam_class));
    let iam_mechanism = mechanism.is_some_and(|m| m.eq_ignore_ascii_case("AWS_MSK_IAM"));
    if !(iam_module || iam_class || iam_mechanism) {
        return Ok(false);
    }
    if let Some(m) = mechanism.filter(|m| {
        !m.eq_ignore_ascii_case("AWS_MSK_IAM") && !m.eq_ignore_ascii_case("OAUTHBEARER")
    }) {
        return Err(bad(
            prefix,
            "sasl.mechanism",
            m,
            "AWS_MSK_IAM or OAUTHBEARER (the client is configured for Amazon MSK IAM)",
        ));
    }
    for class_key in CLASS_KEYS {
        if let Some(class) = get(class_key).filter(|c| !is_iam_class(c)) {
            return Err(bad(
                prefix,
                class_key,
                class,
                "unset, or an MSK IAM class (the client is configured for Amazon MSK IAM)",
            ));
        }
    }
    if let Some(j) = &jaas {
        check_login_module(prefix, j)?;
    }
    for conflicting in ["sasl.oauthbearer.config", "sasl.oauthbearer.method"] {
        if let Some(v) = get(conflicting) {
            return Err(bad(
                prefix,
                conflicting,
                v,
                "unset: StreamX makes the MSK IAM tokens itself",
            ));
        }
    }
    for k in CLASS_KEYS.iter().chain(&["sasl.jaas.config"]) {
        out.remove(*k);
    }
    out.insert("sasl.mechanism".into(), "OAUTHBEARER".into());
    out.insert("sasl.oauthbearer.config".into(), OAUTHBEARER_CONFIG.into());
    Ok(true)
}

/// The JAAS entry beside MSK IAM: the IAMLoginModule (its options checked) or the
/// OAuthBearerLoginModule the OAUTHBEARER form names.
fn check_login_module(prefix: &str, jaas: &super::jaas::Jaas) -> Result<(), ConfigError> {
    let key = format!("{prefix}sasl.jaas.config");
    let refuse = |allowed: &str| ConfigError::InvalidValue {
        key: key.clone(),
        value: "[hidden]".into(),
        allowed: allowed.into(),
    };
    if jaas.module.ends_with("OAuthBearerLoginModule") {
        return Ok(());
    }
    if !jaas.module.ends_with("msk.auth.iam.IAMLoginModule") {
        return Err(refuse("software.amazon.msk.auth.iam.IAMLoginModule or OAuthBearerLoginModule (the client is configured for Amazon MSK IAM)"));
    }
    if jaas.options.contains_key("awsProfileName") {
        return Err(refuse("an IAMLoginModule without awsProfileName: StreamX takes AWS credentials from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN), a web identity token (EKS), or the ECS / EC2 role, not from profile files"));
    }
    if jaas.options.contains_key("awsRoleArn") {
        return Err(refuse("an IAMLoginModule without awsRoleArn: StreamX does not assume roles for MSK; run it with that role's credentials (instance, task or pod role, or AWS_ROLE_ARN with AWS_WEB_IDENTITY_TOKEN_FILE)"));
    }
    Ok(())
}

/// Completes an MSK IAM client's settings (all its keys merged): `security.protocol` must be
/// SASL_SSL, and `sasl.oauthbearer.config` gets the region (see the module doc). Other clients
/// are left as they are.
pub fn resolve_region(
    client: &mut BTreeMap<String, String>,
    bootstrap_servers: &str,
) -> Result<(), ConfigError> {
    if client.get("sasl.oauthbearer.config").map(String::as_str) != Some(OAUTHBEARER_CONFIG) {
        return Ok(());
    }
    let protocol = client.get("security.protocol").map_or("", |p| p.as_str());
    if !protocol.eq_ignore_ascii_case("SASL_SSL") {
        return Err(ConfigError::InvalidValue {
            key: "security.protocol".into(),
            value: protocol.into(),
            allowed: "SASL_SSL: Amazon MSK's IAM listener takes TLS only (port 9098, or 9198 for public access)".into(),
        });
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let region = region_of_hosts(bootstrap_servers)
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| ConfigError::InvalidValue {
            key: "bootstrap.servers".into(),
            value: bootstrap_servers.into(),
            allowed: "Amazon MSK broker host names (b-1.<cluster>.<id>.c2.kafka.<region>.amazonaws.com), or AWS_REGION set: MSK IAM signs for a region and none can be told".into(),
        })?;
    client.insert(
        "sasl.oauthbearer.config".into(),
        format!("{OAUTHBEARER_CONFIG} region={region}"),
    );
    Ok(())
}

/// The region in the first MSK host name of `servers` (`host:port,host:port`).
fn region_of_hosts(servers: &str) -> Option<String> {
    servers.split(',').find_map(|server| {
        let host = server
            .trim()
            .rsplit_once(':')
            .map_or(server.trim(), |(h, _)| h);
        let labels: Vec<&str> = host.split('.').collect();
        let at = labels
            .iter()
            .position(|l| *l == "kafka" || *l == "kafka-serverless")?;
        let region = labels.get(at + 1)?;
        (labels.get(at + 2) == Some(&"amazonaws") && !region.is_empty()).then(|| region.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(pairs: &[(&str, &str)]) -> Result<BTreeMap<String, String>, ConfigError> {
        let entries: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        super::super::kafka_security::to_librdkafka("", &entries)
    }

    const JAVA_FORM: [(&str, &str); 4] = [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "AWS_MSK_IAM"),
        (
            "sasl.jaas.config",
            "software.amazon.msk.auth.iam.IAMLoginModule required;",
        ),
        (
            "sasl.client.callback.handler.class",
            "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
        ),
    ];

    #[test]
    fn both_java_forms_become_oauthbearer_with_streamx_tokens() {
        let oauth_form = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;",
            ),
            (
                "sasl.login.callback.handler.class",
                "software.amazon.msk.auth.iam.IAMOAuthBearerLoginCallbackHandler",
            ),
            (
                "sasl.client.callback.handler.class",
                "software.amazon.msk.auth.iam.IAMOAuthBearerLoginCallbackHandler",
            ),
        ];
        for form in [&JAVA_FORM[..], &oauth_form[..]] {
            let out = mapped(form).unwrap();
            assert_eq!(out["sasl.mechanism"], "OAUTHBEARER");
            assert_eq!(out["sasl.oauthbearer.config"], OAUTHBEARER_CONFIG);
            assert!(!out.contains_key("sasl.jaas.config"), "{out:?}");
            assert!(CLASS_KEYS.iter().all(|k| !out.contains_key(*k)), "{out:?}");
        }
    }

    #[test]
    fn profiles_roles_plaintext_and_other_mechanisms_are_refused_with_the_reason() {
        let with = |k: &str, v: &str| {
            let mut pairs = JAVA_FORM.to_vec();
            pairs.retain(|(key, _)| *key != k);
            pairs.push((k, v));
            mapped(&pairs).unwrap_err().to_string()
        };
        let profile =
            r#"software.amazon.msk.auth.iam.IAMLoginModule required awsProfileName="prod";"#;
        assert!(with("sasl.jaas.config", profile).contains("profile files"));
        let role = r#"software.amazon.msk.auth.iam.IAMLoginModule required awsRoleArn="arn:aws:iam::1:role/r";"#;
        assert!(with("sasl.jaas.config", role).contains("does not assume roles"));
        assert!(with("sasl.mechanism", "SCRAM-SHA-512").contains("AWS_MSK_IAM or OAUTHBEARER"));
        let debug = "software.amazon.msk.auth.iam.IAMLoginModule required awsDebugCreds=true;";
        let mut pairs = JAVA_FORM.to_vec();
        pairs[2] = ("sasl.jaas.config", debug);
        assert!(mapped(&pairs).is_ok());
    }

    #[test]
    fn the_region_comes_from_the_broker_host_names_over_tls_only() {
        let mut client = BTreeMap::from([
            (
                "sasl.oauthbearer.config".to_string(),
                OAUTHBEARER_CONFIG.to_string(),
            ),
            (
                "security.protocol".to_string(),
                "SASL_PLAINTEXT".to_string(),
            ),
        ]);
        let e = resolve_region(&mut client, "b-1.x.kafka.us-east-1.amazonaws.com:9098");
        assert!(e.unwrap_err().to_string().contains("TLS only"));
        client.insert("security.protocol".into(), "SASL_SSL".into());
        let servers = "b-1.orders.abc123.c2.kafka.eu-central-1.amazonaws.com:9098,b-2.orders.abc123.c2.kafka.eu-central-1.amazonaws.com:9098";
        resolve_region(&mut client, servers).unwrap();
        assert_eq!(
            client["sasl.oauthbearer.config"],
            "aws_msk_iam region=eu-central-1"
        );
        let serverless = "boot-abc.c1.kafka-serverless.us-east-2.amazonaws.com:9098";
        assert_eq!(region_of_hosts(serverless).as_deref(), Some("us-east-2"));
        assert_eq!(region_of_hosts("localhost:9092"), None);
        let mut other = BTreeMap::new();
        resolve_region(&mut other, "localhost:9092").unwrap();
        assert!(other.is_empty());
    }
}
