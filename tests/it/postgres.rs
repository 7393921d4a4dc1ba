//! The PostgreSQL backend from the command line: `oxidot migrate` prepares a database once
//! however often it runs; a database that cannot be used stops a command with a message
//! naming it, and what works on a redb file only says so, never taking the URL for a file
//! name; the URL's password never reaches a message. Tests that need a server use `OXIDOT_TEST_POSTGRES` (see
//! `.ci/postgres`) and skip without it unless `OXIDOT_REQUIRE_POSTGRES` is set.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::{http_login, run, text};
use crate::fixtures::{sample_dir, token_dump};
use crate::support::{Server, bearer_hello as hello, free_port, http_client, oxidot};

/// A new database on the test server, as a URL; None (skipped) without a server.
pub fn fresh_database_url() -> Option<String> {
    let Ok(base) = std::env::var("OXIDOT_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("OXIDOT_REQUIRE_POSTGRES").is_none(),
            "OXIDOT_REQUIRE_POSTGRES is set but OXIDOT_TEST_POSTGRES names no server"
        );
        eprintln!("skipped: postgres: no PostgreSQL (set OXIDOT_TEST_POSTGRES, see .ci/postgres)");
        return None;
    };
    let name = format!(
        "oxidot_cli_{}",
        std::process::id() as u64 * 1000 + free_port() as u64
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                .await
                .expect("the test PostgreSQL answers");
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        });
    let (prefix, _) = base.rsplit_once('/').expect("a URL with a database");
    Some(format!("{prefix}/{name}"))
}

#[test]
fn migrate_prepares_a_postgres_database_once() {
    let Some(url) = fresh_database_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), &["migrate", "--database", &url], &[]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("created with the current schema"),
        "{}",
        text(&first)
    );
    let again = run(dir.path(), &["migrate"], &[("OXIDOT_DATABASE", &url)]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("up to date"), "{}", text(&again));
    // Nothing was written where the server runs: the URL is not a file.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_postgres_url_is_never_taken_for_a_file_and_its_password_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on.
    let port = free_port();
    let url = format!("postgres://oxidot:s3cret-pass@127.0.0.1:{port}/tokens");
    for args in [
        vec!["serve", "--database", url.as_str()],
        vec![
            "createsuperuser",
            "--no-input",
            "--username",
            "a",
            "--database",
            url.as_str(),
        ],
        vec!["cleartokens", "--database", url.as_str()],
    ] {
        let output = run(
            dir.path(),
            &args,
            &[("OXIDOT_SUPERUSER_PASSWORD", "pw-123456789")],
        );
        let said = text(&output);
        assert!(!output.status.success(), "{args:?}: {said}");
        assert!(
            said.contains(&format!(
                "database: cannot use PostgreSQL database \"tokens\" on 127.0.0.1:{port}"
            )),
            "{args:?}: {said}"
        );
        assert!(!said.contains("s3cret"), "{said}");
    }
    // What works on a redb file only says so, naming the database, before connecting.
    for (args, says) in [
        (vec!["compact"], "autovacuum"),
        (vec!["restore", "backup.redb"], "pg_restore"),
        (vec!["demo"], "redb file"),
    ] {
        let mut args = args;
        args.extend(["--database", url.as_str()]);
        let output = run(dir.path(), &args, &[]);
        let said = text(&output);
        assert!(!output.status.success(), "{args:?}: {said}");
        assert!(
            said.contains(&format!(
                "database: PostgreSQL database \"tokens\" on 127.0.0.1:{port}"
            )) && said.contains(says),
            "{args:?}: {said}"
        );
        assert!(!said.contains("s3cret"), "{said}");
    }
    let migrate = run(dir.path(), &["migrate", "--database", &url], &[]);
    let said = text(&migrate);
    assert!(!migrate.status.success(), "{said}");
    assert!(
        said.contains("database: cannot use PostgreSQL database"),
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");
    let broken = run(
        dir.path(),
        &["migrate", "--database", "postgres://[broken"],
        &[],
    );
    assert!(!broken.status.success());
    assert!(text(&broken).contains("not valid"), "{}", text(&broken));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file was created"
    );
}

