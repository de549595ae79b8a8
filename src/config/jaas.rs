//! `sasl.jaas.config` as the Java Kafka client writes it:
//! `<LoginModule class> <flag> key="value" key2=value2;`, mapped to librdkafka's SASL keys
//! (see [`super::kafka_security`]). The value is a secret: it never appears in an error.

use std::collections::BTreeMap;

use super::ConfigError;

/// One parsed JAAS entry: the login module's class and its options.
#[derive(Debug, PartialEq, Eq)]
pub struct Jaas {
    pub module: String,
    pub options: BTreeMap<String, String>,
}

/// Parses one JAAS entry; `Err` says what is wrong (never quoting the text).
pub fn parse(text: &str) -> Result<Jaas, String> {
    let mut chars = text.trim().chars().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' || c == ';' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word(&mut chars);
    let flag = word(&mut chars);
    if module.is_empty()
        || !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str())
    {
        return Err("expected `<LoginModule class> required key=\"value\" ...;`".into());
    }
    let mut options = BTreeMap::new();
    loop {
        let name = word(&mut chars);
        if name.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            return Err(format!("option '{name}' has no '=value'"));
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    Some('\\') => v.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => v.push(c),
                    None => return Err(format!("option '{name}': unterminated quoted value")),
                }
            }
            v
        } else {
            word(&mut chars)
        };
        options.insert(name, value);
    }
    while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
        chars.next();
    }
    if chars.next().is_some() {
        return Err("text after the entry's closing ';' (one login module only)".into());
    }
    Ok(Jaas { module, options })
}

/// Maps the JAAS entry of `prefix` + `sasl.jaas.config` into `out` (librdkafka keys).
pub fn map(
    prefix: &str,
    text: &str,
    mechanism: Option<&str>,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let key = format!("{prefix}sasl.jaas.config");
    let err = |allowed: String| ConfigError::InvalidValue {
        key: key.clone(),
        value: "[hidden]".into(),
        allowed,
    };
    let jaas = parse(text).map_err(err)?;
    let class = jaas.module.rsplit('.').next().unwrap_or_default();
    let opt = |k: &str| jaas.options.get(k).cloned();
    let mech = mechanism.unwrap_or("GSSAPI (the default)").to_uppercase();
    let mismatch = |want: &str| {
        err(format!(
            "{class} needs {prefix}sasl.mechanism={want}, but it is {mech}"
        ))
    };
    match class {
        "PlainLoginModule" | "ScramLoginModule" => {
            let scram = class == "ScramLoginModule";
            if scram && !mech.starts_with("SCRAM-SHA-") {
                return Err(mismatch("SCRAM-SHA-256 or SCRAM-SHA-512"));
            }
            if !scram && mech != "PLAIN" {
                return Err(mismatch("PLAIN"));
            }
            let (Some(user), Some(password)) = (opt("username"), opt("password")) else {
                return Err(err(format!("{class} needs username=\"...\" password=\"...\"")));
            };
            out.entry("sasl.username".into()).or_insert(user);
            out.entry("sasl.password".into()).or_insert(password);
        }
        "OAuthBearerLoginModule" => {
            if mech != "OAUTHBEARER" {
                return Err(mismatch("OAUTHBEARER"));
            }
            map_oauthbearer(&jaas.options, out);
        }
        "Krb5LoginModule" => {
            if mech != "GSSAPI" && mechanism.is_some() {
                return Err(mismatch("GSSAPI"));
            }
            if let Some(keytab) = opt("keyTab") {
                out.entry("sasl.kerberos.keytab".into()).or_insert(keytab);
            }
            if let Some(principal) = opt("principal") {
                out.entry("sasl.kerberos.principal".into())
                    .or_insert(principal);
            }
        }
        other => {
            return Err(err(format!(
                "a PlainLoginModule, ScramLoginModule, OAuthBearerLoginModule or Krb5LoginModule entry (not {other})"
            )))
        }
    }
    Ok(())
}

/// The OAuthBearerLoginModule's options as librdkafka's OIDC (with a token endpoint) or
/// unsecured-JWT settings.
fn map_oauthbearer(options: &BTreeMap<String, String>, out: &mut BTreeMap<String, String>) {
    let opt = |k: &str| options.get(k).cloned();
    for (java, ours) in [
        ("clientId", "sasl.oauthbearer.client.id"),
        ("clientSecret", "sasl.oauthbearer.client.secret"),
        ("scope", "sasl.oauthbearer.scope"),
    ] {
        if let Some(v) = opt(java) {
            out.entry(ours.into()).or_insert(v);
        }
    }
    if out.contains_key("sasl.oauthbearer.token.endpoint.url") {
        out.entry("sasl.oauthbearer.method".into())
            .or_insert_with(|| "oidc".into());
    } else if let Some(sub) = opt("unsecuredLoginStringClaim_sub") {
        out.entry("enable.sasl.oauthbearer.unsecure.jwt".into())
            .or_insert_with(|| "true".into());
        out.entry("sasl.oauthbearer.config".into())
            .or_insert(format!("principal={sub}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_scram_entries() {
        let j = parse(r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="KEY" password="p\"w;=";"#).unwrap();
        assert_eq!(
            j.module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(j.options["username"], "KEY");
        assert_eq!(j.options["password"], "p\"w;=");
        let j = parse("x.ScramLoginModule required\n username=alice  password=s3cret ;").unwrap();
        assert_eq!(j.options["username"], "alice");
        assert_eq!(j.options["password"], "s3cret");
        assert!(parse("x.PlainLoginModule username=a;").is_err());
        assert!(parse(r#"x.PlainLoginModule required username="a"#).is_err());
        assert!(parse("x.PlainLoginModule required a=b; y.Other required;").is_err());
    }

    #[test]
    fn maps_to_librdkafka_keys_and_hides_the_value() {
        let mut out = BTreeMap::new();
        let text = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="TOPSECRET";"#;
        map("", text, Some("SCRAM-SHA-512"), &mut out).unwrap();
        assert_eq!(out["sasl.username"], "u");
        assert_eq!(out["sasl.password"], "TOPSECRET");
        let e = map("consumer.", text, Some("PLAIN"), &mut BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("consumer.sasl.jaas.config") && e.contains("sasl.mechanism=SCRAM"),
            "{e}"
        );
        assert!(!e.contains("TOPSECRET"), "{e}");
    }
}
