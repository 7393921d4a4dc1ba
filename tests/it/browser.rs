//! The admin console, the consent page and the self-service pages in headless Chromium, driven
//! over WebDriver (chromedriver) against the real binary running the demo.
//!
//! Skipped when chromedriver is missing, unless `OXIDOT_REQUIRE_BROWSER` is set (as `.ci/run`
//! does), which turns a missing browser into a failure. Screenshots of the pages the README
//! shows are written to `target/screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::flow::challenge;
use crate::support::{Server, free_port, http_client};

const VERIFIER: &str = "browser-test-verifier-0123456789-abcdefghijklmnopqrstuvwxyz";

/// chromedriver and the browser it drives, when both are installed.
fn installed() -> Option<(PathBuf, PathBuf)> {
    let find = |variable: &str, candidates: &[&str]| -> Option<PathBuf> {
        std::env::var_os(variable)
            .map(PathBuf::from)
            .into_iter()
            .chain(candidates.iter().map(PathBuf::from))
            .find(|path| path.is_file())
    };
    let driver = find("CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let browser = find(
        "CHROMIUM",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    match (driver, browser) {
        (Some(driver), Some(browser)) => Some((driver, browser)),
        _ => {
            crate::support::skip(
                "browser tests",
                "chromedriver or chromium is not installed \
                 (Debian: apt-get install chromium chromium-driver)",
                "OXIDOT_REQUIRE_BROWSER",
            );
            None
        }
    }
}

/// A chromedriver process on a loopback port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(path: &PathBuf) -> Self {
        let port = free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn open_browser(driver: &Driver, browser: &PathBuf, profile: &std::path::Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": browser,
            // The machine's network is closed: no background connections, no first-run work.
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session")
}

/// Waits until the browser is at `address`, with or without a query (after a click that
/// navigates: the page it leaves may share a prefix with the one it goes to).
async fn wait_for_address(browser: &Client, address: &str) -> url::Url {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let current = browser.current_url().await.unwrap();
        let at = current.as_str();
        if at == address || at.starts_with(&format!("{address}?")) {
            return current;
        }
        assert!(
            Instant::now() < deadline,
            "still at {current}, waiting for {address}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css}: {error}"))
        .click()
        .await
        .unwrap();
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css}: {error}"))
        .text()
        .await
        .unwrap()
}

async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// The exact time a `<time>` element inside `css` stands for.
async fn time_in(browser: &Client, css: &str) -> time::OffsetDateTime {
    let text = browser
        .find(Locator::Css(&format!("{css} time")))
        .await
        .unwrap_or_else(|error| panic!("{css} time: {error}"))
        .attr("datetime")
        .await
        .unwrap()
        .unwrap_or_default();
    time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| panic!("{text:?} is not a time"))
}

/// Evaluates a JavaScript expression in the page.
async fn script(browser: &Client, expression: &str) -> serde_json::Value {
    browser
        .execute(&format!("return {expression};"), Vec::new())
        .await
        .unwrap_or_else(|error| panic!("{expression}: {error}"))
}

/// Whether the element `css` lies wholly inside the window (no scrolling needed to see it).
async fn inside_viewport(browser: &Client, css: &str) -> bool {
    script(
        browser,
        &format!(
            "(() => {{ const r = document.querySelector({css:?}).getBoundingClientRect(); \
             return r.left >= 0 && r.right <= window.innerWidth && r.width > 0; }})()"
        ),
    )
    .await
        == serde_json::Value::Bool(true)
}

/// Whether the page is wider than the window (a horizontal scroll bar on the page itself).
async fn page_overflows(browser: &Client) -> bool {
    script(
        browser,
        "document.documentElement.scrollWidth > window.innerWidth",
    )
    .await
        == serde_json::Value::Bool(true)
}

