//! Progress: a bar on a terminal, periodic log lines otherwise, or nothing.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports how far a long command got.
pub struct Progress {
    bar: Option<ProgressBar>,
    log: bool,
    start: Instant,
    last_log: Instant,
    what: &'static str,
}

const LOG_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    /// Progress for `what`; `quiet` turns it off.
    pub fn new(what: &'static str, quiet: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let bar = (!quiet && terminal).then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            log: !quiet && !terminal,
            start: Instant::now(),
            last_log: Instant::now(),
            what,
        }
    }

    fn rate(&self, n: u64) -> f64 {
        n as f64 / self.start.elapsed().as_secs_f64().max(1e-9)
    }

    /// Input read: `rows` records, `done` of `total` bytes.
    pub fn reading(&mut self, rows: u64, done: u64, total: Option<u64>) {
        let msg = format!("{}: {} rows read, {:.0} rows/s", self.what, rows, self.rate(rows));
        if let Some(b) = &self.bar {
            if let Some(t) = total {
                b.set_length(t);
            }
            b.set_position(done);
            b.set_message(msg);
        } else if self.log && self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            let pct = total.map(|t| format!(" ({:.0}%)", 100.0 * done as f64 / t.max(1) as f64));
            eprintln!("{msg}{}", pct.unwrap_or_default());
        }
    }

    /// A later phase: `n` items of `what` done.
    pub fn step(&mut self, what: &str, n: u64) {
        let msg = format!("{}: {} {}", self.what, n, what);
        if let Some(b) = &self.bar {
            b.set_message(msg);
        } else if self.log && self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            eprintln!("{msg}");
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}
