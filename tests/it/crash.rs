//! A crash (SIGKILL) under concurrent token issuance loses nothing that was answered: every
//! token the server answered 200 for works after a restart, and the file passes
//! `oxidot check --db`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::{Server, oxidot};

#[test]
fn every_token_answered_before_a_kill_works_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sample.yaml"),
        std::fs::read(crate::fixtures::sample_dir().join("dot-3.4.1-dumpdata.yaml")).unwrap(),
    )
    .unwrap();
    assert!(
        oxidot(dir.path())
            .args(["loaddata", "sample.yaml"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    );
    let mut server = Server::start(dir.path(), &["serve"]);
    // The first check of the client's secret is slow (DOT's PBKDF2 hash, upgraded to argon2
    // on success); after it the secret is remembered and tokens flow.
    let first = reqwest::blocking::Client::new()
        .post(format!("{}/o/token/", server.base))
        .basic_auth("cc-client", Some("cc-client-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .unwrap();
    assert_eq!(first.status().as_u16(), 200);
    let answered = Arc::new(Mutex::new(Vec::new()));
    let refusals = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let issuers: Vec<_> = (0..4)
        .map(|_| {
            let (base, answered, stop) = (server.base.clone(), answered.clone(), stop.clone());
            let refusals = refusals.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let response = match client
                        .post(format!("{base}/o/token/"))
                        .basic_auth("cc-client", Some("cc-client-secret"))
                        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
                        .send()
                    {
                        Ok(response) => response,
                        Err(error) => {
                            let mut refusals = refusals.lock().unwrap();
                            if refusals.len() < 3 {
                                refusals.push(error.to_string());
                            }
                            continue;
                        }
                    };
                    if response.status().as_u16() != 200 {
                        let mut refusals = refusals.lock().unwrap();
                        if refusals.len() < 3 {
                            refusals.push(response.text().unwrap_or_default());
                        }
                        continue;
                    }
                    let Ok(text) = response.text() else { continue };
                    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let token = body["access_token"].as_str().unwrap().to_owned();
                    answered.lock().unwrap().push(token);
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    stop.store(true, Ordering::Relaxed);
    for issuer in issuers {
        issuer.join().unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 50,
        "only {} tokens issued; refusals: {:?}",
        answered.len(),
        refusals.lock().unwrap()
    );

    let server = Server::start(dir.path(), &["serve"]);
    let client = reqwest::blocking::Client::new();
    for token in &answered {
        let status = client
            .get(format!("{}/api/hello", server.base))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status();
        assert_eq!(
            status.as_u16(),
            200,
            "a token answered before the crash is gone"
        );
    }
    assert!(server.terminate());
    let check = oxidot(dir.path()).args(["check", "--db"]).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
