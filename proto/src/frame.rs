//! hookd's own view of a broker's stream frames: `BrokerFrame` with the call
//! left undecoded, so that one call that does not decode costs only itself.
//!
//! tonic decodes a stream's frames before the handler sees them, and a frame
//! that fails to decode (a string that is not UTF-8, broken protobuf, a size
//! over the limit) ends the whole stream, and every call in flight on it.
//! hookd's `HookService.Stream` therefore reads [`RawBrokerFrame`]s (the same
//! wire format: an embedded message and `bytes` are both length-delimited)
//! and decodes each call with [`decode_call`], which turns a bad call into a
//! [`BadCall`] that still knows the call's id when it can be read.

use bytes::{Buf, Bytes};
use prost::{
    Message,
    encoding::{WireType, decode_key, decode_varint},
};

use crate::v1 as pb;

/// A `BrokerFrame` as hookd reads it: `Hello` decoded, a call kept as bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RawBrokerFrame {
    /// Exactly one is set, as in `BrokerFrame`.
    #[prost(oneof = "RawFrame", tags = "1, 2")]
    pub frame: Option<RawFrame>,
}

/// The frames of [`RawBrokerFrame`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum RawFrame {
    /// The broker's introduction, first and only first.
    #[prost(message, tag = "1")]
    Hello(pb::Hello),
    /// An encoded `HookCall`, decoded by [`decode_call`].
    #[prost(bytes = "bytes", tag = "2")]
    Call(Bytes),
}

/// A call that could not be decoded or is over the size limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BadCall {
    /// The call's id, when its bytes hold a readable one: the broker is
    /// answered for that id. `None` when not even the id can be read.
    pub id: Option<u64>,
    /// What is wrong, for the verdict and the log.
    pub reason: String,
}

/// Decodes one call of at most `max_bytes`. A larger call is not decoded at
/// all (only its id is looked for).
pub fn decode_call(bytes: Bytes, max_bytes: usize) -> Result<pb::HookCall, BadCall> {
    if bytes.len() > max_bytes {
        return Err(BadCall {
            id: call_id(&bytes),
            reason: format!(
                "the call is {} bytes, over hookd's limit of {max_bytes} (server.max_call_bytes)",
                bytes.len()
            ),
        });
    }
    let id = call_id(&bytes);
    pb::HookCall::decode(bytes).map_err(|e| BadCall {
        id,
        reason: format!("the call does not decode: {e}"),
    })
}

/// The `HookCall.id` (field 1, a varint) in an encoded call, read without
/// decoding the rest: the fields before it are skipped by their wire type.
pub fn call_id(mut bytes: &[u8]) -> Option<u64> {
    while bytes.has_remaining() {
        let (tag, wire_type) = decode_key(&mut bytes).ok()?;
        match (tag, wire_type) {
            (1, WireType::Varint) => return decode_varint(&mut bytes).ok(),
            (_, WireType::Varint) => {
                decode_varint(&mut bytes).ok()?;
            }
            (_, WireType::LengthDelimited) => {
                let len = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
                if len > bytes.remaining() {
                    return None;
                }
                bytes.advance(len);
            }
            (_, WireType::SixtyFourBit) if bytes.remaining() >= 8 => bytes.advance(8),
            (_, WireType::ThirtyTwoBit) if bytes.remaining() >= 4 => bytes.advance(4),
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: u64, client_id: &str) -> pb::HookCall {
        pb::HookCall {
            id,
            timeout_ms: Some(250),
            hook: Some(pb::hook_call::Hook::OnClientGone(pb::OnClientGone {
                mountpoint: String::new(),
                client_id: client_id.into(),
            })),
        }
    }

    #[test]
    fn a_good_call_decodes_as_tonic_would_have() {
        let bytes = Bytes::from(call(7, "c1").encode_to_vec());
        assert_eq!(decode_call(bytes, 1024), Ok(call(7, "c1")));
    }

    #[test]
    fn a_call_with_invalid_utf8_keeps_its_id() {
        let mut bytes = call(42, "xx").encode_to_vec();
        let at = bytes.len() - 2;
        bytes[at..].copy_from_slice(&[0xff, 0xfe]);
        let bad = decode_call(Bytes::from(bytes), 1024).expect_err("not UTF-8");
        assert_eq!(bad.id, Some(42));
        assert!(bad.reason.contains("does not decode"), "{}", bad.reason);
    }

    #[test]
    fn an_oversized_call_is_refused_unread_but_for_its_id() {
        let bytes = Bytes::from(call(9, &"x".repeat(100)).encode_to_vec());
        let bad = decode_call(bytes, 64).expect_err("over the limit");
        assert_eq!(bad.id, Some(9));
        assert!(bad.reason.contains("over hookd's limit of 64"), "{}", bad.reason);
    }

    #[test]
    fn the_id_is_found_after_other_fields_and_not_in_garbage() {
        // timeout_ms (field 2) and the hook (field 16) before the id.
        let mut bytes = Vec::new();
        prost::encoding::uint32::encode(2, &5, &mut bytes);
        prost::encoding::message::encode(16, &pb::OnClientGone::default(), &mut bytes);
        prost::encoding::uint64::encode(1, &77, &mut bytes);
        assert_eq!(call_id(&bytes), Some(77));
        assert_eq!(call_id(&[0xff, 0xff, 0xff]), None);
        assert_eq!(call_id(&[]), None);
    }
}
