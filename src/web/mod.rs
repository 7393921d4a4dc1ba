//! Rocket only: routes, request guards, fairings, the error → response mapping and templates.
//! Everything below it (accounts, store, passwords) knows nothing of HTTP.

pub mod application_editor;
mod catchers;
pub mod cors;
pub mod csrf;
pub mod error;
mod fairings;
pub mod form;
pub mod listener;
pub mod listing;
mod oauth_response;
pub mod permission_fields;
pub mod proxy;
pub mod routes;
pub mod screen;
pub mod session;
pub mod templates;

use std::sync::Arc;

use rocket::config::LogLevel;
use rocket::data::{Limits, ToByteUnit};
use rocket::request::{self, FromRequest, Request};
use rocket::{Build, Rocket};

use crate::accounts::Accounts;
use crate::applications::Applications;
use crate::clock::Clock;
use crate::config::Settings;
use crate::oauth::{ClientAuthenticator, IdTokenSigner, OAuth};
use crate::oidc::{IdTokens, KeyRing};
use crate::passwords::Hasher;
use crate::store::SharedStorage;
use templates::Templates;

#[derive(Debug, thiserror::Error)]
#[error("cannot start the web layer: {0}")]
pub struct StartupError(String);

/// Everything handlers need, built once at start and shared.
pub struct AppState {
    pub settings: Arc<Settings>,
    /// The store as a whole: the dashboard's counts, `/readyz`'s probe, `/metrics`.
    pub status: crate::status::StoreStatus,
    pub accounts: Arc<Accounts>,
    pub applications: Applications,
    /// The periodic tasks' table (the admin edits it; `scheduler` runs it).
    pub tasks: crate::scheduler::Tasks,
    pub hasher: Hasher,
    pub templates: Templates,
    pub oauth: OAuth,
    pub clock: Clock,
    pub keys: KeyRing,
    /// None when OpenID Connect is off.
    pub id_tokens: Option<Arc<IdTokens>>,
    pub proxies: proxy::TrustedProxies,
    /// The periodic tasks' scheduler (the server starts it; tests may not).
    pub scheduler: Option<Arc<crate::scheduler::Scheduler>>,
}

impl AppState {
    pub fn new(
        settings: Settings,
        store: SharedStorage,
        hasher: Hasher,
        clock: Clock,
        keys: KeyRing,
    ) -> Result<Self, StartupError> {
        let accounts = Accounts::new(store.clone(), hasher.clone(), &settings, clock.clone());
        let proxies = proxy::TrustedProxies::new(&settings.trusted_proxies);
        let settings = Arc::new(settings);
        let clients = ClientAuthenticator::new(hasher.clone())
            .map_err(|error| StartupError(error.description()))?;
        let id_tokens = settings.oauth2_provider.oidc_enabled.then(|| {
            Arc::new(IdTokens::new(
                keys.clone(),
                store.clone(),
                settings.oauth2_provider.id_token_expire_seconds,
                clock.clone(),
            ))
        });
        let oauth = OAuth::new(
            settings.clone(),
            store.clone(),
            clients,
            accounts.clone(),
            clock.clone(),
            id_tokens
                .clone()
                .map(|signer| signer as Arc<dyn IdTokenSigner>),
        );
        let applications = Applications::new(
            store.clone(),
            hasher.clone(),
            settings.clone(),
            clock.clone(),
        );
        let tasks = crate::scheduler::Tasks::new(store.clone());
        let status =
            crate::status::StoreStatus::new(store, settings.oauth2_provider.clone(), clock.clone());
        Ok(Self {
            settings,
            status,
            accounts,
            applications,
            tasks,
            hasher,
            templates: Templates::load(clock.clone())
                .map_err(|error| StartupError(error.to_string()))?,
            oauth,
            clock,
            keys,
            id_tokens,
            proxies,
            scheduler: None,
        })
    }

    /// The issuer: the configured one, else `<scheme>://<host>/o` as the request shows it.
    pub fn issuer(&self, origin: &RequestOrigin) -> String {
        match &self.settings.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_owned(),
            None => format!("{}/o", origin.0),
        }
    }
}

/// Each scope of a space-separated `scope` with its description, for consent pages.
pub fn scope_descriptions(settings: &Settings, scope: &str) -> Vec<serde_json::Value> {
    scope
        .split(' ')
        .filter(|name| !name.is_empty())
        .map(|name| {
            let description = settings
                .oauth2_provider
                .scopes
                .get(name)
                .map_or(name, String::as_str);
            serde_json::json!({ "name": name, "description": description })
        })
        .collect()
}

/// What consent pages call an application: its name, else its client id.
pub fn application_label(application: &crate::store::Application) -> &str {
    if application.name.is_empty() {
        &application.client_id
    } else {
        &application.name
    }
}

/// `scheme://host[:port]` of the request, from its `Host` header (proxies are not trusted).
pub struct RequestOrigin(pub String);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RequestOrigin {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, Self::Error> {
        let origin = match req.rocket().state::<AppState>() {
            Some(state) => state.proxies.origin(req),
            None => proxy::TrustedProxies::default().origin(req),
        };
        request::Outcome::Success(RequestOrigin(origin))
    }
}

/// Rocket's configuration, from our settings only (Rocket does not read Rocket.toml itself:
/// our loader does, and refuses unknown keys). Rocket routes requests; `listener` accepts
/// connections, so the address, TLS and shutdown settings live there.
pub fn rocket_config(settings: &Settings) -> rocket::Config {
    rocket::Config {
        address: settings.address,
        port: settings.port,
        // Rocket's own log lines carry full URIs (query strings hold codes and tokens).
        log_level: LogLevel::Off,
        cli_colors: false,
        // Trust no client-supplied address header until proxies are configured.
        ip_header: None,
        limits: Limits::default()
            .limit("form", settings.limits.form.bytes())
            .limit("json", settings.limits.json.bytes()),
        ident: rocket::config::Ident::try_new("oxidot").unwrap_or_default(),
        ..rocket::Config::default()
    }
}

pub fn build(state: AppState) -> Rocket<Build> {
    let config = rocket_config(&state.settings);
    let metrics = &state.settings.metrics;
    let mut all = Vec::new();
    if metrics.enabled && metrics.address.is_none() {
        all.extend(routes::health::metrics_routes());
    }
    for group in [
        routes::home::routes(),
        routes::accounts::routes(),
        routes::password_change::routes(),
        routes::health::routes(),
        routes::assets::routes(),
        routes::oauth::routes(),
        routes::authorize::routes(),
        cors::routes(),
        routes::device::routes(),
        routes::metadata::routes(),
        routes::userinfo::routes(),
        routes::logout::routes(),
        routes::admin::routes(),
        routes::self_service::routes(),
    ] {
        all.extend(group);
    }
    rocket::custom(config)
        .manage(state)
        .attach(fairings::SecurityHeaders)
        .attach(fairings::RequestLog)
        .attach(session::LookUpSession)
        .mount("/", fairings::traced(all))
        .register("/", catchers::all())
}
