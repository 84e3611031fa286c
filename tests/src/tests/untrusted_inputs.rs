//! The three entry points that read what others wrote, held to the
//! properties the `cargo fuzz` targets in `fuzz/` check, in the normal test
//! suite: a webhook's answer and VerneMQ's request (`hookd_proto::vmq`), a
//! broker's protobuf call (`hookd_proto::convert`), and the configuration
//! file (`hookd::Config::from_toml`). None may panic on any input, and what
//! decodes survives its way back unchanged.
//!
//! The committed fuzz corpus (`fuzz/corpus/<target>/`, with every input a
//! fuzzer found a bug with) is replayed here, so a fixed bug stays fixed
//! without nightly; property tests add generated near-valid inputs.

use std::path::{Path, PathBuf};

use hookd_proto::{
    Hook,
    call::HookCall,
    convert::{call_from_proto, call_to_proto},
    v1 as pb,
    verdict::Verdict,
    vmq::{PayloadEncoding, decode_answer, decode_request, encode_answer, encode_request},
};
use proptest::{collection, prelude::*};
use prost::Message as _;
use serde_json::Value;

/// The hook and payload encoding a fuzz input's first byte selects.
fn select(selector: u8) -> (Hook, PayloadEncoding) {
    let hook = Hook::ALL[usize::from(selector & 0x7f) % Hook::ALL.len()];
    let encoding = PayloadEncoding {
        base64: selector & 0x80 != 0,
        omit_for_auth_on_publish: false,
    };
    (hook, encoding)
}

/// `fuzz_targets/vmq_answer.rs`: decoding never panics; `ok` and `next`
/// survive the sidecar's re-encoding.
fn vmq_answer(hook: Hook, encoding: PayloadEncoding, body: &[u8]) -> Result<(), String> {
    if let Ok(verdict @ (Verdict::Ok(_) | Verdict::Next)) = decode_answer(hook, body, encoding) {
        let again = encode_answer(hook, &verdict, encoding).to_string();
        let decoded = decode_answer(hook, again.as_bytes(), encoding);
        if decoded.as_ref() != Ok(&verdict) {
            return Err(format!("{hook}: {verdict:?} → {again} → {decoded:?}"));
        }
    }
    Ok(())
}

/// `fuzz_targets/vmq_request.rs`: decoding never panics; a call that
/// decodes encodes to a body that decodes to the same call.
fn vmq_request(hook: Hook, encoding: PayloadEncoding, body: &[u8]) -> Result<(), String> {
    let Ok(args) = decode_request(hook, body, encoding) else {
        return Ok(());
    };
    let Ok(call) = HookCall::new(hook, args) else {
        return Ok(());
    };
    let again = encode_request(&call, encoding);
    let decoded = decode_request(hook, &again, encoding).map(|args| HookCall::new(hook, args));
    if decoded != Ok(Ok(call.clone())) {
        return Err(format!(
            "{hook}: {call:?} → {} → {decoded:?}",
            String::from_utf8_lossy(&again)
        ));
    }
    Ok(())
}

/// `fuzz_targets/call_decode.rs`: protobuf decoding and conversion never
/// panic; a call that converts converts back to itself.
fn call_decode(data: &[u8]) -> Result<(), String> {
    let Ok(message) = pb::HookCall::decode(data) else {
        return Ok(());
    };
    let Ok(call) = call_from_proto(message.hook) else {
        return Ok(());
    };
    let again = call_from_proto(Some(call_to_proto(call.clone())));
    if again.as_ref() != Ok(&call) {
        return Err(format!("{call:?} → {again:?}"));
    }
    Ok(())
}

/// `fuzz_targets/config_toml.rs`: loading never panics.
fn config_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hookd::Config::from_toml(text);
    }
}

