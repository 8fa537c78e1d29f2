//! One HTTP attempt over ureq, and what went wrong with it in the terms the retry decision
//! needs: nothing was sent, or it may have arrived and no answer came.

use std::io::Read;
use std::time::Duration;

use removebgvideo_core::http::Headers;
use removebgvideo_core::machine::{TransportError, TransportErrorKind as Kind};
use ureq::RequestExt;
use ureq::http;

use crate::config::Settings;
use crate::resolver::CachingResolver;

/// The largest API answer read (JSON answers are small; this stops a runaway body).
const MAX_API_BODY: u64 = 16 << 20;

/// An answer with its body read.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// Sorts a ureq failure into "nothing sent" and "may have arrived".
pub(crate) fn classify(error: ureq::Error) -> TransportError {
    use ureq::Timeout;
    let detail = error.to_string();
    let kind = match error {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => Kind::ConnectFailed,
        ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => Kind::ConnectFailed,
        ureq::Error::Timeout(_) => Kind::TimedOut,
        ureq::Error::Io(io) => return classify_io(&io, detail),
        _ => Kind::Broken,
    };
    TransportError::new(kind, detail)
}

/// Sorts an I/O failure the same way (reads of a streamed body fail as plain I/O errors).
pub(crate) fn classify_io(error: &std::io::Error, detail: String) -> TransportError {
    use std::io::ErrorKind;
    let kind = match error.kind() {
        ErrorKind::ConnectionRefused | ErrorKind::AddrNotAvailable => Kind::ConnectFailed,
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Kind::TimedOut,
        _ => Kind::Broken,
    };
    TransportError::new(kind, detail)
}

/// Idle keep-alive connections kept per client (and per host).
const IDLE_CONNECTIONS: usize = 100;
/// Each connection's read and write buffers.
const BUFFER_SIZE: usize = 64 * 1024;

/// The agent all calls share: one keep-alive pool and one name cache per client.
pub(crate) fn agent(settings: &Settings) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(settings.connect_timeout))
        .user_agent(settings.user_agent())
        .no_delay(true)
        // Redirects are off by default: ureq keeps custom headers such as X-Api-Key on a
        // redirect, so following one could send the key to another host. Only downloads, which
        // carry no key, follow redirects (to CDNs).
        .max_redirects(0)
        // One client is shared by all of a program's threads: ureq's default of 3 idle
        // connections per host made a 100-thread batch open a connection (and zero two
        // 128 KiB buffers) for most requests. Smaller buffers keep 100 idle connections cheap.
        .max_idle_connections(IDLE_CONNECTIONS)
        // A loopback base URL is plain http to this machine (the only place check_base_url
        // allows it): a proxy from the environment would carry the key off it in clear text.
        // Elsewhere HTTPS_PROXY and friends are honoured, as peers' SDKs do.
        .proxy(if settings.is_loopback() {
            None
        } else {
            ureq::Proxy::try_from_env()
        })
        .max_idle_connections_per_host(IDLE_CONNECTIONS)
        .input_buffer_size(BUFFER_SIZE)
        .output_buffer_size(BUFFER_SIZE)
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        CachingResolver::default(),
    )
}

/// The headers of an answer.
pub(crate) fn headers_of<B>(response: &http::Response<B>) -> Headers {
    response
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Sends one API request and reads the whole (small) answer within `timeout`.
pub(crate) fn send_api<S: ureq::AsSendBody>(
    agent: &ureq::Agent,
    request: http::Request<S>,
    timeout: Duration,
) -> Result<RawResponse, TransportError> {
    let response = request
        .with_agent(agent)
        .configure()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .build()
        .run()
        .map_err(classify)?;
    let status = response.status().as_u16();
    let headers = headers_of(&response);
    let mut body = Vec::new();
    response
        .into_body()
        .into_with_config()
        .limit(MAX_API_BODY)
        .reader()
        .read_to_end(&mut body)
        .map_err(|e| classify_io(&e, format!("reading the answer: {e}")))?;
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// Sends one transfer request (upload or download) with an idle limit instead of a total one,
/// and returns the answer with its body still streaming. Only keyless requests (downloads)
/// may follow redirects.
pub(crate) fn send_transfer<S: ureq::AsSendBody>(
    agent: &ureq::Agent,
    request: http::Request<S>,
    idle: Duration,
    total: Option<Duration>,
    follow_redirects: bool,
) -> Result<http::Response<ureq::Body>, TransportError> {
    request
        .with_agent(agent)
        .configure()
        .max_redirects(if follow_redirects { 5 } else { 0 })
        .timeout_global(total)
        .timeout_per_read(Some(idle))
        .timeout_per_write(Some(idle))
        .build()
        .run()
        .map_err(classify)
}
