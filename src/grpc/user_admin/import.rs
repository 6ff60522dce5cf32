//! ImportUsers (a bidirectional stream) and ImportUsersCsv (a whole file in
//! one request). Rows are validated as they arrive and
//! committed in batches; results stream back in row order as each batch
//! commits. The work runs in its own task, so a client that goes away never
//! cuts a batch in half.

use std::{
    collections::{HashMap, VecDeque},
    hash::{DefaultHasher, Hash, Hasher},
    pin::Pin,
    time::Duration,
};

use serde_json::json;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;
use uuid::Uuid;

use crate::{
    domain::{
        audit::{self, Actor},
        caller::Scope,
        catalog::{self, Catalog},
        import::{
            csv::CsvReader,
            rows::{Catalogs, Header, RawRow, ValidRow, validate},
            writer::{RowOutcome, write_batch},
        },
    },
    error::{Error, FieldViolation},
    grpc::{actor, caller},
    pb::{self, import_users_request::Item, import_users_response},
    state::AppState,
};

/// Rows per transaction: large enough for multi-row inserts to pay, small
/// enough that results come back promptly.
const BATCH_ROWS: usize = 2_000;
/// Batches written at once, each on its own connection: the database does
/// most of the work of an import, and one backend uses one core.
const WRITERS: usize = 2;
/// The largest message of an import stream the server decodes (tonic's
/// default).
pub const IMPORT_MESSAGE_BYTES: usize = 4 << 20;

/// A partial batch is written when the client pauses this long.
const IDLE_FLUSH: Duration = Duration::from_millis(50);
pub const MAX_IMPORT_ROWS: usize = 1_000_000;

pub type ImportStream = Pin<Box<dyn Stream<Item = Result<pb::ImportUsersResponse, Status>> + Send>>;

pub async fn import(
    state: &AppState,
    request: Request<Streaming<pb::ImportUsersRequest>>,
) -> Result<Response<ImportStream>, Status> {
    let who = caller(&request)?.clone();
    who.require(Scope::UsersWrite)?;
    let actor = actor(&request)?;
    let mut inbound = request.into_inner();
    let options = match inbound.message().await?.and_then(|m| m.item) {
        Some(Item::Options(options)) => options,
        _ => return Err(Error::invalid("options", "the first message must be ImportOptions").into()),
    };
    start(state, &who, actor, options, inbound).await
}

/// ImportUsersCsv: the whole file in one request, for clients that cannot
/// stream requests; the same importer, fed the file as one chunk.
pub async fn import_csv(
    state: &AppState,
    request: Request<pb::ImportUsersCsvRequest>,
) -> Result<Response<ImportStream>, Status> {
    let who = caller(&request)?.clone();
    who.require(Scope::UsersWrite)?;
    let actor = actor(&request)?;
    let req = request.into_inner();
    let options = req.options.unwrap_or_default();
    if req.csv.trim().is_empty() {
        return Err(Error::invalid(
            "csv",
            "is required: CSV text whose first line names the columns (email required)",
        )
        .into());
    }
    let chunk = pb::ImportUsersRequest {
        item: Some(Item::CsvChunk(req.csv)),
    };
    start(state, &who, actor, options, tokio_stream::iter([Ok(chunk)])).await
}

