//! Reloading the configuration file of a real hookd process, by SIGHUP and
//! by `hookd reload`: webhook changes apply at once without dropping a
//! broker stream (the broker is told, as for a run-time registration), and
//! an invalid file is refused with its error while the running
//! configuration keeps serving.

use std::path::Path;

use hookd_proto::v1 as pb;

use super::admin::{admin_of, ok, refused};
use crate::harness::{
    Scratch, assert_next, assert_ok,
    broker::Broker,
    calls,
    process::HookdProcess,
    webhook::{Reply, Webhook},
};

/// A configuration with `url` registered for each of `hooks`.
fn with_webhooks(url: &str, hooks: &[&str]) -> String {
    hooks
        .iter()
        .map(|hook| format!("[[webhooks]]\nhook = \"{hook}\"\nendpoint = \"{url}\"\n"))
        .collect()
}

fn write(path: &Path, toml: &str) {
    std::fs::write(path, toml).expect("write the configuration file");
}

fn active(hooks: &[i32]) -> Vec<pb::Hook> {
    hooks
        .iter()
        .map(|h| pb::Hook::try_from(*h).expect("a known hook"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_applies_webhook_changes_without_dropping_the_broker_stream() {
    let first = Webhook::start(Reply::ok()).await;
    let second = Webhook::start(Reply::ok()).await;
    let scratch = Scratch::new();
    let file = scratch.path().join("hookd.toml");
    write(&file, &with_webhooks(&first.url(), &["auth_on_register"]));
    let hookd = HookdProcess::launch().config_file(&file).start().await;
    let admin = admin_of(&hookd).await;
    let broker = Broker::connect(hookd.client().await).await;
    assert_eq!(active(&broker.welcome().active_hooks), [pb::Hook::AuthOnRegister]);
    // A run-time registration, which a reload keeps.
    let runtime = Webhook::start(Reply::ok()).await;
    ok(&[
        "webhooks",
        "--admin",
        &admin,
        "register",
        "hook=on_register",
        &format!("endpoint={}", runtime.url()),
    ])
    .await;
    assert_eq!(
        active(&broker.next_hooks_changed().await.active_hooks),
        [pb::Hook::AuthOnRegister, pb::Hook::OnRegister]
    );

    // The first webhook moves to auth_on_subscribe; the second joins
    // auth_on_register.
    write(
        &file,
        &format!(
            "{}{}",
            with_webhooks(&second.url(), &["auth_on_register"]),
            with_webhooks(&first.url(), &["auth_on_subscribe"])
        ),
    );
    hookd.signal("HUP").await;
    let changed = broker.next_hooks_changed().await;
    assert_eq!(
        active(&changed.active_hooks),
        [
            pb::Hook::AuthOnRegister,
            pb::Hook::AuthOnSubscribe,
            pb::Hook::OnRegister
        ]
    );
    hookd.wait_for_log("configuration reloaded").await;
    assert!(broker.ended().is_none(), "the stream is still open");
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
    assert_eq!(
        (first.hits(), second.hits()),
        (0, 1),
        "auth_on_register goes to the new endpoint"
    );
    assert_ok(&broker.call(calls::auth_on_subscribe("c1")).await);
    assert_eq!(first.hits(), 1);
    let shown = ok(&["webhooks", "--admin", &admin, "show"]).await;
    assert!(
        shown.contains(&runtime.url()),
        "the run-time registration stays:\n{shown}"
    );
    assert!(hookd.is_serving().await);

    // `hookd reload` does the same, and says what changed.
    write(&file, "");
    let out = ok(&["reload", "--admin", &admin]).await;
    assert!(out.contains("removed auth_on_register"), "{out}");
    assert!(out.contains("removed auth_on_subscribe"), "{out}");
    assert_eq!(
        active(&broker.next_hooks_changed().await.active_hooks),
        [pb::Hook::OnRegister]
    );
    assert_next(&broker.call(calls::auth_on_register("c2")).await);
    assert!(broker.ended().is_none(), "the stream is still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_configuration_is_refused_with_its_error_and_the_old_one_keeps_serving() {
    let webhook = Webhook::start(Reply::ok()).await;
    let scratch = Scratch::new();
    let file = scratch.path().join("hookd.toml");
    let good = with_webhooks(&webhook.url(), &["auth_on_register"]);
    write(&file, &good);
    let hookd = HookdProcess::launch().config_file(&file).start().await;
    let admin = admin_of(&hookd).await;
    let broker = Broker::connect(hookd.client().await).await;

    // A typo'd hook: `hookd reload` says why, and nothing changes.
    write(
        &file,
        &format!(
            "{good}[[webhooks]]\nhook = \"auth_on_lunch\"\nendpoint = \"{}\"\n",
            webhook.url()
        ),
    );
    let error = refused(&["reload", "--admin", &admin]).await;
    assert!(error.contains("reload refused"), "{error}");
    assert!(error.contains("auth_on_lunch"), "{error}");
    hookd.wait_for_log("configuration reload refused").await;

    // A webhook that cannot be built (its CA file is missing) refuses the
    // whole reload, the rest of the file included.
    write(
        &file,
        &format!(
            "[[webhooks]]\nhook = \"on_register\"\nendpoint = \"{}\"\n\
             [[webhooks]]\nhook = \"auth_on_publish\"\nendpoint = \"https://127.0.0.1:1/\"\nca_file = \"/nonexistent/ca.pem\"\n",
            webhook.url()
        ),
    );
    let error = refused(&["reload", "--admin", &admin]).await;
    assert!(error.contains("/nonexistent/ca.pem"), "{error}");

    // SIGHUP with a file that does not even parse: logged, hookd serves on.
    write(&file, "[[webhooks]\nhook = ");
    hookd.signal("HUP").await;
    let refusals = || {
        hookd
            .log()
            .lines()
            .filter(|line| line.contains("configuration reload refused"))
            .count()
    };
    crate::harness::eventually(|| async { refusals() >= 3 }, crate::harness::WAIT)
        .await
        .unwrap_or_else(|_| panic!("three refusals logged:\n{}", hookd.log()));
    assert!(hookd.is_serving().await, "SIGHUP never stops hookd");

    assert!(broker.ended().is_none(), "the stream is still open");
    assert_ok(&broker.call(calls::auth_on_register("c1")).await);
    assert_eq!(webhook.hits(), 1, "the old configuration still serves");
    let shown = ok(&["webhooks", "--admin", &admin, "show"]).await;
    assert!(
        !shown.contains("| on_register ") && !shown.contains("auth_on_publish"),
        "{shown}"
    );

    // A change outside `webhooks` is not applied, and the reload says so.
    write(&file, &format!("[server]\ncall_timeout = 2000\n{good}"));
    let out = ok(&["reload", "--admin", &admin]).await;
    assert!(out.contains("restart needed for changes to: server"), "{out}");
}
