//! WhatsApp sessions on the lead's timeline: a run of messages in one conversation with no gap
//! longer than the workspace's session gap becomes one `whatsapp_session` activity. Messages
//! are placed by WhatsApp's timestamp, so a late message extends or merges sessions. Only the
//! session a message touches is recomputed, from its own messages.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::db::Tx;
use crate::error::Result;
use crate::events::{Event, NewEvent, Work};
use crate::on_tx;
use crate::views::message::Direction;
use crate::views::timeline::{ActivityDeleted, ActivityKind, ActivityView};

pub const KIND: ActivityKind = ActivityKind::WhatsappSession;

/// Who started a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiator {
    Lead,
    Member,
}

/// One message as the session summary sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub at: DateTime<Utc>,
    pub inbound: bool,
    pub member: Option<Uuid>,
}

/// The summary of one session; `msgs` must be in time (then arrival) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub first_inbound_at: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub initiated_by: Initiator,
    pub messages_from_lead: i64,
    pub messages_from_member: i64,
    pub lead_responded: bool,
    pub member_responded: bool,
    pub first_response_seconds: Option<i64>,
    pub members: Vec<Uuid>,
}

pub fn summarize(msgs: &[Msg]) -> Option<Summary> {
    let first = msgs.first()?;
    let last = msgs.last()?;
    let mut s = Summary {
        first_inbound_at: None,
        started_at: first.at,
        ended_at: last.at,
        initiated_by: if first.inbound { Initiator::Lead } else { Initiator::Member },
        messages_from_lead: 0,
        messages_from_member: 0,
        lead_responded: false,
        member_responded: false,
        first_response_seconds: None,
        members: Vec::new(),
    };
    for m in msgs {
        s.push(m);
    }
    s.ended_at = last.at;
    Some(s)
}

impl Summary {
    /// Adds a message that comes after every message already summarised.
    pub fn push(&mut self, m: &Msg) {
        self.ended_at = m.at;
        if m.inbound {
            self.messages_from_lead += 1;
            self.first_inbound_at.get_or_insert(m.at);
            if self.messages_from_member > 0 {
                self.lead_responded = true;
            }
        } else {
            self.messages_from_member += 1;
            if let Some(fi) = self.first_inbound_at {
                self.member_responded = true;
                self.first_response_seconds.get_or_insert((m.at - fi).num_seconds());
            }
            if let Some(id) = m.member
                && !self.members.contains(&id)
            {
                self.members.push(id);
            }
        }
    }

    /// Reads back what [`Summary::to_data`] stored.
    fn from_data(v: &Value) -> Option<Summary> {
        Some(Summary {
            first_inbound_at: match v.get("first_inbound_at")? {
                Value::Null => None,
                other => Some(other.as_str()?.parse().ok()?),
            },
            started_at: time(v, "started_at")?,
            ended_at: time(v, "ended_at")?,
            initiated_by: Initiator::deserialize(&v["initiated_by"]).unwrap_or(Initiator::Member),
            messages_from_lead: v["messages_from_lead"].as_i64()?,
            messages_from_member: v["messages_from_member"].as_i64()?,
            lead_responded: v["lead_responded"].as_bool()?,
            member_responded: v["member_responded"].as_bool()?,
            first_response_seconds: v["first_response_seconds"].as_i64(),
            members: serde_json::from_value(v["members"].clone()).ok()?,
        })
    }
}

/// Splits time-ordered messages into sessions (the full recomputation the incremental path
/// must agree with).
pub fn split(msgs: &[Msg], gap_secs: i64) -> Vec<Summary> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=msgs.len() {
        if i == msgs.len() || (msgs[i].at - msgs[i - 1].at).num_seconds() > gap_secs {
            out.extend(summarize(&msgs[start..i]));
            start = i;
        }
    }
    out
}

