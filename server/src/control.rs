//! What operators change on a running hookd: webhooks registered at run
//! time (kept in the store, so they survive a restart) and the reload of
//! the configuration file (SIGHUP or `hookd reload`). The admin service
//! ([`crate::admin`]) and the SIGHUP handler both come here; one change runs
//! at a time.
//!
//! **Run-time registrations** go through the allow-list
//! (`admin.allowed_webhook_hosts`), are written to the `registrations` table
//! of the outbox's store, and join their hook's chain after the configured
//! webhooks. Connected brokers hear of a hook that gains its first endpoint
//! (or loses its last) at once, in a `HooksChanged` frame on their streams.
//! A configured webhook cannot be deregistered at run time: it would come
//! back at the next start; remove it from the file and reload.
//!
//! **Reload** re-reads the file (and the `HOOKD_*` environment) and applies
//! what can change without a restart: the `[[webhooks]]` list, swapped in
//! at once ([`Registry::replace_configured`]) without touching a broker
//! stream. A file that does not load, or a webhook that cannot be built
//! (a TLS file missing, a bad secret), refuses the whole reload with the
//! error, and the running configuration stays. Every other section applies
//! only on a restart; a reload that finds one changed says which (and logs
//! it), and applies the webhooks anyway.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use hookd_proto::Hook;
use tracing::{error, info, warn};

use crate::{
    Config,
    config::{ConfigError, WebhookConfig},
    outbox::{AppendError, Outbox, StoredRegistration},
    redact::{self, Redacted},
    registry::{Registration, Registry, RegistryError, Source},
};

/// Why an operator's change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The registry refused it (already there, not allowed, a bad URL, …).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The store could not keep it.
    #[error("the store: {0}")]
    Store(#[from] AppendError),
    /// A configured webhook cannot be deregistered at run time.
    #[error(
        "{} is configured for {hook} in the configuration file: remove it there and reload",
        Redacted(endpoint)
    )]
    Configured {
        /// The hook.
        hook: Hook,
        /// The endpoint (shown redacted).
        endpoint: String,
    },
    /// The reloaded configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The reloaded configuration's webhooks cannot be registered.
    #[error("invalid configuration: webhooks: {0}")]
    Webhooks(RegistryError),
}

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Registrations added, as `hook endpoint` (redacted).
    pub added: Vec<String>,
    /// Registrations removed, likewise.
    pub removed: Vec<String>,
    /// Sections that changed but apply only on a restart.
    pub restart_needed: Vec<&'static str>,
}

/// The operators' changes to a running hookd; see the module docs.
pub struct Control {
    registry: Arc<Registry>,
    outbox: Outbox,
    /// The configuration file hookd was started with, if any.
    path: Option<PathBuf>,
    /// The configuration as running: the start's, with the webhooks of the
    /// last reload.
    running: Mutex<Config>,
    /// One change at a time, so the registry and the store agree.
    serial: tokio::sync::Mutex<()>,
}

