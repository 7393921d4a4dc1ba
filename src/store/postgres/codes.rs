//! The code and consent units of work in SQL. The code a grant presents is locked
//! (`FOR UPDATE`) first, so of requests presenting one code at once, through any instance,
//! exactly one exchanges it and the others find it used.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::tokens::{
    ENSURE_FAMILY, PUT_ACCESS_TOKEN, PUT_ID_TOKEN, PUT_REFRESH_TOKEN, ensure_family,
    put_access_token, put_id_token, put_refresh_token, revoke_family, revoke_tokens_of_user,
};
use super::{PgStore, begin, begin_locking, json, pg_id, prepare_all, record, rolled_back, settle};
use crate::config::OAuth2Provider;
use crate::rules::{self, CodeRefusal};
use crate::store::{
    AccessToken, Approval, CodeExchange, CodeStorage, Consent, Grant, IdToken, OidcSession,
    RefreshToken, SecretKey, StoreError, StoredToken, Timestamp, User, UserGrants,
};

const PUT_GRANT: &str = "INSERT INTO oxidot_grants
        (key, application, user_id, family, expires, record) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (key) DO UPDATE SET application = $2, user_id = $3, family = $4, expires = $5,
        record = $6";

const SET_FAMILY_SESSION: &str = "UPDATE oxidot_families SET session = $2 WHERE id = $1";

const READ_CONSENT: &str = "SELECT record FROM oxidot_consents
    WHERE user_id = $1 AND application = $2";

const LOCK_CONSENT: &str = "SELECT record FROM oxidot_consents
    WHERE user_id = $1 AND application = $2 FOR UPDATE";

/// The first consent of a user for an application, unless another approval stored one first.
const CLAIM_CONSENT: &str = "INSERT INTO oxidot_consents (user_id, application, record)
    VALUES ($1, $2, $3) ON CONFLICT (user_id, application) DO NOTHING";

pub(super) const PUT_CONSENT: &str = "INSERT INTO oxidot_consents (user_id, application, record)
    VALUES ($1, $2, $3) ON CONFLICT (user_id, application) DO UPDATE SET record = $3";

const CONSENT: &str = "SELECT record FROM oxidot_consents WHERE user_id = $1 AND application = $2";

/// A code, locked for this transaction, and its user.
const LOCK_GRANT: &str = "SELECT g.record, u.record
    FROM oxidot_grants g LEFT JOIN oxidot_users u ON u.id = g.user_id
    WHERE g.key = $1 FOR UPDATE OF g";

pub(super) async fn put_grant(
    client: &impl GenericClient,
    key: &SecretKey,
    grant: &Grant,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(PUT_GRANT).await?;
    client
        .execute(
            &statement,
            &[
                &key.0.as_slice(),
                &pg_id(grant.application)?,
                &pg_id(grant.user)?,
                &grant.family.0.as_slice(),
                &grant.expires.0,
                &json(grant),
            ],
        )
        .await?;
    Ok(())
}

/// Adds `scope` to what `user` approved for `application` (`rules::consent_after`). A consent
/// that already covers it is only read: a repeated approval neither writes nor waits for the
/// row (consents only grow, so an approval that finds its scopes there may leave it as it is;
/// one withdrawn meanwhile is as if withdrawn just after). Otherwise the row is locked so two
/// approvals at once both count; when there is none yet, it is claimed with an insert that
/// does nothing if another approval inserted it meanwhile — that one has committed by then, so
/// its row is locked and merged with on the next turn.
async fn remember_consent(
    client: &impl GenericClient,
    user: u64,
    application: u64,
    scope: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (user, application) = (pg_id(user)?, pg_id(application)?);
    let read = client.prepare_cached(READ_CONSENT).await?;
    if let Some(row) = client.query_opt(&read, &[&user, &application]).await?
        && rules::consent_after(record::<Consent>(&row, 0)?.as_ref(), scope, now).is_none()
    {
        return Ok(());
    }
    let lock = client.prepare_cached(LOCK_CONSENT).await?;
    for _ in 0..3 {
        let Some(row) = client.query_opt(&lock, &[&user, &application]).await? else {
            let Some(first) = rules::consent_after(None, scope, now) else {
                return Ok(());
            };
            let claim = client.prepare_cached(CLAIM_CONSENT).await?;
            if client
                .execute(&claim, &[&user, &application, &json(&first)])
                .await?
                == 1
            {
                return Ok(());
            }
            continue;
        };
        let previous = record::<Consent>(&row, 0)?;
        if let Some(consent) = rules::consent_after(previous.as_ref(), scope, now) {
            let put = client.prepare_cached(PUT_CONSENT).await?;
            client
                .execute(&put, &[&user, &application, &json(&consent)])
                .await?;
        }
        return Ok(());
    }
    // Only a row deleted as often as it was claimed gets here (a user or application deleted
    // while they approve): the approval fails and is tried again by the user.
    Err(StoreError::Storage(
        "the consent row kept changing under this approval".to_owned(),
    ))
}