/// The `data` of a `whatsapp_session` activity.
#[derive(Serialize)]
struct SessionData<'a> {
    first_inbound_at: Option<DateTime<Utc>>,
    conversation_id: Uuid,
    number_id: Uuid,
    started_at: DateTime<Utc>,
    ended_at: DateTime<Utc>,
    initiated_by: Initiator,
    messages_from_lead: i64,
    messages_from_member: i64,
    lead_responded: bool,
    member_responded: bool,
    first_response_seconds: Option<i64>,
    members: &'a [Uuid],
    gap_secs: i64,
    open: bool,
}

impl Summary {
    pub fn to_data(&self, conversation_id: Uuid, number_id: Uuid, gap_secs: i64, now: DateTime<Utc>) -> Value {
        let data = SessionData {
            first_inbound_at: self.first_inbound_at,
            conversation_id,
            number_id,
            started_at: self.started_at,
            ended_at: self.ended_at,
            initiated_by: self.initiated_by,
            messages_from_lead: self.messages_from_lead,
            messages_from_member: self.messages_from_member,
            lead_responded: self.lead_responded,
            member_responded: self.member_responded,
            first_response_seconds: self.first_response_seconds,
            members: &self.members,
            gap_secs,
            open: (now - self.ended_at).num_seconds() <= gap_secs,
        };
        serde_json::to_value(data).expect("session data serialises")
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    data: sqlx::types::Json<Value>,
}

fn time(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    v.get(key)?.as_str()?.parse().ok()
}

/// The conversation a message belongs to, as the session summary needs it.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct ConvRef {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub lead_id: Uuid,
    pub number_id: Uuid,
    pub assignee_id: Option<Uuid>,
}

/// Places a new message in conversation `conv`: creates, extends or merges the session
/// activities it touches, and emits their timeline events. A message after the end of the one
/// session it touches (the usual case) is added to the stored summary; anything else (late,
/// out of order, bridging two sessions) recomputes that session from its messages.
pub async fn on_message(w: &mut Work, conv: Uuid, msg: &Msg, gap_secs: i64) -> Result<()> {
    let conv: ConvRef = on_tx!(w.tx(), |c| sqlx::query_as(
        "SELECT id, workspace_id, lead_id, number_id, assignee_id FROM conversations WHERE id = $1"
    )
    .bind(conv)
    .fetch_one(c)
    .await)?;
    place(w, &conv, msg, gap_secs).await
}

/// Sessions read per lookup; when all of them are touched, every session is read.
const NEARBY: i64 = 4;

/// The session activities of `conv` that a message at `at` touches (it lies within `gap` of
/// them), oldest first. Sessions never overlap, so the touched ones are the newest of those
/// that start before `at + gap`; usually one or two rows are read (via the lead's index).
async fn touched_sessions(
    tx: &mut Tx,
    conv: &ConvRef,
    at: DateTime<Utc>,
    gap: chrono::Duration,
) -> Result<Vec<(SessionRow, DateTime<Utc>, DateTime<Utc>)>> {
    const SQL: &str = "SELECT id, data FROM activities WHERE lead_id = $1 AND conversation_id = $2 \
        AND type = 'whatsapp_session' AND created_at <= $3 ORDER BY created_at DESC, seq DESC LIMIT $4";
    let mut limit = NEARBY;
    loop {
        let rows: Vec<SessionRow> = on_tx!(tx, |c| sqlx::query_as(SQL)
            .bind(conv.lead_id)
            .bind(conv.id)
            .bind(at + gap)
            .bind(limit)
            .fetch_all(c)
            .await)?;
        let all_read = (rows.len() as i64) < limit;
        let n = rows.len();
        let mut touched: Vec<_> = rows
            .into_iter()
            .filter_map(|r| {
                let (start, end) = (time(&r.data, "started_at")?, time(&r.data, "ended_at")?);
                Some((r, start, end))
            })
            .filter(|(_, start, end)| *start - gap <= at && at <= *end + gap)
            .collect();
        if all_read || touched.len() < n {
            touched.reverse();
            return Ok(touched);
        }
        limit = i64::MAX;
    }
}

