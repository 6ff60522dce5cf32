//! The recipients of a send streamed in parts (`StreamInvitations`): the
//! first part, then each later one as it arrives, checked against the
//! request's limits. The planner decides each part as it comes, so the
//! server never holds more than one part of the list.

use std::{pin::Pin, sync::Arc};

use tokio_stream::{Stream, StreamExt};

use super::{
    parse,
    plan::{MAX_RECIPIENTS, Recipients},
};
use crate::error::{Error, Result};

/// The parts after the first, as they arrive.
pub type LaterParts = Pin<Box<dyn Stream<Item = Result<Recipients>> + Send>>;

pub struct Parts {
    first: Option<Recipients>,
    rest: LaterParts,
    /// Recipients in the parts so far.
    count: usize,
    all_staged: bool,
    /// Whether the send gives the access new people get, which inviting an
    /// address needs.
    addresses_allowed: bool,
}

impl Parts {
    pub fn new(first: Recipients, rest: LaterParts, addresses_allowed: bool) -> Self {
        Parts {
            count: 0,
            all_staged: first.all_staged,
            first: Some(first),
            rest,
            addresses_allowed,
        }
    }

    /// The same parts again, from memory: a dry run reads them twice.
    pub fn replay(parts: Arc<[Recipients]>, addresses_allowed: bool) -> Self {
        let mut all = (0..parts.len()).map(move |i| parts[i].clone());
        let first = all.next().unwrap_or_default();
        Self::new(
            first,
            Box::pin(tokio_stream::iter(all.map(Ok))),
            addresses_allowed,
        )
    }

    pub fn all_staged(&self) -> bool {
        self.all_staged
    }

    /// The next part, or `None` after the last. Refuses a part that takes the
    /// request past its limit or invites addresses without the access they
    /// need, and a request that ends without a recipient.
    pub async fn next(&mut self) -> Result<Option<Recipients>> {
        let part = match self.first.take() {
            Some(first) => first,
            None => match self.rest.next().await.transpose()? {
                Some(part) => part,
                None if self.count == 0 && !self.all_staged => {
                    return Err(Error::invalid(
                        "recipients",
                        "name at least one recipient in some part (recipients_text, emails or user_ids), \
                         or set all_staged",
                    ));
                }
                None => return Ok(None),
            },
        };
        if part.has_addresses() && !self.addresses_allowed {
            return Err(Error::invalid(
                "send.service_area_id",
                "is required to invite new people: give the service area and role in the first message",
            ));
        }
        self.count += parse::count(&part.text)
            + part.emails.iter().map(|e| parse::count(e)).sum::<usize>()
            + part.user_ids.len();
        if self.count > MAX_RECIPIENTS {
            return Err(Error::invalid(
                "recipients",
                format!(
                    "the parts so far hold {} recipients; one request may hold at most {MAX_RECIPIENTS}: \
                     split the list into more than one request",
                    self.count
                ),
            ));
        }
        Ok(Some(part))
    }

    /// Every part, checked, for a send that must read them twice.
    pub async fn collect(mut self) -> Result<Arc<[Recipients]>> {
        let mut all = Vec::new();
        while let Some(part) = self.next().await? {
            all.push(part);
        }
        Ok(all.into())
    }
}
