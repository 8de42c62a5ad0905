//! `GET /api/v1/live`: the websocket. Each socket follows the shared [`Tail`] from its cursor
//! (woken by its [`Bell`](crate::live::doorbell::Bell) when there may be something for it),
//! filters every event through the access policy as of delivery, and is dropped rather than
//! buffered when it does not keep up.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{
    CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use axum::response::Response;
use futures_util::SinkExt;
use futures_util::stream::{SplitSink, SplitStream, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{Instant, interval_at, timeout};
use uuid::Uuid;

use crate::api::Api;
use crate::auth::{CurrentUser, credential};
use crate::error::{Error, Result};
use crate::events::log::{self as events, Logged as Event, MemberChange};
use crate::live::filter::{self, Facts};
use crate::live::tail::{PAGE, Tail};
use crate::policy::Viewer;
use crate::state::AppState;
use crate::views::team::MemberStatus;

/// A send (event, pong, ping) that does not complete within this drops the client.
pub const SEND_LIMIT: Duration = Duration::from_secs(5);
/// Server pings this often...
pub const PING_EVERY: Duration = Duration::from_secs(20);
/// ...and closes a socket it heard nothing from for this long.
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// The member's token is re-checked this often (deactivation also closes at once, by event).
pub const RECHECK_EVERY: Duration = Duration::from_secs(30);
/// A socket's initial read buffer (it grows for a larger client frame).
const READ_BUFFER: usize = 512;
/// The contract's limit for a client frame; larger closes with 1009.
pub const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Close codes this server sends.
pub mod close {
    /// The member was deactivated or their token revoked.
    pub const UNAUTHORIZED: u16 = 4401;
    /// The server is shutting down, or the client was idle too long.
    pub const GOING_AWAY: u16 = 1001;
    /// The client does not read fast enough.
    pub const TOO_SLOW: u16 = 1008;
    /// A client frame over the size limit.
    pub const TOO_BIG: u16 = 1009;
}

pub fn routes() -> Api {
    Api::new().get("/live", upgrade)
}

/// Authenticates (bearer header or session cookie; a cookie needs a same-origin `Origin`),
/// checks `?after=`, then upgrades.
#[utoipa::path(
    get,
    path = "/live",
    tag = "live",
    description = "Upgrades to a websocket that streams the caller's events from a cursor (`?after=`).",
    responses((status = 101, description = "Switched to the websocket protocol."))
)]
pub async fn upgrade(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: std::result::Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response> {
    let (token, via_cookie) = credential(&headers).ok_or_else(Error::unauthorized)?;
    let user = CurrentUser::from_token(&st.db, &token, via_cookie).await?.ok_or_else(Error::unauthorized)?;
    if via_cookie && !same_origin(&headers) {
        return Err(Error::forbidden("cross_origin", "a cookie-authenticated websocket must come from this origin"));
    }
    let after = parse_after(query.as_deref())?;
    let ws =
        ws.map_err(|r| Error::client(r.status(), "websocket_required", "this endpoint needs a websocket upgrade"))?;
    let (cursor, reset) = start_cursor(&st, after).await?;
    // Clients send small frames (pings, presence): a small read buffer, grown by a larger
    // frame, keeps an idle socket small (4 KiB of it was a third of an idle socket's memory).
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(4 << 20)
        .max_message_size(MAX_CLIENT_MESSAGE)
        // A frame up to 1 MiB is read whole and then refused by the message limit, so the close
        // frame (1009) reaches the client; a frame refused by its header alone leaves its payload
        // unread, and closing then resets the connection before the client sees the close.
        .max_frame_size(1 << 20)
        .on_upgrade(move |socket| session(st, user, token, cursor, reset, socket)))
}

/// `Origin` (scheme://host[:port]) names the same host and port as `Host`.
fn same_origin(headers: &HeaderMap) -> bool {
    let get = |h| headers.get(h).and_then(|v| v.to_str().ok());
    let (Some(origin), Some(host)) = (get(ORIGIN), get(HOST)) else { return false };
    origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// `after=<cursor>` from the query string; anything but a non-negative integer is a 400.
fn parse_after(query: Option<&str>) -> Result<Option<i64>> {
    let Some(q) = query else { return Ok(None) };
    let mut after = None;
    for (k, v) in q.split('&').filter_map(|kv| kv.split_once('=').or(Some((kv, "")))) {
        if k == "after" {
            let ok = !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit());
            let c = v.parse::<i64>().ok().filter(|_| ok);
            after =
                Some(c.ok_or_else(|| Error::bad_request("invalid_cursor", "after must be a cursor from this server"))?);
        }
    }
    Ok(after)
}

