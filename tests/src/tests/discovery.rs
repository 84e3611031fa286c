//! hookd is discoverable like any gRPC service: `grpc.health.v1` reports it
//! SERVING and gRPC reflection v1 lists `hookd.v1.HookService`.

use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::harness::{service::Hookd, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_hook_service_and_the_server_as_serving() {
    let hookd = Hookd::with_webhooks([]).await;
    let mut health = HealthClient::new(hookd.channel().await);
    for service in ["hookd.v1.HookService", ""] {
        let request = HealthCheckRequest {
            service: service.into(),
        };
        let response = within("a health check", health.check(request))
            .await
            .unwrap_or_else(|status| panic!("health check of {service:?} failed: {status:?}"));
        assert_eq!(
            response.into_inner().status(),
            ServingStatus::Serving,
            "{service:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_hook_service() {
    let hookd = Hookd::with_webhooks([]).await;
    let mut reflection = ServerReflectionClient::new(hookd.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let responses = within(
        "reflection",
        reflection.server_reflection_info(tokio_stream::iter([request])),
    )
    .await
    .expect("reflection v1 is served");
    let mut responses = responses.into_inner();
    let first = within("a reflection answer", responses.next())
        .await
        .expect("one answer per request")
        .expect("the answer is not an error");
    let services: Vec<String> = match first.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("expected a service list, got {other:?}"),
    };
    assert!(
        services.iter().any(|s| s == "hookd.v1.HookService"),
        "{services:?}"
    );
}
