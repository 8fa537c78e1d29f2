//! The core's request rules for the bindings' `validate_request`.

use removebgvideo_core::requests::{
    CreateJobRequest, ListJobsQuery, StartJobRequest, UploadFile, UsageEventsQuery,
    UsageSummaryQuery,
};
use removebgvideo_core::validate::{Validate, parse_and_validate};
use removebgvideo_core::{Problem, ProblemCode};
use serde_json::Value;

use super::parse::parse;
use super::{guarded, to_json};
use crate::Error;

fn problems_of<T: serde::de::DeserializeOwned + Validate>(value: &Value) -> Vec<Problem> {
    match parse_and_validate::<T>(value) {
        Ok((_, warnings)) => warnings,
        Err(error) => error.problems,
    }
}

/// Every problem (errors and warnings) of a request body, as JSON, by the core's rules.
pub fn validate_request(type_name: &str, body_json: &str) -> Result<String, Error> {
    guarded(|| {
        let value: Value = parse("body", body_json)?;
        let problems = match type_name {
            "CreateJobRequest" => problems_of::<CreateJobRequest>(&value),
            "StartJobRequest" => problems_of::<StartJobRequest>(&value),
            "ListJobsQuery" => problems_of::<ListJobsQuery>(&value),
            "UsageSummaryQuery" => problems_of::<UsageSummaryQuery>(&value),
            "UsageEventsQuery" => problems_of::<UsageEventsQuery>(&value),
            "UploadFile" => problems_of::<UploadFile>(&value),
            other => {
                return Err(Error::validation(vec![Problem::error(
                    "/type_name",
                    ProblemCode::UnknownValue,
                    format!("no request type {other:?}"),
                )]));
            }
        };
        Ok(to_json(problems))
    })
}
