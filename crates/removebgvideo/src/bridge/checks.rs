//! Checks of what a binding gives: durations by the core's unit rules (`core::units`) before
//! they become `Duration`s, and the problems of one input collected so they are reported
//! together.
//!
//! Durations travel in milliseconds between a binding and Rust (`timeout_ms`), and nowhere
//! else: the public APIs of Python and Node take seconds, under the name without `_ms`. A
//! problem therefore names the public field (`/settings/timeout`) and its value in seconds.

use std::time::Duration;

use removebgvideo_core::{Problem, units};

use super::number::Float;
use crate::Error;

/// The problems found in one input, so the caller learns every one at once.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    /// The value, or `None` with its problem kept.
    pub(crate) fn take<T>(&mut self, result: Result<T, Problem>) -> Option<T> {
        result.map_err(|problem| self.0.push(problem)).ok()
    }

    /// How many problems were kept.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Keeps a problem.
    pub(crate) fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    /// Keeps every problem of a list.
    pub(crate) fn extend(&mut self, problems: Vec<Problem>) {
        self.0.extend(problems);
    }

    /// The validation error of the problems kept (there must be some).
    pub(crate) fn into_error(self) -> Error {
        Error::validation(self.0)
    }

    /// The value when nothing was wrong.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, Error> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Error::validation(self.0))
        }
    }
}

/// A limit or interval in milliseconds: above 0, at most a year; `path` is the public field
/// its problem names.
pub(crate) fn positive_ms(
    problems: &mut Problems,
    path: &str,
    ms: Option<Float>,
) -> Option<Duration> {
    problems.take(units::positive_seconds(path, ms?.0 / 1000.0))
}

/// A duration in milliseconds that may be zero: at most a year; `path` is the public field
/// its problem names.
pub(crate) fn ms(problems: &mut Problems, path: &str, ms: Option<Float>) -> Option<Duration> {
    problems.take(units::seconds(path, ms?.0 / 1000.0))
}

/// A problem of a part moved under another root: its path, and the field its message names.
pub(crate) fn moved(mut problem: Problem, from: &str, to: &str) -> Problem {
    use removebgvideo_core::validate::display_path;
    if let Some(rest) = problem.path.strip_prefix(from) {
        let path = format!("{to}{rest}");
        let (old, new) = (display_path(&problem.path), display_path(&path));
        if let Some(tail) = problem.message.strip_prefix(&old) {
            problem.message = format!("{new}{tail}");
        }
        problem.path = path;
    }
    problem
}
