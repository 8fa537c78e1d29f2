//! The sandbox as a server facing hostile input: unusable configurations, slow clients,
//! redirecting webhook receivers, and secrets that must not reach its log.

mod common;

use std::io::ErrorKind;

use common::{Api, PLAYGROUND_VIDEO};
use removebgvideo_sandbox::{FaultConfig, KeyConfig, Sandbox, SandboxConfig};
use serde_json::json;

#[test]
fn unusable_numbers_in_the_configuration_are_refused_naming_the_field() {
    let base = SandboxConfig::default;
    let key = |credits: f64, rate_per_second: f64| KeyConfig {
        key: "rbv_test".into(),
        credits,
        rate_per_second,
        burst: 1,
    };
    let cases: Vec<(SandboxConfig, &str)> = vec![
        (
            SandboxConfig {
                speed: 1e20,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                speed: 0.0,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                speed: -2.0,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                speed: f64::NAN,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                speed: f64::INFINITY,
                ..base()
            },
            "speed",
        ),
        (
            SandboxConfig {
                default_duration_secs: -1.0,
                ..base()
            },
            "default_duration_secs",
        ),
        (
            SandboxConfig {
                default_duration_secs: f64::NAN,
                ..base()
            },
            "default_duration_secs",
        ),
        (
            SandboxConfig {
                default_duration_secs: f64::INFINITY,
                ..base()
            },
            "default_duration_secs",
        ),
        (
            SandboxConfig {
                output_url_ttl_ms: u64::MAX,
                ..base()
            },
            "output_url_ttl_ms",
        ),
        (
            SandboxConfig {
                webhook_retries: u32::MAX,
                ..base()
            },
            "webhook_retries",
        ),
        (
            SandboxConfig {
                keys: vec![key(f64::NAN, 1.0)],
                ..base()
            },
            "keys[0].credits",
        ),
        (
            SandboxConfig {
                keys: vec![key(-5.0, 1.0)],
                ..base()
            },
            "keys[0].credits",
        ),
        (
            SandboxConfig {
                keys: vec![key(5.0, f64::INFINITY)],
                ..base()
            },
            "keys[0].rate_per_second",
        ),
        (
            SandboxConfig {
                faults: FaultConfig {
                    error_rate: 2.0,
                    ..FaultConfig::default()
                },
                ..base()
            },
            "faults.error_rate",
        ),
        (
            SandboxConfig {
                header_read_timeout_ms: 0,
                ..base()
            },
            "header_read_timeout_ms",
        ),
        (
            SandboxConfig {
                max_connections: 0,
                ..base()
            },
            "max_connections",
        ),
    ];
    for (config, field) in cases {
        let checked = config.check().expect_err(field);
        assert_eq!(checked.problems.len(), 1, "{field}: {:?}", checked.problems);
        assert!(
            checked.problems[0]
                .message
                .starts_with(&format!("{field} must be")),
            "{}",
            checked.message
        );
        let error = Sandbox::start(config).expect_err(field);
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{field}");
        let message = error.to_string();
        assert!(
            message.contains(field) && message.contains("must be"),
            "{field}: {message}"
        );
    }
    SandboxConfig::default()
        .check()
        .expect("the defaults are usable");
    let fastest = SandboxConfig {
        speed: 1e6,
        ..base()
    };
    Sandbox::start(fastest)
        .expect("the fastest clock accepted")
        .shutdown();
}

#[test]
fn an_absurd_duration_hint_neither_panics_nor_breaks_later_requests() {
    let sandbox = Sandbox::start(SandboxConfig {
        speed: 1e6,
        ..SandboxConfig::default()
    })
    .unwrap();
    let api = Api::new(&sandbox, sandbox.demo_key());
    for hint in ["1e300", "3e7&scenario=slow"] {
        let body =
            json!({"video_url": format!("{PLAYGROUND_VIDEO}?duration={hint}"), "model": "pro"});
        let reply = api
            .send("POST", "/v1/jobs", &[], Some(&body))
            .expect("an answer, not a dropped connection");
        assert!(
            [200, 402].contains(&reply.status),
            "{hint}: {}",
            reply.status
        );
    }
    // The state lock is not poisoned: the clock reads and the lifecycle still work.
    for _ in 0..3 {
        assert_eq!(api.get("/v1/jobs").status, 200);
    }
}
