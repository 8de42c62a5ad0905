//! Agencies: a workspace in agency mode invites its clients by the email of the client
//! workspace's admin; once that admin accepts, the agency's admins read (never write) the
//! client's leads, a lead with its timeline, and the team report, until either side unlinks.
//!
//! A client entry moves `invited` → `managing` (accepted) → `not_linked` (unlinked from either
//! side), `invited` → `not_linked` (cancelled), `not_linked` → `invited` (resent), and a
//! `not_linked` entry may be removed. Who may do each, and the read-only reader of a client,
//! are in `policy::agency`; the handlers are in [`http`]. Links and unlinks are audited in both
//! workspaces (`agency.linked`, `agency.unlinked`).

pub mod http;

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::{self, AuditAction, AuditEntry, AuditTarget, Changes};
use crate::auth::token;
use crate::db::{Db, Tx, cursor};
use crate::error::{DbResultExt, Error, Result};
use crate::inbox::leads::{self, ListFilter};
use crate::mail::{self, Mail};
use crate::policy::Viewer;
use crate::policy::agency::{self as rules, AgencyDenied, AgencyReader, ClientStatus, Removal};
use crate::reports;
use crate::timeline::read as timeline_read;
use crate::views::agency::{
    AcceptedView, AgencyLeadDetail, AgencyLeadView, AgencyLeadsPage, AgencyView, ClientInvitationView, ClientStats,
    ClientView, ClientsPage, ManagedBy, WorkspaceRef,
};
use crate::views::conversation::ConversationStatus;
use crate::views::report::TeamReport;
use crate::{on_db, on_tx};

/// How long an agency's accept token works.
pub const INVITATION_TTL: chrono::Duration = chrono::Duration::days(7);

/// The answer to a refused agency action.
pub fn denied(d: AgencyDenied) -> Error {
    match d {
        AgencyDenied::AdminOnly => Error::forbidden("forbidden", "only an admin may do this"),
        AgencyDenied::OtherEmail => {
            Error::forbidden("other_email", "this invitation is for the admin with another email")
        }
        AgencyDenied::WrongStatus => Error::not_found(),
    }
}

fn conflict_status(what: &str) -> Error {
    Error::conflict("invalid_status", format!("this client entry can't be {what} in its status"))
}

const AGENCY: &str = "SELECT id, workspace_id, name, created_at FROM agencies WHERE workspace_id = $1";

/// The agency of `v`'s workspace, once `v` may act for it (403 otherwise; 404 when the
/// workspace is no agency).
pub async fn of(db: &Db, v: &Viewer) -> Result<AgencyView> {
    rules::may_act_for_agency(v).map_err(denied)?;
    let found: Option<AgencyView> =
        on_db!(db, |p| sqlx::query_as(AGENCY).bind(v.workspace_id).fetch_optional(p).await)?;
    found
        .ok_or_else(|| Error::client(axum::http::StatusCode::NOT_FOUND, "not_an_agency", "this workspace is no agency"))
}

