//! Webhooks on a client: where its jobs' deliveries go, the inbox that verifies them, and the
//! hand-off of each verified job to the client's waits. A wait of a client with webhooks is a
//! hybrid one: it ends on a delivery (confirmed by one read) and polls only as a fallback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use removebgvideo_core::http::Headers;
use removebgvideo_core::inbox::{Inbox, InboxConfig, Receipt};
use removebgvideo_core::validate::{Problem, ProblemCode};
use removebgvideo_core::webhook::{DEFAULT_TOLERANCE, VerifiedWebhook};
use removebgvideo_core::{CreateJobRequest, Error, ErrorCode, Timestamp};

use crate::client::Client;
use crate::receiver::{ReceiverOptions, WebhookReceiver};

/// The pause between a hybrid wait's fallback polls once a delivery came: long, since the
/// deliveries say when the job ends; there, since a delivery can be lost.
pub const DEFAULT_WEBHOOK_FALLBACK: Duration = Duration::from_secs(30);

/// Where a client's jobs send their events, and how deliveries are checked.
#[derive(Clone, PartialEq)]
pub struct WebhookSettings {
    /// The URL the API delivers to (the receiver's own, or a tunnel's or gateway's public URL
    /// that forwards to it). Jobs created without a `webhook_url` get this one.
    pub url: String,
    /// The signing secret configured for the API key.
    pub secret: String,
    /// How far a delivery's signing time may be from now, either way (replays outside it are
    /// refused).
    pub tolerance: Duration,
    /// The pause between fallback polls once a delivery came.
    pub fallback: Duration,
}

impl WebhookSettings {
    /// Deliveries to `url`, signed with `secret`; the default tolerance and fallback.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> WebhookSettings {
        WebhookSettings {
            url: url.into(),
            secret: secret.into(),
            tolerance: DEFAULT_TOLERANCE,
            fallback: DEFAULT_WEBHOOK_FALLBACK,
        }
    }

    fn check(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if !matches!(url::Url::parse(&self.url), Ok(url) if matches!(url.scheme(), "http" | "https"))
        {
            problems.push(Problem::error(
                "/webhook_url",
                ProblemCode::InvalidUrl,
                "webhook_url must be an http(s) URL the API can reach",
            ));
        }
        if self.secret.trim().is_empty() {
            problems.push(Problem::error(
                "/webhook_secret",
                ProblemCode::Blank,
                "webhook_secret must not be empty: a delivery signed with an empty secret proves nothing",
            ));
        }
        if self.fallback.is_zero() {
            problems.push(Problem::error(
                "/webhook_fallback",
                ProblemCode::OutOfRange,
                "webhook_fallback must be more than 0 s",
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(problems))
        }
    }
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("tolerance", &self.tolerance)
            .field("fallback", &self.fallback)
            .finish()
    }
}

/// A client's webhooks: its settings and its inbox.
#[derive(Debug)]
pub(crate) struct Webhooks {
    pub(crate) settings: WebhookSettings,
    inbox: Mutex<Inbox>,
}

/// A verified delivery as a client took it.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The event, its delivery id, signing time and job.
    pub webhook: VerifiedWebhook,
    /// Taken before (a redelivery): answered, not handed to the waits again.
    pub duplicate: bool,
}

impl Client {
    /// Sends this client's jobs' events to `settings.url` and makes its waits hybrid: a wait
    /// ends on a verified delivery (confirmed by one read of the job) and polls on
    /// `settings.fallback` once a delivery came (on its own schedule before). Deliveries reach
    /// the client through [`Client::handle_webhook`] (a framework's route) or a receiver from
    /// [`Client::listen_for_webhooks`]. Replaces settings given before.
    pub fn use_webhooks(&self, settings: WebhookSettings) -> Result<(), Error> {
        settings.check()?;
        let inbox = Inbox::new(&InboxConfig {
            secret: settings.secret.clone(),
            tolerance: settings.tolerance,
        })?;
        let webhooks = Arc::new(Webhooks {
            settings,
            inbox: Mutex::new(inbox),
        });
        *self
            .inner
            .webhooks
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(webhooks);
        Ok(())
    }

