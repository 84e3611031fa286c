//! Facts about hooks the client needs without asking hookd: which hook a
//! call is for, whether it is a notification, and the identity that hookd's
//! verdict cache keys on.

use hookd_proto::v1::{self as pb, Hook, hook_call::Hook as Args};

/// The hook a call's arguments are for.
pub fn hook_of(args: &Args) -> Hook {
    match args {
        Args::AuthOnRegister(_) => Hook::AuthOnRegister,
        Args::AuthOnRegisterM5(_) => Hook::AuthOnRegisterM5,
        Args::AuthOnPublish(_) => Hook::AuthOnPublish,
        Args::AuthOnPublishM5(_) => Hook::AuthOnPublishM5,
        Args::AuthOnSubscribe(_) => Hook::AuthOnSubscribe,
        Args::AuthOnSubscribeM5(_) => Hook::AuthOnSubscribeM5,
        Args::OnRegister(_) => Hook::OnRegister,
        Args::OnRegisterM5(_) => Hook::OnRegisterM5,
        Args::OnPublish(_) => Hook::OnPublish,
        Args::OnPublishM5(_) => Hook::OnPublishM5,
        Args::OnSubscribe(_) => Hook::OnSubscribe,
        Args::OnSubscribeM5(_) => Hook::OnSubscribeM5,
        Args::OnUnsubscribe(_) => Hook::OnUnsubscribe,
        Args::OnUnsubscribeM5(_) => Hook::OnUnsubscribeM5,
        Args::OnDeliver(_) => Hook::OnDeliver,
        Args::OnDeliverM5(_) => Hook::OnDeliverM5,
        Args::OnAuthM5(_) => Hook::OnAuthM5,
        Args::OnOfflineMessage(_) => Hook::OnOfflineMessage,
        Args::OnClientWakeup(_) => Hook::OnClientWakeup,
        Args::OnClientOffline(_) => Hook::OnClientOffline,
        Args::OnClientGone(_) => Hook::OnClientGone,
        Args::OnSessionExpired(_) => Hook::OnSessionExpired,
    }
}

/// Whether the broker only tells hookd (vmq's `all` hooks) rather than waits
/// for a decision.
pub fn is_notification(hook: Hook) -> bool {
    matches!(
        hook,
        Hook::OnRegister
            | Hook::OnRegisterM5
            | Hook::OnPublish
            | Hook::OnPublishM5
            | Hook::OnSubscribe
            | Hook::OnSubscribeM5
            | Hook::OnOfflineMessage
            | Hook::OnClientWakeup
            | Hook::OnClientOffline
            | Hook::OnClientGone
            | Hook::OnSessionExpired
    )
}

/// Whether `ok` answers to `hook` may be cached on `cache-control: max-age`
/// (the three auth hooks and their `_m5` variants, as in vmq_webhooks).
pub fn is_cacheable(hook: Hook) -> bool {
    matches!(
        hook,
        Hook::AuthOnRegister
            | Hook::AuthOnRegisterM5
            | Hook::AuthOnPublish
            | Hook::AuthOnPublishM5
            | Hook::AuthOnSubscribe
            | Hook::AuthOnSubscribeM5
    )
}

/// Runs `f` on the arguments as hookd's cache sees them: without payload
/// and peer port, so a verdict hookd marked cacheable applies to the same
/// identities locally. Both are taken out of `args` for the call and put
/// back after it, so nothing is cloned.
pub fn with_cache_identity<R>(args: &mut Args, f: impl FnOnce(&Args) -> R) -> R {
    let (mut port, mut payload) = (0, Vec::new());
    swap_identity_free(args, &mut port, &mut payload);
    let result = f(args);
    swap_identity_free(args, &mut port, &mut payload);
    result
}

/// Swaps the fields the cache identity leaves out (the peer port of a
/// register, the payload of a publish) with `port` and `payload`; done twice,
/// it puts them back.
fn swap_identity_free(args: &mut Args, port: &mut u32, payload: &mut Vec<u8>) {
    match args {
        Args::AuthOnRegister(pb::AuthOnRegister { peer: Some(peer), .. })
        | Args::AuthOnRegisterM5(pb::AuthOnRegisterM5 { peer: Some(peer), .. }) => {
            std::mem::swap(&mut peer.port, port);
        }
        Args::AuthOnPublish(pb::AuthOnPublish { payload: own, .. })
        | Args::AuthOnPublishM5(pb::AuthOnPublishM5 { payload: own, .. }) => std::mem::swap(own, payload),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(payload: &[u8]) -> Args {
        Args::AuthOnPublish(pb::AuthOnPublish {
            client_id: "c".into(),
            topic: "t".into(),
            payload: payload.to_vec(),
            ..Default::default()
        })
    }

    #[test]
    fn the_cache_identity_leaves_out_the_payload_and_puts_it_back() {
        let (mut a, mut b) = (publish(b"one"), publish(b"two"));
        let identity = with_cache_identity(&mut a, Clone::clone);
        assert_eq!(identity, with_cache_identity(&mut b, Clone::clone));
        assert_eq!(a, publish(b"one"), "the payload is restored");
    }

    #[test]
    fn the_cache_identity_leaves_out_the_peer_port_and_puts_it_back() {
        let register = |port| {
            Args::AuthOnRegister(pb::AuthOnRegister {
                peer: Some(pb::Peer {
                    addr: "10.0.0.1".into(),
                    port,
                }),
                client_id: "c".into(),
                ..Default::default()
            })
        };
        let (mut a, mut b) = (register(1), register(2));
        assert_eq!(
            with_cache_identity(&mut a, Clone::clone),
            with_cache_identity(&mut b, Clone::clone)
        );
        assert_eq!(a, register(1), "the port is restored");
    }
}