/// Sends a form to the running server with a client's Basic credentials; the JSON answer.
/// (The blocking HTTP client runs outside the browser's async tasks.)
fn post_as_client(
    base: &str,
    path: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    tokio::task::block_in_place(|| {
        let response = http_client()
            .post(format!("{base}{path}"))
            .basic_auth(id, Some(secret))
            .form(form)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

fn hello(base: &str, token: &str) -> u16 {
    tokio::task::block_in_place(|| crate::support::bearer_hello(base, token))
}

/// Registers an application through one of the application forms; its client id and secret.
async fn save_application_form(
    browser: &Client,
    name: &str,
    grant: &str,
    redirect: &str,
) -> (String, String) {
    type_into(browser, "#f-name", name).await;
    let code = browser
        .find(Locator::Css(
            "input[name=grant_types][value=authorization-code]",
        ))
        .await
        .unwrap();
    let wants_code = grant == "authorization-code";
    if code.is_selected().await.unwrap() && !wants_code {
        code.click().await.unwrap();
    }
    if !wants_code {
        click(browser, &format!("input[name=grant_types][value={grant}]")).await;
    }
    type_into(browser, "#f-redirect", redirect).await;
    click(browser, "form.stacked button[type=submit]").await;
    browser
        .wait()
        .for_element(Locator::Css("#client-secret"))
        .await
        .unwrap();
    assert_eq!(
        text_of(browser, "p.flash").await,
        format!("The application “{name}” was added successfully.")
    );
    // The Copy button appears once its script has run.
    let copy = browser
        .find(Locator::Css("button[data-copy]"))
        .await
        .unwrap();
    assert!(copy.is_displayed().await.unwrap());
    let secret = browser
        .find(Locator::Css("#client-secret"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    (text_of(browser, "#client-id").await, secret)
}

async fn scenario(browser: &Client, base: &str) {
    // Log in as the demo's superuser through the admin's login page.
    browser
        .goto(&format!("{base}/admin/login/?next=/admin/"))
        .await
        .unwrap();
    type_into(browser, "input[name=username]", "admin").await;
    type_into(browser, "input[name=password]", "admin123").await;
    click(browser, "main form button[type=submit]").await;
    wait_for_address(browser, &format!("{base}/admin/")).await;
    assert!(text_of(browser, "h1").await.contains("Dashboard"));

    // A confidential application; its secret, copied from the page, works at the token endpoint.
    browser
        .goto(&format!("{base}/admin/applications/new/"))
        .await
        .unwrap();
    let (client_id, secret) =
        save_application_form(browser, "Browser reporting", "client-credentials", "").await;
    // A reload of the secret page shows neither the secret nor the message again, and makes
    // no second application.
    browser.refresh().await.unwrap();
    assert!(text_of(browser, "h1").await.contains("shown already"));
    assert!(!text_of(browser, "main").await.contains(&secret));
    browser
        .goto(&format!("{base}/admin/applications/?q=Browser+reporting"))
        .await
        .unwrap();
    assert!(
        text_of(browser, "main").await.contains("1 of "),
        "{}",
        text_of(browser, "main").await
    );
    // An invalid redirect URI: the message stands by the field, which is marked.
    browser
        .goto(&format!("{base}/admin/applications/new/"))
        .await
        .unwrap();
    type_into(browser, "#f-name", "Broken").await;
    type_into(browser, "#f-redirect", "ftp://files.example/cb").await;
    click(browser, "form.stacked button[type=submit]").await;
    browser
        .wait()
        .for_element(Locator::Css("#e-redirect"))
        .await
        .unwrap();
    let field = browser.find(Locator::Css("#f-redirect")).await.unwrap();
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(
        text_of(browser, "#e-redirect")
            .await
            .contains("is not a valid redirect URI")
    );
    assert_eq!(
        field.prop("value").await.unwrap().as_deref(),
        Some("ftp://files.example/cb"),
        "the form keeps what was typed"
    );
    script(
        browser,
        "document.querySelector('#f-redirect').scrollIntoView({block: 'center'})",
    )
    .await;
    screenshot(browser, "admin-application-error").await;
    let (status, token) = post_as_client(
        base,
        "/o/token/",
        &client_id,
        &secret,
        &[("grant_type", "client_credentials")],
    );
    assert_eq!(status, 200, "{token}");
    let access = token["access_token"].as_str().unwrap().to_owned();

    // Edit the clear_tokens schedule (every 10 s in the demo): the next run moves.
    browser
        .goto(&format!("{base}/admin/periodic-tasks/"))
        .await
        .unwrap();
    let soon =
        time_in(browser, "#task-clear_tokens .next-run").await - time::OffsetDateTime::now_utc();
    assert!(soon < time::Duration::seconds(15), "next run in {soon}");
    browser
        .goto(&format!("{base}/admin/periodic-tasks/clear_tokens/"))
        .await
        .unwrap();
    type_into(browser, "input[name=every]", "2").await;
    browser
        .find(Locator::Css("select[name=period]"))
        .await
        .unwrap()
        .select_by_value("hours")
        .await
        .unwrap();
    click(browser, "form.stacked button[type=submit]").await;
    wait_for_address(browser, &format!("{base}/admin/periodic-tasks/")).await;
    assert_eq!(
        text_of(browser, "#task-clear_tokens .schedule").await,
        "every 2 hours"
    );
    let after = time_in(browser, "#task-clear_tokens .next-run").await;
    assert!(after - time::OffsetDateTime::now_utc() > time::Duration::minutes(110));
    assert!(
        text_of(browser, "p.flash")
            .await
            .contains("“clear_tokens” was changed successfully")
    );

    // A task with a long result: the list shows it cut (the whole on the task's page), and
    // every row's actions stay in the window at 1,280 px.
    let long_name = "a weekly diagnostic whose name is long enough to make its result long \
                     and test the periodic tasks list with it";
    type_into(browser, "form.stacked input[name=name]", long_name).await;
    browser
        .find(Locator::Css("form.stacked select[name=task]"))
        .await
        .unwrap()
        .select_by_value("debug_task")
        .await
        .unwrap();
    type_into(browser, "form.stacked input[name=every]", "7").await;
    browser
        .find(Locator::Css("form.stacked select[name=period]"))
        .await
        .unwrap()
        .select_by_value("days")
        .await
        .unwrap();
    click(browser, "form.stacked button[type=submit]").await;
    browser
        .wait()
        .for_element(Locator::Css("p.flash"))
        .await
        .unwrap();
    let row = "tr:has(a[href*='weekly'])";
    click(browser, &format!("{row} button[value=run]")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        browser
            .goto(&format!("{base}/admin/periodic-tasks/"))
            .await
            .unwrap();
        if text_of(browser, &format!("{row} td.result"))
            .await
            .starts_with("ok")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the task did not run");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let result = text_of(browser, &format!("{row} td.result")).await;
    assert!(
        result.contains('…') && result.contains("full result"),
        "{result}"
    );
    for button in [
        "#task-clear_tokens button[value=run]",
        &format!("{row} button[value=run]"),
    ] {
        assert!(
            inside_viewport(browser, button).await,
            "{button} is out of sight"
        );
    }
    assert!(!page_overflows(browser).await);
    screenshot(browser, "admin-periodic-tasks").await;
    click(browser, &format!("{row} td.result a")).await;
    assert!(text_of(browser, "pre.result").await.contains("run=1"));

    // Revoke the application's token from the admin: introspection answers inactive.
    let introspect = |token: &str| {
        post_as_client(
            base,
            "/o/introspect/",
            &client_id,
            &secret,
            &[("token", token)],
        )
        .1["active"]
            .clone()
    };
    assert_eq!(introspect(&access), true);
    browser
        .goto(&format!(
            "{base}/admin/access-tokens/?application={client_id}"
        ))
        .await
        .unwrap();
    click(browser, "input[name=key]").await;
    click(browser, "button[value=revoke]").await;
    browser
        .wait()
        .for_element(Locator::Css("input[name=confirm]"))
        .await
        .unwrap();
    click(browser, "button.danger").await;
    // The list again, saying what was done.
    wait_for_address(browser, &format!("{base}/admin/access-tokens/")).await;
    assert_eq!(text_of(browser, "p.flash").await, "1 access token revoked.");
    assert_eq!(introspect(&access), false);

    // An admin list on a phone: the table scrolls inside its card, the page does not.
    browser.set_window_size(390, 844).await.unwrap();
    for list in [
        "/admin/applications/",
        "/admin/access-tokens/",
        "/admin/periodic-tasks/",
        "/admin/",
    ] {
        browser.goto(&format!("{base}{list}")).await.unwrap();
        assert!(
            !page_overflows(browser).await,
            "{list} is wider than 390 px"
        );
        if list == "/admin/applications/" {
            screenshot(browser, "admin-applications-390px").await;
        }
    }
    browser.set_window_size(1280, 900).await.unwrap();

    // A user registers a client of their own, approves its consent, then revokes it.
    let callback = format!("{base}/callback");
    browser
        .goto(&format!("{base}/o/applications/register/"))
        .await
        .unwrap();
    let (web_id, web_secret) =
        save_application_form(browser, "Browser web app", "authorization-code", &callback).await;
    let authorize = format!(
        "{base}/o/authorize/?response_type=code&client_id={web_id}&redirect_uri={}&scope=read&state=s1\
         &code_challenge={}&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(callback.as_bytes()).collect::<String>(),
        challenge(VERIFIER)
    );
    browser.goto(&authorize).await.unwrap();
    assert!(text_of(browser, "h1").await.contains("Browser web app"));
    screenshot(browser, "consent").await;
    click(browser, "button[name=allow]").await;
    let landed = wait_for_address(browser, &callback).await;
    let code = landed
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, value)| value.into_owned())
        .expect("a code");
    let (status, tokens) = post_as_client(
        base,
        "/o/token/",
        &web_id,
        &web_secret,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &callback),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(status, 200, "{tokens}");
    let user_token = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(hello(base, &user_token), 200);
    browser
        .goto(&format!("{base}/o/authorized_tokens/"))
        .await
        .unwrap();
    assert!(text_of(browser, "main").await.contains("Browser web app"));
    click(browser, "form[action$='/delete/'] button").await;
    browser
        .wait()
        .for_element(Locator::Css("input[name=confirm]"))
        .await
        .unwrap();
    click(browser, "button.danger").await;
    wait_for_address(browser, &format!("{base}/o/authorized_tokens/")).await;
    assert_eq!(hello(base, &user_token), 401);

    // The dashboard after all that.
    browser.goto(&format!("{base}/admin/")).await.unwrap();
    assert!(text_of(browser, "main").await.contains("Access tokens"));
    screenshot(browser, "admin-dashboard").await;
}

#[test]
fn admin_consent_and_self_service_pages_work_in_a_real_browser() {
    let Some((driver_path, browser_path)) = installed() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["demo"]);
    let driver = Driver::start(&driver_path);
    let runtime = crate::support::two_thread_runtime();
    runtime.block_on(async {
        let browser = open_browser(&driver, &browser_path, &dir.path().join("chromium")).await;
        let outcome = tokio::spawn({
            let browser = browser.clone();
            let base = server.base.clone();
            async move { scenario(&browser, &base).await }
        })
        .await;
        let _ = browser.close().await;
        if let Err(failure) = outcome {
            std::panic::resume_unwind(failure.into_panic());
        }
    });
    assert!(server.terminate());
}