/// Where a socket starts: its resume cursor, or the current end of the log. A cursor older
/// than the log retains (or newer than it has) starts at the end with a reset.
async fn start_cursor(st: &AppState, after: Option<i64>) -> Result<(i64, bool)> {
    let bounds = events::bounds(&st.db).await?;
    let end = bounds.map_or(0, |(_, max)| max);
    Ok(match (after, bounds) {
        (None, _) => (end, false),
        (Some(c), Some((min, max))) if c >= min - 1 && c <= max => (c, false),
        (Some(0), None) => (0, false),
        (Some(_), _) => (end, true),
    })
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Ping,
    Presence { status: Status },
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Status {
    Available,
    Away,
}

type Tx = SplitSink<WebSocket, Message>;

/// How a session ended: with a close frame to send, or without (the client went away).
type End = Option<(u16, &'static str)>;

async fn session(st: AppState, user: CurrentUser, token: String, cursor: i64, reset: bool, socket: WebSocket) {
    let (me, workspace) = (user.id, user.workspace_id);
    st.presence.opened(workspace, me);
    let (mut tx, rx) = socket.split();
    let (ctrl_tx, mut ctrl) = mpsc::channel(8);
    let reader = tokio::spawn(read_client(rx, ctrl_tx));
    let end = follow(&st, user, &token, cursor, reset, &mut tx, &mut ctrl).await;
    if let Some((code, reason)) = end {
        let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
        if matches!(timeout(Duration::from_millis(500), tx.send(Message::Close(Some(frame)))).await, Ok(Ok(()))) {
            // Wait briefly for the client's close (the reader then ends): dropping with unread
            // input would reset the connection, and the client might never see the close code.
            let _ = timeout(Duration::from_secs(1), async { while ctrl.recv().await.is_some() {} }).await;
        }
    } else {
        let _ = timeout(Duration::from_millis(500), tx.close()).await;
    }
    reader.abort();
    drop(tx);
    st.presence.closed(workspace, me);
}

/// What the reader task tells the delivery loop.
enum Ctrl {
    Pong,
    Presence(bool),
    Ping,
    Recheck,
    End(End),
}

/// Reads client frames and keeps the clocks (heartbeat, idle limit, token re-check), so that
/// the delivery loop, woken for every new event, polls neither the socket nor timers.
async fn read_client(mut rx: SplitStream<WebSocket>, ctrl: mpsc::Sender<Ctrl>) {
    let mut heard = Instant::now();
    let mut ping = interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut recheck = interval_at(Instant::now() + RECHECK_EVERY, RECHECK_EVERY);
    loop {
        let c = tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    heard = Instant::now();
                    match serde_json::from_str::<ClientMessage>(t.as_str()) {
                        Ok(ClientMessage::Ping) => Ctrl::Pong,
                        Ok(ClientMessage::Presence { status }) => Ctrl::Presence(matches!(status, Status::Away)),
                        Err(_) => continue, // unknown messages are ignored
                    }
                }
                Some(Ok(Message::Close(_))) | None => Ctrl::End(None),
                Some(Ok(_)) => {
                    heard = Instant::now();
                    continue;
                }
                // tungstenite reports an oversized message as "Message too long" without
                // closing; the contract wants 1009.
                Some(Err(e)) => Ctrl::End(e.to_string().contains("too long").then_some((close::TOO_BIG, "message too big"))),
            },
            _ = ping.tick() => {
                if heard.elapsed() > IDLE_LIMIT { Ctrl::End(Some((close::GOING_AWAY, "idle"))) } else { Ctrl::Ping }
            }
            _ = recheck.tick() => Ctrl::Recheck,
        };
        let end = matches!(c, Ctrl::End(_));
        if ctrl.send(c).await.is_err() || end {
            return;
        }
    }
}

async fn send(tx: &mut Tx, m: Message) -> bool {
    matches!(timeout(SEND_LIMIT, tx.send(m)).await, Ok(Ok(())))
}

/// Queues `m` on the socket's write buffer (written out when it fills, or by [`flush`]).
async fn feed(tx: &mut Tx, m: Message) -> bool {
    matches!(timeout(SEND_LIMIT, tx.feed(m)).await, Ok(Ok(())))
}

/// Writes out what [`feed`] queued.
async fn flush(tx: &mut Tx) -> bool {
    matches!(timeout(SEND_LIMIT, tx.flush()).await, Ok(Ok(())))
}

/// Ends the session of a client whose socket did not take a frame within [`SEND_LIMIT`].
fn too_slow(user: &CurrentUser) -> End {
    tracing::info!(user_id = %user.id, "live: dropping a client that does not keep up");
    Some((close::TOO_SLOW, "too slow"))
}

