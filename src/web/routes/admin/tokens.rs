//! The token lists: access tokens, refresh tokens, authorization codes, ID tokens and device
//! grants. Values are masked (the store never had them: only their last four characters),
//! pages walk the table newest first with a bounded scan (fast at a million rows), filters by
//! user, application and state, and "revoke selected" — never a raw delete of a live token.

use std::marker::PhantomData;

use rocket::{Route, get, post, routes};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Answer, key_from_hex, key_hex, masked, see_other, when};
use crate::config::OAuth2Provider;
use crate::params::Params;
use crate::permissions::{self, Action, Model};
use crate::store::{
    AccessToken, DeviceDecision, DeviceGrant, Grant, IdToken, ReadTx, RefreshToken, SecretKey,
    StoreError, Timestamp, TokenTable, WriteTx,
};
use crate::web::error::{Page, WebError};
use crate::web::form::{CheckedForm, Query};
use crate::web::screen::Screen;
use crate::web::session::{Allowed, Needs};

/// Rows per page, and rows a page may look at to find them.
const PAGE_ROWS: usize = 50;
const PAGE_SCAN: usize = 20_000;

/// What the lists need of each kind of record.
trait Listed: DeserializeOwned {
    const TABLE: TokenTable;
    /// The Django model whose permissions guard the list.
    const MODEL: Model;
    const PATH: &'static str;
    const TITLE: &'static str;
    fn user(&self) -> Option<u64>;
    fn application(&self) -> u64;
    fn scope(&self) -> &str;
    fn created(&self) -> Timestamp;
    /// When it stops working (a refresh token: by today's lifetime setting).
    fn expires(&self, provider: &OAuth2Provider) -> Option<Timestamp>;
    fn tail(&self) -> &str {
        ""
    }
    /// Revoked, used or denied, before its expiry counts.
    fn spent(&self) -> Option<&'static str> {
        None
    }
    /// Makes the record unusable; false when there was nothing live to revoke.
    fn revoke(tx: &mut WriteTx<'_>, key: &SecretKey, now: Timestamp) -> Result<bool, StoreError>;

    fn state(&self, now: Timestamp, provider: &OAuth2Provider) -> &'static str {
        if let Some(spent) = self.spent() {
            spent
        } else if self.expires(provider).is_some_and(|at| at <= now) {
            "expired"
        } else {
            "live"
        }
    }
}

/// The accessors every token record answers the same way.
macro_rules! common_fields {
    () => {
        fn application(&self) -> u64 {
            self.application
        }
        fn scope(&self) -> &str {
            &self.scope
        }
        fn created(&self) -> Timestamp {
            self.created
        }
    };
}

impl Listed for AccessToken {
    const MODEL: Model = permissions::ACCESS_TOKEN;
    const TABLE: TokenTable = TokenTable::AccessTokens;
    const PATH: &'static str = "access-tokens";
    const TITLE: &'static str = "Access tokens";
    fn user(&self) -> Option<u64> {
        self.user
    }
    common_fields!();
    fn expires(&self, _: &OAuth2Provider) -> Option<Timestamp> {
        Some(self.expires)
    }
    fn tail(&self) -> &str {
        &self.tail
    }
    fn revoke(tx: &mut WriteTx<'_>, key: &SecretKey, now: Timestamp) -> Result<bool, StoreError> {
        Ok(tx.revoke_access_token(key, now)?.is_some())
    }
}

impl Listed for RefreshToken {
    const MODEL: Model = permissions::REFRESH_TOKEN;
    const TABLE: TokenTable = TokenTable::RefreshTokens;
    const PATH: &'static str = "refresh-tokens";
    const TITLE: &'static str = "Refresh tokens";
    fn user(&self) -> Option<u64> {
        self.user
    }
    common_fields!();
    fn expires(&self, provider: &OAuth2Provider) -> Option<Timestamp> {
        crate::rules::refresh_token_expires_at(self, provider)
    }
    fn tail(&self) -> &str {
        &self.tail
    }
    fn spent(&self) -> Option<&'static str> {
        self.revoked.map(|_| "revoked")
    }
    /// As `/o/revoke_token/` does: the whole grant family goes.
    fn revoke(tx: &mut WriteTx<'_>, key: &SecretKey, now: Timestamp) -> Result<bool, StoreError> {
        match tx.refresh_token(key)? {
            Some(token) if token.revoked.is_none() => Ok(tx.revoke_family(token.family, now)? > 0),
            _ => Ok(false),
        }
    }
}