    /// The webhook settings in use, if any.
    pub fn webhook_settings(&self) -> Option<WebhookSettings> {
        self.webhooks().map(|webhooks| webhooks.settings.clone())
    }

    /// Takes one delivery (its headers and raw body, exactly as received): verified, dropped if
    /// a duplicate, else handed to the waits of its job. Answer the sender 2xx on `Ok`, 400 on
    /// `Err` (a delivery not signed with the secret, outside the tolerance, or not an event).
    pub fn handle_webhook(&self, headers: &Headers, body: &[u8]) -> Result<Delivery, Error> {
        match self.receive_webhook(headers, body) {
            Receipt::Accepted(webhook) => Ok(Delivery {
                webhook,
                duplicate: false,
            }),
            Receipt::Duplicate(webhook) => Ok(Delivery {
                webhook,
                duplicate: true,
            }),
            Receipt::Rejected { error, .. } => Err(error),
        }
    }

    /// [`Client::handle_webhook`] as the receipt a receiver answers from.
    pub fn receive_webhook(&self, headers: &Headers, body: &[u8]) -> Receipt {
        let Some(webhooks) = self.webhooks() else {
            return Receipt::Rejected {
                status: 400,
                error: Error::new(
                    ErrorCode::WebhookInvalidSignature,
                    "this client has no webhook secret to verify deliveries with: call use_webhooks first",
                ),
            };
        };
        let now: Timestamp = std::time::SystemTime::now().into();
        let receipt = webhooks
            .inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .receive(headers, body, now);
        if let Receipt::Accepted(delivery) = &receipt {
            // Recorded (the inbox keeps its id) and handed on before the sender hears 2xx.
            self.engine().update_job(delivery.data.clone());
        }
        receipt
    }

    /// Starts a webhook receiver for this client and sends its jobs' events to it (see
    /// [`Client::use_webhooks`]): to `options.public_url` when given (a tunnel or gateway
    /// forwarding to the receiver), else to the receiver's own URL. Stopped when dropped.
    pub fn listen_for_webhooks(
        &self,
        options: &ReceiverOptions,
        secret: &str,
    ) -> Result<WebhookReceiver, Error> {
        // Checked before anything listens.
        WebhookSettings::new("http://127.0.0.1/", secret).check()?;
        let client = self.clone();
        let receiver = WebhookReceiver::start(
            options,
            Arc::new(move |headers: &Headers, body: &[u8]| client.receive_webhook(headers, body)),
        )?;
        // The tolerance and fallback set before stay.
        let (tolerance, fallback) = self
            .webhook_settings()
            .map_or((DEFAULT_TOLERANCE, DEFAULT_WEBHOOK_FALLBACK), |s| {
                (s.tolerance, s.fallback)
            });
        self.use_webhooks(WebhookSettings {
            tolerance,
            fallback,
            ..WebhookSettings::new(receiver.url(), secret)
        })?;
        Ok(receiver)
    }

    pub(crate) fn webhooks(&self) -> Option<Arc<Webhooks>> {
        self.inner
            .webhooks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The fallback of this client's hybrid waits, when it has webhooks.
    pub(crate) fn webhook_fallback(&self) -> Option<Duration> {
        self.webhooks().map(|webhooks| webhooks.settings.fallback)
    }

    /// The create request as sent: with the client's webhook URL when it has webhooks and the
    /// request names none.
    pub(crate) fn with_webhook_url<'a>(
        &self,
        request: &'a CreateJobRequest,
    ) -> std::borrow::Cow<'a, CreateJobRequest> {
        match self.webhooks() {
            Some(webhooks) if request.webhook_url.is_none() => {
                let mut request = request.clone();
                request.webhook_url = Some(webhooks.settings.url.clone());
                std::borrow::Cow::Owned(request)
            }
            _ => std::borrow::Cow::Borrowed(request),
        }
    }
}
