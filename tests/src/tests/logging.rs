//! What hookd writes to its log, with the real binary: `HOOKD_LOG=debug` is
//! a line per call from hookd itself, not h2's frame dumps; an invalid
//! `HOOKD_LOG` stops hookd at start saying what is valid instead of quietly
//! logging nothing; `log.format = "json"` writes one JSON object per line
//! for log shippers; and a log that is not a terminal has no colour codes.

use crate::harness::{assert_next, calls, process::HookdProcess, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookd_log_debug_is_a_line_per_call_not_h2_frames() {
    let hookd = HookdProcess::launch().env("HOOKD_LOG", "debug").start().await;
    let mut client = hookd.client().await;
    let call = calls::IntoCall::into_call(calls::auth_on_register("debugged"), 1);
    let verdict = within("a unary verdict", client.call(call))
        .await
        .expect("answered")
        .into_inner();
    assert_next(&verdict);
    let line = hookd.wait_for_log("call answered").await;
    assert!(
        line.contains("auth_on_register") && line.contains("latency_us"),
        "{line}"
    );
    let log = hookd.log();
    assert!(!log.contains(" h2::"), "no h2 frames at HOOKD_LOG=debug:\n{log}");
    assert!(
        !log.contains('\u{1b}'),
        "no colour codes in a log that is not a terminal:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_hookd_log_stops_hookd_at_start_saying_what_is_valid() {
    for spec in ["verbose", "hookd=loud"] {
        let hookd = HookdProcess::launch().env("HOOKD_LOG", spec).spawn().await;
        let (status, log) = hookd.exited().await;
        assert_eq!(status.code(), Some(1), "{spec}: {log}");
        assert!(
            log.contains("HOOKD_LOG") && log.contains(spec) && log.contains("debug"),
            "{spec}: the error names the variable, its value and the levels:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_format_json_writes_one_object_per_line() {
    let hookd = HookdProcess::launch()
        .env("HOOKD_LOG__FORMAT", "json")
        .spawn()
        .await;
    hookd.wait_for_log("hookd listening").await;
    let log = hookd.log();
    for line in log.lines() {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON ({e})"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(object.get(field).is_some(), "{field} in {line}");
        }
    }
    let listening = log
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|object| object["message"] == "hookd listening")
        .expect("a listening line");
    assert!(
        listening["addr"]
            .as_str()
            .is_some_and(|addr| addr.starts_with("127.0.0.1:")),
        "{listening}"
    );
}

/// The sidecar logs as hookd does: to stderr without colour codes when that
/// is not a terminal, and an invalid `HOOKD_LOG` stops it saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_logs_like_hookd() {
    let sidecar =
        crate::harness::cargo_build(&["-p", "hookd-bridge", "--bin", "hookd-sidecar"], "hookd-sidecar").await;
    let run = |log: &'static str| {
        let mut command = tokio::process::Command::new(&sidecar);
        command
            .env_clear()
            .env("HOOKD_LOG", log)
            .env("HOOKD_SIDECAR_LISTEN", "127.0.0.1:0")
            .env("HOOKD_SIDECAR_HOOKD", "127.0.0.1:9")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    };

    let refused = within("the sidecar to exit", run("verbose").output())
        .await
        .expect("the sidecar runs");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("HOOKD_LOG") && said.contains("verbose"), "{said}");

    let mut running = run("info").spawn().expect("the sidecar starts");
    let stderr = running.stderr.take().expect("piped");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let first = within("the sidecar's first log line", lines.next_line())
        .await
        .expect("readable")
        .expect("a line");
    assert!(first.contains("INFO"), "{first}");
    assert!(
        !first.contains('\u{1b}'),
        "no colour codes in a log that is not a terminal: {first:?}"
    );
    let _ = running.start_kill();
}
