//! The batch runner's table in `docs/benchmarks.md` and the goals for it.

use serde_json::Value;

use super::report::Goal;

const MAX_COMMIT_P99_US: f64 = 1000.0;
const MAX_LEDGER_SHARE: f64 = 0.05;
const MAX_RSS_MIB: f64 = 200.0;
const MAX_RESUME_S: f64 = 2.0;

fn num(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

fn flow<'a>(runner: &'a Value, language: &str) -> Option<&'a Value> {
    runner["flows"]
        .as_array()?
        .iter()
        .find(|f| f["language"] == language)
}

fn cell(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

/// The table: every flow, then the resume.
pub fn section(runner: &Value, batch: &Value) -> String {
    let mut out = format!(
        "{} items, {} in flight, sandbox clock x{}, video `{}`.\n\n",
        runner["items"],
        runner["in_flight"],
        runner["speed"],
        runner["video_url"].as_str().unwrap_or_default()
    );
    out += "| flow | wall s | CPU ms/job | requests/job | peak RSS MiB | ledger commits/job | commit p50 / p99 us | ledger share of CPU |\n|---|---|---|---|---|---|---|---|\n";
    for f in runner["flows"].as_array().into_iter().flatten() {
        let ledger = f.get("ledger_commits_per_job").is_some();
        out += &format!(
            "| {}: {} | {} | {} | {} | {} | {} | {} | {} |\n",
            f["language"].as_str().unwrap_or_default(),
            f["flow"].as_str().unwrap_or_default(),
            cell(&f["wall_s"], 1),
            cell(&f["cpu_ms_per_job"], 2),
            cell(&f["requests_per_job"], 1),
            cell(&f["peak_rss_mib"], 0),
            if ledger {
                cell(&f["ledger_commits_per_job"], 1)
            } else {
                "- (a JSON file)".into()
            },
            if ledger {
                format!(
                    "{} / {}",
                    cell(&f["ledger_commit_p50_us"], 0),
                    cell(&f["ledger_commit_p99_us"], 0)
                )
            } else {
                "-".into()
            },
            if ledger {
                format!("{:.1} %", num(&f["ledger_cpu_share"]) * 100.0)
            } else {
                "-".into()
            },
        );
    }
    if let Some(threads) = batch["flows"].as_array().and_then(|flows| {
        flows
            .iter()
            .find(|f| f["language"] == "python" && f["flow"] == "removebgvideo")
    }) {
        out += &format!(
            "| python: 500-job thread flow (section 4) | {} | {:.2} | {} | {} | - | - | - |\n",
            cell(&threads["wall_s"], 1),
            num(&threads["cpu_s_per_job"]) * 1000.0,
            cell(&threads["requests_per_job"], 1),
            cell(&threads["peak_rss_mib"], 0),
        );
    }
    let resume = &runner["resume"];
    out += &format!(
        "\nResume with {} jobs in flight: the first poll {} s after the resume began, every job polled again within {} s (peak RSS {} MiB).\n",
        resume["items"],
        cell(&resume["resume_to_first_poll_s"], 2),
        cell(&resume["resume_to_every_poll_s"], 2),
        cell(&resume["peak_rss_mib"], 0),
    );
    out
}

pub fn goals(runner: &Value) -> Vec<Goal> {
    let ours = flow(runner, "rust").cloned().unwrap_or(Value::Null);
    let p99 = num(&ours["ledger_commit_p99_us"]);
    let share = num(&ours["ledger_cpu_share"]);
    let rss = num(&ours["peak_rss_mib"]);
    let resume = num(&runner["resume"]["resume_to_every_poll_s"]);
    vec![
        Goal {
            goal: "Batch: ledger cost per transition <= 1 ms at p99",
            measured: format!(
                "{:.0} us (p50 {:.0} us)",
                p99,
                num(&ours["ledger_commit_p50_us"])
            ),
            met: p99 <= MAX_COMMIT_P99_US,
        },
        Goal {
            goal: "Batch: the ledger <= 5 % of the batch's CPU",
            measured: format!("{:.1} %", share * 100.0),
            met: share <= MAX_LEDGER_SHARE,
        },
        Goal {
            goal: "Batch: peak RSS <= 200 MiB at 10,000 items",
            measured: format!("{rss:.0} MiB ({} items)", runner["items"]),
            met: rss <= MAX_RSS_MIB,
        },
        Goal {
            goal: "Batch: resume-to-first-poll <= 2 s at 10,000 items",
            measured: format!(
                "{resume:.2} s until every job of {} was polled",
                runner["resume"]["items"]
            ),
            met: resume <= MAX_RESUME_S,
        },
    ]
}
