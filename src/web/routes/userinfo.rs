//! `/o/userinfo/` (OIDC Core §5.3), GET and POST: the bearer token in the `Authorization` header,
//! or on POST in the form body (RFC 6750 §2.2), never both.

use rocket::{Route, State, get, post, routes};
use serde_json::{Map, Value};

use crate::oauth::{BearerError, has_scope};
use crate::web::AppState;
use crate::web::cors::{Cors, Origin, application_allows};
use crate::web::form::{FormBody, FormError};
use crate::web::oauth_response::{Authorization, OAuthJson};

type Answer = Cors<Result<OAuthJson<Map<String, Value>>, BearerError>>;

async fn answer(
    state: &AppState,
    token: Result<Option<&str>, BearerError>,
    origin: &Origin,
) -> Answer {
    let mut cors = None;
    let result = async {
        let (token, application, user) = state.oauth.bearer_with_holder(token?).await?;
        cors = origin
            .0
            .as_deref()
            .filter(|origin| application_allows(&application, origin))
            .map(str::to_owned);
        let id_tokens = match &state.id_tokens {
            Some(id_tokens) if has_scope(&token.scope, "openid") => id_tokens,
            _ => return Err(BearerError::InsufficientScope("openid".to_owned())),
        };
        let claims = id_tokens.userinfo(&token, user.as_ref()).await?;
        claims.map(OAuthJson).ok_or(BearerError::InvalidToken)
    }
    .await;
    Cors::new(result, cors)
}

#[get("/o/userinfo")]
async fn userinfo_get(
    authorization: Authorization,
    origin: Origin,
    state: &State<AppState>,
) -> Answer {
    answer(state, Ok(authorization.bearer()), &origin).await
}

#[post("/o/userinfo", data = "<form>")]
async fn userinfo_post(
    form: Result<FormBody, FormError>,
    authorization: Authorization,
    origin: Origin,
    state: &State<AppState>,
) -> Answer {
    let token = match &form {
        // A POST with no form (or another content type) may still carry the header.
        Err(_) if authorization.0.is_some() => Ok(authorization.bearer()),
        Err(error) => Err(BearerError::InvalidRequest(error.to_string())),
        Ok(form) => match (authorization.bearer(), form.0.single("access_token")) {
            (_, Err(error)) => Err(BearerError::InvalidRequest(error.to_string())),
            (Some(_), Ok(Some(_))) => Err(BearerError::InvalidRequest(
                "the access token was sent twice (header and body)".to_owned(),
            )),
            (Some(token), Ok(None)) => Ok(Some(token)),
            (None, Ok(body)) => Ok(body),
        },
    };
    answer(state, token, &origin).await
}

pub fn routes() -> Vec<Route> {
    routes![userinfo_get, userinfo_post]
}
