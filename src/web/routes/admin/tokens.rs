//! The token lists: access tokens, refresh tokens, authorization codes, ID tokens and device
//! grants. Values are masked (the store never had them: only their last four characters),
//! pages walk the table newest first with a bounded scan (fast at a million rows), filters by
//! user, application and state, and "revoke selected" — never a raw delete of a live token.

use std::marker::PhantomData;

use rocket::{Route, get, post, routes};
use serde_json::{Value, json};

use super::{Answer, key_from_hex, key_hex, masked, see_other, when};
use crate::params::Params;
use crate::permissions::{self, Action, Model};
use crate::store::{
    AccessToken, DeviceGrant, Grant, IdToken, ListedRecord, RefreshToken, SecretKey, StoreError,
    TokenQuery, TokenRows, TokenTable,
};
use crate::web::AppState;
use crate::web::error::{Page, WebError};
use crate::web::form::{CheckedForm, Query};
use crate::web::screen::Screen;
use crate::web::session::{Allowed, Needs};

/// Rows per page, and rows a page may look at to find them.
const PAGE_ROWS: usize = 50;
const PAGE_SCAN: usize = 20_000;

/// What the lists need of each kind of record.
/// A token table the admin lists: where, under which permission, with which title. What a
/// row says (its user, state, expiry) is `ListedRecord`'s.
trait Listed {
    const TABLE: TokenTable;
    const MODEL: Model;
    const PATH: &'static str;
    const TITLE: &'static str;
}

macro_rules! listed {
    ($record:ty, $table:ident, $model:ident, $path:literal, $title:literal) => {
        impl Listed for $record {
            const TABLE: TokenTable = TokenTable::$table;
            const MODEL: Model = permissions::$model;
            const PATH: &'static str = $path;
            const TITLE: &'static str = $title;
        }
    };
}

listed!(
    AccessToken,
    AccessTokens,
    ACCESS_TOKEN,
    "access-tokens",
    "Access tokens"
);
listed!(
    RefreshToken,
    RefreshTokens,
    REFRESH_TOKEN,
    "refresh-tokens",
    "Refresh tokens"
);
listed!(Grant, Grants, GRANT, "grants", "Authorization codes");
listed!(IdToken, IdTokens, ID_TOKEN, "id-tokens", "ID tokens");
listed!(
    DeviceGrant,
    DeviceGrants,
    DEVICE_GRANT,
    "device-grants",
    "Device grants"
);

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
/// Usernames and client ids for the rows, each looked up once per page.
struct Names<'a> {
    state: &'a AppState,
    users: std::collections::HashMap<u64, String>,
    applications: std::collections::HashMap<u64, String>,
}

impl<'a> Names<'a> {
    fn new(state: &'a AppState) -> Self {
        Self {
            state,
            users: Default::default(),
            applications: Default::default(),
        }
    }

    async fn user(&mut self, id: Option<u64>) -> Result<String, StoreError> {
        let Some(id) = id else {
            return Ok("—".to_owned());
        };
        if let Some(name) = self.users.get(&id) {
            return Ok(name.clone());
        }
        let name = self
            .state
            .accounts
            .user(id)
            .await?
            .map_or_else(|| format!("#{id}"), |user| user.username);
        self.users.insert(id, name.clone());
        Ok(name)
    }

    async fn application(&mut self, id: u64) -> Result<String, StoreError> {
        if let Some(name) = self.applications.get(&id) {
            return Ok(name.clone());
        }
        let name = self
            .state
            .applications
            .get(id)
            .await?
            .map_or_else(|| format!("#{id} (deleted)"), |app| app.client_id);
        self.applications.insert(id, name.clone());
        Ok(name)
    }
}

async fn row_of(
    table: TokenTable,
    key: &SecretKey,
    record: &ListedRecord,
    names: &mut Names<'_>,
    query: &TokenQuery,
) -> Result<Value, StoreError> {
    Ok(json!({
        "key": key_hex(key),
        "value": if matches!(table, TokenTable::AccessTokens | TokenTable::RefreshTokens) {
            masked(record.tail())
        } else {
            "—".to_owned()
        },
        "user": names.user(record.user()).await?,
        "application": names.application(record.application()).await?,
        "scope": record.scope(),
        "created": record.created().to_rfc3339(),
        "expires": when(record.expires(&query.provider)),
        "state": record.state(query.now, &query.provider),
    }))
}

async fn list_page<T: Listed>(
    screen: &Screen<'_>,
    params: &Params,
    message: Option<&str>,
) -> Result<Page, WebError> {
    let filters = Filters::from(params)?;
    let state = screen.state;
    let mut query = state.oauth.token_query();
    let mut unknown = None;
    if !filters.username.is_empty() {
        match state.accounts.user_named(&filters.username).await? {
            Some(user) => query.user = Some(user.id),
            None => unknown = Some("user"),
        }
    }
    if !filters.client_id.is_empty() {
        match state.applications.by_client_id(&filters.client_id).await? {
            Some(application) => query.application = Some(application.id),
            None => unknown = unknown.or(Some("application")),
        }
    }
    if !filters.state.is_empty() {
        query.state = Some(filters.state.clone());
    }
    let page = match unknown {
        Some(_) => TokenRows::default(),
        None => {
            state
                .oauth
                .token_rows(T::TABLE, &query, filters.before, PAGE_ROWS, PAGE_SCAN)
                .await?
        }
    };
    let mut names = Names::new(state);
    let mut rows = Vec::with_capacity(page.rows.len());
    for (key, record) in &page.rows {
        rows.push(row_of(T::TABLE, key, record, &mut names, &query).await?);
    }
    let (next, scanned) = (page.next, page.scanned);
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
    let selected = keys.len();
    let revoked = screen.state.oauth.revoke_rows(T::TABLE, keys).await?;
    let revoked = usize::try_from(revoked).unwrap_or(usize::MAX);
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
    let state = screen.state;
    let record = state
        .oauth
        .token_row(T::TABLE, &key)
        .await?
        .ok_or(NO_RECORD)?;
    let query = state.oauth.token_query();
    let row = row_of(T::TABLE, &key, &record, &mut Names::new(state), &query).await?;
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
