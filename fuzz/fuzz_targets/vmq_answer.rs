//! A webhook's answer, as hookd's back door reads it (`hookd_proto::vmq::decode_answer`).
//!
//! Input: one byte choosing the hook (low 7 bits) and the payload encoding
//! (high bit: base64), then the body. Decoding must never panic, and an
//! answer that decodes to `ok` or `next` must survive the sidecar's
//! re-encoding (`encode_answer`) unchanged.

#![no_main]

use hookd_proto::{
    Hook,
    verdict::Verdict,
    vmq::{PayloadEncoding, decode_answer, encode_answer},
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
    if let Ok(verdict @ (Verdict::Ok(_) | Verdict::Next)) = decode_answer(hook, body, encoding) {
        let again = encode_answer(hook, &verdict, encoding).to_string();
        assert_eq!(
            decode_answer(hook, again.as_bytes(), encoding).as_ref(),
            Ok(&verdict),
            "{hook}: {again}"
        );
    }
});
