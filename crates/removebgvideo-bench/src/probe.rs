//! What a process costs while it waits, read from the kernel about itself: CPU seconds
//! (`/proc/self/stat`, user + system, every thread's, exited ones included) and the peak number
//! of OS threads. The kernel keeps a peak of memory (`VmHWM`) but not of threads, so a helper
//! thread samples `Threads:` of `/proc/self/status` every 10 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the thread count is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// The unit of `/proc/[pid]/stat`'s times: `USER_HZ`, 100 on every Linux architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds of this process so far.
pub fn cpu_seconds() -> Result<f64, String> {
    let stat =
        std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    cpu_seconds_of(&stat).ok_or_else(|| format!("/proc/self/stat without CPU times: {stat}"))
}

/// `utime + stime` of a `/proc/[pid]/stat` line, in seconds. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
fn cpu_seconds_of(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; utime and stime are fields 14 and 15.
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

/// `Threads:` of a `/proc/[pid]/status` text.
pub fn threads_of(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

fn threads_now() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| threads_of(&status))
        .unwrap_or(0)
}

/// The sampler of the thread count; `stop` ends it and gives the peak.
#[derive(Debug)]
pub struct ThreadPeak {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    sampler: Option<JoinHandle<()>>,
}

impl ThreadPeak {
    pub fn start() -> ThreadPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(threads_now()));
        let sampler = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::Builder::new()
                .name("thread-sampler".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        peak.fetch_max(threads_now(), Ordering::Relaxed);
                        std::thread::sleep(SAMPLE_EVERY);
                    }
                })
                .ok()
        };
        ThreadPeak {
            stop,
            peak,
            sampler,
        }
    }

    /// The peak seen so far, the sampler's own thread counted.
    #[cfg(test)]
    pub fn peak_so_far(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// The peak seen, the sampler's own thread not counted.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let own = match self.sampler.take() {
            Some(sampler) => {
                let _ = sampler.join();
                1
            }
            None => 0,
        };
        self.peak
            .load(Ordering::Relaxed)
            .max(threads_now())
            .saturating_sub(own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_after_the_command_name() {
        // A command name with spaces and a parenthesis; utime 250 and stime 50 ticks.
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_seconds_of(stat), Some(3.0));
        assert_eq!(cpu_seconds_of("4242 (cut) S 1"), None);
        assert!(cpu_seconds().unwrap() >= 0.0);
    }

    #[test]
    fn the_thread_peak_keeps_threads_that_have_come_and_gone() {
        assert_eq!(
            threads_of("Name:\tx\nThreads:\t17\nVmHWM:\t1 kB\n"),
            Some(17)
        );
        assert_eq!(threads_of("Name:\tx\n"), None);
        let peak = ThreadPeak::start();
        let before = threads_now();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));
        let extra: Vec<_> = (0..20)
            .map(|_| {
                let released = Arc::clone(&released);
                std::thread::spawn(move || {
                    let _ = released.lock().unwrap().recv();
                })
            })
            .collect();
        // Bounded polling until the sampler has seen them all.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while peak.peak_so_far() < before + 20 {
            assert!(
                std::time::Instant::now() < deadline,
                "the sampler never saw the threads"
            );
            std::thread::sleep(SAMPLE_EVERY);
        }
        drop(release);
        for thread in extra {
            thread.join().unwrap();
        }
        let seen = peak.stop();
        assert!(seen >= before + 19, "{seen} (before {before})");
        assert!(threads_now() < seen, "the peak outlives the threads");
    }
}
