//! The DOT tutorial's Postman flow against the real binary, driven by an independent OAuth
//! client library (the `oauth2` crate) plus a cookie-keeping HTTP client for the browser's
//! part (login and consent).

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge, RedirectUrl,
    Scope, TokenResponse, TokenUrl,
};

use crate::support::{Server, http_client};

const POSTMAN: &str = "https://oauth.pstmn.io/v1/callback";

/// The hidden fields of the page's form that posts to `action`, in order.
fn hidden_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let start = html
        .find(&format!("action=\"{action}\""))
        .expect("the form");
    let form = &html[start..html[start..].find("</form>").unwrap() + start];
    let mut fields = Vec::new();
    for part in form.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = part.split_once('"').unwrap();
        let value = rest
            .split_once("value=\"")
            .unwrap()
            .1
            .split_once('"')
            .unwrap()
            .0;
        fields.push((name.to_owned(), decode_entities(value)));
    }
    fields
}

fn decode_entities(text: &str) -> String {
    text.replace("&#x2F;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn location(response: &reqwest::blocking::Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_owned()
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

    // The browser: authorize → login → back to authorize → consent → redirect with the code.
    let browser = http_client();
    let to_login = browser.get(authorize_url.as_str()).send().unwrap();
    assert_eq!(to_login.status().as_u16(), 302);
    let login_url = format!("{base}{}", location(&to_login));
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
    let consent = browser
        .get(format!("{base}{}", location(&logged_in)))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(consent.contains("Authorize hashed secret 1?"));
    let mut form = hidden_fields(&consent, "/o/authorize/");
    form.push(("allow".to_owned(), "Authorize".to_owned()));
    let approved = browser
        .post(format!("{base}/o/authorize/"))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(approved.status().as_u16(), 302);
    let callback = url::Url::parse(&location(&approved)).unwrap();
    assert!(callback.as_str().starts_with(POSTMAN));
    let query: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
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
