//! Bearer tokens for brokers (`[server.auth] tokens_file`).
//!
//! Without them anyone who reaches the gRPC port can test passwords through
//! `auth_on_register` (a credential oracle) and forge events. With a tokens
//! file, every `hookd.v1.HookService` stream and call must carry
//! `authorization: Bearer <token>` metadata naming a token of the file;
//! others are refused with `UNAUTHENTICATED`, counted in
//! `hookd_unauthenticated_total` and logged with the peer and why, never the
//! token. Health stays open to probes; reflection can be turned off
//! (`server.reflection`).
//!
//! The file has one broker per line, `<name> <token>`: the name is what logs
//! show for the broker (its node, say), the token a random string of at least
//! 16 characters (e.g. `openssl rand -hex 32`). Blank lines and lines
//! starting with `#` are skipped. Only SHA-256 digests of the tokens are kept
//! in memory, and a token is found by its digest, so the comparison does not
//! reveal a valid token byte by byte. The file is reloaded when it changes
//! (as the TLS files are): add the new token, move brokers over, remove the
//! old one, with no restart.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::SystemTime,
};

use prometheus_client::metrics::counter::Counter;
use ring::digest;
use tonic::{Request, Status, service::Interceptor};
use tracing::{debug, info, warn};

/// The shortest token accepted, in characters.
const MIN_TOKEN_CHARS: usize = 16;

/// The tokens of a tokens file, reloaded when it changes.
pub struct Tokens {
    path: PathBuf,
    by_digest: RwLock<Arc<HashMap<[u8; 32], String>>>,
    loaded: Mutex<Option<(SystemTime, u64)>>,
}

/// Why a tokens file cannot be used; names the key, the file and the line,
/// never a token.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The file cannot be read.
    #[error("server.auth.tokens_file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not `<name> <token>` with a long enough token.
    #[error("server.auth.tokens_file {} line {line}: expected `<name> <token>` with a token of at least {MIN_TOKEN_CHARS} characters", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
    },
    /// The file names no token: every broker would be refused.
    #[error("server.auth.tokens_file {}: no tokens", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The interceptor that checks a request's bearer token.
#[derive(Clone)]
pub struct Authenticate {
    tokens: Arc<Tokens>,
    refused: Counter,
}

impl Tokens {
    /// Loads the tokens of `path`.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let stamp = stamp(path);
        Ok(Self {
            by_digest: RwLock::new(Arc::new(parse(path)?)),
            path: path.to_owned(),
            loaded: Mutex::new(stamp),
        })
    }

    /// Reloads the file if it changed; a file that cannot be loaded keeps
    /// the tokens in use (and is logged). Returns whether new tokens are in use.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamp(&self.path);
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if *loaded == now {
            return false;
        }
        *loaded = now;
        match parse(&self.path) {
            Ok(tokens) => {
                let count = tokens.len();
                *self.by_digest.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
                info!(tokens = count, "server.auth.tokens_file changed; reloaded");
                true
            }
            Err(e) => {
                warn!(error = %e, "server.auth.tokens_file changed but cannot be loaded; still using the previous tokens");
                false
            }
        }
    }

    /// The name of the broker `token` belongs to.
    fn name_of(&self, token: &str) -> Option<String> {
        let digest = sha256(token);
        self.by_digest
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            .cloned()
    }
}

impl Authenticate {
    /// Checks requests against `tokens`, counting refusals in `refused`.
    pub fn new(tokens: Arc<Tokens>, refused: Counter) -> Self {
        Self { tokens, refused }
    }
}

impl Interceptor for Authenticate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .map(|value| value.to_str().map(|v| v.strip_prefix("Bearer ")));
        let why = match presented {
            None => "no authorization metadata",
            Some(Err(_)) | Some(Ok(None)) => "authorization metadata is not `Bearer <token>`",
            Some(Ok(Some(token))) => match self.tokens.name_of(token.trim()) {
                Some(name) => {
                    debug!(broker = %name, "broker authenticated");
                    return Ok(request);
                }
                None => "unknown token",
            },
        };
        self.refused.inc();
        warn!(peer = ?request.remote_addr(), why, "unauthenticated request refused");
        Err(Status::unauthenticated(
            "hookd requires a bearer token (authorization: Bearer <token>) from server.auth.tokens_file",
        ))
    }
}

fn sha256(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn parse(path: &Path) -> Result<HashMap<[u8; 32], String>, TokensError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut tokens = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        match (fields.next(), fields.next(), fields.next()) {
            (Some(name), Some(token), None) if token.chars().count() >= MIN_TOKEN_CHARS => {
                tokens.insert(sha256(token), name.to_owned());
            }
            _ => {
                return Err(TokensError::Line {
                    path: path.to_owned(),
                    line: i + 1,
                });
            }
        }
    }
    if tokens.is_empty() {
        return Err(TokensError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(tokens)
}
