//! The `run` subcommand: starts the stub, the echo and the hookd instances as
//! separate processes, drives every scenario from this process (rounds
//! interleaved A B A B, medians quoted) and prints the markdown report.
//!
//! Scenarios (letters as in the benchmark issue):
//! - (b)/(f) N = 1 latency of direct HTTP, hookd and the echo;
//! - (a) uncached `auth_on_publish` through hookd vs direct HTTP at N = 16, 64, 256;
//! - (c) cached verdicts through hookd vs the echo at N = 64, 256;
//! - (e) `on_publish` fan-out to 1, 2, 4, 8 endpoints at a fixed rate;
//! - (d) hookd's RSS per idle broker stream, per call in flight (10,000
//!   held by the stub), and under 2× overload (flat, the excess shed);
//! - (g) QoS 1 publishes end to end through a real Mosquitto, with the hookd
//!   plugin (cached verdicts) vs without it (skipped, with a note, when
//!   Mosquitto or the plugin is missing);
//! - (h) notifications acknowledged through the durable outbox (each one on
//!   disk before its ack) vs the echo, at N = 256 (throughput) and N = 1
//!   (ack latency), beside the disk's own fsync latency;
//! - (i) the delivery rate of an outbox backlog built during a 10 s endpoint
//!   outage ÷ a plain drain's, and hookd's RSS with 1,000,000 notifications
//!   pending;
//! - (t) (b)'s N = 1 latency and (a)'s N = 256 throughput with TLS on the
//!   broker link, as ratios against the plaintext link ([`crate::tls`]).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, bail};
use hookd_bridge::{ErrorKind, Outcome, Overload, Source};
use tokio::{task::JoinSet, time::Instant};

use crate::{
    load::{self, Sample, Window},
    mqtt, procfs,
    procs::{self, Proc, Tuning, Webhook},
    report::{Report, Row, Target, median},
    stub::{Stats, latency_histogram},
    tls,
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
    /// Scenario letters to run (`abcdefghit`; main.rs gives the default).
    pub only: String,
}

/// The fan-out widths of scenario (e).
const FAN_OUT: [usize; 4] = [1, 2, 4, 8];
/// (e)'s endpoint calls per second, as a share of hookd's uncached verdict
/// rate at N=256: a notification delivery is its own task, answered by an
/// open loop in 1 ms bursts, and costs hookd more than a chain call does
/// (about 25 µs against 18), so 50% keeps every k below saturation.
const FAN_OUT_LOAD: f64 = 0.5;
/// In-flight N of scenario (a).
const UNCACHED_N: [usize; 3] = [16, 64, 256];
/// In-flight N of scenario (c).
const CACHED_N: [usize; 2] = [64, 256];
/// Idle streams opened for scenario (d).
const IDLE_STREAMS: usize = 1_000;
/// Calls held in flight for scenario (d)'s per-call RSS.
const HELD_CALLS: usize = 10_000;
/// Calls held before the RSS baseline is read, so it includes the stream,
/// the HTTP client and every code path's first allocations.
const HELD_WARM: usize = 16;
/// Held calls are issued in steps of this many, each waited on at the stub,
/// so hookd's 10,000 connects do not overflow the stub's accept backlog.
const HELD_STEP: usize = 1_000;
/// hookd's default `http.pool_max_connections`, which (d) runs with.
const DEFAULT_POOL: usize = 100;
/// Seconds of 2× overload before scenario (d) judges RSS: hookd fills its
/// 4,096 calls in flight (and as many webhook connections) meanwhile.
const OVERLOAD_FILL: f64 = 1.0;
/// Calls the overload generator keeps unanswered at most: the bridge
/// client's 10,000 in flight plus room for answers not yet collected.
const MAX_PENDING: usize = 20_000;
/// Bytes in a MiB, for RSS figures.
const MIB: f64 = 1024.0 * 1024.0;
/// In-flight N of scenario (h)'s throughput point.
const OUTBOX_N: usize = 256;
/// Scenario (h)'s ack latency target at N = 1, p99 in µs.
const OUTBOX_P99_US: f64 = 2_000.0;
/// In-flight N of scenario (g).
const MQTT_N: [usize; 2] = [16, 64];

struct Rig {
    stub: Proc,
    echo: Proc,
    main: Proc,
    cached: Proc,
    fan: Vec<Proc>,
    hookd: PathBuf,
    /// The stub's (and this process's) runtime threads.
    load_threads: usize,
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
    if wants('t') {
        let setup = tls::Setup {
            hookd: &rig.hookd,
            dir: &rig.dir,
            threads: rig.threads,
            stub: rig.stub.addr,
            plain: &rig.main,
            watch: [rig.me, rig.main.pid(), rig.stub.pid()],
        };
        tls::scenario(setup, window, rounds, &mut report).await?;
    }
    // (d) and (g) before (e): the fan-out can leave tens of thousands of
    // webhook connections open (and loopback ports in use) for a while,
    // and these need thousands of sockets and free ports of their own.
    let mut notes = Vec::new();
    if wants('d') {
        idle_memory(&rig, &mut report).await?;
        let held = held_memory(&rig, &mut report).await;
        settle(held, "(d) calls in flight", &mut report, &mut notes);
        let overload = overload_memory(&rig, options.quick, window, &mut report).await;
        settle(
            overload.map(|()| Ran::Yes),
            "(d) 2× overload",
            &mut report,
            &mut notes,
        );
    }
    if wants('g') {
        let ran = mosquitto(&rig, window, rounds, &mut report).await;
        settle(ran, "(g) Mosquitto end to end", &mut report, &mut notes);
    }
    if wants('h') {
        outbox(&rig, window, rounds, &mut report).await?;
    }
    if wants('i') {
        backlogs(&rig, window, &mut report).await?;
    }
    if wants('e') {
        let capacity = hookd_256.unwrap_or(20_000.0);
        fan_out(&rig, window, rounds, capacity, &mut report).await?;
    }
    println!("{}", report.markdown());
    if !notes.is_empty() {
        println!("notes:");
        for note in &notes {
            println!("- {note}");
        }
    }
    let failures = report.failures();
    if failures > 0 {
        bail!("{failures} measured point(s) had failed calls (see the `errors` notes above)");
    }
    Ok(())
}

