//! Bulk sends and invitations: deciding the recipients (`plan`), read in
//! parts when they are streamed (`parts`), creating
//! the batch (`batch`) or deciding it dry (`dry_run`), starting either
//! (`bulk`), following its results (`follow`, `events`), and the
//! invitations themselves (`manage`).

pub mod batch;
pub mod bulk;
pub mod dry_run;
pub mod events;
pub mod follow;
pub mod manage;
pub mod parse;
pub mod parts;
pub mod plan;
