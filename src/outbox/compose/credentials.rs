//! Credentials emails: a temporary password each, generated here, hashed
//! off the connection and stored only as its hash. A retry mints a new one,
//! which replaces the old.

use crate::db::Cached;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    sql_types::{Array, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, RunQueryDsl};
use rand::Rng;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::message::{Composed, load_templates, person_gone, person_vars, render};
use crate::{
    domain::templates::Kind,
    error::{Error, Result},
    outbox::claim::Claimed,
    services::Services,
};

/// Letters and digits that cannot be mistaken for one another.
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
/// 16 characters of 56: about 93 bits.
const TEMPORARY_PASSWORD_CHARS: usize = 16;

/// A random temporary password in groups of four, at least `min_length`
/// long (the organisation's policy).
pub fn temporary_password(min_length: usize) -> String {
    let mut rng = rand::rng();
    let mut password = String::new();
    let mut chars = 0;
    while chars < TEMPORARY_PASSWORD_CHARS || password.chars().count() < min_length {
        if chars > 0 && chars % 4 == 0 {
            password.push('-');
        }
        let i = rng.random_range(0..PASSWORD_ALPHABET.len());
        password.push(char::from(PASSWORD_ALPHABET[i]));
        chars += 1;
    }
    password
}

#[derive(QueryableByName)]
struct Person {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Text)]
    first_name: String,
    #[diesel(sql_type = Text)]
    last_name: String,
    #[diesel(sql_type = Text)]
    organization_name: String,
    #[diesel(sql_type = diesel::sql_types::Int4)]
    password_min_length: i32,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
}

/// Credentials emails: a fresh temporary password each.
pub async fn prepare(state: &Services, claimed: &[&Claimed]) -> Result<Composed> {
    let now = state.clock.now();
    let user_ids: Vec<Uuid> = claimed.iter().filter_map(|c| c.user_id).collect();
    let people: Vec<Person> = {
        let mut conn = state.pool.get().await?;
        Cached(diesel::sql_query(
            "SELECT u.id, u.username, u.first_name, u.last_name, o.name AS organization_name, \
               o.password_min_length, $2 + make_interval(secs => o.temporary_password_ttl_secs) AS expires_at \
             FROM users u JOIN organizations o ON o.id = u.organization_id \
             WHERE u.id = ANY($1) AND u.deactivated_at IS NULL",
        )
        .bind::<Array<SqlUuid>, _>(&user_ids)
        .bind::<Timestamptz, _>(now))
        .load(&mut conn)
        .await?
    };
    // Hashing runs on the hasher's own threads, with no connection held.
    let mut hashing = JoinSet::new();
    for person in &people {
        let password = temporary_password(usize::try_from(person.password_min_length).unwrap_or(12));
        let hasher = state.hasher.clone();
        let id = person.id;
        hashing.spawn(async move {
            hasher
                .hash(password.clone())
                .await
                .map(|hash| (id, password, hash))
        });
    }
    let mut minted: HashMap<Uuid, (String, String)> = HashMap::new();
    while let Some(done) = hashing.join_next().await {
        let (id, password, hash) = done.map_err(|e| Error::Internal(format!("hashing task: {e}")))??;
        minted.insert(id, (password, hash));
    }
    let ids: Vec<Uuid> = minted.keys().copied().collect();
    let hashes: Vec<String> = ids
        .iter()
        .filter_map(|id| minted.get(id).map(|(_, h)| h.clone()))
        .collect();
    let expiries: Vec<DateTime<Utc>> = ids
        .iter()
        .map(|id| people.iter().find(|p| p.id == *id).map_or(now, |p| p.expires_at))
        .collect();
    let templates = {
        let mut conn = state.pool.get().await?;
        conn.transaction(async |conn| {
            Cached(diesel::sql_query(
                "UPDATE users u SET password_hash = v.hash, must_change_password = true, \
                   password_expires_at = v.expires_at, failed_sign_ins = 0, locked_until = NULL, updated_at = $4 \
                 FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS v(id, hash, expires_at) \
                 WHERE u.id = v.id AND u.deactivated_at IS NULL",
            )
            .bind::<Array<SqlUuid>, _>(&ids)
            .bind::<Array<Text>, _>(&hashes)
            .bind::<Array<Timestamptz>, _>(&expiries)
            .bind::<Timestamptz, _>(now))
            .execute(conn)
            .await?;
            load_templates(conn, claimed, Kind::Credentials).await
        })
        .await?
    };
    Ok(claimed
        .iter()
        .map(|message| {
            let person = message.user_id.and_then(|id| people.iter().find(|p| p.id == id));
            let secret = message.user_id.and_then(|id| minted.get(&id));
            let (Some(person), Some((password, _))) = (person, secret) else {
                return person_gone(message);
            };
            let mut vars = person_vars(
                &person.organization_name,
                &person.first_name,
                &person.last_name,
                &message.recipient,
                &person.username,
                person.expires_at,
            );
            vars.insert("password", password.clone());
            vars.insert(
                "sign_in_url",
                state.config.links.sign_in_for(message.organization_id),
            );
            (
                message.id,
                render(state, message, &templates, Kind::Credentials, &vars),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::temporary_password;

    #[test]
    fn temporary_passwords_are_long_readable_and_distinct() {
        let a = temporary_password(12);
        assert_eq!(a.len(), 19, "{a}");
        assert!(a.split('-').all(|g| g.len() == 4), "{a}");
        assert!(!a.contains(['0', 'O', 'l', '1', 'I']), "{a}");
        assert_ne!(a, temporary_password(12));
        assert!(temporary_password(40).chars().count() >= 40);
    }
}
