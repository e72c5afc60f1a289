//! A gate that bounds how many hold it at once and how often it opens: per endpoint, the
//! benchmark's rate limit (requests per minute, concurrent requests, applied to every HTTP
//! request, retries included); with no rate, a plain counting semaphore (builds and sandbox
//! runs bounded by the cores). Written here because std has no semaphore and the well-kept
//! crates that do are async.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Debug)]
pub struct Gate {
    max_concurrent: Option<u32>,
    interval: Option<Duration>,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug)]
struct State {
    holders: u32,
    next_start: Instant,
}

/// Held while the work runs; dropping it lets the next one in.
pub struct Permit<'a>(&'a Gate);

impl Gate {
    /// At most `max_concurrent` holders at once (`None`: any number) and at most
    /// `per_minute` openings per minute, evenly spaced (`None`: no rate).
    pub fn new(max_concurrent: Option<u32>, per_minute: Option<f64>) -> Self {
        Self {
            max_concurrent: max_concurrent.map(|m| m.max(1)),
            interval: per_minute
                .filter(|r| *r > 0.0 && r.is_finite())
                .map(|r| Duration::from_secs_f64(60.0 / r)),
            state: Mutex::new(State {
                holders: 0,
                next_start: Instant::now(),
            }),
            freed: Condvar::new(),
        }
    }

    /// Waits for a place, then for this opening's slot in time.
    pub fn acquire(&self) -> Permit<'_> {
        let start = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            while self.max_concurrent.is_some_and(|m| s.holders >= m) {
                s = self.freed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            s.holders += 1;
            let now = Instant::now();
            let start = s.next_start.max(now);
            if let Some(i) = self.interval {
                s.next_start = start + i;
            }
            start
        };
        let wait = start.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        s.holders -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    #[test]
    fn never_more_holders_than_allowed() {
        let gate = Gate::new(Some(2), None);
        let (now, peak) = (AtomicU32::new(0), AtomicU32::new(0));
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    let _p = gate.acquire();
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn openings_are_spaced_by_the_rate() {
        // 600 per minute: one opening per 100 ms, so the fourth waits at least 300 ms.
        let gate = Gate::new(None, Some(600.0));
        let t = Instant::now();
        for _ in 0..4 {
            drop(gate.acquire());
        }
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
    }
}
