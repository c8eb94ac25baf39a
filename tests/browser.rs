//! The demo's page in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! through `fantoccini`), against the demo served in-process with 2 s access tokens.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them this test fails under
//! `CI=true` and elsewhere says loudly that it skipped.

#[path = "../examples/axum/demo.rs"]
#[allow(dead_code)]
mod demo;

#[path = "support/counting.rs"]
mod counting;
#[path = "support/tools.rs"]
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use counting::Counting;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tower_jwt_auth::{Issuer, MemoryStore, RefreshSecrets, Sessions, SigningKey};

/// Chromium and chromedriver, or `None` (after saying so) when they are not installed.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let found = tools::on_path("chromium").zip(tools::on_path("chromedriver"));
    tools::required(
        found,
        "chromium or chromedriver",
        "apt-get install chromium chromium-driver",
    )
}

/// chromedriver on a loopback port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start(binary: &Path) -> Driver {
        let port = tools::free_port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `script` in the page and returns its value.
async fn js(browser: &Client, script: &str) -> Value {
    browser.execute(script, vec![]).await.unwrap()
}

/// Waits (bounded) until the page's state is `state`.
async fn wait_for_state(browser: &Client, state: &str) {
    let start = Instant::now();
    loop {
        if js(browser, "return document.body.dataset.state || ''").await == state {
            return;
        }
        let error = js(browser, "return document.getElementById('error').textContent").await;
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the page never reached {state}; error shown: {error}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn no_error(browser: &Client) {
    let error = js(browser, "return document.getElementById('error').textContent").await;
    assert_eq!(error, "", "the page shows an error");
}

/// What `/me` answers for `token` (from outside the browser).
async fn me_status(base: &str, token: &str) -> u16 {
    let r = reqwest::Client::new()
        .get(format!("{base}/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_page_keeps_a_browser_signed_in() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    // The demo, in-process, with 2 s access tokens.
    let rotations = Arc::new(AtomicUsize::new(0));
    let store = Counting {
        inner: MemoryStore::new().into(),
        rotations: rotations.clone(),
    };
    let issuer = Issuer::new(SigningKey::generate().unwrap()).access_ttl(Duration::from_secs(2));
    let sessions =
        Sessions::new(issuer, store, RefreshSecrets::generate()).claims_provider(demo::user_claims);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // `localhost` is a secure context for the browser, so it keeps the `Secure` cookie.
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let app = demo::router(sessions.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let driver = Driver::start(&chromedriver);
    let profile = std::env::temp_dir().join(format!("tja-chromium-{}", std::process::id()));
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let browser = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with headless Chromium");

    // Open the page: no session yet, the sign-in form.
    browser.goto(&format!("{base}/")).await.unwrap();
    wait_for_state(&browser, "signed-out").await;
    assert_eq!(rotations.load(Ordering::SeqCst), 0);

    // Log in (alice is filled in): /me is shown.
    browser
        .find(Locator::Id("login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_state(&browser, "signed-in").await;
    no_error(&browser).await;
    assert_eq!(
        js(&browser, "return document.getElementById('who').textContent").await,
        "alice"
    );
    // The refresh token is in the HttpOnly cookie only: page script cannot see it.
    let cookies = js(&browser, "return document.cookie").await;
    assert!(!cookies.as_str().unwrap().contains("refresh_token"), "{cookies}");
    assert!(js(&browser, "return localStorage.length + sessionStorage.length").await == 0);

    // Wait past the login token's expiry, then act: exactly one refresh, no error.
    let first = js(&browser, "return access").await;
    let before = rotations.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        rotations.load(Ordering::SeqCst),
        before,
        "an idle page makes no request"
    );
    browser
        .find(Locator::Id("me-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let start = Instant::now();
    while js(&browser, "return access").await == first {
        assert!(start.elapsed() < Duration::from_secs(5), "never renewed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    no_error(&browser).await;
    assert_eq!(
        rotations.load(Ordering::SeqCst),
        before + 1,
        "exactly one refresh"
    );
    assert_eq!(
        me_status(&base, first.as_str().unwrap()).await,
        200,
        "rotation does not revoke"
    );

    // Twenty calls at once with the token due: exactly one refresh between them.
    let before = rotations.load(Ordering::SeqCst);
    let page_refreshes = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             renewAt = 0;
             const before = refreshes;
             Promise.all(Array.from({ length: 20 }, () => api('/me')))
               .then((rs) => done({ refreshes: refreshes - before, ok: rs.every((r) => r.ok) }))
               .catch((e) => done({ error: String(e) }));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(page_refreshes, json!({"refreshes": 1, "ok": true}));
    assert_eq!(
        rotations.load(Ordering::SeqCst),
        before + 1,
        "one refresh at the server"
    );
    no_error(&browser).await;

    // Reload: the cookie restores the session.
    browser.refresh().await.unwrap();
    wait_for_state(&browser, "signed-in").await;
    no_error(&browser).await;
    assert_eq!(
        js(&browser, "return document.getElementById('who').textContent").await,
        "alice"
    );

    // Your devices: another session of alice's shows up and is revoked from here.
    let other = sessions.login("alice").await.unwrap();
    assert_eq!(me_status(&base, &other.access.token).await, 200);
    js(&browser, "showDevices(); return null").await;
    let start = Instant::now();
    let revoke = loop {
        if let Ok(button) = browser.find(Locator::Css("button.revoke")).await {
            break button;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no other device listed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    revoke.click().await.unwrap();
    let start = Instant::now();
    while me_status(&base, &other.access.token).await != 401 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the revoked device still works"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    no_error(&browser).await;

    // Log out: signed out, and the access token the page held is refused.
    let held = js(&browser, "return access").await;
    browser
        .find(Locator::Id("logout-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_state(&browser, "signed-out").await;
    assert_eq!(me_status(&base, held.as_str().unwrap()).await, 401);
    // And a reload stays signed out: the cookie is gone.
    browser.refresh().await.unwrap();
    wait_for_state(&browser, "signed-out").await;

    browser.close().await.unwrap();
    drop(driver);
    let _ = std::fs::remove_dir_all(profile);
}
