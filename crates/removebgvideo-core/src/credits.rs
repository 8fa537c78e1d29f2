//! Credit estimates from the published rates (D:getting-started/credits).

use crate::error::Error;
use crate::options::Model;
use crate::validate::{Checker, ProblemCode, into_result};

/// Credits per minute of billed video, or `None` for a model this version does not know.
pub fn credits_per_minute(model: &Model) -> Option<u32> {
    match model {
        Model::Original => Some(60),
        Model::Light => Some(45),
        Model::Pro => Some(180),
        Model::Human => Some(45),
        Model::Unknown(_) => None,
    }
}

/// Estimated credits for a video of `duration_seconds`: billed per second at the per-minute
/// rate, rounded up to a whole credit. The API does not document its rounding; rounding up
/// makes the estimate a ceiling, which is what a budget check wants.
pub fn estimate_credits(model: &Model, duration_seconds: f64) -> Result<u64, Error> {
    let mut c = Checker::default();
    let rate = credits_per_minute(model);
    if rate.is_none() {
        c.known("/model", model, false, Model::known_values());
    }
    if !(duration_seconds.is_finite() && duration_seconds >= 0.0) {
        c.error(
            "/duration_seconds",
            ProblemCode::OutOfRange,
            format!("must be a number of seconds, 0 or more (got {duration_seconds})"),
        );
    }
    into_result(c.finish())?;
    let rate = f64::from(rate.unwrap_or(0));
    // Round away binary noise first so that exactly one minute is 60 credits, not 61.
    let exact = (rate * duration_seconds / 60.0 * 1e6).round() / 1e6;
    Ok(exact.ceil() as u64)
}
