//! Load generators: a closed loop (N calls in flight, each caller issuing
//! its next call as soon as the last is answered) and a fixed-rate open loop,
//! both measured over a window after a warm-up, with the CPU time every
//! watched process used during that window.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    task::Poll,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::FuturesUnordered};
use hdrhistogram::Histogram;

use crate::{procfs, stub::latency_histogram};

/// How long to warm up and how long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Load runs but is not counted (connections, pools, caches fill).
    pub warmup: Duration,
    /// Load is counted.
    pub measure: Duration,
}

/// One measured point.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Calls completed inside the window.
    pub calls: u64,
    /// Of those, calls whose answer was not the expected one.
    pub errors: u64,
    /// The window's actual length.
    pub elapsed: Duration,
    /// Latency of the calls completed inside the window, in nanoseconds.
    pub latency: Histogram<u64>,
    /// CPU time each watched process used during the window (same order as
    /// the `watch` list given), `None` if `/proc` could not be read.
    pub cpu: Vec<Option<Duration>>,
}

/// A window's phase (shared as an `AtomicU8` by [`measure_window`] and the
/// load it times): load runs but is not counted.
pub const WARMUP: u8 = 0;
/// Load is counted.
pub const MEASURE: u8 = 1;
/// The window is over: no new calls, finish the ones in flight.
pub const STOP: u8 = 2;

impl Sample {
    /// Completed calls per second.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Median latency in microseconds.
    pub fn p50_us(&self) -> f64 {
        self.latency.value_at_quantile(0.5) as f64 / 1_000.0
    }

    /// 99th percentile latency in microseconds.
    pub fn p99_us(&self) -> f64 {
        self.latency.value_at_quantile(0.99) as f64 / 1_000.0
    }

    /// CPU microseconds per call of the `i`-th watched process.
    pub fn cpu_per_call_us(&self, i: usize, calls: u64) -> Option<f64> {
        let cpu = (*self.cpu.get(i)?)?;
        (calls > 0).then(|| cpu.as_secs_f64() * 1e6 / calls as f64)
    }

    /// The share of one core the `i`-th watched process used (1.0 = one core busy).
    pub fn cores(&self, i: usize) -> Option<f64> {
        let cpu = (*self.cpu.get(i)?)?;
        Some(cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9))
    }
}

/// Runs `n` callers in a closed loop over `window`; `call` returns whether
/// the answer was the expected one. `watch` lists the processes whose CPU
/// time is read at the window's edges.
pub async fn closed_loop<F, Fut>(n: usize, window: Window, watch: &[u32], call: F) -> Sample
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let call = Arc::new(call);
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let callers: Vec<_> = (0..n.max(1))
        .map(|_| {
            let (call, phase) = (call.clone(), phase.clone());
            tokio::spawn(async move {
                let mut latency = latency_histogram();
                let (mut calls, mut errors) = (0u64, 0u64);
                loop {
                    let started = Instant::now();
                    let ok = call().await;
                    match phase.load(Ordering::Relaxed) {
                        MEASURE => {
                            let _ = latency.record(started.elapsed().as_nanos() as u64);
                            calls += 1;
                            errors += u64::from(!ok);
                        }
                        STOP => break,
                        _ => {}
                    }
                }
                (calls, errors, latency)
            })
        })
        .collect();
    let (elapsed, cpu) = measure_window(window, &phase, watch).await;
    let mut sample = Sample {
        calls: 0,
        errors: 0,
        elapsed,
        latency: latency_histogram(),
        cpu,
    };
    for caller in callers {
        if let Ok((calls, errors, latency)) = caller.await {
            sample.calls += calls;
            sample.errors += errors;
            let _ = sample.latency.add(latency);
        }
    }
    sample
}

/// Issues calls at `rate` per second for `window`, whatever their answers'
/// speed (an open loop), from one task. Calls still unanswered 5 s after
/// the window are abandoned. The backlog is not bounded: see [`open_loop`].
pub async fn fixed_rate<F, Fut>(rate: f64, window: Window, watch: &[u32], call: F) -> Sample
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    open_loop(rate, window, watch, usize::MAX, call).await.sample
}

/// What an [`open_loop`] measured.
#[derive(Debug, Clone)]
pub struct OpenLoop {
    /// The calls answered inside the window.
    pub sample: Sample,
    /// Calls issued over the whole run (warm-up and window).
    pub sent: u64,
    /// Calls that were due but not issued because `max_pending` calls were
    /// already unanswered (the generator's own bound).
    pub skipped: u64,
}

