//! The scheduler: tasks run on their schedules, never overlap themselves, record failures and
//! go on; the admin's periodic-tasks page changes them at once (the real binary, over HTTP).

use std::time::{Duration, Instant};

use oxidot::clock::Clock;
use oxidot::config::Settings;
use oxidot::scheduler::Scheduler;
use oxidot::store::{FamilyId, Grant, PeriodicTask, SecretKey, Store, TaskSchedule, Timestamp};

use crate::support::{Server, hidden_fields, http_client};

/// Runs a scheduler on `store` for as long as `body` takes, then shuts it down.
fn with_scheduler(store: &Store, settings: &Settings, body: impl AsyncFnOnce(&Scheduler)) {
    let runtime = crate::support::two_thread_runtime();
    runtime.block_on(async {
        let scheduler = Scheduler::start(
            std::sync::Arc::new(store.clone()),
            settings,
            Clock::system(),
        )
        .await
        .unwrap();
        body(&scheduler).await;
        scheduler.shutdown().await;
    });
}

fn task(name: &str, registered: &str, every_seconds: u64) -> PeriodicTask {
    PeriodicTask {
        name: name.to_owned(),
        task: registered.to_owned(),
        schedule: TaskSchedule::Interval {
            every: every_seconds,
            period: "seconds".to_owned(),
        },
        enabled: true,
        one_off: false,
        start_time: None,
        expires: None,
        description: String::new(),
        last_run_at: None,
        total_run_count: 0,
        last_result: None,
        from_config: false,
        changed: Timestamp(0),
    }
}

#[test]
fn failing_tasks_are_recorded_and_slow_ones_never_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&dir.path().join("s.redb"), 1 << 20).unwrap();
    let mut settings = Settings::default();
    settings.tasks.clear();
    // A cleanup of four expired codes, one per batch, 0.7 s apart: about 2.1 s.
    settings.oauth2_provider.clear_expired_tokens_batch_size = 1;
    settings.oauth2_provider.clear_expired_tokens_batch_interval = 0.7;
    put_expired_codes(&store, 4);
    store
        .write_blocking(|tx| {
            // A task whose registered task is gone (say, after an upgrade): it fails each run.
            tx.put_periodic_task(&task("broken", "no_such_task", 1))?;
            tx.put_periodic_task(&task("slow", "clear_tokens", 1))
        })
        .unwrap();
    with_scheduler(&store, &settings, async |scheduler: &Scheduler| {
        let read = |name: &str| store.read(|tx| tx.periodic_task(name)).unwrap().unwrap();
        let started = Instant::now();
        // The slow cleanup starts at the first tick (~1 s) and runs ~2.1 s; the ticks at ~2 s
        // and ~3 s are skipped, not started beside it. By ~5 s at most three runs have ended
        // (run alongside, the ticks would have made four or five).
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(scheduler.is_running("slow"));
        assert_eq!(read("slow").total_run_count, 0);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let slow = read("slow");
        assert!(
            (1..=3).contains(&slow.total_run_count),
            "{} runs in {:?}",
            slow.total_run_count,
            started.elapsed()
        );
        let first = slow.last_result.unwrap();
        assert!(first.ok);
        assert!(
            first.message.contains("Expired grant tokens deleted"),
            "{}",
            first.message
        );
        // The broken task failed every second, and kept being run.
        let broken = read("broken");
        assert!(broken.total_run_count >= 3, "{}", broken.total_run_count);
        let result = broken.last_result.unwrap();
        assert!(
            !result.ok && result.message.contains("no task"),
            "{result:?}"
        );
    });
    store.close().unwrap();
}

