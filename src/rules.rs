//! Protocol rules as plain functions over records and a time: whether a token still works, and
//! whether the user it speaks for may still act. Written once here, used by every endpoint
//! (token, introspection, protected resources, userinfo, the self-service pages) and unit-tested
//! without a store or a server.

use crate::config::OAuth2Provider;
use crate::oauth::scope::is_subset;
use crate::store::{
    AccessToken, Consent, DeviceDecision, DeviceGrant, FamilyId, Grant, RefreshToken, SecretKey,
    Session, Timestamp, User,
};

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

/// Whether an access token works at `now` for a protected resource or introspection: unexpired,
/// and its user (`holder`, as stored now) may still act.
pub fn access_token_live(token: &AccessToken, holder: Option<&User>, now: Timestamp) -> bool {
    access_token_unexpired(token, now) && holder_may_act(token.user, holder)
}

/// Whether a login session still signs its user in at `now`: unexpired, and the user (as
/// stored now, None when deleted) still active. A deactivated user's sessions are ended when
/// they are deactivated; this also holds for one deactivated another way (`loaddata`).
pub fn session_user_live(session: &Session, user: Option<&User>, now: Timestamp) -> bool {
    session.expires_at > now && holder_may_act(Some(session.user_id), user)
}

/// Whether saving `new` over `previous` deactivates a user: they then lose every session and
/// token at once (their tokens would also fail every check, but a deactivation must end
/// what they hold, not only hide it).
pub fn deactivated(previous: Option<&User>, new: &User) -> bool {
    previous.is_some_and(|previous| previous.is_active) && !new.is_active
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

/// Why a refresh grant is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// No such refresh token, or the user it speaks for may no longer act.
    Unknown,
    OtherClient,
    Expired,
    /// Rotated or revoked, and past its grace period: a reuse. With reuse protection on, its
    /// whole family is revoked (`family_revoked` tokens were live), and that is committed even
    /// though the grant is refused.
    Reused {
        family_revoked: u64,
    },
    /// A refresh may only narrow the scope.
    ScopeWidened,
}

/// The refresh grant's judgement of `old`, presented by client `client` at `now`: the scope
/// the new tokens get, or why not. In the order DOT checks.
pub fn judge_refresh(
    old: &RefreshToken,
    holder: Option<&User>,
    client: u64,
    requested_scope: Option<&str>,
    provider: &OAuth2Provider,
    now: Timestamp,
) -> Result<String, RefreshRefusal> {
    if old.application != client {
        return Err(RefreshRefusal::OtherClient);
    }
    if refresh_token_expired(old, provider, now) {
        return Err(RefreshRefusal::Expired);
    }
    if !holder_may_act(old.user, holder) {
        return Err(RefreshRefusal::Unknown);
    }
    if let Some(revoked) = old.revoked
        && !within_refresh_grace(revoked, now, provider.refresh_token_grace_period_seconds)
    {
        return Err(RefreshRefusal::Reused { family_revoked: 0 });
    }
    match requested_scope {
        Some(requested) if !is_subset(requested, &old.scope) => Err(RefreshRefusal::ScopeWidened),
        Some(requested) => Ok(requested.to_owned()),
        None => Ok(old.scope.clone()),
    }
}

/// Whether tokens issued for `scope` come with an ID token when OpenID Connect is on: at a
/// code exchange, and at a refresh, for the original authentication (OIDC Core §12.2).
pub fn brings_id_token(scope: &str) -> bool {
    crate::oauth::is_openid(scope)
}

/// The records of a new access token (and refresh token) in `family`, issued at `now`; `access`
/// and `refresh` are the minted keys and the tails the admin shows.
#[allow(clippy::too_many_arguments)]
pub fn issued_tokens(
    provider: &OAuth2Provider,
    now: Timestamp,
    application: u64,
    user: Option<u64>,
    scope: &str,
    family: FamilyId,
    access: (&SecretKey, &str),
    refresh: Option<(&SecretKey, &str)>,
) -> (AccessToken, Option<RefreshToken>) {
    let access_record = AccessToken {
        user,
        application,
        scope: scope.to_owned(),
        expires: now.plus_seconds(provider.access_token_expire_seconds),
        created: now,
        refresh_token: refresh.map(|(key, _)| key.0),
        family: Some(family),
        tail: access.1.to_owned(),
    };
    let refresh_record = refresh.map(|(_, tail)| RefreshToken {
        user,
        application,
        scope: scope.to_owned(),
        created: now,
        revoked: None,
        access_token: Some(access.0.0),
        family,
        tail: tail.to_owned(),
    });
    (access_record, refresh_record)
}

