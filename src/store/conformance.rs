//! What every backend must do, as functions over the storage traits: each backend's tests run
//! them against a fresh store holding one application and one user (see `Seeded`). A new
//! backend is done when these pass on it.

use std::sync::Arc;

use crate::config::OAuth2Provider;
use crate::rules::{CodeRefusal, DevicePoll, RefreshRefusal};
use crate::store::{
    AccessToken, Algorithm, Application, Approval, CodeExchange, CopyError, DeviceDecision,
    DeviceGrant, DevicePollRequest, ExpiringKind, ExpiryCutoffs, FailureKey, FailureQuery,
    FamilyId, Grant, Group, IdKind, ListedRecord, LoadError, NewTokens, NotTheClients,
    PeriodicTask, Permission, PermissionRecord, Record, RefreshRequest, RefreshToken, Replaced,
    SECTIONS, SecretKey, Session, SigningKey, Storage, StoreError, StoredToken, TaskOutcome,
    TaskSchedule, Timestamp, TokenQuery, TokenRows, TokenTable, User, UserOrder, UserPage,
    UserQuery, UserSaved, copy_store,
};

/// One test per conformance function, each given to `$run`: the backend's function that makes
/// a fresh seeded store and runs the test on it (`fn run<F: Future<Output = ()>>(test: impl
/// FnOnce(Seeded) -> F)`). Every backend's tests are this one list.
macro_rules! conformance_suite {
    ($run:ident) => {
        $crate::store::conformance::conformance_suite!(@tests $run;
            users_get_ids_above_every_id_used_and_unique_names,
            usernames_are_read_for_the_ids_asked_only,
            the_user_list_is_searched_sorted_and_paged_by_the_rules,
            concurrent_creations_of_one_username_create_one_user,
            a_login_opens_a_session_that_lives_until_it_expires,
            a_password_change_ends_other_sessions_and_an_upgrade_yields_to_it,
            permission_sources_are_the_users_groups_and_loaded_rows,
            failures_are_counted_per_scope_and_key_newest_kept,
            applications_get_ids_above_every_id_used_and_unique_client_ids,
            concurrent_registrations_of_one_client_id_register_one,
            an_edit_replaces_only_what_it_was_read_from,
            deleting_an_application_takes_what_was_issued_to_it,
            deactivating_a_user_ends_their_sessions_and_tokens,
            deleting_a_user_takes_what_is_theirs,
            groups_are_created_renamed_and_deleted_members_kept,
            revoking_a_users_tokens_for_one_client_leaves_the_others,
            periodic_tasks_are_added_run_and_deleted,
            configured_tasks_replace_their_stored_versions_keeping_history,
            a_lease_is_held_by_one_holder_until_it_expires,
            cleanup_batches_delete_what_is_due_and_only_that,
            signing_keys_are_saved_and_raise_the_key_ring_version,
            token_lists_page_filter_and_revoke,
            a_users_grants_are_their_tokens_and_consents,
            concurrent_failures_all_count,
            tokens_are_found_with_their_application_and_user,
            a_refresh_rotates_and_a_reuse_revokes_the_family,
            concurrent_refreshes_of_one_token_grant_exactly_one,
            refused_refreshes_change_nothing,
            revocation_takes_the_pair_or_the_family,
            approvals_store_the_code_and_accumulate_consent,
            concurrent_first_approvals_keep_every_scope,
            a_code_is_exchanged_once_and_a_replay_revokes_what_it_gave,
            concurrent_exchanges_of_one_code_grant_exactly_one,
            refused_exchanges_leave_the_code_unused,
            a_device_is_approved_once_and_gets_its_tokens,
            device_user_codes_are_unique_and_denials_are_told_once,
            concurrent_polls_of_an_approved_device_issue_tokens_once,
            a_copy_holds_every_record_under_its_keys,
            a_client_is_read_with_its_failures,
            the_overview_counts_what_is_stored,
            a_load_is_all_or_nothing_and_one_at_a_time,
            a_load_dropped_unfinished_is_undone,
        );
    };
    (@tests $run:ident; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            $run($crate::store::conformance::$name);
        }
    )*};
}
pub(crate) use conformance_suite;

/// Makes another empty store of the same backend, living as long as the test.
pub type AnotherStore =
    Box<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Arc<dyn Storage>> + Send>> + Send + Sync>;

/// A fresh store and what it was seeded with.
pub struct Seeded {
    pub storage: Arc<dyn Storage>,
    pub another: AnotherStore,
    /// Two applications' ids, the second to present tokens of the first.
    pub application: u64,
    pub other_application: u64,
    /// An active user's id.
    pub user: u64,
}

/// What every backend's seeding adds beside the applications and the user `alice` (7): a
/// staff user in a group, and the one Django permission row their permission pks name.
pub struct Seed {
    pub group: Group,
    pub permission: (u64, PermissionRecord),
    pub staff: User,
}

impl Seed {
    pub fn standard() -> Self {
        let mut staff = User::sample(8, "bob");
        staff.is_staff = true;
        staff.groups = vec![3];
        // 42 names no loaded row (left out); the natural key needs none.
        staff.user_permissions = vec![
            Permission::Pk(42),
            Permission::Natural(vec![
                "view_user".to_owned(),
                "auth".to_owned(),
                "user".to_owned(),
            ]),
        ];
        Seed {
            group: Group {
                id: 3,
                name: "editors".to_owned(),
                permissions: vec![Permission::Pk(41)],
            },
            permission: (
                41,
                PermissionRecord {
                    codename: "change_application".to_owned(),
                    name: "Can change application".to_owned(),
                    app_label: "oauth2_provider".to_owned(),
                    model: "application".to_owned(),
                },
            ),
            staff,
        }
    }
}

impl Seed {
    /// Everything a seeded store starts with, as records a backend imports
    /// (`Transfer::import`): applications 1 and 2, alice (7), and the standard seed.
    pub fn records() -> Vec<Record> {
        let seed = Seed::standard();
        vec![
            Record::Application(Application::sample(1, "client-1")),
            Record::Application(Application::sample(2, "client-2")),
            Record::Group(seed.group),
            Record::Permission(seed.permission.0, seed.permission.1),
            Record::User(User::sample(7, "alice")),
            Record::User(seed.staff),
        ]
    }
}

const SECOND: i64 = 1_000_000;

fn key(n: u8) -> SecretKey {
    SecretKey([n; 32])
}

/// An access token and a refresh token of one family, issued at `now`.
fn pair(seeded: &Seeded, access: u8, refresh: u8, now: Timestamp) -> NewTokens {
    let family = FamilyId([access; 16]);
    NewTokens {
        access: (
            key(access),
            AccessToken {
                user: Some(seeded.user),
                application: seeded.application,
                scope: "read write".to_owned(),
                expires: now.plus_seconds(3600),
                created: now,
                refresh_token: Some(key(refresh).0),
                family: Some(family),
                tail: "abcd".to_owned(),
            },
        ),
        refresh: Some((
            key(refresh),
            RefreshToken {
                user: Some(seeded.user),
                application: seeded.application,
                scope: "read write".to_owned(),
                created: now,
                revoked: None,
                access_token: Some(key(access).0),
                family,
                tail: "efgh".to_owned(),
            },
        )),
    }
}

/// `pair`, issued to the other application.
fn pair_of_other(seeded: &Seeded, access: u8, refresh: u8, now: Timestamp) -> NewTokens {
    let mut tokens = pair(seeded, access, refresh, now);
    tokens.access.1.application = seeded.other_application;
    if let Some((_, token)) = tokens.refresh.as_mut() {
        token.application = seeded.other_application;
    }
    tokens
}

fn refresh_request(seeded: &Seeded, presented: u8, minted: u8, now: Timestamp) -> RefreshRequest {
    RefreshRequest {
        presented: key(presented),
        client: seeded.application,
        requested_scope: None,
        now,
        access: (key(minted), "new1".to_owned()),
        refresh: (key(minted + 1), "new2".to_owned()),
        id_token_jti: None,
    }
}

/// Issued tokens are found by key with their application and user; unknown keys are not.
pub async fn tokens_are_found_with_their_application_and_user(seeded: Seeded) {
    let now = Timestamp(1_000 * SECOND);
    seeded
        .storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    let access = seeded.storage.find_token(&key(1)).await.unwrap().unwrap();
    assert!(matches!(access.token, StoredToken::Access(ref token) if token.scope == "read write"));
    assert_eq!(
        access.application.map(|app| app.id),
        Some(seeded.application)
    );
    assert_eq!(access.user.map(|user| user.id), Some(seeded.user));
    let refresh = seeded.storage.find_token(&key(2)).await.unwrap().unwrap();
    assert!(matches!(refresh.token, StoredToken::Refresh(ref token) if token.revoked.is_none()));
    assert!(seeded.storage.find_token(&key(99)).await.unwrap().is_none());
}

/// A refresh rotates the token: the new pair works, the old access token is gone, the old
/// refresh token is kept revoked; presenting the old one again is a reuse that revokes the
/// whole family (reuse protection on).
pub async fn a_refresh_rotates_and_a_reuse_revokes_the_family(seeded: Seeded) {
    let provider = OAuth2Provider {
        rotate_refresh_token: true,
        refresh_token_reuse_protection: true,
        refresh_token_grace_period_seconds: 0,
        ..OAuth2Provider::default()
    };
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    let later = Timestamp(now.0 + SECOND);
    let refreshed = storage
        .rotate_refresh_token(refresh_request(&seeded, 2, 10, later), &provider)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refreshed.scope, "read write");
    assert!(
        storage.find_token(&key(1)).await.unwrap().is_none(),
        "old access token deleted"
    );
    assert!(storage.find_token(&key(10)).await.unwrap().is_some());
    match storage.find_token(&key(2)).await.unwrap().unwrap().token {
        StoredToken::Refresh(old) => assert_eq!(old.revoked, Some(later)),
        other => panic!("{other:?}"),
    }
    let reuse = storage
        .rotate_refresh_token(refresh_request(&seeded, 2, 20, later), &provider)
        .await
        .unwrap();
    assert_eq!(
        reuse.unwrap_err(),
        RefreshRefusal::Reused { family_revoked: 2 }
    );
    assert!(
        storage.find_token(&key(10)).await.unwrap().is_none(),
        "family access token"
    );
    match storage.find_token(&key(11)).await.unwrap().unwrap().token {
        StoredToken::Refresh(new) => assert!(new.revoked.is_some(), "family refresh token"),
        other => panic!("{other:?}"),
    }
}

