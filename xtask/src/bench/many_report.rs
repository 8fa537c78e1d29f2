//! The many-jobs section of `docs/benchmarks.md`: one table per run, and the goals.
//! A contender that failed (crashed, overran, lost jobs) shows as such in its row and misses
//! every goal it is judged by; a figure it could not measure is `-`.

use serde_json::Value;

use super::report::Goal;

/// Most OS threads a process may use while waiting for 10,000 jobs.
const MAX_THREADS: f64 = 16.0;
const MAX_RSS_MIB: f64 = 150.0;
/// CPU per job of the Python SDK over the asyncio + httpx contender's.
const MAX_CPU_RATIO: f64 = 0.3;
const MAX_STALL_MS: f64 = 20.0;
const MAX_SHARE_429: f64 = 0.02;

fn run(many: &Value, rate_limited: bool) -> Option<&Value> {
    many["runs"]
        .as_array()?
        .iter()
        .find(|run| run["rate_limited"] == rate_limited)
}

fn find<'a>(run: Option<&'a Value>, language: &str, role: &str) -> Option<&'a Value> {
    run?["rows"]
        .as_array()?
        .iter()
        .find(|row| row["language"] == language && row["role"] == role)
}

fn figure(value: &Value, decimals: usize) -> String {
    value
        .as_f64()
        .map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "-".into())
}

fn title(language: &str) -> &str {
    match language {
        "python" => "Python",
        "node" => "Node",
        _ => "Rust",
    }
}

/// One figure of one SDK row against a ceiling: `(measured, met)`. A row without the figure
/// (it failed before measuring) is a miss that says why.
fn at_most(row: Option<&Value>, field: &str, ceiling: f64, unit: &str) -> (String, bool) {
    match row.map(|r| (r[field].as_f64(), r)) {
        Some((Some(value), _)) => (format!("{value:.0}{unit}"), value <= ceiling),
        Some((None, r)) => (
            format!("failed ({})", r["failure"].as_str().unwrap_or("no figure")),
            false,
        ),
        None => ("no result".into(), false),
    }
}

/// The goals about Python's and Node's SDK rows of the all-at-once run, one line each.
fn per_language(many: &Value, goal: &'static str, field: &str, ceiling: f64, unit: &str) -> Goal {
    let all = run(many, false);
    let (mut measured, mut met) = (Vec::new(), true);
    for language in ["python", "node"] {
        let (text, ok) = at_most(find(all, language, "sdk"), field, ceiling, unit);
        measured.push(format!("{} {text}", title(language)));
        met &= ok;
    }
    let jobs = all.map(|r| r["jobs"].to_string()).unwrap_or_default();
    Goal {
        goal,
        measured: format!("{} ({jobs} waits)", measured.join(", ")),
        met,
    }
}

pub fn goals(many: &Value) -> Vec<Goal> {
    let mut goals = vec![
        per_language(
            many,
            "Many jobs: peak OS threads <= 16 (Python and Node SDK)",
            "peak_threads",
            MAX_THREADS,
            "",
        ),
        per_language(
            many,
            "Many jobs: peak RSS <= 150 MiB (Python and Node SDK)",
            "peak_rss_mib",
            MAX_RSS_MIB,
            " MiB",
        ),
        per_language(
            many,
            "Many jobs: event-loop stall <= 20 ms (Python and Node SDK)",
            "stall_max_ms",
            MAX_STALL_MS,
            " ms",
        ),
    ];
    let all = run(many, false);
    let ours = find(all, "python", "sdk").and_then(|r| r["cpu_s_per_job"].as_f64());
    let theirs = find(all, "python", "alternative").and_then(|r| r["cpu_s_per_job"].as_f64());
    goals.push(match (ours, theirs) {
        (Some(ours), Some(theirs)) if theirs > 0.0 => Goal {
            goal: "Many jobs: CPU per job <= 0.3x asyncio + httpx (Python)",
            measured: format!(
                "{:.2}x ({:.2} vs {:.2} ms per job)",
                ours / theirs,
                ours * 1000.0,
                theirs * 1000.0
            ),
            met: ours <= MAX_CPU_RATIO * theirs,
        },
        _ => Goal {
            goal: "Many jobs: CPU per job <= 0.3x asyncio + httpx (Python)",
            measured: "a contender failed before measuring".into(),
            met: false,
        },
    });
    let mut states = Vec::new();
    let mut all_true = true;
    for language in ["python", "node", "rust"] {
        let mut counts = Vec::new();
        for rate_limited in [false, true] {
            match find(run(many, rate_limited), language, "sdk") {
                Some(row) => {
                    let jobs = row["jobs"].as_u64().unwrap_or(0);
                    let lost = row["not_ended"].as_u64().unwrap_or(jobs);
                    all_true &= row["ok"] == true;
                    counts.push(format!("{}/{jobs}", jobs.saturating_sub(lost)));
                }
                None => {
                    all_true = false;
                    counts.push("no result".into());
                }
            }
        }
        states.push(format!("{} {}", title(language), counts.join(" and ")));
    }
    goals.push(Goal {
        goal: "Many jobs: every job ends in its true state (SDK, both runs)",
        measured: states.join("; "),
        met: all_true,
    });
    let limited = run(many, true);
    let mut shares = Vec::new();
    let mut within = true;
    for language in ["python", "node", "rust"] {
        match find(limited, language, "sdk") {
            Some(row) => {
                let share = row["share_429"].as_f64().unwrap_or(f64::NAN);
                within &= share <= MAX_SHARE_429 && row["ok"] == true;
                let lost = row["not_ended"].as_u64().unwrap_or(0);
                shares.push(format!(
                    "{} {:.1} % ({} of {}{})",
                    title(language),
                    share * 100.0,
                    row["rate_limited"],
                    row["requests"],
                    if lost > 0 {
                        format!(", {lost} jobs lost")
                    } else {
                        String::new()
                    }
                ));
            }
            None => {
                within = false;
                shares.push(format!("{} no result", title(language)));
            }
        }
    }
    goals.push(Goal {
        goal: "Rate-limited key: 429s <= 2 % of requests, no job lost (SDK)",
        measured: shares.join(", "),
        met: within,
    });
    goals
}

