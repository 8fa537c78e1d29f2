//! What an item sends: the create request its row becomes, and the credits it is estimated at.

use removebgvideo::core::ErrorCode;
use removebgvideo::{CreateJobRequest, Error, Job, Model, OutputFormat, estimate_credits};
use removebgvideo_ledger::Item;
use serde_json::Value;

/// The create request of `item` (its upload's URL for a file item). The same item always
/// makes the same request, so a create sent again with its idempotency key is a replay, not
/// a conflict. `auto_start` false makes a draft, started once its estimate fits the budget.
pub fn create_request(item: &Item, auto_start: bool) -> Result<CreateJobRequest, Error> {
    let input = &item.input;
    let video_url = input
        .video_url
        .clone()
        .or_else(|| item.uploaded_video_url.clone())
        .ok_or_else(|| {
            Error::new(
                ErrorCode::ValidationError,
                format!("item {:?} has no video_url and no uploaded file", item.key),
            )
        })?;
    let mut request = CreateJobRequest {
        video_url,
        model: input.model.as_deref().map(Model::from),
        output_format: input.output_format.as_deref().map(OutputFormat::from),
        text_prompt: input.text_prompt.clone(),
        auto_start: (!auto_start).then_some(false),
        metadata: match item.context.get("metadata") {
            Some(Value::Object(fields)) if !fields.is_empty() => Some(fields.clone()),
            _ => None,
        },
        ..CreateJobRequest::default()
    };
    if let Some(stored) = &input.background {
        request.background = Some(serde_json::from_value(stored.clone()).map_err(|e| {
            Error::new(
                ErrorCode::ValidationError,
                format!("item {:?}: stored background unreadable: {e}", item.key),
            )
        })?);
        if let Some(background) = request.effective_background() {
            request = request.with_background(&background);
        }
    }
    Ok(request)
}

/// The credits `job` is estimated at with the item's model (the job's own model first), once
/// its duration is known.
pub fn estimate(item: &Item, job: &Job) -> Option<f64> {
    let model = job
        .model
        .clone()
        .or_else(|| item.input.model.as_deref().map(Model::from))
        .unwrap_or_else(|| Model::from("original"));
    let duration = job.duration_seconds?;
    estimate_credits(&model, duration).ok().map(|c| c as f64)
}
