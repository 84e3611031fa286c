//! Which endpoints answer which hook, and who wants to know when that changes.
//!
//! Endpoints are kept per hook in registration order (the chain order). The
//! set of hooks that have at least one endpoint is published on a watch
//! channel, so every broker stream can tell its broker which hooks it may
//! answer locally. Registrations of the same URL share one HTTP pool.
//!
//! Each registration remembers where it came from ([`Source`]): the
//! configuration file, or an operator at run time (`hookd webhooks
//! register`, kept in the store by [`crate::control`]). A reload replaces the
//! configured ones in one swap ([`Registry::replace_configured`]) and keeps
//! the run-time ones after them; every chain is configured first, then run
//! time, each in registration order.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use tokio::sync::watch;

use crate::{
    allowlist::{AllowedHosts, Refused},
    config::{HttpConfig, WebhookConfig},
    metrics::Metrics,
    redact::Redacted,
    webhook::{self, Endpoint, Pools, sign::SecretError, tls::TlsError},
};
use hookd_proto::Hook;

/// The endpoints of one hook, in chain order; a cheap snapshot.
pub type Endpoints = Arc<[Arc<Endpoint>]>;

/// The registered endpoints of every hook.
pub struct Registry {
    http: HttpConfig,
    shards: usize,
    /// Where run-time registrations may point (`admin.allowed_webhook_hosts`).
    allowed: AllowedHosts,
    state: RwLock<State>,
    active: watch::Sender<Vec<Hook>>,
    /// Where each registration's series live, from its registration to
    /// its deregistration.
    metrics: Arc<Metrics>,
}

/// Where a registration came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `[[webhooks]]` of the configuration file; changed by editing it and
    /// reloading.
    Config,
    /// Registered at run time through the admin service; kept in the store.
    Runtime,
}

impl Source {
    /// `config` or `runtime`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Runtime => "runtime",
        }
    }
}

/// One registration as listed: its settings and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The webhook's settings.
    pub webhook: WebhookConfig,
    /// Where it came from.
    pub source: Source,
}

/// What [`Registry::replace_configured`] changed, as `(hook, endpoint)`
/// pairs (endpoints as configured: redact before showing).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Registrations added (or changed: removed and added again).
    pub added: Vec<(Hook, String)>,
    /// Registrations removed.
    pub removed: Vec<(Hook, String)>,
    /// Run-time registrations the configuration now has too: they count as
    /// configured from now on.
    pub now_configured: Vec<(Hook, String)>,
}

#[derive(Default)]
struct State {
    /// Every registration in registration order, with its endpoint.
    registrations: Vec<(Registration, Arc<Endpoint>)>,
    // Looked up on every call: foldhash, not SipHash, for a one-byte key.
    by_hook: HashMap<Hook, Endpoints, foldhash::fast::RandomState>,
    // One keep-alive pool per URL (and shard), as vmq_webhooks keeps one
    // per endpoint, with the TLS settings its connections were made with.
    pools: HashMap<String, (Pools, TlsSettings)>,
}

/// The TLS keys of a registration: every registration of one URL shares its
/// pools, so they must agree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsSettings {
    ca_file: Option<std::path::PathBuf>,
    client_cert_file: Option<std::path::PathBuf>,
    client_key_file: Option<std::path::PathBuf>,
    verify_peer: bool,
}

