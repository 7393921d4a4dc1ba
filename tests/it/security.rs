//! Regression tests for the findings of the black-box security review (issue 12), each driven
//! over HTTP and each failing before its fix.

use crate::admin::{page, post, signed_in, snapshot};
use crate::flow::{POSTMAN, VERIFIER, challenge, url_for, with};
use crate::support::enc;

fn self_registration(extra: &str) -> String {
    format!(
        "name=Trusted&client_id=&client_type=public&grant_types=authorization-code\
         &redirect_uris={}&algorithm={extra}",
        enc(POSTMAN)
    )
}

/// The authorize URL the tutorial's Postman request would use for `client_id`.
fn authorize_url(client_id: &str, prompt: Option<&str>) -> String {
    let pairs = vec![
        ("response_type", "code".to_owned()),
        ("client_id", client_id.to_owned()),
        ("redirect_uri", POSTMAN.to_owned()),
        ("scope", "read".to_owned()),
        ("state", "s".to_owned()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".to_owned()),
    ];
    url_for(&with(pairs, "prompt", prompt))
}

#[test]
fn self_service_registration_cannot_skip_consent_or_take_trusted_grants() {
    let app = signed_in("mallory", false, false);
    for (extra, refusal) in [
        (
            "&skip_authorization=on",
            "Only staff can let an application skip the consent page",
        ),
        (
            "&grant_types=password",
            "Only staff can allow the Resource owner password-based grant",
        ),
        (
            "&grant_types=client-credentials",
            "Only staff can allow the Client credentials grant",
        ),
        (
            "&grant_types=implicit",
            "Only staff can allow the Implicit grant",
        ),
        (
            "&allowed_origins=https%3A%2F%2F*.example.com",
            "wildcards are not supported",
        ),
    ] {
        let before = snapshot(&app);
        let (status, html) = post(&app, "/o/applications/register/", &self_registration(extra));
        assert_eq!(status, 400, "{extra}: {html}");
        assert!(html.contains(refusal), "{extra}: {html}");
        assert_eq!(snapshot(&app), before, "{extra} changed the store");
    }
    // The self-service form does not even offer them.
    let (_, form) = page(&app, "/o/applications/register/");
    assert!(!form.contains("skip_authorization") && !form.contains("value=\"password\""));

    // A plain registration works, and its authorization asks every user for consent: the
    // superuser following mallory's link sees the consent page, and prompt=none is refused.
    let (status, html) = post(&app, "/o/applications/register/", &self_registration(""));
    assert_eq!(status, 303, "{html}");
    let client_id = app
        .store
        .read(|tx| tx.applications())
        .unwrap()
        .into_iter()
        .find(|application| application.name == "Trusted")
        .unwrap()
        .client_id;
    // The superuser follows mallory's link (same browser, now signed in as admin).
    assert_eq!(app.login("admin", "admin123").status().code, 303);
    let victim = &app;
    let consent = victim
        .client
        .get(authorize_url(&client_id, None))
        .dispatch();
    assert_eq!(consent.status().code, 200);
    assert!(consent.into_string().unwrap().contains("Authorize"));
    let silent = victim
        .client
        .get(authorize_url(&client_id, Some("none")))
        .dispatch();
    assert_eq!(silent.status().code, 302);
    let location = silent.headers().get_one("Location").unwrap().to_owned();
    assert!(location.contains("error=consent_required"), "{location}");
}

#[test]
fn staff_trust_flags_survive_the_owners_edits() {
    let app = signed_in("carol", false, false);
    let (status, _) = post(&app, "/o/applications/register/", &self_registration(""));
    assert_eq!(status, 303);
    let mut application = app
        .store
        .read(|tx| tx.applications())
        .unwrap()
        .into_iter()
        .find(|application| application.name == "Trusted")
        .unwrap();
    let id = application.id;
    // Staff trust it (as an admin would in the console).
    application.skip_authorization = true;
    app.store
        .write_blocking(move |tx| tx.put_application(&application))
        .unwrap();
    let renamed = self_registration("").replace("name=Trusted", "name=Renamed");
    let (status, _) = post(&app, &format!("/o/applications/{id}/update/"), &renamed);
    assert_eq!(status, 303);
    let saved = app.store.read(|tx| tx.application(id)).unwrap().unwrap();
    assert_eq!(saved.name, "Renamed");
    assert!(
        saved.skip_authorization,
        "the owner's edit dropped what staff set"
    );
}
