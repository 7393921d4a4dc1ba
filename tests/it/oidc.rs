//! OpenID Connect over HTTP: discovery, JWKS, ID tokens from the code flow and refreshes,
//! userinfo, authentication requests (prompt, max_age, id_token_hint, claims).

use base64::Engine as _;
use josekit::jwk::Jwk;
use rocket::http::{ContentType, Header};
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::flow::*;
use crate::support::{App, enc, header, hidden_fields, origin};

fn get_json(app: &App, path: &str) -> (u16, Value) {
    let response = app.client.get(path.to_owned()).dispatch();
    let status = response.status().code;
    (
        status,
        serde_json::from_str(&response.into_string().unwrap()).unwrap(),
    )
}

/// The claims of an ID token, after checking its signature against the published JWKS.
fn verified_claims(app: &App, token: &str) -> (Map<String, Value>, Map<String, Value>) {
    let (_, jwks) = get_json(app, "/o/.well-known/jwks.json");
    let header_map = payload_of(&format!("x.{}", token.split('.').next().unwrap()));
    let kid = header_map["kid"].as_str().unwrap().to_owned();
    let alg = header_map["alg"].as_str().unwrap().to_owned();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} is not in JWKS"));
    let jwk = Jwk::from_bytes(jwk.to_string()).unwrap();
    let (payload, _) = match alg.as_str() {
        "RS256" => josekit::jwt::decode_with_verifier(
            token,
            &josekit::jws::RS256.verifier_from_jwk(&jwk).unwrap(),
        ),
        "ES256" => josekit::jwt::decode_with_verifier(
            token,
            &josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap(),
        ),
        "EdDSA" => josekit::jwt::decode_with_verifier(
            token,
            &josekit::jws::EdDSA.verifier_from_jwk(&jwk).unwrap(),
        ),
        other => panic!("unexpected alg {other}"),
    }
    .unwrap();
    (payload.claims_set().clone(), header_map)
}

