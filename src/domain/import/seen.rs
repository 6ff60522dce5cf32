//! The keys (emails and usernames) an import has taken: exact for the batch
//! being gathered, a fixed-size Bloom filter for earlier batches, so memory
//! does not grow with the import, and the database for a filter's "maybe".

use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, Utc};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::error::Result;

/// A Bloom filter of 2^23 bits (1 MiB) with four probes: for a million keys
/// about 2% false "maybe"s, for 100,000 about five in a million.
pub struct Bloom {
    bits: Vec<u64>,
}

const BLOOM_BITS: u64 = 1 << 23;

impl Default for Bloom {
    fn default() -> Bloom {
        Bloom {
            bits: vec![0; (BLOOM_BITS / 64) as usize],
        }
    }
}

impl Bloom {
    fn probes(hash: u64) -> impl Iterator<Item = u64> {
        let step = hash.rotate_left(32) | 1;
        (0..4u64).map(move |i| hash.wrapping_add(i.wrapping_mul(step)) % BLOOM_BITS)
    }

    pub fn add(&mut self, hash: u64) {
        for bit in Self::probes(hash) {
            if let Some(word) = self.bits.get_mut((bit / 64) as usize) {
                *word |= 1 << (bit % 64);
            }
        }
    }

    pub fn maybe(&self, hash: u64) -> bool {
        Self::probes(hash).all(|bit| {
            self.bits
                .get((bit / 64) as usize)
                .is_some_and(|w| w & (1 << (bit % 64)) != 0)
        })
    }
}

pub fn key_hash(key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Which key of a row an earlier row took.
pub enum Taken {
    Email,
    Username,
}

#[derive(diesel::QueryableByName)]
struct TakenRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    email: bool,
}

/// Whether this import (begun at `started`) already created or updated a
/// user with this email or username.
pub async fn import_took(
    conn: &mut AsyncPgConnection,
    org: Uuid,
    email: &str,
    username: &str,
    started: DateTime<Utc>,
) -> Result<Option<Taken>> {
    let found: Vec<TakenRow> = diesel::sql_query(
        "SELECT lower(email) = $2 AS email FROM users WHERE organization_id = $1 \
         AND (lower(email) = $2 OR lower(username) = $3) AND (created_at >= $4 OR updated_at >= $4) \
         ORDER BY 1 DESC LIMIT 1",
    )
    .bind::<diesel::sql_types::Uuid, _>(org)
    .bind::<diesel::sql_types::Text, _>(email)
    .bind::<diesel::sql_types::Text, _>(username)
    .bind::<diesel::sql_types::Timestamptz, _>(started)
    .load(conn)
    .await?;
    Ok(found
        .into_iter()
        .next()
        .map(|t| if t.email { Taken::Email } else { Taken::Username }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bloom_filter_knows_every_key_it_was_given() {
        let mut bloom = Bloom::default();
        for i in 0..10_000 {
            bloom.add(key_hash(&format!("person{i}@example.com")));
        }
        assert!((0..10_000).all(|i| bloom.maybe(key_hash(&format!("person{i}@example.com")))));
        let strangers = (0..10_000)
            .filter(|i| bloom.maybe(key_hash(&format!("stranger{i}@example.com"))))
            .count();
        assert!(strangers < 10, "{strangers} false maybes in 10,000");
    }
}
