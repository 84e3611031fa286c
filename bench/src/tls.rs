//! Scenario (t): what TLS on the broker link costs. A second hookd, the same
//! as the plaintext one but for `[server.tls]` (a self-signed PKI made at
//! start with `rcgen`), is measured against the plaintext hookd in the same
//! run, rounds interleaved: (b)'s N = 1 latency and (a)'s uncached
//! throughput at N = 256, each as a ratio TLS ÷ plaintext. Both call the
//! same stub endpoint, so the webhook side is identical and only the link
//! differs.

use std::{collections::BTreeMap, net::SocketAddr, path::Path, path::PathBuf};

use anyhow::Context;
use hookd_bridge::TlsOptions;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::{
    load::{self, Sample, Window},
    procs::{self, Proc, Tuning, Webhook},
    report::{Report, Row, Target, median},
    run::kilo,
    workload,
};

/// In-flight N of the throughput point.
const THROUGHPUT_N: usize = 256;

/// The PEM files of the run's PKI.
pub struct Pki {
    /// The CA certificate the bridge trusts.
    pub ca_file: PathBuf,
    /// hookd's certificate (for `127.0.0.1`) and its key.
    pub cert_file: PathBuf,
    /// The key of `cert_file`.
    pub key_file: PathBuf,
}

/// What the scenario needs of the run.
pub struct Setup<'a> {
    /// The hookd binary.
    pub hookd: &'a Path,
    /// The run's scratch directory.
    pub dir: &'a Path,
    /// hookd's worker threads.
    pub threads: usize,
    /// The stub, whose `/plain` endpoint both hookds call.
    pub stub: SocketAddr,
    /// The plaintext hookd, configured with that endpoint.
    pub plain: &'a Proc,
    /// Processes whose CPU is sampled: this process, the plaintext hookd, the stub.
    pub watch: [u32; 3],
}

/// Writes a CA and a server certificate for `127.0.0.1` into `dir`.
pub fn make_pki(dir: &Path) -> anyhow::Result<Pki> {
    let ca_key = KeyPair::generate().context("a CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "hookd-bench CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).context("a self-signed CA")?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().context("a server key")?;
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned()]).context("server parameters")?;
    server.distinguished_name.push(DnType::CommonName, "hookd-bench");
    let cert = server.signed_by(&key, &issuer).context("a server certificate")?;
    let pki = Pki {
        ca_file: dir.join("bench-ca.pem"),
        cert_file: dir.join("bench-hookd.pem"),
        key_file: dir.join("bench-hookd-key.pem"),
    };
    for (path, pem) in [
        (&pki.ca_file, ca_cert.pem()),
        (&pki.cert_file, cert.pem()),
        (&pki.key_file, key.serialize_pem()),
    ] {
        std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(pki)
}

/// Runs (t) and adds its rows to `report`.
pub async fn scenario(
    setup: Setup<'_>,
    window: Window,
    rounds: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let pki = make_pki(setup.dir)?;
    let tuning = Tuning {
        tls: Some((pki.cert_file.clone(), pki.key_file.clone())),
        ..Tuning::default()
    };
    let webhooks = [Webhook {
        hook: "auth_on_publish",
        endpoint: format!("http://{}/plain", setup.stub),
        base64_payload: true,
    }];
    let secured = procs::spawn_hookd_with(
        setup.hookd,
        setup.dir,
        "hookd-tls",
        setup.threads,
        &webhooks,
        tuning,
    )
    .await?;
    let plain = workload::bridge(&setup.plain.addr.to_string()).await?;
    let tls = workload::bridge_tuned(&secured.addr.to_string(), |options| {
        options.tls = Some(TlsOptions {
            ca_file: Some(pki.ca_file.clone()),
            ..TlsOptions::default()
        });
    })
    .await?;
    let watch_plain = setup.watch;
    let watch_tls = [setup.watch[0], secured.pid(), setup.watch[2]];
    let mut samples: BTreeMap<(&str, usize), Vec<Sample>> = BTreeMap::new();
    for round in 0..rounds {
        for n in [1, THROUGHPUT_N] {
            eprintln!("(t) N={n} plaintext vs TLS, round {}/{rounds}", round + 1);
            let (p, args) = (plain.clone(), workload::auth_on_publish());
            let sample = load::closed_loop(n, window, &watch_plain, move || {
                workload::bridge_call(p.clone(), args.clone())
            })
            .await;
            samples.entry(("plain", n)).or_default().push(sample);
            let (t, args) = (tls.clone(), workload::auth_on_publish());
            let sample = load::closed_loop(n, window, &watch_tls, move || {
                workload::bridge_call(t.clone(), args.clone())
            })
            .await;
            samples.entry(("tls", n)).or_default().push(sample);
        }
    }
    let names = ["bench".to_owned(), "hookd".to_owned(), "stub".to_owned()];
    let get = |link: &'static str, n: usize| samples.get(&(link, n)).map(Vec::as_slice).unwrap_or_default();
    for n in [1, THROUGHPUT_N] {
        for link in ["plain", "tls"] {
            report.note_errors(&format!("(t) {link} N={n}"), get(link, n));
            report.cpu_line(&format!("(t) N={n} {link}"), get(link, n), &names);
        }
    }
    // Per-round ratios, then the median, so each pair stays interleaved.
    let ratio = |n: usize, f: fn(&Sample) -> f64| {
        median(
            get("tls", n)
                .iter()
                .zip(get("plain", n))
                .map(|(t, p)| f(t) / f(p).max(1e-9)),
        )
    };
    let value = |link: &'static str, n: usize, f: fn(&Sample) -> f64| median(get(link, n).iter().map(f));
    report.row(Row {
        id: "t",
        what: "N=1 p50 latency: TLS ÷ plaintext link".into(),
        measured: format!(
            "p50 plaintext {:.0} µs, TLS {:.0} µs; p99 plaintext {:.0} µs, TLS {:.0} µs",
            value("plain", 1, Sample::p50_us),
            value("tls", 1, Sample::p50_us),
            value("plain", 1, Sample::p99_us),
            value("tls", 1, Sample::p99_us),
        ),
        ratio: ratio(1, Sample::p50_us),
        target: Target::AtMost(1.25),
    });
    report.row(Row {
        id: "t",
        what: format!("N={THROUGHPUT_N} uncached verdicts/s: TLS ÷ plaintext link"),
        measured: format!(
            "plaintext {}/s, TLS {}/s",
            kilo(value("plain", THROUGHPUT_N, Sample::rate)),
            kilo(value("tls", THROUGHPUT_N, Sample::rate)),
        ),
        ratio: ratio(THROUGHPUT_N, Sample::rate),
        target: Target::AtLeast(0.8),
    });
    // hookd's CPU per verdict, TLS ÷ plaintext: what encryption costs hookd.
    let per_call = |s: &Sample| s.cpu_per_call_us(1, s.calls).unwrap_or(f64::NAN);
    report.row(Row {
        id: "t",
        what: format!("N={THROUGHPUT_N} hookd CPU per call: TLS ÷ plaintext link"),
        measured: format!(
            "plaintext {:.1} µs, TLS {:.1} µs",
            value("plain", THROUGHPUT_N, per_call),
            value("tls", THROUGHPUT_N, per_call),
        ),
        ratio: ratio(THROUGHPUT_N, per_call),
        target: Target::AtMost(1.3),
    });
    Ok(())
}