/// Whether a scenario that needs outside software ran.
enum Ran {
    Yes,
    /// Not run, and why.
    Skipped(String),
}

/// Notes a skipped scenario, or an aborted one (also as a failed point, so
/// the run fails after printing the table); the run goes on either way.
fn settle(ran: anyhow::Result<Ran>, scenario: &str, report: &mut Report, notes: &mut Vec<String>) {
    match ran {
        Ok(Ran::Yes) => {}
        Ok(Ran::Skipped(why)) => {
            eprintln!("{scenario} skipped: {why}");
            notes.push(format!("{scenario} skipped: {why}"));
        }
        Err(error) => {
            eprintln!("{scenario} failed: {error:#}");
            notes.push(format!("{scenario} failed: {error:#}"));
            report.note_errors(
                &format!("{scenario} (aborted, see the notes)"),
                &[failed_sample()],
            );
        }
    }
}

/// A sample with no calls, which the report lists as a failed point.
fn failed_sample() -> Sample {
    Sample {
        calls: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: latency_histogram(),
        cpu: Vec::new(),
    }
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
            // Notifications come from an open loop, so nothing but the pool
            // bounds how many connections a backlog would open: hookd's own
            // bound (waiting for one of 256 per endpoint) rather than one
            // connection per delivery in flight.
            let tuning = Tuning {
                pool_max_connections: Some(256),
                ..Tuning::default()
            };
            let name = format!("hookd-fan{k}");
            fan.push(procs::spawn_hookd_with(&hookd, &dir, &name, server_threads, &webhooks, tuning).await?);
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
            load_threads: threads,
            me: std::process::id(),
        })
    }

    async fn stub_stats(&self, http: &reqwest::Client, reset: bool) -> anyhow::Result<Stats> {
        stub_stats_at(http, self.stub.addr, reset).await
    }
}

