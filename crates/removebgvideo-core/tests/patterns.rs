//! The published patterns against the validation they describe: a URL or a prompt the schema's
//! pattern accepts is one the core (and so the server and the SDKs) accepts, and the simple
//! changes a tester makes to a valid value (schemathesis appends a `*`) are judged alike.

use proptest::prelude::*;
use removebgvideo_core::CreateJobRequest;
use removebgvideo_core::validate::{http_url_pattern, not_blank_pattern, parse_and_validate};
use serde_json::json;

/// Whether the schema's pattern matches, as a JSON Schema validator reads it (ECMA-262 regex).
fn schema_matches(pattern: &str, value: &str) -> bool {
    let schema = json!({ "type": "string", "pattern": pattern });
    jsonschema::validator_for(&schema)
        .expect("the pattern compiles")
        .is_valid(&json!(value))
}

/// Whether the core accepts `url` as a job's video URL.
fn core_accepts_url(url: &str) -> bool {
    parse_and_validate::<CreateJobRequest>(&json!({ "video_url": url })).is_ok()
}

fn core_accepts_prompt(prompt: &str) -> bool {
    let body = json!({ "video_url": "https://a.com/v.mp4", "model": "pro", "text_prompt": prompt });
    parse_and_validate::<CreateJobRequest>(&body).is_ok()
}

/// Strings drawn from a published pattern (anchors dropped: the generator matches whole
/// strings anyway).
fn from_pattern(pattern: &str) -> impl Strategy<Value = String> {
    let body = pattern
        .strip_prefix('^')
        .and_then(|p| p.strip_suffix('$'))
        .unwrap_or(pattern)
        .to_owned();
    proptest::string::string_regex(&body).expect("the pattern is a regex proptest reads")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_url_the_pattern_allows_is_accepted(url in from_pattern(&http_url_pattern())) {
        prop_assert!(schema_matches(&http_url_pattern(), &url), "{url:?}");
        prop_assert!(core_accepts_url(&url), "{url:?}");
    }

    #[test]
    fn a_url_with_a_character_appended_is_judged_alike(
        url in from_pattern(&http_url_pattern()),
        extra in prop_oneof![Just('*'), proptest::char::range('!', '~')],
    ) {
        let changed = format!("{url}{extra}");
        let schema = schema_matches(&http_url_pattern(), &changed);
        let core = core_accepts_url(&changed);
        // What the pattern leaves out on purpose (see `http_url_pattern`): digits and dots
        // that make an IPv4 address in a spelling the pattern does not list (`1.2.3.00`, or the
        // hex `1.2.3.0x`) or a second trailing dot, and the host characters RFC 3986 refuses but
        // the URL standard lets through.
        let known_gap = !schema && core && (extra.is_ascii_digit() || ".\"`{}xX".contains(extra));
        prop_assert!(schema == core || known_gap, "{changed:?}: schema {schema}, core {core}");
    }

    #[test]
    fn a_prompt_the_pattern_allows_is_not_blank(prompt in "\\PC{0,4}|[\\s\\u{85}\\u{feff}\\u{180e}]{0,4}") {
        prop_assert_eq!(
            schema_matches(&not_blank_pattern(), &prompt),
            core_accepts_prompt(&prompt),
            "{:?}", prompt
        );
    }
}

#[test]
fn urls_by_hand() {
    let cases = [
        ("https://cdn.removebgvideo.com/uploads/a.mp4", true),
        ("HTTP://A.COM", true),
        ("http://0.com*", true),
        ("http://a.com:", true),
        ("http://a.com:00080/x", true),
        ("http://a.com./x", true),
        ("http://127.0.0.1:8080/a?b#c", true),
        ("http://a.0xg", true),
        ("http://a.com\\path", true),
        ("http://a.com:65536", false),
        ("http://a.1", false),
        ("http://a.0x1f", false),
        ("http://a.010", false),
        ("http://1.2.3.256", false),
        ("http://a%b", false),
        ("http://a com", false),
        ("http://a.com/x y", false),
        ("http://a.com/\tx", false),
        ("ftp://a.com", false),
        ("http://", false),
    ];
    for (url, valid) in cases {
        assert_eq!(
            schema_matches(&http_url_pattern(), url),
            valid,
            "schema: {url}"
        );
        assert_eq!(core_accepts_url(url), valid, "core: {url}");
    }
}