/// Of many concurrent refreshes of one token, exactly one is granted.
pub async fn concurrent_refreshes_of_one_token_grant_exactly_one(seeded: Seeded) {
    let provider = OAuth2Provider {
        refresh_token_reuse_protection: false,
        refresh_token_grace_period_seconds: 0,
        ..OAuth2Provider::default()
    };
    let now = Timestamp(1_000 * SECOND);
    seeded
        .storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    let mut attempts = Vec::new();
    for i in 0..8u8 {
        let storage = seeded.storage.clone();
        let request = refresh_request(&seeded, 2, 10 + 2 * i, Timestamp(now.0 + SECOND));
        let provider = provider.clone();
        attempts.push(tokio::spawn(async move {
            storage.rotate_refresh_token(request, &provider).await
        }));
    }
    let mut granted = 0;
    for attempt in attempts {
        match attempt.await.unwrap().unwrap() {
            Ok(_) => granted += 1,
            Err(refusal) => assert_eq!(refusal, RefreshRefusal::Reused { family_revoked: 0 }),
        }
    }
    assert_eq!(granted, 1);
}

/// Refusals in the refresh grant's order, none of which changes a stored token.
pub async fn refused_refreshes_change_nothing(seeded: Seeded) {
    let provider = OAuth2Provider {
        refresh_token_expire_seconds: Some(60),
        ..OAuth2Provider::default()
    };
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    let before = storage.find_token(&key(2)).await.unwrap().unwrap().token;
    let unknown = refresh_request(&seeded, 77, 10, now);
    let other_client = RefreshRequest {
        client: seeded.other_application,
        ..refresh_request(&seeded, 2, 10, now)
    };
    let wider = RefreshRequest {
        requested_scope: Some("read write admin".to_owned()),
        ..refresh_request(&seeded, 2, 10, now)
    };
    let expired = refresh_request(&seeded, 2, 10, Timestamp(now.0 + 60 * SECOND));
    for (request, refusal) in [
        (unknown, RefreshRefusal::Unknown),
        (other_client, RefreshRefusal::OtherClient),
        (wider, RefreshRefusal::ScopeWidened),
        (expired, RefreshRefusal::Expired),
    ] {
        let outcome = storage
            .rotate_refresh_token(request, &provider)
            .await
            .unwrap();
        assert_eq!(outcome.unwrap_err(), refusal);
    }
    assert_eq!(
        storage.find_token(&key(2)).await.unwrap().unwrap().token,
        before
    );
    assert!(storage.find_token(&key(10)).await.unwrap().is_none());
    assert!(storage.find_token(&key(1)).await.unwrap().is_some());
}

/// Revocation: never of another client's token; an access token takes its refresh token
/// along, a refresh token its family.
pub async fn revocation_takes_the_pair_or_the_family(seeded: Seeded) {
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    storage
        .issue_tokens(pair(&seeded, 3, 4, now))
        .await
        .unwrap();
    assert_eq!(
        storage
            .revoke_token(&key(1), seeded.other_application, now)
            .await
            .unwrap(),
        Err(NotTheClients)
    );
    assert!(storage.find_token(&key(1)).await.unwrap().is_some());
    storage
        .revoke_token(&key(1), seeded.application, now)
        .await
        .unwrap()
        .unwrap();
    assert!(storage.find_token(&key(1)).await.unwrap().is_none());
    match storage.find_token(&key(2)).await.unwrap().unwrap().token {
        StoredToken::Refresh(refresh) => assert_eq!(refresh.revoked, Some(now)),
        other => panic!("{other:?}"),
    }
    storage
        .revoke_token(&key(4), seeded.application, now)
        .await
        .unwrap()
        .unwrap();
    assert!(storage.find_token(&key(3)).await.unwrap().is_none());
    // Unknown tokens are fine (RFC 7009 §2.2).
    storage
        .revoke_token(&key(99), seeded.application, now)
        .await
        .unwrap()
        .unwrap();
}

/// A code for `seeded`'s user and application, issued at `now`, valid for a minute, with a
/// PKCE challenge (S256 of `VERIFIER`) and a redirect URI.
fn code(seeded: &Seeded, family: u8, now: Timestamp) -> Grant {
    Grant {
        user: seeded.user,
        application: seeded.application,
        redirect_uri: Some("https://app.example/cb".to_owned()),
        scope: "openid read".to_owned(),
        code_challenge: Some(CHALLENGE.to_owned()),
        code_challenge_method: Some("S256".to_owned()),
        nonce: None,
        auth_time: now,
        created: now,
        expires: now.plus_seconds(60),
        used: None,
        family: FamilyId([family; 16]),
        sid: Some("sid".to_owned()),
        claims: None,
    }
}

/// RFC 7636's example verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn exchange(seeded: &Seeded, code: u8, minted: u8, now: Timestamp) -> CodeExchange {
    CodeExchange {
        code: key(code),
        client: seeded.application,
        redirect_uri: Some("https://app.example/cb".to_owned()),
        verifier: Some(VERIFIER.to_owned()),
        now,
        access: (key(minted), "acc1".to_owned()),
        refresh: (key(minted + 1), "ref1".to_owned()),
        id_token_jti: Some(format!("jti-{minted}")),
    }
}

/// Approvals store their code and accumulate consent.
pub async fn approvals_store_the_code_and_accumulate_consent(seeded: Seeded) {
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    let (user, application) = (seeded.user, seeded.application);
    assert!(storage.consent(user, application).await.unwrap().is_none());
    for scope in ["read", "write read"] {
        storage
            .approve(Approval {
                code: Some((key(1), code(&seeded, 1, now))),
                consent: Some((user, application, scope.to_owned(), now)),
                ..Approval::default()
            })
            .await
            .unwrap();
    }
    let consent = storage.consent(user, application).await.unwrap().unwrap();
    assert_eq!(consent.scope, "read write");
    // An approval of what is already consented to stores nothing new.
    storage
        .approve(Approval {
            code: Some((key(2), code(&seeded, 2, now))),
            consent: Some((user, application, "write".to_owned(), now.plus_seconds(60))),
            ..Approval::default()
        })
        .await
        .unwrap();
    assert_eq!(
        storage.consent(user, application).await.unwrap(),
        Some(consent)
    );
    assert!(
        storage
            .consent(user, seeded.other_application)
            .await
            .unwrap()
            .is_none()
    );
}

/// Approvals of one user for one application at the same moment, the first they ever gave
/// it: every scope approved is remembered (none overwrites another).
pub async fn concurrent_first_approvals_keep_every_scope(seeded: Seeded) {
    let now = Timestamp(1_000 * SECOND);
    let pairs = [
        (seeded.user, seeded.application),
        (seeded.user, seeded.other_application),
        (8, seeded.application),
    ];
    for (user, application) in pairs {
        let approvals = (0..8).map(|n| {
            let storage = seeded.storage.clone();
            tokio::spawn(async move {
                storage
                    .approve(Approval {
                        consent: Some((user, application, format!("scope{n}"), now)),
                        ..Approval::default()
                    })
                    .await
            })
        });
        for approval in approvals.collect::<Vec<_>>() {
            approval.await.unwrap().unwrap();
        }
        let consent = seeded
            .storage
            .consent(user, application)
            .await
            .unwrap()
            .unwrap();
        let mut scopes: Vec<&str> = consent.scope.split(' ').collect();
        scopes.sort_unstable();
        assert_eq!(
            scopes,
            (0..8).map(|n| format!("scope{n}")).collect::<Vec<_>>(),
            "user {user}, application {application}"
        );
    }
}

/// A code is exchanged once, for an access and a refresh token of its family; presenting it
/// again revokes what it gave.
pub async fn a_code_is_exchanged_once_and_a_replay_revokes_what_it_gave(seeded: Seeded) {
    let provider = OAuth2Provider::default();
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    storage
        .approve(Approval {
            code: Some((key(1), code(&seeded, 1, now))),
            ..Approval::default()
        })
        .await
        .unwrap();
    let grant = storage
        .exchange_code(exchange(&seeded, 1, 10, now), &provider)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grant.used, Some(now));
    assert_eq!(grant.scope, "openid read");
    let access = storage.find_token(&key(10)).await.unwrap().unwrap();
    match access.token {
        StoredToken::Access(token) => {
            assert_eq!(token.family, Some(FamilyId([1; 16])));
            assert_eq!(token.refresh_token, Some(key(11).0));
        }
        other => panic!("{other:?}"),
    }
    // The family remembers the OpenID session (userinfo reads its `claims` request)…
    let session = storage
        .family_session(FamilyId([1; 16]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (session.auth_time, session.sid.as_deref()),
        (now, Some("sid"))
    );
    assert_eq!(
        storage.family_session(FamilyId([9; 16])).await.unwrap(),
        None
    );
    // … so a refresh brings an ID token.
    let refreshed = storage
        .rotate_refresh_token(
            RefreshRequest {
                id_token_jti: Some("jti-r".to_owned()),
                ..refresh_request(&seeded, 11, 20, now)
            },
            &provider,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        refreshed.session.map(|(user, session)| (user, session.sid)),
        Some((seeded.user, Some("sid".to_owned())))
    );
    let replay = storage
        .exchange_code(exchange(&seeded, 1, 30, now), &provider)
        .await
        .unwrap();
    assert_eq!(
        replay.unwrap_err(),
        CodeRefusal::Replayed { family_revoked: 2 }
    );
    assert!(storage.find_token(&key(20)).await.unwrap().is_none());
    assert!(storage.find_token(&key(30)).await.unwrap().is_none());
}

/// Of many concurrent exchanges of one code, exactly one is granted.
pub async fn concurrent_exchanges_of_one_code_grant_exactly_one(seeded: Seeded) {
    let now = Timestamp(1_000 * SECOND);
    seeded
        .storage
        .approve(Approval {
            code: Some((key(1), code(&seeded, 1, now))),
            ..Approval::default()
        })
        .await
        .unwrap();
    let mut attempts = Vec::new();
    for i in 0..8u8 {
        let storage = seeded.storage.clone();
        let request = exchange(&seeded, 1, 10 + 2 * i, now);
        attempts.push(tokio::spawn(async move {
            storage
                .exchange_code(request, &OAuth2Provider::default())
                .await
        }));
    }
    let mut granted = 0;
    for attempt in attempts {
        match attempt.await.unwrap().unwrap() {
            Ok(_) => granted += 1,
            Err(refusal) => assert!(matches!(refusal, CodeRefusal::Replayed { .. })),
        }
    }
    assert_eq!(granted, 1);
}