fn ratio_to_alternative(run: &Value, row: &Value) -> String {
    if row["role"] != "sdk" {
        return "-".into();
    }
    let theirs = find(
        Some(run),
        row["language"].as_str().unwrap_or_default(),
        "alternative",
    );
    match (
        row["cpu_s_per_job"].as_f64(),
        theirs.and_then(|r| r["cpu_s_per_job"].as_f64()),
    ) {
        // CPU is read in the kernel's 10 ms ticks: a tiny run may show none.
        (Some(ours), Some(theirs)) if theirs > 0.0 => format!("{:.2}x", ours / theirs),
        _ => "-".into(),
    }
}

fn table_of(run: &Value) -> String {
    let header = [
        "contender",
        "jobs in their true state",
        "wall s",
        "CPU ms/job",
        "CPU vs the alternative",
        "peak RSS MiB",
        "peak threads",
        "requests/job",
        "429s (share)",
        "start ms",
        "longest stall ms",
    ];
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    let mut failures = Vec::new();
    for row in run["rows"].as_array().into_iter().flatten() {
        let language = row["language"].as_str().unwrap_or_default();
        let jobs = row["jobs"].as_u64().unwrap_or(0);
        let lost = row["not_ended"].as_u64().unwrap_or(jobs);
        let state = if row["ok"] == true {
            format!("{jobs}/{jobs}")
        } else {
            failures.push(format!(
                "- {language}, {}: **failed**: {}",
                row["flow"].as_str().unwrap_or_default(),
                row["failure"].as_str().unwrap_or_default()
            ));
            format!("**failed** ({}/{jobs})", jobs.saturating_sub(lost))
        };
        let cells = [
            format!(
                "{}: {}",
                title(language),
                row["flow"].as_str().unwrap_or_default()
            ),
            state,
            figure(&row["wall_s"], 1),
            row["cpu_s_per_job"]
                .as_f64()
                .map(|s| format!("{:.3}", s * 1000.0))
                .unwrap_or_else(|| "-".into()),
            ratio_to_alternative(run, row),
            figure(&row["peak_rss_mib"], 0),
            figure(&row["peak_threads"], 0),
            figure(&row["requests_per_job"], 2),
            format!(
                "{} ({:.1} %)",
                row["rate_limited"],
                row["share_429"].as_f64().unwrap_or(0.0) * 100.0
            ),
            figure(&row["start_ms"], 0),
            figure(&row["stall_max_ms"], 0),
        ];
        out += &format!("| {} |\n", cells.join(" | "));
    }
    if !failures.is_empty() {
        out += &format!("\n{}\n", failures.join("\n"));
    }
    out
}

