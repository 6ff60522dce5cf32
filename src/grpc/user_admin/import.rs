//! ImportUsers (a bidirectional stream) and ImportUsersCsv (a whole file in
//! one request): the messages converted for `domain::import::session`, and
//! its results converted back as they come.

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};
use tonic::{Code, Request, Response, Status, Streaming};

use crate::{
    domain::{
        caller::{Caller, Scope},
        import::{
            rows::RawRow,
            session::{self, ImportEvent, ImportOptions, Input, RowResult, Summary},
            writer::RowOutcome,
        },
    },
    error::Error,
    grpc::{actor, caller},
    pb::{self, import_users_request::Item, import_users_response},
    state::AppState,
};

/// The largest message of an import stream the server decodes (tonic's
/// default).
pub const IMPORT_MESSAGE_BYTES: usize = 4 << 20;

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
    let inbound = inbound.map(|message| message.map(|m| input(m.item)).map_err(unreadable));
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
    let inbound = tokio_stream::iter([Ok(Input::CsvChunk(req.csv))]);
    start(state, &who, actor, options, inbound).await
}

async fn start(
    state: &AppState,
    who: &Caller,
    actor: crate::domain::audit::Actor,
    options: pb::ImportOptions,
    inbound: impl Stream<Item = Result<Input, Error>> + Send + Unpin + 'static,
) -> Result<Response<ImportStream>, Status> {
    let organization_id = who.organization(&options.organization_id, Scope::UsersWrite)?;
    let dry_run = options.dry_run;
    let options = ImportOptions {
        organization_id,
        upsert: options.upsert,
        dry_run,
        default_area: options.default_service_area,
        default_role: options.default_role,
    };
    let events = session::import(state, options, actor, inbound).await?;
    let stream = ReceiverStream::new(events).map(move |e| e.map(|e| event(e, dry_run)).map_err(Status::from));
    Ok(Response::new(Box::pin(stream)))
}

fn input(item: Option<Item>) -> Input {
    match item {
        Some(Item::Row(row)) => Input::Row(RawRow {
            email: row.email,
            username: row.username,
            first_name: row.first_name,
            last_name: row.last_name,
            mobile: row.mobile,
            service_area: row.service_area,
            role: row.role,
        }),
        Some(Item::CsvChunk(chunk)) => Input::CsvChunk(chunk),
        Some(Item::Options(_)) => Input::Options,
        None => Input::Empty,
    }
}

/// What a client is told of a message the import could not take, or of a
/// stream it ended early.
fn unreadable(status: Status) -> Error {
    match status.code() {
        Code::OutOfRange => Error::invalid(
            "csv_chunk",
            format!(
                "a message of the import stream is larger than the server accepts ({} MiB): send the \
                 CSV in smaller chunks; the rows before it were imported and reported",
                IMPORT_MESSAGE_BYTES >> 20
            ),
        ),
        Code::InvalidArgument => Error::invalid("csv_chunk", status.message()),
        _ => Error::Cancelled("the import stream ended early; the rows before it were imported".into()),
    }
}

fn event(e: ImportEvent, dry_run: bool) -> pb::ImportUsersResponse {
    let item = match e {
        ImportEvent::Result(r) => import_users_response::Item::Result(result(r, dry_run)),
        ImportEvent::Summary(s) => import_users_response::Item::Summary(summary(s)),
    };
    pb::ImportUsersResponse { item: Some(item) }
}

fn result(r: RowResult, dry_run: bool) -> pb::ImportRowResult {
    let (outcome, user_id, errors) = match r.outcome {
        // A dry run's new user does not exist.
        RowOutcome::Created(_) if dry_run => (pb::ImportOutcome::Created, String::new(), Vec::new()),
        RowOutcome::Created(id) => (pb::ImportOutcome::Created, id.to_string(), Vec::new()),
        RowOutcome::Updated(id) => (pb::ImportOutcome::Updated, id.to_string(), Vec::new()),
        RowOutcome::SkippedExisting(id) => (pb::ImportOutcome::SkippedExisting, id.to_string(), Vec::new()),
        RowOutcome::Refused(errors) => {
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
    pb::ImportRowResult {
        row_number: r.row_number,
        email: r.email,
        outcome: outcome as i32,
        user_id,
        errors,
    }
}

fn summary(s: Summary) -> pb::ImportSummary {
    pb::ImportSummary {
        rows: s.rows,
        created: s.created,
        updated: s.updated,
        skipped_existing: s.skipped_existing,
        errors: s.errors,
        dry_run: s.dry_run,
    }
}
