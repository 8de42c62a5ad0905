//! Workspaces: creation by `bootstrap`, and the per-workspace settings admins change (the
//! handlers are in [`http`]).

pub mod http;

use uuid::Uuid;

use crate::auth::password;
use crate::clock::Clock;
use crate::db::{Db, Tx};
use crate::error::{DbResultExt, Error, Result};
use crate::policy::Permissions;
use crate::views::workspace::WorkspaceView;
use crate::{on_db, on_tx};

/// What `bootstrap` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    Created,
    AdminAdded,
    AlreadyPresent,
}

impl std::fmt::Display for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bootstrap::Created => "created the workspace and its admin",
            Bootstrap::AdminAdded => "workspace existed; added the admin",
            Bootstrap::AlreadyPresent => "workspace and admin already exist; nothing changed",
        })
    }
}

pub fn validate_email(raw: &str) -> Result<String> {
    let email = raw.trim().to_lowercase();
    let ok = email.len() <= 254
        && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !email.chars().any(char::is_whitespace);
    if ok { Ok(email) } else { Err(Error::unprocessable("invalid_email", "email is not a valid address")) }
}

pub fn validate_name(raw: &str, what: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::unprocessable("invalid_name", format!("{what} must have 1 to 200 characters")));
    }
    Ok(name.to_owned())
}

/// Creates the workspace and its admin when missing. Idempotent: a second run changes nothing.
pub async fn bootstrap(
    db: &Db,
    clock: &Clock,
    workspace: &str,
    email: &str,
    pass: &str,
    name: Option<&str>,
) -> Result<Bootstrap> {
    let workspace = validate_name(workspace, "workspace name")?;
    let email = validate_email(email)?;
    password::validate(pass)?;
    let name = match name {
        Some(n) => validate_name(n, "name")?,
        None => email.split('@').next().unwrap_or("admin").to_owned(),
    };
    let hash = password::hash(pass.to_owned()).await?;
    let now = clock.now();
    let mut tx = db.begin().await?;
    let existing: Option<Uuid> = on_tx!(&mut tx, |c| sqlx::query_scalar("SELECT id FROM workspaces WHERE name = $1")
        .bind(&workspace)
        .fetch_optional(c)
        .await)?;
    let (workspace_id, created) = match existing {
        Some(id) => (id, false),
        None => {
            let id = Uuid::now_v7();
            on_tx!(&mut tx, |c| sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(&workspace)
                .bind(now)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            (id, true)
        }
    };
    let user: Option<(Uuid, Uuid)> =
        on_tx!(&mut tx, |c| sqlx::query_as("SELECT id, workspace_id FROM users WHERE email = $1")
            .bind(&email)
            .fetch_optional(c)
            .await)?;
    let outcome = match user {
        Some((_, ws)) if ws == workspace_id => Bootstrap::AlreadyPresent,
        Some(_) => {
            return Err(Error::conflict("email_taken", "that email already belongs to another workspace"));
        }
        None => {
            on_tx!(&mut tx, |c| {
                sqlx::query(
                "INSERT INTO users (id, workspace_id, email, name, role, status, password_hash, permissions, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'admin', 'active', $5, $6, $7, $7)"
            )
            .bind(Uuid::now_v7())
            .bind(workspace_id)
            .bind(&email)
            .bind(&name)
            .bind(&hash)
            .bind(sqlx::types::Json(Permissions::default()))
            .bind(now)
            .execute(c)
            .await.map(|r| r.rows_affected())
            })?;
            if created { Bootstrap::Created } else { Bootstrap::AdminAdded }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// `switchboard bootstrap`: connects, migrates, bootstraps; errors are readable sentences.
pub async fn bootstrap_cli(
    url: &str,
    workspace: &str,
    email: &str,
    pass: &str,
    name: Option<&str>,
) -> anyhow::Result<Bootstrap> {
    let db = Db::connect(url).await?;
    db.migrate().await?;
    let outcome = bootstrap(&db, &Clock::default(), workspace, email, pass, name).await.map_err(|e| match e {
        Error::Client { message, .. } => anyhow::anyhow!(message),
        other => anyhow::anyhow!(other),
    });
    db.close().await;
    outcome
}

const GET: &str = "SELECT id, name, session_gap_secs FROM workspaces WHERE id = $1";

/// A workspace's settings.
pub async fn get(db: &Db, workspace_id: Uuid) -> Result<WorkspaceView> {
    Ok(on_db!(db, |p| sqlx::query_as(GET).bind(workspace_id).fetch_one(p).await)?)
}

/// A change to a workspace's settings (each part optional).
#[derive(Debug, Default)]
pub struct Settings {
    pub session_gap_secs: Option<i64>,
    pub name: Option<String>,
}

/// Validates and applies `s` (the caller checked that the viewer may change settings);
/// returns the settings before and after.
pub async fn update(tx: &mut Tx, workspace_id: Uuid, s: Settings) -> Result<(WorkspaceView, WorkspaceView)> {
    let before: WorkspaceView = on_tx!(tx, |c| sqlx::query_as(GET).bind(workspace_id).fetch_one(c).await)?;
    if let Some(gap) = s.session_gap_secs {
        if !(60..=7 * 86_400).contains(&gap) {
            return Err(Error::unprocessable("invalid_session_gap", "session_gap_secs must be between 60 and 604800"));
        }
        on_tx!(tx, |c| sqlx::query("UPDATE workspaces SET session_gap_secs = $1 WHERE id = $2")
            .bind(gap)
            .bind(workspace_id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    if let Some(name) = s.name {
        let name = validate_name(&name, "workspace name")?;
        on_tx!(tx, |c| sqlx::query("UPDATE workspaces SET name = $1 WHERE id = $2")
            .bind(&name)
            .bind(workspace_id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .on_unique("name_taken", "another workspace has that name")?;
    }
    let after: WorkspaceView = on_tx!(tx, |c| sqlx::query_as(GET).bind(workspace_id).fetch_one(c).await)?;
    Ok((before, after))
}

/// The session gap in force for a workspace: the operator's override (`configured`) wins.
pub async fn session_gap(db: &Db, configured: Option<i64>, workspace_id: Uuid) -> Result<i64> {
    if let Some(gap) = configured {
        return Ok(gap);
    }
    let gap: i64 = on_db!(db, |p| sqlx::query_scalar("SELECT session_gap_secs FROM workspaces WHERE id = $1")
        .bind(workspace_id)
        .fetch_one(p)
        .await)?;
    Ok(gap)
}

/// A new workspace and its first admin, created together in `tx` (by someone accepting an
/// agency's invitation without an account). The name and the email must be new (409).
/// Returns (workspace id, admin id).
pub async fn create_with_admin(
    tx: &mut Tx,
    now: chrono::DateTime<chrono::Utc>,
    workspace: &str,
    email: &str,
    name: &str,
    password_hash: &str,
) -> Result<(Uuid, Uuid)> {
    let workspace_id = Uuid::now_v7();
    on_tx!(tx, |c| sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(workspace_id)
        .bind(workspace)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .on_unique("name_taken", "another workspace has that name")?;
    let user_id = Uuid::now_v7();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO users (id, workspace_id, email, name, role, status, password_hash, permissions, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, 'admin', 'active', $5, $6, $7, $7)"
    )
    .bind(user_id)
    .bind(workspace_id)
    .bind(email)
    .bind(name)
    .bind(password_hash)
    .bind(sqlx::types::Json(Permissions::default()))
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .on_unique("email_taken", "an account with that email exists: sign in and accept")?;
    Ok((workspace_id, user_id))
}