fn payload_of(token: &str) -> Map<String, Value> {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

fn left_half_sha256(value: &str) -> String {
    let digest = sha2::Sha256::digest(value.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

fn openid_request(scope: &str) -> Vec<(&'static str, String)> {
    let request = with(tutorial_request(), "scope", Some(scope));
    with(request, "nonce", Some("n-0S6_WzA2Mj"))
}

/// Logs in, approves `request` and exchanges the code as Postman would.
fn code_flow(app: &App, request: &[(&'static str, String)]) -> Value {
    let location = approve(app, request);
    let code = param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    let (status, body) = tutorial_exchange(app, &code);
    assert_eq!(status, 200, "{body}");
    body
}

fn userinfo(app: &App, token: &str) -> (u16, Value, Option<String>) {
    let response = app
        .client
        .get("/o/userinfo/")
        .header(Header::new("Authorization", format!("Bearer {token}")))
        .dispatch();
    let status = response.status().code;
    let challenge = header(&response, "WWW-Authenticate").map(str::to_owned);
    let body = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    (status, body, challenge)
}

#[test]
fn discovery_describes_what_the_server_does() {
    let app = App::demo();
    for path in [
        "/o/.well-known/openid-configuration",
        "/o/.well-known/openid-configuration/",
    ] {
        let response = app.client.get(path).dispatch();
        assert_eq!(response.status().code, 200, "{path}");
        assert_eq!(header(&response, "Access-Control-Allow-Origin"), Some("*"));
        let body: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
        let issuer = "http://localhost/o";
        assert_eq!(body["issuer"], issuer, "{body}");
        for (name, path) in [
            ("authorization_endpoint", "/authorize/"),
            ("token_endpoint", "/token/"),
            ("userinfo_endpoint", "/userinfo/"),
            ("jwks_uri", "/.well-known/jwks.json"),
            ("revocation_endpoint", "/revoke_token/"),
            ("introspection_endpoint", "/introspect/"),
            ("device_authorization_endpoint", "/device-authorization/"),
        ] {
            assert_eq!(body[name], format!("{issuer}{path}"), "{name}");
        }
        for name in [
            "scopes_supported",
            "response_types_supported",
            "response_modes_supported",
            "grant_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
            "token_endpoint_auth_methods_supported",
            "revocation_endpoint_auth_methods_supported",
            "introspection_endpoint_auth_methods_supported",
            "code_challenge_methods_supported",
            "claims_supported",
            "prompt_values_supported",
        ] {
            assert!(
                body[name]
                    .as_array()
                    .is_some_and(|values| !values.is_empty()),
                "{name}: {body}"
            );
        }
        assert_eq!(body["claims_parameter_supported"], true);
        assert!(
            body["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&"openid".into())
        );
        assert!(
            body["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&"refresh_token".into())
        );
    }
    // Every endpoint it names answers (not 404).
    let (_, body) = get_json(&app, "/o/.well-known/openid-configuration");
    for name in ["userinfo_endpoint", "jwks_uri"] {
        let path = body[name]
            .as_str()
            .unwrap()
            .trim_start_matches("http://localhost");
        assert_ne!(
            app.client.get(path.to_owned()).dispatch().status().code,
            404,
            "{name}"
        );
    }
}

#[test]
fn discovery_and_jwks_are_absent_when_oidc_is_off() {
    let app = App::with(
        |settings| settings.oauth2_provider.oidc_enabled = false,
        oxidot::server::demo_fixture_files(),
    );
    for path in [
        "/o/.well-known/openid-configuration",
        "/o/.well-known/jwks.json",
    ] {
        assert_eq!(app.client.get(path).dispatch().status().code, 404, "{path}");
    }
    let (_, metadata) = get_json(&app, "/o/.well-known/oauth-authorization-server");
    assert!(metadata.get("jwks_uri").is_none());
    // `openid` is then a scope like any other: no ID token.
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let body = code_flow(&app, &openid_request("openid read"));
    assert!(body.get("id_token").is_none(), "{body}");
}

#[test]
fn jwks_publishes_one_key_per_algorithm_with_thumbprint_kids() {
    let app = App::demo();
    let response = app.client.get("/o/.well-known/jwks.json").dispatch();
    assert_eq!(response.status().code, 200);
    assert_eq!(
        header(&response, "Cache-Control"),
        Some("public, max-age=3600")
    );
    assert_eq!(header(&response, "Access-Control-Allow-Origin"), Some("*"));
    let body: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
    let keys = body["keys"].as_array().unwrap();
    let mut algs: Vec<&str> = keys
        .iter()
        .map(|key| key["alg"].as_str().unwrap())
        .collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for key in keys {
        assert_eq!(key["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "private member {private} published"
            );
        }
        let jwk = Jwk::from_bytes(key.to_string()).unwrap();
        assert_eq!(
            key["kid"],
            oxidot::oidc::keys::thumbprint(&jwk).unwrap(),
            "RFC 7638 thumbprint"
        );
    }
    // The configured RSA key is the RS256 key.
    let configured =
        josekit::jwk::alg::rsa::RsaKeyPair::from_pem(crate::support::test_rsa_pem()).unwrap();
    let configured = josekit::jwk::KeyPair::to_jwk_public_key(&configured);
    let rsa = keys.iter().find(|key| key["alg"] == "RS256").unwrap();
    assert_eq!(rsa["n"], configured.parameter("n").unwrap().clone());
}

#[test]
fn the_code_flow_with_openid_returns_a_verifiable_id_token() {
    let app = logged_in();
    let session = app.store.read(|tx| tx.session_count()).unwrap();
    assert_eq!(session, 1);
    let body = code_flow(&app, &openid_request("openid read"));
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "token_type",
            "scope",
            "refresh_token",
            "id_token"
        ]
    );
    let id_token = body["id_token"].as_str().unwrap();
    let (claims, header) = verified_claims(&app, id_token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["iss"], "http://localhost/o");
    assert_eq!(claims["sub"], "1", "the user's pk as a string, like DOT");
    assert_eq!(claims["aud"], "hash1");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let iat = claims["iat"].as_i64().unwrap();
    assert!((now - iat).abs() < 60);
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 36_000);
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!(auth_time <= iat && iat - auth_time < 60, "the login's time");
    assert_eq!(
        claims["at_hash"],
        left_half_sha256(body["access_token"].as_str().unwrap())
    );
    assert!(claims["jti"].as_str().is_some_and(|jti| jti.len() >= 43));
    assert!(claims["sid"].as_str().is_some_and(|sid| !sid.is_empty()));
    // With an access token, the user's claims are for userinfo, not the ID token.
    for leaked in ["email", "name", "preferred_username", "permissions"] {
        assert!(
            claims.get(leaked).is_none(),
            "{leaked} leaked into the ID token"
        );
    }
    // The ID token is recorded (DOT's idtoken), under its jti.
    let jti = claims["jti"].as_str().unwrap();
    let record = app
        .store
        .read(|tx| tx.id_token(&oxidot::store::SecretKey::of_token(jti)))
        .unwrap()
        .unwrap();
    assert_eq!(record.user, Some(1));
    assert_eq!(record.scope, "openid read");
}

#[test]
fn without_openid_there_is_no_id_token() {
    let app = logged_in();
    let body = code_flow(&app, &tutorial_request());
    assert!(body.get("id_token").is_none(), "{body}");
}

#[test]
fn hs256_id_tokens_are_signed_with_the_clients_plain_secret() {
    let app = logged_in();
    let request = openid_request("openid");
    let request = with(request, "client_id", Some("clear1"));
    let location = approve(&app, &request);
    let code = param(&location, "code").unwrap();
    let (status, body) = exchange(
        &app,
        &code,
        &format!("&redirect_uri={}&code_verifier={VERIFIER}", enc(POSTMAN)),
        Some(("clear1", "secret")),
    );
    assert_eq!(status, 200, "{body}");
    let token = body["id_token"].as_str().unwrap();
    // "secret" is shorter than RFC 7518 asks of HS256 keys, so check the MAC by hand.
    let (input, signature) = token.rsplit_once('.').unwrap();
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"secret").unwrap();
    mac.update(input.as_bytes());
    let expected =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert_eq!(signature, expected);
    let claims = payload_of(token);
    assert_eq!(claims["aud"], "clear1");
    let header = payload_of(&format!("x.{}", token.split('.').next().unwrap()));
    assert_eq!(header["alg"], "HS256");
    assert!(header.get("kid").is_none());
}

#[test]
fn clients_that_cannot_sign_id_tokens_are_told_at_authorize() {
    let app = logged_in();
    // hash1 with HS256 would need its secret in clear; one with no algorithm is not OIDC.
    for algorithm in [
        oxidot::store::Algorithm::HS256,
        oxidot::store::Algorithm::None,
    ] {
        app.store
            .write_blocking(move |tx| {
                let mut application = tx.application(3)?.unwrap();
                assert_eq!(application.client_id, "hash1");
                application.algorithm = algorithm;
                tx.put_application(&application)
            })
            .unwrap();
        let response = app
            .client
            .get(url_for(&openid_request("openid read")))
            .dispatch();
        assert_eq!(response.status().code, 302);
        let location = header(&response, "Location").unwrap();
        assert_eq!(param(location, "error").as_deref(), Some("invalid_scope"));
        assert_eq!(param(location, "state").as_deref(), Some("xyz-123"));
        // Without openid the client works as before.
        drop(response);
        approve(&app, &tutorial_request());
    }
}

#[test]
fn userinfo_answers_the_claims_the_scope_releases() {
    let app = logged_in();
    app.store
        .write_blocking(|tx| {
            let mut admin = tx.user(1)?.unwrap();
            admin.first_name = "Ada".to_owned();
            admin.last_name = "Lovelace".to_owned();
            admin.email = "ada@example.com".to_owned();
            admin.user_permissions = vec![oxidot::store::Permission::Natural(vec![
                "view_user".to_owned(),
                "auth".to_owned(),
                "user".to_owned(),
            ])];
            tx.put_user(&admin)
        })
        .unwrap();
    let body = code_flow(&app, &openid_request("openid profile email permissions"));
    let access = body["access_token"].as_str().unwrap();
    let (status, claims, _) = userinfo(&app, access);
    assert_eq!(status, 200, "{claims}");
    assert_eq!(claims["sub"], "1");
    assert_eq!(claims["name"], "Ada Lovelace");
    assert_eq!(claims["given_name"], "Ada");
    assert_eq!(claims["family_name"], "Lovelace");
    assert_eq!(claims["preferred_username"], "admin");
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["permissions"], serde_json::json!(["auth.view_user"]));
    // `sub` matches the ID token's.
    let id = payload_of(body["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], claims["sub"]);

    // POST with the token in the body; never in both places.
    let response = app
        .client
        .post("/o/userinfo/")
        .header(ContentType::Form)
        .body(format!("access_token={access}"))
        .dispatch();
    assert_eq!(response.status().code, 200);
    let response = app
        .client
        .post("/o/userinfo/")
        .header(ContentType::Form)
        .header(Header::new("Authorization", format!("Bearer {access}")))
        .body(format!("access_token={access}"))
        .dispatch();
    assert_eq!(response.status().code, 400);
    assert_eq!(response.content_type(), Some(ContentType::JSON));

    // Only openid: just sub.
    let body = code_flow(&app, &openid_request("openid"));
    let (_, claims, _) = userinfo(&app, body["access_token"].as_str().unwrap());
    assert_eq!(
        claims.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["sub"]
    );
}

#[test]
fn userinfo_refuses_bad_tokens_in_rfc_6750_shape() {
    let app = logged_in();
    let (status, body, challenge) = userinfo(&app, "not-a-token");
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_token");
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    // A token without openid: 403 insufficient_scope.
    let tokens = code_flow(&app, &tutorial_request());
    let (status, body, challenge) = userinfo(&app, tokens["access_token"].as_str().unwrap());
    assert_eq!(status, 403);
    assert_eq!(body["error"], "insufficient_scope");
    assert!(challenge.unwrap().contains("scope=\"openid\""));
    // No token at all.
    let response = app.client.get("/o/userinfo/").dispatch();
    assert_eq!(response.status().code, 401);
    // A revoked token.
    let tokens = code_flow(&app, &openid_request("openid"));
    let access = tokens["access_token"].as_str().unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode("hash1:hashed");
    let response = app
        .client
        .post("/o/revoke_token/")
        .header(ContentType::Form)
        .header(Header::new("Authorization", format!("Basic {encoded}")))
        .body(format!("token={access}"))
        .dispatch();
    assert_eq!(response.status().code, 200);
    assert_eq!(userinfo(&app, access).0, 401);
    // An expired one.
    let tokens = code_flow(&app, &openid_request("openid"));
    app.clock.advance(time::Duration::seconds(36_001));
    assert_eq!(
        userinfo(&app, tokens["access_token"].as_str().unwrap()).0,
        401
    );
}

#[test]
fn userinfo_carries_cors_headers_for_the_tokens_client() {
    let app = logged_in();
    app.store
        .write_blocking(|tx| {
            let mut application = tx.application(3)?.unwrap();
            application.allowed_origins = vec!["https://spa.example".to_owned()];
            tx.put_application(&application)
        })
        .unwrap();
    let tokens = code_flow(&app, &openid_request("openid"));
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    for (from, allowed) in [
        ("https://spa.example", true),
        ("https://evil.example", false),
    ] {
        let response = app
            .client
            .get("/o/userinfo/")
            .header(Header::new("Authorization", bearer.clone()))
            .header(origin(from))
            .dispatch();
        assert_eq!(response.status().code, 200);
        assert_eq!(
            header(&response, "Access-Control-Allow-Origin"),
            allowed.then_some(from)
        );
    }
    let preflight = app
        .client
        .options("/o/userinfo/")
        .header(origin("https://spa.example"))
        .dispatch();
    assert_eq!(preflight.status().code, 204);
    assert_eq!(
        header(&preflight, "Access-Control-Allow-Origin"),
        Some("https://spa.example")
    );
}

#[test]
fn a_refresh_of_an_openid_grant_brings_a_new_id_token_for_the_same_authentication() {
    let app = logged_in();
    let first = code_flow(&app, &openid_request("openid read"));
    let original = payload_of(first["id_token"].as_str().unwrap());
    app.clock.advance(time::Duration::seconds(120));
    let encoded = base64::engine::general_purpose::STANDARD.encode("hash1:hashed");
    let refresh = |token: &str, scope: &str| {
        let response = app
            .client
            .post("/o/token/")
            .header(ContentType::Form)
            .header(Header::new("Authorization", format!("Basic {encoded}")))
            .body(format!(
                "grant_type=refresh_token&refresh_token={token}{scope}"
            ))
            .dispatch();
        assert_eq!(response.status().code, 200);
        serde_json::from_str::<Value>(&response.into_string().unwrap()).unwrap()
    };
    let second = refresh(first["refresh_token"].as_str().unwrap(), "");
    let (renewed, _) = verified_claims(&app, second["id_token"].as_str().unwrap());
    for same in ["iss", "sub", "aud", "auth_time", "sid"] {
        assert_eq!(renewed[same], original[same], "{same}");
    }
    assert_eq!(
        renewed["iat"].as_i64().unwrap(),
        original["iat"].as_i64().unwrap() + 120
    );
    assert!(renewed.get("nonce").is_none());
    assert_ne!(renewed["jti"], original["jti"]);
    assert_eq!(
        renewed["at_hash"],
        left_half_sha256(second["access_token"].as_str().unwrap())
    );
    // Narrowed to `read`, the refresh is no longer OpenID: no ID token.
    let third = refresh(second["refresh_token"].as_str().unwrap(), "&scope=read");
    assert!(third.get("id_token").is_none(), "{third}");
}

#[test]
fn prompt_none_answers_without_a_page() {
    let app = App::demo();
    let silent = with(openid_request("openid"), "prompt", Some("none"));
    // Not logged in.
    let response = app.client.get(url_for(&silent)).dispatch();
    assert_eq!(response.status().code, 302);
    let location = header(&response, "Location").unwrap().to_owned();
    assert!(location.starts_with(POSTMAN), "{location}");
    assert_eq!(param(&location, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&location, "state").as_deref(), Some("xyz-123"));
    drop(response);
    // Logged in, never approved (and the tutorial's request_approval_prompt forces consent).
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let response = app.client.get(url_for(&silent)).dispatch();
    let location = header(&response, "Location").unwrap().to_owned();
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("consent_required")
    );
    drop(response);
    // Approved before, with approval_prompt=auto: a code, silently.
    approve(
        &app,
        &with(openid_request("openid"), "approval_prompt", Some("auto")),
    );
    let response = app
        .client
        .get(url_for(&with(silent, "approval_prompt", Some("auto"))))
        .dispatch();
    let location = header(&response, "Location").unwrap().to_owned();
    assert!(param(&location, "code").is_some(), "{location}");
}

#[test]
fn max_age_and_prompt_login_force_a_fresh_login() {
    let app = logged_in();
    let first = code_flow(&app, &openid_request("openid"));
    let first_auth = payload_of(first["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    app.clock.advance(time::Duration::seconds(600));
    // The session is ten minutes old: max_age=300 sends the user to log in again, max_age=900
    // does not.
    // (Unknown acr_values are ignored, not refused.)
    let request = with(openid_request("openid"), "max_age", Some("900"));
    let request = with(request, "acr_values", Some("urn:example:loa:unknown"));
    let response = app.client.get(url_for(&request)).dispatch();
    assert_eq!(response.status().code, 200, "the consent page");
    drop(response);
    for forcing in [("max_age", "300"), ("max_age", "0"), ("prompt", "login")] {
        let request = with(openid_request("openid"), forcing.0, Some(forcing.1));
        let response = app.client.get(url_for(&request)).dispatch();
        assert_eq!(response.status().code, 302, "{forcing:?}");
        let location = header(&response, "Location").unwrap().to_owned();
        assert!(
            location.starts_with("/accounts/login/"),
            "{forcing:?}: {location}"
        );
        // And with prompt=none instead of a page: login_required.
        drop(response);
        if forcing.0 == "max_age" {
            let silent = with(request, "prompt", Some("none"));
            let response = app.client.get(url_for(&silent)).dispatch();
            let location = header(&response, "Location").unwrap().to_owned();
            assert_eq!(param(&location, "error").as_deref(), Some("login_required"));
        }
    }
    // Logging in again moves auth_time.
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let second = code_flow(&app, &with(openid_request("openid"), "max_age", Some("0")));
    let second_auth = payload_of(second["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    assert_eq!(second_auth, first_auth + 600);
}

#[test]
fn malformed_oidc_parameters_are_refused_by_redirect() {
    let app = logged_in();
    for (name, value) in [
        ("max_age", "-1"),
        ("max_age", "soon"),
        ("claims", "{not json"),
        ("claims", "[]"),
        ("claims", r#"{"userinfo":{"email":1}}"#),
        ("prompt", "sometimes"),
        ("id_token_hint", "not.a.jwt"),
        ("id_token_hint", "garbage"),
    ] {
        let request = with(openid_request("openid"), name, Some(value));
        let response = app.client.get(url_for(&request)).dispatch();
        assert_eq!(response.status().code, 302, "{name}={value}");
        let location = header(&response, "Location").unwrap().to_owned();
        assert_eq!(
            param(&location, "error").as_deref(),
            Some("invalid_request"),
            "{name}={value}: {location}"
        );
    }
}

#[test]
fn id_token_hint_names_the_user_the_client_expects() {
    let app = logged_in();
    let tokens = code_flow(&app, &openid_request("openid"));
    let hint = tokens["id_token"].as_str().unwrap().to_owned();
    // The right user: on as usual (expired hints are fine too).
    app.clock.advance(time::Duration::seconds(40_000));
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let request = with(openid_request("openid"), "id_token_hint", Some(&hint));
    assert_eq!(
        app.client.get(url_for(&request)).dispatch().status().code,
        200
    );
    // Another user is logged in: they must log in as the hinted one.
    assert_eq!(app.login("oauthuser", "oauth123").status().code, 303);
    let response = app.client.get(url_for(&request)).dispatch();
    let location = header(&response, "Location").unwrap().to_owned();
    assert!(location.starts_with("/accounts/login/"), "{location}");
    drop(response);
    let silent = with(request, "prompt", Some("none"));
    let response = app.client.get(url_for(&silent)).dispatch();
    let location = header(&response, "Location").unwrap().to_owned();
    assert_eq!(param(&location, "error").as_deref(), Some("login_required"));
    // A hint with a forged signature is refused.
    let mut parts: Vec<&str> = hint.split('.').collect();
    let forged_payload =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"2","aud":"hash1"}"#);
    parts[1] = &forged_payload;
    let forged = parts.join(".");
    let request = with(openid_request("openid"), "id_token_hint", Some(&forged));
    let response = app.client.get(url_for(&request)).dispatch();
    let location = header(&response, "Location").unwrap().to_owned();
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("invalid_request")
    );
}

#[test]
fn the_claims_parameter_asks_for_claims_by_name() {
    let app = logged_in();
    app.store
        .write_blocking(|tx| {
            let mut admin = tx.user(1)?.unwrap();
            admin.email = "admin@example.com".to_owned();
            admin.first_name = "Ada".to_owned();
            tx.put_user(&admin)
        })
        .unwrap();
    let claims = r#"{"userinfo":{"email":{"essential":true}},"id_token":{"given_name":null}}"#;
    let request = with(openid_request("openid"), "claims", Some(claims));
    let tokens = code_flow(&app, &request);
    let id = payload_of(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["given_name"], "Ada");
    assert!(id.get("email").is_none());
    let (_, info, _) = userinfo(&app, tokens["access_token"].as_str().unwrap());
    assert_eq!(info["email"], "admin@example.com");
    assert!(info.get("given_name").is_none());
}

#[test]
fn consent_post_keeps_the_claims_parameter() {
    // The consent form carries `claims` through the POST.
    let app = logged_in();
    let claims = r#"{"userinfo":{"email":null}}"#;
    let request = with(openid_request("openid"), "claims", Some(claims));
    let page = app.client.get(url_for(&request)).dispatch();
    let html = page.into_string().unwrap();
    assert!(html.contains("name=\"claims\""), "hidden field");
}

fn kids(app: &App) -> Vec<String> {
    let (_, jwks) = get_json(app, "/o/.well-known/jwks.json");
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn signing_kid(token: &str) -> String {
    let header = payload_of(&format!("x.{}", token.split('.').next().unwrap()));
    header["kid"].as_str().unwrap().to_owned()
}

#[test]
fn a_rotated_key_is_published_before_it_signs_and_the_old_one_until_its_tokens_expire() {
    let app = logged_in();
    let state = app
        .client
        .rocket()
        .state::<oxidot::web::AppState>()
        .unwrap();
    let admin = oxidot::oidc::KeyAdmin {
        sealer: None,
        store: &app.store,
        id_token_lifetime: 36_000,
        jwks_max_age: 3600,
    };
    let now = || oxidot::store::Timestamp::from_datetime(app.clock.now());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let before = code_flow(&app, &openid_request("openid"));
    let old_kid = signing_kid(before["id_token"].as_str().unwrap());
    // The configured RSA key cannot be rotated here: it belongs to the configuration.
    let refused = runtime.block_on(admin.rotate(oxidot::store::Algorithm::RS256, false, now()));
    assert!(refused.is_err());
    // ES256 can: a new key, published now, signing after the JWKS cache lifetime.
    app.store
        .write_blocking(|tx| {
            let mut application = tx.application(3)?.unwrap();
            application.algorithm = oxidot::store::Algorithm::ES256;
            tx.put_application(&application)
        })
        .unwrap();
    let es_before = code_flow(&app, &openid_request("openid"));
    let es_old = signing_kid(es_before["id_token"].as_str().unwrap());
    let kids_before = kids(&app);
    let message = runtime
        .block_on(admin.rotate(oxidot::store::Algorithm::ES256, false, now()))
        .unwrap();
    runtime.block_on(state.keys.reload()).unwrap();
    assert!(message.contains("signs at"), "{message}");
    let published = kids(&app);
    assert_eq!(published.len(), 4, "the new key is in JWKS at once");
    let new_kid = published
        .into_iter()
        .find(|kid| !kids_before.contains(kid))
        .unwrap();
    assert_ne!(new_kid, old_kid);
    let during = code_flow(&app, &openid_request("openid"));
    assert_eq!(
        signing_kid(during["id_token"].as_str().unwrap()),
        es_old,
        "not signing yet"
    );
    app.clock.advance(time::Duration::seconds(3600));
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let after = code_flow(&app, &openid_request("openid"));
    let after_kid = signing_kid(after["id_token"].as_str().unwrap());
    assert_eq!(after_kid, new_kid, "the new key signs now");
    // Tokens the old key signed still verify: it stays published…
    assert!(kids(&app).contains(&es_old));
    verified_claims(&app, during["id_token"].as_str().unwrap());
    // …until they have expired.
    app.clock.advance(time::Duration::seconds(36_000));
    assert!(!kids(&app).contains(&es_old));
    assert!(kids(&app).contains(&after_kid));
    // A signing key is replaced, not retired; a waiting one can be withdrawn.
    let refused = runtime.block_on(admin.retire(&after_kid, now()));
    assert!(refused.is_err());
    let waiting = runtime
        .block_on(admin.generate(oxidot::store::Algorithm::EdDSA, now()))
        .unwrap();
    let waiting_kid = waiting
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(':');
    runtime.block_on(state.keys.reload()).unwrap();
    assert!(kids(&app).contains(&waiting_kid.to_owned()));
    runtime.block_on(admin.retire(waiting_kid, now())).unwrap();
    runtime.block_on(state.keys.reload()).unwrap();
    assert!(!kids(&app).contains(&waiting_kid.to_owned()));
}

const AFTER_LOGOUT: &str = "https://rp.example/logged-out";

fn with_logout_uri(app: &App) {
    app.store
        .write_blocking(|tx| {
            let mut application = tx.application(3)?.unwrap();
            application.post_logout_redirect_uris = vec![AFTER_LOGOUT.to_owned()];
            tx.put_application(&application)
        })
        .unwrap();
}

fn logout_query(pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", enc(value)))
        .collect();
    format!("/o/logout/?{}", query.join("&"))
}

/// Confirms the logout page's form (its hidden fields, the CSRF token, "Log out").
fn confirm_logout(app: &App, page: &str) -> (u16, Option<String>) {
    let mut body = "allow=Log+out".to_owned();
    for (name, value) in hidden_fields(page, "/o/logout/") {
        body.push_str(&format!("&{name}={}", enc(&value)));
    }
    let response = app.post_form("/o/logout/", &body);
    (
        response.status().code,
        header(&response, "Location").map(str::to_owned),
    )
}

#[test]
fn rp_initiated_logout_ends_the_session_and_revokes_the_clients_tokens() {
    let app = logged_in();
    with_logout_uri(&app);
    let (_, discovery) = get_json(&app, "/o/.well-known/openid-configuration");
    assert_eq!(
        discovery["end_session_endpoint"],
        "http://localhost/o/logout/"
    );
    let hash1 = code_flow(&app, &openid_request("openid read"));
    let clear1 = {
        let request = with(openid_request("openid read"), "client_id", Some("clear1"));
        let code = param(&approve(&app, &request), "code").unwrap();
        let (_, body) = exchange(
            &app,
            &code,
            &format!("&redirect_uri={}&code_verifier={VERIFIER}", enc(POSTMAN)),
            Some(("clear1", "secret")),
        );
        body
    };
    let hint = hash1["id_token"].as_str().unwrap();
    let path = logout_query(&[
        ("id_token_hint", hint),
        ("post_logout_redirect_uri", AFTER_LOGOUT),
        ("state", "bye-1"),
    ]);
    let page = app.client.get(path.clone()).dispatch();
    assert_eq!(page.status().code, 200);
    let html = page.into_string().unwrap();
    assert!(
        html.contains("Log out?") && html.contains("hashed secret 1"),
        "{html}"
    );
    // Still logged in until the user confirms; a POST without the CSRF token changes nothing.
    assert_eq!(app.session_count(), 1);
    let forged = app.post_form(
        "/o/logout/",
        &format!(
            "allow=Log+out&id_token_hint={hint}&post_logout_redirect_uri={}",
            enc(AFTER_LOGOUT)
        ),
    );
    assert_eq!(forged.status().code, 403);
    drop(forged);
    assert_eq!(app.session_count(), 1);

    let (status, location) = confirm_logout(&app, &html);
    assert_eq!(status, 302);
    assert_eq!(
        location.as_deref(),
        Some("https://rp.example/logged-out?state=bye-1")
    );
    assert_eq!(app.session_count(), 0);
    assert_eq!(app.signed_in_as(), None);
    // hash1's tokens are revoked; clear1's are not.
    let access = |tokens: &Value| tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(hello(&app, &access(&hash1)), 401);
    assert_eq!(hello(&app, &access(&clear1)), 200);

    // Logged out already: straight back to the client.
    let response = app.client.get(path).dispatch();
    assert_eq!(response.status().code, 302);
    assert_eq!(
        header(&response, "Location"),
        Some("https://rp.example/logged-out?state=bye-1")
    );
}

#[test]
fn rp_initiated_logout_never_redirects_where_it_should_not() {
    let app = logged_in();
    with_logout_uri(&app);
    let tokens = code_flow(&app, &openid_request("openid"));
    let hint = tokens["id_token"].as_str().unwrap();
    for pairs in [
        vec![
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        vec![
            ("client_id", "hash1"),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        vec![("post_logout_redirect_uri", AFTER_LOGOUT)],
        vec![("id_token_hint", hint), ("client_id", "clear1")],
        vec![("id_token_hint", "not-a-token")],
        vec![("client_id", "nobody")],
    ] {
        let response = app.client.get(logout_query(&pairs)).dispatch();
        assert_eq!(response.status().code, 400, "{pairs:?}");
        assert!(header(&response, "Location").is_none());
    }
    assert_eq!(app.session_count(), 1, "nothing changed");
    // client_id alone names the client; the expired hint is accepted (the default).
    app.clock.advance(time::Duration::seconds(40_000));
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let page = app
        .client
        .get(logout_query(&[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
        ]))
        .dispatch();
    assert_eq!(page.status().code, 200);
    let (status, location) = confirm_logout(&app, &page.into_string().unwrap());
    assert_eq!((status, location.as_deref()), (302, Some(AFTER_LOGOUT)));
}

#[test]
fn rp_initiated_logout_without_prompt_when_the_hint_names_the_user() {
    let app = App::with(
        |settings| {
            settings
                .oauth2_provider
                .oidc_rp_initiated_logout_always_prompt = false;
            settings
                .oauth2_provider
                .oidc_rp_initiated_logout_accept_expired_tokens = false;
        },
        oxidot::server::demo_fixture_files(),
    );
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    with_logout_uri(&app);
    let tokens = code_flow(&app, &openid_request("openid"));
    let hint = tokens["id_token"].as_str().unwrap();
    let response = app
        .client
        .get(logout_query(&[
            ("id_token_hint", hint),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
        ]))
        .dispatch();
    assert_eq!(response.status().code, 302);
    assert_eq!(header(&response, "Location"), Some(AFTER_LOGOUT));
    drop(response);
    assert_eq!(app.session_count(), 0);
    // Expired hints are refused under this setting.
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    app.clock.advance(time::Duration::seconds(36_001));
    let response = app
        .client
        .get(logout_query(&[("id_token_hint", hint)]))
        .dispatch();
    assert_eq!(response.status().code, 400);
}

/// Lets application `pk` use `grants` only.
fn allow(app: &App, pk: u64, grants: Vec<oxidot::store::GrantType>) {
    app.store
        .write_blocking(move |tx| {
            let mut application = tx.application(pk)?.unwrap();
            application.grant_types = grants.clone();
            tx.put_application(&application)
        })
        .unwrap();
}

fn fragment(location: &str) -> std::collections::HashMap<String, String> {
    let (_, fragment) = location
        .split_once('#')
        .unwrap_or_else(|| panic!("no fragment in {location}"));
    url::form_urlencoded::parse(fragment.as_bytes())
        .into_owned()
        .collect()
}

fn front_channel(response_type: &str, scope: &str) -> Vec<(&'static str, String)> {
    with(openid_request(scope), "response_type", Some(response_type))
}

#[test]
fn implicit_response_types_answer_in_the_fragment() {
    use oxidot::store::GrantType;
    let app = logged_in();
    allow(&app, 3, vec![GrantType::Implicit]);
    app.store
        .write_blocking(|tx| {
            let mut admin = tx.user(1)?.unwrap();
            admin.first_name = "Ada".to_owned();
            tx.put_user(&admin)
        })
        .unwrap();

    // id_token token: both, in the fragment, never the query.
    let location = approve(&app, &front_channel("id_token token", "openid profile"));
    assert!(!location.contains('?'), "{location}");
    let answer = fragment(&location);
    assert_eq!(answer["state"], "xyz-123");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], "36000");
    assert_eq!(answer["scope"], "openid profile");
    assert!(!answer.contains_key("code") && !answer.contains_key("refresh_token"));
    let (claims, _) = verified_claims(&app, &answer["id_token"]);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["at_hash"], left_half_sha256(&answer["access_token"]));
    assert!(claims.get("given_name").is_none(), "claims go to userinfo");
    let (status, info, _) = userinfo(&app, &answer["access_token"]);
    assert_eq!((status, info["given_name"].as_str()), (200, Some("Ada")));

    // id_token alone: the profile claims travel in the ID token.
    let answer = fragment(&approve(&app, &front_channel("id_token", "openid profile")));
    assert!(!answer.contains_key("access_token"));
    let (claims, _) = verified_claims(&app, &answer["id_token"]);
    assert_eq!(claims["given_name"], "Ada");
    assert!(claims.get("at_hash").is_none());

    // Plain OAuth implicit: an access token, no ID token.
    let answer = fragment(&approve(
        &app,
        &with(tutorial_request(), "response_type", Some("token")),
    ));
    assert!(answer.contains_key("access_token") && !answer.contains_key("id_token"));
    assert_eq!(answer["scope"], "read write");

    // This client may not use the code flow any more.
    let response = app
        .client
        .get(url_for(&openid_request("openid")))
        .dispatch();
    let location = header(&response, "Location").unwrap();
    assert_eq!(
        param(location, "error").as_deref(),
        Some("unauthorized_client")
    );
}

#[test]
fn hybrid_response_types_carry_c_hash_and_at_hash() {
    use oxidot::store::GrantType;
    let app = logged_in();
    allow(&app, 3, vec![GrantType::OpenidHybrid]);
    for response_type in ["code id_token", "code token", "code id_token token"] {
        let answer = fragment(&approve(&app, &front_channel(response_type, "openid")));
        let code = answer["code"].clone();
        assert_eq!(
            answer.contains_key("access_token"),
            response_type.split(' ').any(|word| word == "token"),
            "{response_type}"
        );
        if response_type.contains("id_token") {
            let (claims, _) = verified_claims(&app, &answer["id_token"]);
            assert_eq!(claims["c_hash"], left_half_sha256(&code), "{response_type}");
            assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
            match answer.get("access_token") {
                Some(token) => assert_eq!(claims["at_hash"], left_half_sha256(token)),
                None => assert!(claims.get("at_hash").is_none()),
            }
        } else {
            assert!(!answer.contains_key("id_token"));
        }
        // The code is exchanged as in the code flow, and brings its own ID token.
        let (status, tokens) = tutorial_exchange(&app, &code);
        assert_eq!(status, 200, "{response_type}: {tokens}");
        let claims = payload_of(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    }
}

#[test]
fn code_token_answers_its_access_token_in_the_fragment() {
    use oxidot::store::GrantType;
    let app = logged_in();
    allow(&app, 3, vec![GrantType::OpenidHybrid]);
    let answer = fragment(&approve(&app, &front_channel("code token", "openid read")));
    assert!(answer.contains_key("code") && answer.contains_key("access_token"));
    assert!(!answer.contains_key("id_token"));
    let response = app
        .client
        .get("/api/hello")
        .header(Header::new(
            "Authorization",
            format!("Bearer {}", answer["access_token"]),
        ))
        .dispatch();
    assert_eq!(response.status().code, 200);
}

#[test]
fn front_channel_requests_are_checked_and_refused_in_their_response_mode() {
    use oxidot::store::GrantType;
    let app = logged_in();
    allow(
        &app,
        3,
        vec![GrantType::Implicit, GrantType::AuthorizationCode],
    );
    for (pairs, error) in [
        (
            with(front_channel("id_token", "openid"), "nonce", None),
            "invalid_request",
        ),
        (front_channel("id_token", "read"), "invalid_request"),
        (
            with(
                front_channel("token", "read"),
                "response_mode",
                Some("query"),
            ),
            "invalid_request",
        ),
        (
            with(
                front_channel("id_token token", "openid"),
                "response_mode",
                Some("smoke"),
            ),
            "invalid_request",
        ),
        (
            front_channel("code id_token", "openid"),
            "unauthorized_client",
        ),
    ] {
        let response = app.client.get(url_for(&pairs)).dispatch();
        assert_eq!(response.status().code, 302, "{pairs:?}");
        let location = header(&response, "Location").unwrap();
        assert!(
            !location.contains('?'),
            "errors too stay out of the query: {location}"
        );
        let answer = fragment(location);
        assert_eq!(answer["error"], error, "{pairs:?}");
        assert_eq!(answer["state"], "xyz-123");
    }
}

#[test]
fn form_post_answers_with_a_self_submitting_form() {
    let app = logged_in();
    let request = with(openid_request("openid"), "response_mode", Some("form_post"));
    let page = app.client.get(url_for(&request)).dispatch();
    assert_eq!(page.status().code, 200, "the consent page");
    let html = page.into_string().unwrap();
    let mut body = "allow=Authorize".to_owned();
    for (name, value) in hidden_fields(&html, "/o/authorize/") {
        body.push_str(&format!("&{name}={}", enc(&value)));
    }
    let answer = app.post_form("/o/authorize/", &body);
    assert_eq!(answer.status().code, 200);
    assert!(header(&answer, "Location").is_none());
    assert!(header(&answer, "Content-Security-Policy").is_some());
    let html = answer.into_string().unwrap();
    assert!(
        html.contains("action=\"https:&#x2F;&#x2F;oauth.pstmn.io&#x2F;v1&#x2F;callback\""),
        "{html}"
    );
    assert!(html.contains("/static/form_post.js"));
    let fields = hidden_fields(
        &html,
        "https:&#x2F;&#x2F;oauth.pstmn.io&#x2F;v1&#x2F;callback",
    );
    let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["code", "state"]);
    let (status, _) = tutorial_exchange(&app, &fields[0].1);
    assert_eq!(status, 200);
    // The script that submits it is served.
    let script = app.client.get("/static/form_post.js").dispatch();
    assert_eq!(script.status().code, 200);
    // A refusal goes the same way.
    let mut body = String::new();
    for (name, value) in hidden_fields(&html_of_consent(&app, &request), "/o/authorize/") {
        body.push_str(&format!("&{name}={}", enc(&value)));
    }
    let refused = app.post_form("/o/authorize/", &format!("cancel=Cancel{body}"));
    assert_eq!(refused.status().code, 200);
    let html = refused.into_string().unwrap();
    assert!(
        html.contains("name=\"error\" value=\"access_denied\""),
        "{html}"
    );
}

fn html_of_consent(app: &App, request: &[(&'static str, String)]) -> String {
    let page = app.client.get(url_for(request)).dispatch();
    assert_eq!(page.status().code, 200);
    page.into_string().unwrap()
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    let app = App::with(
        |settings| settings.trusted_proxies = vec!["10.0.0.0/8".to_owned()],
        oxidot::server::demo_fixture_files(),
    );
    let issuer_seen_from = |peer: &str| {
        let response = app
            .client
            .get("/o/.well-known/openid-configuration")
            .remote(peer.parse().unwrap())
            .header(Header::new("X-Forwarded-Proto", "https"))
            .header(Header::new("X-Forwarded-Host", "id.example.com"))
            .dispatch();
        let body: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
        body["issuer"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        issuer_seen_from("10.1.2.3:4000"),
        "https://id.example.com/o"
    );
    assert_eq!(issuer_seen_from("203.0.113.5:4000"), "http://localhost/o");

    // The login throttle counts the forwarded client, not the proxy: one client locked out
    // by its failures does not lock out another behind the same proxy.
    let fail_from = |client: &str, username: &str| {
        // The cookie jar is read when a request is built: fetch the CSRF cookie first.
        let csrf = app.csrf();
        app.client
            .post("/accounts/login/")
            .remote("10.0.0.1:5000".parse().unwrap())
            .header(ContentType::Form)
            .header(Header::new(
                "X-Forwarded-For",
                format!("{client}, 10.0.0.2"),
            ))
            .body(format!(
                "csrfmiddlewaretoken={csrf}&username={username}&password=wrong"
            ))
            .dispatch()
            .status()
            .code
    };
    let per_ip = oxidot::config::LoginThrottle::default().max_failures_per_ip;
    for attempt in 0..per_ip {
        assert_eq!(fail_from("198.51.100.7", &format!("nobody{attempt}")), 400);
    }
    assert_eq!(fail_from("198.51.100.7", "someone"), 429);
    assert_eq!(fail_from("198.51.100.8", "someone"), 400);
}

#[test]
fn oidc_endpoints_answer_bad_input_with_4xx_and_change_nothing() {
    let app = logged_in();
    with_logout_uri(&app);
    let tokens = code_flow(&app, &openid_request("openid"));
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let before = (
        app.session_count(),
        app.store.read(|tx| tx.access_token_count()).unwrap(),
    );
    let big = "a".repeat(200 * 1024);
    let post = |path: &str, content_type: ContentType, body: Vec<u8>| {
        app.client
            .post(path.to_owned())
            .header(content_type)
            .body(body)
            .dispatch()
            .status()
            .code
    };
    for (path, content_type, body) in [
        (
            "/o/userinfo/",
            ContentType::Form,
            b"access_token=\xff\xfe".to_vec(),
        ),
        (
            "/o/userinfo/",
            ContentType::Form,
            format!("access_token={access}&access_token={access}").into_bytes(),
        ),
        (
            "/o/userinfo/",
            ContentType::Form,
            format!("access_token={big}").into_bytes(),
        ),
        (
            "/o/userinfo/",
            ContentType::JSON,
            format!("{{\"access_token\":\"{access}\"}}").into_bytes(),
        ),
        ("/o/logout/", ContentType::Form, b"client_id=\xff".to_vec()),
        (
            "/o/logout/",
            ContentType::Form,
            b"client_id=hash1&client_id=hash2".to_vec(),
        ),
        (
            "/o/logout/",
            ContentType::Form,
            format!("state={big}").into_bytes(),
        ),
    ] {
        let status = post(path, content_type.clone(), body);
        assert!(
            (400..500).contains(&status),
            "{path} {content_type}: {status}"
        );
    }
    for path in [
        "/o/logout/?client_id=%FF",
        "/o/logout/?state=a&state=b",
        "/o/logout/?id_token_hint=a.b.c",
        "/o/authorize/?client_id=hash1&redirect_uri=https%3A%2F%2Foauth.pstmn.io%2Fv1%2Fcallback&response_type=code&response_mode=query&response_mode=fragment",
    ] {
        let response = app.client.get(path).dispatch();
        let status = response.status().code;
        assert!((300..500).contains(&status), "{path}: {status}");
        if status == 302 {
            let location = header(&response, "Location").unwrap();
            assert_eq!(
                param(location, "error").as_deref(),
                Some("invalid_request"),
                "{path}"
            );
        }
    }
    for path in [
        "/o/.well-known/jwks.json",
        "/o/.well-known/openid-configuration",
    ] {
        let status = post(path, ContentType::Form, b"x=1".to_vec());
        assert_eq!(status, 405, "{path}");
    }
    let after = (
        app.session_count(),
        app.store.read(|tx| tx.access_token_count()).unwrap(),
    );
    assert_eq!(before, after, "nothing changed");
    assert_eq!(userinfo(&app, &access).0, 200, "the token still works");
}
