//! The `run` subcommand: starts the stub, the echo and the hookd instances as
//! separate processes, drives every scenario from this process (rounds
//! interleaved A B A B, medians quoted) and prints the markdown report.
//!
//! Scenarios (letters as in the benchmark issue):
//! - (b)/(f) N = 1 latency of direct HTTP, hookd and the echo;
//! - (a) uncached `auth_on_publish` through hookd vs direct HTTP at N = 16, 64, 256;
//! - (c) cached verdicts through hookd vs the echo at N = 64, 256;
//! - (e) `on_publish` fan-out to 1, 2, 4, 8 endpoints at a fixed rate;
//! - (d) hookd's RSS per idle broker stream.

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use anyhow::{Context, bail};

use crate::{
    load::{self, Sample, Window},
    procfs,
    procs::{self, Proc, Webhook},
    report::{Report, Row, Target, median},
    stub::Stats,
    workload::{self, Direct},
};

/// What `run` was asked for.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// About 1 s per point and 1 round: a smoke test.
    pub quick: bool,
    /// Measured seconds per point.
    pub seconds: f64,
    /// Rounds of interleaved points; medians are taken over them.
    pub rounds: usize,
    /// Tokio worker threads of the stub and this process (the load
    /// generator and direct driver), and by default of hookd and the echo.
    pub threads: usize,
    /// Tokio worker threads of hookd and the echo, when not `threads`.
    pub server_threads: Option<usize>,
    /// The hookd binary (default: built and found by [`procs::locate_hookd`]).
    pub hookd: Option<PathBuf>,
    /// Scenario letters to run (default all of `abcdef`).
    pub only: String,
}

/// The fan-out widths of scenario (e).
const FAN_OUT: [usize; 4] = [1, 2, 4, 8];
/// In-flight N of scenario (a).
const UNCACHED_N: [usize; 3] = [16, 64, 256];
/// In-flight N of scenario (c).
const CACHED_N: [usize; 2] = [64, 256];
/// Idle streams opened for scenario (d).
const IDLE_STREAMS: usize = 1_000;

struct Rig {
    stub: Proc,
    echo: Proc,
    main: Proc,
    cached: Proc,
    fan: Vec<Proc>,
    hookd: PathBuf,
    dir: PathBuf,
    /// hookd's worker threads.
    threads: usize,
    me: u32,
}

/// Runs the benchmark and prints its report; fails when a scenario saw
/// calls fail (never because a target was missed).
pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("warning: hookd-bench is a debug build; measure with `cargo run --release -p hookd-bench`");
    }
    let hookd = procs::locate_hookd(options.hookd.clone())?;
    let window = if options.quick {
        Window {
            warmup: Duration::from_millis(300),
            measure: Duration::from_secs(1),
        }
    } else {
        Window {
            warmup: Duration::from_millis(700),
            measure: Duration::from_secs_f64(options.seconds.max(0.5)),
        }
    };
    let rounds = if options.quick { 1 } else { options.rounds.max(1) };
    let server_threads = options.server_threads.unwrap_or(options.threads).max(1);
    let rig = Rig::start(hookd, options.threads, server_threads).await?;
    eprintln!(
        "stub {} · echo {} · hookd {} (cached {}) · {} worker threads (hookd and echo {}) · {rounds} round(s) of {:.1} s",
        rig.stub.addr,
        rig.echo.addr,
        rig.main.addr,
        rig.cached.addr,
        options.threads,
        server_threads,
        window.measure.as_secs_f64()
    );
    let mut report = Report::new(options.threads, server_threads, rounds, window);
    let wants = |letter: char| options.only.contains(letter);
    if wants('b') || wants('f') {
        latency(&rig, window, rounds, &mut report).await?;
    }
    let mut hookd_256 = None;
    if wants('a') || wants('e') {
        hookd_256 = Some(uncached(&rig, window, rounds, &mut report, wants('a')).await?);
    }
    if wants('c') {
        cached(&rig, window, rounds, &mut report).await?;
    }
    if wants('e') {
        let capacity = hookd_256.unwrap_or(20_000.0);
        fan_out(&rig, window, rounds, capacity, &mut report).await?;
    }
    if wants('d') {
        idle_memory(&rig, &mut report).await?;
    }
    println!("{}", report.markdown());
    let failures = report.failures();
    if failures > 0 {
        bail!("{failures} measured point(s) had failed calls (see the `errors` notes above)");
    }
    Ok(())
}

