//! A 10,000-person invitation from the console: the progress bar reaches
//! 100% while the tab's memory stays under 300 MB (measured by the
//! browser's own performance API, and by the largest renderer process's
//! proportional set size from `/proc`), a
//! second tab follows the batch live with WatchBatch, and leaving the send
//! and coming back shows it again.

use std::time::Duration;

use super::{open, sign_in};
use crate::{browser::Browser, harness::TestServer};

const PEOPLE: usize = 10_000;
const LIMIT: u64 = 300 * 1024 * 1024;
/// A debug build sends 10,000 emails in tens of seconds.
const SEND_WAIT: Duration = Duration::from_secs(240);

/// The tab's JavaScript heap in use, in bytes.
async fn js_heap(browser: &Browser) -> u64 {
    browser
        .run("return performance.memory.usedJSHeapSize;", vec![])
        .await
        .as_u64()
        .expect("performance.memory")
}

/// The progress bar's value and maximum.
async fn progress(browser: &Browser) -> (f64, f64) {
    let bar = browser
        .run(
            "const b = document.getElementById('batch-progress'); return b ? [b.value, b.max] : [0, 1];",
            vec![],
        )
        .await;
    (bar[0].as_f64().unwrap_or(0.0), bar[1].as_f64().unwrap_or(1.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_invitations_from_the_console_reach_100_percent_in_a_light_tab() {
    let server = TestServer::start().await;
    let org = server.org("Acme").await;
    // Slow enough that the second tab sees the batch while it runs.
    server.smtp.set(|b| b.delay = Duration::from_millis(15));
    let browser = sign_in(Browser::start("console-scale").await, &server, &org.key).await;
    open(&browser, &server, "#/invite").await;
    browser.wait_for_text("Email addresses").await;
    let pasted: Vec<String> = (0..PEOPLE).map(|i| format!("person{i}@bulk.example")).collect();
    browser
        .run(
            "const box = document.getElementById('f-recipients_text'); box.value = arguments[0];\
             box.dispatchEvent(new Event('input'));",
            vec![serde_json::json!(pasted.join("\n"))],
        )
        .await;
    browser
        .wait_for_text_within("10000 recognised", Duration::from_secs(60))
        .await;
    browser.shot("counted").await;
    let before = js_heap(&browser).await;
    browser.click("button[type=submit]").await;
    browser.find("#batch-progress").await;
    let address = browser.url().await;
    let batch = address
        .split("batch=")
        .nth(1)
        .expect("the batch in the address")
        .to_owned();

    // Watch the tab's memory while results stream in, until 100%.
    let deadline = tokio::time::Instant::now() + SEND_WAIT;
    let (mut heap, mut resident) = (0, 0);
    let mut seen_partial = false;
    loop {
        heap = heap.max(js_heap(&browser).await);
        resident = resident.max(browser.renderer_memory());
        let (value, max) = progress(&browser).await;
        if value > 0.0 && value < max {
            seen_partial = true;
        }
        if browser.text("#sent-count").await == "10000 sent" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the send did not finish: {}",
            browser.text("#batch-status").await
        );
        if seen_partial && value > max / 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(seen_partial, "the progress bar never showed a part done");
    browser.shot("sending").await;

    // A second tab, signed in on its own, follows the same batch live.
    let first = browser.new_tab().await;
    let second = sign_in(browser, &server, &org.key).await;
    open(&second, &server, &format!("#/deliveries?batch={batch}")).await;
    second.find("#batch-progress").await;
    let (value, max) = progress(&second).await;
    let caught_live = value < max;
    second.shot("second-tab-following").await;
    second.wait_for_text_within("10000 sent", SEND_WAIT).await;
    let (value, max) = progress(&second).await;
    assert_eq!(value, max, "the second tab's bar is not full");
    second.shot("second-tab-done").await;
    let browser = second;
    browser.switch_to(first).await;

    // The first tab, still on its send, reaches 100% too.
    let deadline = tokio::time::Instant::now() + SEND_WAIT;
    loop {
        heap = heap.max(js_heap(&browser).await);
        resident = resident.max(browser.renderer_memory());
        if browser.text("#sent-count").await == "10000 sent" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first tab never finished"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (value, max) = progress(&browser).await;
    assert_eq!((value, max), (PEOPLE as f64, PEOPLE as f64));
    heap = heap.max(js_heap(&browser).await);
    resident = resident.max(browser.renderer_memory());
    browser.shot("done").await;
    println!(
        "console 10,000-person send: JS heap {:.1} MB before, peak {:.1} MB; largest renderer's PSS peak {:.1} MB; \
         the second tab joined {}",
        before as f64 / 1e6,
        heap as f64 / 1e6,
        resident as f64 / 1e6,
        if caught_live {
            "while it ran"
        } else {
            "after it ended"
        },
    );
    assert!(heap < LIMIT, "the tab's JS heap reached {heap} bytes");
    assert!(resident < LIMIT, "the tab's renderer reached {resident} bytes");
    assert!(caught_live, "the second tab only saw the batch after it ended");

    // Leaving and coming back shows the batch through WatchBatch.
    open(&browser, &server, "#/people").await;
    browser.wait_for_text("Pending (10000)").await;
    browser.goto(&address).await;
    browser.wait_for_text_within("10000 sent", SEND_WAIT).await;
    browser.shot("came-back").await;
    assert_eq!(server.smtp.received().len(), PEOPLE, "not one email each");
    browser.close().await;
}
