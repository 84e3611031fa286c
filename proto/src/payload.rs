//! How a message payload is written into a JSON event body: the
//! `payload_encoding` of a webhook.
//!
//! - `base64`: standard base64 with padding (RMQTT always, NanoMQ's
//!   `base64`, vmq_webhooks' default);
//! - `base62`: NanoMQ's big-integer base conversion over `0-9A-Za-z`, each
//!   leading zero byte written as `0` (so `[0, 0, 1]` is `"001"`) and the
//!   empty payload as `""`;
//! - `plain`: the payload as JSON text. This one is binary-safe by refusal:
//!   a payload that is UTF-8 goes out whole (a NUL byte becomes `\u0000`,
//!   never an end of string as in NanoMQ), and one that is not UTF-8 is
//!   refused with [`NotUtf8`], never replaced or truncated; the delivery
//!   becomes a dead letter that says why (pick `base64` for binary
//!   payloads).

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};

/// A `payload_encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// The payload as JSON text, refused if it is not UTF-8.
    Plain,
    /// Standard base64 with padding.
    #[default]
    Base64,
    /// NanoMQ's base62 (`0-9A-Za-z`, leading zero bytes as `0`).
    Base62,
}

/// A payload that `plain` cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the payload is not UTF-8 (invalid byte at offset {offset}), which payload_encoding = \"plain\" cannot carry; use \"base64\""
)]
pub struct NotUtf8 {
    /// Where the first invalid byte is.
    pub offset: usize,
}

/// NanoMQ's base62 digits, value order.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A payload encoding name that is not one of the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a payload encoding; valid values are `{}`, `{}`, `{}`", Encoding::Plain.name(), Encoding::Base64.name(), Encoding::Base62.name())]
pub struct UnknownEncoding {
    /// The name as given.
    pub given: String,
}

impl std::str::FromStr for Encoding {
    type Err = UnknownEncoding;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Encoding::ALL
            .into_iter()
            .find(|value| value.name() == text)
            .ok_or_else(|| UnknownEncoding {
                given: text.to_owned(),
            })
    }
}

/// From its name, with an error listing the valid names (serde's derived
/// enum errors do not list them).
impl<'de> serde::Deserialize<'de> for Encoding {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Encoding {
    /// Every encoding.
    pub const ALL: [Encoding; 3] = [Encoding::Plain, Encoding::Base64, Encoding::Base62];

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Plain => "plain",
            Encoding::Base64 => "base64",
            Encoding::Base62 => "base62",
        }
    }

    /// `payload` as the JSON string of this encoding.
    pub fn encode(self, payload: &[u8]) -> Result<String, NotUtf8> {
        match self {
            Encoding::Plain => std::str::from_utf8(payload)
                .map(str::to_owned)
                .map_err(|e| NotUtf8 {
                    offset: e.valid_up_to(),
                }),
            Encoding::Base64 => Ok(BASE64.encode(payload)),
            Encoding::Base62 => Ok(base62(payload)),
        }
    }
}

/// The payload read as one big-endian number, written in base 62 (quadratic,
/// as NanoMQ's; payloads are small), after a `0` per leading zero byte.
fn base62(payload: &[u8]) -> String {
    let zeros = payload.iter().take_while(|&&b| b == 0).count();
    // Little-endian base-62 digits of the number read so far.
    let mut digits: Vec<u8> = Vec::with_capacity(payload.len() * 138 / 100 + 1);
    for &byte in &payload[zeros..] {
        let mut carry = u32::from(byte);
        for digit in &mut digits {
            carry += u32::from(*digit) << 8;
            *digit = (carry % 62) as u8;
            carry /= 62;
        }
        while carry > 0 {
            digits.push((carry % 62) as u8);
            carry /= 62;
        }
    }
    let mut text = "0".repeat(zeros);
    text.extend(digits.iter().rev().map(|&d| char::from(BASE62[usize::from(d)])));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed apart from this code, with Python's arbitrary
    /// precision integers (`int.from_bytes(b, "big")` written in base 62 over
    /// the same alphabet, a `0` per leading zero byte); `Hello` and
    /// `hello world` are also the published vectors of common base62 tools.
    #[test]
    fn base62_matches_known_vectors() {
        let vectors: [(&[u8], &str); 8] = [
            (b"Hello", "5TP3P3v"),
            (b"hello world", "AAwf93rvy4aWQVw"),
            (b"\x00\x00\x01", "001"),
            (b"\xff", "47"),
            (b"\x00", "0"),
            (b"", ""),
            (
                b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f",
                "0SYW7RiJxkEgOGusQGwp",
            ),
            (b"\x00\xff\xfe", "0H30"),
        ];
        for (bytes, text) in vectors {
            assert_eq!(Encoding::Base62.encode(bytes).as_deref(), Ok(text), "{bytes:?}");
        }
    }

    #[test]
    fn base64_is_standard_with_padding() {
        assert_eq!(Encoding::Base64.encode(b"hi").as_deref(), Ok("aGk="));
        assert_eq!(Encoding::Base64.encode(&[0xff, 0xfe]).as_deref(), Ok("//4="));
    }

    #[test]
    fn plain_keeps_nul_and_refuses_what_is_not_utf8() {
        assert_eq!(Encoding::Plain.encode(b"a\0b").as_deref(), Ok("a\0b"));
        assert_eq!(Encoding::Plain.encode("é".as_bytes()).as_deref(), Ok("é"));
        assert_eq!(Encoding::Plain.encode(b"ok\xffno"), Err(NotUtf8 { offset: 2 }));
    }
}
