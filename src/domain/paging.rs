//! Opaque page tokens for keyset pagination: the id of the last row served.
//! Ids are UUIDv7, so id order is creation order and a page boundary stays
//! put while rows are inserted.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::error::{Error, Result};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1_000;

#[derive(Clone, Copy, Debug)]
pub struct Page {
    pub size: i64,
    pub after: Option<Uuid>,
}

impl Page {
    pub fn parse(page_size: i32, page_token: &str) -> Result<Page> {
        let size = match i64::from(page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(Error::invalid("page_size", "must not be negative")),
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let bytes = URL_SAFE_NO_PAD
                .decode(page_token)
                .ok()
                .and_then(|b| Uuid::from_slice(&b).ok())
                .ok_or_else(|| Error::invalid("page_token", "is not a token from an earlier page"))?;
            Some(bytes)
        };
        Ok(Page { size, after })
    }

    /// Asks for one row more than the page holds, to know if another follows.
    pub fn fetch_limit(&self) -> i64 {
        self.size + 1
    }

    /// Trims the extra row and answers the next page's token.
    pub fn finish<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> (Vec<T>, String) {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        if rows.len() > size {
            rows.truncate(size);
            let token = rows
                .last()
                .map(|r| URL_SAFE_NO_PAD.encode(id(r).as_bytes()))
                .unwrap_or_default();
            (rows, token)
        } else {
            (rows, String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() -> Result<()> {
        let page = Page::parse(2, "")?;
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        let (rows, token) = page.finish(ids.clone(), |id| *id);
        assert_eq!(rows.len(), 2);
        assert_eq!(Page::parse(2, &token)?.after, Some(ids[1]));
        assert!(Page::parse(2, "not-a-token").is_err());
        assert!(Page::parse(-1, "").is_err());
        assert_eq!(Page::parse(5_000, "")?.size, MAX_PAGE_SIZE);
        Ok(())
    }
}
