//! The code and consent units of work on redb, each one job of the single writer.

use async_trait::async_trait;

use super::{Store, WriteTx};
use crate::config::OAuth2Provider;
use crate::rules::{self, CodeRefusal};
use crate::store::{
    Approval, CodeExchange, CodeStorage, Consent, ExpiringKind, Grant, IdToken, OidcSession,
    StoreError, StoredToken, Timestamp, UserGrants,
};

#[async_trait]
impl CodeStorage for Store {
    async fn consent(&self, user: u64, application: u64) -> Result<Option<Consent>, StoreError> {
        self.read(|tx| tx.consent(user, application))
    }

    async fn grants_of_user(&self, user: u64) -> Result<UserGrants, StoreError> {
        self.read(|tx| {
            let mut tokens = Vec::new();
            for (kind, key) in tx.token_keys_of_user(user)? {
                let found = match kind {
                    ExpiringKind::AccessToken => tx.access_token(&key)?.map(StoredToken::Access),
                    _ => tx.refresh_token(&key)?.map(StoredToken::Refresh),
                };
                tokens.extend(found);
            }
            Ok(UserGrants {
                tokens,
                consents: tx.consents_of(user)?,
            })
        })
    }

    async fn withdraw_consent(
        &self,
        user: u64,
        application: u64,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(move |tx| {
            let revoked = tx.revoke_tokens_of(user, Some(application), now)?;
            tx.delete_consent(user, application)?;
            Ok(revoked)
        })
        .await
    }

    async fn approve(&self, approval: Approval) -> Result<(), StoreError> {
        self.write(move |tx| {
            if let Some((key, grant)) = &approval.code {
                tx.put_grant(key, grant)?;
            }
            if let Some((key, record)) = &approval.access {
                tx.put_access_token(key, record)?;
            }
            if let Some((key, record)) = &approval.id_token {
                tx.put_id_token(key, record)?;
            }
            if let Some((user, application, scope, now)) = &approval.consent {
                remember_consent(tx, *user, *application, scope, *now)?;
            }
            Ok(())
        })
        .await
    }

    async fn exchange_code(
        &self,
        exchange: CodeExchange,
        provider: &OAuth2Provider,
    ) -> Result<Result<Grant, CodeRefusal>, StoreError> {
        let provider = provider.clone();
        self.write(move |tx| {
            let exchange = &exchange;
            let now = exchange.now;
            let Some(mut grant) = tx.grant(&exchange.code)? else {
                return Ok(Err(CodeRefusal::Unknown));
            };
            let holder = tx.user(grant.user)?;
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
                    let family_revoked = tx.revoke_family(grant.family, now)?;
                    return Ok(Err(CodeRefusal::Replayed { family_revoked }));
                }
                Err(refusal) => return Ok(Err(refusal)),
            }
            grant.used = Some(now);
            tx.put_grant(&exchange.code, &grant)?;
            let (access, refresh) = rules::issued_tokens(
                &provider,
                now,
                grant.application,
                Some(grant.user),
                &grant.scope,
                grant.family,
                (&exchange.access.0, &exchange.access.1),
                Some((&exchange.refresh.0, &exchange.refresh.1)),
            );
            tx.put_access_token(&exchange.access.0, &access)?;
            if let Some(refresh) = &refresh {
                tx.put_refresh_token(&exchange.refresh.0, refresh)?;
            }
            if let Some(jti) = &exchange.id_token_jti
                && rules::brings_id_token(&grant.scope)
            {
                let (key, record) = IdToken::issued(
                    provider.id_token_expire_seconds,
                    jti,
                    grant.user,
                    grant.application,
                    &grant.scope,
                    now,
                );
                tx.put_id_token(&key, &record)?;
                tx.put_family_session(
                    grant.family,
                    &OidcSession {
                        auth_time: grant.auth_time,
                        sid: grant.sid.clone(),
                        claims: grant.claims.clone(),
                    },
                )?;
            }
            Ok(Ok(grant))
        })
        .await
    }
}

/// Adds `scope` to what `user` approved for `application` (`rules::consent_after`).
fn remember_consent(
    tx: &mut WriteTx<'_>,
    user: u64,
    application: u64,
    scope: &str,
    now: Timestamp,
) -> Result<(), StoreError> {
    let previous = tx.consent(user, application)?;
    match rules::consent_after(previous.as_ref(), scope, now) {
        Some(consent) => tx.put_consent(user, application, &consent),
        None => Ok(()),
    }
}
