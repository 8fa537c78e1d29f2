//! `run`: the whole flow with progress bars on a terminal, one clean line otherwise.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use removebgvideo::{CancelToken, Client, Error, Event, RunOptions, RunRequest, VideoSource};
use serde_json::json;

use crate::args::RunArgs;
use crate::commands::{call_options, create_request, limit};
use crate::output::print_result;

/// The three bars: upload, processing, download. They draw only on a terminal.
struct Bars {
    multi: MultiProgress,
    upload: Option<ProgressBar>,
    processing: Option<ProgressBar>,
    download: Option<ProgressBar>,
}

fn bytes_bar(multi: &MultiProgress, prefix: &str, total: u64) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(total));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>11} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_owned());
    bar
}

impl Bars {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Upload {
                bytes_done,
                bytes_total,
            } => {
                let multi = &self.multi;
                let bar = self
                    .upload
                    .get_or_insert_with(|| bytes_bar(multi, "upload", *bytes_total));
                bar.set_position(*bytes_done);
            }
            Event::StatusChanged { to, .. } => {
                self.processing_bar().set_message(to.to_string());
            }
            Event::Progress { progress, .. } => {
                self.processing_bar().set_position(*progress as u64);
            }
            Event::Download {
                bytes_done,
                bytes_total,
            } => {
                let multi = &self.multi;
                let bar = self
                    .download
                    .get_or_insert_with(|| bytes_bar(multi, "download", bytes_total.unwrap_or(0)));
                if let Some(total) = bytes_total {
                    bar.set_length(*total);
                }
                bar.set_position(*bytes_done);
            }
            Event::Retry {
                operation,
                attempt,
                max_retries,
                delay_ms,
                reason,
                ..
            } => {
                let _ = self.multi.println(format!(
                    "retry {attempt}/{max_retries} of {operation} in {:.1} s ({reason})",
                    *delay_ms as f64 / 1000.0
                ));
            }
        }
    }

    fn processing_bar(&mut self) -> &ProgressBar {
        let multi = &self.multi;
        self.processing.get_or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(100));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>11} [{bar:30}] {pos:>3}% {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix("processing");
            bar
        })
    }

    fn finish(&self) {
        for bar in [&self.upload, &self.processing, &self.download]
            .into_iter()
            .flatten()
        {
            bar.finish();
        }
    }
}

pub fn run(
    client: &Client,
    args: &RunArgs,
    cancel: &CancelToken,
    json_mode: bool,
) -> Result<(), Error> {
    // Kept until the run ends: its waits end on the receiver's deliveries.
    // With --webhooks, --webhook-url is the public URL forwarding to the receiver; without,
    // only where the job's events go.
    let public_url = args
        .settings
        .webhook_url
        .as_deref()
        .filter(|_| args.webhooks.webhooks);
    let _receiver = crate::webhooks::receiver_for(client, &args.webhooks, public_url)?;
    let source = match (&args.video_url, &args.file) {
        (Some(url), _) => VideoSource::Url(url.clone()),
        (None, Some(file)) => VideoSource::File(file.clone()),
        (None, None) => unreachable!("clap requires one source"),
    };
    let request = RunRequest {
        source,
        job: create_request("", &args.settings)?,
        start: None,
        download_to: args.output.clone(),
        overwrite: args.overwrite,
    };
    let draw = if json_mode {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bars = Arc::new(Mutex::new(Bars {
        multi: MultiProgress::with_draw_target(draw),
        upload: None,
        processing: None,
        download: None,
    }));
    let mut call = call_options(cancel, None);
    let sink = bars.clone();
    call.on_event = Some(Arc::new(move |event: &Event| {
        sink.lock().expect("bars").on_event(event)
    }));
    let started = Instant::now();
    let result = client.run(
        &request,
        &RunOptions {
            limit: limit(args.timeout)?,
            poll: None,
            call,
        },
    );
    bars.lock().expect("bars").finish();
    let result = result?;
    let seconds = started.elapsed().as_secs_f64();
    let mut human = format!("{} {} in {seconds:.1} s", result.job.status, result.job.id);
    if let Some(output) = &result.output {
        human.push_str(&format!(
            " -> {} ({} bytes)",
            output.path.display(),
            output.bytes
        ));
    } else if let Some(url) = &result.job.output_url {
        human.push_str(&format!(" -> {url}"));
    }
    let value = json!({
        "job": result.job,
        "upload": result.upload,
        "output": result.output.as_ref().map(|o| json!({ "path": o.path, "bytes": o.bytes })),
        "seconds": seconds,
    });
    print_result(&value, &human, json_mode);
    Ok(())
}
