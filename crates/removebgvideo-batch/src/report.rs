//! The SLA baseline of a batch, read from its ledger: per model, how many jobs, p50 and p95
//! processing time, credits per video minute and the failure codes; and, when the API's usage
//! is given, how the ledger's credits compare with it. Rendered as Markdown and as an HTML
//! page with an SVG chart.

use std::collections::BTreeMap;

use removebgvideo::{
    CallOptions, Client, Error, UsageEvents, UsageEventsQuery, UsageSummary, UsageSummaryQuery,
};
use removebgvideo_ledger::{EventRecord, Item, ItemPhase, Ledger, LedgerError};
use serde::Serialize;

/// One model's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelBaseline {
    pub model: String,
    /// Items of this model whose job ended.
    pub jobs: u64,
    pub completed: u64,
    pub failed: u64,
    /// Seconds from the job's start (its first `pending` or `processing`) to its end, as
    /// the ledger saw it (polling adds up to one interval).
    pub p50_seconds: Option<f64>,
    pub p95_seconds: Option<f64>,
    /// Credits charged per minute of video, over the completed jobs.
    pub credits_per_video_minute: Option<f64>,
    pub credits_estimated: f64,
    pub credits_charged: f64,
    /// Failure codes (the job's error when it failed, else the item's last error code), with
    /// how many items ended with each.
    pub failures: BTreeMap<String, u64>,
}

/// The ledger's credits against the API's usage.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Reconciliation {
    /// Days of the usage summary (the batch's period, rounded up).
    pub days: u32,
    pub ledger_charged: f64,
    /// `credits_used` of the summary: every job of the key in the period, this batch's or not.
    pub summary_credits_used: f64,
    pub summary_jobs: u64,
    pub ledger_jobs: u64,
    /// Usage events of this batch's jobs (the API lists the latest 100 at most).
    pub events_matched: u64,
    /// Jobs whose charge or refund in the events differs from the ledger: job id, ledger,
    /// events.
    pub differences: Vec<(String, f64, f64)>,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub batch: String,
    pub items: u64,
    pub models: Vec<ModelBaseline>,
    /// Estimated against charged over the completed jobs (positive: charged more).
    pub estimate_gap: f64,
    pub usage: Option<Reconciliation>,
}

/// Per item: its model, its processing seconds and its video duration, from its log.
struct Timing {
    seconds: Option<f64>,
    duration: Option<f64>,
}