/// The admin's session on the real binary, and the CSRF token of the page at `path`.
fn admin_page(
    browser: &reqwest::blocking::Client,
    base: &str,
    path: &str,
) -> (u16, String, String) {
    let response = browser.get(format!("{base}{path}")).send().unwrap();
    let status = response.status().as_u16();
    let html = response.text().unwrap();
    let csrf = html
        .split("name=\"csrfmiddlewaretoken\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    (status, html, csrf)
}

fn log_in(browser: &reqwest::blocking::Client, base: &str, username: &str, password: &str) {
    let page = browser
        .get(format!("{base}/admin/login/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let mut form = hidden_fields(&page, "/admin/login/");
    form.push(("username".to_owned(), username.to_owned()));
    form.push(("password".to_owned(), password.to_owned()));
    let response = browser
        .post(format!("{base}/admin/login/"))
        .form(&form)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
}

fn runs(html: &str) -> u64 {
    html.split("runs: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no run count in {html}"))
}

#[test]
fn the_periodic_tasks_page_changes_schedules_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["demo"]);
    let base = server.base.clone();
    let list = "/admin/periodic-tasks/";

    // Not logged in: to the admin login. Not staff: 403.
    let anonymous = http_client();
    let response = anonymous.get(format!("{base}{list}")).send().unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let fixture = dir.path().join("bob.yaml");
    std::fs::write(
        &fixture,
        "- model: auth.user\n  pk: 9\n  fields: {username: bob, password: '', is_active: true}\n",
    )
    .unwrap();
    let oxidot = |args: &[&str], stdin: &str| {
        use std::io::Write as _;
        let mut child = crate::support::oxidot(dir.path())
            .args([&["--profile", "demo"][..], args].concat())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
    };
    oxidot(&["loaddata", fixture.to_str().unwrap()], "");
    oxidot(
        &["changepassword", "bob", "--password-stdin"],
        "not-staff-42\n",
    );
    let user = http_client();
    log_in(&user, &base, "bob", "not-staff-42");
    assert_eq!(admin_page(&user, &base, list).0, 403);

    let admin = http_client();
    log_in(&admin, &base, "admin", "admin123");
    let (status, html, csrf) = admin_page(&admin, &base, list);
    assert_eq!(status, 200);
    assert!(
        html.contains("clear_tokens") && html.contains("every 10 seconds"),
        "{html}"
    );
    assert!(html.contains("configuration"));

    let post = |path: &str, fields: &[(&str, &str)]| {
        let response = admin
            .post(format!("{base}{path}"))
            .form(fields)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().unwrap())
    };
    // Refused: no CSRF token; a bad schedule; an unknown task. Nothing is added.
    assert_eq!(
        post(
            list,
            &[
                ("action", "save"),
                ("name", "x"),
                ("task", "debug_task"),
                ("every", "1"),
                ("period", "seconds")
            ]
        )
        .0,
        403
    );
    let (status, page) = post(
        list,
        &[
            ("csrfmiddlewaretoken", &csrf),
            ("name", "x"),
            ("task", "debug_task"),
            ("crontab", "every tuesday"),
            ("enabled", "on"),
        ],
    );
    assert_eq!(status, 400);
    assert!(page.contains("is not a crontab"), "{page}");
    // The message stands by the crontab field, which is marked.
    assert!(
        page.contains("class=\"field-error\" id=\"e-task-crontab\""),
        "{page}"
    );
    assert!(page.contains("aria-invalid=\"true\" aria-describedby=\"e-task-crontab"));
    let (status, page) = post(
        list,
        &[
            ("csrfmiddlewaretoken", &csrf),
            ("name", "x"),
            ("task", "rm_rf"),
            ("every", "1"),
            ("period", "seconds"),
        ],
    );
    assert_eq!(status, 400);
    assert!(page.contains("Unknown task"), "{page}");
    assert!(page.contains("id=\"e-task-task\""), "{page}");
    assert!(
        !admin_page(&admin, &base, list)
            .1
            .contains("/admin/periodic-tasks/x/")
    );

    // A start time ahead keeps a task from running; a malformed one is refused.
    let (status, page) = post(
        list,
        &[
            ("csrfmiddlewaretoken", &csrf),
            ("name", "later"),
            ("task", "debug_task"),
            ("every", "1"),
            ("period", "seconds"),
            ("enabled", "on"),
            ("start_time", "tomorrow"),
        ],
    );
    assert_eq!(status, 400);
    assert!(
        page.contains("The start time must be a time like"),
        "{page}"
    );
    assert!(page.contains("id=\"e-task-start\""), "{page}");
    let (status, _) = post(
        list,
        &[
            ("csrfmiddlewaretoken", &csrf),
            ("name", "later"),
            ("task", "debug_task"),
            ("every", "1"),
            ("period", "seconds"),
            ("enabled", "on"),
            ("start_time", "2099-01-01T00:00:00Z"),
        ],
    );
    assert_eq!(status, 303);

    // A debug task every second runs every second.
    let (status, _) = post(
        list,
        &[
            ("csrfmiddlewaretoken", &csrf),
            ("name", "tick"),
            ("task", "debug_task"),
            ("every", "1"),
            ("period", "seconds"),
            ("enabled", "on"),
        ],
    );
    assert_eq!(status, 303);
    std::thread::sleep(Duration::from_millis(2600));
    let (_, page, _) = admin_page(&admin, &base, "/admin/periodic-tasks/tick/");
    assert!(runs(&page) >= 2, "{page}");
    assert!(page.contains("Made in the admin"));

    let (_, page, _) = admin_page(&admin, &base, "/admin/periodic-tasks/later/");
    assert_eq!(runs(&page), 0, "not before its start time");
    assert!(page.contains("2099-01-01T00:00:00Z"), "{page}");

    // Every hour instead: no more runs for now, and the next run is an hour away.
    let (status, _) = post(
        "/admin/periodic-tasks/tick/",
        &[
            ("csrfmiddlewaretoken", &csrf),
            ("action", "save"),
            ("name", "tick"),
            ("task", "debug_task"),
            ("every", "1"),
            ("period", "hours"),
            ("enabled", "on"),
        ],
    );
    assert_eq!(status, 303);
    let before = runs(&admin_page(&admin, &base, "/admin/periodic-tasks/tick/").1);
    std::thread::sleep(Duration::from_millis(2000));
    let (_, page, _) = admin_page(&admin, &base, "/admin/periodic-tasks/tick/");
    assert_eq!(runs(&page), before, "the edit applied without a restart");
    assert!(
        page.contains("every 1 hours")
            || page.contains("value=\"hours\" selected")
            || page.contains("selected>hours"),
        "{page}"
    );

    // Run now: once.
    let (status, _) = post(
        "/admin/periodic-tasks/tick/",
        &[("csrfmiddlewaretoken", &csrf), ("action", "run")],
    );
    assert_eq!(status, 303);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        runs(&admin_page(&admin, &base, "/admin/periodic-tasks/tick/").1),
        before + 1
    );

    // Disabled: not scheduled.
    let (status, _) = post(
        "/admin/periodic-tasks/tick/",
        &[("csrfmiddlewaretoken", &csrf), ("action", "disable")],
    );
    assert_eq!(status, 303);
    let (_, page, _) = admin_page(&admin, &base, "/admin/periodic-tasks/tick/");
    assert!(page.contains("id=\"next-run\">—<"), "{page}");

    // Deleting asks for confirmation.
    let (status, _) = post(
        "/admin/periodic-tasks/tick/",
        &[("csrfmiddlewaretoken", &csrf), ("action", "delete")],
    );
    assert_eq!(status, 400);
    let (status, _) = post(
        "/admin/periodic-tasks/tick/",
        &[
            ("csrfmiddlewaretoken", &csrf),
            ("action", "delete"),
            ("confirm", "yes"),
        ],
    );
    assert_eq!(status, 303);
    assert_eq!(
        admin_page(&admin, &base, "/admin/periodic-tasks/tick/").0,
        404
    );

    assert!(server.terminate());
}

