//! The device authorization grant (RFC 8628): a device gets a device code and a short user
//! code, the user enters the user code on `/o/device/` and approves, and the device polls the
//! token endpoint meanwhile (`authorization_pending`, `slow_down`, `access_denied`,
//! `expired_token`).

use serde::Serialize;

use crate::oauth::tokens::{OAuth, mint, new_family};
use crate::oauth::{OAuthError, TokenResponse, resolve_scope};
use crate::params::Params;
use crate::rules::DevicePoll;
use crate::store::{
    Application, DeviceDecision, DeviceGrant, DevicePollRequest, GrantType, SecretKey, StoreError,
    Timestamp,
};
use crate::throttle::Verdict;

/// RFC 8628 §6.1: consonants only (no vowels, so no words; no look-alike characters),
/// 8 of them: 20^8 ≈ 2^34.6 codes, with failed entries throttled.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LENGTH: usize = 8;

#[derive(Debug, Clone, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// A pending request as the approval page shows it.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    pub key: SecretKey,
    pub grant: DeviceGrant,
    pub application: Application,
}

fn new_user_code() -> Result<String, OAuthError> {
    let mut code = String::with_capacity(USER_CODE_LENGTH);
    while code.len() < USER_CODE_LENGTH {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|error| OAuthError::Server(error.to_string()))?;
        // 240 = 12 × 20: rejecting larger bytes keeps every letter equally likely.
        for byte in bytes.into_iter().filter(|byte| *byte < 240) {
            if code.len() < USER_CODE_LENGTH {
                code.push(char::from(USER_CODE_ALPHABET[usize::from(byte) % 20]));
            }
        }
    }
    Ok(code)
}

/// The user code as people type it (any case, dashes, spaces) in its stored form.
pub fn normalize_user_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `BCDF-GHJK`, as shown to people.
pub fn display_user_code(code: &str) -> String {
    if code.len() == USER_CODE_LENGTH {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_owned()
    }
}

impl OAuth {
    /// `POST /o/device-authorization/`.
    pub async fn start_device_authorization(
        &self,
        application: &Application,
        params: &Params,
        issuer: &str,
    ) -> Result<DeviceAuthorization, OAuthError> {
        if !application.grant_types.contains(&GrantType::DeviceCode) {
            return Err(OAuthError::UnauthorizedClient(
                "this client may not use the device grant".to_owned(),
            ));
        }
        let provider = &self.settings.oauth2_provider;
        let scope = resolve_scope(params.single("scope")?, provider)?;
        let now = self.now();
        let device = mint(now)?;
        // A clash with a live user code is astronomically rare; try again a few times.
        let mut attempt = 0;
        let user_code = loop {
            let user_code = new_user_code()?;
            let grant = DeviceGrant {
                application: application.id,
                scope: scope.clone(),
                user_code: user_code.clone(),
                decision: DeviceDecision::Pending,
                created: now,
                expires: now.plus_seconds(provider.device_code_expire_seconds),
                interval: provider.device_flow_interval,
                last_poll: None,
            };
            match self
                .store
                .start_device_authorization(device.key, grant)
                .await
            {
                Ok(()) => break user_code,
                Err(StoreError::Duplicate { .. }) if attempt < 5 => attempt += 1,
                Err(error) => return Err(error.into()),
            }
        };
        let verification_uri = format!("{issuer}/device/");
        Ok(DeviceAuthorization {
            device_code: device.value,
            verification_uri_complete: format!(
                "{verification_uri}?user_code={}",
                display_user_code(&user_code)
            ),
            user_code: display_user_code(&user_code),
            verification_uri,
            expires_in: provider.device_code_expire_seconds,
            interval: provider.device_flow_interval,
        })
    }

    /// The pending request behind a user code typed by `username`; wrong codes are throttled
    /// per user and IP so they cannot be guessed (refused, not slowed: the guesser is the
    /// signed-in user, not a stranger locking someone else out).
    pub async fn find_device_request(
        &self,
        user_code: &str,
        username: &str,
        client_ip: Option<&str>,
    ) -> Result<Option<DeviceRequest>, OAuthError> {
        if let Verdict::Refuse { retry_after } =
            self.device_code_failures.check(username, client_ip).await?
        {
            return Err(OAuthError::TooManyAttempts { retry_after });
        }
        let code = normalize_user_code(user_code);
        let found = self
            .store
            .pending_device(&code, self.now())
            .await?
            .map(|pending| DeviceRequest {
                key: pending.key,
                grant: pending.grant,
                application: pending.application,
            });
        if found.is_none() {
            self.device_code_failures
                .record_failure(username, client_ip)
                .await?;
        }
        Ok(found)
    }

    /// Records the user's decision; false when the request is no longer pending.
    pub async fn decide_device(
        &self,
        key: SecretKey,
        user: u64,
        auth_time: Timestamp,
        approve: bool,
    ) -> Result<bool, OAuthError> {
        let approved_by = approve.then_some((user, auth_time));
        Ok(self
            .store
            .decide_device(key, approved_by, self.now())
            .await?)
    }

    /// The device's poll at the token endpoint.
    pub(super) async fn poll_device(
        &self,
        application: &Application,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        if !application.grant_types.contains(&GrantType::DeviceCode) {
            return Err(OAuthError::UnauthorizedClient(
                "this client may not use the device grant".to_owned(),
            ));
        }
        let device_code = params
            .non_empty("device_code")?
            .ok_or_else(|| OAuthError::InvalidRequest("device_code is required".to_owned()))?;
        let now = self.now();
        let access = mint(now)?;
        let refresh = mint(now)?;
        let poll = DevicePollRequest {
            device_code: SecretKey::of_token(device_code),
            client: application.id,
            now,
            access: (access.key, access.tail.clone()),
            refresh: (refresh.key, refresh.tail.clone()),
            family: new_family()?,
        };
        let (judged, scope) = self
            .store
            .poll_device(poll, &self.settings.oauth2_provider)
            .await?;
        match (judged, scope) {
            (DevicePoll::Approved { .. }, Some(scope)) => {
                Ok(self.response(access, Some(refresh.value), scope))
            }
            (DevicePoll::OtherClient, _) => Err(OAuthError::InvalidGrant(
                "the device code was issued to another client".to_owned(),
            )),
            (DevicePoll::Expired, _) => Err(OAuthError::ExpiredToken),
            (DevicePoll::Pending { slow_down: true }, _) => Err(OAuthError::SlowDown),
            (DevicePoll::Pending { slow_down: false }, _) => Err(OAuthError::AuthorizationPending),
            (DevicePoll::Denied, _) => Err(OAuthError::AccessDenied(
                "the user denied the request".to_owned(),
            )),
            (DevicePoll::ApproverGone, _) => Err(OAuthError::AccessDenied(
                "the user who approved the request can no longer sign in".to_owned(),
            )),
            (DevicePoll::Unknown | DevicePoll::Approved { .. }, _) => Err(
                OAuthError::InvalidGrant("the device code is invalid".to_owned()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_consonants_and_normalise() {
        let code = new_user_code().unwrap();
        assert_eq!(code.len(), 8);
        assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        let shown = display_user_code(&code);
        assert_eq!(shown.len(), 9);
        assert_eq!(normalize_user_code(&shown.to_lowercase()), code);
        assert_eq!(normalize_user_code(" bcdf - ghjk "), "BCDFGHJK");
    }
}
