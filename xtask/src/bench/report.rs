//! `docs/benchmarks.md`: the tables and the goal checks are generated between
//! `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` markers; the prose around them is written
//! by people (why a figure is what it is) and kept as it is.

use std::collections::BTreeMap;

use serde_json::Value;

/// The results, by file stem (`percall`, `coldstart`, ...).
pub type Results = BTreeMap<&'static str, Value>;

pub(super) fn num(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

fn find<'a>(list: &'a Value, name: &str) -> Result<&'a Value, String> {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item["name"] == name))
        .ok_or_else(|| format!("no result named {name:?}"))
}

fn ratio(ours: f64, theirs: f64) -> String {
    format!("{:.2}x", ours / theirs)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// One goal of the issue and how this run measured against it.
pub struct Goal {
    pub goal: &'static str,
    pub measured: String,
    pub met: bool,
}

fn goals(results: &Results) -> Result<Vec<Goal>, String> {
    let mut goals = Vec::new();
    let percall = &results["percall"];
    let median = |language: &str, name: &str| -> Result<f64, String> {
        Ok(num(
            &find(&percall[language]["contenders"], name)?["median_us"],
        ))
    };
    let python = median("python", "removebgvideo")?;
    let httpx = median("python", "httpx.Client")?;
    let requests = median("python", "requests (no session)")?;
    goals.push(Goal {
        goal: "Python per call <= 0.5x httpx.Client",
        measured: format!("{} ({python:.0} vs {httpx:.0} us)", ratio(python, httpx)),
        met: python <= 0.5 * httpx,
    });
    goals.push(Goal {
        goal: "Python per call <= 0.25x requests without a session",
        measured: format!(
            "{} ({python:.0} vs {requests:.0} us)",
            ratio(python, requests)
        ),
        met: python <= 0.25 * requests,
    });
    let node = median("node", "removebgvideo")?;
    let fetch = median("node", "fetch")?;
    goals.push(Goal {
        goal: "Node per call <= 1.0x fetch",
        measured: format!("{} ({node:.0} vs {fetch:.0} us)", ratio(node, fetch)),
        met: node <= fetch,
    });
    let cold = &results["coldstart"]["contenders"];
    let ours = find(cold, "python: import removebgvideo")?;
    let theirs = find(cold, "python: import requests")?;
    let (ours_wall, theirs_wall) = (num(&ours["median_ms"]), num(&theirs["median_ms"]));
    let (ours_import, theirs_import) = (num(&ours["import_ms"]), num(&theirs["import_ms"]));
    goals.push(Goal {
        goal: "Import <= 0.5x `import requests`",
        measured: format!(
            "{} of the import itself ({ours_import:.1} vs {theirs_import:.1} ms); {} of the whole process ({ours_wall:.0} vs {theirs_wall:.0} ms)",
            ratio(ours_import, theirs_import),
            ratio(ours_wall, theirs_wall)
        ),
        met: ours_import <= 0.5 * theirs_import,
    });
    let policies = results["polling"]["policies"]
        .as_array()
        .ok_or("polling: no policies")?;
    let (first, others) = policies.split_first().ok_or("polling: empty")?;
    let fixed_two = find(&results["polling"]["policies"], "fixed 2 s (official SDKs)")?;
    let fewest = others
        .iter()
        .map(|p| num(&p["polls_mean"]))
        .fold(f64::INFINITY, f64::min);
    goals.push(Goal {
        goal: "Polling: fewer polls than every other policy, mean lag <= fixed 2 s",
        measured: format!(
            "{:.1} polls per job (next best {fewest:.1}); mean lag {:.2} s vs {:.2} s",
            num(&first["polls_mean"]),
            num(&first["lag_mean_s"]),
            num(&fixed_two["lag_mean_s"])
        ),
        met: num(&first["polls_mean"]) < fewest
            && num(&first["lag_mean_s"]) <= num(&fixed_two["lag_mean_s"]),
    });
    let webhook_flow = |mode: &str, outcome: &str| -> Result<&Value, String> {
        results["webhooks"]["flows"]
            .as_array()
            .and_then(|f| {
                f.iter()
                    .find(|x| x["mode"] == mode && x["outcome"] == outcome)
            })
            .ok_or_else(|| format!("webhooks: no {mode} / {outcome}"))
    };
    let outcomes = ["completed", "failed"];
    let mut lag = (String::new(), true);
    let mut requests = (String::new(), true);
    let mut dropped = (String::new(), true);
    for outcome in outcomes {
        let hooked = webhook_flow("webhooks", outcome)?;
        let alone = webhook_flow("polling alone", outcome)?;
        let lost = webhook_flow("webhooks, every delivery dropped", outcome)?;
        let all_true = |f: &Value| f["true_state"] == f["jobs"];
        let separator = if outcome == "completed" { "" } else { "; " };
        lag.0 += &format!(
            "{separator}{outcome}: p95 {:.0} ms",
            num(&hooked["lag_p95_ms"])
        );
        lag.1 &= num(&hooked["lag_p95_ms"]) <= 100.0 && all_true(hooked);
        requests.0 += &format!(
            "{separator}{outcome}: {:.2}",
            num(&hooked["requests_per_job"])
        );
        requests.1 &= num(&hooked["requests_per_job"]) <= 3.0;
        dropped.0 += &format!(
            "{separator}{outcome}: lag mean {:.0} vs {:.0} ms, p95 {:.0} vs {:.0} ms, {:.2} vs {:.2} requests/job",
            num(&lost["lag_mean_ms"]),
            num(&alone["lag_mean_ms"]),
            num(&lost["lag_p95_ms"]),
            num(&alone["lag_p95_ms"]),
            num(&lost["requests_per_job"]),
            num(&alone["requests_per_job"]),
        );
        dropped.1 &= num(&lost["lag_mean_ms"]) <= num(&alone["lag_mean_ms"])
            && num(&lost["lag_p95_ms"]) <= num(&alone["lag_p95_ms"])
            && num(&lost["requests_per_job"]) <= num(&alone["requests_per_job"])
            && all_true(lost);
    }
    goals.push(Goal {
        goal: "Webhooks: detection lag <= 100 ms at p95, success and failure",
        measured: lag.0,
        met: lag.1,
    });
    goals.push(Goal {
        goal: "Webhooks: <= 3 HTTP requests per job",
        measured: requests.0,
        met: requests.1,
    });
    goals.push(Goal {
        goal: "Webhooks, every delivery dropped: no worse than polling alone (lag mean and p95, requests)",
        measured: dropped.0,
        met: dropped.1,
    });
    let download = &results["download"];
    let rust = num(&find(&download["contenders"], "removebgvideo (Rust)")?["throughput_mib_s"]);
    let curl = num(&find(&download["contenders"], "curl")?["throughput_mib_s"]);
    let curl_synced = num(&find(&download["contenders"], "curl, then fsync")?["throughput_mib_s"]);
    let sizes: Vec<(f64, f64)> = download["rss_by_size"]
        .as_array()
        .ok_or("download: no sizes")?
        .iter()
        .filter(|r| r["name"] == "removebgvideo (Rust)")
        .map(|r| (num(&r["size_bytes"]), num(&r["peak_rss_mib"])))
        .collect();
    let (small, large) = (
        sizes.first().ok_or("download: no sizes")?,
        sizes.last().ok_or("download: no sizes")?,
    );
    // "Flat": a file many times larger moves peak memory by no more than 10 % (or 2 MiB).
    let flat = large.1 - small.1 <= (small.1 * 0.1).max(2.0);
    goals.push(Goal {
        goal: "Download >= 0.8x curl, peak RSS independent of size",
        measured: format!(
            "{} ({rust:.0} vs {curl:.0} MiB/s; {} of curl then fsync); peak RSS {:.1} MiB at {:.0} MiB, {:.1} MiB at {:.0} MiB",
            ratio(rust, curl),
            ratio(rust, curl_synced),
            small.1,
            small.0 / 1_048_576.0,
            large.1,
            large.0 / 1_048_576.0
        ),
        met: rust >= 0.8 * curl && flat,
    });
    let flows = &results["batch"]["flows"];
    let flow = |language: &str, name: &str| -> Result<&Value, String> {
        flows
            .as_array()
            .and_then(|f| {
                f.iter()
                    .find(|x| x["language"] == language && x["flow"] == name)
            })
            .ok_or_else(|| format!("batch: no {language} {name}"))
    };
    let sdk = num(&flow("python", "removebgvideo")?["cpu_s_per_job"]);
    let official = num(&flow("python", "requests (official SDK style)")?["cpu_s_per_job"]);
    goals.push(Goal {
        goal: "Batch: CPU per job <= 0.25x the requests-based flow",
        measured: format!(
            "{} ({:.1} vs {:.1} ms per job, Python)",
            ratio(sdk, official),
            sdk * 1000.0,
            official * 1000.0
        ),
        met: sdk <= 0.25 * official,
    });
    goals.extend(super::many_report::goals(&results["many"]));
    goals.extend(super::runner_report::goals(&results["runner"]));
    goals.extend(super::workers::goals(&results["workers"]));
    Ok(goals)
}

/// One table row per item of a JSON list (none when it is not a list).
pub(super) fn rows_of(list: &Value, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    list.as_array()
        .map(|items| items.iter().map(row).collect())
        .unwrap_or_default()
}

pub(super) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out += &format!("|{}\n", header.iter().map(|_| "---|").collect::<String>());
    for row in rows {
        out += &format!("| {} |\n", row.join(" | "));
    }
    out
}

