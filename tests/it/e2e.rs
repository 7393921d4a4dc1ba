//! The DOT tutorial's Postman flow against the real binary, driven by an independent OAuth
//! client library (the `oauth2` crate) plus a cookie-keeping HTTP client for the browser's
//! part (login and consent).

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};

use crate::support::{Server, hidden_fields, http_client};

pub const POSTMAN: &str = "https://oauth.pstmn.io/v1/callback";

fn location(response: &reqwest::blocking::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The browser's part: authorize → (login as admin when needed) → consent → approve. Returns
/// the query of the redirect to the client's callback.
pub fn browser_approves(
    browser: &reqwest::blocking::Client,
    base: &str,
    authorize_url: &str,
    title: &str,
) -> std::collections::HashMap<String, String> {
    let first = browser.get(authorize_url).send().unwrap();
    let consent = if first.status().as_u16() == 302 {
        let login_url = format!("{base}{}", location(&first));
        assert!(login_url.contains("/accounts/login/"), "{login_url}");
        let login_page = browser.get(&login_url).send().unwrap().text().unwrap();
        let mut form = hidden_fields(&login_page, "/accounts/login/");
        form.push(("username".to_owned(), "admin".to_owned()));
        form.push(("password".to_owned(), "admin123".to_owned()));
        let logged_in = browser
            .post(format!("{base}/accounts/login/"))
            .form(&form)
            .send()
            .unwrap();
        assert_eq!(logged_in.status().as_u16(), 303);
        browser
            .get(format!("{base}{}", location(&logged_in)))
            .send()
            .unwrap()
            .text()
            .unwrap()
    } else {
        assert_eq!(first.status().as_u16(), 200);
        first.text().unwrap()
    };
    assert!(consent.contains(title), "{consent}");
    let mut form = hidden_fields(&consent, "/o/authorize/");
    form.push(("allow".to_owned(), "Authorize".to_owned()));
    let approved = browser
        .post(format!("{base}/o/authorize/"))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(approved.status().as_u16(), 302);
    let callback = url::Url::parse(&location(&approved)).unwrap();
    assert!(callback.as_str().starts_with(POSTMAN), "{callback}");
    callback.query_pairs().into_owned().collect()
}

#[test]
fn the_postman_flow_with_an_independent_oauth_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["demo"]);
    let base = server.base.clone();

    let client = BasicClient::new(ClientId::new("hash1".to_owned()))
        .set_client_secret(ClientSecret::new("hashed".to_owned()))
        .set_auth_uri(AuthUrl::new(format!("{base}/o/authorize/")).unwrap())
        .set_token_uri(TokenUrl::new(format!("{base}/o/token/")).unwrap())
        .set_redirect_uri(RedirectUrl::new(POSTMAN.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".to_owned()))
        .add_scope(Scope::new("write".to_owned()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = http_client();
    let query = browser_approves(
        &browser,
        &base,
        authorize_url.as_str(),
        "Authorize hashed secret 1?",
    );
    assert_eq!(query.get("state"), Some(state.secret()));
    let code = AuthorizationCode::new(query["code"].clone());

    // The client: exchange with Basic auth and the PKCE verifier.
    let backend = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let tokens = client
        .exchange_code(code)
        .set_pkce_verifier(verifier)
        .request(&backend)
        .expect("the code exchange succeeds");
    let scopes: Vec<String> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|scope| scope.to_string())
        .collect();
    assert_eq!(scopes, ["read", "write"]);
    let hello = |token: &str| {
        let response = backend
            .get(format!("{base}/api/hello"))
            .bearer_auth(token)
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    assert_eq!(
        hello(tokens.access_token().secret()),
        (200, "Hello, OAuth2!".to_owned())
    );

    // Refresh, then revoke.
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request(&backend)
        .expect("the refresh succeeds");
    assert_eq!(hello(tokens.access_token().secret()).0, 401);
    assert_eq!(hello(refreshed.access_token().secret()).0, 200);
    // The oauth2 crate revokes only over https; the request it would send, by hand.
    let revoked = backend
        .post(format!("{base}/o/revoke_token/"))
        .basic_auth("hash1", Some("hashed"))
        .form(&[
            ("token", refreshed.access_token().secret().as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);
    assert_eq!(hello(refreshed.access_token().secret()).0, 401);
    assert!(server.terminate());
}

/// The applications the OpenID e2e test adds beside the tutorial's: one per asymmetric
/// algorithm (hash1 is RS256, clear1 HS256).
const SIGNING_APPS: &str = r#"
- model: oauth2_provider.application
  pk: 60
  fields: {client_id: es256, client_secret: es256-secret, client_type: confidential,
           authorization_grant_type: authorization-code, redirect_uris: "https://oauth.pstmn.io/v1/callback",
           name: ES256 app, algorithm: ES256}
- model: oauth2_provider.application
  pk: 61
  fields: {client_id: eddsa, client_secret: eddsa-secret, client_type: confidential,
           authorization_grant_type: authorization-code, redirect_uris: "https://oauth.pstmn.io/v1/callback",
           name: EdDSA app, algorithm: EdDSA}
"#;

#[test]
fn an_independent_relying_party_verifies_id_tokens_of_every_algorithm() {
    use openidconnect::core::{
        CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
        CoreUserInfoClaims,
    };
    use openidconnect::{
        AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
        JsonWebKey, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
        TokenResponse,
    };

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["demo"]);
    let base = server.base.clone();
    let fixture = dir.path().join("signing-apps.yaml");
    std::fs::write(&fixture, SIGNING_APPS).unwrap();
    let loaded = crate::support::oxidot(dir.path())
        .args(["--profile", "demo", "loaddata", fixture.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");

    let backend = openidconnect::reqwest::blocking::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let issuer = IssuerUrl::new(format!("{base}/o")).unwrap();
    let metadata = CoreProviderMetadata::discover(&issuer, &backend).expect("discovery");
    let browser = http_client();
    for (client_id, secret, title, algorithm) in [
        (
            "hash1",
            "hashed",
            "Authorize hashed secret 1?",
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        ),
        (
            "es256",
            "es256-secret",
            "Authorize ES256 app?",
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        ),
        (
            "eddsa",
            "eddsa-secret",
            "Authorize EdDSA app?",
            CoreJwsSigningAlgorithm::EdDsa,
        ),
        (
            "clear1",
            "secret",
            "Authorize cleartext secret 1?",
            CoreJwsSigningAlgorithm::HmacSha256,
        ),
    ] {
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(client_id.to_owned()),
            Some(ClientSecret::new(secret.to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(POSTMAN.to_owned()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (authorize_url, state, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".to_owned()))
            .add_scope(Scope::new("email".to_owned()))
            .set_pkce_challenge(challenge)
            .url();
        let query = browser_approves(&browser, &base, authorize_url.as_str(), title);
        assert_eq!(query.get("state"), Some(state.secret()));
        let tokens = client
            .exchange_code(AuthorizationCode::new(query["code"].clone()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request(&backend)
            .unwrap_or_else(|error| panic!("{client_id}: exchange: {error:?}"));
        let id_token = tokens.id_token().expect("an ID token");
        let id_verifier = client
            .id_token_verifier()
            .set_allowed_algs(vec![algorithm.clone()]);
        let claims = id_token
            .claims(&id_verifier, &nonce)
            .unwrap_or_else(|error| panic!("{client_id}: ID token: {error:?}"));
        assert_eq!(claims.subject().as_str(), "1");
        assert!(claims.auth_time().is_some());
        // An HS256 token's key is the client secret, which JWKS does not publish.
        let symmetric = openidconnect::core::CoreJsonWebKey::new_symmetric(secret.into());
        let signing_key = match algorithm {
            CoreJwsSigningAlgorithm::HmacSha256 => &symmetric,
            _ => id_token.signing_key(&id_verifier).unwrap(),
        };
        let expected_hash = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            signing_key,
        )
        .unwrap();
        assert_eq!(
            claims.access_token_hash(),
            Some(&expected_hash),
            "{client_id}"
        );
        let userinfo: CoreUserInfoClaims = client
            .user_info(
                tokens.access_token().to_owned(),
                Some(claims.subject().clone()),
            )
            .unwrap()
            .request(&backend)
            .unwrap_or_else(|error| panic!("{client_id}: userinfo: {error:?}"));
        assert_eq!(
            userinfo.preferred_username().map(|name| name.as_str()),
            Some("admin")
        );
    }
    assert!(server.terminate());
}
