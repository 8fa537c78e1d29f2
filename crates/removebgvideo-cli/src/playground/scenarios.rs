//! The recommended scenarios, each run several times, and the figures of the SLA baseline.

use std::time::Instant;

use removebgvideo::{Client, DownloadOptions, ErrorCode, Model, WaitOptions, estimate_credits};
use serde::Serialize;

use super::{ResponseRecord, Target};

/// One job the playground made.
#[derive(Clone, Debug, Serialize)]
pub struct JobRecord {
    pub scenario: String,
    pub model: String,
    pub input: String,
    pub output_format: String,
    pub job_id: Option<String>,
    pub final_status: String,
    pub error_code: Option<String>,
    pub processing_seconds: Option<f64>,
    /// Credits charged, as the job says, else as estimated from its duration.
    pub credits: Option<f64>,
    /// Credits charged, as the job says (the figure the usage view must show).
    pub credits_used: Option<f64>,
    pub output_bytes: Option<u64>,
    pub request_ids: Vec<String>,
}

/// The scenario of a model, as the API Playground page names it.
pub fn scenario_name(model: &str) -> &'static str {
    match model {
        "original" => "baseline quality (original + transparent)",
        "light" => "speed profile (light)",
        "pro" => "prompt targeting (pro + text_prompt)",
        "human" => "portrait optimization (human)",
        _ => "custom model",
    }
}

/// Runs one job end to end: create, wait, download (to measure and check the output).
pub fn run_one(
    target: &Target,
    model: &str,
    input: &str,
    text_prompt: &str,
    responses: &std::sync::Mutex<Vec<ResponseRecord>>,
) -> JobRecord {
    let mut record = JobRecord {
        scenario: scenario_name(model).into(),
        model: model.into(),
        input: input.into(),
        output_format: "webm".into(),
        job_id: None,
        final_status: "not created".into(),
        error_code: None,
        processing_seconds: None,
        credits: None,
        credits_used: None,
        output_bytes: None,
        request_ids: Vec::new(),
    };
    let client: &Client = &target.client;
    let mut request = removebgvideo::CreateJobRequest::new(input)
        .with_background(&removebgvideo::Background::Transparent);
    request.model = Some(Model::from(model));
    request.output_format = Some("webm".into());
    if model == "pro" {
        request.text_prompt = Some(text_prompt.into());
    }
    let started = Instant::now();
    let accepted = match client.create_job(&request, &target.call()) {
        Ok(accepted) => accepted,
        Err(error) => {
            record.error_code = Some(error.code.to_string());
            record.request_ids.extend(error.request_id);
            return record;
        }
    };
    record.job_id = Some(accepted.id.clone());
    record.final_status = accepted.status.to_string();
    let mut remember = |request_id: Option<String>| {
        if let Some(id) = &request_id {
            record.request_ids.push(id.clone());
        }
        responses.lock().expect("responses").push(ResponseRecord {
            job_id: accepted.id.clone(),
            request_id,
        });
    };
    remember(accepted.request_id.clone());
    let job = match client.wait(
        &accepted.id,
        &WaitOptions {
            poll: target.poll.clone(),
            call: target.call(),
            ..Default::default()
        },
    ) {
        Ok(job) => job,
        Err(error) => {
            record.final_status = error
                .job
                .as_ref()
                .map(|j| j.status.to_string())
                .unwrap_or_else(|| "unknown".into());
            record.error_code = Some(error.code.to_string());
            record.request_ids.extend(error.request_id);
            return record;
        }
    };
    remember(job.request_id.clone());
    record.processing_seconds = Some(started.elapsed().as_secs_f64());
    record.final_status = job.status.to_string();
    record.credits_used = job.credits_used;
    record.credits = job.credits_used.or_else(|| {
        job.duration_seconds
            .and_then(|d| estimate_credits(&Model::from(model), d).ok())
            .map(|c| c as f64)
    });
    let path = target.work_dir.join(format!("{}.webm", accepted.id));
    match client.download_job(
        job,
        &path,
        &DownloadOptions {
            overwrite: true,
            call: target.call(),
        },
    ) {
        Ok(download) => {
            record.output_bytes = Some(download.bytes);
            let _ = std::fs::remove_file(&path);
        }
        Err(error) => {
            record.error_code = Some(if error.code == ErrorCode::DownloadFailed {
                "download_failed".into()
            } else {
                error.code.to_string()
            })
        }
    }
    record
}

/// Figures of one model's runs.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioSummary {
    pub scenario: String,
    pub model: String,
    pub runs: usize,
    pub succeeded: usize,
    pub success_rate: f64,
    pub processing_seconds_avg: Option<f64>,
    pub processing_seconds_p50: Option<f64>,
    pub processing_seconds_p95: Option<f64>,
    pub credits_used: f64,
    pub credits_per_run: Option<f64>,
    pub output_format: String,
    pub output_bytes_avg: Option<f64>,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

fn average(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

pub fn summarize(model: &str, records: &[JobRecord]) -> ScenarioSummary {
    let mine: Vec<&JobRecord> = records.iter().filter(|r| r.model == model).collect();
    let succeeded: Vec<&&JobRecord> = mine
        .iter()
        .filter(|r| r.final_status == "completed" && r.error_code.is_none())
        .collect();
    let mut times: Vec<f64> = succeeded
        .iter()
        .filter_map(|r| r.processing_seconds)
        .collect();
    times.sort_by(f64::total_cmp);
    let credits: Vec<f64> = succeeded.iter().filter_map(|r| r.credits).collect();
    let sizes: Vec<f64> = succeeded
        .iter()
        .filter_map(|r| r.output_bytes.map(|b| b as f64))
        .collect();
    ScenarioSummary {
        scenario: scenario_name(model).into(),
        model: model.into(),
        runs: mine.len(),
        succeeded: succeeded.len(),
        success_rate: if mine.is_empty() {
            0.0
        } else {
            succeeded.len() as f64 / mine.len() as f64
        },
        processing_seconds_avg: average(&times),
        processing_seconds_p50: percentile(&times, 50.0),
        processing_seconds_p95: percentile(&times, 95.0),
        credits_used: credits.iter().sum(),
        credits_per_run: average(&credits),
        output_format: "webm".into(),
        output_bytes_avg: average(&sizes),
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&values, 50.0), Some(5.0));
        assert_eq!(percentile(&values, 95.0), Some(10.0));
        assert_eq!(percentile(&[3.0], 95.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
