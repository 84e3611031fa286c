//! A broker's call, as hookd's front door reads it: protobuf bytes
//! (`hookd.v1.HookCall`) to the domain call (`hookd_proto::convert::call_from_proto`).
//!
//! Decoding and conversion must never panic, and a call that converts must
//! convert back (`call_to_proto`, the sidecar's direction) to the same call.

#![no_main]

use hookd_proto::{
    convert::{call_from_proto, call_to_proto},
    v1 as pb,
};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = pb::HookCall::decode(data) else {
        return;
    };
    let Ok(call) = call_from_proto(message.hook) else {
        return;
    };
    let again = call_from_proto(Some(call_to_proto(call.clone())));
    assert_eq!(again.as_ref(), Ok(&call));
});
