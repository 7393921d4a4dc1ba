//! What a new user meets on the command line and in the log: options for where to listen, a
//! busy port or database that stops start-up before anything is written, settings mistakes
//! explained (unknown profiles, log levels, misspelt or misplaced keys), environment variables
//! that are not settings ignored with a warning, Rocket's own variable names, and log lines
//! that say what happened without noise.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::cli::{run, text};
use crate::support::{free_port, http_client, oxidot, wait_until_up};

/// A server started with `args`, its log written to `dir/server.log`; killed when dropped.
struct Logged {
    child: Child,
    log: std::path::PathBuf,
}

impl Logged {
    fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let log = dir.join("server.log");
        let child = oxidot(dir)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server (SIGTERM) and returns its whole log.
    fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_busy_port_or_database_stops_start_up_with_a_clear_message_and_writes_nothing() {
    let first = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_text = port.to_string();
    let server = Logged::start(
        first.path(),
        &["demo", "--address", "127.0.0.1", "--port", &port_text],
        &[],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base);
    let startup = server.log();
    for part in [
        format!("listening on {base}"),
        "database oxidot-demo.redb".to_owned(),
        format!("issuer {base}/o"),
        format!("admin at {base}/admin/"),
    ] {
        assert!(startup.contains(&part), "{part:?} missing from {startup}");
    }

    // The same port from an empty directory: refused, naming the address, nothing written.
    let second = tempfile::tempdir().unwrap();
    let output = run(second.path(), &["demo", "--port", &port_text], &[]);
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains(&format!("cannot listen on 127.0.0.1:{port}"))
            && message.contains("already in use"),
        "{message}"
    );
    let left: Vec<_> = std::fs::read_dir(second.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "a server that did not start wrote {left:?}"
    );

    // The same database on another port: another server serves it.
    let output = run(
        first.path(),
        &["demo", "--port", &free_port().to_string()],
        &[],
    );
    assert!(!output.status.success());
    let message = text(&output);
    assert!(
        message.contains("another oxidot server already serves oxidot-demo.redb"),
        "{message}"
    );
    assert!(!message.contains("DatabaseAlreadyOpen"));
    server.stop();
}

#[test]
fn settings_mistakes_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let write = |contents: &str| std::fs::write(dir.path().join("Rocket.toml"), contents).unwrap();

    // A profile the file does not have is an error naming the ones it has.
    write("[production]\nport = 9000\n");
    let output = run(dir.path(), &["--profile", "prod", "check"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = text(&output);
    assert!(
        message.contains("no profile `prod` in Rocket.toml")
            && message.contains("`production`")
            && message.contains("`default`"),
        "{message}"
    );
    let output = run(dir.path(), &["check"], &[("ROCKET_PROFILE", "production")]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("port = 9000"));

    // A log level that is not one: refused by check and at start.
    write("[default]\nlog_level = \"verbose\"\n");
    for args in [&["check"][..], &["serve"][..]] {
        let output = run(dir.path(), args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = text(&output);
        assert!(
            message.contains("`log_level`") && message.contains("“verbose” is not a log level"),
            "{message}"
        );
    }
    assert!(!dir.path().join("oxidot.redb").exists());

    // A misspelt key, and a key in the wrong section.
    write("[default]\ndatabse = \"x.redb\"\n");
    let message = text(&run(dir.path(), &["check"], &[]));
    assert!(message.contains("did you mean `database`?"), "{message}");
    write("[default]\npkce_required = false\n");
    let message = text(&run(dir.path(), &["check"], &[]));
    assert!(
        message.contains("`pkce_required` belongs in the `[oauth2_provider]` section"),
        "{message}"
    );
    // Clean quotes: no escaped ones.
    assert!(!message.contains("\\\""), "{message}");
    std::fs::remove_file(dir.path().join("Rocket.toml")).unwrap();

    // Without a settings file, only the built-in profiles exist.
    let output = run(dir.path(), &["--profile", "staging", "check"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("`default` and `demo`"));
}

#[test]
fn environment_variables_that_are_not_settings_are_ignored_and_rockets_names_work() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(
        dir.path(),
        &["check"],
        &[
            ("OXIDOT_BIN", "/usr/local/bin/oxidot"),
            ("ROCKET_PORT", "8123"),
            ("ROCKET_ADDRESS", "127.0.0.2"),
            ("ROCKET_CLI_COLORS", "false"),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: the environment variable OXIDOT_BIN names no setting: ignored"),
        "{stderr}"
    );
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("port = 8123  # environment variable ROCKET_PORT"),
        "{report}"
    );
    assert!(report.contains("address = \"127.0.0.2\"  # environment variable ROCKET_ADDRESS"));
    // Ours win over Rocket's.
    let output = run(
        dir.path(),
        &["check"],
        &[("ROCKET_PORT", "8123"), ("OXIDOT_PORT", "8124")],
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("port = 8124"));
    // ROCKET_CONFIG names the settings file.
    std::fs::write(dir.path().join("other.toml"), "[default]\nport = 8200\n").unwrap();
    let output = run(dir.path(), &["check"], &[("ROCKET_CONFIG", "other.toml")]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("port = 8200  # TOML file"),
        "{}",
        text(&output)
    );
}

#[test]
fn help_names_the_settings_file_the_environment_and_the_listen_options() {
    let dir = tempfile::tempdir().unwrap();
    let help = String::from_utf8_lossy(&run(dir.path(), &["--help"], &[]).stdout).into_owned();
    for part in [
        "Rocket.toml",
        "OXIDOT_CONFIG",
        "ROCKET_PORT",
        "OXIDOT_<KEY>",
        "oxidot check",
    ] {
        assert!(help.contains(part), "{part} missing from {help}");
    }
    for command in ["serve", "demo"] {
        let help = String::from_utf8_lossy(&run(dir.path(), &[command, "--help"], &[]).stdout)
            .into_owned();
        assert!(
            help.contains("--address <IP>") && help.contains("--port <PORT>"),
            "{help}"
        );
    }
    let output = run(dir.path(), &["serve", "--port", "0"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_log_has_an_access_line_per_request_and_no_idle_cleanup_noise() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Logged::start(
        dir.path(),
        &["demo", "--port", &port.to_string()],
        &[
            ("OXIDOT_TASKS__CLEAR_TOKENS__EVERY", "1"),
            ("OXIDOT_TASKS__CLEAR_TOKENS__PERIOD", "seconds"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base);
    let client = http_client();
    let response = client
        .get(format!(
            "{base}/o/authorize/?client_id=hash1&state=query-secret-value"
        ))
        .send()
        .unwrap();
    let request_id = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // Idle cleanups run meanwhile (every second, nothing to delete).
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = server.stop();
    let line = log
        .lines()
        .find(|line| line.contains(&request_id) && line.contains("request"))
        .unwrap_or_else(|| panic!("no access line for {request_id} in {log}"));
    for part in [
        "INFO",
        "method=GET",
        "route=/o/authorize",
        "status=",
        "millis=",
    ] {
        assert!(line.contains(part), "{part:?} missing from {line}");
    }
    assert!(!log.contains("query-secret-value"), "{log}");
    assert!(
        !log.contains("Expired access tokens deleted"),
        "idle cleanups are logged at info: {log}"
    );
    assert!(!log.contains('\u{1b}'), "ANSI colours in a log file");
}
