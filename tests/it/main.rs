//! Integration tests: every test talks to a real server over a real channel,
//! backed by its own Postgres database and a real SMTP receiver.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test fails loudly at the first surprise"
)]

mod auth;
mod browser;
mod console;
mod credentials;
mod deliveries;
mod gateway;
mod grants;
mod harness;
mod hostile;
mod import;
mod invitations;
mod lifecycle;
mod links;
mod mailer;
mod metrics;
mod organizations;
mod pages;
mod people;
mod private_pg;
mod processes;
mod registration;
mod rest;
mod restart;
mod security;
mod send_rows;
mod server;
mod smtp;
mod streamed;
mod users;
mod web;
