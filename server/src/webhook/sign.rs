//! Signed webhook requests in the Standard Webhooks format
//! (standardwebhooks.com): a receiver checks that a request comes from hookd
//! and was not replayed, with libraries that exist in many languages.
//!
//! A webhook's `secret` is one `whsec_<base64>` key, or a list of them while
//! a key is being rotated. Each request then carries `webhook-id`,
//! `webhook-timestamp` (Unix seconds) and `webhook-signature`: for every key,
//! `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, space-separated,
//! so a receiver that knows either key accepts it during the rotation.
//!
//! Secrets never leave this module in text: [`Secrets`] shows itself as
//! `[redacted]`, and errors name the key, never the value.

use std::fmt;

use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{hmac, rand::SecureRandom};
use serde::Deserialize;

/// The prefix every Standard Webhooks secret carries.
const PREFIX: &str = "whsec_";

/// The key lengths the specification allows, in bytes.
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// A webhook's signing secrets as configured (`secret`: a string, or a list
/// during a rotation); empty when requests are not signed. Shown redacted.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "OneOrMany")]
pub struct Secrets(Vec<String>);

/// `secret = "whsec_…"` or `secret = ["whsec_…", "whsec_…"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Signs requests with one webhook's keys.
#[derive(Clone)]
pub struct Signer {
    keys: Vec<hmac::Key>,
}

/// Why a configured secret cannot be used. The message never contains it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret lacks the `whsec_` prefix.
    #[error("secret number {0} does not start with `whsec_` (the Standard Webhooks form: whsec_ + base64)")]
    Prefix(usize),
    /// What follows the prefix is not standard base64.
    #[error("secret number {0} is not base64 after `whsec_`")]
    Base64(usize),
    /// The key is shorter or longer than the specification allows.
    #[error("secret number {index} decodes to {bytes} bytes; keys must be 24 to 64 bytes")]
    Length {
        /// Which secret of the list, from 1.
        index: usize,
        /// Its decoded length.
        bytes: usize,
    },
}

impl From<OneOrMany> for Secrets {
    fn from(value: OneOrMany) -> Self {
        match value {
            OneOrMany::One(secret) => Self(vec![secret]),
            OneOrMany::Many(secrets) => Self(secrets),
        }
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets([redacted; {}])", self.0.len())
    }
}

impl Secrets {
    /// Secrets from their configured text (`whsec_…`).
    pub fn new(secrets: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self(secrets.into_iter().map(Into::into).collect())
    }

    /// Whether no secret is configured (requests are not signed).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The signer for these secrets, or `None` when there are none.
    pub fn signer(&self) -> Result<Option<Signer>, SecretError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let keys = self
            .0
            .iter()
            .enumerate()
            .map(|(i, secret)| {
                let index = i + 1;
                let encoded = secret.strip_prefix(PREFIX).ok_or(SecretError::Prefix(index))?;
                let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64(index))?;
                if !KEY_BYTES.contains(&key.len()) {
                    return Err(SecretError::Length {
                        index,
                        bytes: key.len(),
                    });
                }
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &key))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Signer { keys }))
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer([redacted; {}])", self.keys.len())
    }
}

impl Signer {
    /// The `webhook-signature` value for one request: `v1,<base64>` per key,
    /// space-separated, over `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let signatures: Vec<String> = self
            .keys
            .iter()
            .map(|key| {
                let mut context = hmac::Context::with_key(key);
                context.update(id.as_bytes());
                context.update(b".");
                context.update(timestamp.as_bytes());
                context.update(b".");
                context.update(body);
                format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
            })
            .collect();
        signatures.join(" ")
    }
}

/// A fresh message id for a request that is not an outbox delivery (a
/// decision hook's call): `msg_` and 16 random bytes in hex. Receivers
/// de-duplicate by `webhook-id`; a call is never retried, so each gets its own.
pub fn fresh_id() -> String {
    let mut bytes = [0u8; 16];
    // The system's random source does not fail on the platforms hookd runs
    // on; were it to, a counter-free time-based id is still unique enough
    // for de-duplication, and the signature stays valid either way.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_be_bytes();
    }
    let mut id = String::with_capacity(4 + 32);
    id.push_str("msg_");
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's test vectors.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn the_specifications_example_signs_as_published() {
        let signer = Secrets::new([SECRET]).signer().expect("valid").expect("a secret");
        let signature = signer.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn two_secrets_give_two_space_separated_signatures() {
        let other = format!("whsec_{}", STANDARD.encode([7u8; 32]));
        let signer = Secrets::new([SECRET, other.as_str()])
            .signer()
            .expect("valid")
            .expect("secrets");
        let signature = signer.sign("msg_1", 1, b"{}");
        let parts: Vec<&str> = signature.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")), "{signature}");
    }

    #[test]
    fn a_bad_secret_is_refused_without_showing_it() {
        let cases = [
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SecretError::Prefix(1)),
            ("whsec_not base64!", SecretError::Base64(1)),
            ("whsec_c2hvcnQ=", SecretError::Length { index: 1, bytes: 5 }),
        ];
        for (secret, expected) in cases {
            let err = Secrets::new([secret]).signer().expect_err("refused");
            assert_eq!(err, expected);
            assert!(!err.to_string().contains(secret), "{err}");
        }
        assert!(!format!("{:?}", Secrets::new([SECRET])).contains("MfKQ"));
    }

    #[test]
    fn fresh_ids_differ() {
        let (a, b) = (fresh_id(), fresh_id());
        assert_ne!(a, b);
        assert!(a.starts_with("msg_") && a.len() == 36, "{a}");
    }
}
