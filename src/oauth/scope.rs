//! Scopes: what a request asks for, checked against the configured `scopes`.

use crate::config::OAuth2Provider;
use crate::oauth::OAuthError;

/// The scope a request gets: the requested scopes, each known (else `invalid_scope`), or the
/// `default_scopes` when none was requested. Returned space-separated, duplicates dropped.
pub fn resolve_scope(
    requested: Option<&str>,
    provider: &OAuth2Provider,
) -> Result<String, OAuthError> {
    let mut granted: Vec<&str> = Vec::new();
    let requested: Vec<&str> = requested
        .map(|text| text.split(' ').filter(|scope| !scope.is_empty()).collect())
        .unwrap_or_default();
    if requested.is_empty() {
        for scope in &provider.default_scopes {
            if scope == "__all__" {
                granted.extend(provider.scopes.keys().map(String::as_str));
            } else {
                granted.push(scope);
            }
        }
    } else {
        for scope in requested {
            if !provider.scopes.contains_key(scope) {
                return Err(OAuthError::InvalidScope(format!("unknown scope {scope:?}")));
            }
            granted.push(scope);
        }
    }
    let mut unique = Vec::new();
    for scope in granted {
        if !unique.contains(&scope) {
            unique.push(scope);
        }
    }
    Ok(unique.join(" "))
}

pub fn has_scope(granted: &str, wanted: &str) -> bool {
    granted.split(' ').any(|scope| scope == wanted)
}

/// Whether every scope of `requested` was granted in `original` (refresh may only narrow).
pub fn is_subset(requested: &str, original: &str) -> bool {
    requested
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .all(|scope| has_scope(original, scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_unknown_scopes_and_duplicates() {
        let provider = OAuth2Provider::default();
        let all = resolve_scope(None, &provider).unwrap();
        assert!(all.contains("read") && all.contains("write") && all.contains("openid"));
        assert_eq!(
            resolve_scope(Some("read  read write"), &provider).unwrap(),
            "read write"
        );
        assert!(matches!(
            resolve_scope(Some("read admin"), &provider),
            Err(OAuthError::InvalidScope(_))
        ));
        let mut narrow = provider.clone();
        narrow.default_scopes = vec!["read".to_owned()];
        assert_eq!(resolve_scope(Some(""), &narrow).unwrap(), "read");
    }

    #[test]
    fn subsets() {
        assert!(is_subset("read", "read write"));
        assert!(!is_subset("read admin", "read write"));
        assert!(has_scope("read write", "write"));
        assert!(!has_scope("read write", "wri"));
    }
}
