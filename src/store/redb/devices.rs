//! The device-authorization units of work on redb, each one job of the single writer.

use async_trait::async_trait;

use super::Store;
use crate::config::OAuth2Provider;
use crate::rules::{self, DevicePoll};
use crate::store::{
    DeviceDecision, DeviceGrant, DevicePollRequest, DeviceStorage, PendingDevice, SecretKey,
    StoreError, Timestamp,
};

#[async_trait]
impl DeviceStorage for Store {
    async fn start_device_authorization(
        &self,
        key: SecretKey,
        grant: DeviceGrant,
    ) -> Result<(), StoreError> {
        self.write(move |tx| tx.put_device_grant(&key, &grant))
            .await
    }

    async fn pending_device(
        &self,
        user_code: &str,
        now: Timestamp,
    ) -> Result<Option<PendingDevice>, StoreError> {
        self.read(|tx| {
            let Some((key, grant)) = tx.device_grant_by_user_code(user_code)? else {
                return Ok(None);
            };
            if !rules::device_grant_awaits_decision(&grant, now) {
                return Ok(None);
            }
            Ok(tx
                .application(grant.application)?
                .map(|application| PendingDevice {
                    key,
                    grant,
                    application,
                }))
        })
    }

    async fn decide_device(
        &self,
        key: SecretKey,
        approved_by: Option<(u64, Timestamp)>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.write(move |tx| {
            let Some(mut grant) = tx.device_grant(&key)? else {
                return Ok(false);
            };
            if !rules::device_grant_awaits_decision(&grant, now) {
                return Ok(false);
            }
            grant.decision = match approved_by {
                Some((user, auth_time)) => DeviceDecision::Approved { user, auth_time },
                None => DeviceDecision::Denied,
            };
            tx.put_device_grant(&key, &grant)?;
            Ok(true)
        })
        .await
    }

    async fn poll_device(
        &self,
        poll: DevicePollRequest,
        provider: &OAuth2Provider,
    ) -> Result<(DevicePoll, Option<String>), StoreError> {
        let provider = provider.clone();
        self.write(move |tx| {
            let poll = &poll;
            let Some(grant) = tx.device_grant(&poll.device_code)? else {
                return Ok((DevicePoll::Unknown, None));
            };
            let approver = match grant.decision {
                DeviceDecision::Approved { user, .. } => tx.user(user)?,
                _ => None,
            };
            let judged = rules::judge_device_poll(&grant, approver.as_ref(), poll.client, poll.now);
            match judged {
                DevicePoll::Unknown | DevicePoll::OtherClient | DevicePoll::Expired => {
                    Ok((judged, None))
                }
                DevicePoll::Pending { slow_down } => {
                    tx.put_device_grant(
                        &poll.device_code,
                        &rules::polled(&grant, slow_down, poll.now),
                    )?;
                    Ok((judged, None))
                }
                DevicePoll::Denied | DevicePoll::ApproverGone => {
                    tx.delete_device_grant(&poll.device_code)?;
                    Ok((judged, None))
                }
                DevicePoll::Approved { user } => {
                    let (access, refresh) = rules::issued_tokens(
                        &provider,
                        poll.now,
                        grant.application,
                        Some(user),
                        &grant.scope,
                        poll.family,
                        (&poll.access.0, &poll.access.1),
                        Some((&poll.refresh.0, &poll.refresh.1)),
                    );
                    tx.put_access_token(&poll.access.0, &access)?;
                    if let Some(refresh) = &refresh {
                        tx.put_refresh_token(&poll.refresh.0, refresh)?;
                    }
                    tx.delete_device_grant(&poll.device_code)?;
                    Ok((judged, Some(grant.scope)))
                }
            }
        })
        .await
    }
}
