//! The key set of `auth.jwks_url`: fetched at start, used for `auth.jwks_cache_ttl`, fetched
//! again when a token names a key id it lacks (keys rotate at the identity provider), never
//! more often than [`MIN_REFETCH`] for such tokens, so a stream of forged key ids cannot turn
//! the gateway against the provider.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::Algorithm;

use super::auth::{keys_of_set, KeyEntry};
use crate::webhook::client::{self, Pool, Url};

/// The shortest time between two fetches asked for by tokens.
pub(crate) const MIN_REFETCH: Duration = Duration::from_secs(10);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the last fetches left.
#[derive(Default)]
struct Cached {
    keys: Arc<Vec<KeyEntry>>,
    /// When the keys were fetched; `None` before the first success.
    fetched_at: Option<Instant>,
    /// When a token last asked for a fetch.
    last_on_demand: Option<Instant>,
    /// Why the last fetch failed, until one succeeds.
    last_error: Option<String>,
    /// Counts successful fetches, so that tokens waiting for the same fetch do not repeat it.
    generation: u64,
}

/// A JWKS fetched over HTTP(S) and cached.
pub(crate) struct RemoteJwks {
    url: Url,
    ttl: Duration,
    /// `auth.jwt_algorithm`: keys of other algorithms are dropped.
    only: Option<Algorithm>,
    cached: Mutex<Cached>,
    /// One fetch at a time; held across the fetch (an async lock, for that reason).
    fetching: tokio::sync::Mutex<()>,
    /// The connections to the provider, with the roots its certificate is checked against.
    pool: Pool,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("url", &self.url.to_string())
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    pub(crate) fn new(url: Url, ttl: Duration, only: Option<Algorithm>, pool: Pool) -> Self {
        Self {
            url,
            ttl,
            only,
            cached: Mutex::new(Cached::default()),
            fetching: tokio::sync::Mutex::new(()),
            pool,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the set is fetched from.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The keys fetched last (none before the first fetch succeeds).
    pub(crate) fn keys(&self) -> Arc<Vec<KeyEntry>> {
        self.lock().keys.clone()
    }

    /// Why the last fetch failed, if it did.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Whether the keys are older than `auth.jwks_cache_ttl` (or were never fetched).
    pub(crate) fn is_stale(&self) -> bool {
        self.lock()
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.ttl)
    }

    /// The first fetch, at start. Failing only logs: tokens fetch again when they need keys.
    pub(crate) async fn fetch_at_start(&self) {
        let _one = self.fetching.lock().await;
        self.fetch().await;
    }

    /// A fetch a token asked for: skipped when another fetch completed while this one waited
    /// its turn, or when the last one a token asked for is less than [`MIN_REFETCH`] ago.
    pub(crate) async fn refresh_on_demand(&self) {
        let seen = self.lock().generation;
        let _one = self.fetching.lock().await;
        {
            let mut cached = self.lock();
            if cached.generation != seen {
                return;
            }
            if cached
                .last_on_demand
                .is_some_and(|at| at.elapsed() < MIN_REFETCH)
            {
                tracing::debug!(url = %self.url, "JWKS fetched less than {MIN_REFETCH:?} ago: not fetched again");
                return;
            }
            cached.last_on_demand = Some(Instant::now());
        }
        self.fetch().await;
    }

    /// Fetches and installs the set; on failure keeps the keys it had.
    async fn fetch(&self) {
        match self.download().await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "JWKS fetched");
                let mut cached = self.lock();
                cached.keys = Arc::new(keys);
                cached.fetched_at = Some(Instant::now());
                cached.last_error = None;
                cached.generation += 1;
            }
            Err(error) => {
                tracing::warn!(url = %self.url, "cannot fetch the JWKS: {error}");
                self.lock().last_error = Some(error);
            }
        }
    }

    async fn download(&self) -> Result<Vec<KeyEntry>, String> {
        let answer = self
            .pool
            .send(
                &self.url,
                http::Method::GET,
                &[("accept", "application/json".to_owned())],
                bytes::Bytes::new(),
                FETCH_TIMEOUT,
            )
            .await
            .map_err(|e| format!("{} {e}", self.url))?;
        if !answer.status.is_success() {
            return Err(format!(
                "{} answered {}: {}",
                self.url,
                answer.status,
                client::snippet(&answer.body)
            ));
        }
        let set: JwkSet = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("{} is not a JWKS ({e})", self.url))?;
        let mut keys = keys_of_set(&set, &format!("key {{index}} of {}", self.url))?;
        if let Some(only) = self.only {
            keys.retain(|k| k.algorithm == only);
        }
        Ok(keys)
    }
}
