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

/// When a refresh token expires: `refresh_token_expire_seconds` after its creation, with
/// today's setting, as DOT counts it (so tokens imported from DOT and a changed setting follow
/// the same rule); never when the setting is unset.
pub fn refresh_token_expires_at(
    token: &RefreshToken,
    provider: &OAuth2Provider,
) -> Option<Timestamp> {
    provider
        .refresh_token_expire_seconds
        .map(|seconds| token.created.plus_seconds(seconds))
}

/// Whether a refresh token has expired at `now` (see `refresh_token_expires_at`).
pub fn refresh_token_expired(
    token: &RefreshToken,
    provider: &OAuth2Provider,
    now: Timestamp,
) -> bool {
    refresh_token_expires_at(token, provider).is_some_and(|expires| expires <= now)
}

/// The creation time before which refresh tokens have expired at `now`, which is what the
/// cleanup and the counts walk (refresh tokens are filed by creation); none when they never
/// expire.
pub fn refresh_tokens_created_before_have_expired(
    provider: &OAuth2Provider,
    now: Timestamp,
) -> Option<Timestamp> {
    provider.refresh_token_expire_seconds.map(|seconds| {
        let micros = i64::try_from(seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000);
        // Expired means created + seconds <= now, so created up to and including now - seconds.
        Timestamp(now.0.saturating_sub(micros).saturating_add(1))
    })
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

    fn refresh(created: i64, revoked: Option<i64>) -> RefreshToken {
        RefreshToken {
            user: Some(7),
            application: 1,
            scope: "read".to_owned(),
            created: Timestamp(created),
            revoked: revoked.map(Timestamp),
            access_token: None,
            family: FamilyId([0; 16]),
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
    fn refresh_tokens_expire_by_the_setting_counted_from_creation() {
        let second = 1_000_000;
        let mut provider = OAuth2Provider::default();
        let now = Timestamp(100 * second);
        assert!(!refresh_token_expired(&refresh(0, None), &provider, now));
        assert_eq!(
            refresh_tokens_created_before_have_expired(&provider, now),
            None
        );
        provider.refresh_token_expire_seconds = Some(100);
        assert!(refresh_token_expired(&refresh(0, None), &provider, now));
        assert!(!refresh_token_expired(&refresh(1, None), &provider, now));
        assert_eq!(
            refresh_token_expires_at(&refresh(1, None), &provider),
            Some(Timestamp(100 * second + 1))
        );
        // The cleanup's cutoff agrees with the rule at the boundary: created just before the
        // cutoff is expired, at the cutoff is not.
        let cutoff = refresh_tokens_created_before_have_expired(&provider, now).unwrap();
        assert_eq!(cutoff, Timestamp(1));
        assert!(refresh_token_expired(
            &refresh(cutoff.0 - 1, None),
            &provider,
            now
        ));
        assert!(!refresh_token_expired(
            &refresh(cutoff.0, None),
            &provider,
            now
        ));
        assert!(!refresh_token_unrevoked_and_unexpired(
            &refresh(1, Some(50)),
            &provider,
            now
        ));
        assert!(refresh_token_unrevoked_and_unexpired(
            &refresh(1, None),
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
