//! The authorization endpoint's request (RFC 6749 §4.1.1 with PKCE), validated in the order
//! that keeps it safe: the client and the redirect URI first — until both are known good no
//! error may redirect anywhere — then everything else, whose errors go back to the client.

use serde::Serialize;

use crate::config::OAuth2Provider;
use crate::oauth::redirect::{is_registered, with_query};
use crate::oauth::{ClaimsRequest, pkce, resolve_scope};
use crate::params::{FormError, Params};
use crate::store::{Application, ApplicationStorage, ClientType, GrantType, StoreError};

/// Prompt values this server understands (OIDC Core §3.1.2.1).
const PROMPTS: [&str; 4] = ["none", "login", "consent", "select_account"];

/// How the answer travels to the client (OAuth 2.0 Multiple Response Types, Form Post).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// What the authorization endpoint hands out: any non-empty mix of a code, an access token and
/// an ID token (OIDC Core §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResponseType {
    pub code: bool,
    pub token: bool,
    pub id_token: bool,
}

impl ResponseType {
    fn parse(text: &str) -> Option<Self> {
        let mut parsed = ResponseType::default();
        for word in text.split(' ') {
            let seen = match word {
                "code" => &mut parsed.code,
                "token" => &mut parsed.token,
                "id_token" => &mut parsed.id_token,
                _ => return None,
            };
            if *seen {
                return None;
            }
            *seen = true;
        }
        Some(parsed)
    }

    /// The grant type an application needs for this response type (DOT's rule): the code
    /// alone is the authorization code grant, no code is implicit, a code with more is hybrid.
    pub fn grant_type(self) -> GrantType {
        match (self.code, self.token || self.id_token) {
            (true, false) => GrantType::AuthorizationCode,
            (false, _) => GrantType::Implicit,
            (true, true) => GrantType::OpenidHybrid,
        }
    }

    fn default_mode(self) -> ResponseMode {
        if self.token || self.id_token {
            ResponseMode::Fragment
        } else {
            ResponseMode::Query
        }
    }
}

/// The answer for the client's redirect URI.
#[derive(Debug, Clone)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

impl AuthorizationResponse {
    fn new(redirect_uri: &str, mode: ResponseMode, params: Vec<(&str, &str)>) -> Self {
        Self {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            params: params
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        }
    }

    /// The redirect location (query or fragment mode).
    pub fn location(&self) -> String {
        let pairs: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        match self.mode {
            ResponseMode::Fragment => {
                let mut encoded = url::form_urlencoded::Serializer::new(String::new());
                encoded.extend_pairs(&pairs);
                format!("{}#{}", self.redirect_uri, encoded.finish())
            }
            _ => {
                with_query(&self.redirect_uri, &pairs).unwrap_or_else(|| self.redirect_uri.clone())
            }
        }
    }
}

/// Why an authorization request failed, and where the answer goes.
#[derive(Debug, Clone)]
pub enum AuthorizeFailure {
    /// The client or redirect URI is missing, unknown or unregistered: show a page, never
    /// redirect (that would be an open redirector).
    Page(String),
    /// Any later error: back to the client's URI carrying `error`.
    Redirect(AuthorizationResponse),
    Store(StoreError),
}

impl From<StoreError> for AuthorizeFailure {
    fn from(error: StoreError) -> Self {
        AuthorizeFailure::Store(error)
    }
}

/// A validated authorization request.
#[derive(Debug, Clone, Serialize)]
pub struct AuthorizationRequest {
    #[serde(skip)]
    pub application: Application,
    pub client_id: String,
    /// Where the answer goes (the one registered URI when the request named none).
    pub redirect_uri: String,
    /// Whether the request named it (then the token request must repeat it).
    pub redirect_uri_given: bool,
    pub response_type: String,
    #[serde(skip)]
    pub response: ResponseType,
    #[serde(skip)]
    pub response_mode: ResponseMode,
    /// `response_mode` as the request named it, to repeat it in the consent form.
    pub response_mode_given: Option<String>,
    pub scope: String,
    /// Whether the client named the scope (else it is `default_scopes`).
    pub scope_given: bool,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Vec<String>,
    pub approval_prompt: Option<String>,
    pub login_hint: Option<String>,
    /// The `claims` parameter, checked (OIDC Core §5.5).
    pub claims: Option<String>,
    /// Seconds since the user's authentication after which they must log in again.
    pub max_age: Option<u64>,
    /// An ID token this server issued, naming the user the client expects.
    pub id_token_hint: Option<String>,
}

impl AuthorizationRequest {
    pub fn has_prompt(&self, value: &str) -> bool {
        self.prompt.iter().any(|prompt| prompt == value)
    }

    /// Drops `openid` from the scope (a client that cannot have ID tokens and did not ask for
    /// `openid` by name gets the other default scopes).
    pub fn drop_openid(&mut self) {
        self.scope = self
            .scope
            .split(' ')
            .filter(|scope| *scope != "openid")
            .collect::<Vec<_>>()
            .join(" ");
    }

