//! The playground report: JSON, Markdown, and the aligned table printed at the end.

use std::time::Duration;

use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use super::Target;
use super::checks::{Check, Status};
use super::scenarios::{JobRecord, ScenarioSummary};
use crate::args::PlaygroundArgs;

/// The per-model SLA baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    pub model: String,
    pub processing_seconds_avg: Option<f64>,
    pub credits_per_run: Option<f64>,
}

/// The checks table's width when no terminal says: evidence holds request ids and figures that
/// are read, not scrolled.
const CHECKS_WIDTH: u16 = 160;

/// A check that was not run, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub name: &'static str,
    pub reason: String,
}

/// Everything the playground found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub base_url: String,
    pub embedded_sandbox: bool,
    /// The sandbox's clock speed (processing times are wall-clock seconds at that speed).
    pub sandbox_speed: Option<f64>,
    pub runs_per_model: u32,
    pub duration_seconds: f64,
    pub checks: Vec<Check>,
    /// The checks not run here, and why (also in `checks`, with status `skipped`).
    pub skipped_checks: Vec<Skipped>,
    pub scenarios: Vec<ScenarioSummary>,
    pub sla_baseline: Vec<Baseline>,
    pub jobs: Vec<JobRecord>,
}

fn seconds(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.2}"))
        .unwrap_or_else(|| "-".into())
}

fn number(value: Option<f64>) -> String {
    value
        .map(|v| format!("{v:.0}"))
        .unwrap_or_else(|| "-".into())
}

impl Report {
    pub(super) fn new(
        target: &Target,
        args: &PlaygroundArgs,
        checks: Vec<Check>,
        scenarios: Vec<ScenarioSummary>,
        jobs: Vec<JobRecord>,
        took: Duration,
    ) -> Self {
        let sla_baseline = scenarios
            .iter()
            .map(|s| Baseline {
                model: s.model.clone(),
                processing_seconds_avg: s.processing_seconds_avg,
                credits_per_run: s.credits_per_run,
            })
            .collect();
        let skipped_checks = checks
            .iter()
            .filter(|c| c.status == Status::Skipped)
            .map(|c| Skipped {
                name: c.name,
                reason: c.evidence.clone(),
            })
            .collect();
        Report {
            skipped_checks,
            base_url: target.base_url.clone(),
            embedded_sandbox: target.sandbox.is_some(),
            sandbox_speed: target.sandbox.as_ref().map(|_| args.speed),
            runs_per_model: args.runs,
            duration_seconds: took.as_secs_f64(),
            checks,
            scenarios,
            sla_baseline,
            jobs,
        }
    }

    fn status(status: &Status) -> &'static str {
        match status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skipped => "skipped",
        }
    }

    /// The checks as a table, the evidence wrapped to the terminal (160 columns off one).
    pub fn checks_table(&self) -> Table {
        let mut table = Table::new();
        table.set_content_arrangement(ContentArrangement::Dynamic);
        if table.width().is_none() {
            table.set_width(CHECKS_WIDTH);
        }
        table.set_header(["check", "result", "evidence"]);
        for check in &self.checks {
            table.add_row([
                check.name,
                Self::status(&check.status),
                check.evidence.as_str(),
            ]);
        }
        table
    }

    /// The scenarios and the SLA baseline as one aligned table.
    pub fn scenarios_table(&self) -> Table {
        let mut table = Table::new();
        table.set_header([
            "model",
            "scenario",
            "ok/runs",
            "avg s",
            "p50 s",
            "p95 s",
            "credits/run",
            "format",
            "avg output bytes",
        ]);
        for s in &self.scenarios {
            table.add_row([
                s.model.clone(),
                s.scenario.clone(),
                format!("{}/{}", s.succeeded, s.runs),
                seconds(s.processing_seconds_avg),
                seconds(s.processing_seconds_p50),
                seconds(s.processing_seconds_p95),
                number(s.credits_per_run),
                s.output_format.clone(),
                number(s.output_bytes_avg),
            ]);
        }
        table
    }

    fn clock_note(&self) -> String {
        match self.sandbox_speed {
            Some(speed) => format!(
                "embedded sandbox at {} with its clock {speed}x faster than real time: processing times are wall-clock seconds at that speed",
                self.base_url
            ),
            None => format!(
                "server {}: processing times are wall-clock seconds from create to completed",
                self.base_url
            ),
        }
    }

    /// One line naming the skipped checks and why, or nothing.
    fn skipped_note(&self) -> String {
        if self.skipped_checks.is_empty() {
            return String::new();
        }
        let list: Vec<String> = self
            .skipped_checks
            .iter()
            .map(|s| format!("{} ({})", s.name, s.reason))
            .collect();
        format!("Skipped: {}.", list.join("; "))
    }

    /// What the command prints.
    pub fn human(&self) -> String {
        let skipped = self.skipped_note();
        format!(
            "API Playground checklist ({})\n\n{}\n{}\nRecommended scenarios and SLA baseline ({} runs per model)\n{}\n\n{} jobs recorded in {:.1} s",
            self.clock_note(),
            self.checks_table(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!("{skipped}\n")
            },
            self.runs_per_model,
            self.scenarios_table(),
            self.jobs.len(),
            self.duration_seconds
        )
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# RemoveBGVideo API Playground report\n\n{}.\n\n## Integration verification\n\n| check | result | evidence |\n|---|---|---|\n",
            self.clock_note()
        );
        for c in &self.checks {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                c.name,
                Self::status(&c.status),
                c.evidence.replace('|', "\\|")
            ));
        }
        let skipped = self.skipped_note();
        if !skipped.is_empty() {
            md.push_str(&format!("\n{}\n", skipped.replace('|', "\\|")));
        }
        md.push_str("\n## Recommended scenarios\n\n| model | scenario | ok/runs | avg s | p50 s | p95 s | credits used | format | avg output bytes |\n|---|---|---|---|---|---|---|---|---|\n");
        for s in &self.scenarios {
            md.push_str(&format!(
                "| {} | {} | {}/{} | {} | {} | {} | {} | {} | {} |\n",
                s.model,
                s.scenario,
                s.succeeded,
                s.runs,
                seconds(s.processing_seconds_avg),
                seconds(s.processing_seconds_p50),
                seconds(s.processing_seconds_p95),
                s.credits_used,
                s.output_format,
                number(s.output_bytes_avg)
            ));
        }
        md.push_str("\n## SLA baseline\n\n| model | average processing s | credits per run |\n|---|---|---|\n");
        for b in &self.sla_baseline {
            md.push_str(&format!(
                "| {} | {} | {} |\n",
                b.model,
                seconds(b.processing_seconds_avg),
                number(b.credits_per_run)
            ));
        }
        md.push_str("\n## Jobs\n\n| job id | model | input | format | status | credits | request ids |\n|---|---|---|---|---|---|---|\n");
        for j in &self.jobs {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {}{} | {} | {} |\n",
                j.job_id.as_deref().unwrap_or("-"),
                j.model,
                j.input,
                j.output_format,
                j.final_status,
                j.error_code
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default(),
                number(j.credits),
                j.request_ids.join(", ")
            ));
        }
        md
    }
}
