//! Host name resolution with a short-lived cache.
//!
//! ureq resolves the host before every request, even when a pooled connection is reused, and
//! whenever a timeout applies (always, here) it resolves on a freshly spawned thread. That is
//! a thread and a lookup per call: a third of the CPU of a `get_job` in the benchmarks
//! (docs/benchmarks.md). Answers are kept for 30 s, the JVM's default for successful lookups,
//! short enough that a moved host is followed soon; a failed lookup is not cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long an answer is reused.
const KEEP_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub(crate) struct CachingResolver {
    lookup: DefaultResolver,
    answers: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(authority) = uri.authority() else {
            return self.lookup.resolve(uri, config, timeout);
        };
        let key = format!("{}://{authority}", uri.scheme_str().unwrap_or_default());
        if let Some((at, addresses)) = self.answers.lock().expect("resolver cache").get(&key)
            && at.elapsed() < KEEP_FOR
        {
            return Ok(addresses.clone());
        }
        let addresses = self.lookup.resolve(uri, config, timeout)?;
        let mut answers = self.answers.lock().expect("resolver cache");
        // Expired answers go when a new one comes, so hosts seen once (download CDNs) do not
        // pile up in a long-lived client.
        answers.retain(|_, (at, _)| at.elapsed() < KEEP_FOR);
        answers.insert(key, (Instant::now(), addresses.clone()));
        Ok(addresses)
    }
}