/// Makes `v`'s workspace an agency named `name` (409 when it already is one).
pub async fn make(tx: &mut Tx, v: &Viewer, name: &str, now: DateTime<Utc>) -> Result<AgencyView> {
    rules::may_act_for_agency(v).map_err(denied)?;
    let id = Uuid::now_v7();
    on_tx!(tx, |c| sqlx::query("INSERT INTO agencies (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(v.workspace_id)
        .bind(name)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .on_unique("already_an_agency", "this workspace is an agency already")?;
    Ok(AgencyView { id, workspace_id: v.workspace_id, name: name.to_owned(), created_at: now })
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct EntryRow {
    id: Uuid,
    agency_id: Uuid,
    email: String,
    name: String,
    status: ClientStatus,
    client_workspace_id: Option<Uuid>,
    client_name: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    invited_at: DateTime<Utc>,
    linked_at: Option<DateTime<Utc>>,
}

const ENTRY_COLS: &str = "e.id, e.agency_id, e.email, e.name, e.status, e.client_workspace_id, \
    (SELECT w.name FROM workspaces w WHERE w.id = e.client_workspace_id) AS client_name, e.expires_at, e.invited_at, \
    e.linked_at";

static ENTRY: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {ENTRY_COLS} FROM agency_clients e WHERE e.id = $1 AND e.agency_id = $2"));

impl EntryRow {
    fn view(&self, stats: Option<ClientStats>) -> ClientView {
        ClientView {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            status: self.status,
            workspace: match (self.client_workspace_id, &self.client_name) {
                (Some(id), Some(name)) => Some(WorkspaceRef { id, name: name.clone() }),
                _ => None,
            },
            invited_at: self.invited_at,
            linked_at: self.linked_at,
            stats: (self.status == ClientStatus::Managing).then(|| stats.unwrap_or_default()),
        }
    }
}

async fn entry_tx(tx: &mut Tx, agency: &AgencyView, id: Uuid) -> Result<EntryRow> {
    on_tx!(tx, |c| sqlx::query_as(ENTRY.as_str()).bind(id).bind(agency.id).fetch_optional(c).await)?
        .ok_or_else(Error::not_found)
}

async fn entry(db: &Db, agency: &AgencyView, id: Uuid) -> Result<EntryRow> {
    on_db!(db, |p| sqlx::query_as(ENTRY.as_str()).bind(id).bind(agency.id).fetch_optional(p).await)?
        .ok_or_else(Error::not_found)
}

/// Sets a new accept token on entry `id` (status `invited`); returns (token, expiry).
async fn issue_token(tx: &mut Tx, id: Uuid, now: DateTime<Utc>) -> Result<(String, DateTime<Utc>)> {
    let (token, hash) = token::generate();
    let expires_at = now + INVITATION_TTL;
    on_tx!(tx, |c| sqlx::query(
        "UPDATE agency_clients SET status = $1, token_hash = $2, expires_at = $3, invited_at = $4, updated_at = $4 \
         WHERE id = $5"
    )
    .bind(ClientStatus::Invited)
    .bind(&hash)
    .bind(expires_at)
    .bind(now)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok((token, expires_at))
}

/// Invites a client by its admin's email (409 when the agency has an entry for that email).
pub async fn invite(
    tx: &mut Tx,
    v: &Viewer,
    agency: &AgencyView,
    email: &str,
    name: &str,
    now: DateTime<Utc>,
) -> Result<ClientInvitationView> {
    rules::may_act_for_agency(v).map_err(denied)?;
    let own: Option<Uuid> =
        on_tx!(tx, |c| sqlx::query_scalar("SELECT id FROM users WHERE email = $1 AND workspace_id = $2")
            .bind(email)
            .bind(v.workspace_id)
            .fetch_optional(c)
            .await)?;
    if own.is_some() {
        return Err(Error::unprocessable("own_workspace", "that email belongs to this agency's own workspace"));
    }
    let id = Uuid::now_v7();
    on_tx!(tx, |c| sqlx::query(
        "INSERT INTO agency_clients (id, agency_id, email, name, status, invited_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)"
    )
    .bind(id)
    .bind(agency.id)
    .bind(email)
    .bind(name)
    .bind(ClientStatus::Invited)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .on_unique("client_exists", "this agency has a client entry for that email already")?;
    let (token, expires_at) = issue_token(tx, id, now).await?;
    let row = entry_tx(tx, agency, id).await?;
    Ok(ClientInvitationView { client: row.view(None), accept_token: token, expires_at })
}

/// A new accept token for entry `id` (`invited` or `not_linked`; the old token stops working).
pub async fn resend(
    tx: &mut Tx,
    v: &Viewer,
    agency: &AgencyView,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<ClientInvitationView> {
    rules::may_act_for_agency(v).map_err(denied)?;
    let row = entry_tx(tx, agency, id).await?;
    rules::may_resend(row.status).map_err(|_| conflict_status("resent"))?;
    let (token, expires_at) = issue_token(tx, id, now).await?;
    let row = entry_tx(tx, agency, id).await?;
    Ok(ClientInvitationView { client: row.view(None), accept_token: token, expires_at })
}

/// `DELETE`: cancels an invitation (`invited` → `not_linked`) or removes a `not_linked` entry.
pub async fn delete(tx: &mut Tx, v: &Viewer, agency: &AgencyView, id: Uuid, now: DateTime<Utc>) -> Result<Removal> {
    rules::may_act_for_agency(v).map_err(denied)?;
    let row = entry_tx(tx, agency, id).await?;
    let removal = rules::removal(row.status).map_err(|_| conflict_status("cancelled or removed (unlink it)"))?;
    match removal {
        Removal::Cancel => set_not_linked(tx, id, ClientStatus::Invited, now).await?,
        Removal::Remove => {
            on_tx!(tx, |c| sqlx::query("DELETE FROM agency_clients WHERE id = $1 AND status = $2")
                .bind(id)
                .bind(ClientStatus::NotLinked)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
        }
    }
    Ok(removal)
}

/// Moves entry `id` from `from` to `not_linked`, killing any token (409 when it moved meanwhile).
async fn set_not_linked(tx: &mut Tx, id: Uuid, from: ClientStatus, now: DateTime<Utc>) -> Result<()> {
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE agency_clients SET status = $1, token_hash = NULL, expires_at = NULL, updated_at = $2 \
         WHERE id = $3 AND status = $4"
    )
    .bind(ClientStatus::NotLinked)
    .bind(now)
    .bind(id)
    .bind(from)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if n != 1 {
        return Err(conflict_status("changed"));
    }
    Ok(())
}

/// The audit entries of a link or unlink: one in each workspace.
async fn audit_both(
    tx: &mut Tx,
    now: DateTime<Utc>,
    actor: Uuid,
    action: AuditAction,
    agency: (Uuid, Uuid),
    client_ws: Uuid,
    e: &EntryRow,
) -> Result<()> {
    let (agency_id, agency_ws) = agency;
    let to = if action == AuditAction::AgencyLinked { ClientStatus::Managing } else { ClientStatus::NotLinked };
    let changes = Changes::new()
        .field("status", e.status, to)
        .field("client_workspace_id", None::<Uuid>, client_ws)
        .field("email", None::<String>, &e.email);
    for ws in [agency_ws, client_ws] {
        let entry = AuditEntry::new(ws, actor, action).target(AuditTarget::Agency, agency_id).changes(changes.clone());
        audit::record_tx(tx, now, entry).await?;
    }
    Ok(())
}

/// Unlink from the agency's side: `managing` → `not_linked`.
pub async fn unlink(tx: &mut Tx, v: &Viewer, agency: &AgencyView, id: Uuid, now: DateTime<Utc>) -> Result<ClientView> {
    rules::may_act_for_agency(v).map_err(denied)?;
    let row = entry_tx(tx, agency, id).await?;
    rules::may_unlink(row.status).map_err(|_| conflict_status("unlinked"))?;
    set_not_linked(tx, id, ClientStatus::Managing, now).await?;
    let client_ws = row.client_workspace_id.ok_or_else(Error::not_found)?;
    let ids = (agency.id, agency.workspace_id);
    audit_both(tx, now, v.user_id, AuditAction::AgencyUnlinked, ids, client_ws, &row).await?;
    Ok(entry_tx(tx, agency, id).await?.view(None))
}

/// A live agency invitation found by its accept token.
pub struct Usable {
    entry: EntryRow,
    agency: AgencyView,
}

impl Usable {
    pub fn email(&self) -> &str {
        &self.entry.email
    }
    pub fn agency_workspace(&self) -> Uuid {
        self.agency.workspace_id
    }
}

fn gone() -> Error {
    Error::gone("invitation_gone", "this invitation was cancelled, already used or has expired")
}

/// The invitation whose token this is, while it may be accepted at `now` (410 otherwise).
pub async fn usable(db: &Db, accept_token: &str, now: DateTime<Utc>) -> Result<Usable> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT {ENTRY_COLS} FROM agency_clients e WHERE e.token_hash = $1"));
    let hash = token::digest(accept_token.trim());
    let found: Option<EntryRow> = on_db!(db, |p| sqlx::query_as(SQL.as_str()).bind(&hash).fetch_optional(p).await)?;
    let entry = found
        .filter(|e| e.status == ClientStatus::Invited && e.expires_at.is_some_and(|x| x > now))
        .ok_or_else(gone)?;
    let agency: AgencyView =
        on_db!(db, |p| sqlx::query_as("SELECT id, workspace_id, name, created_at FROM agencies WHERE id = $1")
            .bind(entry.agency_id)
            .fetch_one(p)
            .await)?;
    Ok(Usable { entry, agency })
}

/// Links the invitation's agency to `v`'s workspace, `v` being an admin there with the invited
/// email (403 otherwise; 409 when another agency manages the workspace already).
pub async fn accept(
    tx: &mut Tx,
    v: &Viewer,
    caller_email: &str,
    inv: Usable,
    now: DateTime<Utc>,
) -> Result<AcceptedView> {
    rules::may_accept(v, caller_email, &inv.entry.email).map_err(denied)?;
    if v.workspace_id == inv.agency.workspace_id {
        return Err(Error::unprocessable("own_agency", "an agency can't manage its own workspace"));
    }
    let n = on_tx!(tx, |c| sqlx::query(
        "UPDATE agency_clients SET status = $1, client_workspace_id = $2, linked_at = $3, token_hash = NULL, \
         expires_at = NULL, updated_at = $3 WHERE id = $4 AND status = $5"
    )
    .bind(ClientStatus::Managing)
    .bind(v.workspace_id)
    .bind(now)
    .bind(inv.entry.id)
    .bind(ClientStatus::Invited)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .on_unique("already_managed", "another agency manages this workspace: unlink it first")?;
    if n != 1 {
        return Err(gone());
    }
    let ids = (inv.agency.id, inv.agency.workspace_id);
    audit_both(tx, now, v.user_id, AuditAction::AgencyLinked, ids, v.workspace_id, &inv.entry).await?;
    let name = mail::workspace_name(tx, v.workspace_id).await?;
    Ok(AcceptedView {
        workspace: WorkspaceRef { id: v.workspace_id, name },
        managed_by: ManagedBy { agency_id: inv.agency.id, name: inv.agency.name },
    })
}

const MANAGED_BY: &str = "SELECT a.id AS agency_id, a.name FROM agency_clients e JOIN agencies a ON a.id = e.agency_id \
    WHERE e.client_workspace_id = $1 AND e.status = $2";

/// Who manages workspace `ws` now, if anyone.
pub async fn managed_by(db: &Db, ws: Uuid) -> Result<Option<ManagedBy>> {
    Ok(on_db!(db, |p| sqlx::query_as(MANAGED_BY).bind(ws).bind(ClientStatus::Managing).fetch_optional(p).await)?)
}

/// Unlink from the client's side (`POST /workspace/unlink-agency`): 404 when no agency
/// manages `v`'s workspace.
pub async fn unlink_from_client(tx: &mut Tx, v: &Viewer, now: DateTime<Utc>) -> Result<()> {
    rules::may_unlink_from_client(v).map_err(denied)?;
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("SELECT {ENTRY_COLS} FROM agency_clients e WHERE e.client_workspace_id = $1 AND e.status = $2")
    });
    let row: EntryRow = on_tx!(tx, |c| sqlx::query_as(SQL.as_str())
        .bind(v.workspace_id)
        .bind(ClientStatus::Managing)
        .fetch_optional(c)
        .await)?
    .ok_or_else(Error::not_found)?;
    set_not_linked(tx, row.id, ClientStatus::Managing, now).await?;
    let agency_ws: Uuid = on_tx!(tx, |c| sqlx::query_scalar("SELECT workspace_id FROM agencies WHERE id = $1")
        .bind(row.agency_id)
        .fetch_one(c)
        .await)?;
    let ids = (row.agency_id, agency_ws);
    audit_both(tx, now, v.user_id, AuditAction::AgencyUnlinked, ids, v.workspace_id, &row).await
}

#[derive(sqlx::FromRow)]
struct StatsRow {
    leads: i64,
    uncontacted: i64,
    avg_first_response_secs: Option<i64>,
}

const STATS: &str = "SELECT COUNT(*) AS leads, \
    CAST(COALESCE(SUM(CASE WHEN f.contacted THEN 0 ELSE 1 END), 0) AS BIGINT) AS uncontacted, \
    CAST(AVG(f.first_response_secs) AS BIGINT) AS avg_first_response_secs \
    FROM leads l LEFT JOIN lead_facts f ON f.lead_id = l.id WHERE l.workspace_id = $1";

async fn stats(db: &Db, ws: Uuid) -> Result<ClientStats> {
    let r: StatsRow = on_db!(db, |p| sqlx::query_as(STATS).bind(ws).fetch_one(p).await)?;
    Ok(ClientStats { leads: r.leads, uncontacted: r.uncontacted, avg_first_response_secs: r.avg_first_response_secs })
}

static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ENTRY_COLS} FROM agency_clients e WHERE e.agency_id = $1 \
         AND ($2 IS NULL OR e.invited_at < $2 OR (e.invited_at = $2 AND e.id < $3)) \
         ORDER BY e.invited_at DESC, e.id DESC LIMIT $4"
    )
});

