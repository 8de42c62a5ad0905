//! The inbox: numbers, leads, conversations and messages, with their routes and queries.

pub mod conversations;
pub mod leads;
pub mod messages;
pub mod numbers;

use axum::Router;
use axum::routing::get;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{Error, Result};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/numbers", get(numbers::list).post(numbers::create))
        .route("/numbers/{id}", get(numbers::get_one).patch(numbers::patch).delete(numbers::delete))
        .route("/leads", get(leads::list).post(leads::create))
        .route("/leads/{id}", get(leads::get_one).patch(leads::patch).delete(leads::delete))
        .route("/leads/{id}/timeline", get(crate::timeline::routes::timeline))
        .route("/leads/{id}/notes", axum::routing::post(crate::timeline::routes::add_note))
        .route("/conversations", get(conversations::list))
        .route("/conversations/{id}", get(conversations::get_one))
        .route("/conversations/{id}/messages", get(conversations::messages).post(crate::outbox::send))
        .route("/conversations/{id}/read", axum::routing::post(crate::outbox::mark_read))
        .route("/media/{id}", get(crate::outbox::media::get))
}

/// Parses an id given as a filter value (400 when malformed).
pub fn parse_id(value: &str, what: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| Error::bad_request("invalid_filter", format!("{what} is not a valid id")))
}

/// Parses a boolean filter value (400 when malformed).
pub fn parse_bool(value: &str, what: &str) -> Result<bool> {
    match value.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::bad_request("invalid_filter", format!("{what} must be true or false"))),
    }
}
