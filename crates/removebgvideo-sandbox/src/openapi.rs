//! `GET /openapi.json`: the published document (the core builds it; `cargo xtask codegen`
//! commits it as schema/openapi.json) as this sandbox serves it. Two things differ, both
//! because the sandbox is not the real API: its own address is the only server, and
//! `webhook_url` states the one rule the real API does not have, that the sandbox delivers
//! webhooks to loopback hosts only (see `check_loopback_webhook`). So a request this document
//! accepts is one this sandbox accepts, which schemathesis checks in `cargo xtask contract`.

use removebgvideo_core::spec;
use removebgvideo_core::validate::{IPV4_OCTET_PATTERN, http_url_pattern_with_host};
use serde_json::{Value, json};

/// The request types that carry a `webhook_url`.
const WITH_WEBHOOK_URL: &[&str] = &["CreateJobRequest", "StartJobRequest"];

/// The document for a sandbox at `base_url`.
pub fn document(base_url: &str) -> Value {
    let mut document = spec::openapi();
    document["servers"] = json!([{ "url": base_url, "description": "this sandbox" }]);
    let pattern = loopback_url_pattern();
    for request in WITH_WEBHOOK_URL {
        let webhook = &mut document["components"]["schemas"][*request]["properties"]["webhook_url"];
        let description = webhook["description"].as_str().unwrap_or_default();
        webhook["description"] = json!(format!(
            "{description} In the sandbox: a loopback host only (127.0.0.1, ::1 or localhost)."
        ));
        webhook["pattern"] = json!(pattern);
    }
    document
}

/// The published URL pattern with the host limited to what the sandbox counts as loopback:
/// `localhost` in any case, 127.0.0.0/8 written as four decimal octets, or `[::1]`.
fn loopback_url_pattern() -> String {
    let octet = IPV4_OCTET_PATTERN;
    http_url_pattern_with_host(&format!(
        "([lL][oO][cC][aA][lL][hH][oO][sS][tT]|127(\\.{octet}){{3}}|\\[::1\\])"
    ))
}
