//! Bulk import of users: CSV or structured rows in, one outcome per row out.

pub mod csv;
pub mod rows;
pub mod writer;
