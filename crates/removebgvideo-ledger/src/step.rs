//! A step of an item (an answer, an intent, an error) and what it does to the item: the one
//! rule for every column a step changes, applied in memory and then written whole.

use serde_json::Value;

use crate::item::{Item, ItemPhase};

/// One step of an item: its new phase and the facts that came with it, written with its event
/// in one transaction (an answer is never recorded apart from the phase change it causes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// The event's kind (`created`, `status`, `attempt`, `error`, `output`, ...).
    pub kind: &'static str,
    /// The phase it moves to (`None`: it stays).
    pub phase: Option<ItemPhase>,
    pub job_id: Option<String>,
    pub status_from: Option<String>,
    pub status_to: Option<String>,
    pub request_id: Option<String>,
    pub http_status: Option<u16>,
    pub attempt: Option<u32>,
    /// An error, kept as the item's last (never cleared by later steps).
    pub error: Option<(String, String)>,
    pub credits_estimated: Option<f64>,
    pub credits_reserved: Option<f64>,
    pub credits_charged: Option<f64>,
    /// The output in place: its path, size and sha256.
    pub output: Option<(String, u64, String)>,
    /// Starts a new generation (a restart from the beginning).
    pub next_generation: bool,
    /// The `video_url` an upload gave the item's file.
    pub uploaded_video_url: Option<String>,
    pub detail: Option<Value>,
}

impl Step {
    /// The item as this step leaves it, at `now` (unix milliseconds), moved to `phase`. What the
    /// step does not bring is kept: an error, once recorded, stays until another replaces it.
    pub(crate) fn apply(&self, item: &mut Item, phase: ItemPhase, now: u64) {
        fn keep<T: Clone>(field: &mut Option<T>, new: &Option<T>) {
            if new.is_some() {
                field.clone_from(new);
            }
        }
        item.phase = phase;
        keep(&mut item.job_id, &self.job_id);
        keep(&mut item.job_status, &self.status_to);
        keep(&mut item.credits_estimated, &self.credits_estimated);
        keep(&mut item.credits_reserved, &self.credits_reserved);
        keep(&mut item.credits_charged, &self.credits_charged);
        if let Some((path, size, sha)) = &self.output {
            item.output_path = Some(path.clone());
            item.output_size = Some(*size);
            item.output_sha256 = Some(sha.clone());
        }
        if let Some((code, message)) = &self.error {
            item.last_error_code = Some(code.clone());
            item.last_error_message = Some(message.clone());
            // The request id of the answer that brought the error (none: a local error).
            item.last_error_request_id.clone_from(&self.request_id);
        }
        if self.next_generation {
            item.generation += 1;
        }
        keep(&mut item.uploaded_video_url, &self.uploaded_video_url);
        item.updated_at = now;
    }
}
