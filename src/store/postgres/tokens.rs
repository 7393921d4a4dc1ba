//! The token units of work in SQL. Each is one transaction; the refresh token a grant or a
//! revocation acts on is locked (`FOR UPDATE`) first, so concurrent requests on one token,
//! through any instance, are serialised by the database: of three instances refreshing one
//! token at once, exactly one rotates it.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::{PgStore, begin_locking, json, pg_id, record, settle};
use crate::config::OAuth2Provider;
use crate::rules::{self, RefreshRefusal};
use crate::store::{
    AccessToken, Application, ClientRead, FailureQuery, FamilyId, FoundToken, IdToken, NewTokens,
    NotTheClients, OidcSession, RefreshRequest, RefreshToken, Refreshed, SecretKey, StoreError,
    StoredToken, Timestamp, TokenStorage, User,
};

pub(super) const PUT_ACCESS_TOKEN: &str = "INSERT INTO oxidot_access_tokens
        (key, application, user_id, family, expires, record) VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (key) DO UPDATE SET application = $2, user_id = $3, family = $4, expires = $5,
        record = $6";

pub(super) const PUT_REFRESH_TOKEN: &str = "INSERT INTO oxidot_refresh_tokens
        (key, application, user_id, family, created, revoked, record)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (key) DO UPDATE SET application = $2, user_id = $3, family = $4, created = $5,
        revoked = $6, record = $7";

pub(super) const ENSURE_FAMILY: &str = "INSERT INTO oxidot_families (id, application, user_id)
    VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING";

/// A token, its application and its user, in one round trip.
const FIND_TOKEN: &str = "SELECT 1 AS kind, t.record, a.record, u.record
        FROM oxidot_access_tokens t
        LEFT JOIN oxidot_applications a ON a.id = t.application
        LEFT JOIN oxidot_users u ON u.id = t.user_id
        WHERE t.key = $1
    UNION ALL
    SELECT 2 AS kind, t.record, a.record, u.record
        FROM oxidot_refresh_tokens t
        LEFT JOIN oxidot_applications a ON a.id = t.application
        LEFT JOIN oxidot_users u ON u.id = t.user_id
        WHERE t.key = $1
    ORDER BY kind LIMIT 1";

/// The refresh token, locked for this transaction, and its user.
const LOCK_REFRESH_TOKEN: &str = "SELECT t.record, u.record
    FROM oxidot_refresh_tokens t LEFT JOIN oxidot_users u ON u.id = t.user_id
    WHERE t.key = $1 FOR UPDATE OF t";

const LOCK_ACCESS_TOKEN: &str = "SELECT record FROM oxidot_access_tokens WHERE key = $1 FOR UPDATE";

const DELETE_ACCESS_TOKEN: &str = "DELETE FROM oxidot_access_tokens WHERE key = $1";

pub(super) const PUT_ID_TOKEN: &str =
    "INSERT INTO oxidot_id_tokens (key, application, user_id, expires, record)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (key) DO UPDATE SET application = $2, user_id = $3, expires = $4, record = $5";

