//! Onramp: a gRPC service that brings new people into an organisation's
//! systems. See README.md for the API and its configuration.

pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod db;
pub mod descriptors;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod lifecycle;
pub mod mail;
pub mod malloc;
pub mod metrics;
pub mod notify;
pub mod outbox;
pub mod pages;
pub mod passwords;
pub mod secrets;
pub mod server;
pub mod services;
pub mod sms;
pub mod state;
pub mod telemetry;
pub mod tokens;

/// Code generated from `proto/onramp/v1`.
#[allow(clippy::all, clippy::pedantic, reason = "generated code")]
pub mod pb {
    tonic::include_proto!("onramp.v1");
    include!(concat!(env!("OUT_DIR"), "/text_fields.rs"));

    /// The encoded descriptor set of the API, served by reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("onramp_descriptor");
}
