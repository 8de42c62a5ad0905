//! The outbox sender: claims due rows (safely across nodes), calls the Graph API, and records
//! the outcome with its events.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::Value;
use tokio::sync::Notify;
use tracing::instrument;
use uuid::Uuid;

use super::graph::{CallError, GraphError, Language, Outgoing, Quoted, SendMessage, TemplateBody, TextBody, Verdict};
use super::{JobKind, JobPayload};
use crate::db::Backend;
use crate::error::Result;
use crate::events::{Event, NewEvent, Work};
use crate::inbox::chat::{self, Plans};
use crate::state::AppState;
use crate::views::message::MessageStatus;
use crate::{on_db, on_tx};

/// Give up after this many attempts of one row.
pub const MAX_ATTEMPTS: i64 = 8;
/// A claim not finished within this time is taken over (the sender died).
const CLAIM_SECS: i64 = 120;

#[derive(Debug, sqlx::FromRow)]
struct Job {
    id: Uuid,
    workspace_id: Uuid,
    number_id: Uuid,
    message_id: Option<Uuid>,
    kind: JobKind,
    payload: sqlx::types::Json<JobPayload>,
    attempts: i64,
}

const CLAIM_SQLITE: &str = "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 WHERE id = \
    (SELECT id FROM outbox WHERE state = 'pending' AND due_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
     ORDER BY due_at LIMIT 1) \
    RETURNING id, workspace_id, number_id, message_id, kind, payload, attempts";
const CLAIM_PG: &str = "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 WHERE id = \
    (SELECT id FROM outbox WHERE state = 'pending' AND due_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2) \
     ORDER BY due_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
    RETURNING id, workspace_id, number_id, message_id, kind, payload, attempts";

/// Whether any row is due: a read, so an idle outbox polls without writing.
const DUE: &str = "SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending' AND due_at <= $1 \
    AND (claimed_until IS NULL OR claimed_until < $1))";

async fn claim(st: &AppState) -> Result<Option<Job>> {
    let now = st.clock.now();
    // The claim is a write. On SQLite every write queues for the one write lock, and one that
    // bypasses the queue meets the others in SQLite's busy handler, which sleeps between tries
    // (so a webhook commit could wait milliseconds for a lock already free): take the queue,
    // and only when there is something to claim. (PostgreSQL writers do not queue, and a claim
    // that finds nothing writes nothing there: no read first.)
    let sql = match st.db.backend() {
        Backend::Sqlite => {
            let due: bool = on_db!(&st.db, |p| sqlx::query_scalar(DUE).bind(now).fetch_one(p).await)?;
            if !due {
                return Ok(None);
            }
            CLAIM_SQLITE
        }
        Backend::Postgres => CLAIM_PG,
    };
    let _write = st.db.lock_writes().await;
    Ok(on_db!(&st.db, |p| sqlx::query_as(sql)
        .bind(now + chrono::Duration::seconds(CLAIM_SECS))
        .bind(now)
        .fetch_optional(p)
        .await)?)
}