#[async_trait]
impl CodeStorage for PgStore {
    async fn consent(&self, user: u64, application: u64) -> Result<Option<Consent>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(CONSENT).await?;
        match client
            .query_opt(&statement, &[&pg_id(user)?, &pg_id(application)?])
            .await?
        {
            Some(row) => record(&row, 0),
            None => Ok(None),
        }
    }

    async fn grants_of_user(&self, user: u64) -> Result<UserGrants, StoreError> {
        let client = self.client().await?;
        let user = pg_id(user)?;
        let mut grants = UserGrants::default();
        for row in client
            .query(
                "SELECT record FROM oxidot_access_tokens WHERE user_id = $1",
                &[&user],
            )
            .await?
        {
            grants
                .tokens
                .extend(record::<AccessToken>(&row, 0)?.map(StoredToken::Access));
        }
        for row in client
            .query(
                "SELECT record FROM oxidot_refresh_tokens WHERE user_id = $1",
                &[&user],
            )
            .await?
        {
            grants
                .tokens
                .extend(record::<RefreshToken>(&row, 0)?.map(StoredToken::Refresh));
        }
        for row in client
            .query(
                "SELECT application, record FROM oxidot_consents WHERE user_id = $1
                 ORDER BY application",
                &[&user],
            )
            .await?
        {
            let application: i64 = row.get(0);
            if let Some(consent) = record::<Consent>(&row, 1)? {
                grants.consents.push((application.unsigned_abs(), consent));
            }
        }
        Ok(grants)
    }

    async fn withdraw_consent(
        &self,
        user: u64,
        application: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let revoked = revoke_tokens_of_user(&transaction, user, Some(application), now).await?;
        transaction
            .execute(
                "DELETE FROM oxidot_consents WHERE user_id = $1 AND application = $2",
                &[&pg_id(user)?, &pg_id(application)?],
            )
            .await?;
        transaction.commit().await?;
        Ok(revoked)
    }

    async fn approve(&self, approval: Approval) -> Result<(), StoreError> {
        let client = self.client().await?;
        // BEGIN travels with the writes and the consent's locking read (pipelined); the
        // consent's write follows the read, then COMMIT.
        prepare_all(
            &client,
            &[
                PUT_GRANT,
                PUT_ACCESS_TOKEN,
                PUT_ID_TOKEN,
                READ_CONSENT,
                LOCK_CONSENT,
                CLAIM_CONSENT,
                PUT_CONSENT,
            ],
        )
        .await?;
        let written = async {
            tokio::try_join!(
                begin(&client),
                async {
                    match &approval.code {
                        Some((key, grant)) => put_grant(&client, key, grant).await,
                        None => Ok(()),
                    }
                },
                async {
                    match &approval.access {
                        Some((key, token)) => put_access_token(&client, key, token).await,
                        None => Ok(()),
                    }
                },
                async {
                    match &approval.id_token {
                        Some((key, token)) => put_id_token(&client, key, token).await,
                        None => Ok(()),
                    }
                },
                async {
                    match &approval.consent {
                        Some((user, application, scope, now)) => {
                            remember_consent(&client, *user, *application, scope, *now).await
                        }
                        None => Ok(()),
                    }
                },
            )?;
            client.batch_execute("COMMIT").await?;
            Ok(())
        }
        .await;
        match written {
            Ok(()) => Ok(()),
            Err(error) => Err(rolled_back(&client, error).await),
        }
    }

    async fn exchange_code(
        &self,
        exchange: CodeExchange,
        provider: &OAuth2Provider,
    ) -> Result<Result<Grant, CodeRefusal>, StoreError> {
        let client = self.client().await?;
        // As a refresh: BEGIN with the locking read, COMMIT with the writes (two round trips).
        let row = begin_locking(
            &client,
            LOCK_GRANT,
            exchange.code.0.as_slice(),
            &[
                PUT_GRANT,
                ENSURE_FAMILY,
                PUT_ACCESS_TOKEN,
                PUT_REFRESH_TOKEN,
                PUT_ID_TOKEN,
                SET_FAMILY_SESSION,
            ],
        )
        .await?;
        let decided = exchange_locked(&client, row, &exchange, provider).await;
        settle(&client, decided, Err).await
    }
}