/// Refused exchanges leave the code unused: the right request still succeeds after them.
pub async fn refused_exchanges_leave_the_code_unused(seeded: Seeded) {
    let provider = OAuth2Provider::default();
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    storage
        .approve(Approval {
            code: Some((key(1), code(&seeded, 1, now))),
            ..Approval::default()
        })
        .await
        .unwrap();
    let right = || exchange(&seeded, 1, 10, now);
    let cases = [
        (
            CodeExchange {
                code: key(77),
                ..right()
            },
            CodeRefusal::Unknown,
        ),
        (
            CodeExchange {
                client: seeded.other_application,
                ..right()
            },
            CodeRefusal::OtherClient,
        ),
        (
            CodeExchange {
                now: Timestamp(now.0 + 60 * SECOND),
                ..right()
            },
            CodeRefusal::Expired,
        ),
        (
            CodeExchange {
                redirect_uri: Some("https://evil.example/cb".to_owned()),
                ..right()
            },
            CodeRefusal::RedirectUriMismatch,
        ),
        (
            CodeExchange {
                verifier: Some(format!("{VERIFIER}x")),
                ..right()
            },
            CodeRefusal::VerifierMismatch,
        ),
        (
            CodeExchange {
                verifier: None,
                ..right()
            },
            CodeRefusal::VerifierMissing,
        ),
    ];
    for (request, refusal) in cases {
        let outcome = storage.exchange_code(request, &provider).await.unwrap();
        assert_eq!(outcome.unwrap_err(), refusal);
    }
    assert!(storage.find_token(&key(10)).await.unwrap().is_none());
    storage
        .exchange_code(right(), &provider)
        .await
        .unwrap()
        .unwrap();
}

fn device_grant(seeded: &Seeded, user_code: &str, now: Timestamp) -> DeviceGrant {
    DeviceGrant {
        application: seeded.application,
        scope: "read".to_owned(),
        user_code: user_code.to_owned(),
        decision: DeviceDecision::Pending,
        created: now,
        expires: now.plus_seconds(600),
        interval: 5,
        last_poll: None,
    }
}

fn device_poll(seeded: &Seeded, device: u8, minted: u8, now: Timestamp) -> DevicePollRequest {
    DevicePollRequest {
        device_code: key(device),
        client: seeded.application,
        now,
        access: (key(minted), "dev1".to_owned()),
        refresh: (key(minted + 1), "dev2".to_owned()),
        family: FamilyId([minted; 16]),
    }
}