/// [`fixed_rate`] with at most `max_pending` calls unanswered at once: a
/// call due while that many are pending is not issued but counted in
/// [`OpenLoop::skipped`], so a target slower than the offered rate costs
/// this process bounded memory. All answers ready at once are collected in
/// one go, so the generator keeps up with fast (e.g. shed) answers.
pub async fn open_loop<F, Fut>(
    rate: f64,
    window: Window,
    watch: &[u32],
    max_pending: usize,
    call: F,
) -> OpenLoop
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let driver = {
        let phase = phase.clone();
        tokio::spawn(async move {
            let mut latency = latency_histogram();
            let (mut calls, mut errors, mut sent, mut skipped) = (0u64, 0u64, 0u64, 0u64);
            let mut in_flight = FuturesUnordered::new();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            let start = Instant::now();
            let mut due_so_far = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if phase.load(Ordering::Relaxed) == STOP {
                            break;
                        }
                        let due = (start.elapsed().as_secs_f64() * rate) as u64;
                        while due_so_far < due {
                            due_so_far += 1;
                            if in_flight.len() >= max_pending {
                                skipped += 1;
                                continue;
                            }
                            sent += 1;
                            let call = call();
                            let started = Instant::now();
                            in_flight.push(async move { (call.await, started) });
                        }
                    }
                    answers = ready_answers(&mut in_flight), if !in_flight.is_empty() => {
                        if phase.load(Ordering::Relaxed) == MEASURE {
                            for (ok, started) in answers {
                                let _ = latency.record(started.elapsed().as_nanos() as u64);
                                calls += 1;
                                errors += u64::from(!ok);
                            }
                        }
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while in_flight.next().await.is_some() {}
            })
            .await;
            (calls, errors, latency, sent, skipped)
        })
    };
    let (elapsed, cpu) = measure_window(window, &phase, watch).await;
    let (calls, errors, latency, sent, skipped) = driver.await.unwrap_or((0, 0, latency_histogram(), 0, 0));
    OpenLoop {
        sample: Sample {
            calls,
            errors,
            elapsed,
            latency,
            cpu,
        },
        sent,
        skipped,
    }
}

/// Every answer of `in_flight` that is ready now (at least one: pending
/// until then), collected in one poll rather than one per wake-up.
async fn ready_answers<T, F>(in_flight: &mut FuturesUnordered<F>) -> Vec<T>
where
    F: Future<Output = T>,
{
    std::future::poll_fn(|cx| {
        let mut ready = Vec::new();
        // Ready(None) (empty) and Pending (nothing more now, waker kept)
        // both end the batch.
        while let Poll::Ready(Some(answer)) = in_flight.poll_next_unpin(cx) {
            ready.push(answer);
        }
        if ready.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(ready)
        }
    })
    .await
}

/// Waits out the warm-up, opens the window, waits it out, closes it; returns
/// its length and the CPU time of each watched process inside it. Load
/// generators of their own (the MQTT client) drive `phase` with it.
pub async fn measure_window(
    window: Window,
    phase: &AtomicU8,
    watch: &[u32],
) -> (Duration, Vec<Option<Duration>>) {
    tokio::time::sleep(window.warmup).await;
    let before: Vec<_> = watch.iter().map(|&pid| procfs::cpu_time(pid)).collect();
    let started = Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    tokio::time::sleep(window.measure).await;
    phase.store(STOP, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let after: Vec<_> = watch.iter().map(|&pid| procfs::cpu_time(pid)).collect();
    let cpu = before
        .into_iter()
        .zip(after)
        .map(|(b, a)| Some(a?.saturating_sub(b?)))
        .collect();
    (elapsed, cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short() -> Window {
        Window {
            warmup: Duration::from_millis(20),
            measure: Duration::from_millis(100),
        }
    }

    #[tokio::test]
    async fn closed_loop_counts_calls_in_the_window() {
        let sample = closed_loop(4, short(), &[std::process::id()], || async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            true
        })
        .await;
        assert!(sample.calls > 0);
        assert_eq!(sample.errors, 0);
        assert!(sample.p50_us() >= 1_000.0);
        assert_eq!(sample.cpu.len(), 1);
    }

    #[tokio::test]
    async fn fixed_rate_keeps_its_rate() {
        let sample = fixed_rate(1_000.0, short(), &[], || async { false }).await;
        // 1000/s over 100 ms: about 100 calls, all counted as errors.
        assert!((50..=150).contains(&sample.calls), "{}", sample.calls);
        assert_eq!(sample.errors, sample.calls);
    }
}
