//! Protocol rules as plain functions over records and a time: whether a token still works, and
//! whether the user it speaks for may still act. Written once here, used by every endpoint
//! (token, introspection, protected resources, userinfo, the self-service pages) and unit-tested
//! without a store or a server.

use crate::config::OAuth2Provider;
use crate::store::{AccessToken, RefreshToken, Timestamp, User};

/// Whether the user a token or code speaks for may still use it. A token without a user
/// (client credentials) speaks only for its client; one whose user was deleted or deactivated
/// is dead, whatever its expiry says (Django: an inactive user cannot authenticate).
pub fn holder_may_act(user_id: Option<u64>, user: Option<&User>) -> bool {
    match user_id {
        None => true,
        Some(id) => user.is_some_and(|user| user.id == id && user.is_active),
    }
}

/// Whether an access token has not expired at `now`.
pub fn access_token_unexpired(token: &AccessToken, now: Timestamp) -> bool {
    token.expires > now
}

/// Whether a refresh token has expired at `now`: by its own expiry, or by
/// `refresh_token_expire_seconds` counted from its creation as DOT counts it (so tokens
/// imported from DOT, which carry no expiry, and a shortened setting both apply).
pub fn refresh_token_expired(
    token: &RefreshToken,
    provider: &OAuth2Provider,
    now: Timestamp,
) -> bool {
    let by_setting = provider
        .refresh_token_expire_seconds
        .is_some_and(|seconds| token.created.plus_seconds(seconds) <= now);
    by_setting || token.expires.is_some_and(|expires| expires <= now)
}

/// Whether a refresh token would be accepted for a refresh at `now` without its grace
/// period: not revoked (rotated) and not expired.
pub fn refresh_token_unrevoked_and_unexpired(
    token: &RefreshToken,
    provider: &OAuth2Provider,
    now: Timestamp,
) -> bool {
    token.revoked.is_none() && !refresh_token_expired(token, provider, now)
}

/// Whether a rotated (revoked) refresh token may still be used at `now` within DOT's
/// `REFRESH_TOKEN_GRACE_PERIOD_SECONDS`. Without a grace period never: a request that read
/// the clock just before another one rotated the token must not win too (its `now` can be
/// earlier than the revocation it meets, since times are taken before the write).
pub fn within_refresh_grace(revoked: Timestamp, now: Timestamp, grace_seconds: u64) -> bool {
    grace_seconds > 0 && now < revoked.plus_seconds(grace_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FamilyId;

    fn user(active: bool) -> User {
        User {
            is_active: active,
            ..User::sample(7, "u")
        }
    }

    fn refresh(created: i64, expires: Option<i64>, revoked: Option<i64>) -> RefreshToken {
        RefreshToken {
            user: Some(7),
            application: 1,
            scope: "read".to_owned(),
            created: Timestamp(created),
            revoked: revoked.map(Timestamp),
            access_token: None,
            family: FamilyId([0; 16]),
            expires: expires.map(Timestamp),
            tail: String::new(),
        }
    }

    #[test]
    fn only_active_users_and_clients_act() {
        assert!(holder_may_act(None, None));
        assert!(holder_may_act(Some(7), Some(&user(true))));
        assert!(!holder_may_act(Some(7), Some(&user(false))));
        assert!(!holder_may_act(Some(7), None), "a deleted user");
        assert!(!holder_may_act(Some(8), Some(&user(true))), "another user");
    }

    #[test]
    fn refresh_tokens_expire_by_their_expiry_or_by_the_setting_from_creation() {
        let second = 1_000_000;
        let mut provider = OAuth2Provider::default();
        let now = Timestamp(100 * second);
        assert!(!refresh_token_expired(
            &refresh(0, None, None),
            &provider,
            now
        ));
        assert!(refresh_token_expired(
            &refresh(0, Some(100 * second), None),
            &provider,
            now
        ));
        provider.refresh_token_expire_seconds = Some(100);
        // An imported token without an expiry of its own: the setting counts from creation.
        assert!(refresh_token_expired(
            &refresh(0, None, None),
            &provider,
            now
        ));
        assert!(!refresh_token_expired(
            &refresh(1, None, None),
            &provider,
            now
        ));
        assert!(!refresh_token_unrevoked_and_unexpired(
            &refresh(1, None, Some(50)),
            &provider,
            now
        ));
        assert!(refresh_token_unrevoked_and_unexpired(
            &refresh(1, None, None),
            &provider,
            now
        ));
    }

    #[test]
    fn access_tokens_expire_at_their_expiry() {
        let token = AccessToken {
            user: None,
            application: 1,
            scope: String::new(),
            expires: Timestamp(10),
            created: Timestamp(0),
            refresh_token: None,
            family: None,
            tail: String::new(),
        };
        assert!(access_token_unexpired(&token, Timestamp(9)));
        assert!(!access_token_unexpired(&token, Timestamp(10)));
    }

    #[test]
    fn a_rotated_refresh_token_is_usable_only_within_a_grace_period() {
        let revoked = Timestamp(10_000_000);
        // No grace period: refused even by a request whose clock read came first.
        assert!(!within_refresh_grace(revoked, Timestamp(9_999_999), 0));
        assert!(!within_refresh_grace(revoked, revoked, 0));
        assert!(within_refresh_grace(revoked, Timestamp(9_999_999), 5));
        assert!(within_refresh_grace(revoked, Timestamp(14_999_999), 5));
        assert!(!within_refresh_grace(revoked, Timestamp(15_000_000), 5));
    }
}
