//! Who sees and does what: the permission matrix over every route, policy vs SQL on random
//! worlds, ownership actions, the claim race. Conversations are seeded straight into the
//! database (webhook ingest lives elsewhere) by the helpers at the end of this file.

use std::collections::{BTreeSet, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::db::Db;
use switchboard::policy::{self, ConvFacts, LeadFacts, Permissions, Role, Viewer};
use switchboard::{bind_viewer, on_db};
use uuid::Uuid;

use crate::on_both;
use crate::support::*;

// ---------------------------------------------------------------------------------------------
// The permission matrix.

/// Who calls. Order = the columns of [`Row::expect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Plain,
    Others,
    Unassigned,
    Managers,
    Integrations,
    DeleteLeads,
    Labeled,
    Explicit,
    Assignee,
    Deactivated,
    Anonymous,
}

const WHO: [Who; 12] = [
    Who::Admin,
    Who::Plain,
    Who::Others,
    Who::Unassigned,
    Who::Managers,
    Who::Integrations,
    Who::DeleteLeads,
    Who::Labeled,
    Who::Explicit,
    Who::Assignee,
    Who::Deactivated,
    Who::Anonymous,
];

/// What `{id}` in a row's path stands for; a fresh one is made for every call.
#[derive(Clone, Copy, Debug)]
enum Target {
    None,
    /// Assigned to `Assignee`, carrying the label granted to `Labeled`, explicit access for `Explicit`.
    Conv,
    /// The same but unassigned.
    OpenConv,
    /// The lead behind a `Conv` (assigned to `Assignee`).
    Lead,
    /// The lead behind an `OpenConv` (unassigned).
    OpenLead,
    Member,
    AdminMember,
    DeactivatedMember,
    Invitation,
    Label,
    Number,
    /// A message with media (bytes already cached) in a `Conv`.
    Media,
    /// A journaled webhook that reached no workspace.
    WebhookEvent,
    /// A lead group.
    Group,
    /// A mention of `Assignee` in a note of a `Conv`.
    Mention,
    /// An API key of the workspace.
    ApiKey,
    /// A team (no members).
    Team,
    /// A `workspace` content item owned by the admin.
    Content,
    /// An agency client entry, `invited` (the admin's workspace made an agency first).
    AgencyClient,
    /// An agency client entry `managing` a new workspace with one lead (`{lead_id}`).
    ManagedClient,
}

struct Fresh {
    id: Uuid,
    accept_token: String,
    /// What `{lead_id}` stands for.
    sub: Uuid,
}

struct World {
    tokens: HashMap<&'static str, String>,
    ids: HashMap<&'static str, Uuid>,
    label: Uuid,
    label2: Uuid,
    number: Uuid,
    spare: Uuid,
}

impl World {
    fn id(&self, who: Who) -> Uuid {
        self.ids[format!("{who:?}").as_str()]
    }
}

type Body = fn(&World, &Fresh, u32) -> Value;

struct Row {
    method: &'static str,
    path: &'static str,
    target: Target,
    body: Option<Body>,
    /// Expected status per caller, in [`WHO`] order.
    expect: [u16; 12],
}

fn row(method: &'static str, path: &'static str, target: Target, body: Option<Body>, expect: [u16; 12]) -> Row {
    Row { method, path, target, body, expect }
}

/// Visible to admin, others-flag, labeled, explicit, assignee: 200; the rest 404.
const SEES: [u16; 12] = [200, 404, 200, 404, 404, 404, 404, 200, 200, 200, 401, 401];
const ALL_OK: [u16; 12] = [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 401, 401];
const ALL_CREATED: [u16; 12] = [201, 201, 201, 201, 201, 201, 201, 201, 201, 201, 401, 401];
const ADMIN_ONLY: [u16; 12] = [200, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 401];
const MANAGERS: [u16; 12] = [200, 403, 403, 403, 200, 403, 403, 403, 403, 403, 401, 401];
/// Groups: admins and members with `manage_groups` (the "Managers" caller has it too).
const GROUP_MANAGERS: [u16; 12] = [200, 403, 403, 403, 200, 403, 403, 403, 403, 403, 401, 401];
const INTEGRATIONS: [u16; 12] = [200, 403, 403, 403, 403, 200, 403, 403, 403, 403, 401, 401];
/// Assign, labels: admin, others-flag, assignee; label/explicit grants only read.
const ASSIGNERS: [u16; 12] = [200, 404, 200, 404, 404, 404, 404, 403, 403, 200, 401, 401];
/// Status: only the assignee (the admin is not the assignee here).
const ASSIGNEE_ONLY: [u16; 12] = [403, 404, 403, 404, 404, 404, 404, 403, 403, 200, 401, 401];
/// Media uploads: admin and the assignee (of the matrix's chats) pass the policy, then get 400
/// (the matrix sends JSON, not multipart).
const UPLOADERS: [u16; 12] = [400, 403, 403, 403, 403, 403, 403, 403, 403, 400, 401, 401];
/// Explicit access changes: admin and assignee.
const ACCESS_EDITORS: [u16; 12] = [200, 404, 403, 404, 404, 404, 404, 403, 403, 200, 401, 401];

fn with(mut e: [u16; 12], from: u16, to: u16) -> [u16; 12] {
    for s in &mut e {
        if *s == from {
            *s = to;
        }
    }
    e
}

