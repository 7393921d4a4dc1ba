//! The userinfo answer (OIDC Core §5.3): `sub` and the claims the token's scope releases, plus
//! those the authorization request's `claims` parameter asked for in userinfo.

use serde_json::{Map, Value, json};

use crate::oauth::ClaimsRequest;
use crate::oidc::claims::{needs_groups, user_claims};
use crate::store::{AccessToken, ReadTx, StoreError};

/// The claims for a live access token's user; none when the token has no user (client
/// credentials) or the user is gone or inactive.
pub fn userinfo(
    tx: &ReadTx,
    token: &AccessToken,
) -> Result<Option<Map<String, Value>>, StoreError> {
    let Some(user_id) = token.user else {
        return Ok(None);
    };
    let found = {
        let Some(user) = tx.user(user_id)?.filter(|user| user.is_active) else {
            return Ok(None);
        };
        let session = match token.family {
            Some(family) => tx.family_session(family)?,
            None => None,
        };
        let requested =
            ClaimsRequest::parse_stored(session.as_ref().and_then(|s| s.claims.as_deref()))
                .userinfo_names();
        // Groups matter only for the permissions claim.
        let groups = if needs_groups(&token.scope, &requested) {
            tx.groups_of(&user)?
        } else {
            Vec::new()
        };
        Some((user, groups, requested))
    };
    let Some((user, groups, requested)) = found else {
        return Ok(None);
    };
    let mut answer = Map::new();
    answer.insert("sub".to_owned(), json!(user.id.to_string()));
    answer.extend(user_claims(&user, &groups, &token.scope, &requested));
    Ok(Some(answer))
}