/// The exchange's decision and writes, in the transaction `exchange_code` began with the
/// code's row (`row`) locked: Ok(outcome) committed, Err(refusal) to roll back.
async fn exchange_locked(
    client: &deadpool_postgres::Client,
    row: Option<tokio_postgres::Row>,
    exchange: &CodeExchange,
    provider: &OAuth2Provider,
) -> Result<Result<Result<Grant, CodeRefusal>, CodeRefusal>, StoreError> {
    let now = exchange.now;
    let Some(row) = row else {
        return Ok(Err(CodeRefusal::Unknown));
    };
    let Some(mut grant) = record::<Grant>(&row, 0)? else {
        return Ok(Err(CodeRefusal::Unknown));
    };
    let holder = record::<User>(&row, 1)?;
    match rules::judge_code_exchange(
        &grant,
        holder.as_ref(),
        exchange.client,
        exchange.redirect_uri.as_deref(),
        exchange.verifier.as_deref(),
        now,
    ) {
        Ok(()) => {}
        Err(CodeRefusal::Replayed { .. }) => {
            let family_revoked = revoke_family(client, grant.family, now).await?;
            client.batch_execute("COMMIT").await?;
            return Ok(Ok(Err(CodeRefusal::Replayed { family_revoked })));
        }
        Err(refusal) => return Ok(Err(refusal)),
    }
    grant.used = Some(now);
    let (access, refresh) = rules::issued_tokens(
        provider,
        now,
        grant.application,
        Some(grant.user),
        &grant.scope,
        grant.family,
        (&exchange.access.0, &exchange.access.1),
        Some((&exchange.refresh.0, &exchange.refresh.1)),
    );
    let id_token = match &exchange.id_token_jti {
        Some(jti) if rules::brings_id_token(&grant.scope) => {
            let session = OidcSession {
                auth_time: grant.auth_time,
                sid: grant.sid.clone(),
                claims: grant.claims.clone(),
            };
            Some((
                IdToken::issued(
                    provider.id_token_expire_seconds,
                    jti,
                    grant.user,
                    grant.application,
                    &grant.scope,
                    now,
                ),
                session,
            ))
        }
        _ => None,
    };
    tokio::try_join!(
        put_grant(client, &exchange.code, &grant),
        // The family before its tokens (statements run in the order they are sent).
        ensure_family(client, grant.family, grant.application, Some(grant.user)),
        put_access_token(client, &exchange.access.0, &access),
        async {
            match &refresh {
                Some(refresh) => put_refresh_token(client, &exchange.refresh.0, refresh).await,
                None => Ok(()),
            }
        },
        async {
            match &id_token {
                Some(((key, token), _)) => put_id_token(client, key, token).await,
                None => Ok(()),
            }
        },
        async {
            let Some((_, session)) = &id_token else {
                return Ok(());
            };
            let statement = client.prepare_cached(SET_FAMILY_SESSION).await?;
            client
                .execute(&statement, &[&grant.family.0.as_slice(), &json(session)])
                .await?;
            Ok(())
        },
        async {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(StoreError::from)
        },
    )?;
    Ok(Ok(Ok(grant)))
}