/// Why a registration change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The (hook, endpoint) pair is registered already.
    #[error("{} is already registered for {hook}", Redacted(endpoint))]
    AlreadyRegistered {
        /// The hook.
        hook: Hook,
        /// The endpoint URL as configured (shown redacted).
        endpoint: String,
    },
    /// No such (hook, endpoint) registration.
    #[error("{} is not registered for {hook}", Redacted(endpoint))]
    NotFound {
        /// The hook.
        hook: Hook,
        /// The endpoint URL as configured (shown redacted).
        endpoint: String,
    },
    /// The endpoint URL does not parse.
    #[error("invalid endpoint URL {}: {source}", Redacted(endpoint))]
    InvalidUrl {
        /// The endpoint URL as configured (shown redacted).
        endpoint: String,
        /// Why it does not parse.
        source: url::ParseError,
    },
    /// The HTTP client for the endpoint could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The endpoint's TLS settings cannot be used.
    #[error("{}: {source}", Redacted(endpoint))]
    Tls {
        /// The endpoint URL as configured (shown redacted).
        endpoint: String,
        /// What is wrong with the settings.
        source: TlsError,
    },
    /// The endpoint is registered already with other TLS settings.
    #[error(
        "{} is registered already with other TLS settings (ca_file, client_cert_file, client_key_file, verify_peer)",
        Redacted(endpoint)
    )]
    TlsMismatch {
        /// The endpoint URL as configured (shown redacted).
        endpoint: String,
    },
    /// The webhook's `secret` cannot be used.
    #[error("{}: {source}", Redacted(endpoint))]
    Secret {
        /// The endpoint URL as configured (shown redacted).
        endpoint: String,
        /// What is wrong with it (never the secret itself).
        source: SecretError,
    },
    /// A run-time registration's URL is not allowed
    /// (`admin.allowed_webhook_hosts`).
    #[error("{} refused: {source}", Redacted(endpoint))]
    NotAllowed {
        /// The endpoint URL as given (shown redacted).
        endpoint: String,
        /// Why it was refused.
        source: Refused,
    },
}

impl Registry {
    /// A registry with `webhooks` (the configuration's, trusted) registered
    /// in order, whose endpoints keep a connection pool for each of `shards`
    /// shards and count into `metrics`; later registrations must point where
    /// `allowed` says.
    pub fn new(
        http: HttpConfig,
        shards: usize,
        webhooks: &[WebhookConfig],
        allowed: AllowedHosts,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RegistryError> {
        let registry = Self {
            http,
            shards,
            allowed,
            metrics,
            state: RwLock::new(State::default()),
            active: watch::Sender::new(Vec::new()),
        };
        for webhook in webhooks {
            registry.insert(webhook, Source::Config)?;
        }
        Ok(registry)
    }

    /// The endpoints of `hook` in chain order (empty if none).
    pub fn endpoints(&self, hook: Hook) -> Endpoints {
        let state = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.by_hook.get(&hook).cloned().unwrap_or_else(|| Arc::from([]))
    }

    /// Watches the sorted set of hooks that have at least one endpoint.
    pub fn active_hooks(&self) -> watch::Receiver<Vec<Hook>> {
        self.active.subscribe()
    }

    /// Appends `webhook` to its hook's chain while hookd runs: its URL must
    /// be allowed by `admin.allowed_webhook_hosts` ([`crate::allowlist`]).
    pub fn register(&self, webhook: &WebhookConfig) -> Result<(), RegistryError> {
        let not_allowed = |source| RegistryError::NotAllowed {
            endpoint: webhook.endpoint.clone(),
            source,
        };
        let url = url::Url::parse(&webhook.endpoint).map_err(|source| RegistryError::InvalidUrl {
            endpoint: webhook.endpoint.clone(),
            source,
        })?;
        self.allowed.check(&url).map_err(not_allowed)?;
        self.insert(webhook, Source::Runtime)
    }

    /// Appends `webhook` to its hook's chain, unchecked.
    fn insert(&self, webhook: &WebhookConfig, source: Source) -> Result<(), RegistryError> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.insert_into(&mut state, None, webhook, source)?;
        self.publish(&state);
        Ok(())
    }

