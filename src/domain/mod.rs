//! Business rules, free of gRPC: one function per use case, taking the
//! `Services` (or the connection) it needs and plain values, owning its
//! transaction, and answering domain types or `crate::error::Error`.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod caller;
pub mod catalog;
pub mod client_limits;
pub mod enrollment;
pub mod import;
pub mod invitations;
pub mod key_cache;
pub mod organizations;
pub mod outbox;
pub mod paging;
pub mod rate_limit;
pub mod registration;
pub mod reset;
pub mod second_factor;
pub mod sign_in;
pub mod templates;
pub mod user_lifecycle;
pub mod users;
pub mod validate;
