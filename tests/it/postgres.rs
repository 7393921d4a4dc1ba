//! The PostgreSQL backend from the command line: `oxidot migrate` prepares a database once
//! however often it runs; a database that cannot be used stops a command with a message
//! naming it, and what works on a redb file only says so, never taking the URL for a file
//! name; the URL's password never reaches a message. Tests that need a server use `OXIDOT_TEST_POSTGRES` (see
//! `.ci/postgres`) and skip without it unless `OXIDOT_REQUIRE_POSTGRES` is set.

use crate::cli::{run, text};
use crate::support::free_port;

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
        (vec!["loaddata", "users.json"], "copy-store"),
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