/// A page of the agency's clients, newest invitation first; managed ones with their counts.
pub async fn clients(
    db: &Db,
    v: &Viewer,
    agency: &AgencyView,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<ClientsPage> {
    rules::may_act_for_agency(v).map_err(denied)?;
    let mut rows: Vec<EntryRow> = on_db!(db, |p| sqlx::query_as(LIST.as_str())
        .bind(agency.id)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(limit + 1)
        .fetch_all(p)
        .await)?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|e| cursor::encode(e.invited_at, e.id))
    } else {
        None
    };
    let mut clients = Vec::with_capacity(rows.len());
    for r in &rows {
        let s = match (r.status, r.client_workspace_id) {
            (ClientStatus::Managing, Some(ws)) => Some(stats(db, ws).await?),
            _ => None,
        };
        clients.push(r.view(s));
    }
    Ok(ClientsPage { clients, next_cursor })
}

/// The reader of client entry `id`, while it is `managing` (404 in any other status).
pub async fn reader(db: &Db, v: &Viewer, agency: &AgencyView, id: Uuid) -> Result<AgencyReader> {
    let row = entry(db, agency, id).await?;
    rules::may_read_client(v, row.status, row.client_workspace_id).map_err(denied)
}

const CONV_STATUS: &str = "SELECT c.status FROM conversations c WHERE c.lead_id = $1 ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC LIMIT 1";