pub(super) async fn put_access_token(
    client: &impl GenericClient,
    key: &SecretKey,
    token: &AccessToken,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(PUT_ACCESS_TOKEN).await?;
    client
        .execute(
            &statement,
            &[
                &key.0.as_slice(),
                &pg_id(token.application)?,
                &token.user.map(pg_id).transpose()?,
                &token.family.as_ref().map(|family| family.0.as_slice()),
                &token.expires.0,
                &json(token),
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn put_refresh_token(
    client: &impl GenericClient,
    key: &SecretKey,
    token: &RefreshToken,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(PUT_REFRESH_TOKEN).await?;
    client
        .execute(
            &statement,
            &[
                &key.0.as_slice(),
                &pg_id(token.application)?,
                &token.user.map(pg_id).transpose()?,
                &token.family.0.as_slice(),
                &token.created.0,
                &token.revoked.map(|at| at.0),
                &json(token),
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn put_id_token(
    client: &impl GenericClient,
    key: &SecretKey,
    token: &IdToken,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(PUT_ID_TOKEN).await?;
    client
        .execute(
            &statement,
            &[
                &key.0.as_slice(),
                &pg_id(token.application)?,
                &token.user.map(pg_id).transpose()?,
                &token.expires.0,
                &json(token),
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn ensure_family(
    client: &impl GenericClient,
    family: FamilyId,
    application: u64,
    user: Option<u64>,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(ENSURE_FAMILY).await?;
    client
        .execute(
            &statement,
            &[
                &family.0.as_slice(),
                &pg_id(application)?,
                &user.map(pg_id).transpose()?,
            ],
        )
        .await?;
    Ok(())
}

async fn delete_access_token(
    client: &impl GenericClient,
    key: &SecretKey,
) -> Result<bool, StoreError> {
    let statement = client.prepare_cached(DELETE_ACCESS_TOKEN).await?;
    Ok(client.execute(&statement, &[&key.0.as_slice()]).await? > 0)
}

/// Revokes every token of a family: access tokens deleted, refresh tokens marked revoked
/// (kept for reuse detection). Returns how many were live.
pub(super) async fn revoke_family(
    transaction: &impl GenericClient,
    family: FamilyId,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let deleted = transaction
        .execute(
            "DELETE FROM oxidot_access_tokens WHERE family = $1",
            &[&family.0.as_slice()],
        )
        .await?;
    let live = transaction
        .query(
            "SELECT key, record FROM oxidot_refresh_tokens
             WHERE family = $1 AND revoked IS NULL FOR UPDATE",
            &[&family.0.as_slice()],
        )
        .await?;
    for row in &live {
        let key = secret_key(row.get(0))?;
        let Some(mut token) = record::<RefreshToken>(row, 1)? else {
            continue;
        };
        token.revoked = Some(now);
        token.access_token = None;
        put_refresh_token(transaction, &key, &token).await?;
    }
    Ok(deleted + live.len() as u64)
}

/// Revokes every token `user` holds (for `application`, when given), in the caller's
/// transaction: access tokens deleted, refresh tokens marked revoked (kept for reuse
/// detection). Returns how many were live.
pub(super) async fn revoke_tokens_of_user(
    client: &impl GenericClient,
    user: u64,
    application: Option<u64>,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let user = pg_id(user)?;
    let application = application.map(pg_id).transpose()?;
    let live = client
        .query(
            "SELECT key, record FROM oxidot_refresh_tokens
             WHERE user_id = $1 AND ($2::BIGINT IS NULL OR application = $2)
               AND revoked IS NULL
             FOR UPDATE",
            &[&user, &application],
        )
        .await?;
    for row in &live {
        let key = secret_key(row.get(0))?;
        let Some(mut token) = record::<RefreshToken>(row, 1)? else {
            continue;
        };
        token.revoked = Some(now);
        token.access_token = None;
        put_refresh_token(client, &key, &token).await?;
    }
    let deleted = client
        .execute(
            "DELETE FROM oxidot_access_tokens
             WHERE user_id = $1 AND ($2::BIGINT IS NULL OR application = $2)",
            &[&user, &application],
        )
        .await?;
    Ok(deleted + live.len() as u64)
}

/// The rotation's decision and writes, in the transaction `rotate_refresh_token` began with
/// the presented token's row (`row`) locked: Ok(outcome) committed, Err(refusal) to roll back.
async fn rotate_locked(
    client: &deadpool_postgres::Client,
    row: Option<tokio_postgres::Row>,
    request: &RefreshRequest,
    provider: &OAuth2Provider,
) -> Result<Result<Result<Refreshed, RefreshRefusal>, RefreshRefusal>, StoreError> {
    let Some(row) = row else {
        return Ok(Err(RefreshRefusal::Unknown));
    };
    let Some(old) = record::<RefreshToken>(&row, 0)? else {
        return Ok(Err(RefreshRefusal::Unknown));
    };
    let holder = record::<User>(&row, 1)?;
    let judged = rules::judge_refresh(
        &old,
        holder.as_ref(),
        request.client,
        request.requested_scope.as_deref(),
        provider,
        request.now,
    );
    let scope = match judged {
        Ok(scope) => scope,
        Err(RefreshRefusal::Reused { .. }) if provider.refresh_token_reuse_protection => {
            let family_revoked = revoke_family(client, old.family, request.now).await?;
            client.batch_execute("COMMIT").await?;
            return Ok(Ok(Err(RefreshRefusal::Reused { family_revoked })));
        }
        Err(refusal) => return Ok(Err(refusal)),
    };
    let records = rules::refresh_records(
        &old,
        &request.presented,
        &scope,
        (&request.access.0, &request.access.1),
        (&request.refresh.0, &request.refresh.1),
        provider,
        request.now,
    );
    let session = match (old.user, &request.id_token_jti) {
        (Some(user), Some(jti)) if rules::brings_id_token(&scope) => {
            let statement = client
                .prepare_cached("SELECT session FROM oxidot_families WHERE id = $1")
                .await?;
            let row = client
                .query_opt(&statement, &[&old.family.0.as_slice()])
                .await?;
            let session = match row {
                Some(row) => record::<OidcSession>(&row, 0)?,
                None => None,
            };
            session.map(|session| {
                let id_token = IdToken::issued(
                    provider.id_token_expire_seconds,
                    jti,
                    user,
                    old.application,
                    &scope,
                    request.now,
                );
                (user, session, id_token)
            })
        }
        _ => None,
    };
    tokio::try_join!(
        async {
            match old.access_token {
                Some(previous) => delete_access_token(client, &SecretKey(previous))
                    .await
                    .map(|_| ()),
                None => Ok(()),
            }
        },
        put_access_token(client, &request.access.0, &records.access),
        put_refresh_token(client, &request.presented, &records.old),
        async {
            match &records.new_refresh {
                Some(new_refresh) => {
                    put_refresh_token(client, &request.refresh.0, new_refresh).await
                }
                None => Ok(()),
            }
        },
        async {
            match &session {
                Some((_, _, (key, token))) => put_id_token(client, key, token).await,
                None => Ok(()),
            }
        },
        async {
            client
                .batch_execute("COMMIT")
                .await
                .map_err(StoreError::from)
        },
    )?;
    Ok(Ok(Ok(Refreshed {
        scope,
        session: session.map(|(user, session, _)| (user, session)),
    })))
}

pub(super) fn secret_key(bytes: &[u8]) -> Result<SecretKey, StoreError> {
    bytes
        .try_into()
        .map(SecretKey)
        .map_err(|_| StoreError::Corrupt("a token key is not 32 bytes".to_owned()))
}

/// A token, its application and its user, in one statement (`TokenStorage::find_token`).
async fn find_token(
    client: &impl GenericClient,
    key: &SecretKey,
) -> Result<Option<FoundToken>, StoreError> {
    let statement = client.prepare_cached(FIND_TOKEN).await?;
    let Some(row) = client.query_opt(&statement, &[&key.0.as_slice()]).await? else {
        return Ok(None);
    };
    let kind: i32 = row.get(0);
    found_token_in(&row, kind == 1, 1)
}

/// The token in `row` (an access token when `access`, else a refresh token) with its
/// application and user: three records from column `first` on.
fn found_token_in(
    row: &tokio_postgres::Row,
    access: bool,
    first: usize,
) -> Result<Option<FoundToken>, StoreError> {
    let token = if access {
        record::<AccessToken>(row, first)?.map(StoredToken::Access)
    } else {
        record::<RefreshToken>(row, first)?.map(StoredToken::Refresh)
    };
    let Some(token) = token else {
        return Ok(None);
    };
    Ok(Some(FoundToken {
        token,
        application: record::<Application>(row, first + 1)?,
        user: record::<User>(row, first + 2)?,
    }))
}

#[async_trait]
impl TokenStorage for PgStore {
    async fn issue_tokens(&self, tokens: NewTokens) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let (access_key, access) = &tokens.access;
        let Some((refresh_key, refresh)) = &tokens.refresh else {
            // A lone access token (client credentials): one statement, one round trip.
            return put_access_token(&client, access_key, access).await;
        };
        let transaction = client.transaction().await?;
        ensure_family(
            &transaction,
            refresh.family,
            refresh.application,
            refresh.user,
        )
        .await?;
        put_access_token(&transaction, access_key, access).await?;
        put_refresh_token(&transaction, refresh_key, refresh).await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn revoke_tokens_of_user(
        &self,
        user: u64,
        application: Option<u64>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let revoked = revoke_tokens_of_user(&transaction, user, application, now).await?;
        transaction.commit().await?;
        Ok(revoked)
    }

    async fn family_session(&self, family: FamilyId) -> Result<Option<OidcSession>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT session FROM oxidot_families WHERE id = $1")
            .await?;
        match client
            .query_opt(&statement, &[&family.0.as_slice()])
            .await?
        {
            Some(row) => record(&row, 0),
            None => Ok(None),
        }
    }

    async fn rotate_refresh_token(
        &self,
        request: RefreshRequest,
        provider: &OAuth2Provider,
    ) -> Result<Result<Refreshed, RefreshRefusal>, StoreError> {
        let client = self.client().await?;
        // BEGIN travels with the locking read, and COMMIT with the writes (pipelined): the
        // rotation costs two round trips, whatever it writes.
        let row = begin_locking(
            &client,
            LOCK_REFRESH_TOKEN,
            request.presented.0.as_slice(),
            &[
                DELETE_ACCESS_TOKEN,
                PUT_ACCESS_TOKEN,
                PUT_REFRESH_TOKEN,
                PUT_ID_TOKEN,
            ],
        )
        .await?;
        let decided = rotate_locked(&client, row, &request, provider).await;
        settle(&client, decided, Err).await
    }

    async fn find_token(&self, key: &SecretKey) -> Result<Option<FoundToken>, StoreError> {
        let client = self.client().await?;
        find_token(&client, key).await
    }

    async fn client_and_token(
        &self,
        client_id: &str,
        failures: FailureQuery<'_>,
        key: &SecretKey,
    ) -> Result<(ClientRead, Option<FoundToken>), StoreError> {
        let client = self.client().await?;
        // One statement: the client, its failures and the token (an access token wins).
        let (read, rows) =
            super::applications::read_client_and(&client, client_id, failures, Some(key)).await?;
        let row_of = |n: i32| rows.iter().find(|row| row.get::<_, i32>(0) == n);
        let found = match (row_of(-2), row_of(-3)) {
            (Some(row), _) => found_token_in(row, true, 2)?,
            (None, Some(row)) => found_token_in(row, false, 2)?,
            (None, None) => None,
        };
        Ok((read, found))
    }

    async fn revoke_token(
        &self,
        key: &SecretKey,
        client_id: u64,
        now: Timestamp,
    ) -> Result<Result<(), NotTheClients>, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let lock = transaction.prepare_cached(LOCK_ACCESS_TOKEN).await?;
        if let Some(row) = transaction.query_opt(&lock, &[&key.0.as_slice()]).await?
            && let Some(access) = record::<AccessToken>(&row, 0)?
        {
            if access.application != client_id {
                return Ok(Err(NotTheClients));
            }
            delete_access_token(&transaction, key).await?;
            if let Some(paired) = access.refresh_token.map(SecretKey) {
                let lock = transaction.prepare_cached(LOCK_REFRESH_TOKEN).await?;
                if let Some(row) = transaction
                    .query_opt(&lock, &[&paired.0.as_slice()])
                    .await?
                    && let Some(mut refresh) = record::<RefreshToken>(&row, 0)?
                    && refresh.revoked.is_none()
                {
                    refresh.revoked = Some(now);
                    refresh.access_token = None;
                    put_refresh_token(&transaction, &paired, &refresh).await?;
                }
            }
            transaction.commit().await?;
            return Ok(Ok(()));
        }
        let lock = transaction.prepare_cached(LOCK_REFRESH_TOKEN).await?;
        if let Some(row) = transaction.query_opt(&lock, &[&key.0.as_slice()]).await?
            && let Some(refresh) = record::<RefreshToken>(&row, 0)?
        {
            if refresh.application != client_id {
                return Ok(Err(NotTheClients));
            }
            revoke_family(&transaction, refresh.family, now).await?;
            transaction.commit().await?;
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::super::testing::fresh_store;
    use crate::store::Transfer;
    use crate::store::conformance::{self, Seeded};

    pub(crate) async fn seeded() -> Option<Seeded> {
        let store = fresh_store().await?;
        store.import(conformance::Seed::records()).await.unwrap();
        Some(Seeded {
            storage: Arc::new(store),
            another: Box::new(|| {
                Box::pin(async {
                    let store = fresh_store().await.expect("the test PostgreSQL answers");
                    Arc::new(store) as Arc<dyn crate::store::Storage>
                })
            }),
            application: 1,
            other_application: 2,
            user: 7,
        })
    }

    /// Runs one conformance test on a fresh seeded database (skipped without a server).
    fn run<F: std::future::Future<Output = ()>>(test: impl FnOnce(Seeded) -> F) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                if let Some(seeded) = seeded().await {
                    test(seeded).await;
                }
            });
    }

    conformance::conformance_suite!(run);
}