impl Rig {
    async fn start(hookd: PathBuf, threads: usize, server_threads: usize) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("hookd-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let threads_arg = threads.to_string();
        let stub =
            procs::spawn_self("stub", &["stub".into(), "--threads".into(), threads_arg.clone()]).await?;
        let echo_threads = server_threads.to_string();
        let echo = procs::spawn_self("echo", &["echo".into(), "--threads".into(), echo_threads]).await?;
        let url = |path: &str| format!("http://{}{path}", stub.addr);
        let main = procs::spawn_hookd(
            &hookd,
            &dir,
            "hookd",
            server_threads,
            &[Webhook {
                hook: "auth_on_publish",
                endpoint: url("/plain"),
                base64_payload: true,
            }],
        )
        .await?;
        let cached = procs::spawn_hookd(
            &hookd,
            &dir,
            "hookd-cached",
            server_threads,
            &[Webhook {
                hook: "auth_on_publish",
                endpoint: url("/max-age/3600/cached"),
                base64_payload: true,
            }],
        )
        .await?;
        let mut fan = Vec::new();
        for k in FAN_OUT {
            let webhooks: Vec<_> = (0..k)
                .map(|i| Webhook {
                    hook: "on_publish",
                    endpoint: url(&format!("/fan{k}/{i}")),
                    base64_payload: false,
                })
                .collect();
            fan.push(
                procs::spawn_hookd(&hookd, &dir, &format!("hookd-fan{k}"), server_threads, &webhooks).await?,
            );
        }
        Ok(Self {
            stub,
            echo,
            main,
            cached,
            fan,
            hookd,
            dir,
            threads: server_threads,
            me: std::process::id(),
        })
    }