/// `GET /stats` (with `?reset` if asked) of the stub at `stub`.
async fn stub_stats_at(http: &reqwest::Client, stub: SocketAddr, reset: bool) -> anyhow::Result<Stats> {
    let query = if reset { "?reset" } else { "" };
    let url = format!("http://{stub}/stats{query}");
    Ok(http.get(url).send().await?.error_for_status()?.json().await?)
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

/// A hookd named `name` with its own outbox store and metrics, delivering
/// `on_publish` to the stub.
async fn outbox_hookd(rig: &Rig, name: &str) -> anyhow::Result<Proc> {
    let tuning = Tuning {
        metrics: true,
        ..Tuning::default()
    };
    procs::spawn_hookd_with(
        &rig.hookd,
        &rig.dir,
        name,
        rig.threads,
        &[Webhook {
            hook: "on_publish",
            endpoint: format!("http://{}/plain", rig.stub.addr),
            base64_payload: false,
        }],
        tuning,
    )
    .await
}

/// (h): `on_publish` acknowledged through a hookd whose outbox writes each
/// one durably (group commit) before its ack, vs the echo's answers, at
/// N = [`OUTBOX_N`] (rate) and N = 1 (latency). Deliveries to the stub run
/// behind the acks and are not what is measured here.
async fn outbox(rig: &Rig, window: Window, rounds: usize, report: &mut Report) -> anyhow::Result<()> {
    let hookd = outbox_hookd(rig, "hookd-outbox").await?;
    let metrics = hookd.metrics.context("hookd-outbox serves metrics")?;
    let http = reqwest::Client::new();
    let outbox = workload::bridge(&hookd.addr.to_string()).await?;
    let echo = workload::bridge(&rig.echo.addr.to_string()).await?;
    let watch = [rig.me, hookd.pid(), rig.echo.pid()];
    let mut samples: BTreeMap<(&str, usize), Vec<Sample>> = BTreeMap::new();
    // How fast the N=256 points' backlogs drained to the stub, and hookd's
    // RSS before each and with its backlog (which stays on disk).
    let mut drained = Vec::new();
    let mut rss = Vec::new();
    // What an append's commit cannot beat: the disk's own fsync, measured
    // beside the store before each round.
    let mut fsyncs = Vec::new();
    for round in 0..rounds {
        fsyncs.push(disk_fsync_us(&rig.dir).await?);
        for n in [1, OUTBOX_N] {
            // The last point's notifications are still being delivered:
            // each point starts with an empty outbox.
            wait_outbox_empty(&http, metrics, Duration::from_secs(120)).await?;
            eprintln!("(h) outbox N={n}, round {}/{rounds}", round + 1);
            let (e, args) = (echo.clone(), workload::auth_on_publish());
            let sample = load::closed_loop(n, window, &watch, move || {
                workload::bridge_call(e.clone(), args.clone())
            })
            .await;
            samples.entry(("echo", n)).or_default().push(sample);
            let o = outbox.clone();
            let before = procfs::rss_bytes(hookd.pid()).unwrap_or(0);
            let sample =
                load::closed_loop(n, window, &watch, move || workload::bridge_notify(o.clone())).await;
            if n == OUTBOX_N {
                rss.push((before, procfs::rss_bytes(hookd.pid()).unwrap_or(0)));
                let started = Instant::now();
                let backlog = wait_outbox_empty(&http, metrics, Duration::from_secs(120)).await?;
                drained.push(backlog as f64 / started.elapsed().as_secs_f64().max(1e-3));
            }
            samples.entry(("outbox", n)).or_default().push(sample);
        }
    }
    let names = ["bench".to_owned(), "hookd-outbox".to_owned(), "echo".to_owned()];
    for n in [1, OUTBOX_N] {
        let (echo, outbox) = (&samples[&("echo", n)], &samples[&("outbox", n)]);
        report.note_errors(&format!("(h) echo N={n}"), echo);
        report.note_errors(&format!("(h) outbox N={n}"), outbox);
        report.cpu_line(&format!("(h) N={n} hookd outbox"), outbox, &names);
    }
    let (echo, outbox) = (&samples[&("echo", OUTBOX_N)], &samples[&("outbox", OUTBOX_N)]);
    report.row(Row {
        id: "h",
        what: format!("N={OUTBOX_N} acknowledged notifications/s: durable outbox ÷ echo"),
        measured: format!(
            "outbox {}/s, echo {}/s; the disk's bound N ÷ fsync p50 {}/s; the backlog then delivered at {}/s (1 s resolution); VmRSS {:.1} MiB before, {:.1} MiB with the backlog",
            kilo(median(outbox.iter().map(Sample::rate))),
            kilo(median(echo.iter().map(Sample::rate))),
            kilo(OUTBOX_N as f64 * 1e6 / median(fsyncs.iter().map(|(p50, _)| *p50)).max(1.0)),
            kilo(median(drained.iter().copied())),
            median(rss.iter().map(|(before, _)| *before as f64 / MIB)),
            median(rss.iter().map(|(_, after)| *after as f64 / MIB)),
        ),
        ratio: median(
            outbox
                .iter()
                .zip(echo)
                .map(|(o, e)| o.rate() / e.rate().max(1e-9)),
        ),
        target: Target::AtLeast(0.5),
    });
    let (echo, outbox) = (&samples[&("echo", 1)], &samples[&("outbox", 1)]);
    report.row(Row {
        id: "h",
        what: "N=1 ack p99 through the durable outbox (µs)".into(),
        measured: format!(
            "outbox p50 {:.0} µs p99 {:.0} µs; echo p50 {:.0} µs p99 {:.0} µs; the disk's fsync of a 4 KiB append p50 {:.0} µs p99 {:.0} µs",
            median(outbox.iter().map(Sample::p50_us)),
            median(outbox.iter().map(Sample::p99_us)),
            median(echo.iter().map(Sample::p50_us)),
            median(echo.iter().map(Sample::p99_us)),
            median(fsyncs.iter().map(|(p50, _)| *p50)),
            median(fsyncs.iter().map(|(_, p99)| *p99)),
        ),
        ratio: median(outbox.iter().map(Sample::p99_us)),
        target: Target::Below(OUTBOX_P99_US),
    });
    Ok(())
}

/// The p50 and p99 (µs) of `fdatasync` after a 4 KiB append to a file in
/// `dir`, over 200 appends: the floor under a durable commit there.
async fn disk_fsync_us(dir: &Path) -> anyhow::Result<(f64, f64)> {
    let path = dir.join("fsync-probe");
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::File::create(&path)?;
        let mut latency = latency_histogram();
        for _ in 0..200 {
            file.write_all(&[0x5a; 4096])?;
            let started = std::time::Instant::now();
            file.sync_data()?;
            let _ = latency.record(started.elapsed().as_nanos() as u64);
        }
        drop(file);
        std::fs::remove_file(&path)?;
        anyhow::Ok((
            latency.value_at_quantile(0.5) as f64 / 1e3,
            latency.value_at_quantile(0.99) as f64 / 1e3,
        ))
    })
    .await?
}

/// How long the endpoint is down for the catch-up figure (the issue's 10 s;
/// scaled down by `--quick`).
const OUTAGE: Duration = Duration::from_secs(10);

/// Notifications held back for the memory figure (scaled down by `--quick`).
const BACKLOG_EVENTS: u64 = 1_000_000;

/// Callers in flight while a backlog is built.
const BACKLOG_N: usize = 64;

