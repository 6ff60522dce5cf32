//! Imports as the tests run them: the messages of an `ImportUsers` stream,
//! and its results read to the summary.

use tokio_stream::StreamExt;

use super::{Org, TestServer, authed};
use onramp::pb::{self, import_users_request::Item, import_users_response};

pub fn options(upsert: bool, dry_run: bool) -> pb::ImportUsersRequest {
    pb::ImportUsersRequest {
        item: Some(Item::Options(pb::ImportOptions {
            upsert,
            dry_run,
            ..Default::default()
        })),
    }
}

pub fn csv(chunk: &str) -> pb::ImportUsersRequest {
    pb::ImportUsersRequest {
        item: Some(Item::CsvChunk(chunk.into())),
    }
}

/// Runs an import; answers the row results and the summary.
pub async fn import(
    server: &TestServer,
    org: &Org,
    messages: Vec<pb::ImportUsersRequest>,
) -> Result<(Vec<pb::ImportRowResult>, pb::ImportSummary), tonic::Status> {
    let mut responses = server
        .admin()
        .import_users(authed(tokio_stream::iter(messages), &org.key))
        .await?
        .into_inner();
    let mut results = Vec::new();
    while let Some(message) = responses.next().await {
        match message?.item {
            Some(import_users_response::Item::Result(r)) => results.push(r),
            Some(import_users_response::Item::Summary(s)) => return Ok((results, s)),
            None => {}
        }
    }
    panic!("the stream ended without a summary");
}

pub async fn users(server: &TestServer, org: &Org) -> Vec<pb::User> {
    server
        .admin()
        .list_users(authed(
            pb::ListUsersRequest {
                page_size: 1000,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("list")
        .into_inner()
        .users
}
