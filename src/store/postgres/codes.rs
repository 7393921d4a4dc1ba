//! The code and consent units of work in SQL. The code a grant presents is locked
//! (`FOR UPDATE`) first, so of requests presenting one code at once, through any instance,
//! exactly one exchanges it and the others find it used.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::tokens::{
    ensure_family, put_access_token, put_id_token, put_refresh_token, revoke_family,
    revoke_tokens_of_user,
};
use super::{PgStore, json, pg_id, record};
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

/// Adds `scope` to what `user` approved for `application` (`rules::merged_consent`); the row
/// is locked so two approvals at once both count.
async fn remember_consent(
    client: &impl GenericClient,
    user: u64,
    application: u64,
    scope: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let (user, application) = (pg_id(user)?, pg_id(application)?);
    let row = client
        .query_opt(
            "SELECT record FROM oxidot_consents WHERE user_id = $1 AND application = $2
             FOR UPDATE",
            &[&user, &application],
        )
        .await?;
    let previous = match row {
        Some(row) => record::<Consent>(&row, 0)?.map(|consent| consent.scope),
        None => None,
    };
    let consent = Consent {
        scope: rules::merged_consent(previous.as_deref(), scope),
        granted: now,
    };
    client
        .execute(
            "INSERT INTO oxidot_consents (user_id, application, record) VALUES ($1, $2, $3)
             ON CONFLICT (user_id, application) DO UPDATE SET record = $3",
            &[&user, &application, &json(&consent)],
        )
        .await?;
    Ok(())
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
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        if let Some((key, grant)) = &approval.code {
            put_grant(&transaction, key, grant).await?;
        }
        if let Some((key, token)) = &approval.access {
            put_access_token(&transaction, key, token).await?;
        }
        if let Some((key, token)) = &approval.id_token {
            put_id_token(&transaction, key, token).await?;
        }
        if let Some((user, application, scope, now)) = &approval.consent {
            remember_consent(&transaction, *user, *application, scope, *now).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn exchange_code(
        &self,
        exchange: CodeExchange,
        provider: &OAuth2Provider,
    ) -> Result<Result<Grant, CodeRefusal>, StoreError> {
        let now = exchange.now;
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let lock = transaction.prepare_cached(LOCK_GRANT).await?;
        let Some(row) = transaction
            .query_opt(&lock, &[&exchange.code.0.as_slice()])
            .await?
        else {
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
                let family_revoked = revoke_family(&transaction, grant.family, now).await?;
                transaction.commit().await?;
                return Ok(Err(CodeRefusal::Replayed { family_revoked }));
            }
            Err(refusal) => return Ok(Err(refusal)),
        }
        grant.used = Some(now);
        put_grant(&transaction, &exchange.code, &grant).await?;
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
        ensure_family(
            &transaction,
            grant.family,
            grant.application,
            Some(grant.user),
        )
        .await?;
        put_access_token(&transaction, &exchange.access.0, &access).await?;
        if let Some(refresh) = &refresh {
            put_refresh_token(&transaction, &exchange.refresh.0, refresh).await?;
        }
        if let Some(jti) = &exchange.id_token_jti
            && rules::brings_id_token(&grant.scope)
        {
            let (key, token) = IdToken::issued(
                provider.id_token_expire_seconds,
                jti,
                grant.user,
                grant.application,
                &grant.scope,
                now,
            );
            put_id_token(&transaction, &key, &token).await?;
            let session = OidcSession {
                auth_time: grant.auth_time,
                sid: grant.sid.clone(),
                claims: grant.claims.clone(),
            };
            transaction
                .execute(
                    "UPDATE oxidot_families SET session = $2 WHERE id = $1",
                    &[&grant.family.0.as_slice(), &json(&session)],
                )
                .await?;
        }
        transaction.commit().await?;
        Ok(Ok(grant))
    }
}
