//! Extractors whose rejections speak the contract's error JSON instead of axum's plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};

use crate::error::Error;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for Error {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Error::unprocessable("invalid_body", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Error::bad_request("malformed_json", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Error::client(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            other => Error::client(other.status(), "invalid_body", other.body_text()),
        }
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for Error {
    fn from(r: QueryRejection) -> Self {
        Error::bad_request("invalid_query", r.body_text())
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

impl From<PathRejection> for Error {
    fn from(r: PathRejection) -> Self {
        Error::bad_request("invalid_path", r.body_text())
    }
}

/// For `#[serde(default, deserialize_with = "crate::extract::present")]` on an
/// `Option<Option<T>>` field that can be cleared: `"field": null` is `Some(None)`, an absent
/// field `None`.
pub fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Reads a request body of at most `max` bytes. A declared `Content-Length` over the limit is
/// refused before any of the body is read; a longer body without one is cut off at the limit.
/// 413 `payload_too_large` with `limit_message` either way.
pub async fn read_limited(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    max: usize,
    limit_message: &str,
) -> Result<Vec<u8>, Error> {
    use futures_util::StreamExt;
    let too_large = || Error::client(axum::http::StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", limit_message);
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Error::bad_request("invalid_body", "the body could not be read"))?;
        if buf.len() + chunk.len() > max {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}