    /// Appends `webhook` to its hook's chain in `state`, reusing the pools
    /// and (for unchanged settings) the endpoint of `old`, if given.
    fn insert_into(
        &self,
        state: &mut State,
        old: Option<&State>,
        webhook: &WebhookConfig,
        source: Source,
    ) -> Result<(), RegistryError> {
        let current = state
            .by_hook
            .get(&webhook.hook)
            .cloned()
            .unwrap_or_else(|| Arc::from([]));
        if current.iter().any(|e| **e.id() == *webhook.endpoint) {
            return Err(RegistryError::AlreadyRegistered {
                hook: webhook.hook,
                endpoint: webhook.endpoint.clone(),
            });
        }
        let settings = TlsSettings {
            ca_file: webhook.ca_file.clone(),
            client_cert_file: webhook.client_cert_file.clone(),
            client_key_file: webhook.client_key_file.clone(),
            verify_peer: webhook.verify_peer,
        };
        let reused = old.and_then(|old| {
            old.registrations
                .iter()
                .find(|(r, _)| r.webhook == *webhook)
                .map(|(_, endpoint)| endpoint.clone())
        });
        let from_old = old
            .and_then(|old| old.pools.get(&webhook.endpoint))
            .filter(|(_, used)| *used == settings)
            .map(|(pools, _)| pools.clone());
        let pools = match (state.pools.get(&webhook.endpoint), from_old) {
            (Some((pools, used)), _) if *used == settings => pools.clone(),
            (Some(_), _) => {
                return Err(RegistryError::TlsMismatch {
                    endpoint: webhook.endpoint.clone(),
                });
            }
            (None, Some(pools)) => pools,
            (None, None) => {
                let tls = webhook::tls::client_config(webhook).map_err(|source| RegistryError::Tls {
                    endpoint: webhook.endpoint.clone(),
                    source,
                })?;
                webhook::pools(&self.http, self.shards, &tls)?
            }
        };
        let endpoint = match reused {
            Some(endpoint) => endpoint,
            None => {
                let signer = webhook.secret.signer().map_err(|source| RegistryError::Secret {
                    endpoint: webhook.endpoint.clone(),
                    source,
                })?;
                let endpoint =
                    Endpoint::new(webhook, &self.http, pools.clone(), signer).map_err(|source| {
                        RegistryError::InvalidUrl {
                            endpoint: webhook.endpoint.clone(),
                            source,
                        }
                    })?;
                let metrics = self.metrics.endpoint(webhook.hook, endpoint.name());
                Arc::new(endpoint.with_metrics(metrics))
            }
        };
        state.pools.insert(webhook.endpoint.clone(), (pools, settings));
        let chain: Endpoints = current.iter().cloned().chain([endpoint.clone()]).collect();
        state.by_hook.insert(webhook.hook, chain);
        state.registrations.push((
            Registration {
                webhook: webhook.clone(),
                source,
            },
            endpoint,
        ));
        Ok(())
    }

    /// Every registration, in registration order.
    pub fn registrations(&self) -> Vec<Registration> {
        let state = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.registrations.iter().map(|(r, _)| r.clone()).collect()
    }

    /// The registration of `endpoint` (as registered, or as shown) for `hook`.
    pub fn find(&self, hook: Hook, endpoint: &str) -> Option<Registration> {
        let state = self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        state
            .registrations
            .iter()
            .find(|(r, e)| {
                r.webhook.hook == hook && (r.webhook.endpoint == endpoint || **e.name() == *endpoint)
            })
            .map(|(r, _)| r.clone())
    }