    /// The answer that carries an error back to the client.
    pub fn error_response(&self, error: &str, description: &str) -> AuthorizationResponse {
        error_response(
            &self.redirect_uri,
            self.response_mode,
            error,
            description,
            self.state.as_deref(),
        )
    }

    /// The answer that carries what was issued (code, tokens) back to the client, with `state`.
    pub fn success_response<'a>(
        &'a self,
        mut params: Vec<(&'a str, &'a str)>,
    ) -> AuthorizationResponse {
        if let Some(state) = &self.state {
            params.push(("state", state));
        }
        AuthorizationResponse::new(&self.redirect_uri, self.response_mode, params)
    }

    /// The request's parameters, as hidden fields of the consent form (the POST validates them
    /// again; nothing in them is trusted). `prompt=login` is left out: it has been honoured.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("client_id", self.client_id.clone()),
            ("response_type", self.response_type.clone()),
            ("scope", self.scope.clone()),
        ];
        if self.redirect_uri_given {
            fields.push(("redirect_uri", self.redirect_uri.clone()));
        }
        let optional = [
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("nonce", &self.nonce),
            ("approval_prompt", &self.approval_prompt),
            ("claims", &self.claims),
            ("response_mode", &self.response_mode_given),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                fields.push((name, value.clone()));
            }
        }
        let prompt: Vec<&str> = self
            .prompt
            .iter()
            .map(String::as_str)
            .filter(|prompt| *prompt != "login")
            .collect();
        if !prompt.is_empty() {
            fields.push(("prompt", prompt.join(" ")));
        }
        fields
    }

    /// The query string that repeats this request without `prompt=login` and `max_age` (the
    /// login page sends the user back here, and must not be asked to log in again; the ID
    /// token's `auth_time` lets the client check the authentication's age).
    pub fn query_without_login_prompt(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.form_fields() {
            query.append_pair(name, &value);
        }
        if let Some(hint) = &self.login_hint {
            query.append_pair("login_hint", hint);
        }
        query.finish()
    }
}

