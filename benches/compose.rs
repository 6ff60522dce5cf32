//! What composing an email costs the server: 20,000 invitation emails from
//! the default template, each rendered, built as a MIME message, formatted
//! and written as its DATA section, as a worker does before the send. Prints
//! the time per email, and the same loop's time for copying each finished
//! section once, as a reference measured in the same run.
//!
//!     cargo bench --bench compose
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a benchmark stops at the first failure"
)]

use std::{hint::black_box, time::Instant};

use chrono::{TimeDelta, Utc};
use lettre::message::Mailbox;
use onramp::{
    domain::templates::{self, Kind, person_vars},
    mail::data_section,
    outbox::compose::{Prepared, message::email},
};

const EMAILS: usize = 20_000;
const ROUNDS: usize = 5;

fn main() {
    let from: Mailbox = "Onramp <onramp@bench.example>".parse().expect("from");
    let template = templates::default_template(Kind::Invitation);
    let expires = Utc::now() + TimeDelta::days(7);
    let compose = |i: usize| -> String {
        let address = format!("person{i}@bench.example");
        let mut vars = person_vars("Bench Ltd", "Ada", "Lovelace", &address, &address, expires);
        vars.insert(
            "link",
            format!("http://127.0.0.1:50051/register?token=inv_{i:040}"),
        );
        vars.insert("access_phrase", " (Support, Agent)".into());
        vars.insert("service_area", "Support".into());
        vars.insert("role", "Agent".into());
        let rendered = templates::render(&template, &vars);
        let Prepared::Ready(message) = email(&from, &address, &format!("<{i}@bench.example>"), rendered)
        else {
            panic!("the email was not built");
        };
        let formatted = String::from_utf8(message.formatted()).expect("ASCII");
        data_section(formatted)
    };
    let size = compose(0).len();
    println!("one email's DATA section: {size} bytes");
    for round in 1..=ROUNDS {
        let started = Instant::now();
        let mut sections = Vec::with_capacity(EMAILS);
        for i in 0..EMAILS {
            sections.push(black_box(compose(i)));
        }
        let composing = started.elapsed().as_secs_f64();
        let started = Instant::now();
        for section in &sections {
            black_box(section.clone());
        }
        let copying = started.elapsed().as_secs_f64();
        println!(
            "round {round}: {:.2} µs an email to compose, {:.3} µs to copy its section once ({:.0} copies)",
            composing * 1e6 / EMAILS as f64,
            copying * 1e6 / EMAILS as f64,
            composing / copying
        );
    }
}
