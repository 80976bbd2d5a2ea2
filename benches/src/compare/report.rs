//! Timing summaries and the printed table.

use std::process::Command;
use std::time::Duration;

/// Durations of one measured operation, one per sample.
#[derive(Debug, Clone, Default)]
pub struct Timings(Vec<Duration>);

impl Timings {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort_unstable();
        v
    }

    /// The `q` quantile (nearest rank), zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let v = self.sorted();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v.get(rank - 1).copied().unwrap_or_default()
    }

    pub fn median(&self) -> Duration {
        let v = self.sorted();
        match v.len() {
            0 => Duration::ZERO,
            n if n % 2 == 1 => v.get(n / 2).copied().unwrap_or_default(),
            n => {
                let a = v.get(n / 2 - 1).copied().unwrap_or_default();
                let b = v.get(n / 2).copied().unwrap_or_default();
                (a + b) / 2
            }
        }
    }

    pub fn p90(&self) -> Duration {
        self.quantile(0.9)
    }

    pub fn mean(&self) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }
}

/// `1.23 ms`, `456 µs`, `7.8 s`.
pub fn dur(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 100.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else if s >= 1e-6 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{:.0} ns", s * 1e9)
    }
}

/// `12.3 MiB` (binary units), with the exact bytes for small values.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    let name = UNITS.get(unit).copied().unwrap_or("B");
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {name}")
    }
}

/// `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How many times `pg / mx`, as `12.3x` (both are "lower is better").
pub fn ratio(pg: f64, mx: f64) -> String {
    if mx <= 0.0 || pg <= 0.0 {
        return "n/a".into();
    }
    let r = pg / mx;
    if r >= 100.0 {
        format!("{r:.0}x")
    } else if r >= 10.0 {
        format!("{r:.1}x")
    } else if r >= 1.0 {
        format!("{r:.2}x")
    } else {
        format!("{r:.2}x (mxstate {:.1}x slower/larger)", 1.0 / r)
    }
}

/// A markdown table with the four columns of the comparison.
#[derive(Default)]
pub struct Table {
    rows: Vec<[String; 4]>,
}

impl Table {
    /// A row where both sides are durations.
    pub fn time(&mut self, metric: &str, pg: Duration, mx: Duration) {
        self.rows.push([
            metric.to_owned(),
            dur(pg),
            dur(mx),
            ratio(pg.as_secs_f64(), mx.as_secs_f64()),
        ]);
    }

    /// A row where both sides are byte counts.
    pub fn size(&mut self, metric: &str, pg: u64, mx: u64) {
        self.rows
            .push([metric.to_owned(), bytes(pg), bytes(mx), ratio(pg as f64, mx as f64)]);
    }

    /// A row of free text.
    pub fn text(&mut self, metric: &str, pg: String, mx: String, ratio: String) {
        self.rows.push([metric.to_owned(), pg, mx, ratio]);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "| metric | Synapse/PostgreSQL | mxstate | ratio PG / mxstate (>1: mxstate smaller or faster) |\n",
        );
        out.push_str("|---|---:|---:|---:|\n");
        for [a, b, c, d] in &self.rows {
            out.push_str(&format!("| {a} | {b} | {c} | {d} |\n"));
        }
        out
    }
}

/// Machine figures for the report.
pub fn machine() -> String {
    let cores = Command::new("nproc")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "?".into());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    format!("{cores} cores (nproc), {model}, {} RAM", bytes(mem_kib * 1024))
}

pub fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let mut t = Timings::default();
        for ms in [5u64, 1, 3, 2, 4, 6, 7, 8, 9, 10] {
            t.push(Duration::from_millis(ms));
        }
        assert_eq!(t.median(), Duration::from_micros(5500));
        assert_eq!(t.p90(), Duration::from_millis(9));
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
    }
}