/// Why an authorization code is not exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// No such code, or its user may no longer act.
    Unknown,
    /// Used before: what it produced is revoked (`family_revoked` tokens were live), committed
    /// though the exchange is refused (RFC 6749 §4.1.2).
    Replayed {
        family_revoked: u64,
    },
    OtherClient,
    Expired,
    /// The token request did not repeat the authorization request's redirect URI.
    RedirectUriMismatch,
    /// PKCE (RFC 7636): the verifier does not match, is missing, or comes without a challenge.
    VerifierMismatch,
    VerifierMissing,
    VerifierUnexpected,
}

/// The `authorization_code` grant's judgement of `grant`, presented by client `client` with
/// `redirect_uri` and `verifier` at `now`, in the order DOT checks.
pub fn judge_code_exchange(
    grant: &Grant,
    holder: Option<&User>,
    client: u64,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    now: Timestamp,
) -> Result<(), CodeRefusal> {
    if grant.used.is_some() {
        return Err(CodeRefusal::Replayed { family_revoked: 0 });
    }
    if grant.application != client {
        return Err(CodeRefusal::OtherClient);
    }
    if grant.expires <= now {
        return Err(CodeRefusal::Expired);
    }
    if !holder_may_act(Some(grant.user), holder) {
        return Err(CodeRefusal::Unknown);
    }
    if let Some(expected) = &grant.redirect_uri
        && redirect_uri != Some(expected.as_str())
    {
        return Err(CodeRefusal::RedirectUriMismatch);
    }
    match (&grant.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let method = grant.code_challenge_method.as_deref().unwrap_or("plain");
            if !crate::oauth::pkce::is_well_formed(verifier)
                || !crate::oauth::pkce::verifies(method, challenge, verifier)
            {
                return Err(CodeRefusal::VerifierMismatch);
            }
            Ok(())
        }
        (Some(_), None) => Err(CodeRefusal::VerifierMissing),
        (None, Some(_)) => Err(CodeRefusal::VerifierUnexpected),
        (None, None) => Ok(()),
    }
}

/// What a device's poll at the token endpoint (RFC 8628 §3.4) comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevicePoll {
    /// No such device code (or it went: denied and answered, or exchanged).
    Unknown,
    OtherClient,
    Expired,
    /// Still waiting for the user; `slow_down` when the device polled before its interval
    /// passed (the interval then grows by 5 seconds, §3.5). The poll is recorded.
    Pending {
        slow_down: bool,
    },
    /// The user denied it: answered once, then the request is gone.
    Denied,
    /// Approved by a user who can no longer act (deactivated or deleted since): over.
    ApproverGone,
    /// Approved: tokens are issued for `user` and the request is gone.
    Approved {
        user: u64,
    },
}

/// The judgement of a device's poll with the code of `grant` by client `client` at `now`;
/// `approver` is the approving user as stored now, when the grant is approved.
pub fn judge_device_poll(
    grant: &DeviceGrant,
    approver: Option<&User>,
    client: u64,
    now: Timestamp,
) -> DevicePoll {
    if grant.application != client {
        return DevicePoll::OtherClient;
    }
    if grant.expires <= now {
        return DevicePoll::Expired;
    }
    match grant.decision {
        DeviceDecision::Denied => DevicePoll::Denied,
        DeviceDecision::Pending => DevicePoll::Pending {
            slow_down: grant
                .last_poll
                .is_some_and(|last| now < last.plus_seconds(grant.interval)),
        },
        DeviceDecision::Approved { user, .. } if !holder_may_act(Some(user), approver) => {
            DevicePoll::ApproverGone
        }
        DeviceDecision::Approved { user, .. } => DevicePoll::Approved { user },
    }
}

/// A pending device grant after a poll at `now`: the poll recorded, the interval grown on
/// `slow_down`.
pub fn polled(grant: &DeviceGrant, slow_down: bool, now: Timestamp) -> DeviceGrant {
    DeviceGrant {
        last_poll: Some(now),
        interval: if slow_down {
            grant.interval + 5
        } else {
            grant.interval
        },
        ..grant.clone()
    }
}

/// Whether a user may still decide `grant` at `now`: only while it is pending and unexpired.
pub fn device_grant_awaits_decision(grant: &DeviceGrant, now: Timestamp) -> bool {
    grant.expires > now && grant.decision == DeviceDecision::Pending
}