/// One statement's single value (as text), read straight from the database.
pub fn sql_text(url: &str, sql: &str) -> Option<String> {
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .query_opt(sql, &[])
            .await
            .unwrap()
            .map(|row| row.get::<_, String>(0))
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Rows in a table, as the database counts them.
fn rows(url: &str, table: &str) -> u64 {
    sql_text(url, &format!("SELECT count(*)::text FROM {table}"))
        .and_then(|count| count.parse().ok())
        .unwrap_or(0)
}

/// The DOT 3.4.1 sample dump beside the command, as `sample.yaml`.
fn write_sample(dir: &Path) {
    std::fs::copy(
        sample_dir().join("dot-3.4.1-dumpdata.yaml"),
        dir.join("sample.yaml"),
    )
    .unwrap();
}

fn loaddata(dir: &Path, url: &str, files: &[&str]) -> std::process::Output {
    let mut args = vec!["loaddata"];
    args.extend(files);
    args.extend(["--database", url]);
    run(dir, &args, &[])
}

fn refresh(base: &str, client: (&str, &str), token: &str) -> (u16, serde_json::Value) {
    let response = http_client()
        .post(format!("{base}/o/token/"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().unwrap_or_default();
    (status, serde_json::from_str(&body).unwrap_or_default())
}

#[test]
fn loaddata_on_postgres_moves_a_dot_deployment_while_a_server_runs() {
    let Some(url) = fresh_database_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let migrated = run(dir.path(), &["migrate", "--database", &url], &[]);
    assert!(migrated.status.success(), "{}", text(&migrated));
    let server = Server::start_with(dir.path(), &["serve"], &[("OXIDOT_DATABASE", &url)]);
    write_sample(dir.path());
    // 6,000 DOT token pairs, refresh tokens first: three steps, pairs split across them.
    std::fs::write(dir.path().join("bulk.json"), token_dump(6000, true)).unwrap();
    let loaded = loaddata(dir.path(), &url, &["sample.yaml", "bulk.json"]);
    assert!(loaded.status.success(), "{}", text(&loaded));
    assert!(
        text(&loaded).contains("Installed 12015 object(s) from 2 fixture(s)"),
        "{}",
        text(&loaded)
    );
    // The running server serves what was loaded: DOT's users sign in, its tokens work, its
    // refresh tokens refresh in their families.
    assert_eq!(http_login(&server.base, "alice", "alice-pass-123"), 303);
    assert_eq!(hello(&server.base, "bulk-access-00006000"), 200);
    let (status, body) = refresh(&server.base, ("hash1", "hashed"), "bulk-refresh-00006000");
    assert_eq!(status, 200, "{body}");
    assert_eq!(hello(&server.base, "bulk-access-00006000"), 401, "paired");
    assert_eq!(hello(&server.base, "bulk-access-00005999"), 200);
    let (status, body) = refresh(
        &server.base,
        ("password-client", "password-client-secret"),
        "fpEjx5LMSle57388xsks2YgrgNsxmC",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "openid read");
    assert_eq!(rows(&url, "oxidot_load_access_by_pk"), 0, "staging emptied");

    // A bad file loads nothing, naming the file and record; the database is as it was.
    let before = run(dir.path(), &["dumpdata", "--database", &url], &[]);
    assert!(before.status.success(), "{}", text(&before));
    std::fs::write(
        dir.path().join("taken.yaml"),
        "- model: auth.user\n  pk: 90\n  fields: {username: newcomer, password: ''}\n\
         - model: auth.user\n  pk: 91\n  fields: {username: alice, password: ''}\n",
    )
    .unwrap();
    let refused = loaddata(dir.path(), &url, &["taken.yaml"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains(
            "taken.yaml: record 2 (auth.user pk=91): a user named \"alice\" already exists"
        ),
        "{}",
        text(&refused)
    );
    let after = run(dir.path(), &["dumpdata", "--database", &url], &[]);
    assert_eq!(text(&after), text(&before), "nothing changed");
    assert!(server.terminate());
}

#[test]
fn a_load_killed_on_postgres_leaves_nothing_and_a_second_load_waits_for_the_first() {
    let Some(url) = fresh_database_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_sample(dir.path());
    let loaded = loaddata(dir.path(), &url, &["sample.yaml"]);
    assert!(loaded.status.success(), "{}", text(&loaded));
    // A new user first (the load's first step), then 10,000 token pairs.
    let dump = token_dump(10_000, false).replacen(
        '[',
        r#"[{"model": "auth.user", "pk": 77, "fields": {"username": "bulk-user", "password": ""}},"#,
        1,
    );
    std::fs::write(dir.path().join("bulk.json"), dump).unwrap();
    let mut load = oxidot(dir.path())
        .args(["loaddata", "bulk.json", "--database", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Until the load writes its tokens (the database shows the statement it runs).
    let started = Instant::now();
    while sql_text(
        &url,
        "SELECT 'writing' FROM pg_stat_activity WHERE state <> 'idle' AND \
         query LIKE 'INSERT INTO oxidot_load_access_by_pk%'",
    )
    .is_none()
    {
        assert!(
            load.try_wait().unwrap().is_none(),
            "the load ended before it was seen writing tokens"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the load never wrote"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = loaddata(dir.path(), &url, &["sample.yaml"]);
    assert!(!second.status.success());
    assert!(
        text(&second).contains("another loaddata is in progress"),
        "{}",
        text(&second)
    );
    assert!(load.try_wait().unwrap().is_none(), "killed mid-way");
    load.kill().unwrap();
    load.wait().unwrap();
    // The server rolls the dead connection's transaction back: nothing of the load stays.
    let gone = Instant::now();
    while sql_text(
        &url,
        "SELECT 'running' FROM pg_stat_activity WHERE query LIKE '%oxidot_load_%' AND \
         pid <> pg_backend_pid() AND state <> 'idle'",
    )
    .is_some()
    {
        assert!(gone.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(rows(&url, "oxidot_access_tokens"), 2);
    assert_eq!(rows(&url, "oxidot_users WHERE id = 77"), 0);
    assert_eq!(rows(&url, "oxidot_load_access_by_pk"), 0);
    // The lock went with it: the load runs again, whole.
    let again = loaddata(dir.path(), &url, &["bulk.json"]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(rows(&url, "oxidot_access_tokens"), 10_002);
    assert_eq!(rows(&url, "oxidot_users WHERE id = 77"), 1);
    // Access tokens came before their refresh tokens: every pair was joined (the sample's
    // one pair too).
    assert_eq!(
        rows(
            &url,
            "oxidot_access_tokens WHERE jsonb_typeof(record->'refresh_token') = 'array' \
             AND family IS NOT NULL"
        ),
        10_001
    );
}

#[test]
fn a_nul_in_a_credential_is_refused_on_postgres_never_sent_to_it() {
    let Some(url) = fresh_database_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), &["serve"], &[("OXIDOT_DATABASE", &url)]);
    // PostgreSQL's text holds no NUL: one reaching a query would fail it (a 500). Refused at
    // the edge instead, as on a redb file, in the protocol's shape.
    let client = http_client();
    for (user, password) in [("a\0b", "x"), ("cc", "se\0cret")] {
        let response = client
            .post(format!("{}/o/token/", server.base))
            .basic_auth(user, Some(password))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "{user:?}");
        let body: serde_json::Value =
            serde_json::from_str(&response.text().unwrap()).unwrap_or_default();
        assert_eq!(body["error"], "invalid_client");
    }
    for form in [
        vec![("grant_type", "client_credentials"), ("client_id", "a\0b")],
        vec![
            ("grant_type", "password"),
            ("client_id", "hash1"),
            ("username", "a\0b"),
            ("password", "x"),
        ],
    ] {
        let response = client
            .post(format!("{}/o/token/", server.base))
            .form(&form)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{form:?}");
    }
    assert!(server.terminate());
}

#[test]
fn sslmode_verify_full_is_honoured_from_the_command_line_and_the_server() {
    let Some(url) = fresh_database_url() else {
        return;
    };
    if sql_text(&url, "SHOW ssl").as_deref() != Some("on") {
        assert!(
            std::env::var_os("OXIDOT_REQUIRE_POSTGRES").is_none(),
            "the test PostgreSQL has no TLS (.ci/postgres turns it on)"
        );
        return;
    }
    let ca = sql_text(&url, "SHOW ssl_ca_file").unwrap();
    let root: String = url::form_urlencoded::byte_serialize(ca.as_bytes()).collect();
    let dir = tempfile::tempdir().unwrap();
    // The certificate names "localhost": verified through that name, the server serves.
    let verified = format!(
        "{}?sslmode=verify-full&sslrootcert={root}",
        url.replace("127.0.0.1", "localhost")
    );
    let server = Server::start_with(dir.path(), &["serve"], &[("OXIDOT_DATABASE", &verified)]);
    let ready = http_client()
        .get(format!("{}/readyz", server.base))
        .send()
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    assert!(server.terminate());
    // Through 127.0.0.1 the name does not match: refused, naming the database.
    let mismatched = format!("{url}?sslmode=verify-full&sslrootcert={root}");
    let refused = run(dir.path(), &["migrate", "--database", &mismatched], &[]);
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(
        said.contains("database: cannot use PostgreSQL database") && said.contains("certificate"),
        "{said}"
    );
    // A connection to another machine that is not verified end to end is warned about.
    let unverified = "postgres://oxidot:s3cret@192.0.2.1:5432/tokens?sslmode=require";
    let checked = run(dir.path(), &["check", "--database", unverified], &[]);
    let said = text(&checked);
    assert!(
        said.contains(
            "# warning: database: the connection to PostgreSQL is encrypted, but the server is \
             not verified"
        ),
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");
}
