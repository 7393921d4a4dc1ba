//! The user's claims (OIDC Core §5.1, §5.4) and the `claims` request parameter (§5.5).
//!
//! Django's user has a username, names and an email; oxidot releases those, and the DOT
//! tutorial's `permissions` claim. Claims the user record cannot answer are left out, as §5.3.2
//! allows.

use serde_json::{Map, Value, json};

use crate::store::{Group, User};

pub use crate::oauth::ClaimsRequest;

/// Claims ID tokens may carry, for discovery's `claims_supported`.
pub const TOKEN_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "c_hash",
    "sid",
    "jti",
    "azp",
];

/// User claims and the scope that releases each.
pub const USER_CLAIMS: [(&str, &str); 6] = [
    ("name", "profile"),
    ("given_name", "profile"),
    ("family_name", "profile"),
    ("preferred_username", "profile"),
    ("email", "email"),
    ("permissions", "permissions"),
];

/// Django's `get_all_permissions()`: the user's own and their groups' permissions as
/// `app_label.codename`, sorted. Permissions known only by primary key cannot be named here.
pub fn permissions(user: &User, groups: &[Group]) -> Vec<String> {
    crate::permissions::Granted::of(user, groups, &|_| None).names()
}

fn claim_value(user: &User, groups: &[Group], name: &str) -> Option<Value> {
    let text = |value: &str| (!value.is_empty()).then(|| json!(value));
    match name {
        "name" => text(format!("{} {}", user.first_name, user.last_name).trim()),
        "given_name" => text(&user.first_name),
        "family_name" => text(&user.last_name),
        "preferred_username" => text(&user.username),
        "email" => text(&user.email),
        "permissions" => Some(json!(permissions(user, groups))),
        _ => None,
    }
}

/// Whether answering `scope` and `requested` needs the user's groups (for `permissions`).
pub fn needs_groups(scope: &str, requested: &[String]) -> bool {
    scope.split(' ').any(|s| s == "permissions") || requested.iter().any(|r| r == "permissions")
}

/// The user's claims released by `scope` (space-separated) or asked for by name.
pub fn user_claims(
    user: &User,
    groups: &[Group],
    scope: &str,
    requested: &[String],
) -> Map<String, Value> {
    let scopes: Vec<&str> = scope.split(' ').collect();
    let mut claims = Map::new();
    for (name, releasing_scope) in USER_CLAIMS {
        let wanted = scopes.contains(&releasing_scope) || requested.iter().any(|r| r == name);
        if wanted && let Some(value) = claim_value(user, groups, name) {
            claims.insert(name.to_owned(), value);
        }
    }
    claims
}
