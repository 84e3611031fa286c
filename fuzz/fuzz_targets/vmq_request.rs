//! A vmq_webhooks request, as the sidecar reads what VerneMQ POSTs
//! (`hookd_proto::vmq::decode_request`).
//!
//! Input: one byte choosing the hook (low 7 bits) and the payload encoding
//! (high bit: base64), then the body. Decoding must never panic, and a call
//! that decodes must encode (`encode_request`, hookd's side) to a body that
//! decodes to the same call.

#![no_main]

use hookd_proto::{
    Hook,
    call::HookCall,
    vmq::{PayloadEncoding, decode_request, encode_request},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let hook = Hook::ALL[usize::from(selector & 0x7f) % Hook::ALL.len()];
    let encoding = PayloadEncoding {
        base64: selector & 0x80 != 0,
        omit_for_auth_on_publish: false,
    };
    let Ok(args) = decode_request(hook, body, encoding) else {
        return;
    };
    let Ok(call) = HookCall::new(hook, args) else {
        return;
    };
    let again = encode_request(&call, encoding);
    let decoded = decode_request(hook, &again, encoding).map(|args| HookCall::new(hook, args));
    assert_eq!(decoded, Ok(Ok(call)), "{hook}: {}", String::from_utf8_lossy(&again));
});