fn timing(events: &[EventRecord]) -> Timing {
    let mut started = None;
    let mut ended = None;
    let mut duration = None;
    for event in events {
        match (event.kind.as_str(), event.status_to.as_deref()) {
            // A restart's run starts anew.
            ("restart", _) => started = None,
            (_, Some("pending" | "processing")) if started.is_none() => started = Some(event.at),
            (kind, Some("completed" | "failed")) => {
                ended = Some(event.at);
                if matches!(kind, "completed" | "failed") {
                    duration = event
                        .detail
                        .as_ref()
                        .and_then(|d| d["duration_seconds"].as_f64())
                        .or(duration);
                }
            }
            _ => {}
        }
    }
    let seconds = match (started, ended) {
        (Some(s), Some(e)) if e >= s => Some((e - s) as f64 / 1000.0),
        _ => None,
    };
    Timing { seconds, duration }
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// The report of `batch` from its items and each item's log.
pub fn build(batch: &str, items: &[(Item, Vec<EventRecord>)]) -> Report {
    let mut models: BTreeMap<String, (ModelBaseline, Vec<f64>, f64)> = BTreeMap::new();
    let mut gap = 0.0;
    for (item, events) in items {
        if !matches!(item.phase, ItemPhase::Done | ItemPhase::Failed) {
            continue;
        }
        let model = item
            .input
            .model
            .clone()
            .unwrap_or_else(|| "original".into());
        let entry = models.entry(model.clone()).or_insert_with(|| {
            (
                ModelBaseline {
                    model,
                    ..ModelBaseline::default()
                },
                Vec::new(),
                0.0,
            )
        });
        let (baseline, seconds, minutes) = entry;
        baseline.jobs += 1;
        let timing = timing(events);
        seconds.extend(timing.seconds);
        baseline.credits_estimated += item.credits_estimated.unwrap_or(0.0);
        baseline.credits_charged += item.credits_charged.unwrap_or(0.0);
        if item.phase == ItemPhase::Done {
            baseline.completed += 1;
            *minutes += timing.duration.unwrap_or(0.0) / 60.0;
            gap += item.credits_charged.unwrap_or(0.0) - item.credits_estimated.unwrap_or(0.0);
        } else {
            baseline.failed += 1;
            let code = item
                .last_error_code
                .clone()
                .unwrap_or_else(|| "unknown".into());
            *baseline.failures.entry(code).or_default() += 1;
        }
    }
    let models = models
        .into_values()
        .map(|(mut baseline, mut seconds, minutes)| {
            seconds.sort_by(f64::total_cmp);
            baseline.p50_seconds = percentile(&seconds, 0.5);
            baseline.p95_seconds = percentile(&seconds, 0.95);
            let charged_completed = baseline.credits_charged;
            baseline.credits_per_video_minute =
                (minutes > 0.0).then(|| charged_completed / minutes);
            baseline
        })
        .collect();
    Report {
        batch: batch.to_owned(),
        items: items.len() as u64,
        models,
        estimate_gap: gap,
        usage: None,
    }
}

/// The report of `batch` in `ledger`; with a client, reconciled with the API's usage over the
/// days since the batch's first event.
pub fn for_batch(
    ledger: &Ledger,
    batch: &str,
    client: Option<&Client>,
    now_ms: u64,
) -> Result<Report, ReportError> {
    let items = ledger.items(batch)?;
    let mut logs = Vec::with_capacity(items.len());
    for item in &items {
        let events = ledger.events(batch, &item.key)?;
        logs.push((item.clone(), events));
    }
    let mut report = build(batch, &logs);
    if let Some(client) = client {
        let first = logs
            .iter()
            .filter_map(|(_, events)| events.first().map(|e| e.at))
            .min()
            .unwrap_or(now_ms);
        let days = now_ms
            .saturating_sub(first)
            .div_ceil(86_400_000)
            .clamp(1, 90) as u32;
        let call = CallOptions::default();
        let summary = client.usage_summary(&UsageSummaryQuery { days: Some(days) }, &call)?;
        let events = client.usage_events(&UsageEventsQuery { limit: Some(100) }, &call)?;
        report.usage = Some(reconcile(&items, days, &summary, &events));
    }
    Ok(report)
}

/// A report that could not be made: the ledger, or the API's usage.
#[derive(Debug)]
pub enum ReportError {
    Ledger(LedgerError),
    Api(Error),
}

impl From<LedgerError> for ReportError {
    fn from(error: LedgerError) -> Self {
        ReportError::Ledger(error)
    }
}

impl From<Error> for ReportError {
    fn from(error: Error) -> Self {
        ReportError::Api(error)
    }
}

/// Compares the ledger's charges with the API's usage summary and events.
pub fn reconcile(
    items: &[Item],
    days: u32,
    summary: &UsageSummary,
    events: &UsageEvents,
) -> Reconciliation {
    let by_job: BTreeMap<&str, &Item> = items
        .iter()
        .filter_map(|item| item.job_id.as_deref().map(|job| (job, item)))
        .collect();
    let mut seen: BTreeMap<String, f64> = BTreeMap::new();
    let mut matched = 0;
    for event in &events.events {
        let Some(job) = event.job_id.as_deref() else {
            continue;
        };
        if !by_job.contains_key(job) {
            continue;
        }
        matched += 1;
        // Charged counts as spent; a refund gives the reservation back (spent 0).
        let credits = event.credits.unwrap_or(0.0);
        match event.event.as_deref() {
            Some("job.charged") => *seen.entry(job.to_owned()).or_default() += credits,
            Some("job.refunded") => {
                seen.entry(job.to_owned()).or_default();
            }
            _ => {}
        }
    }
    let differences = seen
        .iter()
        .filter_map(|(job, events)| {
            let ledger = by_job[job.as_str()].credits_charged.unwrap_or(0.0);
            ((ledger - events).abs() > 1e-6).then(|| (job.clone(), ledger, *events))
        })
        .collect();
    Reconciliation {
        days,
        ledger_charged: items.iter().filter_map(|i| i.credits_charged).sum::<f64>() + 0.0,
        summary_credits_used: summary.credits_used,
        summary_jobs: summary.total_jobs,
        ledger_jobs: by_job.len() as u64,
        events_matched: matched,
        differences,
    }
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |s| format!("{s:.2} s"))
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# SLA baseline: batch {}\n\n{} items. Processing time is from the job's start to its end as the ledger saw it.\n\n",
            self.batch, self.items
        );
        out.push_str("| model | jobs | completed | failed | p50 | p95 | credits / video min | failure codes |\n|---|---:|---:|---:|---:|---:|---:|---|\n");
        for m in &self.models {
            let failures: Vec<String> = m
                .failures
                .iter()
                .map(|(c, n)| format!("{c} x{n}"))
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                m.model,
                m.jobs,
                m.completed,
                m.failed,
                seconds(m.p50_seconds),
                seconds(m.p95_seconds),
                m.credits_per_video_minute
                    .map_or_else(|| "-".into(), |c| format!("{c:.1}")),
                if failures.is_empty() {
                    "-".into()
                } else {
                    failures.join(", ")
                },
            ));
        }
        out.push_str(&format!(
            "\nEstimate against charge over completed jobs: {:+.1} credits.\n",
            self.estimate_gap
        ));
        if let Some(usage) = &self.usage {
            out.push_str(&format!(
                "\n## Usage reconciliation ({} days)\n\n| | credits | jobs |\n|---|---:|---:|\n| ledger (this batch) | {:.1} | {} |\n| API usage summary (the key, whole period) | {:.1} | {} |\n\nUsage events matched to this batch's jobs: {}. Differences: {}.\n",
                usage.days,
                usage.ledger_charged,
                usage.ledger_jobs,
                usage.summary_credits_used,
                usage.summary_jobs,
                usage.events_matched,
                if usage.differences.is_empty() {
                    "none".to_owned()
                } else {
                    usage
                        .differences
                        .iter()
                        .map(|(job, ledger, api)| format!("{job}: ledger {ledger}, events {api}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                }
            ));
        }
        out
    }

    /// The report as one HTML page: the table and an SVG bar chart of p50/p95 per model.
    pub fn html(&self) -> String {
        let markdown_rows: String = self
            .models
            .iter()
            .map(|m| {
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&m.model),
                    m.jobs,
                    m.completed,
                    m.failed,
                    seconds(m.p50_seconds),
                    seconds(m.p95_seconds),
                    m.credits_per_video_minute
                        .map_or_else(|| "-".into(), |c| format!("{c:.1}")),
                )
            })
            .collect();
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>SLA baseline: {batch}</title>\
             <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;text-align:right}}td:first-child{{text-align:left}}</style></head>\
             <body><h1>SLA baseline: batch {batch}</h1><p>{items} items.</p>\
             <table><tr><th>model</th><th>jobs</th><th>completed</th><th>failed</th><th>p50</th><th>p95</th><th>credits / video min</th></tr>{markdown_rows}</table>\
             <h2>Processing time per model</h2>{svg}<pre>{md}</pre></body></html>\n",
            batch = escape(&self.batch),
            items = self.items,
            svg = self.svg(),
            md = escape(&self.markdown()),
        )
    }

    /// Bars of p50 (dark) and p95 (light) seconds per model.
    pub fn svg(&self) -> String {
        let width = 640.0;
        let row = 36.0;
        let height = 30.0 + row * self.models.len().max(1) as f64;
        let longest = self
            .models
            .iter()
            .filter_map(|m| m.p95_seconds.or(m.p50_seconds))
            .fold(0.0_f64, f64::max)
            .max(1e-9);
        let scale = (width - 200.0) / longest;
        let mut bars = String::new();
        for (i, m) in self.models.iter().enumerate() {
            let y = 20.0 + row * i as f64;
            let p95 = m.p95_seconds.unwrap_or(0.0) * scale;
            let p50 = m.p50_seconds.unwrap_or(0.0) * scale;
            bars.push_str(&format!(
                "<text x=\"0\" y=\"{ty}\" font-size=\"13\">{name}</text>\
                 <rect x=\"90\" y=\"{y}\" width=\"{p95:.1}\" height=\"14\" fill=\"#9ecae1\"><title>p95 {p95s}</title></rect>\
                 <rect x=\"90\" y=\"{y}\" width=\"{p50:.1}\" height=\"14\" fill=\"#3182bd\"><title>p50 {p50s}</title></rect>\
                 <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"12\">{p50s} / {p95s}</text>",
                ty = y + 12.0,
                name = escape(&m.model),
                tx = 96.0 + p95.max(p50),
                p50s = seconds(m.p50_seconds),
                p95s = seconds(m.p95_seconds),
            ));
        }
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"p50 and p95 processing seconds per model\">{bars}</svg>"
        )
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&sorted, 0.5), Some(5.0));
        assert_eq!(percentile(&sorted, 0.95), Some(10.0));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn markup_in_a_model_name_is_escaped() {
        let report = Report {
            batch: "b".into(),
            models: vec![ModelBaseline {
                model: "<script>".into(),
                ..ModelBaseline::default()
            }],
            ..Report::default()
        };
        assert!(!report.html().contains("<script>"));
        assert!(report.svg().contains("&lt;script&gt;"));
    }
}
