//! The token units of work on redb: each one job of the single writer (or one read
//! transaction), so concurrent requests on one token are serialised by the writer.

use async_trait::async_trait;

use super::{ReadTx, Store};
use crate::config::OAuth2Provider;
use crate::rules::{self, RefreshRefusal};
use crate::store::{
    ApplicationStorage, ClientRead, FailureQuery, FamilyId, FoundToken, IdToken, NewTokens,
    NotTheClients, OidcSession, RefreshRequest, Refreshed, SecretKey, StoreError, StoredToken,
    Timestamp, TokenStorage,
};

#[async_trait]
impl TokenStorage for Store {
    async fn issue_tokens(&self, tokens: NewTokens) -> Result<(), StoreError> {
        self.write(move |tx| {
            let (key, record) = &tokens.access;
            tx.put_access_token(key, record)?;
            if let Some((key, record)) = &tokens.refresh {
                tx.put_refresh_token(key, record)?;
            }
            Ok(())
        })
        .await
    }

    async fn revoke_tokens_of_user(
        &self,
        user: u64,
        application: Option<u64>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write(move |tx| tx.revoke_tokens_of(user, application, now))
            .await
    }

    async fn family_session(&self, family: FamilyId) -> Result<Option<OidcSession>, StoreError> {
        self.read(|tx| tx.family_session(family))
    }

    async fn rotate_refresh_token(
        &self,
        request: RefreshRequest,
        provider: &OAuth2Provider,
    ) -> Result<Result<Refreshed, RefreshRefusal>, StoreError> {
        let provider = provider.clone();
        self.write(move |tx| {
            let request = &request;
            let Some(old) = tx.refresh_token(&request.presented)? else {
                return Ok(Err(RefreshRefusal::Unknown));
            };
            let holder = match old.user {
                Some(id) => tx.user(id)?,
                None => None,
            };
            let judged = rules::judge_refresh(
                &old,
                holder.as_ref(),
                request.client,
                request.requested_scope.as_deref(),
                &provider,
                request.now,
            );
            let scope = match judged {
                Ok(scope) => scope,
                Err(RefreshRefusal::Reused { .. }) if provider.refresh_token_reuse_protection => {
                    let family_revoked = tx.revoke_family(old.family, request.now)?;
                    return Ok(Err(RefreshRefusal::Reused { family_revoked }));
                }
                Err(refusal) => return Ok(Err(refusal)),
            };
            let records = rules::refresh_records(
                &old,
                &request.presented,
                &scope,
                (&request.access.0, &request.access.1),
                (&request.refresh.0, &request.refresh.1),
                &provider,
                request.now,
            );
            if let Some(previous) = old.access_token {
                tx.delete_access_token(&SecretKey(previous))?;
            }
            tx.put_access_token(&request.access.0, &records.access)?;
            tx.put_refresh_token(&request.presented, &records.old)?;
            if let Some(new_refresh) = &records.new_refresh {
                tx.put_refresh_token(&request.refresh.0, new_refresh)?;
            }
            // OIDC Core §12.2: a refresh of an OpenID grant brings a new ID token, for the
            // original authentication.
            let session = match (old.user, &request.id_token_jti) {
                (Some(user), Some(jti)) if rules::brings_id_token(&scope) => {
                    let session = tx.family_session(old.family)?;
                    if session.is_some() {
                        let (key, record) = IdToken::issued(
                            provider.id_token_expire_seconds,
                            jti,
                            user,
                            old.application,
                            &scope,
                            request.now,
                        );
                        tx.put_id_token(&key, &record)?;
                    }
                    session.map(|session| (user, session))
                }
                _ => None,
            };
            Ok(Ok(Refreshed { scope, session }))
        })
        .await
    }

    async fn client_and_token(
        &self,
        client_id: &str,
        failures: FailureQuery<'_>,
        key: &SecretKey,
    ) -> Result<(ClientRead, Option<FoundToken>), StoreError> {
        // Two reads of a local file: nothing to save by joining them.
        let client = self.client_for_authentication(client_id, failures).await?;
        Ok((client, self.find_token(key).await?))
    }

    async fn find_token(&self, key: &SecretKey) -> Result<Option<FoundToken>, StoreError> {
        self.read(|tx| {
            let token = match tx.access_token(key)? {
                Some(access) => StoredToken::Access(access),
                None => match tx.refresh_token(key)? {
                    Some(refresh) => StoredToken::Refresh(refresh),
                    None => return Ok(None),
                },
            };
            let (application, user) = match &token {
                StoredToken::Access(access) => (access.application, access.user),
                StoredToken::Refresh(refresh) => (refresh.application, refresh.user),
            };
            Ok(Some(FoundToken {
                application: tx.application(application)?,
                user: owner(tx, user)?,
                token,
            }))
        })
    }

    async fn revoke_token(
        &self,
        key: &SecretKey,
        client: u64,
        now: Timestamp,
    ) -> Result<Result<(), NotTheClients>, StoreError> {
        let key = *key;
        self.write(move |tx| {
            if let Some(access) = tx.access_token(&key)? {
                if access.application != client {
                    return Ok(Err(NotTheClients));
                }
                tx.revoke_access_token(&key, now)?;
                return Ok(Ok(()));
            }
            if let Some(refresh) = tx.refresh_token(&key)? {
                if refresh.application != client {
                    return Ok(Err(NotTheClients));
                }
                tx.revoke_family(refresh.family, now)?;
            }
            Ok(Ok(()))
        })
        .await
    }
}

fn owner(tx: &ReadTx, user: Option<u64>) -> Result<Option<crate::store::User>, StoreError> {
    match user {
        Some(id) => tx.user(id),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use crate::store::conformance::{self, Seeded};

    /// Runs one conformance test on a fresh seeded store.
    fn run<F: std::future::Future<Output = ()>>(test: impl FnOnce(Seeded) -> F) {
        let (seeded, _dir) = super::super::testing::seeded();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(test(seeded));
    }

    conformance::conformance_suite!(run);
}
