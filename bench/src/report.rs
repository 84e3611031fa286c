//! The report: one markdown row per ratio (measured values, ratio, target,
//! met or not), then each point's CPU use per process, so it is clear who was
//! CPU-bound, then any failed calls.

use std::fmt::Write as _;

use crate::load::{Sample, Window};

/// A ratio's target.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The ratio must be at least this.
    AtLeast(f64),
    /// The ratio must be at most this.
    AtMost(f64),
    /// The value must be strictly below this.
    Below(f64),
}

/// One line of the main table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The scenario letter.
    pub id: &'static str,
    /// What the ratio compares.
    pub what: String,
    /// The medians behind it.
    pub measured: String,
    /// The ratio (median of per-round ratios).
    pub ratio: f64,
    /// Its target.
    pub target: Target,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Report {
    threads: usize,
    server_threads: usize,
    rounds: usize,
    window: Window,
    rows: Vec<Row>,
    cpu: Vec<String>,
    errors: Vec<String>,
}

impl Target {
    /// Whether `value` meets the target (never for NaN).
    pub fn met(self, value: f64) -> bool {
        match self {
            Target::AtLeast(t) => value >= t,
            Target::AtMost(t) => value <= t,
            Target::Below(t) => value < t,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::AtLeast(t) => write!(f, "≥ {t}"),
            Target::AtMost(t) => write!(f, "≤ {t}"),
            Target::Below(t) => write!(f, "< {t}"),
        }
    }
}

impl Report {
    /// An empty report of a run with these settings.
    pub fn new(threads: usize, server_threads: usize, rounds: usize, window: Window) -> Self {
        Self {
            threads,
            server_threads,
            rounds,
            window,
            rows: Vec::new(),
            cpu: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Adds a ratio row.
    pub fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// Adds the CPU line of one point: per watched process (`names`, in the
    /// order the samples' CPU was read), cores used and µs per call, medians.
    pub fn cpu_line(&mut self, point: &str, samples: &[Sample], names: &[String]) {
        let mut line = format!(
            "| {point} | {} |",
            crate::run::kilo(median(samples.iter().map(Sample::rate)))
        );
        let cells: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let cores = median(samples.iter().map(|s| s.cores(i).unwrap_or(f64::NAN)));
                let per_call = median(
                    samples
                        .iter()
                        .map(|s| s.cpu_per_call_us(i, s.calls).unwrap_or(f64::NAN)),
                );
                format!("{name} {cores:.2} ({per_call:.1} µs)")
            })
            .collect();
        let _ = write!(line, " {} |", cells.join(", "));
        self.cpu.push(line);
    }

    /// Records the points whose calls did not all succeed.
    pub fn note_errors(&mut self, point: &str, samples: &[Sample]) {
        for (round, sample) in samples.iter().enumerate() {
            if sample.errors > 0 || sample.calls == 0 {
                self.errors.push(format!(
                    "{point} round {}: {} of {} calls failed",
                    round + 1,
                    sample.errors,
                    sample.calls
                ));
            }
        }
    }

    /// Points with failed calls, or with no calls at all.
    pub fn failures(&self) -> usize {
        self.errors.len()
    }

    /// The whole report as markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "Runtime: hookd on {} shard(s) (`server.worker_threads`; each a tokio current_thread \
             runtime, one broker stream is served by one), the echo on {}, the stub and the load process \
             (direct driver, bridge client) on {}; {} round(s), {:.1} s measured after {:.1} s warm-up \
             per point; medians of per-round ratios.\n\n",
            self.server_threads,
            flavour(self.server_threads),
            flavour(self.threads),
            self.rounds,
            self.window.measure.as_secs_f64(),
            self.window.warmup.as_secs_f64()
        );
        out.push_str("| | ratio | measured | value | target | met |\n|---|---|---|---|---|---|\n");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| ({}) | {} | {} | {:.2} | {} | {} |",
                row.id,
                row.what,
                row.measured,
                row.ratio,
                row.target,
                if row.target.met(row.ratio) {
                    "yes"
                } else {
                    "**no**"
                }
            );
        }
        if !self.cpu.is_empty() {
            out.push_str(
                "\nCPU per process during each point: cores used (1.00 = one core busy) and µs of CPU per call.\n\n\
                 | point | calls/s | CPU |\n|---|---|---|\n",
            );
            for line in &self.cpu {
                out.push_str(line);
                out.push('\n');
            }
        }
        if !self.errors.is_empty() {
            out.push_str("\nerrors:\n");
            for e in &self.errors {
                let _ = writeln!(out, "- {e}");
            }
        }
        out
    }
}

/// The median of `values` (NaN when empty); NaNs sort last.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// How the harness runs a process on `threads` threads.
fn flavour(threads: usize) -> String {
    if threads == 1 {
        "tokio current_thread (one thread)".to_owned()
    } else {
        format!("tokio multi_thread with {threads} workers")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
    }

    #[test]
    fn targets() {
        assert!(Target::AtLeast(0.9).met(0.9));
        assert!(!Target::AtMost(1.15).met(1.2));
        assert!(!Target::Below(1.0).met(1.0));
        assert!(!Target::AtLeast(0.5).met(f64::NAN));
    }
}
