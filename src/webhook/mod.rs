//! Meta's webhook: the verification handshake and signed POSTs, journaled before the 200.

pub mod ingest;
pub mod journal;
pub mod payload;
pub mod signature;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use tracing::instrument;

use crate::error::{Error, Result};
use crate::extract::Query;
use crate::state::AppState;

/// Meta sends up to ~3 MB; allow a little more.
pub const MAX_BODY: usize = 4 << 20;

pub fn routes() -> Router<AppState> {
    Router::new().route("/webhooks/whatsapp", get(verify).post(receive))
}

#[derive(Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// `GET /webhooks/whatsapp`: echoes the challenge when the verify token matches.
#[instrument(skip_all)]
pub async fn verify(State(st): State<AppState>, Query(q): Query<Handshake>) -> Response {
    let expected = st.config.verify_token.as_deref().unwrap_or("");
    let given = q.verify_token.as_deref().unwrap_or("");
    let token_ok = !expected.is_empty()
        && expected.len() == given.len()
        && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    match (q.mode.as_deref(), q.challenge) {
        (Some("subscribe"), Some(challenge)) if token_ok => {
            tracing::info!("webhook verification handshake accepted");
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], challenge).into_response()
        }
        _ => {
            tracing::warn!("webhook verification handshake refused");
            Error::forbidden("verification_failed", "verify token does not match").into_response()
        }
    }
}

/// `POST /webhooks/whatsapp`: signature over the raw bytes, then durable, then 200.
#[instrument(skip_all)]
pub async fn receive(State(st): State<AppState>, headers: HeaderMap, body: Body) -> Result<StatusCode> {
    let secrets = st.config.app_secrets();
    if secrets.is_empty() {
        tracing::error!("webhook refused: WHATSAPP_APP_SECRET is not set");
        return Err(Error::unavailable("not_configured", "WHATSAPP_APP_SECRET is not set"));
    }
    let body = crate::extract::read_limited(&headers, body, MAX_BODY, "webhook bodies are limited to 4 MiB").await?;
    let body = Bytes::from(body);
    let sig = headers.get("x-hub-signature-256").and_then(|h| h.to_str().ok());
    if !signature::signature_ok(&secrets, &body, sig) {
        tracing::warn!(present = sig.is_some(), bytes = body.len(), "webhook signature rejected");
        return Err(Error::client(StatusCode::UNAUTHORIZED, "invalid_signature", "X-Hub-Signature-256 does not match"));
    }
    let id = st.journal.append(&st.clock, body).await?;
    tracing::debug!(event_id = %id, "webhook journaled");
    Ok(StatusCode::OK)
}
