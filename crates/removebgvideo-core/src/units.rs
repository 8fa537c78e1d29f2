//! Numbers from outside (a binding, the command line, a config file) turned into durations,
//! times and factors without panicking. `Duration::from_secs_f64` panics on NaN, infinity,
//! negatives and overflow, so every such number passes through here first; an unusable one is
//! a problem that names its field and the rule.

use std::time::Duration;

use crate::error::Error;
use crate::timestamp::Timestamp;
use crate::validate::{Problem, ProblemCode, display_path};

/// The longest duration accepted from outside: one year. Deadlines are `now + duration`, and
/// a bound keeps every such sum far from overflow.
pub const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

fn out_of_range(path: &str, value: f64, rule: &str) -> Problem {
    Problem::error(
        path,
        ProblemCode::OutOfRange,
        format!("{} must be {rule} (got {value})", display_path(path)),
    )
}

/// Seconds in `[0, MAX_SECONDS]`.
pub fn seconds(path: &str, value: f64) -> Result<Duration, Problem> {
    if value.is_finite() && (0.0..=MAX_SECONDS).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(out_of_range(
            path,
            value,
            "a number of seconds from 0 to 31536000 (one year)",
        ))
    }
}

/// Seconds in `(0, MAX_SECONDS]`: a limit or interval that must let time pass.
pub fn positive_seconds(path: &str, value: f64) -> Result<Duration, Problem> {
    match seconds(path, value) {
        Ok(duration) if value > 0.0 => Ok(duration),
        _ => Err(out_of_range(
            path,
            value,
            "a number of seconds above 0 and at most 31536000 (one year)",
        )),
    }
}

/// A finite factor in `(above, at_most]`, such as a clock speed.
pub fn factor(path: &str, value: f64, above: f64, at_most: f64) -> Result<f64, Problem> {
    if value.is_finite() && value > above && value <= at_most {
        Ok(value)
    } else {
        Err(out_of_range(
            path,
            value,
            &format!("a number above {above} and at most {at_most}"),
        ))
    }
}

/// Milliseconds since the Unix epoch, as JavaScript's `Date.now()` gives them.
pub fn unix_millis(path: &str, value: f64) -> Result<Timestamp, Problem> {
    // 2^53: the largest integer a JavaScript number holds exactly.
    const MAX: f64 = 9_007_199_254_740_992.0;
    if value.is_finite() && (0.0..=MAX).contains(&value) {
        Ok(Timestamp::from_unix_millis(value as u64))
    } else {
        Err(out_of_range(
            path,
            value,
            "milliseconds since 1970 from 0 to 2^53",
        ))
    }
}

/// A problem as the `validation_error` it is when it stands alone.
impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Error::validation(vec![problem])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unusable_number_is_a_problem_naming_its_field() {
        for value in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            -0.001,
            1e20,
            MAX_SECONDS * 1.0001,
        ] {
            let problem = seconds("/tolerance_seconds", value).unwrap_err();
            assert_eq!(problem.code, ProblemCode::OutOfRange);
            assert_eq!(problem.path, "/tolerance_seconds");
            assert!(
                problem.message.starts_with("tolerance_seconds must be"),
                "{}",
                problem.message
            );
        }
        assert!(positive_seconds("/timeout", 0.0).is_err());
        assert!(factor("/speed", 0.0, 0.0, 1e6).is_err());
        assert!(factor("/speed", 1e20, 0.0, 1e6).is_err());
        assert!(unix_millis("/now_ms", -1.0).is_err());
        assert!(unix_millis("/now_ms", f64::NAN).is_err());
    }

    #[test]
    fn usable_numbers_convert_exactly() {
        assert_eq!(seconds("/t", 0.0).unwrap(), Duration::ZERO);
        assert_eq!(seconds("/t", 1.5).unwrap(), Duration::from_millis(1500));
        assert_eq!(
            seconds("/t", MAX_SECONDS).unwrap(),
            Duration::from_secs(31_536_000)
        );
        assert_eq!(
            positive_seconds("/t", 0.25).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(factor("/speed", 20.0, 0.0, 1e6).unwrap(), 20.0);
        assert_eq!(
            unix_millis("/now_ms", 1_700_000_000_000.0).unwrap(),
            Timestamp::from_unix_millis(1_700_000_000_000)
        );
    }
}