fn matrix() -> Vec<Row> {
    use Target::*;
    vec![
        row(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(|_, _, _| json!({"email": ADMIN_EMAIL, "password": PASSWORD})),
            [200; 12],
        ),
        row("GET", "/api/v1/auth/me", None, Option::None, ALL_OK),
        // The OpenAPI document is public, like the routes it describes.
        row("GET", "/api/v1/openapi.json", None, Option::None, with(ALL_OK, 401, 200)),
        // A plain GET without the websocket upgrade: authenticated callers get 400.
        row("GET", "/api/v1/live", None, Option::None, [400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 401, 401]),
        row("GET", "/api/v1/workspace", None, Option::None, ALL_OK),
        row("PATCH", "/api/v1/workspace", None, Some(|_, _, _| json!({"session_gap_secs": 1800})), ADMIN_ONLY),
        row("GET", "/api/v1/numbers", None, Option::None, ALL_OK),
        row(
            "POST",
            "/api/v1/numbers",
            None,
            Some(|_, _, n| {
                json!({
                    "phone_number_id": format!("77{n:08}"), "display_phone_number": format!("+1555{n:07}"), "access_token": "t"
                })
            }),
            with(INTEGRATIONS, 200, 201),
        ),
        row("GET", "/api/v1/numbers/{id}", Number, Option::None, ALL_OK),
        row(
            "PATCH",
            "/api/v1/numbers/{id}",
            Number,
            Some(|_, _, _| json!({"auto_import_contacts": true})),
            INTEGRATIONS,
        ),
        row("GET", "/api/v1/numbers/{id}/templates", Number, Option::None, ALL_OK),
        // The matrix's number has no WABA: those who may sync are told there is nothing to sync.
        row("POST", "/api/v1/numbers/{id}/templates/sync", Number, Option::None, with(INTEGRATIONS, 200, 422)),
        row("DELETE", "/api/v1/numbers/{id}", Number, Option::None, with(INTEGRATIONS, 200, 204)),
        row("GET", "/api/v1/leads", None, Option::None, ALL_OK),
        row(
            "POST",
            "/api/v1/leads",
            None,
            Some(|_, _, n| json!({"name": "Matrix lead", "phone": format!("+4420{n:08}")})),
            ALL_CREATED,
        ),
        // Everyone may export: the file holds the leads they can see.
        row("GET", "/api/v1/leads/export", None, Option::None, ALL_OK),
        // Admins and manage_integrations; they get 415 here, as the matrix sends no CSV body.
        row("POST", "/api/v1/leads/import", None, Option::None, with(INTEGRATIONS, 200, 415)),
        row("GET", "/api/v1/leads/{id}", Lead, Option::None, SEES),
        // Only who may assign the lead edits it; label and explicit grants only read it.
        row("PATCH", "/api/v1/leads/{id}", Lead, Some(|_, _, _| json!({"name": "Renamed"})), ASSIGNERS),
        // delete_leads covers only leads assigned to oneself; admins delete any.
        row(
            "DELETE",
            "/api/v1/leads/{id}",
            Lead,
            Option::None,
            [204, 404, 403, 404, 404, 404, 404, 403, 403, 403, 401, 401],
        ),
        row("GET", "/api/v1/conversations", None, Option::None, ALL_OK),
        row("GET", "/api/v1/conversations/{id}", Conv, Option::None, SEES),
        row("GET", "/api/v1/conversations/{id}/messages", Conv, Option::None, SEES),
        // Templates go whatever the window; only the assignee replies.
        row(
            "POST",
            "/api/v1/conversations/{id}/messages",
            Conv,
            Some(|_, _, _| json!({"type": "template", "template": {"name": "hello", "language": "en_US"}})),
            with(ASSIGNEE_ONLY, 200, 202),
        ),
        row("POST", "/api/v1/conversations/{id}/read", Conv, Option::None, SEES),
        row("POST", "/api/v1/conversations/{id}/typing", Conv, Option::None, with(ASSIGNEE_ONLY, 200, 202)),
        // Uploads are for the assignee (who then gets 400 here: the body is not multipart).
        row("POST", "/api/v1/conversations/{id}/media", Conv, Option::None, with(ASSIGNEE_ONLY, 200, 400)),
        row("GET", "/api/v1/media/{id}", Media, Option::None, SEES),
        // Uploading to the media store: admins, content creators and whoever is the assignee of
        // a chat (who then get 400 here: the body is not multipart); the rest 403.
        row("POST", "/api/v1/media", None, Option::None, UPLOADERS),
        row("GET", "/api/v1/leads/{id}/timeline", Lead, Option::None, SEES),
        // Everyone: the list holds the activities of the leads they can see.
        row("GET", "/api/v1/activities", None, Option::None, ALL_OK),
        row("GET", "/api/v1/audit", None, Option::None, ADMIN_ONLY),
        // Anyone who sees the conversation writes notes, not only its assignee.
        row(
            "POST",
            "/api/v1/conversations/{id}/notes",
            Conv,
            Some(|_, _, _| json!({"text": "a note"})),
            with(SEES, 200, 201),
        ),
        // Each member's own mentions; reading one is for the mentioned member alone.
        row("GET", "/api/v1/mentions", None, Option::None, ALL_OK),
        row(
            "POST",
            "/api/v1/mentions/{id}/read",
            Mention,
            Option::None,
            [404, 404, 404, 404, 404, 404, 404, 404, 404, 200, 401, 401],
        ),
        // Everyone searches, and finds what they see.
        row("GET", "/api/v1/search?q=hello", None, Option::None, ALL_OK),
        row("POST", "/api/v1/leads/{id}/notes", Lead, Some(|_, _, _| json!({"text": "a note"})), with(SEES, 200, 201)),
        row("GET", "/api/v1/assignment", None, Option::None, ALL_OK),
        // Admins and manage_members.
        row("PUT", "/api/v1/assignment", None, Some(|_, _, _| json!({"mode": "unassigned"})), MANAGERS),
        row("GET", "/api/v1/leads/{id}/assignment-log", Lead, Option::None, SEES),
        // Admins and view_others_leads; the lead is the Assignee's, moved to the admin.
        row(
            "POST",
            "/api/v1/leads/bulk-reassign",
            Lead,
            Some(
                |w, f, _| json!({"from_member_id": w.id(Who::Assignee), "to_member_id": w.id(Who::Admin), "lead_ids": [f.id]}),
            ),
            [200, 403, 200, 403, 403, 403, 403, 403, 403, 403, 401, 401],
        ),
        row("GET", "/api/v1/admin/webhook-events", None, Option::None, ADMIN_ONLY),
        row("GET", "/api/v1/admin/webhook-events/{id}", WebhookEvent, Option::None, ADMIN_ONLY),
        row("POST", "/api/v1/admin/webhook-events/{id}/replay", WebhookEvent, Option::None, ADMIN_ONLY),
        row(
            "POST",
            "/api/v1/conversations/{id}/assign",
            Conv,
            Some(|w, _, _| json!({"assignee_id": w.spare})),
            ASSIGNERS,
        ),
        // Claiming an unassigned conversation: view_unassigned (and admins); grants only read.
        row(
            "POST",
            "/api/v1/conversations/{id}/claim",
            OpenConv,
            Option::None,
            [200, 404, 404, 200, 404, 404, 404, 403, 403, 404, 401, 401],
        ),
        // Claiming an assigned one: whoever sees it is told it is taken.
        row("POST", "/api/v1/conversations/{id}/claim", Conv, Option::None, with(SEES, 200, 409)),
        row(
            "POST",
            "/api/v1/conversations/{id}/status",
            Conv,
            Some(|_, _, _| json!({"status": "closed"})),
            ASSIGNEE_ONLY,
        ),
        row(
            "PUT",
            "/api/v1/conversations/{id}/labels",
            Conv,
            Some(|w, _, _| json!({"label_ids": [w.label, w.label2]})),
            ASSIGNERS,
        ),
        row("GET", "/api/v1/conversations/{id}/access", Conv, Option::None, SEES),
        row(
            "POST",
            "/api/v1/conversations/{id}/access",
            Conv,
            Some(|w, _, _| json!({"member_ids": [w.spare]})),
            ACCESS_EDITORS,
        ),
        row(
            "DELETE",
            "/api/v1/conversations/{id}/access",
            Conv,
            Some(|w, _, _| json!({"member_ids": [w.id(Who::Explicit)]})),
            ACCESS_EDITORS,
        ),
        row(
            "POST",
            "/api/v1/invitations",
            None,
            Some(|_, _, n| json!({"email": format!("inv{n}@example.com"), "role": "member"})),
            with(MANAGERS, 200, 201),
        ),
        row(
            "POST",
            "/api/v1/invitations",
            None,
            Some(|_, _, n| json!({"email": format!("adm{n}@example.com"), "role": "admin"})),
            with(ADMIN_ONLY, 200, 201),
        ),
        // Accepting needs no login: the accept token is the credential.
        row(
            "POST",
            "/api/v1/invitations/accept",
            Invitation,
            Some(|_, f, _| json!({"accept_token": f.accept_token, "password": PASSWORD})),
            [201; 12],
        ),
        row("POST", "/api/v1/invitations/{id}/resend", Invitation, Option::None, MANAGERS),
        row("DELETE", "/api/v1/invitations/{id}", Invitation, Option::None, with(MANAGERS, 200, 204)),
        row("GET", "/api/v1/members", None, Option::None, ALL_OK),
        row("GET", "/api/v1/members/{id}", Member, Option::None, ALL_OK),
        row(
            "PATCH",
            "/api/v1/members/{id}",
            Member,
            Some(|_, _, _| json!({"name": "Renamed", "permissions": {"view_unassigned": true}})),
            MANAGERS,
        ),
        row("PATCH", "/api/v1/members/{id}", AdminMember, Some(|_, _, _| json!({"name": "Renamed"})), ADMIN_ONLY),
        row("POST", "/api/v1/members/{id}/deactivate", Member, Option::None, MANAGERS),
        row("POST", "/api/v1/members/{id}/deactivate", AdminMember, Option::None, ADMIN_ONLY),
        row("POST", "/api/v1/members/{id}/reactivate", DeactivatedMember, Option::None, MANAGERS),
        row("GET", "/api/v1/groups", None, Option::None, ALL_OK),
        row(
            "POST",
            "/api/v1/groups",
            None,
            Some(|_, _, n| json!({"name": format!("Group {n}")})),
            with(GROUP_MANAGERS, 200, 201),
        ),
        row(
            "PATCH",
            "/api/v1/groups/{id}",
            Group,
            Some(|_, _, n| json!({"name": format!("Renamed group {n}")})),
            GROUP_MANAGERS,
        ),
        row("DELETE", "/api/v1/groups/{id}", Group, Option::None, with(ADMIN_ONLY, 200, 204)),
        // Everyone gets a report: admins and view_others_leads members every row, others their own.
        row("GET", "/api/v1/reports/team", None, Option::None, ALL_OK),
        row("GET", "/api/v1/labels", None, Option::None, ALL_OK),
        row(
            "POST",
            "/api/v1/labels",
            None,
            Some(|_, _, n| json!({"name": format!("Label {n}")})),
            with(ADMIN_ONLY, 200, 201),
        ),
        row("PATCH", "/api/v1/labels/{id}", Label, Some(|_, _, n| json!({"name": format!("Renamed {n}")})), ADMIN_ONLY),
        row("DELETE", "/api/v1/labels/{id}", Label, Option::None, with(ADMIN_ONLY, 200, 204)),
        // API keys: admins and manage_integrations.
        row(
            "POST",
            "/api/v1/api-keys",
            None,
            Some(|_, _, n| json!({"name": format!("Key {n}"), "scopes": ["leads:write"]})),
            with(INTEGRATIONS, 200, 201),
        ),
        row("GET", "/api/v1/api-keys", None, Option::None, INTEGRATIONS),
        row("DELETE", "/api/v1/api-keys/{id}", ApiKey, Option::None, with(INTEGRATIONS, 200, 204)),
        // Intake takes an API key: a session, whoever's, is refused.
        row(
            "POST",
            "/api/v1/intake/leads",
            None,
            Some(|_, _, n| json!({"name": "Intake lead", "phone": format!("+4420{n:08}")})),
            [403, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 401],
        ),
        // Distribution: admins and manage_integrations.
        row("GET", "/api/v1/distribution", None, Option::None, INTEGRATIONS),
        row("PUT", "/api/v1/distribution", None, Some(|_, _, _| json!({"keep_copy": true, "rules": []})), INTEGRATIONS),
        row("GET", "/api/v1/distribution/history", None, Option::None, INTEGRATIONS),
        // Teams: everyone reads them; admins and manage_members manage them.
        row("GET", "/api/v1/teams", None, Option::None, ALL_OK),
        row(
            "POST",
            "/api/v1/teams",
            None,
            Some(|_, _, n| json!({"name": format!("Team {n}")})),
            with(MANAGERS, 200, 201),
        ),
        row(
            "PATCH",
            "/api/v1/teams/{id}",
            Team,
            Some(|_, _, n| json!({"name": format!("Renamed team {n}")})),
            MANAGERS,
        ),
        row("DELETE", "/api/v1/teams/{id}", Team, Option::None, with(MANAGERS, 200, 204)),
        // Content: everyone lists what they see; creating needs create_content (nobody here
        // but the admin); the admin's workspace item is seen by all, edited by its owner (and
        // edit_others_content), deleted by admins only. The rules per role: tests/it/content.rs.
        row("GET", "/api/v1/content", None, Option::None, ALL_OK),
        row(
            "POST",
            "/api/v1/content",
            None,
            Some(|_, _, n| json!({"kind": "message", "title": format!("Reply {n}"), "body": "Hello"})),
            with(ADMIN_ONLY, 200, 201),
        ),
        row("GET", "/api/v1/content/{id}", Content, Option::None, ALL_OK),
        row("PATCH", "/api/v1/content/{id}", Content, Some(|_, _, _| json!({"title": "Renamed"})), ADMIN_ONLY),
        row("DELETE", "/api/v1/content/{id}", Content, Option::None, with(ADMIN_ONLY, 200, 204)),
        // Agencies: admins act for the agency (the first row makes the workspace one); anyone
        // with the token accepts (here as a new person creating a workspace); only the client's
        // admins unlink (the matrix's workspace is managed by nobody: 404).
        row(
            "POST",
            "/api/v1/agency",
            None,
            Some(|_, _, n| json!({"name": format!("Agency {n}")})),
            [201, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 401],
        ),
        row("GET", "/api/v1/agency", None, Option::None, ADMIN_ONLY),
        row("GET", "/api/v1/agency/clients", None, Option::None, ADMIN_ONLY),
        row(
            "POST",
            "/api/v1/agency/clients",
            None,
            Some(|_, _, n| json!({"email": format!("client{n}@example.com"), "name": "Client"})),
            with(ADMIN_ONLY, 200, 201),
        ),
        row("POST", "/api/v1/agency/clients/{id}/resend", AgencyClient, Option::None, ADMIN_ONLY),
        row("DELETE", "/api/v1/agency/clients/{id}", AgencyClient, Option::None, with(ADMIN_ONLY, 200, 204)),
        row("POST", "/api/v1/agency/clients/{id}/unlink", ManagedClient, Option::None, ADMIN_ONLY),
        row("GET", "/api/v1/agency/clients/{id}/leads", ManagedClient, Option::None, ADMIN_ONLY),
        row("GET", "/api/v1/agency/clients/{id}/leads/{lead_id}", ManagedClient, Option::None, ADMIN_ONLY),
        row("GET", "/api/v1/agency/clients/{id}/reports/team", ManagedClient, Option::None, ADMIN_ONLY),
        row(
            "POST",
            "/api/v1/agency-invitations/accept",
            AgencyClient,
            Some(
                |_, f, n| json!({"accept_token": f.accept_token, "workspace_name": format!("Accepting {n}"), "name": "C", "password": PASSWORD}),
            ),
            [201; 12],
        ),
        row(
            "POST",
            "/api/v1/workspace/unlink-agency",
            None,
            Option::None,
            [404, 403, 403, 403, 403, 403, 403, 403, 403, 403, 401, 401],
        ),
        // Last: it revokes the caller's token.
        row("GET", "/api/v1/me/preferences", None, Option::None, ALL_OK),
        row(
            "PUT",
            "/api/v1/me/preferences",
            None,
            Some(|_, _, _| json!({"team_view": {"show_others": true, "show_unassigned": false}})),
            ALL_OK,
        ),
        // Unassigned leads in bulk: admins, and members with view_unassigned and view_others_leads
        // (nobody here has both); the lead is unassigned.
        row(
            "POST",
            "/api/v1/leads/bulk-reassign",
            OpenLead,
            Some(|w, f, _| json!({"from_member_id": null, "to_member_id": w.id(Who::Admin), "lead_ids": [f.id]})),
            ADMIN_ONLY,
        ),
        row("POST", "/api/v1/auth/logout", None, Option::None, with(ALL_OK, 200, 204)),
    ]
}

