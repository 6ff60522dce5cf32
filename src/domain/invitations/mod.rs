//! Invitations: bulk sends, the invitations themselves, and following a
//! batch's results.

pub mod batch;
pub mod follow;
pub mod manage;
pub mod parse;
