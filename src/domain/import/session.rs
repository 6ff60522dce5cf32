//! One import, from its first message to its summary. Rows are validated
//! as they arrive and committed in batches; results go back in row order as
//! each batch commits. The work runs in its own task, so a client that goes
//! away never cuts a batch in half.

use std::{
    collections::{HashMap, VecDeque},
    time::Duration,
};

use serde_json::json;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_stream::{Stream, StreamExt};
use tracing::Instrument;
use uuid::Uuid;

use super::{
    csv::{CsvReader, Record},
    rows::{Catalogs, Header, RawRow, ValidRow, validate},
    seen::{Bloom, Taken, import_took, key_hash},
    writer::{RowOutcome, write_batch},
};
use crate::{
    domain::{
        audit::{self, Actor},
        catalog::{self, Catalog},
    },
    error::{Error, FieldViolation, Result},
    services::Services,
};

/// Rows per transaction: large enough for multi-row inserts to pay, small
/// enough that results come back promptly.
const BATCH_ROWS: usize = 2_000;
/// Batches written at once, each on its own connection: the database does
/// most of the work of an import, and one backend uses one core.
const WRITERS: usize = 2;
/// A partial batch is written when the client pauses this long.
const IDLE_FLUSH: Duration = Duration::from_millis(50);
pub const MAX_IMPORT_ROWS: usize = 1_000_000;

/// How an import runs.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    pub organization_id: Uuid,
    /// Update the users that exist instead of skipping them.
    pub upsert: bool,
    /// Decide every row and write nothing.
    pub dry_run: bool,
    /// The service area and role of rows that name none.
    pub default_area: String,
    pub default_role: String,
}

/// One message of an import after its options.
pub enum Input {
    Row(RawRow),
    CsvChunk(String),
    /// Options again: refused.
    Options,
    /// A message that carries nothing.
    Empty,
}

/// What became of one row.
pub struct RowResult {
    pub row_number: i32,
    pub email: String,
    pub outcome: RowOutcome,
}

/// The counts of a finished import.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    pub rows: i32,
    pub created: i32,
    pub updated: i32,
    pub skipped_existing: i32,
    pub errors: i32,
    pub dry_run: bool,
}

/// What an import reports: each row's result in row order, then the
/// summary. It ends with an error instead of a summary when the inbound
/// stream broke (the rows before were committed and reported first).
pub enum ImportEvent {
    Result(RowResult),
    Summary(Summary),
}

/// Starts an import fed by `inbound`; its events come from the answer.
pub async fn import(
    app: &Services,
    options: ImportOptions,
    actor: Actor,
    inbound: impl Stream<Item = Result<Input>> + Send + Unpin + 'static,
) -> Result<mpsc::Receiver<Result<ImportEvent>>> {
    let org = options.organization_id;
    let catalogs = load_catalogs(app, org).await?;
    let (tx, rx) = mpsc::channel(BATCH_ROWS);
    let importer = Importer {
        app: app.clone(),
        org,
        upsert: options.upsert,
        dry_run: options.dry_run,
        default_area: options.default_area,
        default_role: options.default_role,
        catalogs,
        actor,
        tx,
        rows: 0,
        pending: Vec::new(),
        batch_emails: HashMap::new(),
        batch_usernames: HashMap::new(),
        emails: Bloom::default(),
        usernames: Bloom::default(),
        seen_emails: HashMap::new(),
        seen_usernames: HashMap::new(),
        started: app.clock.now(),
        summary: Summary {
            dry_run: options.dry_run,
            ..Summary::default()
        },
        csv: None,
        structured: false,
        writing: VecDeque::new(),
    };
    tokio::spawn(importer.run(inbound).in_current_span());
    Ok(rx)
}

async fn load_catalogs(app: &Services, org: Uuid) -> Result<Catalogs> {
    let mut conn = app.pool.get().await?;
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
    app: Services,
    org: Uuid,
    upsert: bool,
    dry_run: bool,
    default_area: String,
    default_role: String,
    catalogs: Catalogs,
    actor: Actor,
    tx: mpsc::Sender<Result<ImportEvent>>,
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
    summary: Summary,
    csv: Option<(CsvReader, Option<Header>)>,
    structured: bool,
    /// Batches being written, oldest first; results leave in this order.
    writing: VecDeque<Writing>,
}

struct Writing {
    rows: Vec<Pending>,
    outcomes: JoinHandle<Result<Vec<RowOutcome>>>,
}

