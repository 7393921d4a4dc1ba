//! The userinfo answer (OIDC Core §5.3): `sub` and the claims the token's scope releases, plus
//! those the authorization request's `claims` parameter asked for in userinfo.

use serde_json::{Map, Value, json};

use crate::oauth::ClaimsRequest;
use crate::oidc::claims::user_claims;
use crate::store::{AccessToken, Store, StoreError};

/// The claims for a live access token's user; none when the token has no user (client
/// credentials) or the user is gone.
pub fn userinfo(
    store: &Store,
    token: &AccessToken,
) -> Result<Option<Map<String, Value>>, StoreError> {
    let Some(user_id) = token.user else {
        return Ok(None);
    };
    let (user, groups, session) = store.read(|tx| {
        let session = match token.family {
            Some(family) => tx.family_session(family)?,
            None => None,
        };
        Ok((tx.user(user_id)?, tx.groups()?, session))
    })?;
    let Some(user) = user.filter(|user| user.is_active) else {
        return Ok(None);
    };
    let requested = ClaimsRequest::parse_stored(session.as_ref().and_then(|s| s.claims.as_deref()))
        .userinfo_names();
    let mut answer = Map::new();
    answer.insert("sub".to_owned(), json!(user.id.to_string()));
    answer.extend(user_claims(&user, &groups, &token.scope, &requested));
    Ok(Some(answer))
}
