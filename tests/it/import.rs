//! ImportUsers: CSV and structured rows in, one result per row out.

use tokio_stream::StreamExt;
use tonic::Code;

use crate::harness::{TestServer, authed, csv, import, options, users};
use onramp::pb::{self, import_users_request::Item, import_users_response};

fn outcomes(results: &[pb::ImportRowResult]) -> Vec<(i32, pb::ImportOutcome)> {
    results.iter().map(|r| (r.row_number, r.outcome())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_with_good_bad_duplicate_and_upserted_rows_streams_matching_results() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    server
        .admin()
        .create_user(authed(
            pb::CreateUserRequest {
                email: "existing@acme.example".into(),
                first_name: "Old".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("existing user");
    let text = "Email,First Name,last_name,mobile,service_area,role\r\n\
        ada@acme.example,Ada,Lovelace,+447700900001,North ward,Nurse\r\n\
        not-an-address,Bad,Row,12345,Mars,Pilot\r\n\
        ADA@acme.example,Ada,Again,,,\r\n\
        EXISTING@acme.example,New,Name,,north ward,NURSE\r\n\
        \"grace@acme.example\",\"Hopper, Grace\",,,,\r\n";
    // Chunks that split rows, fields and the line ending.
    let messages = std::iter::once(options(true, false))
        .chain(
            text.as_bytes()
                .chunks(17)
                .map(|c| csv(std::str::from_utf8(c).unwrap())),
        )
        .collect();
    let (results, summary) = import(&server, &org, messages).await.expect("import");
    assert_eq!(
        outcomes(&results),
        [
            (1, pb::ImportOutcome::Created),
            (2, pb::ImportOutcome::Error),
            (3, pb::ImportOutcome::Error),
            (4, pb::ImportOutcome::Updated),
            (5, pb::ImportOutcome::Created),
        ]
    );
    let bad: Vec<&str> = results[1].errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(bad, ["email", "mobile", "service_area", "role"]);
    assert!(
        results[2].errors[0].description.contains("row 1"),
        "{:?}",
        results[2].errors
    );
    assert_eq!(
        (
            summary.rows,
            summary.created,
            summary.updated,
            summary.skipped_existing,
            summary.errors
        ),
        (5, 2, 1, 0, 2)
    );

    let all = users(&server, &org).await;
    assert_eq!(all.len(), 3);
    let existing = all
        .iter()
        .find(|u| u.email == "existing@acme.example")
        .expect("existing");
    assert_eq!(
        (existing.first_name.as_str(), existing.last_name.as_str()),
        ("New", "Name")
    );
    assert_eq!(existing.access_grants[0].role_name, "Nurse");
    let ada = all.iter().find(|u| u.email == "ada@acme.example").expect("ada");
    assert_eq!(ada.status(), pb::UserStatus::Staged);
    assert_eq!(ada.id, results[0].user_id);
    let grace = all
        .iter()
        .find(|u| u.email == "grace@acme.example")
        .expect("grace");
    assert_eq!(grace.first_name, "Hopper, Grace");
    assert!(grace.access_grants.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_upsert_existing_users_are_skipped_and_defaults_fill_blank_cells() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    server
        .admin()
        .create_user(authed(
            pb::CreateUserRequest {
                email: "existing@acme.example".into(),
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("existing user");
    let row = |email: &str| pb::ImportUsersRequest {
        item: Some(Item::Row(pb::ImportRow {
            email: email.into(),
            ..Default::default()
        })),
    };
    let first = pb::ImportUsersRequest {
        item: Some(Item::Options(pb::ImportOptions {
            default_service_area: org.service_area_id.clone(),
            default_role: "nurse".into(),
            ..Default::default()
        })),
    };
    let (results, summary) = import(
        &server,
        &org,
        vec![first, row("Existing@acme.example"), row("new@acme.example")],
    )
    .await
    .expect("import");
    assert_eq!(
        outcomes(&results),
        [
            (1, pb::ImportOutcome::SkippedExisting),
            (2, pb::ImportOutcome::Created)
        ]
    );
    assert_eq!(summary.skipped_existing, 1);
    let new = users(&server, &org)
        .await
        .into_iter()
        .find(|u| u.email == "new@acme.example")
        .expect("new");
    assert_eq!(new.access_grants[0].service_area_name, "North ward");
}

/// A username is one person's: a new row that names another person's
/// username, or an upserted row whose username is someone else's, is refused
/// on that field, beside the rows around it that import as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_whose_username_is_another_persons_is_refused_on_that_field() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    for (email, username) in [
        ("ada@acme.example", "ada"),
        ("barbara@acme.example", "barbara"),
        ("grace@acme.example", "grace"),
    ] {
        crate::credentials::staged(&server, &org, email, username).await;
    }
    let text = "email,username,first_name\r\n\
        alan@acme.example,ADA,Alan\r\n\
        ada@acme.example,barbara,Ada\r\n\
        edsger@acme.example,edsger,Edsger\r\n\
        grace@acme.example,grace,Grace\r\n";
    let (results, summary) = import(&server, &org, vec![options(true, false), csv(text)])
        .await
        .expect("import");
    assert_eq!(
        outcomes(&results),
        [
            (1, pb::ImportOutcome::Error),
            (2, pb::ImportOutcome::Error),
            (3, pb::ImportOutcome::Created),
            (4, pb::ImportOutcome::Updated),
        ]
    );
    for refused in &results[..2] {
        let fields: Vec<(&str, &str)> = refused
            .errors
            .iter()
            .map(|e| (e.field.as_str(), e.description.as_str()))
            .collect();
        assert_eq!(
            fields,
            [("username", "belongs to another user of the organisation")]
        );
    }
    assert_eq!((summary.created, summary.updated, summary.errors), (1, 1, 2));
    let all = users(&server, &org).await;
    let names: Vec<(&str, &str, &str)> = {
        let mut names: Vec<_> = all
            .iter()
            .map(|u| (u.email.as_str(), u.username.as_str(), u.first_name.as_str()))
            .collect();
        names.sort_unstable();
        names
    };
    assert_eq!(
        names,
        [
            ("ada@acme.example", "ada", "Ada"),
            ("barbara@acme.example", "barbara", "Ada"),
            ("edsger@acme.example", "edsger", "Edsger"),
            ("grace@acme.example", "grace", "Grace"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reports_every_outcome_and_writes_nothing() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let text = "email\nada@acme.example\nbad\nada@acme.example\n";
    let (results, summary) = import(&server, &org, vec![options(false, true), csv(text)])
        .await
        .expect("import");
    assert_eq!(
        outcomes(&results),
        [
            (1, pb::ImportOutcome::Created),
            (2, pb::ImportOutcome::Error),
            (3, pb::ImportOutcome::Error)
        ]
    );
    assert!(summary.dry_run);
    assert!(users(&server, &org).await.is_empty());
    let audit = server.audited(&org.key, "user.create").await;
    assert!(audit.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_header_or_a_stream_without_options_is_refused() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let status = import(&server, &org, vec![csv("email\nada@acme.example\n")])
        .await
        .expect_err("no options");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("ImportOptions"), "{}", status.message());

    let status = import(
        &server,
        &org,
        vec![options(false, false), csv("mail,name\nada@acme.example,Ada\n")],
    )
    .await
    .expect_err("no email column");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("unknown columns: mail, name"),
        "{}",
        status.message()
    );
    assert!(users(&server, &org).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_larger_than_one_batch_commits_every_row_in_order() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut text = String::from("email,service_area,role\n");
    for i in 0..2_500 {
        text.push_str(&format!("user{i}@acme.example,North ward,Nurse\n"));
    }
    let messages = std::iter::once(options(false, false))
        .chain(
            text.as_bytes()
                .chunks(4096)
                .map(|c| csv(std::str::from_utf8(c).unwrap())),
        )
        .collect();
    let (results, summary) = import(&server, &org, messages).await.expect("import");
    assert_eq!(summary.created, 2_500);
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(i, r)| r.row_number == i as i32 + 1)
    );
    let listed = server
        .admin()
        .list_users(authed(
            pb::ListUsersRequest {
                service_area_id: org.service_area_id.clone(),
                page_size: 1,
                ..Default::default()
            },
            &org.key,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.total_size, 2_500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_in_a_later_batch_is_still_refused() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let mut text = String::from("email,username\n");
    for i in 0..2_500 {
        text.push_str(&format!("user{i}@acme.example,\n"));
    }
    // Rows 2,501 and 2,502 repeat rows 1 and 2 (one by email, one by
    // username), two batches later.
    text.push_str("USER0@acme.example,\nsomeone@acme.example,user1@acme.example\n");
    let messages = std::iter::once(options(true, false))
        .chain(
            text.as_bytes()
                .chunks(4096)
                .map(|c| csv(std::str::from_utf8(c).unwrap())),
        )
        .collect();
    let (results, summary) = import(&server, &org, messages).await.expect("import");
    assert_eq!((summary.created, summary.errors), (2_500, 2));
    let late: Vec<(&str, &str)> = results[2_500..]
        .iter()
        .map(|r| (r.errors[0].field.as_str(), r.errors[0].description.as_str()))
        .collect();
    assert_eq!(
        late,
        [
            ("email", "appears earlier in this import"),
            ("username", "appears earlier in this import")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_csv_file_in_one_request_imports_like_the_stream() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    let csv = "email,first_name,service_area,role\n\
               ada@acme.example,Ada,North ward,Nurse\n\
               not an address,Bad,North ward,Nurse\n\
               grace@acme.example,Grace,North ward,Nurse\n";
    let mut responses = server
        .admin()
        .import_users_csv(authed(
            pb::ImportUsersCsvRequest {
                options: Some(pb::ImportOptions::default()),
                csv: csv.into(),
            },
            &org.key,
        ))
        .await
        .expect("import")
        .into_inner();
    let mut results = Vec::new();
    let mut summary = None;
    while let Some(message) = responses.next().await {
        match message.expect("a result").item {
            Some(import_users_response::Item::Result(r)) => results.push(r),
            Some(import_users_response::Item::Summary(s)) => summary = Some(s),
            None => {}
        }
    }
    assert_eq!(
        outcomes(&results),
        [
            (1, pb::ImportOutcome::Created),
            (2, pb::ImportOutcome::Error),
            (3, pb::ImportOutcome::Created)
        ]
    );
    let summary = summary.expect("a summary at the end");
    assert_eq!((summary.rows, summary.created, summary.errors), (3, 2, 1));
    assert_eq!(users(&server, &org).await.len(), 2);

    let empty = server
        .admin()
        .import_users_csv(authed(pb::ImportUsersCsvRequest::default(), &org.key))
        .await
        .expect_err("no CSV");
    assert_eq!(crate::harness::violations(&empty)[0].0, "csv");
}
