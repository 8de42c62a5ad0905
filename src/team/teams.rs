//! Teams: named sets of members (a member may be in several). They route leads (the
//! assignment route `{"type":"team"}`) and scope content. Everyone reads them; admins and
//! members with `manage_members` create, change and delete them. A change of membership
//! records `member.updated` for each member whose `team_ids` changed.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{Db, Links, Tx};
use crate::error::{DbResultExt, Error, Result};
use crate::events::Work;
use crate::policy::Viewer;
use crate::policy::team::may_manage_teams;
use crate::views::team::{TeamView, TeamsPage};
use crate::{on_db, on_tx};

/// The most members one team may list.
pub const MAX_MEMBERS: usize = 1000;

/// A member's team ids, sorted (bind the user id).
pub const TEAMS_OF: &str = "SELECT team_id FROM team_members WHERE user_id = $1 ORDER BY team_id";

const MEMBERSHIP: Links = Links { table: "team_members", from: "user_id", to: "team_id" };
const ROSTER: Links = Links { table: "team_members", from: "team_id", to: "user_id" };

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Team {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub member_ids: Vec<Uuid>,
}

impl Team {
    pub fn view(&self) -> TeamView {
        TeamView {
            id: self.id,
            name: self.name.clone(),
            member_ids: self.member_ids.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const COLS: &str = "id, workspace_id, name, created_at, updated_at";

fn require_manage(v: &Viewer) -> Result<()> {
    may_manage_teams(v).map_err(|_| Error::forbidden("forbidden", "managing teams needs the manage_members permission"))
}

fn validate_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::unprocessable("invalid_name", "name must have 1 to 100 characters"));
    }
    Ok(name.to_owned())
}

/// For each of `members`, the teams they are in (sorted), in one query.
pub async fn teams_of(db: &Db, members: &[Uuid]) -> Result<HashMap<Uuid, Vec<Uuid>>> {
    Ok(crate::db::linked(db, MEMBERSHIP, members).await?)
}

/// The teams `user_id` is in, sorted.
pub async fn of_member(db: &Db, user_id: Uuid) -> Result<Vec<Uuid>> {
    Ok(on_db!(db, |p| sqlx::query_scalar(TEAMS_OF).bind(user_id).fetch_all(p).await)?)
}

/// The members of team `id` (any status), sorted; empty for an unknown team.
pub async fn members_tx(tx: &mut Tx, id: Uuid) -> Result<Vec<Uuid>> {
    Ok(on_tx!(tx, |c| sqlx::query_scalar("SELECT user_id FROM team_members WHERE team_id = $1 ORDER BY user_id")
        .bind(id)
        .fetch_all(c)
        .await)?)
}

/// The ids among `ids` that are teams of `workspace_id`.
pub async fn existing_tx(tx: &mut Tx, workspace_id: Uuid, ids: &[Uuid]) -> Result<BTreeSet<Uuid>> {
    let mut found = BTreeSet::new();
    for id in ids {
        let hit: Option<Uuid> =
            on_tx!(tx, |c| sqlx::query_scalar("SELECT id FROM teams WHERE id = $1 AND workspace_id = $2")
                .bind(*id)
                .bind(workspace_id)
                .fetch_optional(c)
                .await)?;
        found.extend(hit);
    }
    Ok(found)
}

/// Checks that every team exists in the workspace; returns them sorted and deduplicated.
pub async fn check_teams(tx: &mut Tx, workspace_id: Uuid, ids: Vec<Uuid>) -> Result<Vec<Uuid>> {
    let ids = super::dedup(ids);
    let found = existing_tx(tx, workspace_id, &ids).await?;
    if let Some(missing) = ids.iter().find(|id| !found.contains(id)) {
        return Err(Error::unprocessable("unknown_team", format!("team {missing} does not exist")));
    }
    Ok(ids)
}

async fn check_members(tx: &mut Tx, workspace_id: Uuid, ids: Vec<Uuid>) -> Result<Vec<Uuid>> {
    let ids = super::dedup(ids);
    if ids.len() > MAX_MEMBERS {
        return Err(Error::unprocessable("too_many_members", format!("at most {MAX_MEMBERS} member_ids")));
    }
    for m in &ids {
        let found: Option<Uuid> =
            on_tx!(tx, |c| sqlx::query_scalar("SELECT id FROM users WHERE id = $1 AND workspace_id = $2")
                .bind(*m)
                .bind(workspace_id)
                .fetch_optional(c)
                .await)?;
        if found.is_none() {
            return Err(Error::unprocessable("unknown_member", format!("member {m} is not in this workspace")));
        }
    }
    Ok(ids)
}

