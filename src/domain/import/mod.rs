//! Bulk import of users: CSV or structured rows in, one outcome per row out.
//! `session` runs one import; `rows` validates a row, `seen` catches keys
//! taken twice, `writer` commits a batch, `csv` reads the file.

pub mod csv;
pub mod rows;
pub mod seen;
pub mod session;
pub mod writer;
