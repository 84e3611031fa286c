//! The operators' front door: `hookd.v1.Admin` (gRPC) on its own listener
//! (`admin.listen`, loopback by default), which the `hookd` commands call on
//! a running hookd: list, replay and drop dead letters, enable a webhook
//! stopped by 410 Gone, show the outbox's backlog (`hookd outbox …`);
//! register, deregister and list webhooks (`hookd webhooks …`), the verdict
//! cache's figures and clearing it (`hookd cache …`), the connected brokers
//! (`hookd brokers`), and reloading the configuration (`hookd reload`).
//!
//! With `admin.token_file` (required off loopback) every call must carry
//! `authorization: Bearer <token>`; others are refused `UNAUTHENTICATED` and
//! logged with the peer, never the token. Only the token's SHA-256 digest is
//! kept, and a presented token is compared by its digest.
//!
//! Like every front door it converts at the edge: the outbox speaks domain
//! types ([`crate::outbox`]), this module the generated ones. Endpoints are
//! only ever shown redacted.

use std::{path::Path, sync::Arc};

use hookd_proto::{Hook, server::admin_server, v1 as pb};
use ring::digest;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status, service::Interceptor};
use tracing::warn;

use crate::{
    config::{MAX_DURATION_MS, WebhookConfig},
    control::{Control, ControlError},
    dispatch::Dispatcher,
    outbox::{AppendError, DeadLetter, Outbox, Selection, webhook_id},
    redact,
    registry::RegistryError,
};

/// The most dead letters one list call returns.
const MAX_LIST: u32 = 1000;

/// The shortest admin token accepted, in characters.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The `hookd.v1.Admin` implementation over one hookd.
pub struct AdminService {
    outbox: Outbox,
    dispatcher: Arc<Dispatcher>,
    control: Arc<Control>,
    max_cache_entries: u64,
}

/// The admin token (`admin.token_file`), as its digest.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

/// Why `admin.token_file` cannot be used (never the token itself).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read.
    #[error("admin.token_file {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file's token is too short (or the file is empty).
    #[error("admin.token_file {}: expected one line with a token of at least {MIN_TOKEN_CHARS} characters", path.display())]
    TooShort {
        /// The file.
        path: std::path::PathBuf,
    },
}

impl AdminToken {
    /// The token of `path`: its first line, trimmed.
    pub fn load(path: &Path) -> Result<Self, TokenError> {
        let token = read_token(path)?;
        Ok(Self {
            digest: sha256(&token),
        })
    }
}

/// The token in the file at `path` (its first line, trimmed), for clients.
pub fn read_token(path: &Path) -> Result<String, TokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        source,
    })?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(TokenError::TooShort {
            path: path.to_owned(),
        });
    }
    Ok(token.to_owned())
}

fn sha256(token: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

/// Checks every admin call's bearer token.
#[derive(Clone)]
struct RequireToken(AdminToken);

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        let why = match presented {
            Some(token) if sha256(token.trim()) == self.0.digest => return Ok(request),
            Some(_) => "wrong admin token",
            None => "no admin token",
        };
        warn!(peer = ?request.remote_addr(), why, "admin call refused");
        Err(Status::unauthenticated(
            "hookd's admin service requires `authorization: Bearer <token>` with the token of admin.token_file",
        ))
    }
}

impl AdminService {
    /// The admin service over `dispatcher` (its outbox, cache and brokers)
    /// and `control` (registrations and reload).
    pub fn new(dispatcher: Arc<Dispatcher>, control: Arc<Control>, max_cache_entries: u64) -> Self {
        Self {
            outbox: dispatcher.outbox().clone(),
            dispatcher,
            control,
            max_cache_entries,
        }
    }

    /// Serves the service on `listener` until `shutdown` completes, asking
    /// every call for `token` if given.
    pub async fn serve(
        self,
        listener: TcpListener,
        token: Option<AdminToken>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let router = match token {
            Some(token) => tonic::transport::Server::builder().add_service(
                admin_server::AdminServer::with_interceptor(self, RequireToken(token)),
            ),
            None => tonic::transport::Server::builder().add_service(admin_server::AdminServer::new(self)),
        };
        router.serve_with_incoming_shutdown(incoming, shutdown).await
    }
}

/// The dead letter as the admin surface shows it.
pub fn dead_letter_to_proto(outbox_store_id: u32, dead: &DeadLetter) -> pb::DeadLetter {
    pb::DeadLetter {
        id: dead.delivery.seq,
        webhook_id: webhook_id(outbox_store_id, dead.delivery.event_id),
        endpoint: redact::shown(&dead.delivery.endpoint),
        hook: dead.delivery.hook.clone(),
        client_id: dead.delivery.client_id.clone(),
        reason: dead.reason.clone(),
        created_ms: dead.delivery.created_ms,
        dead_ms: dead.dead_ms,
    }
}

