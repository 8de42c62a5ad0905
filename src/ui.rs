//! The browser UI: the files of `static/`, built into the binary, and the security headers every
//! response carries.
//!
//! `GET /` answers `index.html` (never cached) with its asset links pointing below
//! `/assets/<version>/`, where `<version>` is a hash over every embedded file's content. Those
//! URLs change whenever any file does, so they are served `immutable` for a year; relative
//! ES-module imports inherit the versioned prefix, so no bundler is needed. Each file also has
//! an ETag (its own SHA-256) for conditional requests.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tracing::instrument;

use crate::error::Error;
use crate::state::AppState;

#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Assets;

/// The policy on every response: scripts and styles only from this origin (no inline code,
/// no `eval`), media and images from here (or `blob:`/`data:` previews), no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
    media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";

/// Where `index.html` points its assets (`{{ASSETS}}` in the file).
const PLACEHOLDER: &str = "{{ASSETS}}";

/// A hash over every embedded file (names and contents): the assets' URL version.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut names: Vec<_> = Assets::iter().collect();
    names.sort();
    let mut h = Sha256::new();
    for name in names {
        if let Some(f) = Assets::get(&name) {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(f.metadata.sha256_hash());
        }
    }
    hex::encode(&h.finalize()[..8])
});

/// `GET /` and the versioned assets.
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/assets/{version}/{*path}", get(asset))
}

/// Adds the security headers to a response that does not set them itself.
pub async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, CSP),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "no-referrer"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    res
}

fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(bytes)[..16]))
}

/// 304 when the client already holds `etag`.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn respond(headers: &HeaderMap, body: Vec<u8>, content_type: &str, cache: &'static str) -> Response {
    let etag = etag_of(&body);
    let etag_value = HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    if not_modified(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(ETAG, etag_value), (CACHE_CONTROL, HeaderValue::from_static(cache))])
            .into_response();
    }
    let ct =
        HeaderValue::from_str(content_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    ([(CONTENT_TYPE, ct), (ETAG, etag_value), (CACHE_CONTROL, HeaderValue::from_static(cache))], body).into_response()
}

#[instrument(skip_all)]
async fn index(headers: HeaderMap) -> Result<Response, Error> {
    let file = Assets::get("index.html").ok_or_else(|| Error::internal("index.html is not embedded"))?;
    let html = String::from_utf8_lossy(&file.data).replace(PLACEHOLDER, &format!("/assets/{}", *VERSION));
    Ok(respond(&headers, html.into_bytes(), "text/html; charset=utf-8", NO_CACHE))
}

#[instrument(skip_all)]
async fn asset(headers: HeaderMap, Path((version, path)): Path<(String, String)>) -> Result<Response, Error> {
    if path.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") || path == "index.html" {
        return Err(Error::not_found());
    }
    let file = Assets::get(&path).ok_or_else(Error::not_found)?;
    // An older page asking for its own version still gets today's file, but not cached for long.
    let cache = if version == *VERSION { IMMUTABLE } else { NO_CACHE };
    Ok(respond(&headers, file.data.into_owned(), &content_type(&path), cache))
}

fn content_type(path: &str) -> String {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "js" | "mjs" => "text/javascript; charset=utf-8".to_owned(),
        "css" => "text/css; charset=utf-8".to_owned(),
        "html" => "text/html; charset=utf-8".to_owned(),
        "svg" => "image/svg+xml".to_owned(),
        "json" => "application/json".to_owned(),
        "png" => "image/png".to_owned(),
        "txt" | "md" => "text/plain; charset=utf-8".to_owned(),
        _ => "application/octet-stream".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_has_a_known_type_and_index_uses_the_placeholder() {
        for name in Assets::iter() {
            assert_ne!(content_type(&name), "application/octet-stream", "{name}");
        }
        let index = Assets::get("index.html").expect("index.html");
        assert!(String::from_utf8_lossy(&index.data).contains(PLACEHOLDER));
    }

    #[test]
    fn csp_forbids_inline_and_wildcard_scripts() {
        let script = CSP.split(';').map(str::trim).find(|d| d.starts_with("script-src")).expect("script-src");
        assert!(!script.contains("unsafe-inline") && !script.contains('*') && !script.contains("unsafe-eval"));
    }
}