async fn with_status(db: &Db, lead: &leads::Lead) -> Result<AgencyLeadView> {
    let status: Option<ConversationStatus> =
        on_db!(db, |p| sqlx::query_scalar(CONV_STATUS).bind(lead.id).fetch_optional(p).await)?;
    Ok(AgencyLeadView { lead: lead.view(), status })
}

/// A page of the client's leads, read through the reader.
pub async fn read_leads(db: &Db, r: &AgencyReader, f: &ListFilter) -> Result<AgencyLeadsPage> {
    let v = r.read_viewer();
    let (rows, next_cursor) = leads::list(db, &v, f).await?;
    let mut out = Vec::with_capacity(rows.len());
    for l in &rows {
        out.push(with_status(db, l).await?);
    }
    Ok(AgencyLeadsPage { leads: out, next_cursor })
}

/// A client's lead with a page of its timeline, read through the reader.
pub async fn read_lead(
    db: &Db,
    r: &AgencyReader,
    lead_id: Uuid,
    f: &timeline_read::Filter,
    now: DateTime<Utc>,
) -> Result<AgencyLeadDetail> {
    let v = r.read_viewer();
    let lead = leads::get_visible(db, &v, lead_id).await?;
    let of = timeline_read::visible_lead(db, &v, lead_id).await?;
    let timeline = timeline_read::page(db, &v, of.lead_id, f, now).await?;
    Ok(AgencyLeadDetail { lead: with_status(db, &lead).await?, timeline })
}