#[test]
fn a_bad_task_in_the_configuration_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for (name, value, expected) in [
        (
            "OXIDOT_TASKS__NIGHTLY__CRONTAB",
            "at midnight",
            "is not a crontab",
        ),
        (
            "OXIDOT_TASKS__NIGHTLY__EVERY",
            "0",
            "every must be at least 1",
        ),
    ] {
        let output = crate::support::oxidot(dir.path())
            .arg("check")
            .env("OXIDOT_TASKS__NIGHTLY__TASK", "debug_task")
            .env(name, value)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(
            message.contains("tasks.nightly") && message.contains(expected),
            "{message}"
        );
    }
}

#[test]
fn the_backup_task_keeps_the_newest_copies() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&dir.path().join("b.redb"), 1 << 20).unwrap();
    let mut settings = Settings::default();
    settings.tasks.clear();
    settings.backup.directory = Some(dir.path().join("copies"));
    settings.backup.keep = 2;
    store
        .write_blocking(|tx| tx.put_periodic_task(&task("nightly", "backup", 1)))
        .unwrap();
    with_scheduler(&store, &settings, async |_: &Scheduler| {
        tokio::time::sleep(Duration::from_millis(4600)).await;
    });
    let done = store
        .read(|tx| tx.periodic_task("nightly"))
        .unwrap()
        .unwrap();
    assert!(done.total_run_count >= 3, "{done:?}");
    let mut copies: Vec<_> = std::fs::read_dir(dir.path().join("copies"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    copies.sort();
    assert_eq!(copies.len(), 2, "{copies:?}");
    assert!(
        copies
            .iter()
            .all(|name| name.starts_with("oxidot-") && name.ends_with("Z.redb"))
    );
    store.close().unwrap();
    // A copy opens as a database of its own, with the task in it.
    let (copy, _) = Store::open(&dir.path().join("copies").join(&copies[1]), 1 << 20).unwrap();
    assert!(
        copy.read(|tx| tx.periodic_task("nightly"))
            .unwrap()
            .is_some()
    );
    copy.close().unwrap();
}

#[test]
fn oxidot_backup_copies_a_running_and_a_stopped_database() {
    let dir = tempfile::tempdir().unwrap();
    let oxidot = |args: &[&str]| {
        crate::support::oxidot(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let server = Server::start(dir.path(), &["demo"]);
    let live = oxidot(&["--profile", "demo", "backup", "live.redb"]);
    assert!(live.status.success(), "{live:?}");
    assert!(String::from_utf8_lossy(&live.stdout).contains("backup written to"));
    // Never over an existing file.
    let again = oxidot(&["--profile", "demo", "backup", "live.redb"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));
    assert!(server.terminate());
    // The copy is a database with the demo's users and clients.
    let dumped = oxidot(&["--database", "live.redb", "dumpdata", "auth.user"]);
    assert!(dumped.status.success(), "{dumped:?}");
    assert!(String::from_utf8_lossy(&dumped.stdout).contains("username: admin"));
    // With the server stopped, into a directory: a time-named file.
    std::fs::create_dir(dir.path().join("copies")).unwrap();
    let stopped = oxidot(&["--profile", "demo", "backup", "copies"]);
    assert!(stopped.status.success(), "{stopped:?}");
    let names: Vec<_> = std::fs::read_dir(dir.path().join("copies"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1);
    assert!(names[0].starts_with("oxidot-"), "{names:?}");
}

#[test]
fn one_off_tasks_run_once_and_expired_tasks_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&dir.path().join("o.redb"), 1 << 20).unwrap();
    let mut settings = Settings::default();
    settings.tasks.clear();
    store
        .write_blocking(|tx| {
            let mut once = task("once", "debug_task", 1);
            once.one_off = true;
            tx.put_periodic_task(&once)?;
            let mut over = task("over", "debug_task", 1);
            over.expires = Some(Timestamp(1));
            tx.put_periodic_task(&over)
        })
        .unwrap();
    with_scheduler(&store, &settings, async |scheduler: &Scheduler| {
        tokio::time::sleep(Duration::from_millis(3200)).await;
        assert!(
            scheduler.next_run("once").await.is_none(),
            "unscheduled after its run"
        );
    });
    let read = |name: &str| store.read(|tx| tx.periodic_task(name)).unwrap().unwrap();
    let once = read("once");
    assert_eq!((once.total_run_count, once.enabled), (1, false));
    let over = read("over");
    assert_eq!((over.total_run_count, over.enabled), (0, false));
    store.close().unwrap();
}

/// Puts `count` authorization codes that expired long ago: a cleanup of one per batch.
fn put_expired_codes(store: &Store, count: u8) {
    store
        .write_blocking(move |tx| {
            for byte in 1..=count {
                let grant = Grant {
                    user: 1,
                    application: 1,
                    redirect_uri: None,
                    scope: "read".to_owned(),
                    code_challenge: None,
                    code_challenge_method: None,
                    nonce: None,
                    auth_time: Timestamp(1),
                    created: Timestamp(1),
                    expires: Timestamp(2),
                    used: None,
                    family: FamilyId([byte; 16]),
                    sid: None,
                    claims: None,
                };
                tx.put_grant(&SecretKey([byte; 32]), &grant)?;
            }
            Ok(())
        })
        .unwrap();
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "waited too long for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A store holding `codes` expired codes and a cleanup task "slow" (not due for an hour: it
/// runs when told to), with settings that clear one code per batch, `pause` seconds apart.
fn slow_cleanup(dir: &std::path::Path, codes: u8, pause: f64) -> (Store, Settings) {
    let (store, _) = Store::open(&dir.join("slow.redb"), 1 << 20).unwrap();
    let mut settings = Settings::default();
    settings.tasks.clear();
    settings.oauth2_provider.clear_expired_tokens_batch_size = 1;
    settings.oauth2_provider.clear_expired_tokens_batch_interval = pause;
    put_expired_codes(&store, codes);
    store
        .write_blocking(|tx| tx.put_periodic_task(&task("slow", "clear_tokens", 3600)))
        .unwrap();
    (store, settings)
}

/// Two schedulers on one store, standing for two instances (each its own lease holder, as on
/// PostgreSQL), for as long as `body` takes; then both are shut down.
fn with_two_schedulers(
    store: &Store,
    settings: &Settings,
    clock: &Clock,
    body: impl AsyncFnOnce(&Scheduler, &Scheduler, oxidot::store::SharedStorage),
) {
    let runtime = crate::support::two_thread_runtime();
    runtime.block_on(async {
        let storage: oxidot::store::SharedStorage = std::sync::Arc::new(store.clone());
        let start = || Scheduler::start(storage.clone(), settings, clock.clone());
        let (first, second) = (start().await.unwrap(), start().await.unwrap());
        body(&first, &second, storage.clone()).await;
        first.shutdown().await;
        second.shutdown().await;
    });
}

/// No two runs of one task overlap, wherever they start. Two schedulers on one store stand for
/// two instances (each its own lease holder, as on PostgreSQL): while one runs the cleanup,
/// "Run now" on the other, another task of the same cleanup, and `oxidot cleartokens` are all
/// refused; a leader paused past its lease (the clock jumps) is taken over, and its run stops
/// at its next batch instead of going on beside its successor's.
#[test]
fn runs_of_a_task_never_overlap_across_instances_the_cli_or_a_paused_leader() {
    use oxidot::commands::{Command, CommandContext, execute};
    let dir = tempfile::tempdir().unwrap();
    // Three batches 3 s apart: the first run's pause between batches is where the clock jumps
    // and its successor starts (a paused process does nothing, and neither does this run
    // while it sleeps).
    let (store, settings) = slow_cleanup(dir.path(), 3, 3.0);
    store
        .write_blocking(|tx| tx.put_periodic_task(&task("again", "clear_tokens", 3600)))
        .unwrap();
    let clock = Clock::manual(time::macros::datetime!(2026-06-01 00:00 UTC));
    let instances = async |first: &Scheduler, second: &Scheduler, storage| {
        first.run_now("slow");
        wait_until("the first run", || first.is_running("slow")).await;
        second.run_now("slow");
        first.run_now("again");
        let context = CommandContext::new(
            storage,
            None,
            oxidot::passwords::Hasher::new(1),
            &settings,
            clock.clone(),
        );
        let refused = execute(&context, Command::ClearTokens).await.unwrap_err();
        assert!(
            refused.to_string().contains("a cleanup is running now"),
            "{refused}"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(first.is_running("slow"));
        assert!(!second.is_running("slow") && !first.is_running("again"));

        // The first instance "paused" past its lease: the second takes the task over, and the
        // first stops at its next batch boundary.
        clock.advance(time::Duration::seconds(
            i64::try_from(settings.scheduler.lease_seconds).unwrap() + 1,
        ));
        second.run_now("slow");
        wait_until("the second run", || second.is_running("slow")).await;
        wait_until("the first run to stop", || !first.is_running("slow")).await;
        assert!(second.is_running("slow"), "the successor runs alone");
        wait_until("the second run to end", || !second.is_running("slow")).await;
    };
    with_two_schedulers(&store, &settings, &clock, instances);
    let read = |name: &str| store.read(|tx| tx.periodic_task(name)).unwrap().unwrap();
    let slow = read("slow");
    assert_eq!(
        slow.total_run_count, 2,
        "the interrupted run and its successor's"
    );
    let last = slow.last_result.unwrap();
    assert!(
        last.ok && !last.message.contains("Stopped early"),
        "{last:?}"
    );
    assert_eq!(read("again").total_run_count, 0);
    let left = store.read(|tx| tx.grant(&SecretKey([3; 32]))).unwrap();
    assert!(left.is_none(), "the successor finished the cleanup");
    store.close().unwrap();
}

/// A run keeps its lease for as long as it lasts, even when it sleeps longer than the lease
/// between batches: another instance's "Run now" meanwhile is still refused, and the run ends
/// whole (not stopped early).
#[test]
fn a_run_keeps_its_lease_through_pauses_longer_than_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut settings) = slow_cleanup(dir.path(), 2, 3.0);
    settings.scheduler.lease_seconds = 2;
    let instances = async |first: &Scheduler, second: &Scheduler, _| {
        first.run_now("slow");
        wait_until("the first run", || first.is_running("slow")).await;
        // Past the lease's length, inside the first run's pause between its two batches.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        second.run_now("slow");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !second.is_running("slow"),
            "the first run still holds the task"
        );
        assert!(first.is_running("slow"));
        wait_until("the first run to end", || !first.is_running("slow")).await;
    };
    with_two_schedulers(&store, &settings, &Clock::system(), instances);
    let slow = store.read(|tx| tx.periodic_task("slow")).unwrap().unwrap();
    assert_eq!(slow.total_run_count, 1);
    let result = slow.last_result.unwrap();
    assert!(
        result.ok && !result.message.contains("Stopped early"),
        "{result:?}"
    );
    assert!(
        store
            .read(|tx| tx.grant(&SecretKey([2; 32])))
            .unwrap()
            .is_none()
    );
    store.close().unwrap();
}
