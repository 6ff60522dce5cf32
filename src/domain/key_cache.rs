//! Who an API key stands for: the platform key from configuration, a key
//! resolved in the last few seconds, or one looked up by the hash of its
//! secret.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use super::{
    api_keys,
    caller::{Caller, Scope},
};
use crate::{
    error::Result,
    services::Services,
    tokens::{HashedToken, PlainToken},
};

/// How long a resolved key is trusted without asking the database again.
/// A key revoked on this replica stops at once; on others within this time.
const CACHE_FOR: Duration = Duration::from_secs(5);
const CACHE_ENTRIES: usize = 10_000;

/// A resolved key: who it stands for, until when, and when it was read.
struct Cached {
    caller: Caller,
    expires_at: Option<DateTime<Utc>>,
    read_at: Instant,
}

/// Recently resolved keys, by the hash of their secret, and the hash of the
/// platform key of `ONRAMP_BOOTSTRAP_API_KEY`.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Vec<u8>, Cached>>,
    bootstrap: Option<HashedToken>,
}

impl KeyCache {
    pub fn new(bootstrap_key: Option<&str>) -> KeyCache {
        KeyCache {
            entries: Mutex::default(),
            bootstrap: bootstrap_key.map(|k| PlainToken::from_presented(k).hash()),
        }
    }

    /// The cached caller of a key, unless the entry is stale or the key has
    /// expired by the server's clock: an expired key stops at its expiry,
    /// not up to `CACHE_FOR` later.
    fn get(&self, hash: &[u8], now: DateTime<Utc>) -> Option<Caller> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(hash)
            .filter(|c| c.read_at.elapsed() < CACHE_FOR && c.expires_at.is_none_or(|at| at > now))
            .map(|c| c.caller.clone())
    }

    fn put(&self, hash: Vec<u8>, caller: Caller, expires_at: Option<DateTime<Utc>>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_ENTRIES {
                entries.retain(|_, c| c.read_at.elapsed() < CACHE_FOR);
                if entries.len() >= CACHE_ENTRIES {
                    entries.clear();
                }
            }
            let read_at = Instant::now();
            entries.insert(
                hash,
                Cached {
                    caller,
                    expires_at,
                    read_at,
                },
            );
        }
    }

    /// Forgets every key, after one is revoked.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// The caller `secret` stands for, or `None` for a key that is unknown,
/// expired or revoked.
pub async fn resolve(app: &Services, cache: &KeyCache, secret: &str) -> Result<Option<Caller>> {
    let hash = PlainToken::from_presented(secret).hash();
    if cache.bootstrap.as_ref() == Some(&hash) {
        return Ok(Some(Caller {
            api_key_id: None,
            organization_id: None,
            scopes: vec![Scope::Platform],
        }));
    }
    let now = app.clock.now();
    if let Some(caller) = cache.get(&hash.0, now) {
        return Ok(Some(caller));
    }
    let mut conn = app.pool.get().await?;
    let Some((caller, expires_at)) = api_keys::authenticate(&mut conn, secret, now).await? else {
        return Ok(None);
    };
    cache.put(hash.0, caller.clone(), expires_at);
    Ok(Some(caller))
}

/// Revokes a key at once: on this replica at once (its cache is cleared),
/// on others once their cache entry ages out.
pub async fn revoke(
    app: &Services,
    cache: &KeyCache,
    organization_id: uuid::Uuid,
    id: uuid::Uuid,
    actor: &super::audit::Actor,
) -> Result<api_keys::ApiKey> {
    let revoked = api_keys::revoke(app, organization_id, id, actor).await?;
    cache.clear();
    Ok(revoked)
}