fn percall_section(percall: &Value) -> String {
    let mut out = String::new();
    for (language, title) in [("python", "Python"), ("node", "Node"), ("rust", "Rust")] {
        let contenders = percall[language]["contenders"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ours = contenders
            .iter()
            .find(|c| c["name"] == "removebgvideo")
            .map(|c| num(&c["median_us"]))
            .unwrap_or(f64::NAN);
        let rows = contenders
            .iter()
            .map(|c| {
                let us = num(&c["median_us"]);
                vec![
                    format!("{}", c["name"].as_str().unwrap_or_default()),
                    format!("{us:.0}"),
                    ratio(ours, us),
                ]
            })
            .collect();
        out += &format!(
            "**{title}** ({} calls x {} rounds, median of the rounds' means)\n\n",
            percall[language]["calls"], percall[language]["rounds"]
        );
        out += &table(&["contender", "us per call", "removebgvideo / it"], rows);
        out += "\n";
    }
    out
}

fn coldstart_section(coldstart: &Value) -> String {
    let rows = rows_of(&coldstart["contenders"], |c| {
        vec![
            format!("`{}`", c["name"].as_str().unwrap_or_default()),
            format!("{:.1}", num(&c["median_ms"])),
            format!("{:.1}", num(&c["import_ms"])),
        ]
    });
    format!(
        "Median of {} runs of each process, interleaved.\n\n{}",
        coldstart["runs"],
        table(
            &["command", "process ms", "minus the empty script, ms"],
            rows
        )
    )
}

fn polling_section(polling: &Value) -> String {
    let mut out = format!(
        "{} jobs per workload (seed {}), virtual time.\n\n",
        polling["jobs"], polling["seed"]
    );
    for workload in polling["workloads"].as_array().cloned().unwrap_or_default() {
        let rows = rows_of(&workload["policies"], |p| {
            vec![
                p["name"].as_str().unwrap_or_default().to_owned(),
                format!("{:.1}", num(&p["polls_mean"])),
                format!("{:.0}", num(&p["polls_p95"])),
                format!("{:.2}", num(&p["lag_mean_s"])),
                format!("{:.2}", num(&p["lag_p95_s"])),
                format!("{:.2}", num(&p["lag_max_s"])),
            ]
        });
        out += &format!(
            "**{}**\n\n",
            workload["workload"].as_str().unwrap_or_default()
        );
        out += &table(
            &[
                "policy",
                "polls/job",
                "p95",
                "lag mean s",
                "lag p95 s",
                "lag max s",
            ],
            rows,
        );
        out += "\n";
    }
    out
}

fn webhooks_section(webhooks: &Value) -> String {
    let rows = rows_of(&webhooks["flows"], |f| {
        vec![
            f["outcome"].as_str().unwrap_or_default().to_owned(),
            f["mode"].as_str().unwrap_or_default().to_owned(),
            format!("{} of {}", f["true_state"], f["jobs"]),
            format!("{:.0}", num(&f["lag_mean_ms"])),
            format!("{:.0}", num(&f["lag_p95_ms"])),
            format!("{:.0}", num(&f["lag_max_ms"])),
            format!("{:.2}", num(&f["requests_per_job"])),
        ]
    });
    format!(
        "{} jobs per row (seed {}), sandbox clock x{}.\n\n{}",
        webhooks["jobs"],
        webhooks["seed"],
        webhooks["speed"],
        table(
            &[
                "outcome",
                "how the end is learnt",
                "in the true state",
                "lag mean ms",
                "lag p95 ms",
                "lag max ms",
                "requests/job",
            ],
            rows
        )
    )
}

fn batch_section(batch: &Value) -> String {
    let rows = rows_of(&batch["flows"], |f| {
        vec![
            format!(
                "{}: {}",
                f["language"].as_str().unwrap_or_default(),
                f["flow"].as_str().unwrap_or_default()
            ),
            format!("{}", f["jobs"]),
            format!("{:.1}", num(&f["wall_s"])),
            format!("{:.2}", num(&f["cpu_s_per_job"]) * 1000.0),
            format!("{:.1}", num(&f["requests_per_job"])),
            format!("{:.0}", num(&f["peak_rss_mib"])),
        ]
    });
    format!(
        "Sandbox clock x{}, video `{}`; medians of {} rounds.\n\n{}",
        batch["speed"],
        batch["video_url"].as_str().unwrap_or_default(),
        batch["rounds"],
        table(
            &[
                "flow",
                "jobs",
                "wall s",
                "CPU ms/job",
                "requests/job",
                "peak RSS MiB"
            ],
            rows
        )
    )
}

fn download_section(download: &Value) -> String {
    let contenders = rows_of(&download["contenders"], |c| {
        vec![
            c["name"].as_str().unwrap_or_default().to_owned(),
            format!("{:.0}", num(&c["throughput_mib_s"])),
            c["peak_rss_mib"]
                .as_f64()
                .map(|m| format!("{m:.1}"))
                .unwrap_or_else(|| "-".into()),
        ]
    });
    let sizes = rows_of(&download["rss_by_size"], |r| {
        vec![
            r["name"].as_str().unwrap_or_default().to_owned(),
            format!("{:.0}", num(&r["size_bytes"]) / 1_048_576.0),
            format!("{:.1}", num(&r["peak_rss_mib"])),
        ]
    });
    format!(
        "{:.0} MiB output, median of {} runs.\n\n{}\n{}",
        num(&download["size_bytes"]) / 1_048_576.0,
        download["runs"],
        table(&["client", "MiB/s", "peak RSS MiB"], contenders),
        table(&["client", "output MiB", "peak RSS MiB"], sizes)
    )
}

fn meta_section(meta: &Value) -> String {
    let rows = meta
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    vec![
                        k.clone(),
                        v.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| v.to_string()),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(&["", ""], rows)
}

/// Every generated section, by marker name.
pub fn sections(results: &Results) -> Result<Vec<(&'static str, String)>, String> {
    let goal_rows = goals(results)?
        .into_iter()
        .map(|g| vec![g.goal.to_owned(), g.measured, verdict(g.met).to_owned()])
        .collect();
    Ok(vec![
        ("run", meta_section(&results["meta"])),
        ("goals", table(&["goal", "measured", ""], goal_rows)),
        ("percall", percall_section(&results["percall"])),
        ("coldstart", coldstart_section(&results["coldstart"])),
        ("polling", polling_section(&results["polling"])),
        ("webhooks", webhooks_section(&results["webhooks"])),
        ("batch", batch_section(&results["batch"])),
        ("download", download_section(&results["download"])),
        ("many", super::many_report::section(&results["many"])),
        (
            "runner",
            super::runner_report::section(&results["runner"], &results["batch"]),
        ),
        ("workers", super::workers::section(&results["workers"])),
    ])
}

/// `page` with each marked section replaced; a missing marker is an error, so a section can
/// never silently stop being updated.
pub fn render(page: &str, sections: &[(&'static str, String)]) -> Result<String, String> {
    let mut page = page.to_owned();
    for (name, body) in sections {
        let open = format!("<!-- bench:{name} -->");
        let close = format!("<!-- /bench:{name} -->");
        let start = page
            .find(&open)
            .ok_or_else(|| format!("docs/benchmarks.md has no {open} marker"))?
            + open.len();
        let end = page[start..]
            .find(&close)
            .ok_or_else(|| format!("docs/benchmarks.md has no {close} marker"))?
            + start;
        page.replace_range(start..end, &format!("\n{}\n", body.trim_end()));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_replaces_only_between_markers_and_requires_them() {
        let page = "intro\n<!-- bench:a -->\nold\n<!-- /bench:a -->\nwhy\n";
        let out = render(page, &[("a", "new table".into())]).unwrap();
        assert_eq!(
            out,
            "intro\n<!-- bench:a -->\nnew table\n<!-- /bench:a -->\nwhy\n"
        );
        assert!(
            render(page, &[("b", String::new())])
                .unwrap_err()
                .contains("bench:b")
        );
    }
}
