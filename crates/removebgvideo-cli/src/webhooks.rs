//! `webhooks listen` (print every verified delivery, forward it re-signed) and the receiver
//! that `run --webhooks` and `batch run --webhooks` start for their client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use removebgvideo::core::http::Headers;
use removebgvideo::core::inbox::{Inbox, InboxConfig, Receipt};
use removebgvideo::core::webhook::{self, VerifiedWebhook};
use removebgvideo::core::{ProblemCode, Timestamp};
use removebgvideo::{CancelToken, Client, Error, ReceiverOptions, WebhookReceiver};
use serde_json::json;

use crate::args::{ListenArgs, WebhookArgs};
use crate::commands::usage_error;

/// Starts the receiver a command's waits use, when asked for (`--webhooks`, or a public URL).
pub fn receiver_for(
    client: &Client,
    args: &WebhookArgs,
    public_url: Option<&str>,
) -> Result<Option<WebhookReceiver>, Error> {
    if !args.webhooks && public_url.is_none() {
        return Ok(None);
    }
    let Some(secret) = args.webhook_secret.as_deref() else {
        return Err(usage_error(
            "/webhook_secret",
            ProblemCode::Required,
            "--webhooks needs --webhook-secret (or REMOVEBGVIDEO_WEBHOOK_SECRET): the secret the API signs deliveries with".into(),
        ));
    };
    let options = ReceiverOptions {
        port: args.webhook_port,
        public_url: public_url.map(str::to_owned),
        ..ReceiverOptions::default()
    };
    let receiver = client.listen_for_webhooks(&options, secret)?;
    eprintln!(
        "webhooks: receiving on http://{} (jobs deliver to {})",
        receiver.local_addr(),
        receiver.url()
    );
    Ok(Some(receiver))
}

/// `webhooks listen`: serves until interrupted.
pub fn listen(args: &ListenArgs, cancel: &CancelToken, json_mode: bool) -> Result<(), Error> {
    let inbox = Inbox::new(&InboxConfig {
        secret: args.secret.clone(),
        tolerance: Duration::from_secs(args.tolerance),
    })?;
    if let Some(url) = &args.forward_to
        && !matches!(url::Url::parse(url), Ok(u) if matches!(u.scheme(), "http" | "https"))
    {
        return Err(usage_error(
            "/forward_to",
            ProblemCode::InvalidUrl,
            "--forward-to must be an http(s) URL".into(),
        ));
    }
    let forward = args.forward_to.clone().map(|url| Forward {
        url,
        secret: args.secret.clone(),
        agent: ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .max_redirects(0)
            .http_status_as_error(false)
            .build()
            .into(),
    });
    let inbox = Mutex::new(inbox);
    let handler = Arc::new(move |headers: &Headers, body: &[u8]| {
        let now = Timestamp::from(std::time::SystemTime::now());
        let receipt = inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .receive(headers, body, now);
        match &receipt {
            Receipt::Accepted(delivery) => {
                print_delivery(delivery, json_mode);
                if let Some(forward) = &forward {
                    forward.send(delivery.clone(), body.to_vec());
                }
            }
            Receipt::Duplicate(delivery) => eprintln!(
                "duplicate delivery {} dropped",
                delivery.delivery_id.as_deref().unwrap_or("(no id)")
            ),
            Receipt::Rejected { error, .. } => {
                eprintln!("refused a delivery ({}): {}", error.code, error.message)
            }
        }
        receipt
    });
    let options = ReceiverOptions {
        host: args.host,
        port: args.port,
        ..ReceiverOptions::default()
    };
    let receiver = WebhookReceiver::start(&options, handler)?;
    let banner = match &args.forward_to {
        Some(to) => format!("listening on {} (forwarding to {to})", receiver.url()),
        None => format!("listening on {}", receiver.url()),
    };
    if json_mode {
        println!(
            "{}",
            json!({ "listening": receiver.url(), "forward_to": args.forward_to })
        );
    } else {
        println!("{banner}");
    }
    while !cancel.sleep(Duration::from_secs(3600)) {}
    receiver.stop();
    Ok(())
}

/// One line per verified delivery.
fn print_delivery(delivery: &VerifiedWebhook, json_mode: bool) {
    if json_mode {
        println!(
            "{}",
            json!({
                "event": delivery.event,
                "delivery_id": delivery.delivery_id,
                "timestamp": delivery.timestamp,
                "job": delivery.data,
            })
        );
    } else {
        println!(
            "{} {} {} {} (delivery {})",
            delivery.timestamp,
            delivery.event,
            delivery.data.id,
            delivery.data.status,
            delivery.delivery_id.as_deref().unwrap_or("without an id"),
        );
    }
}

/// Where verified deliveries are forwarded, re-signed.
struct Forward {
    url: String,
    secret: String,
    agent: ureq::Agent,
}

impl Forward {
    /// Forwards on a thread of its own: the sender is answered once the delivery is printed,
    /// whatever the forward target does.
    fn send(&self, delivery: VerifiedWebhook, body: Vec<u8>) {
        let (url, secret, agent) = (self.url.clone(), self.secret.clone(), self.agent.clone());
        std::thread::spawn(move || {
            let timestamp =
                webhook::format_timestamp(Timestamp::from(std::time::SystemTime::now()));
            let signature = webhook::sign(&secret, &timestamp, &body);
            let mut request = agent
                .post(&url)
                .header("Content-Type", "application/json")
                .header(webhook::EVENT_HEADER, delivery.event.as_str())
                .header(webhook::TIMESTAMP_HEADER, &timestamp)
                .header(webhook::SIGNATURE_HEADER, &signature);
            if let Some(id) = &delivery.delivery_id {
                request = request.header(webhook::DELIVERY_ID_HEADER, id);
            }
            match request.send(&body[..]) {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => eprintln!(
                    "forwarding delivery {} to {url}: answered {}",
                    delivery.delivery_id.as_deref().unwrap_or("(no id)"),
                    response.status()
                ),
                Err(e) => eprintln!(
                    "forwarding delivery {} to {url} failed: {e}",
                    delivery.delivery_id.as_deref().unwrap_or("(no id)")
                ),
            }
        });
    }
}