/// Sends due rows until none is left, then waits for a wake-up or the next due retry.
pub async fn run(st: AppState, wake: Arc<Notify>) {
    let mut shutdown = st.shutdown.clone();
    loop {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match claim(&st).await {
                Ok(Some(job)) => {
                    if let Err(e) = send(&st, job).await {
                        tracing::error!(error = %e, "outbox send bookkeeping failed");
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(error = %e, "outbox claim failed");
                    break;
                }
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

#[derive(sqlx::FromRow)]
struct NumberRow {
    phone_number_id: String,
    access_token: String,
    needs_reauth: bool,
    disconnected_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct Target {
    wamid: Option<String>,
    status: MessageStatus,
    #[sqlx(rename = "type")]
    kind: String,
    text: Option<String>,
    media: Option<sqlx::types::Json<Value>>,
    content: Option<sqlx::types::Json<Value>>,
    context_wamid: Option<String>,
    contact_phone: Option<String>,
    contact_bsuid: Option<String>,
}

/// The Graph API body for a stored outbound message.
fn message_body(message_id: Uuid, t: &Target) -> Outgoing<'_> {
    const NULL: &Value = &Value::Null;
    let mut body = SendMessage {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        kind: &t.kind,
        biz_opaque_callback_data: message_id.to_string(),
        to: t.contact_phone.as_deref(),
        recipient: if t.contact_phone.is_none() { t.contact_bsuid.as_deref() } else { None },
        text: None,
        template: None,
        media: None,
        context: t.context_wamid.as_deref().map(|message_id| Quoted { message_id }),
    };
    match t.kind.as_str() {
        "text" => {
            let text = t.text.as_deref().unwrap_or_default();
            body.text =
                Some(TextBody { body: text, preview_url: text.contains("https://") || text.contains("http://") });
        }
        "template" => {
            let tpl = t.content.as_ref().map(|c| &c.0["template"]).unwrap_or(NULL);
            let language = match &tpl["language"] {
                Value::String(code) => Language::Code { code },
                other => Language::Given(other),
            };
            let components = tpl.get("components").filter(|c| !c.is_null());
            body.template = Some(TemplateBody { name: &tpl["name"], language, components });
        }
        "reaction" => {
            body.media = Some([("reaction", t.content.as_ref().map(|c| &c.0["reaction"]).unwrap_or(NULL))].into());
            body.context = None;
        }
        kind => {
            body.media = Some([(kind, t.media.as_ref().map(|m| &m.0).unwrap_or(NULL))].into());
        }
    }
    Outgoing::Message(Box::new(body))
}

#[instrument(skip_all, fields(job = %job.id, kind = %job.kind))]
async fn send(st: &AppState, job: Job) -> Result<()> {
    let number: Option<NumberRow> = on_db!(&st.db, |p| sqlx::query_as(
        "SELECT phone_number_id, access_token, needs_reauth, disconnected_at FROM numbers WHERE id = $1"
    )
    .bind(job.number_id)
    .fetch_optional(p)
    .await)?;
    let Some(number) = number.filter(|n| n.disconnected_at.is_none()) else {
        let e = GraphError { http_status: 0, code: None, title: "number disconnected".into(), fbtrace_id: None };
        return fail(st, &job, &e, false).await;
    };
    if number.needs_reauth {
        // Every send with a dead token would fail: wait for an admin to replace it.
        return retry_later(st, &job, "number needs a new access token", Duration::from_secs(60), false).await;
    }
    let token = st.secrets.open(&number.access_token)?;
    let mut chat = None;
    let stored: Target;
    let body = match job.kind {
        JobKind::Read => Outgoing::read(job.payload.0.wamid.as_deref(), job.payload.0.typing),
        JobKind::Message => {
            let Some(message_id) = job.message_id else { return done(st, &job).await };
            let target: Option<Target> = on_db!(&st.db, |p| {
                sqlx::query_as(
                "SELECT m.wamid, m.status, m.type, m.text, m.media, m.content, m.context_wamid, c.contact_phone, c.contact_bsuid \
                 FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = $1"
            )
            .bind(message_id)
            .fetch_optional(p)
            .await
            })?;
            let Some(mut target) = target else { return done(st, &job).await };
            if target.wamid.is_some() || target.status != MessageStatus::Queued {
                return done(st, &job).await;
            }
            if let Some(upload_id) = target.upload_id() {
                // A file from the media store: Meta gets the bytes first, then the message names
                // the media id it answered (uploaded again if this send is retried).
                match upload(st, &number.phone_number_id, &token, upload_id).await {
                    Ok(media_id) => target.send_as(&media_id),
                    Err(Uploading::Gone(why)) => {
                        let e = GraphError { http_status: 0, code: None, title: why, fbtrace_id: None };
                        return fail(st, &job, &e, false).await;
                    }
                    Err(Uploading::Call(e)) => return call_failed(st, &job, e).await,
                }
            }
            chat = chat::chat_key(
                &number.phone_number_id,
                target.contact_phone.as_deref(),
                target.contact_bsuid.as_deref(),
            );
            stored = target;
            message_body(message_id, &stored)
        }
    };
    st.throughput.acquire(job.number_id).await;
    match st.graph.post_message(&number.phone_number_id, &token, &body).await {
        Ok(answer) => match job.kind {
            JobKind::Read => done(st, &job).await,
            JobKind::Message => sent(st, &job, answer["messages"][0]["id"].as_str(), chat).await,
        },
        Err(e) => call_failed(st, &job, e).await,
    }
}

/// A Graph call that failed: retried later (transport errors, rate limits, Meta's transient
/// codes, up to [`MAX_ATTEMPTS`]) or failed for good.
async fn call_failed(st: &AppState, job: &Job, e: CallError) -> Result<()> {
    match e {
        CallError::Transport(e) => {
            tracing::warn!(error = %e, "Graph API unreachable; retrying");
            retry_later(st, job, &e, backoff(job.attempts), true).await
        }
        CallError::Graph(e) => {
            tracing::warn!(code = ?e.code, http = e.http_status, fbtrace_id = ?e.fbtrace_id, title = %e.title, "Graph API error");
            match e.verdict() {
                Verdict::Retry if job.attempts < MAX_ATTEMPTS => {
                    retry_later(st, job, &e.title, backoff(job.attempts), true).await
                }
                Verdict::Retry | Verdict::Fail => fail(st, job, &e, false).await,
                Verdict::Reauth => fail(st, job, &e, true).await,
            }
        }
    }
}

enum Uploading {
    /// The upload or its file is not there: no retry brings it back.
    Gone(String),
    Call(CallError),
}

/// Uploads a file of the media store to the Graph API (streamed from disk) → the media id.
async fn upload(st: &AppState, phone_number_id: &str, token: &str, upload_id: Uuid) -> Result<String, Uploading> {
    let found = crate::media::upload(&st.db, upload_id).await;
    let up = match found {
        Ok(Some(u)) => u,
        Ok(None) => return Err(Uploading::Gone("the uploaded file is gone".to_owned())),
        Err(e) => return Err(Uploading::Call(CallError::Transport(e.to_string()))),
    };
    let path = crate::media::store::Store::new(&st.config.data_dir).upload_path(up.id);
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(Uploading::Gone("the uploaded file is missing from the media store".to_owned()));
    }
    st.graph
        .upload_media_file(phone_number_id, token, &up.mime_type, &up.filename, &path)
        .await
        .map_err(Uploading::Call)
}

impl Target {
    /// The media store upload a media message sends, if it sends one.
    fn upload_id(&self) -> Option<Uuid> {
        if !matches!(self.kind.as_str(), "image" | "video" | "audio" | "document") {
            return None;
        }
        let m = &self.media.as_ref()?.0;
        m.get("id").is_none().then_some(())?;
        m.get("upload_id")?.as_str().and_then(|s| Uuid::parse_str(s).ok())
    }

    /// Sends the media as Meta's `media_id` (with the caption, and a document's filename).
    fn send_as(&mut self, media_id: &str) {
        let stored = self.media.as_ref().map(|m| m.0.clone()).unwrap_or_default();
        let mut media = serde_json::Map::new();
        media.insert("id".to_owned(), Value::String(media_id.to_owned()));
        if let Some(c) = stored.get("caption").filter(|c| c.is_string()) {
            media.insert("caption".to_owned(), c.clone());
        }
        if self.kind == "document"
            && let Some(f) = stored.get("filename").filter(|f| f.is_string())
        {
            media.insert("filename".to_owned(), f.clone());
        }
        self.media = Some(sqlx::types::Json(Value::Object(media)));
    }
}

/// Exponential backoff with jitter: 1 s, 2 s, 4 s … capped at 5 minutes.
fn backoff(attempts: i64) -> Duration {
    let base = 2f64.powi((attempts.clamp(1, 10) - 1) as i32).min(300.0);
    Duration::from_secs_f64(base * rand::thread_rng().gen_range(0.8..1.2))
}

const DONE: &str = "UPDATE outbox SET state = 'done', claimed_until = NULL WHERE id = $1";

async fn done(st: &AppState, job: &Job) -> Result<()> {
    let _write = st.db.lock_writes().await;
    on_db!(&st.db, |p| sqlx::query(DONE).bind(job.id).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

async fn retry_later(st: &AppState, job: &Job, why: &str, after: Duration, counted: bool) -> Result<()> {
    let due = st.clock.now() + chrono::Duration::from_std(after).unwrap_or_default();
    let _write = st.db.lock_writes().await;
    on_db!(&st.db, |p| sqlx::query(
        "UPDATE outbox SET due_at = $1, claimed_until = NULL, last_error = $2, attempts = attempts - $3 WHERE id = $4"
    )
    .bind(due)
    .bind(why)
    .bind(if counted { 0i64 } else { 1 })
    .bind(job.id)
    .execute(p)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records the wamid Meta gave a message. The chat is locked first, as webhook processing
/// locks it: a status webhook for this wamid processed at the same moment either sees the wamid
/// or is seen by the pending statuses applied here, never neither (it would be kept unapplied).
async fn sent(st: &AppState, job: &Job, wamid: Option<&str>, chat: Option<i32>) -> Result<()> {
    let Some(message_id) = job.message_id else { return done(st, job).await };
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    chat::lock_chats(work.tx(), chat.as_slice(), Plans::AsUsual).await?;
    chat::message_sent(&mut work, message_id, wamid).await?;
    on_tx!(work.tx(), |c| sqlx::query(DONE).bind(job.id).execute(c).await.map(|r| r.rows_affected()))?;
    work.commit(&st.hub).await?;
    tracing::info!(message_id = %message_id, wamid, "message accepted by the Graph API");
    Ok(())
}

async fn fail(st: &AppState, job: &Job, e: &GraphError, reauth: bool) -> Result<()> {
    let mut work = Work::begin(&st.db, st.clock.now()).await?;
    on_tx!(work.tx(), |c| sqlx::query(
        "UPDATE outbox SET state = 'failed', claimed_until = NULL, last_error = $1 WHERE id = $2"
    )
    .bind(&e.title)
    .bind(job.id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if let Some(message_id) = job.message_id {
        chat::message_failed(&mut work, message_id, e.code, &e.title).await?;
    }
    if reauth {
        on_tx!(work.tx(), |c| sqlx::query("UPDATE numbers SET needs_reauth = TRUE WHERE id = $1")
            .bind(job.number_id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
        let number = crate::inbox::numbers::load_in(work.tx(), job.number_id).await?;
        work.emit(NewEvent::new(job.workspace_id, Event::NumberUpdated(number.view())));
        tracing::error!(number_id = %job.number_id, "the number's access token was rejected (190): an admin must replace it");
    }
    work.commit(&st.hub).await?;
    tracing::warn!(job = %job.id, code = ?e.code, "send failed for good");
    Ok(())
}
