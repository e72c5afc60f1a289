//! Progress of `analyze`'s event loop (every batch of every file through the selection): a
//! bar that fits 80 columns on a terminal, a plain line every 10 s otherwise, and at the end
//! the event loop's own throughput — events over the time any file was being selected, so
//! inspection, hashing, merging, training, fits and plots are not in it.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the plain line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

#[derive(Default)]
struct State {
    /// Selection rules running now.
    running: usize,
    /// Since when at least one has been running.
    busy_since: Option<Instant>,
    /// Time with at least one running, before `busy_since`.
    busy: Duration,
    last_line: Option<Instant>,
}

pub struct EventLoop {
    bar: ProgressBar,
    tty: bool,
    total: u64,
    done: AtomicU64,
    state: Mutex<State>,
}

/// What the event loop did.
pub struct Summary {
    pub events: u64,
    pub seconds: f64,
}

/// `1234567` → `1.23 M`, `12` → `12`.
pub fn human(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.2} G", x / 1e9),
        x if x >= 1e6 => format!("{:.2} M", x / 1e6),
        x if x >= 1e3 => format!("{:.1} k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

impl EventLoop {
    /// `total`: the events of every input file.
    pub fn new(total: u64) -> Self {
        let bar = ProgressBar::hidden();
        bar.set_length(total);
        // At most 80 columns: 9 + 1 + 20 + 1 + 8 + 1 + 8 + 8 + 12 + 1 + 4 + 5 = 78.
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:9} {bar:20} {pos_h:>8}/{len_h:8} events {rate:>12} {eta:>4} left",
            )
            .expect("a valid template")
            .with_key("pos_h", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", human(s.pos() as f64));
            })
            .with_key("len_h", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", human(s.len().unwrap_or(0) as f64));
            })
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{} ev/s", human(s.per_sec()));
            }),
        );
        Self {
            bar,
            tty: std::io::stderr().is_terminal(),
            total,
            done: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A selection rule started.
    pub fn started(&self) {
        let mut s = self.state();
        if s.running == 0 {
            s.busy_since = Some(Instant::now());
            if self.tty {
                self.bar.set_draw_target(ProgressDrawTarget::stderr());
                self.bar.set_message("selecting");
            }
        }
        s.running += 1;
    }

    /// A selection rule ended (done or failed).
    pub fn finished(&self) {
        let mut s = self.state();
        s.running = s.running.saturating_sub(1);
        if s.running == 0 {
            if let Some(t) = s.busy_since.take() {
                s.busy += t.elapsed();
            }
        }
    }

    /// `n` more events went through the selection.
    pub fn batch(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        self.bar.inc(n);
        if self.tty {
            return;
        }
        let mut s = self.state();
        let now = Instant::now();
        let first = *s.last_line.get_or_insert(now);
        if now.duration_since(first) < PLAIN_EVERY {
            return;
        }
        s.last_line = Some(now);
        let busy = s.busy + s.busy_since.map_or(Duration::ZERO, |t| t.elapsed());
        let rate = done as f64 / busy.as_secs_f64().max(1e-9);
        let left = self.total.saturating_sub(done) as f64 / rate.max(1e-9);
        eprintln!(
            "selecting: {} of {} events ({:.0} %), {} events/s, about {left:.0} s left",
            human(done as f64),
            human(self.total as f64),
            100.0 * done as f64 / self.total.max(1) as f64,
            human(rate)
        );
    }

    /// Runs `f` with the bar out of the way (for a line of text).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Clears the bar; the event loop's events and seconds, when it ran.
    pub fn finish(&self) -> Option<Summary> {
        self.bar.finish_and_clear();
        let s = self.state();
        let events = self.done.load(Ordering::Relaxed);
        (events > 0).then(|| Summary {
            events,
            seconds: (s.busy + s.busy_since.map_or(Duration::ZERO, |t| t.elapsed())).as_secs_f64(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_numbers() {
        assert_eq!(super::human(27_520_000.0), "27.52 M");
        assert_eq!(super::human(3_100.0), "3.1 k");
        assert_eq!(super::human(12.0), "12");
    }
}