/// Adding a route without a matrix row (or leaving a row for a removed route) fails here.
#[test]
fn matrix_covers_every_route() {
    let routes: BTreeSet<(String, String)> =
        switchboard::app::api_routes().into_iter().map(|(m, p)| (m.to_owned(), p)).collect();
    // A row's path may carry a query (`?q=…`) for the call; the route is the path before it.
    let rows: BTreeSet<(String, String)> =
        matrix().iter().map(|r| (r.method.to_owned(), r.path.split('?').next().unwrap_or(r.path).to_owned())).collect();
    let missing: Vec<_> = routes.difference(&rows).collect();
    let stale: Vec<_> = rows.difference(&routes).collect();
    assert!(missing.is_empty(), "routes without a permission-matrix row: {missing:?}");
    assert!(stale.is_empty(), "matrix rows for routes that don't exist: {stale:?}");
}

on_both! {
    // The recorded route list is the router: every listed (method, path) is served, and every
    // other method on a listed path answers 405.
    async fn route_list_matches_the_router(t: TestDb) {
        let app = spawn_app(&t).await;
        let routes = switchboard::app::api_routes();
        let paths: BTreeSet<&str> = routes.iter().map(|(_, p)| p.as_str()).collect();
        for path in paths {
            let url = path.replace("{id}", &Uuid::new_v4().to_string());
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                let listed = routes.iter().any(|(m, p)| *m == method && p == path);
                let resp = app.call(Method::from_bytes(method.as_bytes()).unwrap(), &url, None, None).await;
                let status = resp.status();
                if listed {
                    assert!(status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is listed but answers {status}");
                } else {
                    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path} is not listed");
                }
            }
        }
    }
}

