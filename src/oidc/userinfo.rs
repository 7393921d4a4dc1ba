//! The userinfo answer (OIDC Core §5.3): `sub` and the claims the token's scope releases, plus
//! those the authorization request's `claims` parameter asked for in userinfo.

use serde_json::{Map, Value, json};

use crate::oauth::ClaimsRequest;
use crate::oidc::claims::{needs_groups, user_claims};
use crate::store::{AccessToken, AccountStorage, StoreError, TokenStorage, User};

/// The claims for a live access token and its user (as the bearer check read it); none when
/// the token has no user (client credentials) or the user is gone or inactive.
pub async fn userinfo<S: TokenStorage + AccountStorage + ?Sized>(
    store: &S,
    token: &AccessToken,
    user: Option<&User>,
) -> Result<Option<Map<String, Value>>, StoreError> {
    let Some(user) = user.filter(|user| Some(user.id) == token.user && user.is_active) else {
        return Ok(None);
    };
    let session = match token.family {
        Some(family) => store.family_session(family).await?,
        None => None,
    };
    let requested = ClaimsRequest::parse_stored(session.as_ref().and_then(|s| s.claims.as_deref()))
        .userinfo_names();
    // Groups matter only for the permissions claim.
    let groups = if needs_groups(&token.scope, &requested) {
        store.groups_of(user).await?
    } else {
        Vec::new()
    };
    let mut answer = Map::new();
    answer.insert("sub".to_owned(), json!(user.id.to_string()));
    answer.extend(user_claims(user, &groups, &token.scope, &requested));
    Ok(Some(answer))
}