/// The selection a request names; neither an id nor `all = true` is refused.
pub fn selection(request: pb::DeadLetterSelection) -> Result<Selection, Status> {
    match request.which {
        Some(pb::dead_letter_selection::Which::Id(id)) => Ok(Selection::Id(id)),
        Some(pb::dead_letter_selection::Which::All(true)) => Ok(Selection::All),
        _ => Err(Status::invalid_argument(
            "name the dead letters: `id` or `all = true`",
        )),
    }
}

fn status(e: AppendError) -> Status {
    match e {
        AppendError::Closed => Status::unavailable(e.to_string()),
        _ => Status::internal(e.to_string()),
    }
}

/// The status of a refused change, with its message.
fn control_status(e: ControlError) -> Status {
    let message = e.to_string();
    match e {
        ControlError::Registry(RegistryError::AlreadyRegistered { .. }) => Status::already_exists(message),
        ControlError::Registry(RegistryError::NotFound { .. }) => Status::not_found(message),
        ControlError::Registry(RegistryError::NotAllowed { .. }) => Status::permission_denied(message),
        ControlError::Registry(_) => Status::invalid_argument(message),
        ControlError::Store(e) => status(e),
        ControlError::Configured { .. } | ControlError::Config(_) | ControlError::Webhooks(_) => {
            Status::failed_precondition(message)
        }
    }
}