async fn make_world(app: &TestApp) -> World {
    let mut tokens = HashMap::new();
    let mut ids = HashMap::new();
    let admin = app.login(ADMIN_EMAIL, PASSWORD).await;
    ids.insert("Admin", Uuid::parse_str(admin["user"]["id"].as_str().unwrap()).unwrap());
    tokens.insert("Admin", app.admin_token.clone());
    let flags: [(&'static str, Value); 10] = [
        ("Plain", json!({})),
        ("Others", json!({"view_others_leads": true})),
        ("Unassigned", json!({"view_unassigned": true})),
        ("Managers", json!({"manage_members": true, "manage_groups": true})),
        ("Integrations", json!({"manage_integrations": true})),
        ("DeleteLeads", json!({"delete_leads": true})),
        ("Labeled", json!({})),
        ("Explicit", json!({})),
        ("Assignee", json!({})),
        ("Deactivated", json!({"view_others_leads": true, "view_unassigned": true})),
    ];
    for (name, perms) in flags {
        let (id, token) = app.member(&format!("{}@example.com", name.to_lowercase()), perms).await;
        ids.insert(name, id);
        tokens.insert(name, token);
    }
    let label = insert_label(&app.db, app.workspace_id, "Granted").await;
    let label2 = insert_label(&app.db, app.workspace_id, "Other").await;
    grant_labels(&app.db, ids["Labeled"], &[label]).await;
    let (spare, _) = app.member("spare@example.com", json!({})).await;
    let (status, body) =
        app.post(&format!("/api/v1/members/{}/deactivate", ids["Deactivated"]), &app.admin_token, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let number = insert_number(&app.db, app.workspace_id).await;
    World { tokens, ids, label, label2, number, spare }
}

async fn fresh(app: &TestApp, w: &World, target: Target, n: u32) -> Fresh {
    let ws = app.workspace_id;
    let plain = |id| Fresh { id, accept_token: String::new(), sub: Uuid::nil() };
    let conv = |assignee: Option<Uuid>| async move {
        let lead = insert_lead(&app.db, ws, assignee).await;
        let conv = insert_conversation(&app.db, ws, w.number, lead, assignee, &[w.label], &[w.id(Who::Explicit)]).await;
        (conv, lead)
    };
    match target {
        Target::None => plain(Uuid::nil()),
        Target::Conv => plain(conv(Some(w.id(Who::Assignee))).await.0),
        Target::OpenConv => plain(conv(None).await.0),
        Target::Lead => plain(conv(Some(w.id(Who::Assignee))).await.1),
        Target::OpenLead => plain(conv(None).await.1),
        Target::Member => plain(insert_user(&app.db, ws, "member", "active").await),
        Target::AdminMember => plain(insert_user(&app.db, ws, "admin", "active").await),
        Target::DeactivatedMember => plain(insert_user(&app.db, ws, "member", "deactivated").await),
        Target::Invitation => {
            let (status, inv) = app
                .post("/api/v1/invitations", &app.admin_token, json!({"email": format!("fresh{n}@example.com")}))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{inv}");
            Fresh {
                id: Uuid::parse_str(inv["id"].as_str().unwrap()).unwrap(),
                accept_token: inv["accept_token"].as_str().unwrap().to_owned(),
                sub: Uuid::nil(),
            }
        }
        Target::AgencyClient | Target::ManagedClient => {
            // The admin's workspace is an agency (made by the matrix's first agency row).
            let _ = app.post("/api/v1/agency", &app.admin_token, json!({"name": "Matrix agency"})).await;
            let email = format!("agencyclient{n}@example.com");
            let (status, inv) = app.post("/api/v1/agency/clients", &app.admin_token, json!({"email": email})).await;
            assert_eq!(status, StatusCode::CREATED, "{inv}");
            let id = Uuid::parse_str(inv["id"].as_str().unwrap()).unwrap();
            let accept_token = inv["accept_token"].as_str().unwrap().to_owned();
            if matches!(target, Target::AgencyClient) {
                return Fresh { id, accept_token, sub: Uuid::nil() };
            }
            let body = json!({"accept_token": accept_token, "workspace_name": format!("Client {n}"), "name": "C", "password": PASSWORD});
            let resp = app.call(Method::POST, "/api/v1/agency-invitations/accept", None, Some(body)).await;
            assert_eq!(resp.status(), StatusCode::CREATED);
            let session: Value = resp.json().await.unwrap();
            let client_token = session["token"].as_str().unwrap();
            let (status, lead) = app
                .post("/api/v1/leads", client_token, json!({"name": "Client lead", "phone": format!("+4420{n:08}")}))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{lead}");
            Fresh { id, accept_token: String::new(), sub: Uuid::parse_str(lead["id"].as_str().unwrap()).unwrap() }
        }
        Target::Label => plain(insert_label(&app.db, ws, &format!("Fresh {n}")).await),
        Target::Number => plain(insert_number(&app.db, ws).await),
        Target::Media => {
            let (conv, _) = conv(Some(w.id(Who::Assignee))).await;
            plain(insert_cached_media(&app.db, ws, conv).await)
        }
        Target::Group => {
            let id = Uuid::new_v4();
            on_db!(&app.db, |p| sqlx::query(
                "INSERT INTO crm_groups (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)"
            )
            .bind(id)
            .bind(ws)
            .bind(format!("Fresh group {n}"))
            .bind(now())
            .execute(p)
            .await
            .map(|_| ()))
            .unwrap();
            plain(id)
        }
        Target::Mention => {
            let (conv, _) = conv(Some(w.id(Who::Assignee))).await;
            let (status, note) = app
                .post(
                    &format!("/api/v1/conversations/{conv}/notes"),
                    &app.admin_token,
                    json!({"text": "see this", "mention_ids": [w.id(Who::Assignee)]}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{note}");
            let note = Uuid::parse_str(note["id"].as_str().unwrap()).unwrap();
            plain(
                on_db!(&app.db, |p| sqlx::query_scalar("SELECT id FROM mentions WHERE note_id = $1")
                    .bind(note)
                    .fetch_one(p)
                    .await)
                .unwrap(),
            )
        }
        Target::ApiKey => {
            let (status, key) = app
                .post(
                    "/api/v1/api-keys",
                    &app.admin_token,
                    json!({"name": format!("Fresh {n}"), "scopes": ["leads:write"]}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{key}");
            plain(Uuid::parse_str(key["id"].as_str().unwrap()).unwrap())
        }
        Target::Team => {
            let id = Uuid::new_v4();
            on_db!(&app.db, |p| sqlx::query(
                "INSERT INTO teams (id, workspace_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)"
            )
            .bind(id)
            .bind(ws)
            .bind(format!("Fresh team {n}"))
            .bind(now())
            .execute(p)
            .await
            .map(|_| ()))
            .unwrap();
            plain(id)
        }
        Target::Content => {
            let id = Uuid::new_v4();
            on_db!(&app.db, |p| sqlx::query(
                "INSERT INTO content (id, workspace_id, owner_id, kind, title, body, visibility, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'message', $4, 'Hello', 'workspace', $5, $5)"
            )
            .bind(id)
            .bind(ws)
            .bind(w.id(Who::Admin))
            .bind(format!("Fresh content {n}"))
            .bind(now())
            .execute(p)
            .await
            .map(|_| ()))
            .unwrap();
            plain(id)
        }
        Target::WebhookEvent => {
            let id = Uuid::new_v4();
            on_db!(&app.db, |p| sqlx::query(
                "INSERT INTO webhook_events (id, received_at, signature_valid, body, state) VALUES ($1, $2, TRUE, $3, 'done')"
            )
            .bind(id)
            .bind(now())
            .bind(b"{}".to_vec())
            .execute(p)
            .await
            .map(|_| ()))
            .unwrap();
            plain(id)
        }
    }
}

on_both! {
    async fn permission_matrix(t: TestDb) {
        let app = spawn_app(&t).await;
        let w = make_world(&app).await;
        let mut n = 0u32;
        let mut failures = Vec::new();
        for r in matrix() {
            for (i, who) in WHO.iter().enumerate() {
                n += 1;
                let f = fresh(&app, &w, r.target, n).await;
                let path = r.path.replace("{id}", &f.id.to_string()).replace("{lead_id}", &f.sub.to_string());
                let body = r.body.map(|b| b(&w, &f, n));
                let token = match who {
                    Who::Anonymous => None,
                    other => Some(w.tokens[format!("{other:?}").as_str()].as_str()),
                };
                let method = Method::from_bytes(r.method.as_bytes()).unwrap();
                let resp = app.call(method, &path, token, body).await;
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                if status != r.expect[i] {
                    failures.push(format!("{} {} as {who:?}: expected {}, got {status} {text}", r.method, r.path, r.expect[i]));
                }
                if status >= 400 {
                    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    error_code(&body);
                }
            }
        }
        assert!(failures.is_empty(), "{} matrix cells disagree:\n{}", failures.len(), failures.join("\n"));
    }
}

// ---------------------------------------------------------------------------------------------
// The policy and the SQL predicates agree on random worlds.

async fn sql_visible(db: &Db, v: &Viewer, sql: &str) -> BTreeSet<Uuid> {
    on_db!(db, |p| bind_viewer!(sqlx::query_scalar::<_, Uuid>(sql), v).fetch_all(p).await)
        .unwrap()
        .into_iter()
        .collect()
}

on_both! {
    async fn policy_agrees_with_sql(t: TestDb) {
        let clock = switchboard::clock::Clock::default();
        let conv_sql = format!("SELECT c.id FROM conversations c WHERE {}", *policy::CONV_VISIBLE);
        let lead_sql = format!("SELECT l.id FROM leads l WHERE {}", *policy::LEAD_VISIBLE);
        for seed in 0..6u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut all_convs: Vec<(Uuid, ConvFacts)> = Vec::new();
            let mut all_leads: Vec<(Uuid, LeadFacts)> = Vec::new();
            let mut viewers = Vec::new();
            for w in 0..2 {
                let name = format!("W{seed}-{w}");
                switchboard::workspace::bootstrap(&t.db, &clock, &name, &format!("boss{seed}-{w}@x.test"), PASSWORD, None).await.unwrap();
                let ws: Uuid = on_db!(&t.db, |p| sqlx::query_scalar("SELECT id FROM workspaces WHERE name = $1").bind(&name).fetch_one(p).await).unwrap();
                let labels = [
                    insert_label(&t.db, ws, "a").await,
                    insert_label(&t.db, ws, "b").await,
                    insert_label(&t.db, ws, "c").await,
                ];
                let mut members = Vec::new();
                for _ in 0..6 {
                    let role = if rng.gen_bool(0.15) { Role::Admin } else { Role::Member };
                    let permissions = Permissions {
                        view_others_leads: rng.gen_bool(0.4),
                        view_unassigned: rng.gen_bool(0.4),
                        ..Default::default()
                    };
                    let id = insert_user(&t.db, ws, role.as_str(), "active").await;
                    set_permissions(&t.db, id, permissions).await;
                    let granted: Vec<Uuid> = labels.iter().copied().filter(|_| rng.gen_bool(0.3)).collect();
                    grant_labels(&t.db, id, &granted).await;
                    members.push(id);
                    viewers.push(Viewer { user_id: id, workspace_id: ws, role, active: true, permissions, label_ids: granted });
                }
                let numbers = [insert_number(&t.db, ws).await, insert_number(&t.db, ws).await, insert_number(&t.db, ws).await];
                let pick = |rng: &mut StdRng| if rng.gen_bool(0.35) { None } else { Some(members[rng.gen_range(0..members.len())]) };
                for _ in 0..14 {
                    let lead_assignee = pick(&mut rng);
                    let lead = insert_lead(&t.db, ws, lead_assignee).await;
                    let mut facts = LeadFacts { workspace_id: ws, assignee_id: lead_assignee, conversations: vec![] };
                    for number in numbers.iter().take(rng.gen_range(0..=3)) {
                        let assignee = pick(&mut rng);
                        let ls: Vec<Uuid> = labels.iter().copied().filter(|_| rng.gen_bool(0.25)).collect();
                        let access: Vec<Uuid> = members.iter().copied().filter(|_| rng.gen_bool(0.12)).collect();
                        let id = insert_conversation(&t.db, ws, *number, lead, assignee, &ls, &access).await;
                        let c = ConvFacts { workspace_id: ws, assignee_id: assignee, label_ids: ls, access_ids: access };
                        facts.conversations.push(c.clone());
                        all_convs.push((id, c));
                    }
                    all_leads.push((lead, facts));
                }
            }
            for v in &viewers {
                let want: BTreeSet<Uuid> = all_convs.iter().filter(|(_, c)| policy::can_see(v, c)).map(|(id, _)| *id).collect();
                let got = sql_visible(&t.db, v, &conv_sql).await;
                assert_eq!(got, want, "seed {seed}: conversations visible to {v:?}");
                let want: BTreeSet<Uuid> = all_leads.iter().filter(|(_, l)| policy::can_see_lead(v, l)).map(|(id, _)| *id).collect();
                let got = sql_visible(&t.db, v, &lead_sql).await;
                assert_eq!(got, want, "seed {seed}: leads visible to {v:?}");
                let mut off = v.clone();
                off.active = false;
                assert!(all_convs.iter().all(|(_, c)| !policy::can_see(&off, c)), "a deactivated member sees nothing");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ownership actions as stories.

on_both! {
    async fn assign_claim_status_labels_access(t: TestDb) {
        let app = spawn_app(&t).await;
        let admin = app.admin_token.clone();
        let (claimer_id, claimer) = app.member("claimer@example.com", json!({"view_unassigned": true})).await;
        let (lead_mgr_id, lead_mgr) = app.member("lead@example.com", json!({"view_others_leads": true})).await;
        let (viewer_id, viewer) = app.member("viewer@example.com", json!({})).await;
        let number = insert_number(&app.db, app.workspace_id).await;
        let lead = insert_lead(&app.db, app.workspace_id, None).await;
        let conv = insert_conversation(&app.db, app.workspace_id, number, lead, None, &[], &[]).await;
        let path = |s: &str| format!("/api/v1/conversations/{conv}{s}");

        // Claim: the lead follows; a second claim loses; someone who can't see it gets 404.
        let (status, c) = app.post(&path("/claim"), &claimer, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{c}");
        assert_eq!(c["assignee_id"], claimer_id.to_string());
        let (_, l) = app.get(&format!("/api/v1/leads/{lead}"), &admin).await;
        assert_eq!(l["assignee_id"], claimer_id.to_string(), "the lead gets the conversation's assignee");
        let (status, body) = app.post(&path("/claim"), &admin, json!({})).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(error_code(&body), "already_assigned");
        let (status, _) = app.post(&path("/claim"), &viewer, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Status: assignee only; an admin is refused until it is theirs.
        let (status, body) = app.post(&path("/status"), &admin, json!({"status": "closed"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&body), "not_assignee");
        let (status, c) = app.post(&path("/status"), &claimer, json!({"status": "closed"})).await;
        assert_eq!(status, StatusCode::OK, "{c}");
        assert_eq!(c["status"], "closed");
        let (status, _) = app.post(&path("/status"), &claimer, json!({"status": "snoozed"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        // Assign: null and unknown members are refused; others-flag may reassign.
        let (status, body) = app.post(&path("/assign"), &lead_mgr, json!({"assignee_id": null})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let (status, _) = app.post(&path("/assign"), &lead_mgr, json!({"assignee_id": Uuid::new_v4()})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (gone_id, _) = app.member("gone@example.com", json!({})).await;
        app.post(&format!("/api/v1/members/{gone_id}/deactivate"), &admin, json!({})).await;
        let (status, _) = app.post(&path("/assign"), &lead_mgr, json!({"assignee_id": gone_id})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "deactivated members take no chats");
        let admin_id = app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].as_str().unwrap().to_owned();
        let (status, c) = app.post(&path("/assign"), &lead_mgr, json!({"assignee_id": admin_id})).await;
        assert_eq!(status, StatusCode::OK, "{c}");
        assert_eq!(c["assignee_id"], admin_id.as_str());
        let (_, l) = app.get(&format!("/api/v1/leads/{lead}"), &admin).await;
        assert_eq!(l["assignee_id"], claimer_id.to_string(), "an assigned lead keeps its assignee");
        let (status, c) = app.post(&path("/status"), &admin, json!({"status": "open"})).await;
        assert_eq!(status, StatusCode::OK, "now the admin's: {c}");

        // Labels and explicit access grant reading.
        let label = insert_label(&app.db, app.workspace_id, "VIP").await;
        let (status, _) = app.get(&path(""), &viewer).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, c) = app.json(Method::PUT, &path("/labels"), &admin, Some(json!({"label_ids": [label]}))).await;
        assert_eq!(status, StatusCode::OK, "{c}");
        assert_eq!(c["label_ids"], json!([label]));
        let (status, _) = app.json(Method::PUT, &path("/labels"), &admin, Some(json!({"label_ids": [Uuid::new_v4()]}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = app.json(Method::PATCH, &format!("/api/v1/members/{viewer_id}"), &admin, Some(json!({"label_ids": [label]}))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.get(&path(""), &viewer).await;
        assert_eq!(status, StatusCode::OK, "a granted label lets the member read");
        let (status, body) = app.post(&path("/status"), &viewer, json!({"status": "closed"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&body), "not_assignee");
        let (status, _) = app.json(Method::PATCH, &format!("/api/v1/members/{viewer_id}"), &admin, Some(json!({"label_ids": []}))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = app.get(&path(""), &viewer).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, access) = app.post(&path("/access"), &admin, json!({"member_ids": [viewer_id]})).await;
        assert_eq!(status, StatusCode::OK, "{access}");
        assert_eq!(access["explicit_member_ids"], json!([viewer_id]));
        let reasons = |access: &Value, id: Uuid| -> Vec<String> {
            access["members"].as_array().unwrap().iter()
                .find(|m| m["member_id"] == id.to_string())
                .map(|m| m["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default()
        };
        assert_eq!(reasons(&access, viewer_id), ["explicit"]);
        assert_eq!(reasons(&access, Uuid::parse_str(&admin_id).unwrap()), ["admin", "assignee"]);
        assert_eq!(reasons(&access, lead_mgr_id), ["others_flag"]);
        assert!(reasons(&access, claimer_id).is_empty(), "view_unassigned no longer shows an assigned chat");
        let (status, _) = app.get(&path("/messages"), &viewer).await;
        assert_eq!(status, StatusCode::OK);
        let (status, listed) = app.get(&path("/access"), &viewer).await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        let (status, _) = app.post(&path("/access"), &viewer, json!({"member_ids": [claimer_id]})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "readers don't hand out access");
        let (status, _) = app.post(&path("/access"), &admin, json!({"member_ids": [Uuid::new_v4()]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, access) = app.json(Method::DELETE, &path("/access"), &admin, Some(json!({"member_ids": [viewer_id]}))).await;
        assert_eq!(status, StatusCode::OK, "{access}");
        assert!(reasons(&access, viewer_id).is_empty());
        let (status, _) = app.get(&path(""), &viewer).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Every action left a timeline activity with who did it, and its events.
        let kinds: Vec<(String, Option<Uuid>)> = on_db!(&app.db, |p| sqlx::query_as(
            "SELECT type, member_id FROM activities WHERE lead_id = $1 ORDER BY seq").bind(lead).fetch_all(p).await).unwrap();
        let kinds: Vec<&str> = kinds.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["claimed", "status_changed", "assigned", "status_changed", "label_added", "access_granted", "access_revoked"]);
        let events: Vec<String> = on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT type FROM events WHERE conversation_id = $1 ORDER BY id").bind(conv).fetch_all(p).await).unwrap();
        assert_eq!(events.iter().filter(|e| *e == "conversation.assigned").count(), 2, "{events:?}");
        assert!(events.iter().filter(|e| *e == "conversation.updated").count() >= 5, "{events:?}");
        let timeline: i64 = on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE type = 'timeline.created' AND lead_id = $1").bind(lead).fetch_one(p).await).unwrap();
        assert_eq!(timeline, 7);

        // Reassigning the lead itself is on its timeline too (no conversation).
        let (status, l) = app.json(Method::PATCH, &format!("/api/v1/leads/{lead}"), &lead_mgr, Some(json!({"assignee_id": lead_mgr_id}))).await;
        assert_eq!(status, StatusCode::OK, "{l}");
        let last: (String, Option<Uuid>, Option<Uuid>) = on_db!(&app.db, |p| sqlx::query_as(
            "SELECT type, member_id, conversation_id FROM activities WHERE lead_id = $1 ORDER BY seq DESC LIMIT 1").bind(lead).fetch_one(p).await).unwrap();
        assert_eq!(last, ("assigned".to_owned(), Some(lead_mgr_id), None));
    }

    async fn reply_check_is_assignee_only(t: TestDb) {
        let app = spawn_app(&t).await;
        let (member_id, _) = app.member("agent@example.com", json!({})).await;
        let admin_id = Uuid::parse_str(app.login(ADMIN_EMAIL, PASSWORD).await["user"]["id"].as_str().unwrap()).unwrap();
        let number = insert_number(&app.db, app.workspace_id).await;
        let lead = insert_lead(&app.db, app.workspace_id, Some(member_id)).await;
        let conv = insert_conversation(&app.db, app.workspace_id, number, lead, Some(member_id), &[], &[]).await;
        let viewer = |id, role| Viewer { user_id: id, workspace_id: app.workspace_id, role, active: true, permissions: Permissions::default(), label_ids: vec![] };
        let as_member = viewer(member_id, Role::Member);
        let as_admin = viewer(admin_id, Role::Admin);
        let c = switchboard::inbox::conversations::get_visible(&app.db, &as_member, conv).await.unwrap();
        assert!(switchboard::inbox::ownership::ensure_can_reply(&c, &as_member).is_ok());
        let c = switchboard::inbox::conversations::get_visible(&app.db, &as_admin, conv).await.unwrap();
        let err = switchboard::inbox::ownership::ensure_can_reply(&c, &as_admin).unwrap_err();
        assert_eq!(err.status(), StatusCode::FORBIDDEN);
        assert!(matches!(err, switchboard::error::Error::Client { code: "not_assignee", .. }));
    }

    async fn claim_race_has_one_winner(t: TestDb) {
        let app = spawn_app(&t).await;
        let number = insert_number(&app.db, app.workspace_id).await;
        let lead = insert_lead(&app.db, app.workspace_id, None).await;
        let conv = insert_conversation(&app.db, app.workspace_id, number, lead, None, &[], &[]).await;
        let mut tokens = Vec::new();
        for i in 0..8 {
            // Team leads: they still see the conversation once someone else holds it.
            let (_, tok) = app.member(&format!("racer{i}@example.com"), json!({"view_unassigned": true, "view_others_leads": true})).await;
            tokens.push(tok);
        }
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(tokens.len()));
        let mut tasks = Vec::new();
        for tok in tokens {
            let client = app.client.clone();
            let url = app.url(&format!("/api/v1/conversations/{conv}/claim"));
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let resp = client.post(url).bearer_auth(tok).json(&json!({})).send().await.unwrap();
                let status = resp.status();
                (status, resp.json::<Value>().await.unwrap_or(Value::Null))
            }));
        }
        let mut won = 0;
        for task in tasks {
            let (status, body) = task.await.unwrap();
            match status {
                StatusCode::OK => won += 1,
                StatusCode::CONFLICT => assert_eq!(error_code(&body), "already_assigned"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(won, 1, "exactly one claim wins");
        let assigned: i64 = on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM activities WHERE conversation_id = $1 AND type = 'claimed'").bind(conv).fetch_one(p).await).unwrap();
        assert_eq!(assigned, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// `can` says what the actions answer.

/// Whose conversation (and lead) it is, from the caller's side.
#[derive(Clone, Copy, Debug)]
enum Owner {
    Caller,
    Someone,
    Nobody,
}

const CONV_ACTIONS: [&str; 7] = ["reply", "assign", "claim", "change_status", "label", "manage_access", "note"];
const LEAD_ACTIONS: [&str; 3] = ["edit", "delete", "assign"];

on_both! {
    async fn can_agrees_with_every_action(t: TestDb) {
        let app = spawn_app(&t).await;
        let ws = app.workspace_id;
        let label = insert_label(&app.db, ws, "Granted").await;
        let label2 = insert_label(&app.db, ws, "Other").await;
        let number = insert_number(&app.db, ws).await;
        let (someone, _) = app.member("someone@example.com", json!({})).await;
        let (third, _) = app.member("third@example.com", json!({})).await;
        let admin = app.login(ADMIN_EMAIL, PASSWORD).await;
        let admin_id = Uuid::parse_str(admin["user"]["id"].as_str().unwrap()).unwrap();
        // (name, id, token, given the conversation's label, given explicit access)
        let mut callers = vec![("admin", admin_id, app.admin_token.clone(), false, false)];
        let flags: [(&str, Value, bool, bool); 7] = [
            ("plain", json!({}), false, false),
            ("others", json!({"view_others_leads": true}), false, false),
            ("unassigned", json!({"view_unassigned": true}), false, false),
            ("both", json!({"view_others_leads": true, "view_unassigned": true}), false, false),
            ("labelled", json!({}), true, false),
            ("explicit", json!({}), false, true),
            ("deleter", json!({"delete_leads": true}), false, false),
        ];
        for (name, perms, labelled, explicit) in flags {
            let (id, token) = app.member(&format!("{name}@example.com"), perms).await;
            if labelled {
                grant_labels(&app.db, id, &[label]).await;
            }
            callers.push((name, id, token, labelled, explicit));
        }
        let mut failures = Vec::new();
        let mut seen = 0;
        // Per action: (allowed, refused) cases, so that neither side goes untested.
        let mut both: HashMap<String, (u32, u32)> = HashMap::new();
        for (name, id, token, _, explicit) in &callers {
            for owner in [Owner::Caller, Owner::Someone, Owner::Nobody] {
                let assignee = match owner {
                    Owner::Caller => Some(*id),
                    Owner::Someone => Some(someone),
                    Owner::Nobody => None,
                };
                let access: Vec<Uuid> = if *explicit { vec![*id] } else { vec![] };
                let world = || async {
                    let lead = insert_lead(&app.db, ws, assignee).await;
                    let conv = insert_conversation(&app.db, ws, number, lead, assignee, &[label], &access).await;
                    (conv, lead)
                };
                for action in CONV_ACTIONS {
                    let (conv, lead) = world().await;
                    let (status, got) = app.get(&format!("/api/v1/conversations/{conv}"), token).await;
                    let what = format!("{name} {owner:?} conversation {action}");
                    let can = if status == StatusCode::OK {
                        seen += 1;
                        let (_, list) = app.get(&format!("/api/v1/conversations?lead_id={lead}"), token).await;
                        if list["conversations"][0]["can"] != got["can"] {
                            failures.push(format!("{what}: the list's can {} differs from {}", list["conversations"][0]["can"], got["can"]));
                        }
                        got["can"][action].as_bool().unwrap_or_else(|| panic!("{what}: no can in {got}"))
                    } else {
                        assert_eq!(status, StatusCode::NOT_FOUND, "{what}");
                        false
                    };
                    let (method, path, body) = match action {
                        "reply" => (Method::POST, format!("/api/v1/conversations/{conv}/messages"),
                            Some(json!({"type": "template", "template": {"name": "hello", "language": "en_US"}}))),
                        "assign" => (Method::POST, format!("/api/v1/conversations/{conv}/assign"), Some(json!({"assignee_id": third}))),
                        "claim" => (Method::POST, format!("/api/v1/conversations/{conv}/claim"), None),
                        "change_status" => (Method::POST, format!("/api/v1/conversations/{conv}/status"), Some(json!({"status": "closed"}))),
                        "label" => (Method::PUT, format!("/api/v1/conversations/{conv}/labels"), Some(json!({"label_ids": [label, label2]}))),
                        "manage_access" => (Method::POST, format!("/api/v1/conversations/{conv}/access"), Some(json!({"member_ids": [third]}))),
                        _ => (Method::POST, format!("/api/v1/conversations/{conv}/notes"), Some(json!({"text": "a note"}))),
                    };
                    let (answer, body) = app.json(method, &path, token, body).await;
                    let tally = both.entry(format!("conversation {action}")).or_default();
                    if can { tally.0 += 1 } else { tally.1 += 1 }
                    if can != answer.is_success() {
                        failures.push(format!("{what}: can says {can}, the action answers {answer} {body}"));
                    }
                    if !answer.is_success() && ![403, 404, 409].contains(&answer.as_u16()) {
                        failures.push(format!("{what}: refused with {answer}"));
                    }
                    if answer.is_success() && action != "reply" && action != "note" && action != "manage_access" {
                        // The answer of an action is the conversation as it now is, with its can.
                        if !body["can"].is_object() {
                            failures.push(format!("{what}: the answer carries no can: {body}"));
                        }
                    }
                }
                for action in LEAD_ACTIONS {
                    let (_, lead) = world().await;
                    let (status, got) = app.get(&format!("/api/v1/leads/{lead}"), token).await;
                    let what = format!("{name} {owner:?} lead {action}");
                    let can = if status == StatusCode::OK {
                        got["can"][action].as_bool().unwrap_or_else(|| panic!("{what}: no can in {got}"))
                    } else {
                        assert_eq!(status, StatusCode::NOT_FOUND, "{what}");
                        false
                    };
                    let (method, body) = match action {
                        "edit" => (Method::PATCH, Some(json!({"name": "Renamed"}))),
                        "delete" => (Method::DELETE, None),
                        _ => (Method::PATCH, Some(json!({"assignee_id": third}))),
                    };
                    let (answer, body) = app.json(method, &format!("/api/v1/leads/{lead}"), token, body).await;
                    let tally = both.entry(format!("lead {action}")).or_default();
                    if can { tally.0 += 1 } else { tally.1 += 1 }
                    if can != answer.is_success() {
                        failures.push(format!("{what}: can says {can}, the action answers {answer} {body}"));
                    }
                    if answer == StatusCode::OK && !body["can"].is_object() {
                        failures.push(format!("{what}: the answer carries no can: {body}"));
                    }
                }
            }
        }
        assert!(seen > 20, "most callers see most conversations");
        for (action, (yes, no)) in &both {
            assert!(*yes > 0 && *no > 0, "{action}: allowed {yes} times, refused {no} times");
        }
        assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
        // Live events go to many viewers: none carries a can.
        let with_can: i64 = on_db!(&app.db, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM events WHERE (type LIKE 'conversation.%' OR type = 'lead.updated') AND data LIKE '%\"can\"%'"
        )
        .fetch_one(p)
        .await)
        .unwrap();
        assert_eq!(with_can, 0, "events carry no can");
    }
}

// ---------------------------------------------------------------------------------------------
// Seeding helpers: rows straight into the database.

fn now() -> chrono::DateTime<chrono::Utc> {
    switchboard::clock::Clock::default().now()
}

pub async fn insert_user(db: &Db, ws: Uuid, role: &str, status: &str) -> Uuid {
    let id = Uuid::new_v4();
    on_db!(db, |p| sqlx::query(
        "INSERT INTO users (id, workspace_id, email, name, role, status, password_hash, permissions, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'not-a-real-hash', '{}', $7, $7)"
    )
    .bind(id)
    .bind(ws)
    .bind(format!("{}@seed.test", id.simple()))
    .bind("Seeded")
    .bind(role)
    .bind(status)
    .bind(now())
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
    id
}

pub async fn set_permissions(db: &Db, id: Uuid, p: Permissions) {
    on_db!(db, |c| sqlx::query("UPDATE users SET permissions = $1 WHERE id = $2")
        .bind(sqlx::types::Json(p))
        .bind(id)
        .execute(c)
        .await
        .map(|_| ()))
    .unwrap();
}

pub async fn insert_label(db: &Db, ws: Uuid, name: &str) -> Uuid {
    let id = Uuid::new_v4();
    on_db!(db, |p| sqlx::query("INSERT INTO labels (id, workspace_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(ws)
        .bind(name)
        .bind(now())
        .execute(p)
        .await
        .map(|_| ()))
    .unwrap();
    id
}

pub async fn grant_labels(db: &Db, user: Uuid, labels: &[Uuid]) {
    for l in labels {
        on_db!(db, |p| sqlx::query("INSERT INTO member_labels (user_id, label_id) VALUES ($1, $2)")
            .bind(user)
            .bind(*l)
            .execute(p)
            .await
            .map(|_| ()))
        .unwrap();
    }
}

/// An inbound image message whose bytes are already in the media cache.
pub async fn insert_cached_media(db: &Db, ws: Uuid, conv: Uuid) -> Uuid {
    let id = Uuid::new_v4();
    on_db!(db, |p| sqlx::query(
        "INSERT INTO messages (id, workspace_id, conversation_id, direction, type, media, status, created_at, received_at) \
         VALUES ($1, $2, $3, 'in', 'image', $4, 'received', $5, $5)"
    )
    .bind(id)
    .bind(ws)
    .bind(conv)
    .bind(sqlx::types::Json(json!({"id": "media-1", "mime_type": "image/png"})))
    .bind(now())
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
    on_db!(db, |p| sqlx::query(
        "INSERT INTO media_cache (message_id, mime_type, bytes, fetched_at) VALUES ($1, 'image/png', $2, $3)"
    )
    .bind(id)
    .bind(b"png-bytes".to_vec())
    .bind(now())
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
    id
}

pub async fn insert_number(db: &Db, ws: Uuid) -> Uuid {
    let id = Uuid::new_v4();
    let pnid = format!("{}", id.as_u128() % 1_000_000_000_000_000);
    on_db!(db, |p| sqlx::query(
        "INSERT INTO numbers (id, workspace_id, phone_number_id, display_phone_number, access_token, created_at) \
         VALUES ($1, $2, $3, '15550100100', 'seed-token', $4)"
    )
    .bind(id)
    .bind(ws)
    .bind(pnid)
    .bind(now())
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
    id
}

pub async fn insert_lead(db: &Db, ws: Uuid, assignee: Option<Uuid>) -> Uuid {
    let id = Uuid::new_v4();
    let phone = format!("1555{:09}", id.as_u128() % 1_000_000_000);
    on_db!(db, |p| sqlx::query(
        "INSERT INTO leads (id, workspace_id, name, phone, assignee_id, created_at, updated_at) VALUES ($1, $2, 'Seeded lead', $3, $4, $5, $5)"
    )
    .bind(id)
    .bind(ws)
    .bind(phone)
    .bind(assignee)
    .bind(now())
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
    id
}

pub async fn insert_conversation(
    db: &Db,
    ws: Uuid,
    number: Uuid,
    lead: Uuid,
    assignee: Option<Uuid>,
    labels: &[Uuid],
    access: &[Uuid],
) -> Uuid {
    let id = Uuid::new_v4();
    let at = now();
    on_db!(db, |p| sqlx::query(
        "INSERT INTO conversations (id, workspace_id, number_id, lead_id, contact_phone, status, assignee_id, \
         unread_count, template_required, created_at, updated_at) VALUES ($1, $2, $3, $4, '15550109999', 'open', $5, 0, FALSE, $6, $6)"
    )
    .bind(id)
    .bind(ws)
    .bind(number)
    .bind(lead)
    .bind(assignee)
    .bind(at)
    .execute(p)
    .await
    .map(|_| ()))
    .unwrap();
    for l in labels {
        on_db!(db, |p| sqlx::query("INSERT INTO conversation_labels (conversation_id, label_id) VALUES ($1, $2)")
            .bind(id)
            .bind(*l)
            .execute(p)
            .await
            .map(|_| ()))
        .unwrap();
    }
    for u in access {
        on_db!(db, |p| sqlx::query(
            "INSERT INTO conversation_access (conversation_id, user_id, created_at) VALUES ($1, $2, $3)"
        )
        .bind(id)
        .bind(*u)
        .bind(at)
        .execute(p)
        .await
        .map(|_| ()))
        .unwrap();
    }
    id
}
