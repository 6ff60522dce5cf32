//! A real Chromium, driven over WebDriver by Debian's chromedriver, for the
//! person's pages. Each test gets its own chromedriver and browser; every
//! page it reaches is saved as a screenshot under
//! `target/screenshots/<journey>/`.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element, key::Key};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::{
    os::unix::process::CommandExt,
    process::{Child, Command},
};
use tokio::sync::Semaphore;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to show what a step waits for.
pub const WAIT: Duration = Duration::from_secs(15);

/// Two browsers at once: each takes a core while it renders.
static BROWSERS: Semaphore = Semaphore::const_new(2);

/// Installs Debian's `chromium` and `chromium-driver` when missing, once per
/// test process (as root, which CI and these machines are).
fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        if std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists() {
            return Ok(());
        }
        // With what they recommend: the fonts pages are drawn in.
        crate::harness::apt_install(&["chromium", "chromium-driver"], true)
    });
    if let Err(why) = result {
        panic!("Chromium is needed for the page tests and could not be installed: {why}");
    }
}

pub fn screenshots_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    folder: PathBuf,
    shots: Mutex<usize>,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

impl Browser {
    /// A headless Chromium, 1024 pixels wide, whose screenshots go to
    /// `target/screenshots/<journey>/`.
    pub async fn start(journey: &str) -> Browser {
        Self::sized(journey, 1024, 900).await
    }

    pub async fn sized(journey: &str, width: u32, height: u32) -> Browser {
        ensure_installed();
        let slot = BROWSERS.acquire().await.expect("browser slots");
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("port").port()
        };
        // Its own process group, so that dropping the Browser (even in a
        // failing test) takes the browsers it started down with it.
        let driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        // The viewport is set by emulation: a desktop window cannot be made
        // as narrow as a phone.
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "mobileEmulation": {
                    "deviceMetrics": { "width": width, "height": height, "pixelRatio": 1.0 },
                },
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--disable-extensions",
                    "--lang=en-GB",
                    // performance.memory in whole bytes, not coarse buckets.
                    "--enable-precise-memory-info",
                    // The gateway tests' certificate is made by the test.
                    "--ignore-certificate-errors",
                    format!("--window-size={width},{height}"),
                ],
            }
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("chromedriver did not start a browser: {e}"),
            }
        };
        let folder = screenshots_root().join(journey);
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).expect("screenshot folder");
        Browser {
            client,
            driver,
            folder,
            shots: Mutex::new(0),
            _slot: slot,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("open the page");
    }

    /// Loads the page again, as the browser's reload button does.
    pub async fn reload(&self) {
        self.client.refresh().await.expect("reload");
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.expect("current url").to_string()
    }

    /// The first element matching `css`, once it is there and shown.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(found) = self.client.find(Locator::Css(css)).await
                && found.is_displayed().await.unwrap_or(false)
            {
                return found;
            }
            if tokio::time::Instant::now() >= deadline {
                let body = self.text("body").await;
                panic!("no visible '{css}' within {WAIT:?}; the page says:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's text contains `words`.
    pub async fn wait_for_text(&self, words: &str) {
        self.wait_for_text_within(words, WAIT).await;
    }

    /// Waits up to `wait` until the page's text contains `words`.
    pub async fn wait_for_text_within(&self, words: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let body = self.text("body").await;
            if body.contains(words) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page never said '{words}'; it says:\n{body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the page's text no longer contains `words`.
    pub async fn wait_for_text_gone(&self, words: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let body = self.text("body").await;
            if !body.contains(words) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the page still says '{words}':\n{body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first `css` element, or "" when there is none.
    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let input = self.find(css).await;
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type");
    }

    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// Presses keys on whatever has the focus, as a keyboard user would.
    pub async fn keys(&self, keys: &str) {
        let focused = self.client.active_element().await.expect("focused element");
        focused.send_keys(keys).await.expect("keys");
    }

    pub async fn tab(&self) {
        self.keys(&char::from(Key::Tab).to_string()).await;
    }

    pub async fn enter(&self) {
        self.keys(&char::from(Key::Enter).to_string()).await;
    }

    /// The `id` (or name) of the focused element.
    pub async fn focused(&self) -> String {
        let focused = self.client.active_element().await.expect("focused element");
        match focused.attr("id").await.ok().flatten() {
            Some(id) if !id.is_empty() => id,
            _ => focused.text().await.unwrap_or_default(),
        }
    }

    /// Runs `script` in the page and answers what it returns.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.expect("run a script")
    }

    /// Whether the page is wider than its window (it would scroll sideways).
    pub async fn overflows(&self) -> Option<i64> {
        let width = self
            .run(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await;
        let (scroll, inner) = (width[0].as_i64()?, width[1].as_i64()?);
        (scroll > inner).then_some(scroll)
    }

    /// Opens a new tab in the same browser and moves to it; answers the tab
    /// it left.
    pub async fn new_tab(&self) -> fantoccini::wd::WindowHandle {
        let before = self.client.window().await.expect("this tab");
        let opened = self.client.new_window(true).await.expect("a new tab");
        self.client
            .switch_to_window(opened.handle)
            .await
            .expect("switch to the new tab");
        before
    }

    pub async fn switch_to(&self, tab: fantoccini::wd::WindowHandle) {
        self.client.switch_to_window(tab).await.expect("switch tabs");
    }

    /// The memory of this browser's largest page process (renderer), in
    /// bytes: its proportional set size from `/proc`, so that pages shared
    /// with other processes (libraries, shared memory) count in part. A
    /// tab's renderer is one of them, so this bounds the tab's memory.
    pub fn renderer_memory(&self) -> u64 {
        let group = self.driver.id();
        let mut largest = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
                continue;
            };
            // The process group is the fifth field, after the name in
            // parentheses (which may hold spaces).
            let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let pgrp: Option<u32> = after_name.split_whitespace().nth(2).and_then(|p| p.parse().ok());
            if pgrp != Some(group) {
                continue;
            }
            let cmdline = std::fs::read(path.join("cmdline")).unwrap_or_default();
            if !String::from_utf8_lossy(&cmdline).contains("--type=renderer") {
                continue;
            }
            let rollup = std::fs::read_to_string(path.join("smaps_rollup")).unwrap_or_default();
            let pss_kib: u64 = rollup
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            largest = largest.max(pss_kib * 1024);
        }
        largest
    }

    /// Saves what the person sees now as `NN-name.png`.
    pub async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let n = {
            let mut shots = self.shots.lock().expect("count");
            *shots += 1;
            *shots
        };
        std::fs::write(self.folder.join(format!("{n:02}-{name}.png")), png).expect("save screenshot");
    }

    /// Runs axe-core in the page and answers its violations, one line each.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let axe = crate::web::axe_source();
        self.client.execute(axe, vec![]).await.expect("load axe-core");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, { resultTypes: ['violations'] })\
                   .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' (' + v.nodes.map(n => n.target.join(' ')).join(', ') + ')')))\
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .expect("run axe-core");
        result
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Ends the browser session; dropping the `Browser` stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
