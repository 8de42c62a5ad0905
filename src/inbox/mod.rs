//! The inbox: numbers, leads, conversations and messages, with their routes and queries.

pub mod chat;
pub mod conversations;
pub mod groups;
pub mod leads;
pub mod leads_csv;
pub mod messages;
pub mod numbers;
pub mod ownership;

use uuid::Uuid;

use crate::api::Api;
use crate::error::{Error, Result};

pub fn routes() -> Api {
    Api::new()
        .get("/numbers", numbers::list)
        .post("/numbers", numbers::create)
        .get("/numbers/{id}", numbers::get_one)
        .patch("/numbers/{id}", numbers::patch)
        .delete("/numbers/{id}", numbers::delete)
        .get("/groups", groups::list)
        .post("/groups", groups::create)
        .patch("/groups/{id}", groups::patch)
        .delete("/groups/{id}", groups::delete)
        .get("/leads", leads::list)
        // Static segments win over `{id}` in axum's router: these never reach `/leads/{id}`.
        .get("/leads/export", leads_csv::export)
        .post("/leads/import", leads_csv::import)
        .post("/leads", leads::create)
        .get("/leads/{id}", leads::get_one)
        .patch("/leads/{id}", leads::patch)
        .delete("/leads/{id}", leads::delete)
        .get("/leads/{id}/timeline", crate::timeline::routes::timeline)
        .post("/leads/{id}/notes", crate::timeline::routes::add_note)
        .get("/conversations", conversations::list)
        .get("/conversations/{id}", conversations::get_one)
        .get("/conversations/{id}/messages", conversations::messages)
        .post("/conversations/{id}/assign", ownership::assign)
        .post("/conversations/{id}/claim", ownership::claim)
        .post("/conversations/{id}/status", ownership::set_status)
        .put("/conversations/{id}/labels", ownership::set_labels)
        .get("/conversations/{id}/access", ownership::get_access)
        .post("/conversations/{id}/access", ownership::add_access)
        .delete("/conversations/{id}/access", ownership::remove_access)
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
