//! `CurrentUser` as an extractor, and `/auth/login`, `/auth/logout`, `/auth/me`.

use axum::Extension;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tracing::instrument;

use super::{CurrentUser, SESSION_COOKIE, UserOut, credential, password, same_site_request};
use crate::api::Api;
use crate::error::{Error, Result};
use crate::extract::Json;
use crate::proxy::Client;
use crate::state::AppState;
use crate::views::auth::{MeView, SessionView};

pub fn routes() -> Api {
    Api::new().post("/auth/login", login).post("/auth/logout", logout).get("/auth/me", me)
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self> {
        let (token, via_cookie) = credential(&parts.headers).ok_or_else(Error::unauthorized)?;
        if super::token::is_api_key(&token) {
            return Err(Error::forbidden("api_key_not_allowed", "an API key only calls the routes of its scopes"));
        }
        if via_cookie && !parts.method.is_safe() && !same_site_request(&parts.headers) {
            return Err(Error::forbidden("cross_origin", "a cookie-authenticated change must come from this origin"));
        }
        CurrentUser::from_token(&st.db, &token, via_cookie).await?.ok_or_else(Error::unauthorized)
    }
}

/// Issues a token for `user` and answers as login does (also used by invitation accept).
pub async fn issue_session(st: &AppState, user: UserOut, status: StatusCode) -> Result<Response> {
    let token = super::issue_token(&st.db, user.id, st.clock.now()).await?;
    let cookie = format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    Ok((status, [(SET_COOKIE, cookie)], Json(SessionView { token, user })).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    email: String,
    password: String,
}

#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    description = "Signs in with email and password: a session token (also set as an HttpOnly cookie) and the user. Failures are throttled per email and client address.",
    request_body = LoginBody,
    responses((status = 200, description = "Signed in.", body = SessionView))
)]
#[instrument(skip_all)]
pub async fn login(
    State(st): State<AppState>,
    client: Option<Extension<Client>>,
    Json(body): Json<LoginBody>,
) -> Result<Response> {
    let email = body.email.trim().to_lowercase();
    let ip = client.unwrap_or_default().0.ip;
    if let Some(wait) = st.throttle.retry_after(&email, ip) {
        tracing::warn!(retry_after = wait, "login throttled");
        return Err(Error::too_many(wait));
    }
    let row = super::find_active(&st.db, &email).await?;
    let phc = row.as_ref().and_then(|r| r.password_hash.clone());
    if body.password.len() > password::MAX_LEN || !password::verify(body.password, phc).await {
        st.throttle.failed(&email, ip);
        tracing::info!("login failed");
        return Err(Error::client(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong email or password"));
    }
    let Some(row) = row else { return Err(Error::unauthorized()) };
    st.throttle.succeeded(&email, ip);
    tracing::info!(user_id = %row.id, "login");
    issue_session(&st, row.public(), StatusCode::OK).await
}

#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    description = "Revokes the caller's session token and clears the session cookie.",
    responses((status = 204, description = "Signed out."))
)]
#[instrument(skip_all)]
pub async fn logout(State(st): State<AppState>, user: CurrentUser) -> Result<Response> {
    super::revoke(&st.db, &user.token_hash).await?;
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, clear)]).into_response())
}

#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    description = "The caller: user, effective permissions and the labels they hold.",
    responses((status = 200, description = "OK.", body = MeView))
)]
#[instrument(skip_all)]
pub async fn me(user: CurrentUser) -> Json<MeView> {
    Json(MeView { user: user.public(), permissions: user.permissions, label_ids: user.label_ids })
}