impl Importer {
    async fn run(mut self, mut inbound: impl Stream<Item = Result<Input>> + Unpin) {
        if let Err(e) = self.consume(&mut inbound).await {
            let _ = self.tx.send(Err(e)).await;
        }
    }

    async fn consume(&mut self, inbound: &mut (impl Stream<Item = Result<Input>> + Unpin)) -> Result<()> {
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
                Ok(Some(input)) => self.take(input).await?,
                Ok(None) => break,
                Err(e) => return self.broken(e).await,
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
            let mut conn = self.app.pool.get().await?;
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
                self.app.clock.now(),
            )
            .await?;
        }
        let _ = self.tx.send(Ok(ImportEvent::Summary(self.summary))).await;
        Ok(())
    }

    /// The request stream broke: a message that could not be read (too
    /// large, or refused by the text check) or a client gone. The rows
    /// already accepted are committed and reported first; then the stream
    /// ends with the error, never with a summary that would pass for a
    /// finished import.
    async fn broken(&mut self, e: Error) -> Result<()> {
        tracing::info!(error = %e, "import stream ended early");
        self.flush().await?;
        self.drain(0).await?;
        Err(e)
    }

    async fn take(&mut self, input: Input) -> Result<()> {
        match input {
            Input::Row(raw) => {
                if self.csv.is_some() {
                    return Err(Error::invalid(
                        "row",
                        "send either rows or CSV chunks in one import, not both",
                    ));
                }
                self.structured = true;
                self.add(raw, None).await
            }
            Input::CsvChunk(chunk) => {
                if self.structured {
                    return Err(Error::invalid(
                        "csv_chunk",
                        "send either rows or CSV chunks in one import, not both",
                    ));
                }
                let (reader, _) = self.csv.get_or_insert_with(|| (CsvReader::new(), None));
                for record in reader.feed(&chunk) {
                    let header_seen = self.csv.as_ref().is_some_and(|(_, h)| h.is_some());
                    self.take_record(record, header_seen).await?;
                }
                Ok(())
            }
            Input::Options => Err(Error::invalid(
                "options",
                "ImportOptions may only be the first message",
            )),
            Input::Empty => Ok(()),
        }
    }

    async fn take_record(&mut self, record: Record, header_seen: bool) -> Result<()> {
        if !header_seen {
            if let Some(problem) = record.malformed {
                return Err(Error::invalid(
                    "csv_chunk",
                    format!("the header row is malformed: {problem}"),
                ));
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

    async fn add(&mut self, raw: RawRow, malformed: Option<String>) -> Result<()> {
        self.rows += 1;
        if self.rows > MAX_IMPORT_ROWS {
            return Err(Error::ResourceExhausted(format!(
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
    ) -> Result<Result<ValidRow, Vec<FieldViolation>>> {
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
            let mut conn = self.app.pool.get().await?;
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
    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        self.batch_emails.clear();
        self.batch_usernames.clear();
        let valid: Vec<ValidRow> = rows.iter().filter_map(|p| p.row.as_ref().ok().cloned()).collect();
        let (app, org, upsert, dry_run, actor) = (
            self.app.clone(),
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
                let mut conn = app.pool.get().await?;
                write_batch(&mut conn, org, &valid, upsert, dry_run, &actor, app.clock.now()).await
            }
            .in_current_span(),
        );
        self.writing.push_back(Writing { rows, outcomes });
        self.drain(WRITERS - 1).await
    }

    /// Sends the results of written batches, oldest first, until at most
    /// `keep` are still being written.
    async fn drain(&mut self, keep: usize) -> Result<()> {
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
                if self.tx.send(Ok(ImportEvent::Result(result))).await.is_err() {
                    // The client went away; what was committed stays committed.
                    return Err(Error::Cancelled("the client went away".into()));
                }
            }
        }
        Ok(())
    }

    fn result(&mut self, row_number: i32, email: String, outcome: RowOutcome) -> RowResult {
        self.summary.rows += 1;
        let counter = match &outcome {
            RowOutcome::Created(_) => &mut self.summary.created,
            RowOutcome::Updated(_) => &mut self.summary.updated,
            RowOutcome::SkippedExisting(_) => &mut self.summary.skipped_existing,
            RowOutcome::Refused(_) => &mut self.summary.errors,
        };
        *counter += 1;
        RowResult {
            row_number,
            email,
            outcome,
        }
    }
}