/// The files of `fuzz/corpus/<target>/`.
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_committed_fuzz_corpus_passes_every_target() {
    for path in corpus("vmq_answer") {
        if let Some((&selector, body)) = read(&path).split_first() {
            let (hook, encoding) = select(selector);
            vmq_answer(hook, encoding, body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    for path in corpus("vmq_request") {
        if let Some((&selector, body)) = read(&path).split_first() {
            let (hook, encoding) = select(selector);
            vmq_request(hook, encoding, body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    for path in corpus("call_decode") {
        call_decode(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    for path in corpus("config_toml") {
        config_toml(&read(&path));
    }
}

/// Any JSON value, nested a few levels, with the numbers that break
/// conversions (negative, past `u32`, fractional, huge).
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just(0_u64),
            Just(1),
            Just(2),
            Just(128),
            Just(65_535),
            Just(4_294_967_296)
        ]
        .prop_map(Value::from),
        "[a-z0-9+/#=_ ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            collection::btree_map(field(), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A field name vmq_webhooks uses, or another.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "result",
            "modifiers",
            "error",
            "topic",
            "topics",
            "payload",
            "qos",
            "retain",
            "mountpoint",
            "subscriber_id",
            "client_id",
            "username",
            "password",
            "peer_addr",
            "peer_port",
            "properties",
            "p_user_property",
            "key",
            "val",
            "p_message_expiry_interval",
            "p_content_type",
            "no_local",
            "rap",
            "retain_handling",
            "max_message_size",
            "clean_session",
            "clean_start",
            "throttle",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

/// A vmq answer: `result` of `ok`, `next` or an error, with modifiers or
/// top-level fields built from [`json`].
fn answer() -> impl Strategy<Value = Value> {
    let result = prop_oneof![
        Just(Value::from("ok")),
        Just(Value::from("next")),
        json().prop_map(|error| serde_json::json!({ "error": error })),
        json(),
    ];
    (result, collection::btree_map(field(), json(), 0..4), json()).prop_map(|(result, extra, modifiers)| {
        let mut answer = serde_json::Map::new();
        answer.insert("result".into(), result);
        answer.insert("modifiers".into(), modifiers);
        answer.extend(extra);
        Value::Object(answer)
    })
}

/// One `key = value` line per entry under `[section]`, values of any TOML type.
fn config_text() -> impl Strategy<Value = String> {
    let section = prop::sample::select(vec!["server", "http", "cache", "outbox", "admin", "metrics"]);
    let key = prop::sample::select(vec![
        "listen",
        "max_in_flight_per_stream",
        "call_timeout",
        "worker_threads",
        "max_call_bytes",
        "shutdown_grace_ms",
        "handshake_timeout_ms",
        "idle_timeout_ms",
        "max_streams",
        "max_streams_per_connection",
        "max_connections",
        "reflection",
        "reload_interval_ms",
        "pool_max_connections",
        "pool_idle_timeout_ms",
        "stall_timeout_ms",
        "max_entries",
        "path",
        "enabled",
        "allowed_webhook_hosts",
        "default_ttl_ms",
    ]);
    let value = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551615".to_owned()),
        Just("0".to_owned()),
        any::<f64>()
            .prop_filter("TOML floats are finite here", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[a-z0-9:./ ]{0,16}".prop_map(|s| format!("{s:?}")),
        Just("[\"10.0.0.0/8\", \"::/0\", \"\"]".to_owned()),
    ];
    let webhook = (
        prop::sample::select(Hook::ALL.map(Hook::name).to_vec()),
        "(https?://)?[a-z0-9.:/]{0,16}",
        any::<i64>(),
    )
        .prop_map(|(hook, endpoint, timeout)| {
            format!("[[webhooks]]\nhook = {hook:?}\nendpoint = {endpoint:?}\nresponse_timeout = {timeout}\n")
        });
    (
        collection::vec((section, key, value), 0..6),
        collection::vec(webhook, 0..3),
    )
        .prop_map(|(lines, webhooks)| {
            let mut text = String::new();
            for (section, key, value) in lines {
                text.push_str(&format!("[{section}]\n{key} = {value}\n"));
            }
            for webhook in webhooks {
                text.push_str(&webhook);
            }
            text
        })
}

proptest! {
    #[test]
    fn webhook_answers_never_panic_and_ok_answers_re_encode_to_themselves(
        selector in any::<u8>(),
        answer in answer(),
        noise in collection::vec(any::<u8>(), 0..64),
    ) {
        let (hook, encoding) = select(selector);
        prop_assert_eq!(vmq_answer(hook, encoding, answer.to_string().as_bytes()), Ok(()));
        prop_assert_eq!(vmq_answer(hook, encoding, &noise), Ok(()));
    }

    #[test]
    fn vmq_requests_never_panic_and_decoded_calls_re_encode_to_themselves(
        selector in any::<u8>(),
        body in collection::btree_map(field(), json(), 0..8),
    ) {
        let (hook, encoding) = select(selector);
        let body = Value::Object(body.into_iter().collect()).to_string();
        prop_assert_eq!(vmq_request(hook, encoding, body.as_bytes()), Ok(()));
    }

    #[test]
    fn protobuf_calls_never_panic_and_converted_calls_convert_back(
        seed in prop::sample::select(corpus("call_decode")),
        flips in collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        noise in collection::vec(any::<u8>(), 0..128),
    ) {
        // Seeds with a few bytes changed stay close to valid calls.
        let mut data = read(&seed);
        for (at, byte) in flips {
            if !data.is_empty() {
                let i = at.index(data.len());
                data[i] = byte;
            }
        }
        prop_assert_eq!(call_decode(&data), Ok(()));
        prop_assert_eq!(call_decode(&noise), Ok(()));
    }

    #[test]
    fn configuration_text_never_panics(text in config_text(), noise in ".{0,64}") {
        config_toml(text.as_bytes());
        config_toml(noise.as_bytes());
    }
}