/// What a user has approved for an application after approving `scope` too: approvals
/// accumulate, so what they approved before stays approved.
pub fn merged_consent(previous: Option<&str>, scope: &str) -> String {
    let mut approved = previous.unwrap_or_default().to_owned();
    for wanted in scope.split(' ').filter(|wanted| !wanted.is_empty()) {
        if !approved.split(' ').any(|have| have == wanted) {
            if !approved.is_empty() {
                approved.push(' ');
            }
            approved.push_str(wanted);
        }
    }
    approved
}

/// The consent to store after the user approves `scope` at `now`, given what they approved
/// before; None when that already covers `scope` (nothing to write, so a repeated approval
/// neither writes nor waits for the consent's row). `granted` is when it last widened.
pub fn consent_after(previous: Option<&Consent>, scope: &str, now: Timestamp) -> Option<Consent> {
    let merged = merged_consent(previous.map(|consent| consent.scope.as_str()), scope);
    if previous.is_some_and(|consent| consent.scope == merged) {
        return None;
    }
    Some(Consent {
        scope: merged,
        granted: now,
    })
}

/// The records a granted refresh writes: the new access token, the presented refresh token as
/// it is kept (rotated: revoked, not rotating: paired with the new access token), and the new
/// refresh token when rotating. The presented token's previous access token is deleted.
pub struct RefreshRecords {
    pub access: AccessToken,
    pub old: RefreshToken,
    pub new_refresh: Option<RefreshToken>,
}

