//! The inbox's routes: extract, validate, ask the policy, call the domain, answer the view.
//! (The outbox mounts the sending routes of conversations; the timeline mounts
//! `/leads/{id}/timeline` and `/leads/{id}/notes`; assignment mounts its own.)

pub(crate) mod conversations;
pub(crate) mod groups;
pub(crate) mod leads;
pub(crate) mod leads_csv;
pub(crate) mod notes;
pub(crate) mod numbers;
pub(crate) mod ownership;
pub(crate) mod search;

use crate::api::Api;
use crate::error::Error;
use crate::policy::Denied;

pub fn routes() -> Api {
    Api::new()
        .get("/numbers", numbers::list)
        .post("/numbers", numbers::create)
        .get("/numbers/{id}", numbers::get_one)
        .patch("/numbers/{id}", numbers::patch)
        .delete("/numbers/{id}", numbers::delete)
        .get("/numbers/{id}/templates", numbers::list_templates)
        .post("/numbers/{id}/templates/sync", numbers::sync_templates)
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
        .post("/conversations/{id}/notes", notes::add)
        .get("/mentions", notes::mentions)
        .post("/mentions/{id}/read", notes::read)
        .get("/search", search::search)
}

/// A refusal as the contract's 403, with `message`.
fn forbidden(_: Denied, message: &'static str) -> Error {
    Error::forbidden("forbidden", message)
}