fn hook(name: &str) -> Result<Hook, Status> {
    Hook::from_name(name).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// The registration a request asks for, with defaults for what it leaves out.
fn webhook_from_proto(request: pb::WebhookRegistration) -> Result<WebhookConfig, Status> {
    let url = url::Url::parse(&request.endpoint).map_err(|e| {
        Status::invalid_argument(format!("endpoint {}: {e}", redact::Redacted(&request.endpoint)))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Status::invalid_argument(format!(
            "endpoint {}: must be an http:// or https:// URL with a host",
            redact::Redacted(&request.endpoint)
        )));
    }
    let mut webhook = WebhookConfig::new(hook(&request.hook)?, request.endpoint);
    if let Some(base64) = request.base64_payload {
        webhook.base64_payload = base64;
    }
    if let Some(no_payload) = request.no_payload {
        webhook.no_payload = no_payload;
    }
    if let Some(ms) = request.response_timeout_ms {
        if !(1..=MAX_DURATION_MS).contains(&ms) {
            return Err(Status::invalid_argument(format!(
                "response_timeout must be between 1 and {MAX_DURATION_MS} ms"
            )));
        }
        webhook.response_timeout = ms;
    }
    Ok(webhook)
}

#[tonic::async_trait]
impl admin_server::Admin for AdminService {
    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => 100,
            n => n.min(MAX_LIST),
        };
        let dead = self
            .outbox
            .dead_letters(request.after_id, limit as usize)
            .await
            .map_err(status)?;
        let store_id = self.outbox.store_id();
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: dead.iter().map(|d| dead_letter_to_proto(store_id, d)).collect(),
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<pb::DeadLetterSelection>,
    ) -> Result<Response<pb::DeadLettersChanged>, Status> {
        let which = selection(request.into_inner())?;
        let count = self.outbox.replay(which).await.map_err(status)?;
        tracing::info!(count, ?which, "dead letters replayed by an operator");
        Ok(Response::new(pb::DeadLettersChanged { count }))
    }

    async fn drop_dead_letters(
        &self,
        request: Request<pb::DeadLetterSelection>,
    ) -> Result<Response<pb::DeadLettersChanged>, Status> {
        let which = selection(request.into_inner())?;
        let count = self.outbox.drop_dead(which).await.map_err(status)?;
        tracing::info!(count, ?which, "dead letters dropped by an operator");
        Ok(Response::new(pb::DeadLettersChanged { count }))
    }

    async fn enable_webhook(
        &self,
        request: Request<pb::EnableWebhookRequest>,
    ) -> Result<Response<pb::EnableWebhookResponse>, Status> {
        let endpoint = request.into_inner().endpoint;
        let enabled = self.outbox.enable(&endpoint).await.map_err(status)?;
        Ok(Response::new(pb::EnableWebhookResponse {
            endpoint: enabled.map(|name| name.to_string()).unwrap_or_default(),
        }))
    }

    async fn outbox_status(
        &self,
        _request: Request<pb::OutboxStatusRequest>,
    ) -> Result<Response<pb::OutboxStatusResponse>, Status> {
        let mut webhooks: Vec<pb::WebhookBacklog> = self
            .outbox
            .endpoints()
            .iter()
            .map(|state| pb::WebhookBacklog {
                endpoint: state.name.to_string(),
                pending: state.depth(),
                stopped: state.is_stopped(),
            })
            .collect();
        webhooks.sort_by(|a, b| a.endpoint.cmp(&b.endpoint));
        Ok(Response::new(pb::OutboxStatusResponse {
            webhooks,
            pending_bytes: self.outbox.used_bytes(),
            max_bytes: self.outbox.config().max_bytes,
        }))
    }

    async fn register_webhook(
        &self,
        request: Request<pb::RegisterWebhookRequest>,
    ) -> Result<Response<pb::RegisterWebhookResponse>, Status> {
        let webhook = request
            .into_inner()
            .webhook
            .ok_or_else(|| Status::invalid_argument("no webhook"))?;
        let webhook = webhook_from_proto(webhook)?;
        let endpoint = self.control.register(webhook).await.map_err(control_status)?;
        Ok(Response::new(pb::RegisterWebhookResponse { endpoint }))
    }

    async fn deregister_webhook(
        &self,
        request: Request<pb::DeregisterWebhookRequest>,
    ) -> Result<Response<pb::DeregisterWebhookResponse>, Status> {
        let request = request.into_inner();
        let endpoint = self
            .control
            .deregister(hook(&request.hook)?, &request.endpoint)
            .await
            .map_err(control_status)?;
        Ok(Response::new(pb::DeregisterWebhookResponse { endpoint }))
    }

    async fn list_webhooks(
        &self,
        _request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let webhooks = self
            .control
            .webhooks()
            .into_iter()
            .map(|r| pb::Webhook {
                hook: r.webhook.hook.name().to_owned(),
                endpoint: redact::shown(&r.webhook.endpoint),
                base64_payload: r.webhook.base64_payload,
                no_payload: r.webhook.no_payload,
                response_timeout_ms: r.webhook.response_timeout,
                source: r.source.name().to_owned(),
            })
            .collect();
        Ok(Response::new(pb::ListWebhooksResponse { webhooks }))
    }

    async fn cache_stats(
        &self,
        request: Request<pb::CacheStatsRequest>,
    ) -> Result<Response<pb::CacheStatsResponse>, Status> {
        let cache = self.dispatcher.cache();
        let entries = cache.entries();
        let (hooks, since_ms) = cache.stats(request.into_inner().reset);
        Ok(Response::new(pb::CacheStatsResponse {
            entries,
            max_entries: self.max_cache_entries,
            hooks: hooks
                .into_iter()
                .map(|s| pb::HookCacheStats {
                    hook: s.hook.name().to_owned(),
                    hits: s.hits,
                    misses: s.misses,
                    inserts: s.inserts,
                })
                .collect(),
            since_ms,
        }))
    }

    async fn clear_cache(
        &self,
        _request: Request<pb::ClearCacheRequest>,
    ) -> Result<Response<pb::ClearCacheResponse>, Status> {
        let entries = self.dispatcher.cache().clear();
        tracing::info!(entries, "verdict cache cleared by an operator");
        Ok(Response::new(pb::ClearCacheResponse { entries }))
    }

    async fn list_brokers(
        &self,
        _request: Request<pb::ListBrokersRequest>,
    ) -> Result<Response<pb::ListBrokersResponse>, Status> {
        let brokers = self
            .dispatcher
            .brokers()
            .list()
            .iter()
            .map(|b| pb::Broker {
                node_id: b.node_id.clone(),
                kind: b.kind.clone(),
                version: b.version.clone(),
                address: b.address.map(|a| a.to_string()).unwrap_or_default(),
                since_ms: b.since_ms,
                calls_in_flight: b.calls_in_flight(),
            })
            .collect();
        Ok(Response::new(pb::ListBrokersResponse { brokers }))
    }

    async fn reload(
        &self,
        _request: Request<pb::ReloadRequest>,
    ) -> Result<Response<pb::ReloadResponse>, Status> {
        let reloaded = self.control.reload().await.map_err(control_status)?;
        Ok(Response::new(pb::ReloadResponse {
            added: reloaded.added,
            removed: reloaded.removed,
            restart_needed: reloaded.restart_needed.iter().map(|s| (*s).to_owned()).collect(),
        }))
    }
}
