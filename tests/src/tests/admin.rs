//! The operators' commands against a real hookd process: webhooks
//! registered at run time reach connected brokers at once, serve calls, are
//! kept across a restart and go away when deregistered; the allow-list and
//! the admin token guard them; `brokers` lists a connected bridge with its
//! calls in flight; `cache show` and `cache clear`; `check` on good and bad
//! files, offline.

use std::process::Output;

use hookd_bridge::pb::hook_call::Hook as Args;
use hookd_proto::v1 as pb;

use crate::harness::{
    Scratch, WAIT, assert_next, assert_ok,
    broker::Broker,
    calls, eventually,
    process::{self, HookdProcess},
    webhook::{Reply, Webhook},
};

/// Runs `hookd ARGS…`; asserts it succeeded and returns its stdout.
pub(super) async fn ok(args: &[&str]) -> String {
    let output = process::command(args).await;
    assert!(
        output.status.success(),
        "hookd {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `hookd ARGS…`; asserts it failed (exit status 1) and returns its stderr.
pub(super) async fn refused(args: &[&str]) -> String {
    let output: Output = process::command(args).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "hookd {args:?} should fail; stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The cells of the first row of a printed table that contains `needle`.
pub(super) fn row(table: &str, needle: &str) -> Option<Vec<String>> {
    let line = table
        .lines()
        .find(|line| line.starts_with('|') && line.contains(needle))?;
    Some(
        line.split('|')
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// The admin address of `hookd`, once it listens.
pub(super) async fn admin_of(hookd: &HookdProcess) -> String {
    hookd.wait_for_log("admin listening").await;
    hookd.listening("admin listening").to_string()
}

/// The hooks of a `HooksChanged` or `Welcome` frame.
fn hooks(active: &[i32]) -> Vec<pb::Hook> {
    active
        .iter()
        .map(|h| pb::Hook::try_from(*h).expect("a known hook"))
        .collect()
}

/// A hookd process on the store file in `scratch`.
async fn hookd_on(scratch: &Scratch) -> HookdProcess {
    HookdProcess::launch()
        .env("HOOKD_OUTBOX__PATH", &scratch.store().display().to_string())
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_registered_at_run_time_reaches_brokers_at_once_serves_calls_and_survives_a_restart() {
    let webhook = Webhook::start(Reply::ok()).await;
    let url = webhook.url();
    let scratch = Scratch::new();
    let hookd = hookd_on(&scratch).await;
    let admin = admin_of(&hookd).await;
    let broker = Broker::connect(hookd.client().await).await;
    assert!(broker.welcome().active_hooks.is_empty(), "no webhook yet");

    let endpoint = format!("endpoint={url}");
    let registered = ok(&[
        "webhooks",
        "--admin",
        &admin,
        "register",
        "hook=auth_on_register",
        &endpoint,
        "--response_timeout",
        "2000",
    ])
    .await;
    assert!(registered.contains("registered auth_on_register"), "{registered}");
    let changed = broker.next_hooks_changed().await;
    assert_eq!(hooks(&changed.active_hooks), [pb::Hook::AuthOnRegister]);
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
    assert_eq!(webhook.hits(), 1, "the call reached the new endpoint");

    // Registering it again is refused, and says why.
    let again = refused(&[
        "webhooks",
        "--admin",
        &admin,
        "register",
        "hook=auth_on_register",
        &endpoint,
    ])
    .await;
    assert!(again.contains("already registered"), "{again}");

    let shown = ok(&["webhooks", "--admin", &admin, "show"]).await;
    let row = shown
        .lines()
        .find(|line| line.contains("auth_on_register"))
        .unwrap_or_else(|| panic!("no registration in:\n{shown}"));
    for cell in [url.as_str(), "2000", "runtime"] {
        assert!(row.contains(cell), "{cell} missing from {row}");
    }

    // Kept across a restart on the same store.
    drop(broker);
    hookd.signal("TERM").await;
    let (status, _) = hookd.exited().await;
    assert!(status.success());
    let hookd = hookd_on(&scratch).await;
    hookd.wait_for_log("restored from the store").await;
    let admin = admin_of(&hookd).await;
    let broker = Broker::connect(hookd.client().await).await;
    assert_eq!(hooks(&broker.welcome().active_hooks), [pb::Hook::AuthOnRegister]);
    assert_ok(&broker.call(calls::auth_on_register("c2")).await);
    assert_eq!(webhook.hits(), 2);

    // Deregistered: brokers hear it at once, calls no longer reach it.
    let gone = ok(&[
        "webhooks",
        "--admin",
        &admin,
        "deregister",
        "hook=auth_on_register",
        &endpoint,
    ])
    .await;
    assert!(gone.contains("deregistered auth_on_register"), "{gone}");
    assert!(broker.next_hooks_changed().await.active_hooks.is_empty());
    assert_next(&broker.call(calls::auth_on_register("c3")).await);
    assert_eq!(webhook.hits(), 2);
    let again = refused(&[
        "webhooks",
        "--admin",
        &admin,
        "deregister",
        "hook=auth_on_register",
        &endpoint,
    ])
    .await;
    assert!(again.contains("not registered"), "{again}");

    // And stays gone after another restart.
    drop(broker);
    hookd.signal("TERM").await;
    assert!(hookd.exited().await.0.success());
    let hookd = hookd_on(&scratch).await;
    let admin = admin_of(&hookd).await;
    let broker = Broker::connect(hookd.client().await).await;
    assert!(broker.welcome().active_hooks.is_empty());
    assert!(
        !ok(&["webhooks", "--admin", &admin, "show"])
            .await
            .contains("auth_on_register")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_webhook_is_shown_as_such_and_cannot_be_deregistered_at_run_time() {
    let webhook = Webhook::start(Reply::ok()).await;
    let url = webhook.url();
    let hookd = HookdProcess::launch()
        .config(&format!(
            "[[webhooks]]\nhook = \"auth_on_register\"\nendpoint = \"{url}\"\nbase64_payload = false\n"
        ))
        .start()
        .await;
    let admin = admin_of(&hookd).await;
    let shown = ok(&["webhooks", "--admin", &admin, "show"]).await;
    let row = shown
        .lines()
        .find(|line| line.contains(&url))
        .unwrap_or_else(|| panic!("no registration in:\n{shown}"));
    assert!(row.contains("config") && row.contains("false"), "{row}");
    let endpoint = format!("endpoint={url}");
    let refusal = refused(&[
        "webhooks",
        "--admin",
        &admin,
        "deregister",
        "hook=auth_on_register",
        &endpoint,
    ])
    .await;
    assert!(refusal.contains("configuration file"), "{refusal}");
    let broker = Broker::connect(hookd.client().await).await;
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_time_registration_outside_the_allow_list_is_refused() {
    let hookd = HookdProcess::launch()
        .config("[admin]\nallowed_webhook_hosts = [\"hooks.internal.example\"]\n")
        .start()
        .await;
    let admin = admin_of(&hookd).await;
    let refusal = refused(&[
        "webhooks",
        "--admin",
        &admin,
        "register",
        "hook=auth_on_register",
        "endpoint=http://user:secret@127.0.0.1:9/auth",
    ])
    .await;
    assert!(refusal.contains("refused"), "{refusal}");
    assert!(
        !refusal.contains("secret"),
        "credentials are never shown: {refusal}"
    );
    let metadata = refused(&[
        "webhooks",
        "--admin",
        &admin,
        "register",
        "hook=auth_on_register",
        "endpoint=http://169.254.169.254/latest",
    ])
    .await;
    assert!(metadata.contains("refused"), "{metadata}");
    assert!(
        !ok(&["webhooks", "--admin", &admin, "show"])
            .await
            .contains("auth_on_register")
    );
    ok(&[
        "webhooks",
        "--admin",
        &admin,
        "register",
        "hook=auth_on_register",
        "endpoint=http://hooks.internal.example/auth",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_the_admin_service_needs_a_token_and_hookd_refuses_to_start_without_one() {
    // No token: hookd does not start, and says which key is missing.
    let (status, log) = HookdProcess::launch()
        .env("HOOKD_ADMIN__LISTEN", "0.0.0.0:0")
        .spawn()
        .await
        .exited()
        .await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("admin.token_file"), "{log}");

    let scratch = Scratch::new();
    let token_file = scratch.path().join("admin.token");
    let token = "0123456789abcdef0123456789abcdef";
    std::fs::write(&token_file, format!("{token}\n")).expect("write the token file");
    let token_path = token_file.display().to_string();
    let hookd = HookdProcess::launch()
        .env("HOOKD_ADMIN__LISTEN", "0.0.0.0:0")
        .env("HOOKD_ADMIN__TOKEN_FILE", &token_path)
        .start()
        .await;
    hookd.wait_for_log("admin listening").await;
    let port = hookd.listening("admin listening").port();
    let admin = format!("127.0.0.1:{port}");

    let refusal = refused(&["webhooks", "--admin", &admin, "show"]).await;
    assert!(refusal.contains("admin.token_file"), "{refusal}");
    let wrong = scratch.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-token-at-all-0000").expect("write");
    refused(&[
        "brokers",
        "--admin",
        &admin,
        "--token-file",
        &wrong.display().to_string(),
    ])
    .await;
    ok(&["webhooks", "--admin", &admin, "--token-file", &token_path, "show"]).await;
    // The outbox commands need it too.
    refused(&["outbox", "--admin", &admin, "status"]).await;
    ok(&["outbox", "--admin", &admin, "--token-file", &token_path, "status"]).await;

    eventually(|| async { hookd.log_line("admin call refused").is_some() }, WAIT)
        .await
        .expect("refusals are logged");
    assert!(!hookd.log().contains(token), "the token is never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_lists_a_connected_bridge_with_its_calls_in_flight() {
    let webhook = Webhook::builder().reply(Reply::ok()).held().start().await;
    let hookd = HookdProcess::launch()
        .config(&format!(
            "[[webhooks]]\nhook = \"auth_on_register\"\nendpoint = \"{}\"\n",
            webhook.url()
        ))
        .start()
        .await;
    let admin = admin_of(&hookd).await;
    let empty = ok(&["brokers", "--admin", &admin]).await;
    assert!(!empty.contains("bridge-test"), "{empty}");

    let client = super::bridge::connected(super::bridge::options([hookd.addr()])).await;
    let call = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call(Args::AuthOnRegister(calls::auth_on_register("held")))
                .await
        })
    };
    webhook.wait_for_hits(1).await;
    let listed = ok(&["brokers", "--admin", &admin]).await;
    let cells = row(&listed, "bridge-test@127.0.0.1")
        .unwrap_or_else(|| panic!("the bridge is not listed:\n{listed}"));
    assert_eq!(cells[1], "hookd-tests 0.0.0", "{cells:?}");
    assert!(cells[2].starts_with("127.0.0.1:"), "{cells:?}");
    assert!(cells[3].ends_with('Z'), "{cells:?}");
    assert_eq!(cells[4], "1", "one call in flight: {cells:?}");

    webhook.release();
    within_ok(call).await;
    let zero = eventually(
        || async {
            let listed = ok(&["brokers", "--admin", &admin]).await;
            row(&listed, "bridge-test").is_some_and(|cells| cells[4] == "0")
        },
        WAIT,
    )
    .await;
    assert!(
        zero.is_ok(),
        "no call in flight once answered:\n{}",
        ok(&["brokers", "--admin", &admin]).await
    );

    drop(client);
    let gone = eventually(
        || async { !ok(&["brokers", "--admin", &admin]).await.contains("bridge-test") },
        WAIT,
    )
    .await;
    assert!(gone.is_ok(), "a broker that went away is no longer listed");
}

/// Waits for a spawned call and asserts it was answered `ok`.
async fn within_ok(call: tokio::task::JoinHandle<hookd_bridge::Verdict>) {
    let verdict = crate::harness::within("the held call", call)
        .await
        .expect("the call task");
    assert!(
        matches!(verdict.outcome, hookd_bridge::Outcome::Ok(_)),
        "{verdict:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_show_counts_hits_and_misses_and_cache_clear_empties_it() {
    let webhook = Webhook::start(Reply::ok().max_age(60)).await;
    let hookd = HookdProcess::launch()
        .config(&format!(
            "[[webhooks]]\nhook = \"auth_on_register\"\nendpoint = \"{}\"\n",
            webhook.url()
        ))
        .start()
        .await;
    let admin = admin_of(&hookd).await;
    let broker = Broker::connect(hookd.client().await).await;
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
    assert_eq!(webhook.hits(), 1, "the second call was a cache hit");

    let shown = ok(&["cache", "--admin", &admin, "show"]).await;
    assert!(shown.starts_with("entries 1 of max_entries 100000"), "{shown}");
    assert_eq!(
        row(&shown, "auth_on_register"),
        Some(vec![
            "auth_on_register".into(),
            "1".into(),
            "1".into(),
            "1".into()
        ]),
        "hits, misses, inserts:\n{shown}"
    );

    let reset = ok(&["cache", "--admin", &admin, "show", "--reset"]).await;
    assert!(
        reset.contains("| auth_on_register") && reset.contains("counters reset"),
        "{reset}"
    );
    let after = ok(&["cache", "--admin", &admin, "show"]).await;
    assert!(
        !after.contains("| auth_on_register"),
        "counters are zero after a reset:\n{after}"
    );
    assert!(
        after.starts_with("entries 1 "),
        "a reset keeps the entries:\n{after}"
    );

    let cleared = ok(&["cache", "--admin", &admin, "clear"]).await;
    assert_eq!(cleared.trim(), "cleared 1 entries");
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
    assert_eq!(webhook.hits(), 2, "after a clear the webhook is asked again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_validates_a_configuration_offline() {
    let scratch = Scratch::new();
    let file = |name: &str, toml: &str| {
        let path = scratch.path().join(name);
        std::fs::write(&path, toml).expect("write the configuration");
        path.display().to_string()
    };
    let good = file(
        "good.toml",
        "[[webhooks]]\nhook = \"auth_on_register\"\nendpoint = \"http://127.0.0.1:8080/auth\"\n",
    );
    let out = ok(&["check", "--config", &good]).await;
    assert!(out.contains("ok (1 webhooks"), "{out}");
    // The example file checks, as shipped.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hookd.toml");
    ok(&["check", "--config", example]).await;

    let typo = file(
        "typo.toml",
        "[[webhooks]]\nhook = \"auth_on_lunch\"\nendpoint = \"http://127.0.0.1:8080/auth\"\n",
    );
    let error = refused(&["check", "--config", &typo]).await;
    assert!(
        error.contains("auth_on_lunch") && error.contains("auth_on_register_m5"),
        "{error}"
    );

    let missing_ca = file(
        "tls.toml",
        "[[webhooks]]\nhook = \"auth_on_register\"\nendpoint = \"https://127.0.0.1:8443/auth\"\nca_file = \"/nonexistent/ca.pem\"\n",
    );
    let error = refused(&["check", "--config", &missing_ca]).await;
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");

    let open_admin = file("admin.toml", "[admin]\nlisten = \"0.0.0.0:50062\"\n");
    let error = refused(&["check", "--config", &open_admin]).await;
    assert!(error.contains("admin.token_file"), "{error}");

    let error = refused(&[
        "check",
        "--config",
        &scratch.path().join("absent.toml").display().to_string(),
    ])
    .await;
    assert!(error.contains("absent.toml"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_name_typo_is_refused_with_the_valid_names() {
    let hookd = HookdProcess::launch().start().await;
    let admin = admin_of(&hookd).await;
    let error = refused(&[
        "webhooks",
        "--admin",
        &admin,
        "register",
        "hook=auth_on_lunch",
        "endpoint=http://127.0.0.1:9/",
    ])
    .await;
    assert!(error.contains("auth_on_register"), "{error}");
    let error = refused(&["webhooks", "--admin", &admin, "register", "hook=auth_on_register"]).await;
    assert!(error.contains("endpoint=URL"), "{error}");
}