/// What a granted refresh of `old` (under `old_key`) writes at `now`, with `scope` judged by
/// `judge_refresh`; `access` and `refresh` are the freshly minted keys and their tails.
pub fn refresh_records(
    old: &RefreshToken,
    old_key: &SecretKey,
    scope: &str,
    access: (&SecretKey, &str),
    refresh: (&SecretKey, &str),
    provider: &OAuth2Provider,
    now: Timestamp,
) -> RefreshRecords {
    let rotate = provider.rotate_refresh_token;
    // The new access token pairs with the new refresh token when rotating, else the old one.
    let paired = if rotate { refresh } else { (old_key, "") };
    let (access_record, _) = issued_tokens(
        provider,
        now,
        old.application,
        old.user,
        scope,
        old.family,
        access,
        Some(paired),
    );
    let mut kept = old.clone();
    let new_refresh = if rotate {
        kept.access_token = None;
        kept.revoked = kept.revoked.or(Some(now));
        Some(RefreshToken {
            user: old.user,
            application: old.application,
            scope: old.scope.clone(),
            created: now,
            revoked: None,
            access_token: Some(access.0.0),
            family: old.family,
            tail: refresh.1.to_owned(),
        })
    } else {
        kept.access_token = Some(access.0.0);
        None
    };
    RefreshRecords {
        access: access_record,
        old: kept,
        new_refresh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::FamilyId;

    #[test]
    fn only_an_active_user_made_inactive_is_deactivated() {
        let active = User::sample(7, "alice");
        let inactive = User {
            is_active: false,
            ..active.clone()
        };
        assert!(deactivated(Some(&active), &inactive));
        assert!(!deactivated(Some(&inactive), &inactive), "already inactive");
        assert!(!deactivated(Some(&active), &active));
        assert!(!deactivated(None, &inactive), "a new record");
    }

    #[test]
    fn a_session_lives_until_it_expires_and_only_for_its_active_user() {
        let now = Timestamp(10_000_000);
        let session = Session {
            user_id: 7,
            auth_time: now,
            created: now,
            expires_at: now.plus_seconds(60),
            sid: "sid".to_owned(),
        };
        let user = User::sample(7, "alice");
        assert!(session_user_live(&session, Some(&user), now));
        assert!(session_user_live(
            &session,
            Some(&user),
            now.plus_seconds(59)
        ));
        assert!(!session_user_live(
            &session,
            Some(&user),
            now.plus_seconds(60)
        ));
        assert!(!session_user_live(&session, None, now), "user deleted");
        let inactive = User {
            is_active: false,
            ..user.clone()
        };
        assert!(!session_user_live(&session, Some(&inactive), now));
        let other = User::sample(8, "bob");
        assert!(!session_user_live(&session, Some(&other), now));
    }

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
        assert!(access_token_live(&token, None, Timestamp(9)));
        let users = AccessToken {
            user: Some(7),
            ..token.clone()
        };
        assert!(access_token_live(&users, Some(&user(true)), Timestamp(9)));
        assert!(!access_token_live(&users, Some(&user(false)), Timestamp(9)));
        assert!(
            !access_token_live(&users, None, Timestamp(9)),
            "a deleted user"
        );
        assert!(!access_token_live(&users, Some(&user(true)), Timestamp(10)));
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

    #[test]
    fn a_refresh_is_judged_in_dots_order() {
        let second = 1_000_000;
        let provider = OAuth2Provider {
            refresh_token_expire_seconds: Some(100),
            refresh_token_grace_period_seconds: 5,
            ..OAuth2Provider::default()
        };
        let alice = user(true);
        let now = Timestamp(50 * second);
        let judge = |token: &RefreshToken, holder: Option<&User>, client, scope| {
            judge_refresh(token, holder, client, scope, &provider, now)
        };
        let live = refresh(0, None);
        assert_eq!(judge(&live, Some(&alice), 1, None), Ok("read".to_owned()));
        assert_eq!(
            judge(&live, Some(&alice), 2, None),
            Err(RefreshRefusal::OtherClient)
        );
        assert_eq!(
            judge(&refresh(-100 * second, None), Some(&alice), 1, None),
            Err(RefreshRefusal::Expired)
        );
        assert_eq!(
            judge(&live, Some(&user(false)), 1, None),
            Err(RefreshRefusal::Unknown)
        );
        assert_eq!(judge(&live, None, 1, None), Err(RefreshRefusal::Unknown));
        // Rotated 4 s ago: within the 5 s grace; 5 s ago: a reuse.
        assert!(judge(&refresh(0, Some(46 * second)), Some(&alice), 1, None).is_ok());
        assert_eq!(
            judge(&refresh(0, Some(45 * second)), Some(&alice), 1, None),
            Err(RefreshRefusal::Reused { family_revoked: 0 })
        );
        assert_eq!(
            judge(&live, Some(&alice), 1, Some("read write")),
            Err(RefreshRefusal::ScopeWidened)
        );
        assert_eq!(
            judge(&live, Some(&alice), 1, Some("read")),
            Ok("read".to_owned())
        );
    }

    #[test]
    fn a_granted_refresh_rotates_or_repairs_the_pair() {
        let now = Timestamp(9);
        let old = RefreshToken {
            access_token: Some([1; 32]),
            ..refresh(0, None)
        };
        let (old_key, access, new) = (SecretKey([2; 32]), SecretKey([3; 32]), SecretKey([4; 32]));
        let mut provider = OAuth2Provider {
            rotate_refresh_token: true,
            ..OAuth2Provider::default()
        };
        let rotated = refresh_records(
            &old,
            &old_key,
            "read",
            (&access, "aaaa"),
            (&new, "bbbb"),
            &provider,
            now,
        );
        assert_eq!(rotated.old.revoked, Some(now));
        assert_eq!(rotated.old.access_token, None);
        assert_eq!(rotated.access.refresh_token, Some(new.0));
        let new_refresh = rotated.new_refresh.unwrap();
        assert_eq!(
            (new_refresh.created, new_refresh.access_token),
            (now, Some(access.0))
        );
        assert_eq!(new_refresh.family, old.family);

        provider.rotate_refresh_token = false;
        let kept = refresh_records(
            &old,
            &old_key,
            "read",
            (&access, "aaaa"),
            (&new, "bbbb"),
            &provider,
            now,
        );
        assert!(kept.new_refresh.is_none());
        assert_eq!(kept.old.revoked, None);
        assert_eq!(kept.old.access_token, Some(access.0));
        assert_eq!(kept.access.refresh_token, Some(old_key.0));
    }

    #[test]
    fn consent_accumulates_without_repeats() {
        assert_eq!(merged_consent(None, "read"), "read");
        assert_eq!(merged_consent(Some("read"), "write read"), "read write");
        assert_eq!(merged_consent(Some("read write"), ""), "read write");
        let at = Timestamp(5);
        let first = consent_after(None, "read", at).unwrap();
        assert_eq!((first.scope.as_str(), first.granted), ("read", at));
        assert_eq!(consent_after(Some(&first), "read", Timestamp(9)), None);
        let wider = consent_after(Some(&first), "write", Timestamp(9)).unwrap();
        assert_eq!(
            (wider.scope.as_str(), wider.granted),
            ("read write", Timestamp(9))
        );
    }

    #[test]
    fn a_code_is_judged_in_dots_order() {
        let now = Timestamp(10);
        let grant = Grant {
            user: 7,
            application: 1,
            redirect_uri: Some("https://a/cb".to_owned()),
            scope: "read".to_owned(),
            code_challenge: None,
            code_challenge_method: None,
            nonce: None,
            auth_time: now,
            created: now,
            expires: Timestamp(20),
            used: None,
            family: FamilyId([0; 16]),
            sid: None,
            claims: None,
        };
        let alice = user(true);
        let judge = |grant: &Grant, client, redirect: Option<&str>, verifier: Option<&str>| {
            judge_code_exchange(grant, Some(&alice), client, redirect, verifier, now)
        };
        assert_eq!(judge(&grant, 1, Some("https://a/cb"), None), Ok(()));
        let used = Grant {
            used: Some(now),
            ..grant.clone()
        };
        // A replay is recognised before anything else, even from another client.
        assert_eq!(
            judge(&used, 2, None, None),
            Err(CodeRefusal::Replayed { family_revoked: 0 })
        );
        assert_eq!(
            judge(&grant, 2, Some("https://a/cb"), None),
            Err(CodeRefusal::OtherClient)
        );
        let expired = Grant {
            expires: now,
            ..grant.clone()
        };
        assert_eq!(
            judge(&expired, 1, Some("https://a/cb"), None),
            Err(CodeRefusal::Expired)
        );
        assert_eq!(
            judge_code_exchange(
                &grant,
                Some(&user(false)),
                1,
                Some("https://a/cb"),
                None,
                now
            ),
            Err(CodeRefusal::Unknown)
        );
        assert_eq!(
            judge(&grant, 1, None, None),
            Err(CodeRefusal::RedirectUriMismatch)
        );
        assert_eq!(
            judge(&grant, 1, Some("https://a/cb"), Some(&"v".repeat(43))),
            Err(CodeRefusal::VerifierUnexpected)
        );
        let plain = Grant {
            code_challenge: Some("v".repeat(43)),
            code_challenge_method: Some("plain".to_owned()),
            ..grant.clone()
        };
        assert_eq!(
            judge(&plain, 1, Some("https://a/cb"), None),
            Err(CodeRefusal::VerifierMissing)
        );
        assert_eq!(
            judge(&plain, 1, Some("https://a/cb"), Some(&"w".repeat(43))),
            Err(CodeRefusal::VerifierMismatch)
        );
        assert_eq!(
            judge(&plain, 1, Some("https://a/cb"), Some(&"v".repeat(43))),
            Ok(())
        );
    }

    #[test]
    fn a_device_poll_is_judged_by_the_grants_state() {
        let now = Timestamp(100 * 1_000_000);
        let grant = DeviceGrant {
            application: 1,
            scope: "read".to_owned(),
            user_code: "BCDFGHJK".to_owned(),
            decision: DeviceDecision::Pending,
            created: Timestamp(0),
            expires: Timestamp(200 * 1_000_000),
            interval: 5,
            last_poll: None,
        };
        let alice = user(true);
        assert_eq!(
            judge_device_poll(&grant, None, 2, now),
            DevicePoll::OtherClient
        );
        assert_eq!(
            judge_device_poll(&grant, None, 1, now),
            DevicePoll::Pending { slow_down: false }
        );
        let polled_now = polled(&grant, false, now);
        let soon = Timestamp(now.0 + 4 * 1_000_000);
        assert_eq!(
            judge_device_poll(&polled_now, None, 1, soon),
            DevicePoll::Pending { slow_down: true }
        );
        assert_eq!(polled(&polled_now, true, soon).interval, 10);
        let approved = DeviceGrant {
            decision: DeviceDecision::Approved {
                user: 7,
                auth_time: now,
            },
            ..grant.clone()
        };
        assert_eq!(
            judge_device_poll(&approved, Some(&alice), 1, now),
            DevicePoll::Approved { user: 7 }
        );
        assert_eq!(
            judge_device_poll(&approved, Some(&user(false)), 1, now),
            DevicePoll::ApproverGone
        );
        let denied = DeviceGrant {
            decision: DeviceDecision::Denied,
            ..grant.clone()
        };
        assert_eq!(judge_device_poll(&denied, None, 1, now), DevicePoll::Denied);
        assert!(!device_grant_awaits_decision(&denied, now));
        assert_eq!(
            judge_device_poll(&grant, None, 1, grant.expires),
            DevicePoll::Expired
        );
        assert!(device_grant_awaits_decision(&grant, now));
        assert!(!device_grant_awaits_decision(&grant, grant.expires));
    }
}
