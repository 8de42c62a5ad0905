//! `switchboard backup --out FILE`: a consistent copy of a SQLite database, taken while the
//! server runs. `VACUUM INTO` reads one snapshot (WAL readers never block the writer, nor the
//! writer them) and writes a compact database file; the copy is then opened and must pass
//! `PRAGMA integrity_check`. PostgreSQL has its own tools: `pg_dump`.

use std::path::Path;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// Writes the copy to `out` (which must not exist yet) and checks it.
pub async fn run(database_url: &str, out: &Path) -> anyhow::Result<()> {
    if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        anyhow::bail!(
            "backup copies SQLite databases; for PostgreSQL use its own tools, e.g. \
             `pg_dump --format=custom --file=switchboard.dump \"$DATABASE_URL\"` (restore with pg_restore)"
        );
    }
    anyhow::ensure!(database_url.starts_with("sqlite:"), "DATABASE_URL must start with sqlite:// or postgres://");
    anyhow::ensure!(!out.exists(), "{} exists already: backup never overwrites a file", out.display());
    let target = out.to_str().ok_or_else(|| anyhow::anyhow!("the output path must be UTF-8"))?;
    // The live database: never created here, only read.
    let opts = database_url
        .parse::<SqliteConnectOptions>()?
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::from_secs(30));
    let mut conn =
        SqliteConnection::connect_with(&opts).await.map_err(|e| anyhow::anyhow!("cannot open {database_url}: {e}"))?;
    sqlx::query("VACUUM INTO $1").bind(target).execute(&mut conn).await?;
    conn.close().await?;
    check(out).await
}

/// Opens a copy read-only and runs `PRAGMA integrity_check` on it.
pub async fn check(file: &Path) -> anyhow::Result<()> {
    let opts = SqliteConnectOptions::new().filename(file).read_only(true);
    let mut conn = SqliteConnection::connect_with(&opts).await?;
    let verdict: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&mut conn).await?;
    conn.close().await?;
    anyhow::ensure!(verdict == ["ok"], "the copy at {} fails its integrity check: {verdict:?}", file.display());
    Ok(())
}
