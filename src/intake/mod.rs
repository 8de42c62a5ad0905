//! Lead intake: leads pushed by web forms, ad platforms and automation tools with an API key.
//! A submission is idempotent on its `external_id` (kept as a lead identity) or its phone: the
//! first one creates the lead, a later one finds it and merges its fields in, so a retried
//! POST never makes two leads. The handler (in [`http`]) then runs distribution and
//! assignment on a new lead, as the lead handlers do.

pub mod http;

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events::Work;
use crate::inbox::leads::{self, Lead, LeadChanges, NewLead};
use crate::on_tx;

/// The identity kind under which an intake's `external_id` is kept.
pub const EXTERNAL_ID: &str = "external_id";
/// The longest `external_id`, `page` or `form` accepted.
const MAX_REF: usize = 200;

/// A validated submission.
#[derive(Clone, Debug)]
pub struct Submission {
    pub name: String,
    /// E.164 digits.
    pub phone: String,
    pub source: Option<String>,
    /// Custom fields, with `page` and `form` among them when given (assignment and
    /// distribution criteria read them there).
    pub custom_fields: Map<String, Value>,
    pub external_id: Option<String>,
}

/// A short reference field (`external_id`, `page`, `form`): trimmed, empty as absent, 422
/// naming the field when too long.
pub fn validate_ref(raw: Option<String>, field: &'static str) -> Result<Option<String>> {
    match raw.map(|s| s.trim().to_owned()) {
        Some(s) if s.chars().count() > MAX_REF => {
            Err(Error::unprocessable("invalid_field", format!("{field} must have at most {MAX_REF} characters")))
        }
        Some(s) if s.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Whether the submission made a new lead or found one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Merged,
}

async fn find(work: &mut Work, workspace_id: Uuid, s: &Submission) -> Result<Option<Uuid>> {
    if let Some(external_id) = &s.external_id {
        let by_ref: Option<Uuid> = on_tx!(work.tx(), |c| sqlx::query_scalar(
            "SELECT lead_id FROM lead_identities WHERE workspace_id = $1 AND kind = $2 AND value = $3"
        )
        .bind(workspace_id)
        .bind(EXTERNAL_ID)
        .bind(external_id)
        .fetch_optional(c)
        .await)?;
        if by_ref.is_some() {
            return Ok(by_ref);
        }
    }
    Ok(on_tx!(work.tx(), |c| sqlx::query_scalar("SELECT id FROM leads WHERE workspace_id = $1 AND phone = $2")
        .bind(workspace_id)
        .bind(&s.phone)
        .fetch_optional(c)
        .await)?)
}

/// Creates the submitted lead in `workspace_id`, or merges the submission into the lead it
/// names (by `external_id`, then by phone): the name, phone and source given replace the
/// lead's, custom fields are merged key by key. A lead created here has no assignee yet.
pub async fn submit(work: &mut Work, workspace_id: Uuid, s: Submission) -> Result<(Lead, Outcome)> {
    let (lead, outcome) = match find(work, workspace_id, &s).await? {
        Some(id) => {
            let mut lead = leads::load_tx(work.tx(), id).await?;
            let mut custom = lead.custom_fields.0.clone();
            custom.extend(s.custom_fields);
            leads::validate_custom(&custom)?;
            let changes = LeadChanges {
                name: Some(s.name),
                phone: Some(s.phone),
                source: s.source.map(Some),
                custom_fields: Some(custom),
                ..LeadChanges::default()
            };
            // No assignee changes here: `by` names nobody.
            leads::update(work, &mut lead, changes, Uuid::nil()).await?;
            (lead, Outcome::Merged)
        }
        None => {
            let new = NewLead {
                workspace_id,
                name: s.name,
                phone: Some(s.phone),
                source: s.source,
                assignee_id: None,
                custom_fields: s.custom_fields,
                group_ids: Vec::new(),
            };
            (leads::insert(work, new).await?, Outcome::Created)
        }
    };
    if let Some(external_id) = &s.external_id {
        leads::link_identity(work.tx(), workspace_id, EXTERNAL_ID, external_id, lead.id).await?;
    }
    Ok((lead, outcome))
}