/// The socket's loop: deliver, answer, heartbeat, re-check, until something ends it.
async fn follow(
    st: &AppState,
    mut user: CurrentUser,
    token: &str,
    mut cursor: i64,
    reset: bool,
    tx: &mut Tx,
    ctrl: &mut mpsc::Receiver<Ctrl>,
) -> End {
    let mut viewer = user.viewer();
    let registration = st.bells.register(viewer.clone(), cursor); // rung once: deliver what is already after the cursor
    let bell = &registration.bell;
    let stop = crate::live::stopped(st.shutdown.clone()); // once, not per wake-up
    tokio::pin!(stop);
    if reset && !send(tx, Message::Text(Utf8Bytes::from_static(r#"{"type":"reset"}"#))).await {
        return None;
    }
    loop {
        tokio::select! {
            _ = bell.rung() => {
                let t: Arc<Tail> = st.tail.borrow().clone();
                let (batch, facts) = match next_batch(st, &t, cursor).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "live: reading events failed");
                        return Some((1011, "internal error"));
                    }
                };
                if matches!(batch, Cow::Owned(_)) {
                    if batch.is_empty() {
                        cursor = t.start; // nothing left before the tail (pruned meanwhile)
                    }
                    bell.ring(); // paging history: come back for the rest
                }
                // The batch's frames are written together: one write for the lot, not one per
                // frame (an admin gets every event, three or so per message).
                let mut queued = false;
                for e in batch.iter() {
                    cursor = e.id;
                    if let Some(change) = about(e, user.id) {
                        if change.deactivated {
                            return Some((close::UNAUTHORIZED, MemberStatus::Deactivated.as_str()));
                        }
                        if !Box::pin(refresh(st, token, &mut user, &mut viewer)).await {
                            return Some((close::UNAUTHORIZED, "signed out"));
                        }
                        bell.set_viewer(viewer.clone());
                    }
                    if !filter::visible(&viewer, e, &facts) {
                        continue;
                    }
                    if !feed(tx, Message::Text(e.frame.clone())).await {
                        return too_slow(&user);
                    }
                    queued = true;
                    crate::metrics::delivered((st.clock.now() - e.created_at).num_microseconds().unwrap_or(0) as f64 / 1e6);
                }
                if queued && !flush(tx).await {
                    return too_slow(&user);
                }
            }
            c = ctrl.recv() => match c {
                Some(Ctrl::Pong) => {
                    if !send(tx, Message::Text(Utf8Bytes::from_static(r#"{"type":"pong"}"#))).await {
                        return None;
                    }
                }
                Some(Ctrl::Ping) => {
                    if !send(tx, Message::Ping(Default::default())).await {
                        return None;
                    }
                }
                Some(Ctrl::Presence(away)) => {
                    st.presence.declare(user.workspace_id, user.id, away);
                }
                Some(Ctrl::Recheck) => {
                    if !Box::pin(refresh(st, token, &mut user, &mut viewer)).await {
                        return Some((close::UNAUTHORIZED, "signed out"));
                    }
                    bell.set_viewer(viewer.clone());
                }
                Some(Ctrl::End(end)) => return end,
                None => return None,
            },
            _ = &mut stop => return Some((close::GOING_AWAY, "server shutting down")),
        }
    }
}

/// Re-reads the member behind `token` (role, permissions, label grants); `false` when the
/// token no longer resolves (revoked, or the member deactivated). A database error keeps the
/// current view.
async fn refresh(st: &AppState, token: &str, user: &mut CurrentUser, viewer: &mut Viewer) -> bool {
    match CurrentUser::from_token(&st.db, token, user.via_cookie).await {
        Ok(Some(u)) => {
            *user = u;
            *viewer = user.viewer();
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, "live: re-reading the member failed");
            true
        }
    }
}

/// Events after `cursor` with their facts: from the shared tail, or paged from the database
/// (owned) when the cursor is older than the tail holds.
async fn next_batch<'t>(st: &AppState, t: &'t Tail, cursor: i64) -> Result<(Cow<'t, [Arc<Event>]>, Cow<'t, Facts>)> {
    if let Some(events) = t.after(cursor) {
        return Ok((Cow::Borrowed(events), Cow::Borrowed(&t.facts)));
    }
    // Boxed: a socket's task holds its largest future all its life, idle or not, and these
    // database reads (rare: resuming from far back) are the largest.
    let page = Box::pin(events::read_after(&st.db, cursor, PAGE)).await?;
    let facts = Box::pin(filter::load(&st.db, &page)).await?;
    Ok((Cow::Owned(page.into_iter().map(Arc::new).collect()), Cow::Owned(facts)))
}

/// A `member.updated` about `me` that may change what they see (not just their presence).
fn about(e: &Event, me: Uuid) -> Option<&MemberChange> {
    e.member.as_ref().filter(|m| m.id == Some(me) && m.beyond_presence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_parses_strictly() {
        assert_eq!(parse_after(None).unwrap(), None);
        assert_eq!(parse_after(Some("after=42")).unwrap(), Some(42));
        assert_eq!(parse_after(Some("x=1&after=0")).unwrap(), Some(0));
        for bad in ["after=", "after=-1", "after=abc", "after=1.5", "after=99999999999999999999", "after=+3"] {
            assert!(parse_after(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn origin_must_match_host() {
        let mut h = HeaderMap::new();
        h.insert(HOST, "inbox.example.com".parse().unwrap());
        assert!(!same_origin(&h));
        h.insert(ORIGIN, "https://inbox.example.com".parse().unwrap());
        assert!(same_origin(&h));
        h.insert(ORIGIN, "https://evil.example.com".parse().unwrap());
        assert!(!same_origin(&h));
    }
}