    async fn stub_stats(&self, http: &reqwest::Client, reset: bool) -> anyhow::Result<Stats> {
        let query = if reset { "?reset" } else { "" };
        let url = format!("http://{}/stats{query}", self.stub.addr);
        Ok(http.get(url).send().await?.error_for_status()?.json().await?)
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// (b) and (f): one call at a time.
async fn latency(rig: &Rig, window: Window, rounds: usize, report: &mut Report) -> anyhow::Result<()> {
    let hookd = workload::bridge(&rig.main.addr.to_string()).await?;
    let echo = workload::bridge(&rig.echo.addr.to_string()).await?;
    let direct = Direct::new(&format!("http://{}/plain", rig.stub.addr))?;
    let watch = [rig.me, rig.main.pid(), rig.stub.pid(), rig.echo.pid()];
    let mut samples: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for round in 0..rounds {
        eprintln!("(b) N=1 latency, round {}/{rounds}", round + 1);
        let d = direct.clone();
        samples
            .entry("direct")
            .or_default()
            .push(load::closed_loop(1, window, &watch, move || d.clone().call()).await);
        let (h, args) = (hookd.clone(), workload::auth_on_publish());
        samples.entry("hookd").or_default().push(
            load::closed_loop(1, window, &watch, move || {
                workload::bridge_call(h.clone(), args.clone())
            })
            .await,
        );
        let (e, args) = (echo.clone(), workload::auth_on_publish());
        samples.entry("echo").or_default().push(
            load::closed_loop(1, window, &watch, move || {
                workload::bridge_call(e.clone(), args.clone())
            })
            .await,
        );
    }
    let get = |name: &str| samples.get(name).map(Vec::as_slice).unwrap_or_default();
    let (direct, hookd, echo) = (get("direct"), get("hookd"), get("echo"));
    for (name, set) in [("direct", direct), ("hookd", hookd), ("echo", echo)] {
        report.note_errors(&format!("(b) {name} N=1"), set);
        report.cpu_line(&format!("(b) N=1 {name}"), set, &watch_names(rig, &watch));
    }
    let p = |set: &[Sample], f: fn(&Sample) -> f64| median(set.iter().map(f));
    let (d50, h50, e50) = (
        p(direct, Sample::p50_us),
        p(hookd, Sample::p50_us),
        p(echo, Sample::p50_us),
    );
    let (d99, h99, e99) = (
        p(direct, Sample::p99_us),
        p(hookd, Sample::p99_us),
        p(echo, Sample::p99_us),
    );
    let rates = format!(
        "calls/s: direct {}, hookd {}, echo {}",
        kilo(p(direct, Sample::rate)),
        kilo(p(hookd, Sample::rate)),
        kilo(p(echo, Sample::rate))
    );
    // Per-round differences, then the median, so the pairs stay interleaved.
    let delta = |f: fn(&Sample) -> f64| {
        median(
            hookd
                .iter()
                .zip(direct)
                .zip(echo)
                .map(|((h, d), e)| (f(h) - f(d)) / f(e).max(1e-9)),
        )
    };
    report.row(Row {
        id: "b",
        what: "N=1 added p50: (hookd − direct) ÷ echo p50".into(),
        measured: format!(
            "p50 direct {d50:.0} µs, hookd {h50:.0} µs, echo {e50:.0} µs; Δ {:.0} µs ({rates})",
            h50 - d50
        ),
        ratio: delta(Sample::p50_us),
        target: Target::AtMost(0.9),
    });
    report.row(Row {
        id: "b",
        what: "N=1 added p99: (hookd − direct) ÷ echo p99".into(),
        measured: format!(
            "p99 direct {d99:.0} µs, hookd {h99:.0} µs, echo {e99:.0} µs; Δ {:.0} µs",
            h99 - d99
        ),
        ratio: delta(Sample::p99_us),
        target: Target::AtMost(1.5),
    });
    report.row(Row {
        id: "f",
        what: "serial call p50 through hookd (ms)".into(),
        measured: format!("{:.3} ms", h50 / 1_000.0),
        ratio: h50 / 1_000.0,
        target: Target::Below(1.0),
    });
    Ok(())
}

/// (a): uncached verdicts vs direct HTTP. Returns hookd's median rate at the
/// largest N, the capacity (e) is paced by.
async fn uncached(
    rig: &Rig,
    window: Window,
    rounds: usize,
    report: &mut Report,
    full: bool,
) -> anyhow::Result<f64> {
    let hookd = workload::bridge(&rig.main.addr.to_string()).await?;
    let direct = Direct::new(&format!("http://{}/plain", rig.stub.addr))?;
    let watch = [rig.me, rig.main.pid(), rig.stub.pid()];
    let sizes: &[usize] = if full { &UNCACHED_N } else { &UNCACHED_N[2..] };
    let mut direct_samples: BTreeMap<usize, Vec<Sample>> = BTreeMap::new();
    let mut hookd_samples: BTreeMap<usize, Vec<Sample>> = BTreeMap::new();
    for round in 0..rounds {
        for &n in sizes {
            eprintln!("(a) uncached N={n}, round {}/{rounds}", round + 1);
            let d = direct.clone();
            let sample = load::closed_loop(n, window, &watch, move || d.clone().call()).await;
            direct_samples.entry(n).or_default().push(sample);
            let (h, args) = (hookd.clone(), workload::auth_on_publish());
            let sample = load::closed_loop(n, window, &watch, move || {
                workload::bridge_call(h.clone(), args.clone())
            })
            .await;
            hookd_samples.entry(n).or_default().push(sample);
        }
    }
    let names = watch_names(rig, &watch);
    let mut capacity = 0.0;
    for &n in sizes {
        let (direct, hookd) = (&direct_samples[&n], &hookd_samples[&n]);
        report.note_errors(&format!("(a) direct N={n}"), direct);
        report.note_errors(&format!("(a) hookd N={n}"), hookd);
        report.cpu_line(&format!("(a) N={n} direct"), direct, &names);
        report.cpu_line(&format!("(a) N={n} hookd"), hookd, &names);
        let (d, h) = (
            median(direct.iter().map(Sample::rate)),
            median(hookd.iter().map(Sample::rate)),
        );
        capacity = h;
        if !full {
            continue;
        }
        let target = match n {
            16 => 0.5,
            64 => 0.8,
            _ => 0.9,
        };
        report.row(Row {
            id: "a",
            what: format!("N={n} uncached verdicts/s: hookd ÷ direct"),
            measured: format!("hookd {}/s, direct {}/s", kilo(h), kilo(d)),
            ratio: median(
                hookd
                    .iter()
                    .zip(direct)
                    .map(|(h, d)| h.rate() / d.rate().max(1e-9)),
            ),
            target: Target::AtLeast(target),
        });
        // hookd's CPU per verdict vs the direct driver's (this process) per request.
        let per_call = |s: &Sample, i: usize| s.cpu_per_call_us(i, s.calls).unwrap_or(f64::NAN);
        let (hc, dc) = (
            median(hookd.iter().map(|s| per_call(s, 1))),
            median(direct.iter().map(|s| per_call(s, 0))),
        );
        report.row(Row {
            id: "a",
            what: format!("N={n} CPU per call: hookd process ÷ direct driver"),
            measured: format!("hookd {hc:.1} µs, direct driver {dc:.1} µs"),
            ratio: median(
                hookd
                    .iter()
                    .zip(direct)
                    .map(|(h, d)| per_call(h, 1) / per_call(d, 0)),
            ),
            target: Target::AtMost(1.15),
        });
    }
    Ok(capacity)
}

/// (c): cached verdicts vs the echo.
async fn cached(rig: &Rig, window: Window, rounds: usize, report: &mut Report) -> anyhow::Result<()> {
    let cached = workload::bridge(&rig.cached.addr.to_string()).await?;
    let echo = workload::bridge(&rig.echo.addr.to_string()).await?;
    // Fill the cache: the first call goes to the webhook.
    if !workload::bridge_call(cached.clone(), workload::auth_on_publish()).await {
        bail!("the first call through hookd-cached was not ok");
    }
    let watch = [rig.me, rig.cached.pid(), rig.echo.pid()];
    let mut echo_samples: BTreeMap<usize, Vec<Sample>> = BTreeMap::new();
    let mut cached_samples: BTreeMap<usize, Vec<Sample>> = BTreeMap::new();
    for round in 0..rounds {
        for n in CACHED_N {
            eprintln!("(c) cached N={n}, round {}/{rounds}", round + 1);
            let (e, args) = (echo.clone(), workload::auth_on_publish());
            let sample = load::closed_loop(n, window, &watch, move || {
                workload::bridge_call(e.clone(), args.clone())
            })
            .await;
            echo_samples.entry(n).or_default().push(sample);
            let (c, args) = (cached.clone(), workload::auth_on_publish());
            let sample = load::closed_loop(n, window, &watch, move || {
                workload::bridge_call(c.clone(), args.clone())
            })
            .await;
            cached_samples.entry(n).or_default().push(sample);
        }
    }
    let names = watch_names(rig, &watch);
    for n in CACHED_N {
        let (echo, cached) = (&echo_samples[&n], &cached_samples[&n]);
        report.note_errors(&format!("(c) echo N={n}"), echo);
        report.note_errors(&format!("(c) cached N={n}"), cached);
        report.cpu_line(&format!("(c) N={n} echo"), echo, &names);
        report.cpu_line(&format!("(c) N={n} hookd cached"), cached, &names);
        let per_call = |s: &Sample, i: usize| s.cpu_per_call_us(i, s.calls).unwrap_or(f64::NAN);
        report.row(Row {
            id: "c",
            what: format!("N={n} cached verdicts/s: hookd ÷ echo"),
            measured: format!(
                "hookd {}/s ({:.1} µs CPU/call), echo {}/s ({:.1} µs CPU/call)",
                kilo(median(cached.iter().map(Sample::rate))),
                median(cached.iter().map(|s| per_call(s, 1))),
                kilo(median(echo.iter().map(Sample::rate))),
                median(echo.iter().map(|s| per_call(s, 2))),
            ),
            ratio: median(
                cached
                    .iter()
                    .zip(echo)
                    .map(|(c, e)| c.rate() / e.rate().max(1e-9)),
            ),
            target: Target::AtLeast(0.95),
        });
    }
    Ok(())
}

/// What one fan-out point measured at the stub.
struct FanPoint {
    /// Endpoint calls received per second.
    received: f64,
    /// Endpoint calls offered per second (notifications/s × k).
    offered: f64,
    p50_us: f64,
    p99_us: f64,
    hookd_cores: f64,
}

/// (e): `on_publish` to k endpoints, paced so that k × the notification rate
/// is 70% of hookd's uncached capacity at N=256; measured at the stub.
async fn fan_out(
    rig: &Rig,
    window: Window,
    rounds: usize,
    capacity: f64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let endpoint_rate = (capacity * 0.7).max(1_000.0);
    let mut clients = Vec::new();
    for proc in &rig.fan {
        clients.push(workload::bridge(&proc.addr.to_string()).await?);
    }
    let mut points: BTreeMap<usize, Vec<FanPoint>> = BTreeMap::new();
    for round in 0..rounds {
        for (i, k) in FAN_OUT.into_iter().enumerate() {
            eprintln!("(e) fan-out k={k}, round {}/{rounds}", round + 1);
            let client = clients[i].clone();
            let hookd_pid = rig.fan[i].pid();
            let rate = endpoint_rate / k as f64;
            let load = tokio::spawn(async move {
                let notify = move || workload::bridge_notify(client.clone());
                load::fixed_rate(rate, window, &[hookd_pid], notify).await
            });
            tokio::time::sleep(window.warmup).await;
            let before = rig.stub_stats(&http, true).await?;
            let started = tokio::time::Instant::now();
            tokio::time::sleep(window.measure).await;
            let after = rig.stub_stats(&http, false).await?;
            let elapsed = started.elapsed().as_secs_f64();
            let sample = load.await.context("fan-out load task")?;
            report.note_errors(&format!("(e) k={k}"), std::slice::from_ref(&sample));
            points.entry(k).or_default().push(FanPoint {
                received: after.requests.saturating_sub(before.requests) as f64 / elapsed,
                offered: rate * k as f64,
                p50_us: after.p50_us,
                p99_us: after.p99_us,
                hookd_cores: sample.cores(0).unwrap_or(f64::NAN),
            });
        }
    }
    let base = &points[&1];
    for k in FAN_OUT {
        let set = &points[&k];
        let throughput = median(
            set.iter()
                .zip(base)
                .map(|(p, b)| (p.received / p.offered) / (b.received / b.offered).max(1e-9)),
        );
        let latency = median(set.iter().zip(base).map(|(p, b)| p.p50_us / b.p50_us.max(1e-9)));
        let latency99 = median(set.iter().zip(base).map(|(p, b)| p.p99_us / b.p99_us.max(1e-9)));
        let measured = format!(
            "{} endpoint calls/s of {} offered; delivery p50 {:.0} µs, p99 {:.0} µs; hookd {:.2} cores",
            kilo(median(set.iter().map(|p| p.received))),
            kilo(median(set.iter().map(|p| p.offered))),
            median(set.iter().map(|p| p.p50_us)),
            median(set.iter().map(|p| p.p99_us)),
            median(set.iter().map(|p| p.hookd_cores)),
        );
        report.row(Row {
            id: "e",
            what: format!("fan-out k={k}: delivered share vs k=1"),
            measured,
            ratio: throughput,
            target: Target::AtLeast(0.9),
        });
        report.row(Row {
            id: "e",
            what: format!("fan-out k={k}: delivery p50 ÷ k=1 (p99 ratio {latency99:.2})"),
            measured: String::new(),
            ratio: latency,
            target: Target::AtMost(1.2),
        });
    }
    Ok(())
}

/// (d): RSS per idle broker stream, on a fresh hookd.
async fn idle_memory(rig: &Rig, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("(d) {IDLE_STREAMS} idle streams");
    let webhooks = [Webhook {
        hook: "auth_on_publish",
        endpoint: format!("http://{}/plain", rig.stub.addr),
        base64_payload: true,
    }];
    let hookd = procs::spawn_hookd(&rig.hookd, &rig.dir, "hookd-idle", rig.threads, &webhooks).await?;
    let address = hookd.addr.to_string();
    // A few streams first, so the baseline includes the connection and
    // every code path's first allocations.
    let warm = workload::idle_streams(&address, 10, 10).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = procfs::rss_bytes(hookd.pid()).context("hookd RSS")?;
    let streams = workload::idle_streams(&address, IDLE_STREAMS, IDLE_STREAMS).await?;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let after = procfs::rss_bytes(hookd.pid()).context("hookd RSS")?;
    drop((warm, streams));
    let per_stream = after.saturating_sub(before) as f64 / IDLE_STREAMS as f64 / 1024.0;
    report.row(Row {
        id: "d",
        what: format!("RSS per idle broker stream ({IDLE_STREAMS} on one connection, KiB)"),
        measured: format!(
            "VmRSS {:.1} MiB → {:.1} MiB",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0
        ),
        ratio: per_stream,
        target: Target::AtMost(16.0),
    });
    Ok(())
}

fn watch_names(rig: &Rig, watch: &[u32]) -> Vec<String> {
    watch
        .iter()
        .map(|&pid| {
            if pid == rig.me {
                "bench".to_owned()
            } else if pid == rig.main.pid() || pid == rig.cached.pid() {
                "hookd".to_owned()
            } else if pid == rig.stub.pid() {
                "stub".to_owned()
            } else if pid == rig.echo.pid() {
                "echo".to_owned()
            } else {
                format!("pid {pid}")
            }
        })
        .collect()
}

/// `12.3k` for 12 345.
pub fn kilo(value: f64) -> String {
    if value >= 1_000.0 {
        format!("{:.1}k", value / 1_000.0)
    } else {
        format!("{value:.0}")
    }
}
