//! Rows of a two-column link table, gathered per id: a lead's groups, a member's granted
//! labels, a conversation's labels or explicitly given members.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Db, Tx};

/// A link table: each row links `from` to `to`, and its key starts with `from`.
#[derive(Clone, Copy)]
pub struct Links {
    pub table: &'static str,
    pub from: &'static str,
    pub to: &'static str,
}

/// For each of `ids`, the ids linked to it (sorted), in one query.
pub async fn linked(db: &Db, links: Links, ids: &[Uuid]) -> sqlx::Result<HashMap<Uuid, Vec<Uuid>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = match db {
        Db::Postgres(p) => rows_pg(p, links, ids).await?,
        Db::Sqlite(s) => rows_sqlite(&s.pool, links, ids).await?,
    };
    Ok(by_id(rows))
}

/// [`linked`] inside a transaction.
pub async fn linked_in(tx: &mut Tx, links: Links, ids: &[Uuid]) -> sqlx::Result<HashMap<Uuid, Vec<Uuid>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = match tx {
        Tx::Postgres(t) => rows_pg(&mut **t, links, ids).await?,
        Tx::Sqlite(t, _) => rows_sqlite(&mut **t, links, ids).await?,
    };
    Ok(by_id(rows))
}

fn by_id(rows: Vec<(Uuid, Uuid)>) -> HashMap<Uuid, Vec<Uuid>> {
    let mut map: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (from, to) in rows {
        map.entry(from).or_default().push(to);
    }
    map
}

/// PostgreSQL joins an array of the ids to the key, one index probe per id. An `IN` list of a
/// page of ids was costed as a scan of the whole table (500 leads' groups: 6–8 ms at 100k
/// leads); an array's estimate (10 rows) keeps the probes. One text for any number of ids.
async fn rows_pg<'e>(e: impl sqlx::PgExecutor<'e>, l: Links, ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let sql = format!(
        "SELECT t.{from}, t.{to} FROM UNNEST($1::uuid[]) AS x(id) JOIN {table} t ON t.{from} = x.id ORDER BY t.{to}",
        table = l.table,
        from = l.from,
        to = l.to
    );
    sqlx::query_as(&sql).bind(ids).fetch_all(e).await
}

/// SQLite probes the key for each id of an `IN` list (callers pass at most a page or a team).
async fn rows_sqlite<'e>(e: impl sqlx::SqliteExecutor<'e>, l: Links, ids: &[Uuid]) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let mut qb = sqlx::QueryBuilder::new(format!("SELECT {}, {} FROM {} WHERE {} IN (", l.from, l.to, l.table, l.from));
    super::push_ids(&mut qb, ids);
    qb.push(format!(") ORDER BY {}", l.to));
    qb.build_query_as().fetch_all(e).await
}