/// [`on_message`] for a caller that already holds the conversation.
pub async fn place(w: &mut Work, conv: &ConvRef, msg: &Msg, gap_secs: i64) -> Result<()> {
    let now = w.now();
    let tx = w.tx();
    let at = msg.at;
    let (workspace_id, lead_id, number_id, assignee) =
        (conv.workspace_id, conv.lead_id, conv.number_id, conv.assignee_id);
    let gap = chrono::Duration::seconds(gap_secs);
    let rows = touched_sessions(tx, conv, at, gap).await?;
    let touched: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> = rows.iter().map(|(r, s, e)| (r.id, *s, *e)).collect();
    let appended = match rows.as_slice() {
        [(row, _, end)] if at >= *end => Summary::from_data(&row.data).map(|mut s| {
            s.push(msg);
            s
        }),
        _ => None,
    };
    let summary = match appended {
        Some(s) => s,
        None => match recompute(tx, conv.id, at, &touched).await? {
            Some(s) => s,
            None => return Ok(()),
        },
    };
    let member_id = summary.members.first().copied().or(assignee);
    let data = summary.to_data(conv.id, number_id, gap_secs, now);
    let (kept, merged) = match touched.split_first() {
        Some((first, rest)) => (Some(first.0), rest.iter().map(|t| t.0).collect::<Vec<_>>()),
        None => (None, Vec::new()),
    };
    for id in &merged {
        on_tx!(w.tx(), |c| sqlx::query("DELETE FROM activities WHERE id = $1")
            .bind(*id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        let deleted = ActivityDeleted { id: *id, lead_id, merged_into: kept };
        w.emit(NewEvent::new(workspace_id, Event::TimelineDeleted(deleted)).lead(lead_id).conversation(conv.id));
    }
    let tx = w.tx();
    let (id, created) = match kept {
        Some(id) => {
            on_tx!(tx, |c| sqlx::query(
                "UPDATE activities SET data = $1, member_id = $2, created_at = $3, updated_at = $4 WHERE id = $5"
            )
            .bind(sqlx::types::Json(&data))
            .bind(member_id)
            .bind(summary.started_at)
            .bind(now)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            (id, false)
        }
        None => {
            let id = Uuid::now_v7();
            on_tx!(tx, |c| {
                sqlx::query(
                "INSERT INTO activities (id, workspace_id, lead_id, conversation_id, type, member_id, data, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'whatsapp_session', $5, $6, $7, $8)"
            )
            .bind(id)
            .bind(workspace_id)
            .bind(lead_id)
            .bind(conv.id)
            .bind(member_id)
            .bind(sqlx::types::Json(&data))
            .bind(summary.started_at)
            .bind(now)
            .execute(c)
            .await
            .map(|r| r.rows_affected())
            })?;
            (id, true)
        }
    };
    emit_session(w, conv, id, created, member_id, summary.started_at, data);
    Ok(())
}

/// Emits `timeline.created` (`created`: a new row) or `timeline.updated` for session activity
/// `id` of chat `conv`.
fn emit_session(
    w: &mut Work,
    conv: &ConvRef,
    id: Uuid,
    created: bool,
    member_id: Option<Uuid>,
    started_at: DateTime<Utc>,
    data: Value,
) {
    let activity = ActivityView {
        id,
        kind: KIND,
        lead_id: conv.lead_id,
        conversation_id: Some(conv.id),
        member_id,
        created_at: started_at,
        data,
    };
    let e = if created { Event::TimelineCreated(activity) } else { Event::TimelineUpdated(activity) };
    w.emit(NewEvent::new(conv.workspace_id, e).lead(conv.lead_id).conversation(conv.id));
}

/// Summarises, from the table, the messages of the sessions `touched` plus the new one at `at`.
async fn recompute(
    tx: &mut Tx,
    conv: Uuid,
    at: DateTime<Utc>,
    touched: &[(Uuid, DateTime<Utc>, DateTime<Utc>)],
) -> Result<Option<Summary>> {
    let lo = touched.iter().map(|t| t.1).chain([at]).min().unwrap_or(at);
    let hi = touched.iter().map(|t| t.2).chain([at]).max().unwrap_or(at);
    let msgs: Vec<(DateTime<Utc>, Direction, Option<Uuid>)> = on_tx!(tx, |c| sqlx::query_as(
        "SELECT created_at, direction, sent_by_user_id FROM messages WHERE conversation_id = $1 \
         AND created_at >= $2 AND created_at <= $3 ORDER BY created_at, seq"
    )
    .bind(conv)
    .bind(lo)
    .bind(hi)
    .fetch_all(c)
    .await)?;
    let msgs: Vec<Msg> =
        msgs.into_iter().map(|(at, dir, member)| Msg { at, inbound: dir == Direction::In, member }).collect();
    Ok(summarize(&msgs))
}

/// A chat's newest session, which its next messages extend ([`extend`]).
pub struct Newest {
    id: Uuid,
    summary: Summary,
}

impl Newest {
    /// When its last message was written.
    pub fn ended_at(&self) -> DateTime<Utc> {
        self.summary.ended_at
    }
}

/// Chats read per statement by [`newest`] (SQLite joins at most 500 `SELECT`s in one).
const NEWEST_CHUNK: usize = 100;

/// The newest session of each of chats `convs` that has one, in a statement per
/// [`NEWEST_CHUNK`] chats (each part reads one row by the lead's index).
pub async fn newest(tx: &mut Tx, convs: &[ConvRef]) -> Result<HashMap<Uuid, Newest>> {
    let mut found = HashMap::new();
    for chunk in convs.chunks(NEWEST_CHUNK) {
        let rows: Vec<(Uuid, Uuid, sqlx::types::Json<Value>)> = on_tx!(tx, |c| {
            let mut qb = sqlx::QueryBuilder::new("");
            for (i, conv) in chunk.iter().enumerate() {
                if i > 0 {
                    qb.push(" UNION ALL ");
                }
                qb.push("SELECT * FROM (SELECT id, conversation_id, data FROM activities WHERE lead_id = ")
                    .push_bind(conv.lead_id)
                    .push(" AND conversation_id = ")
                    .push_bind(conv.id)
                    .push(" AND type = 'whatsapp_session' ORDER BY created_at DESC, seq DESC LIMIT 1) AS s")
                    .push(i.to_string());
            }
            qb.build_query_as().fetch_all(c).await
        })?;
        for (id, conv, data) in rows {
            // A summary that cannot be read back is recomputed by [`place`] instead.
            if let Some(summary) = Summary::from_data(&data) {
                found.insert(conv, Newest { id, summary });
            }
        }
    }
    Ok(found)
}

/// A session [`extend`] writes.
struct Written {
    conv: ConvRef,
    /// The row it updates (`None`: a new row).
    id: Option<Uuid>,
    summary: Summary,
}

/// Places the new messages of chats set-wise, as [`place`] would one by one: each chat's
/// messages (in time order) come at or after the end of its newest session (`newest`, if it
/// has one), so they extend it while within the gap and start new sessions after. One `UPDATE`
/// for the sessions extended and one `INSERT` for those started; emits their timeline events.
pub async fn extend(w: &mut Work, chats: Vec<(ConvRef, Option<Newest>, Vec<Msg>)>, gap_secs: i64) -> Result<()> {
    let now = w.now();
    let mut written: Vec<Written> = Vec::new();
    for (conv, newest, mut msgs) in chats {
        msgs.sort_by_key(|m| m.at);
        debug_assert!(newest.as_ref().is_none_or(|n| msgs.first().is_none_or(|m| m.at >= n.ended_at())));
        let mut current = newest.map(|n| Written { conv, id: Some(n.id), summary: n.summary });
        let mut extended = false;
        for m in &msgs {
            match &mut current {
                Some(c) if (m.at - c.summary.ended_at).num_seconds() <= gap_secs => {
                    c.summary.push(m);
                    extended = true;
                }
                _ => {
                    if let Some(done) = current.take().filter(|_| extended) {
                        written.push(done);
                    }
                    let summary = summarize(std::slice::from_ref(m)).expect("one message");
                    current = Some(Written { conv, id: None, summary });
                    extended = true;
                }
            }
        }
        written.extend(current.filter(|_| extended));
    }
    let rows: Vec<(Uuid, bool, Value, Option<Uuid>, &Written)> = written
        .iter()
        .map(|s| {
            let member_id = s.summary.members.first().copied().or(s.conv.assignee_id);
            let data = s.summary.to_data(s.conv.id, s.conv.number_id, gap_secs, now);
            (s.id.unwrap_or_else(Uuid::now_v7), s.id.is_none(), data, member_id, s)
        })
        .collect();
    let (created, updated): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.1);
    if !updated.is_empty() {
        on_tx!(w.tx(), |c| {
            let mut qb = sqlx::QueryBuilder::new("WITH v (v_id, v_data, v_member, v_at) AS (");
            qb.push_values(&updated, |mut b, (id, _, data, member, s)| {
                b.push_bind(*id).push_bind(sqlx::types::Json(data)).push_bind(*member).push_bind(s.summary.started_at);
            });
            qb.push(
                ") UPDATE activities SET data = v.v_data, member_id = v.v_member, created_at = v.v_at, updated_at = ",
            )
            .push_bind(now)
            .push(" FROM v WHERE activities.id = v.v_id");
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    if !created.is_empty() {
        on_tx!(w.tx(), |c| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO activities (id, workspace_id, lead_id, conversation_id, type, member_id, data, created_at, updated_at) ",
            );
            qb.push_values(&created, |mut b, (id, _, data, member, s)| {
                b.push_bind(*id)
                    .push_bind(s.conv.workspace_id)
                    .push_bind(s.conv.lead_id)
                    .push_bind(s.conv.id)
                    .push_bind(KIND.as_str())
                    .push_bind(*member)
                    .push_bind(sqlx::types::Json(data))
                    .push_bind(s.summary.started_at)
                    .push_bind(now);
            });
            qb.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    for (id, created, data, member_id, s) in rows {
        emit_session(w, &s.conv, id, created, member_id, s.summary.started_at, data);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_789_300_000 + s, 0).unwrap()
    }

    #[test]
    fn a_lead_started_session_with_replies() {
        let agent = Uuid::new_v4();
        let msgs = [
            Msg { at: at(0), inbound: true, member: None },
            Msg { at: at(60), inbound: true, member: None },
            Msg { at: at(300), inbound: false, member: Some(agent) },
            Msg { at: at(400), inbound: true, member: None },
        ];
        let s = summarize(&msgs).unwrap();
        assert_eq!(s.initiated_by, Initiator::Lead);
        assert_eq!((s.messages_from_lead, s.messages_from_member), (3, 1));
        assert!(s.lead_responded && s.member_responded);
        assert_eq!(s.first_response_seconds, Some(300));
        assert_eq!(s.members, vec![agent]);
        assert_eq!(s.ended_at, at(400));
    }

    #[test]
    fn gaps_split() {
        let msgs = [
            Msg { at: at(0), inbound: false, member: None },
            Msg { at: at(1800), inbound: true, member: None },
            Msg { at: at(3601), inbound: true, member: None },
        ];
        let sessions = split(&msgs, 1800);
        assert_eq!(sessions.len(), 2);
        assert_eq!(sessions[0].initiated_by, Initiator::Member);
        assert!(sessions[0].lead_responded && !sessions[0].member_responded);
        assert_eq!(sessions[0].first_response_seconds, None);
    }
}
