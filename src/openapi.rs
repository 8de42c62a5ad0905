//! The OpenAPI 3.1 document of every `/api/v1` route (`GET /api/v1/openapi.json`). Nothing
//! in it is written by hand beside the code: each handler carries its `#[utoipa::path]`
//! (description, parameters, body, answers) and each view or request type derives `ToSchema`;
//! this file only lists the handlers and adds what every route shares (the `/api/v1` prefix,
//! the `{id}` parameters, the error answer, the bearer token). `tests/it/openapi.rs` fails
//! when a route of the router is missing here or has no description.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::api::{API_PREFIX, Api};
use crate::error::ErrorBody;

/// The document's own route.
pub fn routes() -> Api {
    Api::new().get("/openapi.json", serve)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchboard",
        description = "A self-hosted shared inbox for WhatsApp Business. Every error answers `{\"error\": {\"code\", \"message\"}}`; \
                       lists paginate with `cursor` and `limit` and answer a `next_cursor`."
    ),
    paths(
        serve,
        crate::webhook::http::list,
        crate::webhook::http::get_one,
        crate::webhook::http::replay,
        crate::auth::http::login,
        crate::auth::http::logout,
        crate::auth::http::me,
        crate::team::http::invite,
        crate::team::http::accept,
        crate::team::http::resend,
        crate::team::http::cancel,
        crate::team::http::list_members,
        crate::team::http::get_member,
        crate::team::http::patch_member,
        crate::team::http::deactivate,
        crate::team::http::reactivate,
        crate::team::http::list_labels,
        crate::team::http::create_label,
        crate::team::http::patch_label,
        crate::team::http::delete_label,
        crate::team::http::list_teams,
        crate::team::http::create_team,
        crate::team::http::patch_team,
        crate::team::http::delete_team,
        crate::team::http::get_preferences,
        crate::team::http::put_preferences,
        crate::audit::http::list,
        crate::assignment::http::get,
        crate::assignment::http::put,
        crate::assignment::http::log,
        crate::assignment::http::bulk_reassign,
        crate::content::http::list,
        crate::content::http::create,
        crate::content::http::get,
        crate::content::http::patch,
        crate::content::http::delete,
        crate::apikeys::http::create,
        crate::apikeys::http::list,
        crate::apikeys::http::revoke,
        crate::workspace::http::get,
        crate::workspace::http::patch,
        crate::timeline::http::activities,
        crate::timeline::http::timeline,
        crate::timeline::http::add_note,
        crate::outbox::http::send,
        crate::outbox::http::mark_read,
        crate::outbox::http::typing,
        crate::outbox::http::media::upload,
        crate::media::http::upload,
        crate::media::http::get,
        crate::reports::http::team,
        crate::live::ws::upgrade,
        crate::inbox::http::numbers::list,
        crate::inbox::http::numbers::create,
        crate::inbox::http::numbers::get_one,
        crate::inbox::http::numbers::patch,
        crate::inbox::http::numbers::delete,
        crate::inbox::http::numbers::list_templates,
        crate::inbox::http::numbers::sync_templates,
        crate::inbox::http::groups::list,
        crate::inbox::http::groups::create,
        crate::inbox::http::groups::patch,
        crate::inbox::http::groups::delete,
        crate::inbox::http::leads::list,
        crate::inbox::http::leads_csv::export,
        crate::inbox::http::leads_csv::import,
        crate::inbox::http::leads::create,
        crate::inbox::http::leads::get_one,
        crate::inbox::http::leads::patch,
        crate::inbox::http::leads::delete,
        crate::inbox::http::conversations::list,
        crate::inbox::http::conversations::get_one,
        crate::inbox::http::conversations::messages,
        crate::inbox::http::ownership::assign,
        crate::inbox::http::ownership::claim,
        crate::inbox::http::ownership::set_status,
        crate::inbox::http::ownership::set_labels,
        crate::inbox::http::ownership::get_access,
        crate::inbox::http::ownership::add_access,
        crate::inbox::http::ownership::remove_access,
        crate::inbox::http::notes::add,
        crate::inbox::http::notes::mentions,
        crate::inbox::http::notes::read,
        crate::inbox::http::search::search,
        crate::intake::http::submit,
        crate::distribution::http::get,
        crate::distribution::http::put,
        crate::distribution::http::history,
        crate::agency::http::make,
        crate::agency::http::get,
        crate::agency::http::list_clients,
        crate::agency::http::invite,
        crate::agency::http::resend,
        crate::agency::http::delete,
        crate::agency::http::unlink,
        crate::agency::http::client_leads,
        crate::agency::http::client_lead,
        crate::agency::http::client_report,
        crate::agency::http::accept,
        crate::agency::http::unlink_from_client,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Shared)
)]
struct Doc;

/// What every route shares.
struct Shared;

impl Modify for Shared {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let paths = std::mem::take(&mut doc.paths.paths);
        for (path, mut item) in paths {
            let names: Vec<String> =
                path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).map(str::to_owned).collect();
            for op in operations(&mut item) {
                let params = op.parameters.get_or_insert_with(Vec::new);
                for name in &names {
                    if !params.iter().any(|p| &p.name == name && p.parameter_in == ParameterIn::Path) {
                        params.push(id_parameter(name));
                    }
                }
                if !op.responses.responses.keys().any(|k| k.starts_with('4')) {
                    let error = ResponseBuilder::new()
                        .description("The client's mistake: unauthenticated, forbidden, not found, invalid input, conflict, throttled.")
                        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
                        .build();
                    op.responses.responses.insert("4XX".to_owned(), error.into());
                }
            }
            doc.paths.paths.insert(format!("{API_PREFIX}{path}"), item);
        }
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // A session token or an API key; the session cookie of the browser UI works too.
        doc.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}

/// The operations of a path, whatever their method.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [item.get.as_mut(), item.put.as_mut(), item.post.as_mut(), item.delete.as_mut(), item.patch.as_mut()]
        .into_iter()
        .flatten()
}

/// A `{name}` of a route: every id in the API is a UUID.
fn id_parameter(name: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(format!("The {name} of the resource (a UUID).")))
        .schema(Some(
            ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        ))
        .build()
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

/// The document as served. Untagged enums (a chat item is a message or a note) come out of
/// the derives as `oneOf`, which fails an answer that happens to match two branches; the
/// answers are what serde wrote, so any matching branch will do (`anyOf`).
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    any_of(&mut doc);
    doc.to_string()
});

fn any_of(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(branches) = m.remove("oneOf") {
                m.insert("anyOf".to_owned(), branches);
            }
            m.values_mut().for_each(any_of);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(any_of),
        _ => {}
    }
}

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    description = "This document: OpenAPI 3.1 of every /api/v1 route, its parameters, bodies, answers and errors.",
    security(()),
    responses((status = 200, description = "The OpenAPI document.", body = Object))
)]
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
}
