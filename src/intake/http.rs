//! `POST /intake/leads`: a lead from a web form or an automation tool, with an API key that
//! has the `leads:write` scope. 201 with a new lead, 200 with the existing one (merged). A new
//! lead is distributed, then assigned (unless distribution dropped it from the workspace).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use tracing::instrument;

use super::{Outcome, Submission, validate_ref};
use crate::api::Api;
use crate::apikeys::{self, KeyCaller};
use crate::assignment::run;
use crate::distribution::{self, Distributed, Origin, Setup};
use crate::error::{Error, Result};
use crate::events::Work;
use crate::extract::Json;
use crate::inbox::leads::{self, normalize_phone};
use crate::state::AppState;
use crate::views::apikey::Scope;
use crate::views::lead::LeadView;

pub fn routes() -> Api {
    Api::new().post("/intake/leads", submit)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntakeBody {
    name: String,
    phone: String,
    source: Option<String>,
    page: Option<String>,
    form: Option<String>,
    custom_fields: Option<Map<String, Value>>,
    external_id: Option<String>,
}

fn validate(body: IntakeBody) -> Result<Submission> {
    let name = crate::workspace::validate_name(&body.name, "name")?;
    let phone = normalize_phone(&body.phone)?;
    let source = leads::validate_source(body.source)?;
    let mut custom_fields = body.custom_fields.unwrap_or_default();
    for (field, value) in [("page", body.page), ("form", body.form)] {
        if let Some(v) = validate_ref(value, field)? {
            custom_fields.insert(field.to_owned(), Value::String(v));
        }
    }
    leads::validate_custom(&custom_fields)?;
    let external_id = validate_ref(body.external_id, "external_id")?;
    Ok(Submission { name, phone, source, custom_fields, external_id })
}

/// Tries of one submission: two identical submissions racing on PostgreSQL both miss the
/// lead, one inserts it, the other meets the unique phone and finds it on its next try.
const TRIES: u32 = 3;

#[utoipa::path(
    post,
    path = "/intake/leads",
    tag = "intake",
    description = "Creates or updates a lead from a web form (API key with the intake scope).",
    request_body = IntakeBody,
    responses((status = 201, description = "A new lead.", body = LeadView), (status = 200, description = "An existing lead, updated.", body = LeadView))
)]
#[instrument(skip_all, fields(api_key = %key.key_id))]
pub async fn submit(
    State(st): State<AppState>,
    key: KeyCaller,
    Json(body): Json<IntakeBody>,
) -> Result<(StatusCode, Json<LeadView>)> {
    let key = key.with_scope(Scope::LeadsWrite)?;
    let submission = validate(body)?;
    let mut tries = 0;
    loop {
        tries += 1;
        let mut work = Work::begin(&st.db, st.clock.now()).await?;
        let result = async {
            let now = work.now();
            apikeys::touch(work.tx(), key.key_id, now).await?;
            let (mut lead, outcome) = super::submit(&mut work, key.workspace_id, submission.clone()).await?;
            let mut distributed = Distributed::No;
            if outcome == Outcome::Created {
                let setup = Setup::new(st.config.smtp_url.is_some(), st.config.session_gap_secs);
                distributed = distribution::distribute(&mut work, &lead, setup, Origin::Entered).await?;
                if distributed != Distributed::Dropped {
                    let presence = |id| run::availability(st.presence.availability(id).as_str());
                    run::new_lead(&mut work, &presence, &mut lead).await?;
                }
            }
            Ok::<_, Error>((lead, outcome, distributed))
        }
        .await;
        match result {
            Ok((lead, outcome, distributed)) => {
                work.commit(&st.hub).await?;
                if distributed != Distributed::No {
                    st.mail_wake.notify_one();
                    st.outbox_wake.notify_one();
                }
                tracing::info!(lead_id = %lead.id, ?outcome, ?distributed, "lead taken in");
                let status = if outcome == Outcome::Created { StatusCode::CREATED } else { StatusCode::OK };
                return Ok((status, Json(lead.view())));
            }
            Err(e) if tries < TRIES && (e.is_transient() || is_duplicate_phone(&e)) => {
                work.rollback().await?;
                crate::db::pause_before_retry(tries).await;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_duplicate_phone(e: &Error) -> bool {
    matches!(e, Error::Client { code: "duplicate_phone", .. })
}
