//! The JSON bridge the language bindings call, so that Python and Node share one conversion
//! of settings, options and arguments (snake_case JSON) to the client, and of results back.
//! Bindings add only what their runtime needs (GIL release, signals, promises, exceptions).
//!
//! Every input has a Rust type that refuses unknown fields, so a misspelt argument is an error
//! naming its path rather than silently a default. One call is one [`Operation`]:
//! `{"operation": "get_job", "arguments": {"job_id": "job_1"}}`, with its [`Options`] apart.
//! Bindings write `operation` before `arguments`: the path of a mistake inside the arguments
//! (`/arguments/video_url`) is then known (serde reads arguments that come first without it).

mod checks;
mod client_webhooks;
mod dispatch;
mod errors;
mod number;
mod operation;
mod options;
mod parse;
mod policy;
pub mod schema;
mod settings;
mod validate;
mod webhook;

pub use client_webhooks::{
    ListenInput, UseWebhooksInput, handle_webhook, listen_for_webhooks, use_webhooks,
};
pub use dispatch::{call, call_operation, submit};
pub use errors::{ERROR_KINDS, error_class, error_classes, error_payload, with_public_names};
pub use number::Float;
pub use operation::{
    BackgroundArg, CreateJobArgs, DownloadArgs, JobIdArgs, ListJobsArgs, NoArgs, Operation,
    RunArgs, StartJobArgs, UploadArgs, UsageEventsArgs, UsageSummaryArgs, WaitArgs, is_long,
};
pub use options::Options;
pub use parse::parse;
pub use policy::{PollPolicyArgs, RetryPolicyArgs};
pub use settings::{Idempotency, Settings};
pub use validate::validate_request;
pub use webhook::{WebhookInput, verify_webhook};

use removebgvideo_core::ErrorCode;

use crate::Error;

/// Runs one entry point of a binding so that a panic (a bug of ours) comes back as an
/// `sdk_bug` error: Python would get a `PanicException` that `except Exception` misses, and
/// Node would abort the whole process.
pub fn guarded<T>(work: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(Error::new(
            ErrorCode::SdkBug,
            format!("the SDK hit a bug and stopped this call ({what}); please report it"),
        ))
    })
}

fn to_json(value: impl serde::Serialize) -> String {
    serde_json::to_string(&value).expect("our types serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_comes_back_as_a_typed_error() {
        let error = guarded::<()>(|| panic!("index out of bounds")).unwrap_err();
        assert_eq!(error.code, ErrorCode::SdkBug);
        assert_eq!(error_class(error.kind()), "SDKBugError");
        assert!(error.message.contains("index out of bounds"));
    }
}