async fn start(
    state: &AppState,
    who: &crate::domain::caller::Caller,
    actor: Actor,
    options: pb::ImportOptions,
    inbound: impl Stream<Item = Result<pb::ImportUsersRequest, Status>> + Send + Unpin + 'static,
) -> Result<Response<ImportStream>, Status> {
    let org = who.organization(&options.organization_id, Scope::UsersWrite)?;
    let catalogs = load_catalogs(state, org).await?;
    let (tx, rx) = mpsc::channel(BATCH_ROWS);
    let importer = Importer {
        state: state.clone(),
        org,
        upsert: options.upsert,
        dry_run: options.dry_run,
        default_area: options.default_service_area,
        default_role: options.default_role,
        catalogs,
        actor,
        tx,
        rows: 0,
        pending: Vec::new(),
        batch_emails: HashMap::new(),
        batch_usernames: HashMap::new(),
        emails: Bloom::new(),
        usernames: Bloom::new(),
        seen_emails: HashMap::new(),
        seen_usernames: HashMap::new(),
        started: state.clock.now(),
        summary: pb::ImportSummary {
            dry_run: options.dry_run,
            ..Default::default()
        },
        csv: None,
        structured: false,
        writing: VecDeque::new(),
    };
    tokio::spawn(importer.run(inbound).in_current_span());
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

async fn load_catalogs(state: &AppState, org: Uuid) -> Result<Catalogs, Error> {
    let mut conn = state.pool.get().await?;
    let areas = catalog::all(&mut conn, Catalog::ServiceAreas, org).await?;
    let roles = catalog::all(&mut conn, Catalog::Roles, org).await?;
    Ok(Catalogs::new(areas, roles))
}

struct Pending {
    row_number: i32,
    email: String,
    row: Result<ValidRow, Vec<FieldViolation>>,
}

struct Importer {
    state: AppState,
    org: Uuid,
    upsert: bool,
    dry_run: bool,
    default_area: String,
    default_role: String,
    catalogs: Catalogs,
    actor: Actor,
    tx: mpsc::Sender<Result<pb::ImportUsersResponse, Status>>,
    rows: usize,
    pending: Vec<Pending>,
    /// Keys taken by the rows of the batch being gathered, with their row.
    batch_emails: HashMap<u64, i32>,
    batch_usernames: HashMap<u64, i32>,
    /// Keys taken by earlier batches.
    emails: Bloom,
    usernames: Bloom,
    /// Dry runs only: every key taken, with its row.
    seen_emails: HashMap<u64, i32>,
    seen_usernames: HashMap<u64, i32>,
    /// When the import began: users it made are no older.
    started: chrono::DateTime<chrono::Utc>,
    summary: pb::ImportSummary,
    csv: Option<(CsvReader, Option<Header>)>,
    structured: bool,
    /// Batches being written, oldest first; results leave in this order.
    writing: VecDeque<Writing>,
}

struct Writing {
    rows: Vec<Pending>,
    outcomes: JoinHandle<Result<Vec<RowOutcome>, Error>>,
}

/// A Bloom filter of 2^23 bits (1 MiB) with four probes: for a million keys
/// about 2% false "maybe"s, for 100,000 about five in a million.
struct Bloom {
    bits: Vec<u64>,
}

const BLOOM_BITS: u64 = 1 << 23;

impl Bloom {
    fn new() -> Bloom {
        Bloom {
            bits: vec![0; (BLOOM_BITS / 64) as usize],
        }
    }

    fn probes(hash: u64) -> impl Iterator<Item = u64> {
        let step = hash.rotate_left(32) | 1;
        (0..4u64).map(move |i| hash.wrapping_add(i.wrapping_mul(step)) % BLOOM_BITS)
    }

    fn add(&mut self, hash: u64) {
        for bit in Self::probes(hash) {
            if let Some(word) = self.bits.get_mut((bit / 64) as usize) {
                *word |= 1 << (bit % 64);
            }
        }
    }

    fn maybe(&self, hash: u64) -> bool {
        Self::probes(hash).all(|bit| {
            self.bits
                .get((bit / 64) as usize)
                .is_some_and(|w| w & (1 << (bit % 64)) != 0)
        })
    }
}

enum Taken {
    Email,
    Username,
}

#[derive(diesel::QueryableByName)]
struct TakenRow {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    email: bool,
}

/// Whether this import already created or updated a user with this email
/// or username.
async fn import_took(
    conn: &mut diesel_async::AsyncPgConnection,
    org: Uuid,
    email: &str,
    username: &str,
    started: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Taken>, Error> {
    use diesel_async::RunQueryDsl;
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

fn key_hash(key: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

impl Importer {
    async fn run(mut self, mut inbound: impl Stream<Item = Result<pb::ImportUsersRequest, Status>> + Unpin) {
        if let Err(status) = self.consume(&mut inbound).await {
            let _ = self.tx.send(Err(status)).await;
        }
    }

    async fn consume(
        &mut self,
        inbound: &mut (impl Stream<Item = Result<pb::ImportUsersRequest, Status>> + Unpin),
    ) -> Result<(), Status> {
        loop {
            let next = if self.pending.is_empty() {
                inbound.next().await.transpose()
            } else {
                match tokio::time::timeout(IDLE_FLUSH, inbound.next()).await {
                    Ok(next) => next.transpose(),
                    Err(_) => {
                        self.flush().await?;
                        self.drain(0).await?;
                        continue;
                    }
                }
            };
            match next {
                Ok(Some(message)) => self.take(message.item).await?,
                Ok(None) => break,
                Err(status) => return self.broken(status).await,
            }
            if self.pending.len() >= BATCH_ROWS {
                self.flush().await?;
            }
        }
        if let Some((reader, header)) = &mut self.csv {
            if let Some(record) = reader.finish() {
                let header_seen = header.is_some();
                self.take_record(record, header_seen).await?;
            }
        }
        self.flush().await?;
        self.drain(0).await?;
        if !self.dry_run && self.summary.rows > 0 {
            let mut conn = self.state.pool.get().await.map_err(Error::from)?;
            let details = json!({
                "rows": self.summary.rows, "created": self.summary.created,
                "updated": self.summary.updated, "errors": self.summary.errors,
            });
            audit::record(
                &mut conn,
                &self.actor,
                self.org,
                "user.import",
                ("organization", self.org),
                details,
                self.state.clock.now(),
            )
            .await?;
        }
        let summary = pb::ImportUsersResponse {
            item: Some(import_users_response::Item::Summary(self.summary)),
        };
        let _ = self.tx.send(Ok(summary)).await;
        Ok(())
    }

    /// The request stream broke: a message that could not be read (too
    /// large, or refused by the text check) or a client gone. The rows
    /// already accepted are committed and reported first; then the stream
    /// ends with the error, never with a summary that would pass for a
    /// finished import.
    async fn broken(&mut self, status: Status) -> Result<(), Status> {
        let status = match status.code() {
            tonic::Code::OutOfRange | tonic::Code::InvalidArgument => {
                tracing::info!(code = ?status.code(), "import stream ended by a message it could not take");
                unreadable(status)
            }
            code => {
                tracing::info!(?code, "import stream ended by the client");
                Status::cancelled("the import stream ended early; the rows before it were imported")
            }
        };
        self.flush().await?;
        self.drain(0).await?;
        Err(status)
    }

    async fn take(&mut self, item: Option<Item>) -> Result<(), Status> {
        match item {
            Some(Item::Row(row)) => {
                if self.csv.is_some() {
                    return Err(Error::invalid(
                        "row",
                        "send either rows or CSV chunks in one import, not both",
                    )
                    .into());
                }
                self.structured = true;
                let raw = RawRow {
                    email: row.email,
                    username: row.username,
                    first_name: row.first_name,
                    last_name: row.last_name,
                    mobile: row.mobile,
                    service_area: row.service_area,
                    role: row.role,
                };
                self.add(raw, None).await
            }
            Some(Item::CsvChunk(chunk)) => {
                if self.structured {
                    return Err(Error::invalid(
                        "csv_chunk",
                        "send either rows or CSV chunks in one import, not both",
                    )
                    .into());
                }
                let (reader, _) = self.csv.get_or_insert_with(|| (CsvReader::new(), None));
                for record in reader.feed(&chunk) {
                    let header_seen = self.csv.as_ref().is_some_and(|(_, h)| h.is_some());
                    self.take_record(record, header_seen).await?;
                }
                Ok(())
            }
            Some(Item::Options(_)) => {
                Err(Error::invalid("options", "ImportOptions may only be the first message").into())
            }
            None => Ok(()),
        }
    }

    async fn take_record(
        &mut self,
        record: crate::domain::import::csv::Record,
        header_seen: bool,
    ) -> Result<(), Status> {
        if !header_seen {
            if let Some(problem) = record.malformed {
                return Err(
                    Error::invalid("csv_chunk", format!("the header row is malformed: {problem}")).into(),
                );
            }
            let header = Header::parse(&record.fields).map_err(|e| Error::invalid("csv_chunk", e))?;
            if let Some((_, slot)) = &mut self.csv {
                *slot = Some(header);
            }
            return Ok(());
        }
        let raw = self
            .csv
            .as_ref()
            .and_then(|(_, h)| h.as_ref())
            .map(|h| h.row(&record.fields))
            .unwrap_or_default();
        self.add(raw, record.malformed).await
    }

    async fn add(&mut self, raw: RawRow, malformed: Option<String>) -> Result<(), Status> {
        self.rows += 1;
        if self.rows > MAX_IMPORT_ROWS {
            return Err(Status::resource_exhausted(format!(
                "an import holds at most {MAX_IMPORT_ROWS} rows; split the file"
            )));
        }
        let row_number = i32::try_from(self.rows).unwrap_or(i32::MAX);
        let row = match malformed {
            Some(problem) => Err(vec![FieldViolation {
                field: "row".into(),
                description: problem,
            }]),
            None => validate(&raw, &self.catalogs, &self.default_area, &self.default_role),
        };
        let row = match row {
            Ok(valid) => self.claim(valid, row_number).await?,
            Err(errors) => Err(errors),
        };
        self.pending.push(Pending {
            row_number,
            email: raw.email.trim().to_owned(),
            row,
        });
        Ok(())
    }

    /// Refuses a row whose address or username an earlier row of this import
    /// took; otherwise records that this row takes them. Rows of the batch
    /// being gathered are compared exactly. Earlier batches are remembered in
    /// fixed-size Bloom filters, so memory does not grow with the import;
    /// when a filter says "maybe", the batches in flight are waited for and
    /// the database answers. A dry run writes nothing, so it remembers every
    /// key exactly instead.
    async fn claim(
        &mut self,
        row: ValidRow,
        row_number: i32,
    ) -> Result<Result<ValidRow, Vec<FieldViolation>>, Status> {
        let (email_key, username_key) = (row.email_key(), row.username_key());
        let (email, username) = (key_hash(&email_key), key_hash(&username_key));
        let duplicate = |field: &str, first: Option<i32>| {
            let description = match first {
                Some(row) => format!("appears earlier in this import, on row {row}"),
                None => "appears earlier in this import".to_owned(),
            };
            Ok(Err(vec![FieldViolation {
                field: field.into(),
                description,
            }]))
        };
        if let Some(first) = self.batch_emails.get(&email) {
            return duplicate("email", Some(*first));
        }
        if let Some(first) = self.batch_usernames.get(&username) {
            return duplicate("username", Some(*first));
        }
        if self.dry_run {
            if let Some(first) = self.seen_emails.get(&email) {
                return duplicate("email", Some(*first));
            }
            if let Some(first) = self.seen_usernames.get(&username) {
                return duplicate("username", Some(*first));
            }
            self.seen_emails.insert(email, row_number);
            self.seen_usernames.insert(username, row_number);
        } else if self.emails.maybe(email) || self.usernames.maybe(username) {
            self.drain(0).await?;
            let mut conn = self.state.pool.get().await.map_err(Error::from)?;
            let taken = import_took(&mut conn, self.org, &email_key, &username_key, self.started).await?;
            match taken {
                Some(Taken::Email) => return duplicate("email", None),
                Some(Taken::Username) => return duplicate("username", None),
                None => {}
            }
        }
        self.emails.add(email);
        self.usernames.add(username);
        self.batch_emails.insert(email, row_number);
        self.batch_usernames.insert(username, row_number);
        Ok(Ok(row))
    }

    /// Starts writing the pending rows; waits for older batches while
    /// `WRITERS` are busy.
    async fn flush(&mut self) -> Result<(), Status> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        self.batch_emails.clear();
        self.batch_usernames.clear();
        let valid: Vec<ValidRow> = rows.iter().filter_map(|p| p.row.as_ref().ok().cloned()).collect();
        let (state, org, upsert, dry_run, actor) = (
            self.state.clone(),
            self.org,
            self.upsert,
            self.dry_run,
            self.actor.clone(),
        );
        let outcomes = tokio::spawn(
            async move {
                if valid.is_empty() {
                    return Ok(Vec::new());
                }
                let mut conn = state.pool.get().await?;
                write_batch(&mut conn, org, &valid, upsert, dry_run, &actor, state.clock.now()).await
            }
            .in_current_span(),
        );
        self.writing.push_back(Writing { rows, outcomes });
        self.drain(WRITERS - 1).await
    }

    /// Sends the results of written batches, oldest first, until at most
    /// `keep` are still being written.
    async fn drain(&mut self, keep: usize) -> Result<(), Status> {
        while self.writing.len() > keep {
            let Some(batch) = self.writing.pop_front() else {
                break;
            };
            let mut outcomes = batch
                .outcomes
                .await
                .map_err(|e| Error::Internal(format!("import writer: {e}")))??
                .into_iter();
            for p in batch.rows {
                let outcome = match p.row {
                    Ok(_) => outcomes.next().unwrap_or(RowOutcome::Refused(Vec::new())),
                    Err(errors) => RowOutcome::Refused(errors),
                };
                let result = self.result(p.row_number, p.email, outcome);
                if self.tx.send(Ok(result)).await.is_err() {
                    // The client went away; what was committed stays committed.
                    return Err(Status::cancelled("the client went away"));
                }
            }
        }
        Ok(())
    }

    fn result(&mut self, row_number: i32, email: String, outcome: RowOutcome) -> pb::ImportUsersResponse {
        self.summary.rows += 1;
        let (outcome, user_id, errors) = match outcome {
            RowOutcome::Created(id) => {
                self.summary.created += 1;
                (pb::ImportOutcome::Created, id.to_string(), Vec::new())
            }
            RowOutcome::Updated(id) => {
                self.summary.updated += 1;
                (pb::ImportOutcome::Updated, id.to_string(), Vec::new())
            }
            RowOutcome::SkippedExisting(id) => {
                self.summary.skipped_existing += 1;
                (pb::ImportOutcome::SkippedExisting, id.to_string(), Vec::new())
            }
            RowOutcome::Refused(errors) => {
                self.summary.errors += 1;
                let errors = errors
                    .into_iter()
                    .map(|e| pb::RowError {
                        field: e.field,
                        description: e.description,
                    })
                    .collect();
                (pb::ImportOutcome::Error, String::new(), errors)
            }
        };
        pb::ImportUsersResponse {
            item: Some(import_users_response::Item::Result(pb::ImportRowResult {
                row_number,
                email,
                outcome: outcome as i32,
                user_id: if self.dry_run && outcome == pb::ImportOutcome::Created {
                    String::new()
                } else {
                    user_id
                },
                errors,
            })),
        }
    }
}

/// What a client is told of a message the import could not take.
fn unreadable(status: Status) -> Status {
    match status.code() {
        tonic::Code::OutOfRange => Status::invalid_argument(format!(
            "a message of the import stream is larger than the server accepts ({} MiB): send the \
             CSV in smaller chunks; the rows before it were imported and reported",
            IMPORT_MESSAGE_BYTES >> 20
        )),
        _ => status,
    }
}