impl Control {
    /// The control of a hookd started from `config` (read from `path`).
    pub fn new(registry: Arc<Registry>, outbox: Outbox, path: Option<PathBuf>, config: Config) -> Self {
        Self {
            registry,
            outbox,
            path,
            running: Mutex::new(config),
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// Registers the `stored` run-time registrations again (at start). One
    /// that is refused now (the allow-list changed, or the configuration has
    /// it already) is logged and skipped, and stays stored.
    pub fn restore(&self, stored: Vec<StoredRegistration>) -> usize {
        let mut restored = 0;
        for registration in stored {
            let endpoint = redact::shown(&registration.endpoint);
            let webhook = match from_stored(&registration) {
                Ok(webhook) => webhook,
                Err(e) => {
                    error!(hook = %registration.hook, %endpoint, error = %e, "a stored webhook registration is unusable; skipped");
                    continue;
                }
            };
            match self.registry.register(&webhook) {
                Ok(()) => restored += 1,
                Err(RegistryError::AlreadyRegistered { .. }) => {
                    info!(hook = %webhook.hook, %endpoint, "a stored run-time registration is configured too; the configured one serves");
                }
                Err(e) => {
                    error!(hook = %webhook.hook, %endpoint, error = %e, "a stored webhook registration is refused now; skipped (deregister it, or allow it)");
                }
            }
        }
        if restored > 0 {
            info!(
                webhooks = restored,
                "webhooks registered at run time restored from the store"
            );
        }
        restored
    }

    /// Registers `webhook` at run time and stores it; returns its shown name.
    pub async fn register(&self, webhook: WebhookConfig) -> Result<String, ControlError> {
        let _serial = self.serial.lock().await;
        self.registry.register(&webhook)?;
        let stored = to_stored(&webhook);
        if let Err(e) = self
            .outbox
            .with_store_do(move |store| store.save_registration(&stored))
            .await
        {
            let _ = self.registry.deregister(webhook.hook, &webhook.endpoint);
            return Err(e.into());
        }
        let endpoint = redact::shown(&webhook.endpoint);
        info!(hook = %webhook.hook, %endpoint, "webhook registered by an operator");
        Ok(endpoint)
    }

    /// Deregisters the run-time registration of `endpoint` (as registered,
    /// or as shown) for `hook`; returns its shown name.
    pub async fn deregister(&self, hook: Hook, endpoint: &str) -> Result<String, ControlError> {
        let _serial = self.serial.lock().await;
        let Some(found) = self.registry.find(hook, endpoint) else {
            return Err(RegistryError::NotFound {
                hook,
                endpoint: endpoint.to_owned(),
            }
            .into());
        };
        let url = found.webhook.endpoint;
        if found.source == Source::Config {
            return Err(ControlError::Configured { hook, endpoint: url });
        }
        let key = url.clone();
        self.outbox
            .with_store_do(move |store| store.delete_registration(hook.name(), &key))
            .await?;
        self.registry.deregister(hook, &url)?;
        let shown = redact::shown(&url);
        info!(%hook, endpoint = %shown, "webhook deregistered by an operator");
        Ok(shown)
    }

    /// Every registration, in registration order.
    pub fn webhooks(&self) -> Vec<Registration> {
        self.registry.registrations()
    }

    /// Re-reads the configuration and applies its webhooks; see the module
    /// docs. Logs what it did, or why it refused.
    pub async fn reload(&self) -> Result<Reloaded, ControlError> {
        let result = self.try_reload().await;
        match &result {
            Ok(reloaded) => {
                info!(
                    added = ?reloaded.added,
                    removed = ?reloaded.removed,
                    "configuration reloaded"
                );
                if !reloaded.restart_needed.is_empty() {
                    warn!(
                        sections = ?reloaded.restart_needed,
                        "configuration reloaded: changes to these sections apply only on a restart"
                    );
                }
            }
            Err(e) => error!(error = %e, "configuration reload refused; the running configuration stays"),
        }
        result
    }

    async fn try_reload(&self) -> Result<Reloaded, ControlError> {
        let _serial = self.serial.lock().await;
        let path = self.path.clone();
        let config = load(path.as_deref())?;
        let restart_needed = restart_needed(&self.running(), &config);
        let changes = self
            .registry
            .replace_configured(&config.webhooks)
            .map_err(ControlError::Webhooks)?;
        for (hook, endpoint) in &changes.now_configured {
            let key = endpoint.clone();
            let name = hook.name();
            if let Err(e) = self
                .outbox
                .with_store_do(move |store| store.delete_registration(name, &key))
                .await
            {
                warn!(%hook, endpoint = %redact::shown(endpoint), error = %e, "cannot remove a run-time registration the configuration now has");
            }
            info!(%hook, endpoint = %redact::shown(endpoint), "a run-time registration is configured now");
        }
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .webhooks = config.webhooks;
        let shown = |pairs: &[(Hook, String)]| {
            pairs
                .iter()
                .map(|(hook, endpoint)| format!("{hook} {}", redact::shown(endpoint)))
                .collect()
        };
        Ok(Reloaded {
            added: shown(&changes.added),
            removed: shown(&changes.removed),
            restart_needed,
        })
    }

    /// The configuration as running.
    pub fn running(&self) -> Config {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Loads the configuration file at `path` (and the environment) for a reload.
fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    Config::load(path, None)
}

/// The sections other than `webhooks` that differ between `running` and
/// `new`: they apply only on a restart.
pub fn restart_needed(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    for (section, differs) in [
        ("server", running.server != new.server),
        ("http", running.http != new.http),
        ("cache", running.cache != new.cache),
        ("outbox", running.outbox != new.outbox),
        ("admin", running.admin != new.admin),
        ("metrics", running.metrics != new.metrics),
        ("log", running.log != new.log),
    ] {
        if differs {
            changed.push(section);
        }
    }
    let without_webhooks = |config: &Config| Config {
        webhooks: Vec::new(),
        ..config.clone()
    };
    if changed.is_empty() && without_webhooks(running) != without_webhooks(new) {
        changed.push("other");
    }
    changed
}

/// What the store keeps of a run-time registration.
fn to_stored(webhook: &WebhookConfig) -> StoredRegistration {
    StoredRegistration {
        hook: webhook.hook.name().to_owned(),
        endpoint: webhook.endpoint.clone(),
        base64_payload: webhook.base64_payload,
        no_payload: webhook.no_payload,
        response_timeout_ms: webhook.response_timeout,
    }
}

/// The registration a stored one stands for.
fn from_stored(stored: &StoredRegistration) -> Result<WebhookConfig, String> {
    let hook = Hook::from_name(&stored.hook).map_err(|e| e.to_string())?;
    let mut webhook = WebhookConfig::new(hook, stored.endpoint.clone());
    webhook.base64_payload = stored.base64_payload;
    webhook.no_payload = stored.no_payload;
    webhook.response_timeout = stored.response_timeout_ms;
    Ok(webhook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_sections_other_than_webhooks_need_a_restart() {
        let running = Config::default();
        let mut new = Config::default();
        new.webhooks
            .push(WebhookConfig::new(Hook::OnPublish, "http://h/"));
        assert!(restart_needed(&running, &new).is_empty());
        new.server.call_timeout = 1;
        new.cache.max_entries = 1;
        new.log.format = crate::config::LogFormat::Json;
        assert_eq!(restart_needed(&running, &new), ["server", "cache", "log"]);
    }

    #[test]
    fn a_stored_registration_round_trips() {
        let mut webhook = WebhookConfig::new(Hook::AuthOnRegister, "http://h/");
        webhook.no_payload = true;
        webhook.base64_payload = false;
        webhook.response_timeout = 250;
        assert_eq!(from_stored(&to_stored(&webhook)), Ok(webhook));
    }
}