impl Listed for Grant {
    const MODEL: Model = permissions::GRANT;
    const TABLE: TokenTable = TokenTable::Grants;
    const PATH: &'static str = "grants";
    const TITLE: &'static str = "Authorization codes";
    fn user(&self) -> Option<u64> {
        Some(self.user)
    }
    common_fields!();
    fn expires(&self, _: &OAuth2Provider) -> Option<Timestamp> {
        Some(self.expires)
    }
    fn spent(&self) -> Option<&'static str> {
        self.used.map(|_| "used")
    }
    /// An unused code is deleted, so no exchange can find it.
    fn revoke(tx: &mut WriteTx<'_>, key: &SecretKey, _: Timestamp) -> Result<bool, StoreError> {
        match tx.grant(key)? {
            Some(grant) if grant.used.is_none() => tx.delete_grant(key),
            _ => Ok(false),
        }
    }
}

impl Listed for IdToken {
    const MODEL: Model = permissions::ID_TOKEN;
    const TABLE: TokenTable = TokenTable::IdTokens;
    const PATH: &'static str = "id-tokens";
    const TITLE: &'static str = "ID tokens";
    fn user(&self) -> Option<u64> {
        self.user
    }
    common_fields!();
    fn expires(&self, _: &OAuth2Provider) -> Option<Timestamp> {
        Some(self.expires)
    }
    /// The signed token is with the client; its record goes, so it no longer serves as an
    /// `id_token_hint` (DOT's `IDToken.revoke`).
    fn revoke(tx: &mut WriteTx<'_>, key: &SecretKey, _: Timestamp) -> Result<bool, StoreError> {
        tx.delete_id_token(key)
    }
}

