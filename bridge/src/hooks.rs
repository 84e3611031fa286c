//! Facts about hooks the client needs without asking hookd: which hook a
//! call is for, whether it is a notification, and the identity that hookd's
//! verdict cache keys on.

use hookd_proto::v1::{Hook, hook_call::Hook as Args};

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

/// The arguments as hookd's cache sees them: without payload and peer
/// port, so a verdict hookd marked cacheable applies to the same identities
/// locally.
pub fn cache_identity(args: &Args) -> Args {
    let mut args = args.clone();
    match &mut args {
        Args::AuthOnRegister(a) => {
            if let Some(peer) = &mut a.peer {
                peer.port = 0;
            }
        }
        Args::AuthOnRegisterM5(a) => {
            if let Some(peer) = &mut a.peer {
                peer.port = 0;
            }
        }
        Args::AuthOnPublish(a) => a.payload.clear(),
        Args::AuthOnPublishM5(a) => a.payload.clear(),
        _ => {}
    }
    args
}