/// (i), on a hookd of its own with a durable outbox: the delivery rate of a
/// backlog built during an outage of [`OUTAGE`], once the endpoint is back,
/// ÷ the rate of a plain drain (a backlog left by a burst to an endpoint
/// that never went down), both counted at the stub; and hookd's RSS with
/// [`BACKLOG_EVENTS`] notifications pending.
async fn backlogs(rig: &Rig, window: Window, report: &mut Report) -> anyhow::Result<()> {
    let hookd = outbox_hookd(rig, "hookd-backlog").await?;
    let outbox = &workload::bridge(&hookd.addr.to_string()).await?;
    let quick = window.measure < Duration::from_secs(2);
    let (outage, events) = if quick {
        (Duration::from_secs(2), 20_000)
    } else {
        (OUTAGE, BACKLOG_EVENTS)
    };
    let http = reqwest::Client::new();
    let metrics = hookd.metrics.context("hookd-outbox serves metrics")?;
    let stub = rig.stub.addr;
    let switch = |state: &'static str| {
        let http = http.clone();
        async move {
            http.get(format!("http://{stub}/{state}"))
                .send()
                .await?
                .error_for_status()?;
            anyhow::Ok(())
        }
    };

    // A plain drain: a burst at OUTBOX_N in flight, then what it left.
    wait_outbox_empty(&http, metrics, Duration::from_secs(120)).await?;
    eprintln!("(i) outbox: a plain drain");
    let start = delivered_at(&http, stub).await?;
    let acked = Arc::new(AtomicU64::new(0));
    load::closed_loop(OUTBOX_N, window, &[], counting(outbox, &acked)).await;
    let (steady_backlog, steady) = drain(&http, stub, start, acked.load(Ordering::Relaxed)).await?;

    // An outage: the stub refuses everything while notifications are
    // acknowledged, then answers again.
    wait_outbox_empty(&http, metrics, Duration::from_secs(120)).await?;
    eprintln!("(i) outbox: the endpoint down for {} s", outage.as_secs());
    let start = delivered_at(&http, stub).await?;
    let acked = Arc::new(AtomicU64::new(0));
    switch("down").await?;
    let during = Window {
        warmup: Duration::ZERO,
        measure: outage,
    };
    load::closed_loop(BACKLOG_N, during, &[], counting(outbox, &acked)).await;
    switch("up").await?;
    let (outage_backlog, catch_up) = drain(&http, stub, start, acked.load(Ordering::Relaxed)).await?;
    report.row(Row {
        id: "i",
        what: format!(
            "catch-up after a {} s outage ÷ a plain drain (deliveries/s at the endpoint)",
            outage.as_secs()
        ),
        measured: format!(
            "{} pending after the outage delivered at {}/s; a plain drain of {} at {}/s",
            kilo(outage_backlog as f64),
            kilo(catch_up),
            kilo(steady_backlog as f64),
            kilo(steady),
        ),
        ratio: catch_up / steady.max(1e-9),
        target: Target::AtLeast(CATCH_UP_RATIO),
    });

    // Memory with a large backlog: the endpoint down while `events` are
    // acknowledged.
    wait_outbox_empty(&http, metrics, Duration::from_secs(120)).await?;
    eprintln!("(i) outbox: a backlog of {events} notifications");
    let start = delivered_at(&http, stub).await?;
    let before = procfs::rss_bytes(hookd.pid()).unwrap_or(0);
    switch("down").await?;
    let acked = Arc::new(AtomicU64::new(0));
    let mut callers = JoinSet::new();
    for _ in 0..BACKLOG_N {
        let (call, acked) = (counting(outbox, &acked), acked.clone());
        callers.spawn(async move {
            while acked.load(Ordering::Relaxed) < events {
                call().await;
            }
        });
    }
    let building = Instant::now();
    callers.join_all().await;
    let built_in = building.elapsed();
    let with_backlog = procfs::rss_bytes(hookd.pid()).unwrap_or(0);
    switch("up").await?;
    let (big_backlog, big_drain) = drain(&http, stub, start, acked.load(Ordering::Relaxed)).await?;
    report.row(Row {
        id: "i",
        what: format!("hookd's RSS with {} notifications pending ÷ before", kilo(events as f64)),
        measured: format!(
            "VmRSS {:.1} MiB before, {:.1} MiB with the backlog (acknowledged at {}/s); then delivered at {}/s",
            before as f64 / MIB,
            with_backlog as f64 / MIB,
            kilo(big_backlog as f64 / built_in.as_secs_f64().max(1e-3)),
            kilo(big_drain),
        ),
        ratio: with_backlog as f64 / (before as f64).max(1.0),
        target: Target::AtMost(BACKLOG_RSS_RATIO),
    });
    Ok(())
}

/// The least catch-up rate after an outage, as a share of a plain drain's:
/// deliveries waiting out a retry delay must not leave a recovered endpoint
/// idle.
const CATCH_UP_RATIO: f64 = 0.8;

/// The most hookd's RSS may grow with a backlog (which stays on disk).
const BACKLOG_RSS_RATIO: f64 = 1.5;

/// A caller for [`load::closed_loop`]: one `on_publish`, counted in `acked`
/// when acknowledged.
fn counting(
    outbox: &hookd_bridge::Client,
    acked: &Arc<AtomicU64>,
) -> impl Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync + 'static {
    let (outbox, acked) = (outbox.clone(), acked.clone());
    move || {
        let (outbox, acked) = (outbox.clone(), acked.clone());
        Box::pin(async move {
            let ok = workload::bridge_notify(outbox).await;
            if ok {
                acked.fetch_add(1, Ordering::Relaxed);
            }
            ok
        })
    }
}

/// Notifications the stub at `stub` has taken (answered 200) so far.
async fn delivered_at(http: &reqwest::Client, stub: SocketAddr) -> anyhow::Result<u64> {
    let stats = stub_stats_at(http, stub, false).await?;
    Ok(stats.requests.saturating_sub(stats.refused))
}

