//! What the server says about itself: RFC 8414 authorization server metadata and OpenID
//! Connect Discovery 1.0. Both come from one function, so they cannot disagree, and every value
//! is true of what the server does.

use serde_json::{Map, Value, json};

use crate::config::Settings;
use crate::oidc::claims::{TOKEN_CLAIMS, USER_CLAIMS};

const CLIENT_AUTH: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

fn insert(map: &mut Map<String, Value>, name: &str, value: Value) {
    map.insert(name.to_owned(), value);
}

/// RFC 8414 metadata; with `openid`, the OpenID Provider metadata too.
pub fn metadata(settings: &Settings, issuer: &str, openid: bool) -> Value {
    let provider = &settings.oauth2_provider;
    let pkce: Vec<&str> = if provider.pkce_plain_allowed {
        vec!["S256", "plain"]
    } else {
        vec!["S256"]
    };
    let oidc = provider.oidc_enabled;
    let mut map = Map::new();
    insert(&mut map, "issuer", json!(issuer));
    insert(
        &mut map,
        "authorization_endpoint",
        json!(format!("{issuer}/authorize/")),
    );
    insert(
        &mut map,
        "token_endpoint",
        json!(format!("{issuer}/token/")),
    );
    if oidc {
        insert(
            &mut map,
            "userinfo_endpoint",
            json!(format!("{issuer}/userinfo/")),
        );
        insert(
            &mut map,
            "jwks_uri",
            json!(format!("{issuer}/.well-known/jwks.json")),
        );
    }
    insert(
        &mut map,
        "revocation_endpoint",
        json!(format!("{issuer}/revoke_token/")),
    );
    insert(
        &mut map,
        "introspection_endpoint",
        json!(format!("{issuer}/introspect/")),
    );
    if openid && oidc && provider.oidc_rp_initiated_logout_enabled {
        insert(
            &mut map,
            "end_session_endpoint",
            json!(format!("{issuer}/logout/")),
        );
    }
    insert(
        &mut map,
        "device_authorization_endpoint",
        json!(format!("{issuer}/device-authorization/")),
    );
    insert(
        &mut map,
        "scopes_supported",
        json!(provider.scopes.keys().collect::<Vec<_>>()),
    );
    let response_types = if oidc {
        json!([
            "code",
            "token",
            "id_token",
            "id_token token",
            "code id_token",
            "code token",
            "code id_token token",
        ])
    } else {
        json!(["code", "token"])
    };
    insert(&mut map, "response_types_supported", response_types);
    insert(
        &mut map,
        "response_modes_supported",
        json!(["query", "fragment", "form_post"]),
    );
    insert(
        &mut map,
        "grant_types_supported",
        json!([
            "authorization_code",
            "implicit",
            "refresh_token",
            "client_credentials",
            "password",
            "urn:ietf:params:oauth:grant-type:device_code",
        ]),
    );
    insert(
        &mut map,
        "token_endpoint_auth_methods_supported",
        json!(CLIENT_AUTH),
    );
    insert(
        &mut map,
        "revocation_endpoint_auth_methods_supported",
        json!(CLIENT_AUTH),
    );
    insert(
        &mut map,
        "introspection_endpoint_auth_methods_supported",
        json!(["client_secret_basic", "client_secret_post"]),
    );
    insert(&mut map, "code_challenge_methods_supported", json!(pkce));
    if openid && oidc {
        insert(&mut map, "subject_types_supported", json!(["public"]));
        insert(
            &mut map,
            "id_token_signing_alg_values_supported",
            json!(["RS256", "ES256", "EdDSA", "HS256"]),
        );
        let claims: Vec<&str> = TOKEN_CLAIMS
            .iter()
            .copied()
            .chain(USER_CLAIMS.iter().map(|(name, _)| *name))
            .collect();
        insert(&mut map, "claims_supported", json!(claims));
        insert(
            &mut map,
            "prompt_values_supported",
            json!(["none", "login", "consent"]),
        );
        insert(&mut map, "claims_parameter_supported", json!(true));
        insert(&mut map, "request_parameter_supported", json!(false));
        insert(&mut map, "request_uri_parameter_supported", json!(false));
    }
    Value::Object(map)
}
