//! Our errors as JavaScript errors. The stable code travels as napi's error status: napi-rs
//! builds an `Error<S>` with `napi_create_error(code = status, message)`, so the JS error's
//! `code` property is our code (`job_failed`), with no message prefix to parse back.
//!
//! The rest (status, request id, idempotency key, problems, job, retry-after, class) needs
//! structure that a status string and a message cannot carry, and a `cause` would be one more
//! `Error` with only a message. So wherever an `Env` is at hand (a sync call, a task's
//! `resolve` on the JS thread, a threadsafe function's callback) the error object itself gets
//! them as properties, built from our JSON form with napi's serde conversion: plain JS values,
//! nothing to parse. `index.js` turns that object into the typed class (`JobFailedError`).
//! Rejecting with it goes through napi's retained-reference path (`napi::Error::from(Unknown)`),
//! which hands the very object to the promise.

use napi::bindgen_prelude::*;
use removebgvideo::bridge;

/// Our stable error code as napi's error status: it becomes the JS error's `code`.
#[derive(Debug)]
struct Code(String);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The JS error of one of ours: `code` and `message` from napi, the rest as properties (the
/// snake_case names of our JSON form: `request_id`, `retry_after_ms`, `problems`, `job`,
/// `class`, ...), its problems named as the package names them (`js_path`).
pub fn js_error<'env>(env: &Env, error: removebgvideo::Error) -> Result<Unknown<'env>> {
    let error = bridge::with_public_names(error, js_path);
    let code = Code(error.code.as_str().to_owned());
    let created = JsError::from(napi::Error::new(code, error.message.clone())).into_unknown(*env);
    let mut object = Object::from_raw(env.raw(), created.raw());
    if let serde_json::Value::Object(payload) = bridge::error_payload(&error) {
        for (key, value) in payload {
            if key != "code" && key != "message" {
                object.set_named_property(&key, env.to_js_value(&value)?)?;
            }
        }
    }
    Ok(created)
}

/// The error to return from a napi function: it throws (or rejects with) `js_error`'s object.
pub fn thrown(env: &Env, error: removebgvideo::Error) -> napi::Error {
    match js_error(env, error) {
        Ok(object) => napi::Error::from(object),
        Err(failed) => failed,
    }
}

/// A problem's path as the Node package names it: relative to the object the caller passed
/// (no `/arguments`, `/options`, `/settings` or `/config` root: a params object holds both
/// arguments and options), in camelCase; the caller's own data (inside `metadata`) as given.
pub fn js_path(path: &str) -> String {
    let mut segments = path.split('/').skip(1).peekable();
    if segments
        .peek()
        .is_some_and(|s| ["arguments", "options", "settings", "config"].contains(s))
    {
        segments.next();
    }
    let mut out = String::new();
    let mut own_data = false;
    for segment in segments {
        out.push('/');
        out.push_str(&if own_data {
            segment.to_owned()
        } else {
            camel(segment)
        });
        own_data |= segment == "metadata";
    }
    out
}

fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        match c {
            '_' if !out.is_empty() => upper = true,
            c if upper => {
                out.extend(c.to_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::js_path;

    #[test]
    fn paths_are_the_callers_own_in_camel_case() {
        assert_eq!(js_path("/arguments/video_url"), "/videoUrl");
        assert_eq!(
            js_path("/settings/poll_policy/max_eta_interval"),
            "/pollPolicy/maxEtaInterval"
        );
        assert_eq!(js_path("/options/timeout"), "/timeout");
        assert_eq!(js_path("/bg_color/0"), "/bgColor/0");
        assert_eq!(
            js_path("/arguments/metadata/order_id"),
            "/metadata/order_id"
        );
        assert_eq!(js_path("/tolerance"), "/tolerance");
        assert_eq!(js_path(""), "");
    }
}
