//! The configuration reference (docs/configuration.md), generated from the one key table
//! ([`super::keys::KEYS`], with [`super::keys::ALIASES`] and [`super::keys::PREFIXES`]) by
//! `streamx config-reference`; a test fails when the committed file is not what the table says,
//! so the reference cannot drift from the keys StreamX accepts (as Vector and DataFusion generate
//! their option references).

use super::keys::{is_secret, ALIASES, KEYS, PREFIXES};

/// The command that regenerates the committed reference.
pub const REGENERATE: &str = "cargo run --quiet -- config-reference > docs/configuration.md";

/// The reference as Markdown: every key with its aliases, default and meaning.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from StreamX's key table by `streamx config-reference`; do not edit by hand \
         (a test compares this file with the table). How keys are read (file, `STREAMX_*`, \
         `--set`) and what they mean together: the README's Configuration section.\n\n",
    );
    out += "Keys passed through as they are: ";
    out += &PREFIXES
        .iter()
        .map(|p| format!("`{p}*`"))
        .collect::<Vec<_>>()
        .join(", ");
    out += " (`consumer.*` / `producer.*` to librdkafka, `store.*` to object_store); \
             `security.protocol`, `ssl.*` and `sasl.*` at the top level are the Kafka clients' \
             security settings (the README's \"Connecting to secured clusters\").\n\n";
    out += "| key | aliases | default | secret | meaning |\n|---|---|---|---|---|\n";
    for k in KEYS {
        let aliases: Vec<String> = ALIASES
            .iter()
            .filter(|(_, canonical)| *canonical == k.name)
            .map(|(alias, _)| format!("`{alias}`"))
            .collect();
        let default = k
            .default
            .map_or(String::new(), |d| format!("`{}`", d.replace('|', "\\|")));
        out += &format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.name,
            aliases.join(", "),
            default,
            if is_secret(k.name) { "yes" } else { "" },
            k.doc.replace('|', "\\|")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_reference_is_what_the_key_table_says() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == super::markdown(),
            "docs/configuration.md is out of date with src/config/keys.rs: run `{}`",
            super::REGENERATE
        );
    }
}
