//! Business rules, free of gRPC: each module takes a connection and plain
//! values, and answers domain types or `crate::error::Error`.

pub mod api_keys;
pub mod audit;
pub mod caller;
pub mod catalog;
pub mod import;
pub mod invitations;
pub mod organizations;
pub mod paging;
pub mod templates;
pub mod user_lifecycle;
pub mod users;
pub mod validate;
