//! Progress of `analyze`'s event loop (every batch of every file through the selection): a
//! bar that fits 80 columns on a terminal, a plain line every 10 s otherwise, and at the end
//! the event loop's own throughput — events over the time any file's batches were being
//! read and selected (what the uproot and RDataFrame anchors of `bench-reprocess` time), and
//! over the time any selection rule ran (the same plus opening each file and writing,
//! hashing and committing its selected events). Inspection, hashing of inputs, merging,
//! training, fits and plots are in neither.

use analysis::workflow::LoopEvent;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the plain line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The union of possibly overlapping intervals (one per file or rule, from any thread).
#[derive(Default)]
struct Busy {
    /// Intervals open now.
    running: usize,
    /// Since when at least one has been open.
    since: Option<Instant>,
    /// Time with at least one open, before `since`.
    before: Duration,
}

impl Busy {
    fn start(&mut self) {
        if self.running == 0 {
            self.since = Some(Instant::now());
        }
        self.running += 1;
    }
    fn stop(&mut self) {
        self.running = self.running.saturating_sub(1);
        if self.running == 0 {
            if let Some(t) = self.since.take() {
                self.before += t.elapsed();
            }
        }
    }
    fn total(&self) -> Duration {
        self.before + self.since.map_or(Duration::ZERO, |t| t.elapsed())
    }
}

#[derive(Default)]
struct State {
    /// Files whose batches are being read and selected.
    files: Busy,
    /// Selection rules running.
    rules: Busy,
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
    /// The time any file's batches were being read and selected.
    pub loop_seconds: f64,
    /// The time any selection rule ran (the loop, plus opening files and writing outputs).
    pub rule_seconds: f64,
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
        if s.rules.running == 0 && self.tty {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.bar.set_message("selecting");
        }
        s.rules.start();
    }

    /// A selection rule ended (done or failed).
    pub fn finished(&self) {
        self.state().rules.stop();
    }

    /// What a file's event loop reports.
    pub fn on(&self, e: LoopEvent) {
        match e {
            LoopEvent::FileStarted => self.state().files.start(),
            LoopEvent::FileFinished => self.state().files.stop(),
            LoopEvent::Batch(n) => self.batch(n),
        }
    }

    /// `n` more events went through the selection.
    fn batch(&self, n: u64) {
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
        let rate = done as f64 / s.files.total().as_secs_f64().max(1e-9);
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
            loop_seconds: s.files.total().as_secs_f64(),
            rule_seconds: s.rules.total().as_secs_f64(),
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
