//! Fixed SQL text kept as a prepared statement, as diesel keeps the queries
//! its builder makes.

use diesel::{
    QueryResult,
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
};

/// `sql_query(...)` with its binds, prepared once per connection and reused.
/// diesel cannot know that raw SQL text never changes, so it prepares it
/// afresh on every call: an extra round trip and a fresh parse and plan for
/// each statement. Wrap only SQL whose text is fixed (a string literal), or
/// the statement cache would grow with every variant, and that names the
/// columns it returns: PostgreSQL refuses a kept statement whose `*` a
/// migration has since widened.
#[derive(Debug, Clone)]
pub struct Cached<Q>(pub Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Cached<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: Query> Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> QueryId for Cached<Q> {
    type QueryId = ();
    // Cached by its SQL text and bind types, as raw SQL has no type of its own.
    const HAS_STATIC_QUERY_ID: bool = false;
}
