//! The operators' front door: `hookd.v1.Admin` (gRPC) on its own listener
//! (`admin.listen`, loopback by default), which the `hookd outbox …` commands
//! call on a running hookd: list, replay and drop dead letters, enable a
//! webhook stopped by 410 Gone, show the outbox's backlog.
//!
//! Like every front door it converts at the edge: the outbox speaks domain
//! types ([`crate::outbox`]), this module the generated ones. Endpoints are
//! only ever shown redacted.

use hookd_proto::{server::admin_server, v1 as pb};
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use crate::{
    outbox::{AppendError, DeadLetter, Outbox, Selection, webhook_id},
    redact,
};

/// The most dead letters one list call returns.
const MAX_LIST: u32 = 1000;

/// The `hookd.v1.Admin` implementation over one hookd's outbox.
pub struct AdminService {
    outbox: Outbox,
}

impl AdminService {
    /// The admin service of `outbox`.
    pub fn new(outbox: Outbox) -> Self {
        Self { outbox }
    }

    /// Serves the service on `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(admin_server::AdminServer::new(self))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
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
}