impl Listed for DeviceGrant {
    const MODEL: Model = permissions::DEVICE_GRANT;
    const TABLE: TokenTable = TokenTable::DeviceGrants;
    const PATH: &'static str = "device-grants";
    const TITLE: &'static str = "Device grants";
    fn user(&self) -> Option<u64> {
        match self.decision {
            DeviceDecision::Approved { user, .. } => Some(user),
            _ => None,
        }
    }
    common_fields!();
    fn expires(&self, _: &OAuth2Provider) -> Option<Timestamp> {
        Some(self.expires)
    }
    fn spent(&self) -> Option<&'static str> {
        match self.decision {
            DeviceDecision::Denied => Some("denied"),
            _ => None,
        }
    }
    /// The device's next poll answers `access_denied`.
    fn revoke(tx: &mut WriteTx<'_>, key: &SecretKey, _: Timestamp) -> Result<bool, StoreError> {
        match tx.device_grant(key)? {
            Some(mut grant) if grant.decision != DeviceDecision::Denied => {
                grant.decision = DeviceDecision::Denied;
                tx.put_device_grant(key, &grant)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// The list's filters, from the query string; names resolved to ids.
struct Filters {
    username: String,
    client_id: String,
    state: String,
    before: Option<SecretKey>,
}

impl Filters {
    fn from(params: &Params) -> Result<Self, WebError> {
        let text = |name: &str| -> Result<String, WebError> {
            Ok(params.single(name)?.unwrap_or_default().trim().to_owned())
        };
        let before = text("before")?;
        Ok(Self {
            username: text("user")?,
            client_id: text("application")?,
            state: text("state")?,
            before: if before.is_empty() {
                None
            } else {
                Some(key_from_hex(&before).ok_or_else(|| {
                    WebError::BadRequest("`before` must be a key from this list.".to_owned())
                })?)
            },
        })
    }

    fn query(&self, before: Option<&SecretKey>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("user", &self.username);
        query.append_pair("application", &self.client_id);
        query.append_pair("state", &self.state);
        if let Some(key) = before {
            query.append_pair("before", &key_hex(key));
        }
        query.finish()
    }
}

/// Names of users and applications, looked up once per page.
struct Names<'t> {
    tx: &'t ReadTx,
    users: std::collections::HashMap<u64, String>,
    applications: std::collections::HashMap<u64, String>,
}

impl<'t> Names<'t> {
    fn new(tx: &'t ReadTx) -> Self {
        Self {
            tx,
            users: Default::default(),
            applications: Default::default(),
        }
    }

    fn user(&mut self, id: Option<u64>) -> Result<String, StoreError> {
        let Some(id) = id else {
            return Ok("—".to_owned());
        };
        if let Some(name) = self.users.get(&id) {
            return Ok(name.clone());
        }
        let name = self
            .tx
            .user(id)?
            .map_or_else(|| format!("#{id}"), |user| user.username);
        self.users.insert(id, name.clone());
        Ok(name)
    }

    fn application(&mut self, id: u64) -> Result<String, StoreError> {
        if let Some(name) = self.applications.get(&id) {
            return Ok(name.clone());
        }
        let name = self
            .tx
            .application(id)?
            .map_or_else(|| format!("#{id} (deleted)"), |app| app.client_id);
        self.applications.insert(id, name.clone());
        Ok(name)
    }
}

fn row_of<T: Listed>(
    key: &SecretKey,
    record: &T,
    names: &mut Names<'_>,
    now: Timestamp,
    provider: &OAuth2Provider,
) -> Result<Value, StoreError> {
    Ok(json!({
        "key": key_hex(key),
        "value": if matches!(T::TABLE, TokenTable::AccessTokens | TokenTable::RefreshTokens) {
            masked(record.tail())
        } else {
            "—".to_owned()
        },
        "user": names.user(record.user())?,
        "application": names.application(record.application())?,
        "scope": record.scope(),
        "created": record.created().to_rfc3339(),
        "expires": when(record.expires(provider)),
        "state": record.state(now, provider),
    }))
}

async fn list_page<T: Listed>(
    screen: &Screen<'_>,
    params: &Params,
    message: Option<&str>,
) -> Result<Page, WebError> {
    let filters = Filters::from(params)?;
    let now = Timestamp::from_datetime(screen.state.clock.now());
    let provider = &screen.state.settings.oauth2_provider;
    let (rows, next, scanned, unknown) = screen.state.store.read(|tx| {
        let user = if filters.username.is_empty() {
            None
        } else {
            match tx.user_by_username(&filters.username)? {
                Some(user) => Some(user.id),
                None => return Ok((Vec::new(), None, 0, Some("user"))),
            }
        };
        let application = if filters.client_id.is_empty() {
            None
        } else {
            match tx.application_by_client_id(&filters.client_id)? {
                Some(app) => Some(app.id),
                None => return Ok((Vec::new(), None, 0, Some("application"))),
            }
        };
        let state = filters.state.as_str();
        let page =
            tx.token_page::<T>(T::TABLE, filters.before, PAGE_ROWS, PAGE_SCAN, |record| {
                user.is_none_or(|user| record.user() == Some(user))
                    && application.is_none_or(|app| record.application() == app)
                    && (state.is_empty() || record.state(now, provider) == state)
            })?;
        let mut names = Names::new(tx);
        let mut rows = Vec::with_capacity(page.rows.len());
        for (key, record) in &page.rows {
            rows.push(row_of(key, record, &mut names, now, provider)?);
        }
        Ok((rows, page.next, page.scanned, None))
    })?;
    let notice = unknown.map(|what| format!("There is no such {what}."));
    screen.render(
        "admin_tokens.html.tera",
        json!({
            "section": T::PATH, "title": T::TITLE, "path": T::PATH,
            "rows": rows, "scanned": scanned,
            "next": next.map(|key| filters.query(Some(&key))),
            "first": filters.before.is_some().then(|| filters.query(None)),
            "filters": {"user": filters.username, "application": filters.client_id, "state": filters.state},
            "states": ["live", "expired", "revoked", "used", "denied"],
            "notice": notice,
        }),
        message,
    )
}

async fn revoke_selected<T: Listed>(
    screen: &Screen<'_>,
    params: &Params,
) -> Result<Answer, WebError> {
    let mut keys = Vec::new();
    for text in params.all("key") {
        keys.push(key_from_hex(text).ok_or_else(|| {
            WebError::BadRequest("A selected key is not one of this list's.".to_owned())
        })?);
    }
    if keys.is_empty() {
        return Ok(list_page::<T>(
            screen,
            &Params::default(),
            Some("Select the rows to revoke."),
        )
        .await?
        .into());
    }
    if params.single("confirm")? != Some("yes") {
        let hidden: Vec<String> = keys.iter().map(key_hex).collect();
        return Ok(screen
            .render(
                "admin_confirm.html.tera",
                json!({
                    "section": T::PATH,
                    "title": T::TITLE,
                    "question": format!("Revoke {} selected {}?", keys.len(), T::TITLE.to_lowercase()),
                    "explanation": "Clients using them are refused from now on. This cannot be undone.",
                    "action_path": format!("/admin/{}/", T::PATH),
                    "action": "revoke",
                    "button": "Revoke",
                    "keys": hidden,
                    "back": format!("/admin/{}/", T::PATH),
                }),
                None,
            )?
            .into());
    }
    let now = Timestamp::from_datetime(screen.state.clock.now());
    let selected = keys.len();
    let revoked = screen
        .state
        .store
        .write(move |tx| {
            let mut revoked = 0;
            for key in &keys {
                if T::revoke(tx, key, now)? {
                    revoked += 1;
                }
            }
            Ok(revoked)
        })
        .await?;
    screen.audit(
        &format!("{} revoked", T::TITLE.to_lowercase()),
        &format!("{revoked} of {selected} selected"),
    );
    screen.flash(counted(revoked, T::TITLE, "revoked"));
    Ok(see_other(format!("/admin/{}/", T::PATH)))
}

async fn detail_page<T: Listed>(screen: &Screen<'_>, key_text: &str) -> Result<Page, WebError> {
    const NO_RECORD: WebError = WebError::NotFound("There is no such record.");
    let key = key_from_hex(key_text).ok_or(NO_RECORD)?;
    let now = Timestamp::from_datetime(screen.state.clock.now());
    let provider = &screen.state.settings.oauth2_provider;
    let row = screen.state.store.read(|tx| {
        let found = tx.token_record::<T>(T::TABLE, &key)?;
        let mut names = Names::new(tx);
        found
            .map(|record| row_of(&key, &record, &mut names, now, provider))
            .transpose()
    })?;
    let row = row.ok_or(NO_RECORD)?;
    screen.render(
        "admin_token.html.tera",
        json!({"section": T::PATH, "title": T::TITLE, "path": T::PATH, "row": row}),
        None,
    )
}

/// Seeing a table's rows needs its model's view (or change) permission.
struct ViewRows<T>(PhantomData<fn() -> T>);

impl<T: Listed + 'static> Needs for ViewRows<T> {
    const ACTION: Action = Action::View;
    const MODEL: Model = T::MODEL;
}

/// Revoking rows is the admin's "delete selected": its model's delete permission.
struct RevokeRows<T>(PhantomData<fn() -> T>);

impl<T: Listed + 'static> Needs for RevokeRows<T> {
    const ACTION: Action = Action::Delete;
    const MODEL: Model = T::MODEL;
}