/// Waits until the stub has taken `acked` notifications since it had taken
/// `start`; returns how many were still pending when the wait began and the
/// rate they were delivered at.
async fn drain(
    http: &reqwest::Client,
    stub: SocketAddr,
    start: u64,
    acked: u64,
) -> anyhow::Result<(u64, f64)> {
    let began = Instant::now();
    let taken_before = delivered_at(http, stub).await?.saturating_sub(start);
    let pending = acked.saturating_sub(taken_before);
    let deadline = began + Duration::from_secs(300);
    let mut first = None;
    loop {
        let taken = delivered_at(http, stub).await?.saturating_sub(start);
        if taken > taken_before && first.is_none() {
            first = Some(began.elapsed());
        }
        if taken >= acked {
            eprintln!(
                "(i) {pending} pending delivered in {:.2} s, the first after {:.0} ms",
                began.elapsed().as_secs_f64(),
                first.unwrap_or_default().as_secs_f64() * 1e3
            );
            return Ok((pending, pending as f64 / began.elapsed().as_secs_f64().max(1e-3)));
        }
        if Instant::now() >= deadline {
            bail!("the stub took {taken} of {acked} acknowledged notifications in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls hookd's `hookd_outbox_depth` (updated once a second) until no
/// notification is pending; returns the most it saw pending.
async fn wait_outbox_empty(
    http: &reqwest::Client,
    metrics: SocketAddr,
    within: Duration,
) -> anyhow::Result<u64> {
    let deadline = Instant::now() + within;
    let mut most = 0;
    loop {
        let text = http
            .get(format!("http://{metrics}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let pending: u64 = text
            .lines()
            .filter(|line| line.starts_with("hookd_outbox_depth{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        most = most.max(pending);
        if pending == 0 {
            return Ok(most);
        }
        if Instant::now() >= deadline {
            bail!(
                "hookd's outbox still holds {pending} notifications after {} s",
                within.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one fan-out point measured at the stub.
struct FanPoint {
    /// Connections the stub accepted per second (pool churn).
    connections: f64,
    /// Endpoint calls received per second.
    received: f64,
    /// Endpoint calls offered per second (notifications/s × k).
    offered: f64,
    p50_us: f64,
    p99_us: f64,
    hookd_cores: f64,
}

/// (e): `on_publish` to k endpoints, paced so that k × the notification rate
/// is [`FAN_OUT_LOAD`] of hookd's uncached capacity at N=256; measured at the stub.
async fn fan_out(
    rig: &Rig,
    window: Window,
    rounds: usize,
    capacity: f64,
    report: &mut Report,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let endpoint_rate = (capacity * FAN_OUT_LOAD).max(1_000.0);
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
                connections: after.connections.saturating_sub(before.connections) as f64 / elapsed,
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
            "{} endpoint calls/s of {} offered; delivery p50 {:.0} µs, p99 {:.0} µs; hookd {:.2} cores; \
             {:.0} new connections/s at the stub",
            kilo(median(set.iter().map(|p| p.received))),
            kilo(median(set.iter().map(|p| p.offered))),
            median(set.iter().map(|p| p.p50_us)),
            median(set.iter().map(|p| p.p99_us)),
            median(set.iter().map(|p| p.hookd_cores)),
            median(set.iter().map(|p| p.connections)),
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

/// (d): RSS per call in flight, hookd as configured by default. A fresh
/// hookd whose `auth_on_publish` webhook is the `/hold/` path (answered only
/// on `GET /release`) of a stub of its own, with its default pool of 100
/// connections per endpoint (so 100 calls are at the stub and the rest wait
/// for a connection, as they would in production), `max_in_flight_per_stream`
/// above 10,000 and long deadlines. One bridge stream puts [`HELD_WARM`]
/// calls in flight (baseline RSS), then [`HELD_CALLS`] more, counted by
/// hookd's own `hookd_calls_in_flight`; RSS again; then the stub releases
/// until every call is answered, which must be `ok`.
async fn held_memory(rig: &Rig, report: &mut Report) -> anyhow::Result<Ran> {
    eprintln!("(d) {HELD_CALLS} calls in flight");
    let total = HELD_WARM + HELD_CALLS;
    let stub = procs::spawn_self(
        "stub for held calls",
        &["stub".into(), "--threads".into(), rig.load_threads.to_string()],
    )
    .await?;
    let webhooks = [Webhook {
        hook: "auth_on_publish",
        endpoint: format!("http://{}/hold/publish", stub.addr),
        base64_payload: true,
    }];
    let tuning = Tuning {
        max_in_flight_per_stream: Some(2 * total),
        response_timeout_ms: Some(120_000),
        pool_max_connections: Some(DEFAULT_POOL),
        // The held calls wait for a connection, none finishing, for as long
        // as the measurement takes: this measures their memory.
        stall_timeout_ms: Some(120_000),
        metrics: true,
        tls: None,
    };
    let hookd =
        procs::spawn_hookd_with(&rig.hookd, &rig.dir, "hookd-held", rig.threads, &webhooks, tuning).await?;
    let metrics = hookd.metrics.context("the held hookd serves metrics")?;
    let client = workload::bridge_tuned(&hookd.addr.to_string(), |options| {
        options.max_in_flight = 2 * total;
        options.default_timeout = Duration::from_secs(120);
    })
    .await?;
    let http = reqwest::Client::new();
    let mut calls = JoinSet::new();
    let mut issue = |count: usize| {
        for _ in 0..count {
            let client = client.clone();
            calls.spawn(async move { client.auth_on_publish(workload::auth_on_publish()).await });
        }
    };
    issue(HELD_WARM);
    wait_in_flight(&http, metrics, HELD_WARM, Duration::from_secs(10)).await?;
    let before = procfs::rss_bytes(hookd.pid()).context("hookd RSS")?;
    let mut issued = HELD_WARM;
    while issued < total {
        let step = HELD_STEP.min(total - issued);
        issue(step);
        issued += step;
        wait_in_flight(&http, metrics, issued, Duration::from_secs(30)).await?;
    }
    let after = procfs::rss_bytes(hookd.pid()).context("hookd RSS")?;
    let held = stub_stats_at(&http, stub.addr, false).await?;
    // The stub answers what it holds at each release; the calls waiting
    // for a connection are held in their turn, so release until all are in.
    let (mut ok, mut answered) = (0u64, 0u64);
    let drained = tokio::time::timeout(Duration::from_secs(60), async {
        while answered < total as u64 {
            http.get(format!("http://{}/release", stub.addr))
                .send()
                .await?
                .error_for_status()?;
            let tick = tokio::time::sleep(Duration::from_millis(5));
            tokio::pin!(tick);
            loop {
                tokio::select! {
                    _ = &mut tick => break,
                    Some(verdict) = calls.join_next() => {
                        answered += 1;
                        ok += u64::from(matches!(verdict.map(|v| v.outcome), Ok(Outcome::Ok(_))));
                    }
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    })
    .await;
    if !matches!(drained, Ok(Ok(()))) {
        calls.abort_all();
        eprintln!("(d) only {answered} of {total} held calls were answered within 60 s of the release");
    }
    report.note_errors(
        "(d) calls held in flight",
        &[Sample {
            calls: total as u64,
            errors: total as u64 - ok,
            elapsed: Duration::ZERO,
            latency: latency_histogram(),
            cpu: Vec::new(),
        }],
    );
    let per_call = after.saturating_sub(before) as f64 / HELD_CALLS as f64 / 1024.0;
    report.row(Row {
        id: "d",
        what: format!("RSS per in-flight call ({HELD_CALLS} on one stream, hookd's default pool, KiB)"),
        measured: format!(
            "VmRSS {:.1} MiB ({HELD_WARM} in flight) → {:.1} MiB ({total}); {} at the stub on \
             {DEFAULT_POOL} connections, the rest waiting for one; {ok} of {total} ok after release",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            held.held,
        ),
        ratio: per_call,
        target: Target::AtMost(2.0),
    });
    Ok(Ran::Yes)
}

/// Polls hookd's `hookd_calls_in_flight` until it reaches `wanted`.
async fn wait_in_flight(
    http: &reqwest::Client,
    metrics: SocketAddr,
    wanted: usize,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let text = http
            .get(format!("http://{metrics}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let in_flight = text
            .lines()
            .find_map(|line| line.strip_prefix("hookd_calls_in_flight "))
            .and_then(|value| value.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if in_flight >= wanted as u64 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "hookd has {in_flight} of {wanted} calls in flight after {} s",
                within.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How the calls of the overload run were answered.
#[derive(Default)]
struct Answers {
    ok: AtomicU64,
    /// Shed by the bridge client at its in-flight limit (`Overload::FailFast`).
    client_overloaded: AtomicU64,
    /// `overloaded` from hookd itself.
    hookd_overloaded: AtomicU64,
    /// Past their deadline (the client's policy or hookd's verdict).
    timeout: AtomicU64,
    other: AtomicU64,
}

impl Answers {
    fn count(&self, source: Source, outcome: &Outcome) {
        let counter = match (source, outcome) {
            (_, Outcome::Ok(_)) => &self.ok,
            (Source::Policy(ErrorKind::Overloaded), _) => &self.client_overloaded,
            (
                _,
                Outcome::Error {
                    kind: ErrorKind::Overloaded,
                    ..
                },
            ) => &self.hookd_overloaded,
            (
                _,
                Outcome::Error {
                    kind: ErrorKind::Timeout,
                    ..
                },
            ) => &self.timeout,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `ok 51%, overloaded at the client 49%, …` over all answers; calls
    /// `sent` but never answered are listed as such.
    fn shares(&self, sent: u64) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let kinds = [
            ("ok", get(&self.ok)),
            ("overloaded at the client", get(&self.client_overloaded)),
            ("overloaded by hookd", get(&self.hookd_overloaded)),
            ("timeout", get(&self.timeout)),
            ("other", get(&self.other)),
        ];
        let all: u64 = kinds.iter().map(|(_, n)| n).sum();
        let unanswered = sent.saturating_sub(all);
        let mut parts: Vec<String> = kinds
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| format!("{name} {:.0}%", *n as f64 * 100.0 / all.max(1) as f64))
            .collect();
        if unanswered > 0 {
            parts.push(format!("{unanswered} unanswered"));
        }
        parts.join(", ")
    }
}

/// (d): RSS under 2× overload. A fresh hookd with the fast `/plain`
/// webhook; its capacity is measured first (closed loop, N=256, as (a));
/// then an open loop offers twice that through one bridge stream while
/// hookd's VmRSS is read every 250 ms: [`OVERLOAD_FILL`] s in which hookd
/// fills its in-flight window (not judged), then 3 s (quick) or 2 × the
/// point length (at least 6 s). The client sheds at 10,000 calls in flight
/// (`Overload::FailFast`, 2 s deadline) and hookd stops reading its stream
/// at its default 4,096 per stream, so nothing needs to queue. Criterion:
/// the largest RSS of the last second ÷ the largest of the first second
/// after the fill ≤ 1.1: with in-flight state bounded on both sides, RSS
/// that keeps growing is memory the overload costs beyond it.
async fn overload_memory(rig: &Rig, quick: bool, window: Window, report: &mut Report) -> anyhow::Result<()> {
    eprintln!("(d) 2× overload");
    let webhooks = [Webhook {
        hook: "auth_on_publish",
        endpoint: format!("http://{}/plain", rig.stub.addr),
        base64_payload: true,
    }];
    // hookd's default pool, as in production: a backlog waits for one of
    // 100 connections instead of opening more.
    let tuning = Tuning {
        pool_max_connections: Some(DEFAULT_POOL),
        ..Tuning::default()
    };
    let hookd = procs::spawn_hookd_with(
        &rig.hookd,
        &rig.dir,
        "hookd-overload",
        rig.threads,
        &webhooks,
        tuning,
    )
    .await?;
    let pid = hookd.pid();
    let client = workload::bridge_tuned(&hookd.addr.to_string(), |options| {
        options.overload = Overload::FailFast;
        options.max_in_flight = 10_000;
        options.default_timeout = Duration::from_secs(2);
    })
    .await?;
    let capacity_window = Window {
        warmup: Duration::from_millis(300),
        measure: Duration::from_secs(1),
    };
    let (c, args) = (client.clone(), workload::auth_on_publish());
    let capacity = load::closed_loop(256, capacity_window, &[pid], move || {
        workload::bridge_call(c.clone(), args.clone())
    })
    .await;
    report.note_errors("(d) overload: capacity N=256", std::slice::from_ref(&capacity));
    let rate = 2.0 * capacity.rate();
    let seconds = if quick {
        3.0
    } else {
        (2.0 * window.measure.as_secs_f64()).max(6.0)
    };
    // The fill second comes first and is not judged.
    let length = Duration::from_secs_f64(OVERLOAD_FILL + seconds);
    let idle = procfs::rss_bytes(pid).context("hookd RSS")?;
    let http = reqwest::Client::new();
    let stub_before = rig.stub_stats(&http, false).await?;
    let answers = Arc::new(Answers::default());
    let load = {
        let (client, answers) = (client.clone(), answers.clone());
        let overload = Window {
            warmup: Duration::ZERO,
            measure: length,
        };
        tokio::spawn(async move {
            let call = move || {
                let (client, answers) = (client.clone(), answers.clone());
                async move {
                    let verdict = client.auth_on_publish(workload::auth_on_publish()).await;
                    answers.count(verdict.source, &verdict.outcome);
                    matches!(verdict.outcome, Outcome::Ok(_))
                }
            };
            load::open_loop(rate, overload, &[pid], MAX_PENDING, call).await
        })
    };
    let started = Instant::now();
    let mut rss = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let at = started.elapsed();
        rss.push((at, procfs::rss_bytes(pid).context("hookd RSS")?));
        if at >= length {
            break;
        }
    }
    let run = load.await.context("the overload task")?;
    let stub_after = rig.stub_stats(&http, false).await?;
    eprintln!(
        "(d) overload: the stub accepted {} connections from hookd during it",
        stub_after.connections.saturating_sub(stub_before.connections)
    );
    let series: Vec<String> = rss
        .iter()
        .map(|&(_, bytes)| format!("{:.0}", bytes as f64 / 1048576.0))
        .collect();
    eprintln!(
        "(d) overload: hookd VmRSS every 250 ms (MiB): {}",
        series.join(" ")
    );
    let peak = |from: f64, to: f64| {
        rss.iter()
            .filter(|(at, _)| (from..=to).contains(&at.as_secs_f64()))
            .map(|&(_, bytes)| bytes)
            .max()
            .unwrap_or(0)
    };
    let end = OVERLOAD_FILL + seconds;
    let (fill, first, last) = (
        peak(0.0, OVERLOAD_FILL),
        peak(OVERLOAD_FILL, OVERLOAD_FILL + 1.0),
        peak(end - 1.0, f64::INFINITY),
    );
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    let ok_rate = answers.ok.load(Ordering::Relaxed) as f64 / end;
    report.row(Row {
        id: "d",
        what: "RSS under 2× overload: max VmRSS of the last second ÷ of the first (after a 1 s fill)".into(),
        measured: format!(
            "capacity {}/s (N=256); 1 + {seconds:.0} s offered at 2× that{}; VmRSS idle {:.1} MiB, \
             fill {:.1} MiB, first s {:.1} MiB, last s {:.1} MiB; answers: {}; ok {}/s ({:.2} of capacity); \
             hookd {:.2} cores",
            kilo(capacity.rate()),
            if run.skipped > 0 {
                format!(" ({} calls not sent: the generator's own bound)", run.skipped)
            } else {
                String::new()
            },
            mib(idle),
            mib(fill),
            mib(first),
            mib(last),
            answers.shares(run.sent),
            kilo(ok_rate),
            ok_rate / capacity.rate().max(1e-9),
            run.sample.cores(0).unwrap_or(f64::NAN),
        ),
        ratio: last as f64 / first.max(1) as f64,
        target: Target::AtMost(1.1),
    });
    Ok(())
}

/// (g): QoS 1 publishes per second end to end through a real Mosquitto, with
/// the hookd plugin (verdicts cached in the plugin: `plugin_opt_local_cache
/// true`, webhooks answering `max-age=3600`) ÷ the same Mosquitto without a
/// plugin (`allow_anonymous true`). Both brokers run side by side on loopback
/// ports with the same configuration otherwise; the same client (one
/// connection, N publishes in flight) alternates between them. Each broker
/// must first route a probe publish to a subscriber, and the plugin broker
/// again after the rounds, since MQTT 3.1.1 acknowledges refused publishes.
async fn mosquitto(rig: &Rig, window: Window, rounds: usize, report: &mut Report) -> anyhow::Result<Ran> {
    let Some(mosquitto) = procs::find_on_path("mosquitto") else {
        return Ok(Ran::Skipped(
            "no `mosquitto` on PATH (apt-get install mosquitto mosquitto-clients)".into(),
        ));
    };
    let plugin = match procs::locate_mosquitto_plugin() {
        Ok(plugin) => plugin,
        Err(error) => return Ok(Ran::Skipped(format!("no Mosquitto plugin: {error:#}"))),
    };
    // The webhooks behind the plugin: both answer ok with max-age=3600.
    let url = |path: &str| format!("http://{}{path}", rig.stub.addr);
    let webhooks = [
        Webhook {
            hook: "auth_on_register",
            endpoint: url("/max-age/3600/register"),
            base64_payload: true,
        },
        Webhook {
            hook: "auth_on_publish",
            endpoint: url("/max-age/3600/publish"),
            base64_payload: true,
        },
    ];
    let hookd = procs::spawn_hookd(&rig.hookd, &rig.dir, "hookd-mqtt", rig.threads, &webhooks).await?;
    let dir = rig.dir.join("mosquitto");
    let plugin = readable_copy(&plugin, &rig.dir, &dir)?;
    let common = "allow_anonymous {anonymous}\nset_tcp_nodelay true\npersistence false\n";
    let plain = procs::spawn_mosquitto(
        &mosquitto,
        &dir,
        "mosquitto-plain",
        &common.replace("{anonymous}", "true"),
    )
    .await?;
    let with_plugin = format!(
        "{}plugin {}\nplugin_opt_hookd_addresses {}\nplugin_opt_node_id bench-mosquitto\nplugin_opt_local_cache true\n",
        common.replace("{anonymous}", "false"),
        plugin.display(),
        hookd.addr
    );
    let hooked = procs::spawn_mosquitto(&mosquitto, &dir, "mosquitto-plugin", &with_plugin).await?;
    let login = mqtt::Login {
        client_id: workload::CLIENT_ID,
        username: workload::USERNAME,
        password: b"bench-password",
    };
    let args = workload::auth_on_publish();
    let (topic, payload) = (args.topic.as_str(), args.payload.as_slice());
    // The plugin refuses (policy deny) until its stream to hookd is up.
    mqtt::wait_accepting(hooked.addr, login, Duration::from_secs(10)).await?;
    for (name, broker) in [("without the plugin", &plain), ("with the plugin", &hooked)] {
        mqtt::probe(broker.addr, login, topic, payload)
            .await
            .with_context(|| format!("the probe through Mosquitto {name}"))?;
    }
    let watch = [rig.me, plain.pid(), hooked.pid(), hookd.pid()];
    let names: Vec<String> = ["bench", "mosquitto", "mosquitto+plugin", "hookd"]
        .map(str::to_owned)
        .into();
    let mut samples: BTreeMap<(usize, bool), Vec<Sample>> = BTreeMap::new();
    for round in 0..rounds {
        for n in MQTT_N {
            eprintln!("(g) Mosquitto N={n}, round {}/{rounds}", round + 1);
            for (plugged, broker) in [(false, &plain), (true, &hooked)] {
                let sample = mqtt::closed_loop(broker.addr, login, n, topic, payload, window, &watch).await?;
                samples.entry((n, plugged)).or_default().push(sample);
            }
        }
    }
    mqtt::probe(hooked.addr, login, topic, payload)
        .await
        .context("the probe through Mosquitto with the plugin, after the rounds")?;
    let per_call = |s: &Sample, i: usize| s.cpu_per_call_us(i, s.calls).unwrap_or(f64::NAN);
    for n in MQTT_N {
        let (without, with) = (&samples[&(n, false)], &samples[&(n, true)]);
        report.note_errors(&format!("(g) Mosquitto N={n}"), without);
        report.note_errors(&format!("(g) Mosquitto+plugin N={n}"), with);
        report.cpu_line(&format!("(g) N={n} Mosquitto"), without, &names);
        report.cpu_line(&format!("(g) N={n} Mosquitto + hookd plugin"), with, &names);
        report.row(Row {
            id: "g",
            what: format!("N={n} QoS 1 publishes/s through Mosquitto: with the hookd plugin (cached) ÷ without"),
            measured: format!(
                "with {}/s (Mosquitto {:.1} µs CPU/publish, hookd {:.1} µs), without {}/s (Mosquitto {:.1} µs); \
                 one connection, {} B payload",
                kilo(median(with.iter().map(Sample::rate))),
                median(with.iter().map(|s| per_call(s, 2))),
                median(with.iter().map(|s| per_call(s, 3))),
                kilo(median(without.iter().map(Sample::rate))),
                median(without.iter().map(|s| per_call(s, 1))),
                payload.len(),
            ),
            ratio: median(
                with.iter()
                    .zip(without)
                    .map(|(w, o)| w.rate() / o.rate().max(1e-9)),
            ),
            target: Target::AtLeast(0.8),
        });
    }
    Ok(Ran::Yes)
}

/// Copies the plugin into `dir` (created under `root`), both readable and
/// traversable by everyone: run as root, Mosquitto loads plugins after
/// dropping to its own user.
fn readable_copy(plugin: &Path, root: &Path, dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let copy = dir.join("libhookd_mosquitto.so");
    std::fs::copy(plugin, &copy).with_context(|| format!("copying {}", plugin.display()))?;
    for path in [root, dir, copy.as_path()] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("making {} readable", path.display()))?;
    }
    Ok(copy)
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
