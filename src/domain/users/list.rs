//! The filtered list of users, oldest first, with the count per status of
//! the filter, so a screen can show "12 pending, 3 expired".

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    pg::Pg,
    sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use super::{Status, User, UserRow, with_grants};
use crate::{domain::paging::Page, error::Result, lifecycle::user as user_lifecycle, services::Services};

#[derive(Debug, Default)]
pub struct UserFilter {
    pub status: Option<Status>,
    pub service_area_id: Option<Uuid>,
    pub role_id: Option<Uuid>,
    pub query: Option<String>,
}

#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_page_token: String,
    pub total: i64,
    pub counts: Vec<(Status, i64)>,
}

/// A WHERE clause over `users u` with its binds, in order after the clock
/// (`$1`) and the organisation (`$2`).
struct Clause {
    sql: String,
    binds: Vec<Bind>,
}

enum Bind {
    Id(Uuid),
    Text(String),
}

impl Clause {
    fn new(filter: &UserFilter) -> Clause {
        let mut clause = Clause {
            sql: "u.organization_id = $2".into(),
            binds: Vec::new(),
        };
        if let Some(area) = filter.service_area_id {
            clause.push(
                "EXISTS (SELECT 1 FROM access_grants g WHERE g.user_id = u.id AND g.service_area_id = $?)",
                Bind::Id(area),
            );
        }
        if let Some(role) = filter.role_id {
            clause.push(
                "EXISTS (SELECT 1 FROM access_grants g WHERE g.user_id = u.id AND g.role_id = $?)",
                Bind::Id(role),
            );
        }
        if let Some(q) = filter.query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let pattern = format!(
                "%{}%",
                q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
            );
            clause.push(
                "(u.email ILIKE $? OR u.username ILIKE $? OR (u.first_name || ' ' || u.last_name) ILIKE $?)",
                Bind::Text(pattern),
            );
        }
        clause
    }

    /// Appends `condition`, whose every `$?` stands for `bind`.
    fn push(&mut self, condition: &str, bind: Bind) {
        let n = self.binds.len() + 3;
        self.sql.push_str(" AND ");
        self.sql.push_str(&condition.replace("$?", &format!("${n}")));
        self.binds.push(bind);
    }

    fn next_param(&self) -> usize {
        self.binds.len() + 3
    }

    fn bind<'a>(
        &'a self,
        sql: String,
        now: DateTime<Utc>,
        organization_id: Uuid,
    ) -> diesel::query_builder::BoxedSqlQuery<'a, Pg, diesel::query_builder::SqlQuery> {
        let mut query = diesel::sql_query(sql)
            .into_boxed()
            .bind::<Timestamptz, _>(now)
            .bind::<SqlUuid, _>(organization_id);
        for bind in &self.binds {
            query = match bind {
                Bind::Id(id) => query.bind::<SqlUuid, _>(*id),
                Bind::Text(text) => query.bind::<Text, _>(text.as_str()),
            };
        }
        query
    }
}

#[derive(QueryableByName)]
struct StatusCount {
    #[diesel(sql_type = Text)]
    status: Status,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Oldest first, with the count per status of the filter (ignoring its
/// status), so a screen can show "12 pending, 3 expired".
pub async fn list(app: &Services, organization_id: Uuid, filter: UserFilter, page: Page) -> Result<UserPage> {
    let now = app.clock.now();
    let mut pooled = app.pool.get().await?;
    let conn = &mut *pooled;
    let clause = Clause::new(&filter);
    let counts_sql = format!(
        "SELECT {} AS status, count(*) AS count FROM users u WHERE {} GROUP BY 1",
        user_lifecycle::status_sql("$1"),
        clause.sql
    );
    let counted: Vec<StatusCount> = clause.bind(counts_sql, now, organization_id).load(conn).await?;
    let counts: Vec<(Status, i64)> = Status::ALL
        .iter()
        .map(|&st| {
            let n = counted.iter().filter(|c| c.status == st).map(|c| c.count).sum();
            (st, n)
        })
        .collect();
    let total = match filter.status {
        Some(st) => counts.iter().filter(|(s, _)| *s == st).map(|(_, n)| n).sum(),
        None => counts.iter().map(|(_, n)| n).sum(),
    };

    let mut sql = format!("SELECT u.* FROM users u WHERE {}", clause.sql);
    let mut param = clause.next_param();
    if filter.status.is_some() {
        sql.push_str(&format!(" AND ({}) = ${param}", user_lifecycle::status_sql("$1")));
        param += 1;
    }
    if page.after.is_some() {
        sql.push_str(&format!(" AND u.id > ${param}"));
    }
    sql.push_str(&format!(" ORDER BY u.id LIMIT {}", page.fetch_limit()));
    let mut query = clause.bind(sql, now, organization_id);
    if let Some(st) = filter.status {
        query = query.bind::<Text, _>(st);
    }
    if let Some(after) = page.after {
        query = query.bind::<SqlUuid, _>(after);
    }
    let rows: Vec<UserRow> = query.load(conn).await?;
    let (rows, next_page_token) = page.finish(rows, |r| r.id);
    Ok(UserPage {
        users: with_grants(conn, rows, now).await?,
        next_page_token,
        total,
        counts,
    })
}