    /// Replaces the configured registrations with `webhooks` (a reloaded
    /// configuration's) in one swap, keeping the run-time ones after them:
    /// all of it applies, or (on an error) none. Endpoints whose settings
    /// did not change are kept as they are, with their connections.
    pub fn replace_configured(&self, webhooks: &[WebhookConfig]) -> Result<Changes, RegistryError> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = State::default();
        let changes = match self.configure(&mut next, &state, webhooks) {
            Ok(changes) => changes,
            Err(e) => {
                // The series of endpoints built for `next` go with it.
                self.forget_series(&next, &state);
                return Err(e);
            }
        };
        self.forget_series(&state, &next);
        *state = next;
        self.publish(&state);
        Ok(changes)
    }

    /// Fills `next` with `webhooks` as configured and then the run-time
    /// registrations of `old` that are not among them; says what changed.
    fn configure(
        &self,
        next: &mut State,
        old: &State,
        webhooks: &[WebhookConfig],
    ) -> Result<Changes, RegistryError> {
        for webhook in webhooks {
            self.insert_into(next, Some(old), webhook, Source::Config)?;
        }
        let mut changes = Changes::default();
        for (registration, _) in &old.registrations {
            let webhook = &registration.webhook;
            let pair = (webhook.hook, webhook.endpoint.clone());
            if registration.source == Source::Runtime {
                if webhooks
                    .iter()
                    .any(|w| w.hook == webhook.hook && w.endpoint == webhook.endpoint)
                {
                    changes.now_configured.push(pair);
                } else {
                    self.insert_into(next, Some(old), webhook, Source::Runtime)?;
                }
            } else if !webhooks.contains(webhook) {
                changes.removed.push(pair);
            }
        }
        // A changed registration (same pair, other settings) shows as both.
        for webhook in webhooks {
            let before = old.registrations.iter().any(|(r, _)| r.webhook == *webhook);
            if !before {
                changes.added.push((webhook.hook, webhook.endpoint.clone()));
            }
        }
        Ok(changes)
    }

    /// Removes the series of every registration in `gone` that `kept` has
    /// no registration of (the same hook and endpoint as shown) for.
    fn forget_series(&self, gone: &State, kept: &State) {
        for (registration, endpoint) in &gone.registrations {
            let hook = registration.webhook.hook;
            if !kept
                .registrations
                .iter()
                .any(|(r, e)| r.webhook.hook == hook && e.name() == endpoint.name())
            {
                self.metrics.forget_endpoint(hook, endpoint.name());
            }
        }
    }

    /// Removes the registration of `endpoint` for `hook`.
    pub fn deregister(&self, hook: Hook, endpoint: &str) -> Result<(), RegistryError> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = state.by_hook.get(&hook).cloned().unwrap_or_else(|| Arc::from([]));
        if !current.iter().any(|e| &**e.id() == endpoint) {
            return Err(RegistryError::NotFound {
                hook,
                endpoint: endpoint.to_owned(),
            });
        }
        let chain: Endpoints = current
            .iter()
            .filter(|e| &**e.id() != endpoint)
            .cloned()
            .collect();
        // Two URLs may be shown alike (they differ only in what is
        // redacted) and then share their series: those stay while one is left.
        let name = crate::redact::shown(endpoint);
        if !chain.iter().any(|e| **e.name() == *name) {
            self.metrics.forget_endpoint(hook, &name);
        }
        if chain.is_empty() {
            state.by_hook.remove(&hook);
        } else {
            state.by_hook.insert(hook, chain);
        }
        state
            .registrations
            .retain(|(r, _)| !(r.webhook.hook == hook && r.webhook.endpoint == endpoint));
        let still_used = state
            .by_hook
            .values()
            .flat_map(|c| c.iter())
            .any(|e| &**e.id() == endpoint);
        if !still_used {
            state.pools.remove(endpoint);
        }
        self.publish(&state);
        Ok(())
    }

    fn publish(&self, state: &State) {
        let mut hooks: Vec<Hook> = state.by_hook.keys().copied().collect();
        hooks.sort();
        self.active.send_if_modified(|current| {
            let changed = *current != hooks;
            *current = hooks;
            changed
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook(hook: Hook, url: &str) -> WebhookConfig {
        WebhookConfig::new(hook, url)
    }

    #[test]
    fn endpoints_keep_registration_order_and_active_set_follows() {
        let registry = Registry::new(
            HttpConfig::default(),
            1,
            &[
                webhook(Hook::OnPublish, "http://b/"),
                webhook(Hook::OnPublish, "http://a/"),
            ],
            AllowedHosts::default(),
            Arc::new(Metrics::new()),
        )
        .expect("registry");
        let names: Vec<_> = registry
            .endpoints(Hook::OnPublish)
            .iter()
            .map(|e| e.name().to_string())
            .collect();
        assert_eq!(names, ["http://b/", "http://a/"]);
        let mut active = registry.active_hooks();
        assert_eq!(*active.borrow_and_update(), vec![Hook::OnPublish]);

        registry
            .register(&webhook(Hook::AuthOnRegister, "http://a/"))
            .expect("register");
        assert!(active.has_changed().expect("open"));
        assert_eq!(
            *active.borrow_and_update(),
            vec![Hook::AuthOnRegister, Hook::OnPublish]
        );

        registry
            .deregister(Hook::OnPublish, "http://b/")
            .expect("deregister");
        assert!(
            !active.has_changed().expect("open"),
            "set unchanged: a/ still serves on_publish"
        );
        registry
            .deregister(Hook::OnPublish, "http://a/")
            .expect("deregister");
        assert_eq!(*active.borrow_and_update(), vec![Hook::AuthOnRegister]);
    }

    #[test]
    fn a_reload_replaces_the_configured_registrations_and_keeps_the_run_time_ones_after_them() {
        let metrics = Arc::new(Metrics::new());
        let registry = Registry::new(
            HttpConfig::default(),
            1,
            &[
                webhook(Hook::OnPublish, "http://a/"),
                webhook(Hook::OnPublish, "http://b/"),
            ],
            AllowedHosts::default(),
            metrics.clone(),
        )
        .expect("registry");
        registry
            .register(&webhook(Hook::OnPublish, "http://c/"))
            .expect("run time");
        registry
            .register(&webhook(Hook::OnRegister, "http://d/"))
            .expect("run time");
        let kept = registry.endpoints(Hook::OnPublish)[1].clone();
        let changes = registry
            .replace_configured(&[
                webhook(Hook::OnPublish, "http://b/"),
                webhook(Hook::OnPublish, "http://e/"),
                webhook(Hook::OnRegister, "http://d/"),
            ])
            .expect("reload");
        assert_eq!(changes.removed, [(Hook::OnPublish, "http://a/".to_owned())]);
        // d/ served already (at run time): it is not new, only configured now.
        assert_eq!(changes.added, [(Hook::OnPublish, "http://e/".to_owned())]);
        assert_eq!(
            changes.now_configured,
            [(Hook::OnRegister, "http://d/".to_owned())]
        );
        let names: Vec<_> = registry
            .endpoints(Hook::OnPublish)
            .iter()
            .map(|e| e.name().to_string())
            .collect();
        assert_eq!(
            names,
            ["http://b/", "http://e/", "http://c/"],
            "configured first, then run time"
        );
        assert!(
            Arc::ptr_eq(&kept, &registry.endpoints(Hook::OnPublish)[0]),
            "an unchanged endpoint is kept as it is"
        );
        // The series follow the registrations: a/'s are gone, e/'s are there.
        let series = metrics.encode();
        assert!(!series.contains(r#"endpoint="http://a/""#), "{series}");
        assert!(series.contains(r#"endpoint="http://e/""#), "{series}");
        let sources: Vec<_> = registry.registrations().iter().map(|r| r.source).collect();
        assert_eq!(
            sources,
            [Source::Config, Source::Config, Source::Config, Source::Runtime]
        );

        // One bad webhook refuses the whole reload, and the good one before
        // it leaves no series behind.
        let mut bad = webhook(Hook::OnPublish, "https://f/");
        bad.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(
            registry
                .replace_configured(&[webhook(Hook::OnPublish, "http://g/"), bad])
                .is_err()
        );
        assert_eq!(registry.endpoints(Hook::OnPublish).len(), 3, "nothing changed");
        let series = metrics.encode();
        assert!(!series.contains(r#"endpoint="http://g/""#), "{series}");
        assert!(series.contains(r#"endpoint="http://e/""#), "{series}");
    }

    #[test]
    fn double_registration_and_unknown_deregistration_fail() {
        let registry = Registry::new(
            HttpConfig::default(),
            1,
            &[webhook(Hook::OnPublish, "http://a/")],
            AllowedHosts::default(),
            Arc::new(Metrics::new()),
        )
        .expect("registry");
        assert!(matches!(
            registry.register(&webhook(Hook::OnPublish, "http://a/")),
            Err(RegistryError::AlreadyRegistered { .. })
        ));
        assert!(matches!(
            registry.deregister(Hook::OnRegister, "http://a/"),
            Err(RegistryError::NotFound { .. })
        ));
    }
}