pub fn section(many: &Value) -> String {
    let mut out = format!(
        "Sandbox clock x{}, durations seeded ({}); hand-written contenders read every {} s with {} requests in flight at most; each wait's limit {} s.\n\n",
        many["speed"], many["seed"], many["poll_seconds"], many["concurrency"], many["timeout_s"]
    );
    for run in many["runs"].as_array().into_iter().flatten() {
        let first = &run["rows"][0];
        let key = if run["rate_limited"] == true {
            format!(
                "the rate-limited key ({} requests/s, burst {})",
                many["limited_rate_per_second"], many["limited_burst"]
            )
        } else {
            "the demo key".into()
        };
        out += &format!(
            "**{} jobs, {key}** (created in {} s before each contender's waits)\n\n{}\n",
            run["jobs"],
            figure(&first["creation_s"], 1),
            table_of(run)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sdk(language: &str, threads: u64, rss: f64, stall: Option<f64>, cpu: f64) -> Value {
        json!({
            "language": language, "role": "sdk", "flow": "sdk", "ok": true, "failure": null,
            "jobs": 100, "not_ended": 0, "peak_threads": threads, "peak_rss_mib": rss,
            "stall_max_ms": stall, "cpu_s_per_job": cpu, "requests": 200, "rate_limited": 2,
            "share_429": 0.01, "wall_s": 3.0, "requests_per_job": 2.0, "creation_s": 0.2,
        })
    }

    fn many(rows: Vec<Value>, limited: Vec<Value>) -> Value {
        json!({ "runs": [
            { "rate_limited": false, "jobs": 100, "rows": rows },
            { "rate_limited": true, "jobs": 100, "rows": limited },
        ]})
    }

    fn alternative(language: &str, cpu: f64) -> Value {
        let mut row = sdk(language, 1, 60.0, Some(5.0), cpu);
        row["role"] = json!("alternative");
        row
    }

    fn verdicts(many: &Value) -> Vec<bool> {
        goals(many).into_iter().map(|g| g.met).collect()
    }

    #[test]
    fn goals_are_met_by_figures_within_their_ceilings() {
        let rows = || {
            vec![
                sdk("python", 16, 150.0, Some(20.0), 0.3),
                alternative("python", 1.0),
                sdk("node", 8, 90.0, Some(2.0), 0.1),
                sdk("rust", 8, 20.0, None, 0.1),
            ]
        };
        assert_eq!(verdicts(&many(rows(), rows())), [true; 6]);
    }

    #[test]
    fn one_figure_over_its_ceiling_or_one_failed_row_misses_its_goals() {
        let limited = || {
            vec![
                sdk("python", 1, 1.0, Some(1.0), 0.1),
                sdk("node", 1, 1.0, Some(1.0), 0.1),
                sdk("rust", 1, 1.0, None, 0.1),
            ]
        };
        // Node's 10,000 threads (one per wait), Python's 31 ms stall and CPU at 0.31x.
        let rows = vec![
            sdk("python", 65, 100.0, Some(31.0), 0.31),
            alternative("python", 1.0),
            sdk("node", 10_001, 400.0, Some(5.0), 0.1),
            sdk("rust", 1, 1.0, None, 0.1),
        ];
        let judged = goals(&many(rows, limited()));
        let met: Vec<bool> = judged.iter().map(|g| g.met).collect();
        assert_eq!(met, [false, false, false, false, true, true]);
        assert_eq!(judged[0].measured, "Python 65, Node 10001 (100 waits)");
        assert!(
            judged[3].measured.starts_with("0.31x"),
            "{}",
            judged[3].measured
        );

        // A Node SDK run that crashed has no figures: every goal of it is missed, and says so.
        let mut crashed = json!({
            "language": "node", "role": "sdk", "flow": "sdk", "ok": false, "jobs": 100,
            "not_ended": 100, "failure": "exited with signal 6", "requests": 0,
            "rate_limited": 0, "share_429": 0.0,
        });
        let rows = vec![
            sdk("python", 1, 1.0, Some(1.0), 0.1),
            alternative("python", 1.0),
            crashed.clone(),
            sdk("rust", 1, 1.0, None, 0.1),
        ];
        let judged = goals(&many(rows.clone(), limited()));
        assert!(
            judged[0]
                .measured
                .contains("Node failed (exited with signal 6)")
        );
        let met: Vec<bool> = judged.iter().map(|g| g.met).collect();
        assert_eq!(met, [false, false, false, true, false, true]);
        assert!(judged[4].measured.contains("Node 0/100 and 100/100"));

        // 429s over 2 %, or a job lost to them, miss the rate-limit goal.
        let mut limited_rows = limited();
        limited_rows[0]["share_429"] = json!(0.021);
        assert!(!verdicts(&many(rows.clone(), limited_rows))[5]);
        crashed["share_429"] = json!(0.0);
        let mut limited_rows = limited();
        limited_rows[1] = crashed;
        assert!(!verdicts(&many(rows, limited_rows))[5]);
    }

    #[test]
    fn the_table_shows_failures_and_ratios() {
        let mut python = sdk("python", 65, 100.0, Some(31.0), 0.0005);
        python["start_ms"] = json!(48.0);
        let run = json!({ "rows": [
            python,
            alternative("python", 0.002),
            { "language": "node", "role": "sdk", "flow": "client.wait", "ok": false, "jobs": 100,
              "not_ended": 100, "failure": "stopped after 660 s", "rate_limited": 0, "share_429": 0.0 },
        ]});
        let table = table_of(&run);
        assert!(
            table.contains(
                "| Python: sdk | 100/100 | 3.0 | 0.500 | 0.25x | 100 | 65 | 2.00 | 2 (1.0 %) | 48 | 31 |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| Node: client.wait | **failed** (0/100) | - | - | - | - | - |"),
            "{table}"
        );
        assert!(
            table.contains("- node, client.wait: **failed**: stopped after 660 s"),
            "{table}"
        );
    }
}