fn error_response(
    redirect_uri: &str,
    mode: ResponseMode,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> AuthorizationResponse {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    AuthorizationResponse::new(redirect_uri, mode, params)
}

fn page(error: FormError) -> AuthorizeFailure {
    AuthorizeFailure::Page(error.to_string())
}

/// Validates an authorization request (from the query of a GET or the form of the consent
/// POST).
pub async fn validate(
    store: &dyn ApplicationStorage,
    provider: &OAuth2Provider,
    params: &Params,
) -> Result<AuthorizationRequest, AuthorizeFailure> {
    let client_id = params
        .non_empty("client_id")
        .map_err(page)?
        .ok_or_else(|| {
            AuthorizeFailure::Page("The request names no client (client_id).".to_owned())
        })?
        .to_owned();
    let application = store
        .application_by_client_id(&client_id)
        .await?
        .ok_or_else(|| AuthorizeFailure::Page(format!("There is no client {client_id:?}.")))?;
    let requested_uri = params.non_empty("redirect_uri").map_err(page)?;
    let redirect_uri = match requested_uri {
        Some(uri) => {
            if !is_registered(
                uri,
                &application.redirect_uris,
                &provider.allowed_redirect_uri_schemes,
            ) {
                return Err(AuthorizeFailure::Page(
                    "The redirect_uri is not registered for this client.".to_owned(),
                ));
            }
            uri.to_owned()
        }
        None => match application.redirect_uris.as_slice() {
            [only]
                if is_registered(
                    only,
                    &application.redirect_uris,
                    &provider.allowed_redirect_uri_schemes,
                ) =>
            {
                only.clone()
            }
            [] | [_] => {
                return Err(AuthorizeFailure::Page(
                    "This client has no usable redirect URI registered.".to_owned(),
                ));
            }
            _ => {
                return Err(AuthorizeFailure::Page(
                    "This client has several redirect URIs: the request must name one \
                     (redirect_uri)."
                        .to_owned(),
                ));
            }
        },
    };

    // From here on, errors go back to the client: by query until the response type says
    // otherwise.
    let state = params.single("state").ok().flatten().map(str::to_owned);
    let mut mode = ResponseMode::Query;
    let fail_in = |mode: ResponseMode, error: &str, description: String| {
        AuthorizeFailure::Redirect(error_response(
            &redirect_uri,
            mode,
            error,
            &description,
            state.as_deref(),
        ))
    };
    let text = |mode: ResponseMode, name: &str| -> Result<Option<String>, AuthorizeFailure> {
        params
            .non_empty(name)
            .map(|value| value.map(str::to_owned))
            .map_err(|error| fail_in(mode, "invalid_request", error.to_string()))
    };
    if params.single("state").is_err() {
        return Err(fail_in(
            mode,
            "invalid_request",
            "state was given more than once".to_owned(),
        ));
    }
    let response_type = text(mode, "response_type")?.ok_or_else(|| {
        fail_in(
            mode,
            "invalid_request",
            "response_type is required".to_owned(),
        )
    })?;
    let response = ResponseType::parse(&response_type)
        .filter(|response| provider.oidc_enabled || !response.id_token)
        .ok_or_else(|| {
            fail_in(
                mode,
                "unsupported_response_type",
                format!("response_type {response_type:?} is not supported"),
            )
        })?;
    mode = response.default_mode();
    let response_mode_given = text(mode, "response_mode")?;
    mode = match response_mode_given.as_deref() {
        None => mode,
        Some("query") if response.token || response.id_token => {
            return Err(fail_in(
                mode,
                "invalid_request",
                "tokens are never sent in the query: use response_mode fragment or form_post"
                    .to_owned(),
            ));
        }
        Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => {
            return Err(fail_in(
                mode,
                "invalid_request",
                format!("response_mode {other:?} is not supported"),
            ));
        }
    };
    let fail = |error: &str, description: String| fail_in(mode, error, description);
    let single = |name: &str| text(mode, name);
    // OIDC Core §6: until request objects are supported, say so rather than ignore them (a
    // client that signed its parameters must not believe they were honoured).
    if single("request")?.is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects (the request parameter) are not supported".to_owned(),
        ));
    }
    if single("request_uri")?.is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported".to_owned(),
        ));
    }
    if !application.grant_types.contains(&response.grant_type()) {
        return Err(fail(
            "unauthorized_client",
            format!("this client may not use response_type {response_type:?}"),
        ));
    }
    let requested_scope = single("scope")?;
    let scope = resolve_scope(requested_scope.as_deref(), provider)
        .map_err(|error| fail("invalid_scope", error.description()))?;

    let code_challenge = single("code_challenge")?;
    let code_challenge_method = single("code_challenge_method")?;
    match (&code_challenge, &code_challenge_method) {
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge".to_owned(),
            ));
        }
        (None, None)
            if response.code
                && (provider.pkce_required || application.client_type == ClientType::Public) =>
        {
            return Err(fail(
                "invalid_request",
                "PKCE is required: send code_challenge and code_challenge_method=S256".to_owned(),
            ));
        }
        (Some(challenge), method) => {
            if !pkce::is_well_formed(challenge) {
                return Err(fail(
                    "invalid_request",
                    "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]".to_owned(),
                ));
            }
            match method.as_deref().unwrap_or("plain") {
                "S256" => {}
                "plain" if provider.pkce_plain_allowed => {}
                "plain" => {
                    return Err(fail(
                        "invalid_request",
                        "code_challenge_method plain is not allowed here; use S256".to_owned(),
                    ));
                }
                other => {
                    return Err(fail(
                        "invalid_request",
                        format!("code_challenge_method {other:?} is not supported"),
                    ));
                }
            }
        }
        (None, None) => {}
    }
    let code_challenge_method = code_challenge
        .as_ref()
        .map(|_| code_challenge_method.unwrap_or_else(|| "plain".to_owned()));

    let prompt: Vec<String> = single("prompt")?
        .map(|text| {
            text.split(' ')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(unknown) = prompt.iter().find(|p| !PROMPTS.contains(&p.as_str())) {
        return Err(fail(
            "invalid_request",
            format!("prompt {unknown:?} is not supported"),
        ));
    }
    if prompt.len() > 1 && prompt.iter().any(|p| p == "none") {
        return Err(fail(
            "invalid_request",
            "prompt=none cannot be combined with other prompts".to_owned(),
        ));
    }
    let nonce = single("nonce")?;
    if response.id_token {
        if !crate::oauth::is_openid(&scope) {
            return Err(fail(
                "invalid_request",
                "response_type id_token needs the openid scope".to_owned(),
            ));
        }
        if nonce.is_none() {
            return Err(fail(
                "invalid_request",
                "nonce is required when the ID token comes from the authorization endpoint"
                    .to_owned(),
            ));
        }
    }
    let claims = single("claims")?;
    if let Some(claims) = &claims {
        ClaimsRequest::parse(claims).map_err(|error| fail("invalid_request", error))?;
    }
    let max_age = single("max_age")?
        .map(|text| {
            text.parse::<u64>().map_err(|_| {
                fail(
                    "invalid_request",
                    "max_age must be a non-negative number of seconds".to_owned(),
                )
            })
        })
        .transpose()?;
    Ok(AuthorizationRequest {
        client_id,
        redirect_uri_given: requested_uri.is_some(),
        redirect_uri: redirect_uri.clone(),
        response_type,
        response,
        response_mode: mode,
        response_mode_given,
        scope,
        scope_given: requested_scope.is_some(),
        code_challenge,
        code_challenge_method,
        nonce,
        prompt,
        approval_prompt: single("approval_prompt")?,
        login_hint: single("login_hint")?,
        claims,
        max_age,
        id_token_hint: single("id_token_hint")?,
        state: state.clone(),
        application,
    })
}
