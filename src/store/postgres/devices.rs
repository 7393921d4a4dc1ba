//! The device-authorization units of work in SQL. A poll and a decision lock the request's
//! row, so a device polling through several instances gets its tokens once.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;

use super::tokens::{ensure_family, put_access_token, put_refresh_token};
use super::{PgStore, duplicate_as, json, pg_id, record};
use crate::config::OAuth2Provider;
use crate::rules::{self, DevicePoll};
use crate::store::{
    Application, DeviceDecision, DeviceGrant, DevicePollRequest, DeviceStorage, PendingDevice,
    SecretKey, StoreError, Timestamp, User,
};

const UPDATE_DEVICE_GRANT: &str = "UPDATE oxidot_device_grants SET record = $2 WHERE key = $1";

const LOCK_DEVICE_GRANT: &str = "SELECT record FROM oxidot_device_grants WHERE key = $1 FOR UPDATE";

async fn update_device_grant(
    client: &impl GenericClient,
    key: &SecretKey,
    grant: &DeviceGrant,
) -> Result<(), StoreError> {
    let statement = client.prepare_cached(UPDATE_DEVICE_GRANT).await?;
    client
        .execute(&statement, &[&key.0.as_slice(), &json(grant)])
        .await?;
    Ok(())
}

async fn delete_device_grant(
    client: &impl GenericClient,
    key: &SecretKey,
) -> Result<(), StoreError> {
    client
        .execute(
            "DELETE FROM oxidot_device_grants WHERE key = $1",
            &[&key.0.as_slice()],
        )
        .await?;
    Ok(())
}

#[async_trait]
impl DeviceStorage for PgStore {
    async fn start_device_authorization(
        &self,
        key: SecretKey,
        grant: DeviceGrant,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO oxidot_device_grants (key, application, user_code, expires, record)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &key.0.as_slice(),
                    &pg_id(grant.application)?,
                    &grant.user_code,
                    &grant.expires.0,
                    &json(&grant),
                ],
            )
            .await
            .map_err(|error| duplicate_as(error, "device user code", &grant.user_code))?;
        Ok(())
    }

    async fn pending_device(
        &self,
        user_code: &str,
        now: Timestamp,
    ) -> Result<Option<PendingDevice>, StoreError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT d.key, d.record, a.record FROM oxidot_device_grants d
                 LEFT JOIN oxidot_applications a ON a.id = d.application
                 WHERE d.user_code = $1",
                &[&user_code],
            )
            .await?
        else {
            return Ok(None);
        };
        let key = super::tokens::secret_key(row.get(0))?;
        let (Some(grant), Some(application)) = (
            record::<DeviceGrant>(&row, 1)?,
            record::<Application>(&row, 2)?,
        ) else {
            return Ok(None);
        };
        Ok(
            rules::device_grant_awaits_decision(&grant, now).then_some(PendingDevice {
                key,
                grant,
                application,
            }),
        )
    }

    async fn decide_device(
        &self,
        key: SecretKey,
        approved_by: Option<(u64, Timestamp)>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let Some(row) = transaction
            .query_opt(LOCK_DEVICE_GRANT, &[&key.0.as_slice()])
            .await?
        else {
            return Ok(false);
        };
        let Some(mut grant) = record::<DeviceGrant>(&row, 0)? else {
            return Ok(false);
        };
        if !rules::device_grant_awaits_decision(&grant, now) {
            return Ok(false);
        }
        grant.decision = match approved_by {
            Some((user, auth_time)) => DeviceDecision::Approved { user, auth_time },
            None => DeviceDecision::Denied,
        };
        update_device_grant(&transaction, &key, &grant).await?;
        transaction.commit().await?;
        Ok(true)
    }

    async fn poll_device(
        &self,
        poll: DevicePollRequest,
        provider: &OAuth2Provider,
    ) -> Result<(DevicePoll, Option<String>), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await?;
        let lock = transaction
            .prepare_cached(
                "SELECT d.record, u.record FROM oxidot_device_grants d
                 LEFT JOIN oxidot_users u
                   ON u.id = (d.record -> 'decision' -> 'Approved' ->> 'user')::BIGINT
                 WHERE d.key = $1 FOR UPDATE OF d",
            )
            .await?;
        let Some(row) = transaction
            .query_opt(&lock, &[&poll.device_code.0.as_slice()])
            .await?
        else {
            return Ok((DevicePoll::Unknown, None));
        };
        let Some(grant) = record::<DeviceGrant>(&row, 0)? else {
            return Ok((DevicePoll::Unknown, None));
        };
        let approver = record::<User>(&row, 1)?;
        let judged = rules::judge_device_poll(&grant, approver.as_ref(), poll.client, poll.now);
        let scope = match judged {
            DevicePoll::Unknown | DevicePoll::OtherClient | DevicePoll::Expired => {
                return Ok((judged, None));
            }
            DevicePoll::Pending { slow_down } => {
                let polled = rules::polled(&grant, slow_down, poll.now);
                update_device_grant(&transaction, &poll.device_code, &polled).await?;
                None
            }
            DevicePoll::Denied | DevicePoll::ApproverGone => {
                delete_device_grant(&transaction, &poll.device_code).await?;
                None
            }
            DevicePoll::Approved { user } => {
                let (access, refresh) = rules::issued_tokens(
                    provider,
                    poll.now,
                    grant.application,
                    Some(user),
                    &grant.scope,
                    poll.family,
                    (&poll.access.0, &poll.access.1),
                    Some((&poll.refresh.0, &poll.refresh.1)),
                );
                ensure_family(&transaction, poll.family, grant.application, Some(user)).await?;
                put_access_token(&transaction, &poll.access.0, &access).await?;
                if let Some(refresh) = &refresh {
                    put_refresh_token(&transaction, &poll.refresh.0, refresh).await?;
                }
                delete_device_grant(&transaction, &poll.device_code).await?;
                Some(grant.scope.clone())
            }
        };
        transaction.commit().await?;
        Ok((judged, scope))
    }
}