macro_rules! token_routes {
    ($record:ty, $list:ident, $act:ident, $show:ident, $path:tt, $detail:tt) => {
        #[get($path)]
        async fn $list(
            screen: Allowed<'_, ViewRows<$record>>,
            query: Query,
        ) -> Result<Page, WebError> {
            list_page::<$record>(&screen, &query.0, None).await
        }

        #[post($path, data = "<form>")]
        async fn $act(
            screen: Allowed<'_, RevokeRows<$record>>,
            form: Result<CheckedForm, WebError>,
        ) -> Result<Answer, WebError> {
            let params = form?.0;
            match params.single("action")?.unwrap_or_default() {
                "revoke" => revoke_selected::<$record>(&screen, &params).await,
                other => Err(WebError::BadRequest(format!("Unknown action “{other}”."))),
            }
        }

        #[get($detail)]
        async fn $show(
            key: &str,
            screen: Allowed<'_, ViewRows<$record>>,
        ) -> Result<Page, WebError> {
            detail_page::<$record>(&screen, key).await
        }
    };
}

token_routes!(
    AccessToken,
    access_list,
    access_act,
    access_show,
    "/admin/access-tokens",
    "/admin/access-tokens/<key>"
);
token_routes!(
    RefreshToken,
    refresh_list,
    refresh_act,
    refresh_show,
    "/admin/refresh-tokens",
    "/admin/refresh-tokens/<key>"
);
token_routes!(
    Grant,
    grant_list,
    grant_act,
    grant_show,
    "/admin/grants",
    "/admin/grants/<key>"
);
token_routes!(
    IdToken,
    id_list,
    id_act,
    id_show,
    "/admin/id-tokens",
    "/admin/id-tokens/<key>"
);
token_routes!(
    DeviceGrant,
    device_list,
    device_act,
    device_show,
    "/admin/device-grants",
    "/admin/device-grants/<key>"
);

pub fn routes() -> Vec<Route> {
    routes![
        access_list,
        access_act,
        access_show,
        refresh_list,
        refresh_act,
        refresh_show,
        grant_list,
        grant_act,
        grant_show,
        id_list,
        id_act,
        id_show,
        device_list,
        device_act,
        device_show,
    ]
}

/// "3 access tokens revoked.", "1 ID token revoked.": `title` is a list's title (a plural).
pub fn counted(count: usize, title: &str, done: &str) -> String {
    let mut chars = title.chars();
    let first = chars.next().unwrap_or(' ');
    // Lowercase the first word unless it is an initialism ("ID tokens").
    let second_is_upper = chars.next().is_some_and(char::is_uppercase);
    let noun = if second_is_upper {
        title.to_owned()
    } else {
        first.to_lowercase().chain(title.chars().skip(1)).collect()
    };
    let noun = if count == 1 {
        noun.strip_suffix('s').unwrap_or(&noun).to_owned()
    } else {
        noun
    };
    format!("{count} {noun} {done}.")
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn counts_read_as_sentences() {
        assert_eq!(
            counted(3, "Access tokens", "revoked"),
            "3 access tokens revoked."
        );
        assert_eq!(counted(1, "ID tokens", "revoked"), "1 ID token revoked.");
        assert_eq!(
            counted(0, "Device grants", "deleted"),
            "0 device grants deleted."
        );
    }
}