/// A device request is found by its user code while pending, polled (too fast: slow down),
/// approved once, and exchanged for tokens once.
pub async fn a_device_is_approved_once_and_gets_its_tokens(seeded: Seeded) {
    let provider = OAuth2Provider::default();
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    storage
        .start_device_authorization(key(1), device_grant(&seeded, "BCDFGHJK", now))
        .await
        .unwrap();
    let pending = storage
        .pending_device("BCDFGHJK", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (pending.key, pending.application.id),
        (key(1), seeded.application)
    );
    assert!(
        storage
            .pending_device("BCDFGHJX", now)
            .await
            .unwrap()
            .is_none()
    );
    let poll =
        |at: i64, minted: u8| device_poll(&seeded, 1, minted, Timestamp(now.0 + at * SECOND));
    assert_eq!(
        storage.poll_device(poll(1, 10), &provider).await.unwrap(),
        (DevicePoll::Pending { slow_down: false }, None)
    );
    assert_eq!(
        storage.poll_device(poll(2, 10), &provider).await.unwrap(),
        (DevicePoll::Pending { slow_down: true }, None)
    );
    let wrong_client = DevicePollRequest {
        client: seeded.other_application,
        ..poll(20, 10)
    };
    assert_eq!(
        storage
            .poll_device(wrong_client, &provider)
            .await
            .unwrap()
            .0,
        DevicePoll::OtherClient
    );
    let approved_by = Some((seeded.user, now));
    assert!(
        storage
            .decide_device(key(1), approved_by, now)
            .await
            .unwrap()
    );
    assert!(
        !storage.decide_device(key(1), None, now).await.unwrap(),
        "decided once"
    );
    assert!(
        storage
            .pending_device("BCDFGHJK", now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(storage.find_token(&key(10)).await.unwrap().is_none());
    assert_eq!(
        storage.poll_device(poll(30, 10), &provider).await.unwrap(),
        (
            DevicePoll::Approved { user: seeded.user },
            Some("read".to_owned())
        )
    );
    let found = storage.find_token(&key(10)).await.unwrap().unwrap();
    assert_eq!(found.user.map(|user| user.id), Some(seeded.user));
    assert!(storage.find_token(&key(11)).await.unwrap().is_some());
    assert_eq!(
        storage
            .poll_device(poll(40, 20), &provider)
            .await
            .unwrap()
            .0,
        DevicePoll::Unknown
    );
}

/// A user code belongs to one request; denied requests are told once; expired ones expire.
pub async fn device_user_codes_are_unique_and_denials_are_told_once(seeded: Seeded) {
    let provider = OAuth2Provider::default();
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    storage
        .start_device_authorization(key(1), device_grant(&seeded, "BCDFGHJK", now))
        .await
        .unwrap();
    let clash = storage
        .start_device_authorization(key(2), device_grant(&seeded, "BCDFGHJK", now))
        .await
        .unwrap_err();
    assert!(matches!(clash, StoreError::Duplicate { .. }), "{clash:?}");
    assert!(storage.decide_device(key(1), None, now).await.unwrap());
    assert_eq!(
        storage
            .poll_device(device_poll(&seeded, 1, 10, now), &provider)
            .await
            .unwrap()
            .0,
        DevicePoll::Denied
    );
    assert_eq!(
        storage
            .poll_device(device_poll(&seeded, 1, 10, now), &provider)
            .await
            .unwrap()
            .0,
        DevicePoll::Unknown
    );
    storage
        .start_device_authorization(key(3), device_grant(&seeded, "CDFGHJKL", now))
        .await
        .unwrap();
    let later = Timestamp(now.0 + 600 * SECOND);
    assert!(
        storage
            .pending_device("CDFGHJKL", later)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!storage.decide_device(key(3), None, later).await.unwrap());
    assert_eq!(
        storage
            .poll_device(device_poll(&seeded, 3, 10, later), &provider)
            .await
            .unwrap()
            .0,
        DevicePoll::Expired
    );
}

/// Of many concurrent polls of an approved device, exactly one gets tokens.
pub async fn concurrent_polls_of_an_approved_device_issue_tokens_once(seeded: Seeded) {
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    storage
        .start_device_authorization(key(1), device_grant(&seeded, "BCDFGHJK", now))
        .await
        .unwrap();
    assert!(
        storage
            .decide_device(key(1), Some((seeded.user, now)), now)
            .await
            .unwrap()
    );
    let mut attempts = Vec::new();
    for i in 0..8u8 {
        let storage = seeded.storage.clone();
        let poll = device_poll(&seeded, 1, 10 + 2 * i, now);
        attempts.push(tokio::spawn(async move {
            storage.poll_device(poll, &OAuth2Provider::default()).await
        }));
    }
    let mut issued = 0;
    for attempt in attempts {
        match attempt.await.unwrap().unwrap().0 {
            DevicePoll::Approved { .. } => issued += 1,
            other => assert_eq!(other, DevicePoll::Unknown),
        }
    }
    assert_eq!(issued, 1);
}

fn new_user(username: &str) -> User {
    User {
        id: 0,
        password: "argon2-hash".to_owned(),
        ..User::sample(0, username)
    }
}

fn session_of(user: u64, now: Timestamp, lifetime: u64) -> Session {
    Session {
        user_id: user,
        auth_time: now,
        created: now,
        expires_at: now.plus_seconds(lifetime),
        sid: format!("sid-{user}-{}", now.0),
    }
}

/// The usernames of some users, by id: those that exist, and only those asked for.
pub async fn usernames_are_read_for_the_ids_asked_only(seeded: Seeded) {
    let storage = &seeded.storage;
    let names = storage.usernames(&[seeded.user, 404]).await.unwrap();
    assert_eq!(
        names,
        std::collections::HashMap::from([(seeded.user, "alice".to_owned())])
    );
    assert!(storage.usernames(&[]).await.unwrap().is_empty());
    let both = storage.usernames(&[8, seeded.user]).await.unwrap();
    assert_eq!(both.get(&8).map(String::as_str), Some("bob"));
    assert_eq!(both.len(), 2);
}

/// The admin's user list, a page at a time: the store's answer is the rules' answer
/// (`UserQuery::answer` over every user) for every order, direction, search and page —
/// including letters beyond ASCII, `LIKE`'s own characters, ties, and users who never signed
/// in — and follows edits.
pub async fn the_user_list_is_searched_sorted_and_paged_by_the_rules(seeded: Seeded) {
    let storage = &seeded.storage;
    let people = [
        ("émile", "Émile", "Zola", "emile@Example.org"),
        ("Zoe", "zoë", "Ångström", "zoe@example.org"),
        ("under_score", "Ann", "O'Neil", "under@example.com"),
        ("per%cent", "Ann", "Smith", "per@example.com"),
        ("back\\slash", "Bob", "Smith", "b@EXAMPLE.com"),
        ("ANNA", "Anna", "", ""),
        ("İstanbul", "Straße", "ΣΊΣΥΦΟΣ", "ist@example.tr"),
    ];
    let mut stored = Vec::new();
    for (index, (username, first, last, email)) in people.iter().enumerate() {
        let mut user = new_user(username);
        user.first_name = (*first).to_owned();
        user.last_name = (*last).to_owned();
        user.email = (*email).to_owned();
        // Joined times with a tie; every other user has signed in, two at the same moment.
        user.date_joined = Timestamp(1_000 + (index as i64 / 2));
        user = storage.create_user(user).await.unwrap();
        if index % 2 == 0 {
            user.last_login = Some(Timestamp(5_000 + (index as i64 % 4)));
            storage.save_user(user.clone(), Timestamp(0)).await.unwrap();
        }
        stored.push(user);
    }
    for n in 0..12 {
        let mut user = new_user(&format!("user{n:02}"));
        user.first_name = if n % 3 == 0 {
            "Ann".into()
        } else {
            "Bo".into()
        };
        user.date_joined = Timestamp(2_000 - n);
        storage.create_user(user).await.unwrap();
    }
    let orders = [
        UserOrder::Id,
        UserOrder::Username,
        UserOrder::Email,
        UserOrder::Name,
        UserOrder::Joined,
        UserOrder::LastLogin,
    ];
    let searches = [
        "",
        "ann",
        "ANN smith",
        "%",
        "_",
        "\\",
        "é",
        "ÉMILE",
        "straße",
        "σίσυφος",
        "example.com",
        "user0 bo",
        "nobody",
        "n\no",
    ];
    let check = |expected: UserPage, found: UserPage, what: String| {
        let names = |page: &UserPage| -> Vec<String> {
            page.users
                .iter()
                .map(|user| user.username.clone())
                .collect()
        };
        assert_eq!(
            (
                expected.page,
                expected.matching,
                expected.total,
                names(&expected)
            ),
            (found.page, found.matching, found.total, names(&found)),
            "{what}"
        );
        assert_eq!(expected.users, found.users, "{what}");
    };
    let everyone = storage.users().await.unwrap();
    assert_eq!(everyone.len(), 2 + 7 + 12);
    for order in orders {
        for descending in [false, true] {
            for search in searches {
                for page in [1, 2, 4, 99] {
                    let query = UserQuery::new(search, order, descending, page, 4);
                    let found = storage.user_page(&query).await.unwrap();
                    let what = format!("{order:?} descending {descending} {search:?} page {page}");
                    check(query.answer(everyone.clone()), found, what);
                }
            }
        }
    }
    // The rules, spelled out once: a word in any field, without case, literally.
    let query = UserQuery::new("ann", UserOrder::Username, false, 1, 100);
    let found = storage.user_page(&query).await.unwrap();
    let names: Vec<&str> = found
        .users
        .iter()
        .map(|user| user.username.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ANNA",
            "per%cent",
            "under_score",
            "user00",
            "user03",
            "user06",
            "user09"
        ]
    );
    let literal = storage
        .user_page(&UserQuery::new("r%c", UserOrder::Id, false, 1, 100))
        .await
        .unwrap();
    assert_eq!(literal.matching, 1);
    // An edit moves the user in the list and in its searches.
    let mut zoe = stored[1].clone();
    zoe.username = "aaron".to_owned();
    zoe.first_name = "Quentin".to_owned();
    storage.save_user(zoe.clone(), Timestamp(0)).await.unwrap();
    let first = storage
        .user_page(&UserQuery::new(
            "quentin",
            UserOrder::Username,
            false,
            1,
            100,
        ))
        .await
        .unwrap();
    assert_eq!(first.users, vec![zoe.clone()]);
    assert_eq!(
        storage
            .user_page(&UserQuery::new("zoë", UserOrder::Id, false, 1, 100))
            .await
            .unwrap()
            .matching,
        0
    );
    let by_name = storage
        .user_page(&UserQuery::new("", UserOrder::Username, false, 1, 1))
        .await
        .unwrap();
    assert_eq!(by_name.users[0].username, "aaron");
    // A deleted user leaves the list and its counts.
    assert!(storage.delete_user(zoe.id, Timestamp(0)).await.unwrap());
    let after = storage
        .user_page(&UserQuery::new("", UserOrder::Id, false, 1, 100))
        .await
        .unwrap();
    assert_eq!((after.matching, after.total), (20, 20));
    assert!(after.users.iter().all(|user| user.id != zoe.id));
}

/// A new user's id is the database's, above the seeded ones; a taken username is a
/// `Duplicate` and stores nothing.
pub async fn users_get_ids_above_every_id_used_and_unique_names(seeded: Seeded) {
    let storage = &seeded.storage;
    let carol = storage.create_user(new_user("carol")).await.unwrap();
    assert!(carol.id > 8, "above the seeded users: {}", carol.id);
    assert_eq!(
        storage.user_by_username("carol").await.unwrap(),
        Some(carol.clone())
    );
    let dave = storage.create_user(new_user("dave")).await.unwrap();
    assert!(dave.id > carol.id);
    let taken = storage.create_user(new_user("alice")).await.unwrap_err();
    assert!(
        matches!(taken, StoreError::Duplicate { ref value, .. } if value == "alice"),
        "{taken:?}"
    );
    let alice = storage.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(alice.id, seeded.user, "the first alice is untouched");
    assert_eq!(storage.user_by_username("nobody").await.unwrap(), None);
}

/// Eight forms (or instances) creating one username at once: one user.
pub async fn concurrent_creations_of_one_username_create_one_user(seeded: Seeded) {
    let mut creating = Vec::new();
    for _ in 0..8 {
        let storage = seeded.storage.clone();
        creating.push(tokio::spawn(async move {
            storage.create_user(new_user("erin")).await
        }));
    }
    let mut created = Vec::new();
    for creation in creating {
        match creation.await.unwrap() {
            Ok(user) => created.push(user.id),
            Err(StoreError::Duplicate { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created.len(), 1, "{created:?}");
    // And eight different names at once get eight different ids.
    let mut creating = Vec::new();
    for n in 0..8 {
        let storage = seeded.storage.clone();
        creating.push(tokio::spawn(async move {
            storage.create_user(new_user(&format!("user{n}"))).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for creation in creating {
        ids.insert(creation.await.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 8);
    assert!(!ids.contains(&created[0]));
}

/// A login stores the session and the user's last login together; the session signs the
/// user in until it expires or ends.
pub async fn a_login_opens_a_session_that_lives_until_it_expires(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(5_000 * SECOND);
    let user = storage
        .open_session(key(1), session_of(seeded.user, now, 60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.last_login, Some(now));
    let stored = storage.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(stored.last_login, Some(now));
    assert_eq!(storage.user_by_id(seeded.user).await.unwrap(), Some(stored));
    assert_eq!(storage.user_by_id(999).await.unwrap(), None);
    let (session, signed_in) = storage.live_session(&key(1), now).await.unwrap().unwrap();
    assert_eq!((session.user_id, signed_in.id), (seeded.user, seeded.user));
    assert!(
        storage
            .live_session(&key(1), now.plus_seconds(59))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        storage
            .live_session(&key(1), now.plus_seconds(60))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(storage.live_session(&key(2), now).await.unwrap().is_none());
    assert!(storage.end_session(&key(1)).await.unwrap());
    assert!(storage.live_session(&key(1), now).await.unwrap().is_none());
    assert!(!storage.end_session(&key(1)).await.unwrap(), "ended once");
    // A user deleted before the login's write: no session stored.
    assert!(
        storage
            .open_session(key(3), session_of(999, now, 60))
            .await
            .unwrap()
            .is_none()
    );
    assert!(storage.live_session(&key(3), now).await.unwrap().is_none());
}

/// Setting a password ends the user's other sessions; a login's rehash of the old password
/// does not undo the change.
pub async fn a_password_change_ends_other_sessions_and_an_upgrade_yields_to_it(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(6_000 * SECOND);
    for n in [1, 2] {
        storage
            .open_session(key(n), session_of(seeded.user, now, 600))
            .await
            .unwrap()
            .unwrap();
    }
    let staff_session = storage
        .open_session(key(3), session_of(8, now, 600))
        .await
        .unwrap();
    assert!(staff_session.is_some());
    assert!(
        storage
            .set_password("alice", "new-hash".to_owned(), Some(key(1)))
            .await
            .unwrap()
    );
    assert!(storage.live_session(&key(1), now).await.unwrap().is_some());
    assert!(storage.live_session(&key(2), now).await.unwrap().is_none());
    assert!(
        storage.live_session(&key(3), now).await.unwrap().is_some(),
        "another user's session stays"
    );
    // A login that verified the old hash (`!`) and rehashed it, writing after the change.
    let after = storage
        .upgrade_password(seeded.user, "!".to_owned(), "rehash-of-old".to_owned())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.password, "new-hash");
    let after = storage
        .upgrade_password(seeded.user, "new-hash".to_owned(), "rehash".to_owned())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.password, "rehash");
    let stored = storage.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(stored.password, "rehash");
    assert!(
        storage
            .upgrade_password(999, "a".to_owned(), "b".to_owned())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !storage
            .set_password("nobody", "x".to_owned(), None)
            .await
            .unwrap()
    );
    // Without a session to keep, all go.
    assert!(
        storage
            .set_password("alice", "other".to_owned(), None)
            .await
            .unwrap()
    );
    assert!(storage.live_session(&key(1), now).await.unwrap().is_none());
}

/// A staff user's groups and the loaded permission rows their pks name; pks without a row
/// are left out.
pub async fn permission_sources_are_the_users_groups_and_loaded_rows(seeded: Seeded) {
    let seed = Seed::standard();
    let sources = seeded
        .storage
        .permission_sources(&seed.staff)
        .await
        .unwrap();
    assert_eq!(sources.groups, vec![seed.group.clone()]);
    assert_eq!(
        seeded.storage.groups_of(&seed.staff).await.unwrap(),
        vec![seed.group.clone()]
    );
    assert_eq!(sources.permissions, vec![seed.permission.clone()]);
    let alice = User::sample(seeded.user, "alice");
    let none = seeded.storage.permission_sources(&alice).await.unwrap();
    assert!(none.groups.is_empty() && none.permissions.is_empty());
}

fn failure_key(name: &str, keep: usize) -> FailureKey {
    FailureKey {
        name: name.to_owned(),
        keep,
    }
}

/// Failures are kept per scope and key: the newest `keep` after a time, oldest first; a key
/// can be forgotten alone; failures in one microsecond all count.
pub async fn failures_are_counted_per_scope_and_key_newest_kept(seeded: Seeded) {
    let storage = &seeded.storage;
    let at = |n: i64| Timestamp(10_000 * SECOND + n * SECOND);
    let keys = [
        failure_key("source 1.2.3.4 alice", 2),
        failure_key("ip 1.2.3.4", 10),
    ];
    for n in 1..=3 {
        storage
            .record_failure("login", &keys, at(n), at(0))
            .await
            .unwrap();
    }
    let recent = storage
        .recent_failures("login", &keys, at(0))
        .await
        .unwrap();
    assert_eq!(recent, vec![vec![at(2), at(3)], vec![at(1), at(2), at(3)]]);
    let since_first = storage
        .recent_failures("login", &keys, at(1))
        .await
        .unwrap();
    assert_eq!(since_first[1], vec![at(2), at(3)], "after `since` only");
    let other_scope = storage
        .recent_failures("client", &keys, at(0))
        .await
        .unwrap();
    assert_eq!(other_scope, vec![Vec::new(), Vec::new()]);
    storage
        .forget_failures("login", "source 1.2.3.4 alice")
        .await
        .unwrap();
    let recent = storage
        .recent_failures("login", &keys, at(0))
        .await
        .unwrap();
    assert_eq!(recent, vec![vec![], vec![at(1), at(2), at(3)]]);
    // Two failures in the same microsecond, recorded while old ones expire.
    for _ in 0..2 {
        storage
            .record_failure("login", &keys[1..], at(4), at(2))
            .await
            .unwrap();
    }
    let recent = storage
        .recent_failures("login", &keys[1..], at(2))
        .await
        .unwrap();
    assert_eq!(recent, vec![vec![at(3), at(4), at(4)]]);
}

/// A client authentication reads the application and its throttle's failures together: the
/// same as reading them apart, for a known and an unknown client.
pub async fn a_client_is_read_with_its_failures(seeded: Seeded) {
    let storage = &seeded.storage;
    let at = |n: i64| Timestamp(30_000 * SECOND + n);
    let keys = [
        failure_key("source 1.2.3.4 client-1", 3),
        failure_key("ip 1.2.3.4", 5),
        failure_key("principal client-1", 36),
    ];
    storage
        .record_failure("client", &keys[..2], at(1), at(0))
        .await
        .unwrap();
    storage
        .record_failure("client", &keys, at(2), at(0))
        .await
        .unwrap();
    let query = FailureQuery {
        scope: "client",
        keys: &keys,
        since: at(0),
    };
    let (application, recent) = storage
        .client_for_authentication("client-1", query)
        .await
        .unwrap();
    assert_eq!(application.map(|app| app.id), Some(seeded.application));
    assert_eq!(
        recent,
        storage
            .recent_failures("client", &keys, at(0))
            .await
            .unwrap()
    );
    assert_eq!(
        recent,
        vec![vec![at(1), at(2)], vec![at(1), at(2)], vec![at(2)]]
    );
    let (unknown, recent) = storage
        .client_for_authentication("nobody", query)
        .await
        .unwrap();
    assert!(unknown.is_none());
    assert_eq!(recent.len(), 3);

    // Introspection's reads together: the same client read, and the token as find_token.
    let now = Timestamp(1_000 * SECOND);
    storage
        .issue_tokens(pair(&seeded, 10, 11, now))
        .await
        .unwrap();
    let (read, found) = storage
        .client_and_token("client-1", query, &key(10))
        .await
        .unwrap();
    assert_eq!(read.0.map(|app| app.id), Some(seeded.application));
    assert_eq!(
        read.1,
        vec![vec![at(1), at(2)], vec![at(1), at(2)], vec![at(2)]]
    );
    assert_eq!(found, storage.find_token(&key(10)).await.unwrap());
    assert!(found.is_some());
    // A refresh token the same way, with its application and user.
    let (read, refresh) = storage
        .client_and_token("client-1", query, &key(11))
        .await
        .unwrap();
    assert_eq!(read.1.len(), 3);
    let refresh = refresh.expect("the refresh token is found");
    assert!(matches!(refresh.token, StoredToken::Refresh(_)));
    assert_eq!(
        refresh.application.map(|app| app.id),
        Some(seeded.application)
    );
    assert_eq!(refresh.user.map(|user| user.id), Some(seeded.user));
    assert_eq!(
        storage
            .find_token(&key(11))
            .await
            .unwrap()
            .map(|found| found.token),
        Some(refresh.token)
    );
    let (read, found) = storage
        .client_and_token("nobody", query, &key(99))
        .await
        .unwrap();
    assert!(read.0.is_none() && found.is_none());
}

/// Failures recorded at once (through several instances) are all counted.
pub async fn concurrent_failures_all_count(seeded: Seeded) {
    let now = Timestamp(20_000 * SECOND);
    let mut recording = Vec::new();
    for n in 0..8 {
        let storage = seeded.storage.clone();
        recording.push(tokio::spawn(async move {
            let keys = [
                failure_key("principal bob", 40),
                failure_key(&format!("ip 10.0.0.{n}"), 5),
            ];
            storage
                .record_failure("login", &keys, now.plus_seconds(n + 1), now)
                .await
        }));
    }
    for record in recording {
        record.await.unwrap().unwrap();
    }
    let recent = seeded
        .storage
        .recent_failures("login", &[failure_key("principal bob", 40)], now)
        .await
        .unwrap();
    assert_eq!(recent[0].len(), 8);
}

fn new_application(client_id: &str) -> Application {
    Application {
        name: format!("{client_id} app"),
        ..Application::sample(0, client_id)
    }
}

/// A new application's id is the database's, above every id used (a deleted one's too); a
/// taken client id is a `Duplicate` and stores nothing.
pub async fn applications_get_ids_above_every_id_used_and_unique_client_ids(seeded: Seeded) {
    let storage = &seeded.storage;
    let first = storage
        .register_application(new_application("web"))
        .await
        .unwrap();
    assert!(first.id > seeded.other_application);
    assert_eq!(
        storage.application(first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        storage.application_by_client_id("web").await.unwrap(),
        Some(first.clone())
    );
    let taken = storage
        .register_application(new_application("client-1"))
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::Duplicate { .. }), "{taken:?}");
    assert!(storage.delete_application(first.id).await.unwrap());
    let next = storage
        .register_application(new_application("web"))
        .await
        .unwrap();
    assert!(next.id > first.id, "a deleted id is never given again");
    let ids: Vec<u64> = storage
        .applications()
        .await
        .unwrap()
        .iter()
        .map(|application| application.id)
        .collect();
    assert_eq!(
        ids,
        vec![seeded.application, seeded.other_application, next.id]
    );
    assert_eq!(
        storage.application_by_client_id("none").await.unwrap(),
        None
    );
}

/// Eight forms (or instances) registering one client id at once: one application.
pub async fn concurrent_registrations_of_one_client_id_register_one(seeded: Seeded) {
    let mut registering = Vec::new();
    for _ in 0..8 {
        let storage = seeded.storage.clone();
        registering.push(tokio::spawn(async move {
            storage.register_application(new_application("race")).await
        }));
    }
    let mut registered = 0;
    for registration in registering {
        match registration.await.unwrap() {
            Ok(_) => registered += 1,
            Err(StoreError::Duplicate { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(registered, 1);
    assert_eq!(seeded.storage.applications().await.unwrap().len(), 3);
}

/// An edit saves only over the record it was read from: a change made meanwhile (another
/// admin, a secret upgrade) is never overwritten.
pub async fn an_edit_replaces_only_what_it_was_read_from(seeded: Seeded) {
    let storage = &seeded.storage;
    let read = storage
        .application(seeded.application)
        .await
        .unwrap()
        .unwrap();
    let renamed = Application {
        name: "renamed".to_owned(),
        ..read.clone()
    };
    assert_eq!(
        storage.replace_application(&read, &renamed).await.unwrap(),
        Replaced::Done
    );
    assert_eq!(
        storage.application(read.id).await.unwrap(),
        Some(renamed.clone())
    );
    let stale = Application {
        name: "stale".to_owned(),
        ..read.clone()
    };
    assert_eq!(
        storage.replace_application(&read, &stale).await.unwrap(),
        Replaced::Changed
    );
    assert_eq!(
        storage.application(read.id).await.unwrap(),
        Some(renamed.clone())
    );
    // Taking another application's client id.
    let clash = Application {
        client_id: "client-2".to_owned(),
        ..renamed.clone()
    };
    let error = storage
        .replace_application(&renamed, &clash)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    assert_eq!(
        storage.application(read.id).await.unwrap(),
        Some(renamed.clone())
    );
    // A new client id frees the old one.
    let moved = Application {
        client_id: "client-1b".to_owned(),
        ..renamed.clone()
    };
    assert_eq!(
        storage.replace_application(&renamed, &moved).await.unwrap(),
        Replaced::Done
    );
    assert_eq!(
        storage.application_by_client_id("client-1").await.unwrap(),
        None
    );
    assert!(storage.delete_application(read.id).await.unwrap());
    assert_eq!(
        storage.replace_application(&moved, &renamed).await.unwrap(),
        Replaced::Gone
    );
}

/// Deleting an application deletes its tokens, codes and consents, and nothing of another.
pub async fn deleting_an_application_takes_what_was_issued_to_it(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    storage
        .approve(Approval {
            code: Some((key(5), code(&seeded, 5, now))),
            consent: Some((seeded.user, seeded.application, "read".to_owned(), now)),
            ..Approval::default()
        })
        .await
        .unwrap();
    storage
        .issue_tokens(pair_of_other(&seeded, 3, 4, now))
        .await
        .unwrap();
    assert!(
        storage
            .delete_application(seeded.application)
            .await
            .unwrap()
    );
    for gone in [1, 2] {
        assert!(storage.find_token(&key(gone)).await.unwrap().is_none());
    }
    assert!(
        storage
            .consent(seeded.user, seeded.application)
            .await
            .unwrap()
            .is_none()
    );
    for kept in [3, 4] {
        assert!(storage.find_token(&key(kept)).await.unwrap().is_some());
    }
    assert!(
        !storage
            .delete_application(seeded.application)
            .await
            .unwrap()
    );
    assert_eq!(storage.application(seeded.application).await.unwrap(), None);
}

/// Whether the token under `n` still works: an access token that exists, or a refresh token
/// not revoked.
async fn live(storage: &Arc<dyn Storage>, n: u8) -> bool {
    match storage.find_token(&key(n)).await.unwrap() {
        Some(found) => match found.token {
            StoredToken::Access(_) => true,
            StoredToken::Refresh(token) => token.revoked.is_none(),
        },
        None => false,
    }
}

/// Saving a user made inactive revokes their tokens and ends their sessions in the same
/// transaction; other saves touch neither.
pub async fn deactivating_a_user_ends_their_sessions_and_tokens(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    storage
        .open_session(key(9), session_of(seeded.user, now, 600))
        .await
        .unwrap();
    let alice = storage.user_by_id(seeded.user).await.unwrap().unwrap();
    let renamed = User {
        first_name: "Alice".to_owned(),
        ..alice.clone()
    };
    let saved = storage.save_user(renamed.clone(), now).await.unwrap();
    assert_eq!(saved, Some(UserSaved::default()));
    assert!(live(storage, 1).await && live(storage, 2).await);
    let inactive = User {
        is_active: false,
        ..renamed.clone()
    };
    let saved = storage
        .save_user(inactive.clone(), now)
        .await
        .unwrap()
        .unwrap();
    assert!(saved.revoked >= 2, "{saved:?}");
    assert_eq!(saved.sessions_ended, 1);
    assert!(!live(storage, 1).await && !live(storage, 2).await);
    assert_eq!(
        storage.user_by_id(seeded.user).await.unwrap(),
        Some(inactive)
    );
    let taken = User {
        username: "bob".to_owned(),
        ..renamed
    };
    let error = storage.save_user(taken, now).await.unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    let gone = User::sample(999, "ghost");
    assert_eq!(storage.save_user(gone, now).await.unwrap(), None);
    assert_eq!(storage.user_by_username("ghost").await.unwrap(), None);
}

/// Deleting a user takes their sessions, tokens, consents and owned applications; their id
/// is never given again.
pub async fn deleting_a_user_takes_what_is_theirs(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    let owned = storage
        .register_application(Application {
            user: Some(seeded.user),
            ..new_application("alices")
        })
        .await
        .unwrap();
    storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    storage
        .approve(Approval {
            consent: Some((seeded.user, seeded.application, "read".to_owned(), now)),
            ..Approval::default()
        })
        .await
        .unwrap();
    storage
        .open_session(key(9), session_of(seeded.user, now, 600))
        .await
        .unwrap();
    assert!(storage.delete_user(seeded.user, now).await.unwrap());
    assert_eq!(storage.user_by_id(seeded.user).await.unwrap(), None);
    assert_eq!(storage.application(owned.id).await.unwrap(), None);
    assert!(!live(storage, 1).await && !live(storage, 2).await);
    assert!(
        storage
            .consent(seeded.user, seeded.application)
            .await
            .unwrap()
            .is_none()
    );
    assert!(storage.live_session(&key(9), now).await.unwrap().is_none());
    assert_eq!(
        storage
            .application(seeded.application)
            .await
            .unwrap()
            .map(|a| a.id),
        Some(seeded.application),
        "applications of others stay"
    );
    assert!(!storage.delete_user(seeded.user, now).await.unwrap());
    let users: Vec<u64> = storage
        .users()
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(users, vec![8]);
    // Delete the highest id too: a new user still goes above both.
    assert!(storage.delete_user(8, now).await.unwrap());
    let next = storage.create_user(new_user("zoe")).await.unwrap();
    assert!(next.id > 8, "{}", next.id);
}

/// Groups get database ids and unique names; a deleted group leaves its members, without it.
pub async fn groups_are_created_renamed_and_deleted_members_kept(seeded: Seeded) {
    let storage = &seeded.storage;
    let seed = Seed::standard();
    let ops = storage
        .create_group(Group {
            id: 0,
            name: "ops".to_owned(),
            permissions: Vec::new(),
        })
        .await
        .unwrap();
    assert!(ops.id > seed.group.id);
    let taken = storage
        .create_group(Group {
            id: 0,
            name: "editors".to_owned(),
            permissions: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::Duplicate { .. }), "{taken:?}");
    let renamed = Group {
        name: "operators".to_owned(),
        ..ops.clone()
    };
    assert!(storage.save_group(renamed.clone()).await.unwrap());
    assert_eq!(storage.group(ops.id).await.unwrap(), Some(renamed.clone()));
    let clash = Group {
        name: "editors".to_owned(),
        ..renamed.clone()
    };
    let error = storage.save_group(clash).await.unwrap_err();
    assert!(matches!(error, StoreError::Duplicate { .. }), "{error:?}");
    let names: Vec<String> = storage
        .groups()
        .await
        .unwrap()
        .into_iter()
        .map(|group| group.name)
        .collect();
    assert_eq!(names, vec!["editors", "operators"]);
    assert!(storage.delete_group(seed.group.id).await.unwrap());
    let bob = storage.user_by_id(8).await.unwrap().unwrap();
    assert!(bob.groups.is_empty(), "{:?}", bob.groups);
    assert!(!storage.delete_group(seed.group.id).await.unwrap());
    assert!(!storage.save_group(seed.group.clone()).await.unwrap());
    assert_eq!(storage.group(seed.group.id).await.unwrap(), None);
    assert_eq!(
        storage.permissions().await.unwrap(),
        vec![seed.permission.clone()]
    );
}

/// A user's tokens for one client are revoked without touching their tokens for another;
/// withdrawing consent revokes the rest and forgets the consent.
pub async fn revoking_a_users_tokens_for_one_client_leaves_the_others(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    storage
        .issue_tokens(pair_of_other(&seeded, 3, 4, now))
        .await
        .unwrap();
    storage
        .approve(Approval {
            consent: Some((
                seeded.user,
                seeded.other_application,
                "read".to_owned(),
                now,
            )),
            ..Approval::default()
        })
        .await
        .unwrap();
    let revoked = storage
        .revoke_tokens_of_user(seeded.user, Some(seeded.application), now)
        .await
        .unwrap();
    assert!(revoked >= 2, "{revoked}");
    assert!(!live(storage, 1).await && !live(storage, 2).await);
    assert!(live(storage, 3).await && live(storage, 4).await);
    assert_eq!(
        storage
            .revoke_tokens_of_user(seeded.user, Some(seeded.application), now)
            .await
            .unwrap(),
        0,
        "nothing live is left"
    );
    let withdrawn = storage
        .withdraw_consent(seeded.user, seeded.other_application, now)
        .await
        .unwrap();
    assert!(withdrawn >= 2, "{withdrawn}");
    assert!(!live(storage, 3).await && !live(storage, 4).await);
    assert!(
        storage
            .consent(seeded.user, seeded.other_application)
            .await
            .unwrap()
            .is_none()
    );
}

fn periodic_task(name: &str) -> PeriodicTask {
    PeriodicTask {
        name: name.to_owned(),
        task: "debug_task".to_owned(),
        schedule: TaskSchedule::Interval {
            every: 10,
            period: "seconds".to_owned(),
        },
        enabled: true,
        one_off: false,
        start_time: None,
        expires: None,
        description: String::new(),
        last_run_at: None,
        total_run_count: 0,
        last_result: None,
        from_config: false,
        changed: Timestamp(0),
    }
}

fn outcome(at: Timestamp) -> TaskOutcome {
    TaskOutcome {
        ok: true,
        message: "done".to_owned(),
        started: at,
        duration_millis: 3,
    }
}

/// Tasks are added under unique names, record their runs on what is stored now, and go.
pub async fn periodic_tasks_are_added_run_and_deleted(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    assert!(
        storage
            .add_periodic_task(periodic_task("every"))
            .await
            .unwrap()
    );
    assert!(
        !storage
            .add_periodic_task(periodic_task("every"))
            .await
            .unwrap()
    );
    let once = PeriodicTask {
        one_off: true,
        ..periodic_task("once")
    };
    assert!(storage.add_periodic_task(once).await.unwrap());
    // Edited while it ran: the run is recorded on the edited task.
    let edited = PeriodicTask {
        description: "edited".to_owned(),
        ..periodic_task("every")
    };
    storage.save_periodic_task(edited).await.unwrap();
    storage
        .record_task_run("every", outcome(now))
        .await
        .unwrap();
    storage.record_task_run("once", outcome(now)).await.unwrap();
    let every = storage.periodic_task("every").await.unwrap().unwrap();
    assert_eq!(
        (
            every.description.as_str(),
            every.total_run_count,
            every.last_run_at
        ),
        ("edited", 1, Some(now))
    );
    assert!(every.enabled);
    let once = storage.periodic_task("once").await.unwrap().unwrap();
    assert!(!once.enabled, "a one-off task disables itself");
    storage.disable_periodic_task("every").await.unwrap();
    let names: Vec<(String, bool)> = storage
        .periodic_tasks()
        .await
        .unwrap()
        .into_iter()
        .map(|task| (task.name, task.enabled))
        .collect();
    assert_eq!(
        names,
        vec![("every".to_owned(), false), ("once".to_owned(), false)]
    );
    assert!(storage.delete_periodic_task("every").await.unwrap());
    assert!(!storage.delete_periodic_task("every").await.unwrap());
    storage
        .record_task_run("every", outcome(now))
        .await
        .unwrap();
    assert_eq!(storage.periodic_task("every").await.unwrap(), None);
}

/// The configuration's tasks replace their stored versions, history kept; configured tasks
/// no longer declared go; tasks made in the admin stay.
pub async fn configured_tasks_replace_their_stored_versions_keeping_history(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    let configured = |name: &str| PeriodicTask {
        from_config: true,
        ..periodic_task(name)
    };
    storage
        .sync_configured_tasks(vec![configured("cleanup"), configured("stale")])
        .await
        .unwrap();
    storage
        .add_periodic_task(periodic_task("mine"))
        .await
        .unwrap();
    storage
        .record_task_run("cleanup", outcome(now))
        .await
        .unwrap();
    let redeclared = PeriodicTask {
        schedule: TaskSchedule::Crontab {
            expression: "0 0 * * * *".to_owned(),
        },
        ..configured("cleanup")
    };
    storage
        .sync_configured_tasks(vec![redeclared.clone()])
        .await
        .unwrap();
    let tasks = storage.periodic_tasks().await.unwrap();
    let names: Vec<&str> = tasks.iter().map(|task| task.name.as_str()).collect();
    assert_eq!(names, vec!["cleanup", "mine"]);
    let cleanup = &tasks[0];
    assert_eq!(cleanup.schedule, redeclared.schedule);
    assert_eq!(
        (cleanup.total_run_count, cleanup.last_run_at),
        (1, Some(now))
    );
}

/// A lease is one holder's until it expires; then another takes it over.
pub async fn a_lease_is_held_by_one_holder_until_it_expires(seeded: Seeded) {
    let storage = &seeded.storage;
    let at = |seconds: u64| Timestamp(1_000 * SECOND).plus_seconds(seconds);
    assert!(
        storage
            .claim_lease("scheduler", "a", at(0), at(30))
            .await
            .unwrap()
    );
    assert!(
        !storage
            .claim_lease("scheduler", "b", at(10), at(40))
            .await
            .unwrap()
    );
    assert!(
        storage
            .claim_lease("scheduler", "a", at(20), at(50))
            .await
            .unwrap(),
        "renewed"
    );
    assert!(
        !storage
            .claim_lease("scheduler", "b", at(49), at(79))
            .await
            .unwrap()
    );
    assert!(
        storage
            .claim_lease("other", "b", at(49), at(79))
            .await
            .unwrap(),
        "leases are per name"
    );
    // `a` died: its lease expires and `b` takes over.
    assert!(
        storage
            .claim_lease("scheduler", "b", at(50), at(80))
            .await
            .unwrap()
    );
    assert!(
        !storage
            .claim_lease("scheduler", "a", at(55), at(85))
            .await
            .unwrap()
    );
    storage.release_lease("scheduler", "a").await.unwrap();
    assert!(
        !storage
            .claim_lease("scheduler", "a", at(56), at(86))
            .await
            .unwrap(),
        "not a's to give up"
    );
    storage.release_lease("scheduler", "b").await.unwrap();
    assert!(
        storage
            .claim_lease("scheduler", "a", at(57), at(87))
            .await
            .unwrap()
    );
    // Eight instances claiming a free lease at once: one holds it.
    let mut claiming = Vec::new();
    for n in 0..8 {
        let storage = seeded.storage.clone();
        claiming.push(tokio::spawn(async move {
            storage
                .claim_lease("fresh", &format!("instance-{n}"), at(100), at(130))
                .await
        }));
    }
    let mut holders = 0;
    for claim in claiming {
        holders += usize::from(claim.await.unwrap().unwrap());
    }
    assert_eq!(holders, 1);
}

/// A cleanup batch deletes at most its limit of what is due, and nothing that is not.
pub async fn cleanup_batches_delete_what_is_due_and_only_that(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    // Three pairs issued a minute apart; their access tokens live an hour.
    for (n, minutes) in [(1u8, 0u64), (3, 1), (5, 2)] {
        storage
            .issue_tokens(pair(&seeded, n, n + 1, now.plus_seconds(minutes * 60)))
            .await
            .unwrap();
    }
    let due = now.plus_seconds(3600 + 90);
    let first = storage
        .clear_expired_batch(ExpiringKind::AccessToken, due, 1)
        .await
        .unwrap();
    assert_eq!(first, (1, true));
    let second = storage
        .clear_expired_batch(ExpiringKind::AccessToken, due, 5)
        .await
        .unwrap();
    assert_eq!(second.0, 1);
    let third = storage
        .clear_expired_batch(ExpiringKind::AccessToken, due, 5)
        .await
        .unwrap();
    assert_eq!(third, (0, false));
    assert!(!live(storage, 1).await && !live(storage, 3).await);
    assert!(live(storage, 5).await, "not due yet");
    // Refresh tokens are filed by creation.
    let (deleted, _) = storage
        .clear_expired_batch(ExpiringKind::RefreshToken, now.plus_seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(storage.find_token(&key(2)).await.unwrap().is_none());
    assert!(live(storage, 4).await && live(storage, 6).await);
    // Revoked ones by their revocation.
    storage
        .revoke_tokens_of_user(seeded.user, None, now.plus_seconds(600))
        .await
        .unwrap();
    let (deleted, _) = storage
        .clear_expired_batch(ExpiringKind::RevokedRefreshToken, now.plus_seconds(599), 10)
        .await
        .unwrap();
    assert_eq!(deleted, 0, "revoked after the cutoff");
    let (deleted, _) = storage
        .clear_expired_batch(ExpiringKind::RevokedRefreshToken, now.plus_seconds(601), 10)
        .await
        .unwrap();
    assert_eq!(deleted, 2);
    assert!(storage.find_token(&key(4)).await.unwrap().is_none());
    // Sessions by their expiry.
    storage
        .open_session(key(9), session_of(seeded.user, now, 60))
        .await
        .unwrap();
    let (deleted, _) = storage
        .clear_expired_batch(ExpiringKind::Session, now.plus_seconds(61), 10)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(storage.live_session(&key(9), now).await.unwrap().is_none());
}

fn signing_key(kid: &str, at: Timestamp) -> SigningKey {
    SigningKey {
        kid: kid.to_owned(),
        algorithm: Algorithm::ES256,
        private_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        created: at,
        activates: Some(at),
        retired: None,
        configured: false,
    }
}

/// Keys are saved by kid, and every save raises the key ring's version (what other instances
/// poll to reload).
pub async fn signing_keys_are_saved_and_raise_the_key_ring_version(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    let start = storage.key_ring_version().await.unwrap();
    storage
        .save_signing_keys(vec![signing_key("a", now), signing_key("b", now)])
        .await
        .unwrap();
    let after_first = storage.key_ring_version().await.unwrap();
    assert!(after_first > start);
    let retired = SigningKey {
        retired: Some(now.plus_seconds(60)),
        ..signing_key("a", now)
    };
    storage
        .save_signing_keys(vec![retired.clone()])
        .await
        .unwrap();
    assert!(storage.key_ring_version().await.unwrap() > after_first);
    let mut keys = storage.signing_keys().await.unwrap();
    keys.sort_by(|x, y| x.kid.cmp(&y.kid));
    assert_eq!(keys, vec![retired, signing_key("b", now)]);
}

/// The admin's lists: pages newest first, filtered by application, user and state, one row
/// by key, and revocation of selected rows as each kind is revoked.
pub async fn token_lists_page_filter_and_revoke(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    storage
        .issue_tokens(pair(&seeded, 3, 4, now))
        .await
        .unwrap();
    storage
        .issue_tokens(pair_of_other(&seeded, 5, 6, now))
        .await
        .unwrap();
    let everything = TokenQuery::at(now, OAuth2Provider::default());
    let keys = |rows: &TokenRows| {
        rows.rows
            .iter()
            .map(|(key, _)| key.0[0])
            .collect::<Vec<u8>>()
    };
    let first = storage
        .token_rows(TokenTable::AccessTokens, &everything, None, 2, 100)
        .await
        .unwrap();
    assert_eq!(keys(&first), vec![5, 3], "newest first");
    assert_eq!(first.next, Some(key(3)));
    let second = storage
        .token_rows(TokenTable::AccessTokens, &everything, first.next, 2, 100)
        .await
        .unwrap();
    assert_eq!(keys(&second), vec![1]);
    assert_eq!(second.next, None);
    let of_other = TokenQuery {
        application: Some(seeded.other_application),
        ..everything.clone()
    };
    let rows = storage
        .token_rows(TokenTable::RefreshTokens, &of_other, None, 10, 100)
        .await
        .unwrap();
    assert_eq!(keys(&rows), vec![6]);
    let of_nobody = TokenQuery {
        user: Some(8),
        ..everything.clone()
    };
    let rows = storage
        .token_rows(TokenTable::AccessTokens, &of_nobody, None, 10, 100)
        .await
        .unwrap();
    assert!(rows.rows.is_empty());
    // Revoking an access token deletes it and revokes its refresh token.
    assert_eq!(
        storage
            .revoke_rows(TokenTable::AccessTokens, vec![key(1)], now)
            .await
            .unwrap(),
        1
    );
    assert!(
        storage
            .token_row(TokenTable::AccessTokens, &key(1))
            .await
            .unwrap()
            .is_none()
    );
    let revoked = TokenQuery {
        state: Some("revoked".to_owned()),
        ..everything.clone()
    };
    let rows = storage
        .token_rows(TokenTable::RefreshTokens, &revoked, None, 10, 100)
        .await
        .unwrap();
    assert_eq!(keys(&rows), vec![2]);
    // Revoking a refresh token revokes its family.
    assert_eq!(
        storage
            .revoke_rows(TokenTable::RefreshTokens, vec![key(4), key(2)], now)
            .await
            .unwrap(),
        1,
        "the second was revoked already"
    );
    assert!(!live(storage, 3).await && !live(storage, 4).await);
    assert!(live(storage, 5).await && live(storage, 6).await);
    match storage
        .token_row(TokenTable::RefreshTokens, &key(4))
        .await
        .unwrap()
    {
        Some(ListedRecord::Refresh(token)) => assert!(token.revoked.is_some()),
        other => panic!("{other:?}"),
    }
    // The scan limit bounds a page: the rows looked at, and where to go on.
    let bounded = storage
        .token_rows(TokenTable::RefreshTokens, &revoked, None, 10, 1)
        .await
        .unwrap();
    assert_eq!((bounded.scanned, bounded.next), (1, Some(key(6))));
}

/// What a user holds and granted, read together; another user's are not in it.
pub async fn a_users_grants_are_their_tokens_and_consents(seeded: Seeded) {
    let storage = &seeded.storage;
    let now = Timestamp(1_000 * SECOND);
    storage
        .issue_tokens(pair(&seeded, 1, 2, now))
        .await
        .unwrap();
    storage
        .approve(Approval {
            consent: Some((
                seeded.user,
                seeded.other_application,
                "read".to_owned(),
                now,
            )),
            ..Approval::default()
        })
        .await
        .unwrap();
    let grants = storage.grants_of_user(seeded.user).await.unwrap();
    let mut kinds: Vec<&str> = grants
        .tokens
        .iter()
        .map(|token| match token {
            StoredToken::Access(_) => "access",
            StoredToken::Refresh(_) => "refresh",
        })
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, vec!["access", "refresh"]);
    assert_eq!(grants.consents.len(), 1);
    assert_eq!(grants.consents[0].0, seeded.other_application);
    assert_eq!(grants.consents[0].1.scope, "read");
    let none = storage.grants_of_user(8).await.unwrap();
    assert!(none.tokens.is_empty() && none.consents.is_empty());
}

/// Everything a store holds, section by section, read in small pages (so that the cursors
/// are crossed).
async fn every_record(storage: &dyn Storage) -> Vec<Record> {
    let mut all = Vec::new();
    for section in SECTIONS {
        let mut after = None;
        loop {
            let page = storage
                .export_page(section, after.clone(), 3)
                .await
                .unwrap();
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.cursor());
            let full = page.len() == 3;
            all.extend(page);
            if !full {
                break;
            }
        }
    }
    all
}

/// A copy holds every record under its own key and id, and the id marks; what was copied
/// works there (a token is found with its application and user, a session is live); a copy
/// goes only into an empty store. `to` is an empty store of either kind.
pub async fn check_copy(seeded: &Seeded, to: Arc<dyn Storage>) {
    let provider = OAuth2Provider::default();
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    let (user, application) = (seeded.user, seeded.application);
    for n in 0..4 {
        storage
            .issue_tokens(pair(seeded, 10 + 2 * n, 11 + 2 * n, now))
            .await
            .unwrap();
    }
    storage
        .approve(Approval {
            code: Some((key(1), code(seeded, 1, now))),
            consent: Some((user, application, "openid read".to_owned(), now)),
            ..Approval::default()
        })
        .await
        .unwrap();
    storage
        .exchange_code(exchange(seeded, 1, 30, now), &provider)
        .await
        .unwrap()
        .unwrap();
    storage
        .start_device_authorization(key(2), device_grant(seeded, "BCDFGHJK", now))
        .await
        .unwrap();
    storage
        .open_session(key(3), session_of(user, now, 600))
        .await
        .unwrap()
        .unwrap();
    assert!(
        storage
            .add_periodic_task(periodic_task("copied"))
            .await
            .unwrap()
    );
    storage
        .save_signing_keys(vec![signing_key("k1", now)])
        .await
        .unwrap();
    // A deleted user's id stays used on the other side too.
    let gone = storage.create_user(new_user("gone")).await.unwrap();
    assert!(storage.delete_user(gone.id, now).await.unwrap());

    let report = copy_store(&**storage, &*to).await.unwrap();
    let copied = every_record(&*to).await;
    assert_eq!(every_record(&**storage).await, copied);
    assert!(copied.len() > 20, "{report}");
    assert_eq!(
        to.id_marks().await.unwrap(),
        storage.id_marks().await.unwrap()
    );
    assert!(to.id_marks().await.unwrap().users >= gone.id);
    let found = to.find_token(&key(10)).await.unwrap().unwrap();
    assert_eq!(found.application.map(|app| app.id), Some(application));
    assert_eq!(found.user.map(|found| found.id), Some(user));
    assert!(to.live_session(&key(3), now).await.unwrap().is_some());
    assert!(to.key_ring_version().await.unwrap() > 0);
    let next = to.create_user(new_user("newcomer")).await.unwrap();
    assert!(next.id > gone.id, "a copied store gives no used id again");
    let refused = copy_store(&**storage, &*to).await;
    assert!(matches!(refused, Err(CopyError::NotEmpty)), "{refused:?}");
}

/// `check_copy` into another empty store of the same backend.
pub async fn a_copy_holds_every_record_under_its_keys(seeded: Seeded) {
    let to = (seeded.another)().await;
    check_copy(&seeded, to).await;
}

/// The overview's counts: tokens stored, expired by the cutoffs and spent (revoked refresh
/// tokens, used codes), users and applications; the probe writes; the backend describes
/// itself.
pub async fn the_overview_counts_what_is_stored(seeded: Seeded) {
    let provider = OAuth2Provider::default();
    let now = Timestamp(1_000 * SECOND);
    let storage = &seeded.storage;
    for n in 0..3 {
        storage
            .issue_tokens(pair(&seeded, 10 + 2 * n, 11 + 2 * n, now))
            .await
            .unwrap();
    }
    // One pair revoked: its refresh token is kept, spent.
    storage
        .revoke_token(&key(11), seeded.application, now)
        .await
        .unwrap()
        .unwrap();
    storage
        .approve(Approval {
            code: Some((key(1), code(&seeded, 1, now))),
            ..Approval::default()
        })
        .await
        .unwrap();
    storage
        .exchange_code(exchange(&seeded, 1, 30, now), &provider)
        .await
        .unwrap()
        .unwrap();
    let cutoffs = ExpiryCutoffs {
        access_tokens: Some(now.plus_seconds(3601)),
        refresh_tokens: None,
        grants: Some(now),
        id_tokens: Some(now),
        device_grants: Some(now),
    };
    let counts = storage.token_counts(cutoffs, now, 1000).await.unwrap();
    let of = |table: TokenTable| *counts.iter().find(|count| count.table == table).unwrap();
    let access = of(TokenTable::AccessTokens);
    // The two pairs' access tokens live an hour; the exchanged one the provider's default.
    assert_eq!(
        (access.stored, access.expired, access.spent),
        (3, 2, 0),
        "{access:?}"
    );
    let refresh = of(TokenTable::RefreshTokens);
    assert_eq!(
        (refresh.stored, refresh.expired, refresh.spent),
        (4, 0, 1),
        "{refresh:?}"
    );
    assert_eq!(refresh.live(), 3);
    let grants = of(TokenTable::Grants);
    assert_eq!(
        (grants.stored, grants.expired, grants.spent),
        (1, 0, 1),
        "{grants:?}"
    );
    let capped = storage.token_counts(cutoffs, now, 2).await.unwrap();
    assert_eq!(capped[0].expired, 2, "counting stops at the cap");
    let totals = storage.totals().await.unwrap();
    assert_eq!((totals.users, totals.applications), (2, 2));
    storage.probe(now).await.unwrap();
    let described = storage.describe().await.unwrap();
    assert!(
        described.schema_version > 0 && described.bytes > 0,
        "{described:?}"
    );
}

/// Runs blocking work (a load's steps) off the async executor, as `loaddata` does.
async fn off_the_executor<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

/// A load (`loaddata`'s writes): one at a time; an abandoned load leaves every record as it
/// was, whatever its steps wrote and however a step ended (a refusal, a name held by another
/// record); a finished one is the store's, with ids above every id used, its own pks counted
/// in the id marks, DOT's access tokens found by their pk across steps, and a record a step
/// wrote readable in the same step.
pub async fn a_load_is_all_or_nothing_and_one_at_a_time(seeded: Seeded) {
    let now = Timestamp(1_000 * SECOND);
    let tokens = pair(&seeded, 10, 11, now);
    let (access_key, access) = tokens.access;
    let (refresh_key, refresh) = tokens.refresh.unwrap();
    let storage = seeded.storage.clone();
    let (access_copy, refresh_copy) = (access.clone(), refresh.clone());
    off_the_executor(move || {
        let mut load = storage.begin_load().unwrap();
        assert!(
            matches!(storage.begin_load(), Err(LoadError::Busy)),
            "a second load waits for the first"
        );
        load.step(Box::new(|tx| {
            let mut alice = tx.user(7)?.unwrap();
            alice.first_name = "Changed".to_owned();
            tx.put(Record::User(alice))?;
            let id = tx.next_id(IdKind::User)?;
            assert!(id > 8, "above the seeded users: {id}");
            tx.put(Record::User(User::sample(id, "loaded")))?;
            let id = tx.next_id(IdKind::Application)?;
            assert!(id > 2, "above the seeded applications: {id}");
            tx.put(Record::Application(Application::sample(
                id,
                "loaded-client",
            )))?;
            Ok(())
        }))
        .unwrap();
        load.step(Box::new(move |tx| {
            tx.put(Record::Access(access_key, access_copy.clone()))?;
            tx.put(Record::Refresh(refresh_key, refresh_copy.clone()))?;
            Ok(())
        }))
        .unwrap();
        // A step that refuses after writing: its error comes back as it was given.
        let refused = load
            .step(Box::new(|tx| {
                tx.put(Record::User(User::sample(60, "refused")))?;
                Err(LoadError::Refused("a record the loader cannot take".into()))
            }))
            .unwrap_err();
        assert_eq!(refused.to_string(), "a record the loader cannot take");
        load.abandon().unwrap();
    })
    .await;
    let storage = &seeded.storage;
    let alice = storage.user_by_username("alice").await.unwrap().unwrap();
    assert_ne!(alice.first_name, "Changed", "alice is as she was");
    assert_eq!(storage.user_by_username("loaded").await.unwrap(), None);
    assert_eq!(storage.user_by_username("refused").await.unwrap(), None);
    assert_eq!(
        storage
            .application_by_client_id("loaded-client")
            .await
            .unwrap(),
        None
    );
    assert!(storage.find_token(&access_key).await.unwrap().is_none());
    assert!(storage.find_token(&refresh_key).await.unwrap().is_none());

    // A name held by another record stops the load as a duplicate, and nothing stays.
    let storage = seeded.storage.clone();
    off_the_executor(move || {
        let mut load = storage.begin_load().unwrap();
        let taken = load
            .step(Box::new(|tx| {
                tx.put(Record::User(User::sample(61, "not-kept")))?;
                tx.put(Record::User(User::sample(62, "alice")))?;
                Ok(())
            }))
            .unwrap_err();
        assert!(
            matches!(taken, LoadError::Store(StoreError::Duplicate { ref value, .. }) if value == "alice"),
            "{taken:?}"
        );
        load.abandon().unwrap();
    })
    .await;
    assert_eq!(seeded.storage.user_by_id(61).await.unwrap(), None);

    // A load that finishes: DOT's refresh token comes before its access token (pk 900), in
    // another step; the pair is found through the staging, and the records are the store's.
    let storage = seeded.storage.clone();
    let (access_copy, refresh_copy) = (access.clone(), refresh.clone());
    off_the_executor(move || {
        let mut load = storage.begin_load().unwrap();
        load.step(Box::new(|tx| {
            tx.put(Record::User(User::sample(50, "pk-fifty")))?;
            Ok(())
        }))
        .unwrap();
        let waiting = refresh_copy.clone();
        load.step(Box::new(move |tx| {
            tx.put(Record::Refresh(refresh_key, waiting.clone()))?;
            assert_eq!(tx.staged_access_token(900, &refresh_key)?, None);
            Ok(())
        }))
        .unwrap();
        load.step(Box::new(move |tx| {
            tx.put(Record::Access(access_key, access_copy.clone()))?;
            // What this step wrote is read back in it.
            assert_eq!(tx.access_token(&access_key)?, Some(access_copy.clone()));
            assert_eq!(tx.stage_access_pk(900, &access_key)?, Some(refresh_key));
            assert_eq!(tx.refresh_token(&refresh_key)?, Some(refresh_copy.clone()));
            // Staged once: a later refresh token naming pk 900 finds the access token.
            assert_eq!(
                tx.staged_access_token(900, &key(12))?,
                Some((access_key, access_copy.clone()))
            );
            Ok(())
        }))
        .unwrap();
        load.finish().unwrap();
        // The lock went with the load.
        storage.begin_load().unwrap().abandon().unwrap();
    })
    .await;
    let storage = &seeded.storage;
    let found = storage.find_token(&access_key).await.unwrap().unwrap();
    assert!(matches!(found.token, StoredToken::Access(ref token) if *token == access));
    assert_eq!(
        found.application.map(|app| app.id),
        Some(seeded.application)
    );
    assert!(storage.find_token(&refresh_key).await.unwrap().is_some());
    assert_eq!(
        storage
            .user_by_id(50)
            .await
            .unwrap()
            .map(|user| user.username),
        Some("pk-fifty".to_owned())
    );
    assert!(storage.id_marks().await.unwrap().users >= 50);
    let next = storage.create_user(new_user("after-load")).await.unwrap();
    assert!(next.id > 50, "above the loaded pk: {}", next.id);
}

/// A load dropped without being finished or abandoned (its thread panicked) is undone soon,
/// and the next load may start then.
pub async fn a_load_dropped_unfinished_is_undone(seeded: Seeded) {
    let storage = seeded.storage.clone();
    off_the_executor(move || {
        let mut load = storage.begin_load().unwrap();
        load.step(Box::new(|tx| {
            tx.put(Record::User(User::sample(70, "dropped")))?;
            let mut alice = tx.user(7)?.unwrap();
            alice.first_name = "Dropped".to_owned();
            tx.put(Record::User(alice))?;
            Ok(())
        }))
        .unwrap();
        drop(load);
    })
    .await;
    let started = std::time::Instant::now();
    loop {
        let storage = seeded.storage.clone();
        match off_the_executor(move || storage.begin_load()).await {
            Ok(load) => {
                off_the_executor(move || load.abandon().unwrap()).await;
                break;
            }
            Err(LoadError::Busy) => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "the dropped load was never undone"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(error) => panic!("{error}"),
        }
    }
    let storage = &seeded.storage;
    assert_eq!(storage.user_by_id(70).await.unwrap(), None);
    let alice = storage.user_by_username("alice").await.unwrap().unwrap();
    assert_ne!(alice.first_name, "Dropped");
}