/// Every team of a workspace with its members, by name.
pub async fn list(db: &Db, workspace_id: Uuid) -> Result<TeamsPage> {
    let sql = format!("SELECT {COLS} FROM teams WHERE workspace_id = $1 ORDER BY name, id LIMIT 1000");
    let mut rows: Vec<Team> = on_db!(db, |p| sqlx::query_as(&sql).bind(workspace_id).fetch_all(p).await)?;
    let ids: Vec<Uuid> = rows.iter().map(|t| t.id).collect();
    let mut rosters = crate::db::linked(db, ROSTER, &ids).await?;
    for t in &mut rows {
        t.member_ids = rosters.remove(&t.id).unwrap_or_default();
    }
    Ok(TeamsPage { teams: rows.iter().map(Team::view).collect(), next_cursor: None })
}

async fn load_tx(tx: &mut Tx, workspace_id: Uuid, id: Uuid) -> Result<Team> {
    let sql = format!("SELECT {COLS} FROM teams WHERE id = $1 AND workspace_id = $2");
    let mut team: Team = on_tx!(tx, |c| sqlx::query_as(&sql).bind(id).bind(workspace_id).fetch_optional(c).await)?
        .ok_or_else(Error::not_found)?;
    team.member_ids = members_tx(tx, id).await?;
    Ok(team)
}

/// Replaces the members of team `id`; announces every member who joined or left.
async fn set_members(work: &mut Work, ws: Uuid, id: Uuid, before: &[Uuid], after: &[Uuid]) -> Result<()> {
    on_tx!(work.tx(), |c| sqlx::query("DELETE FROM team_members WHERE team_id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    for m in after {
        on_tx!(work.tx(), |c| sqlx::query("INSERT INTO team_members (team_id, user_id) VALUES ($1, $2)")
            .bind(id)
            .bind(*m)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    let changed: BTreeSet<Uuid> =
        before.iter().chain(after).filter(|m| before.contains(m) != after.contains(m)).copied().collect();
    for m in changed {
        let member = super::load_tx(work.tx(), ws, m).await?;
        super::emit_updated(work, &member);
    }
    Ok(())
}

/// Creates a team in `v`'s workspace.
pub async fn create(work: &mut Work, v: &Viewer, name: &str, member_ids: Vec<Uuid>) -> Result<Team> {
    require_manage(v)?;
    let ws = v.workspace_id;
    let name = validate_name(name)?;
    let member_ids = check_members(work.tx(), ws, member_ids).await?;
    let now = work.now();
    let team = Team { id: Uuid::now_v7(), workspace_id: ws, name, created_at: now, updated_at: now, member_ids };
    on_tx!(work.tx(), |c| sqlx::query(
        "INSERT INTO teams (id, workspace_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(team.id)
    .bind(ws)
    .bind(&team.name)
    .bind(now)
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .on_unique("team_exists", "a team with that name already exists")?;
    set_members(work, ws, team.id, &[], &team.member_ids).await?;
    Ok(team)
}

/// Renames team `id` and/or replaces its members.
pub async fn change(
    work: &mut Work,
    v: &Viewer,
    id: Uuid,
    name: Option<String>,
    member_ids: Option<Vec<Uuid>>,
) -> Result<Team> {
    require_manage(v)?;
    let ws = v.workspace_id;
    let mut team = load_tx(work.tx(), ws, id).await?;
    if let Some(name) = name {
        team.name = validate_name(&name)?;
    }
    team.updated_at = work.now();
    on_tx!(work.tx(), |c| sqlx::query("UPDATE teams SET name = $1, updated_at = $2 WHERE id = $3")
        .bind(&team.name)
        .bind(team.updated_at)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .on_unique("team_exists", "a team with that name already exists")?;
    if let Some(ids) = member_ids {
        let ids = check_members(work.tx(), ws, ids).await?;
        set_members(work, ws, id, &team.member_ids, &ids).await?;
        team.member_ids = ids;
    }
    Ok(team)
}

/// Deletes team `id`: its members leave it, content scoped to it loses it, an assignment route
/// to it assigns nobody until the rule is changed.
pub async fn delete(work: &mut Work, v: &Viewer, id: Uuid) -> Result<()> {
    require_manage(v)?;
    let ws = v.workspace_id;
    let team = load_tx(work.tx(), ws, id).await?;
    set_members(work, ws, id, &team.member_ids, &[]).await?;
    on_tx!(work.tx(), |c| sqlx::query("DELETE FROM teams WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