/// The client's team report, read through the reader.
pub async fn read_report(
    db: &Db,
    r: &AgencyReader,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    group_id: Option<Uuid>,
) -> Result<TeamReport> {
    let f = reports::filter(db, r.client_workspace_id, from, to, group_id).await?;
    reports::team(db, &r.read_viewer(), "", f).await
}

/// The invitation mail (queued in `tx`; sent once it commits).
pub async fn queue_mail(
    tx: &mut Tx,
    agency: &AgencyView,
    inv: &ClientInvitationView,
    public_url: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let link = mail::public_link(public_url, &format!("#/agency-accept/{}", inv.accept_token));
    let intro = format!(
        "{} invites you to let them follow your leads on switchboard: they would read your leads, their \
         timelines and your team report, never change anything. You can unlink them at any time.",
        agency.name
    );
    let ask = "Sign in as the admin of your workspace (or create one) and accept:";
    let validity = format!("The link works for {} days.", INVITATION_TTL.num_days());
    let text = format!("{intro}\n\n{ask}\n{link}\n\n{validity}\n");
    let url = mail::escape_html(&link);
    let html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif; line-height: 1.5\">\n<p>{}</p>\n\
         <p>{}<br><a href=\"{url}\">{url}</a></p>\n<p>{}</p>\n</body></html>\n",
        mail::escape_html(&intro),
        mail::escape_html(ask),
        mail::escape_html(&validity)
    );
    let m = Mail {
        to: inv.client.email.clone(),
        subject: format!("{} asks to manage your workspace", agency.name),
        text,
        html,
    };
    mail::enqueue(tx, Some(agency.workspace_id), &m, now).await?;
    Ok(())
}
