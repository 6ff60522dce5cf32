//! The mail transport against the real SMTP receiver: delivery, and the
//! permanent and transient refusals the outbox tells apart.

use std::{sync::Arc, time::Duration};

use lettre::message::{Message, MultiPart};
use onramp::{
    config::Config,
    mail::{Gate, Mailer, SendError, Sent},
};
use tokio::{sync::Semaphore, time::Instant};

use crate::smtp::SmtpServer;

fn message(to: &str) -> Message {
    Message::builder()
        .from("Onramp <onramp@onramp.test>".parse().unwrap())
        .to(to.parse().unwrap())
        .subject("Welcome")
        .message_id(Some("<m1@onramp.test>".into()))
        .multipart(MultiPart::alternative_plain_html(
            "Open https://onramp.test/register?token=abc to join.".to_owned(),
            "<p>Open <a href=\"https://onramp.test/register?token=abc\">this link</a>.</p>".to_owned(),
        ))
        .unwrap()
}

fn mailer(smtp: &SmtpServer) -> Mailer {
    let mut config = Config::from_lookup(|_| None).unwrap();
    config.smtp_url = Some(smtp.url());
    Mailer::from_config(&config).unwrap()
}

/// A gate with a slot always free.
fn open_gate() -> Gate {
    Gate::new(
        Arc::new(Semaphore::new(1)),
        Instant::now() + Duration::from_secs(60),
    )
}

/// Sends through an open gate; answers what the server said.
async fn send(mailer: &Mailer, message: Message) -> Result<(), SendError> {
    match mailer.send(message, open_gate()).await {
        Sent::Answered(answer, _) => answer,
        Sent::Held => panic!("held at an open gate"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_both_parts_and_tells_permanent_from_transient_refusals() {
    let smtp = SmtpServer::start().await;
    let mailer = mailer(&smtp);
    send(&mailer, message("ada@example.com"))
        .await
        .expect("delivered");
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].to, ["ada@example.com"]);
    assert_eq!(got[0].from, "onramp@onramp.test");
    assert_eq!(got[0].subject(), "Welcome");
    assert_eq!(got[0].link_param("token").as_deref(), Some("abc"));
    assert!(got[0].html().contains("<a href="), "{}", got[0].html());
    assert_eq!(got[0].header("Message-ID").as_deref(), Some("<m1@onramp.test>"));

    smtp.set(|b| b.refuse = vec!["gone@example.com".into()]);
    match send(&mailer, message("gone@example.com")).await {
        Err(SendError::Permanent(reason)) => assert!(reason.contains("550"), "{reason}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    smtp.set(|b| b.defer = vec!["busy@example.com".into()]);
    assert!(matches!(
        send(&mailer, message("busy@example.com")).await,
        Err(SendError::Transient(_))
    ));
    assert_eq!(smtp.received().len(), 1, "nothing else was accepted");
    assert!(smtp.to("gone@example.com").is_empty());
}

/// The message and the line that ends it go in one write, so the periods
/// that start its lines must be doubled there: a line of one period would
/// otherwise end the message early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_that_start_with_a_period_arrive_as_written() {
    let smtp = SmtpServer::start().await;
    let mailer = mailer(&smtp);
    let text = "Before the end.\r\n.\r\n..two\r\n.one\r\nAfter.";
    let message = Message::builder()
        .from("Onramp <onramp@onramp.test>".parse().unwrap())
        .to("ada@example.com".parse().unwrap())
        .subject("Periods")
        .header(lettre::message::header::ContentTransferEncoding::SevenBit)
        .body(text.to_owned())
        .unwrap();
    send(&mailer, message).await.expect("delivered");
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert!(
        got[0].data.ends_with(&format!("\r\n\r\n{text}\r\n")),
        "{:?}",
        got[0].data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_smtp_pipelines_its_commands_where_offered_and_a_refusal_leaves_the_next_email_unharmed() {
    let smtp = SmtpServer::start().await;
    smtp.set(|b| {
        b.refuse = vec!["gone@example.com".into()];
        b.defer = vec!["busy@example.com".into()];
    });
    let mailer = mailer(&smtp);
    for (to, refused) in [
        ("ada@example.com", None),
        ("gone@example.com", Some("550")),
        ("grace@example.com", None),
        ("busy@example.com", Some("451")),
        ("alan@example.com", None),
    ] {
        match (send(&mailer, message(to)).await, refused) {
            (Ok(()), None) => {}
            (Err(SendError::Permanent(why) | SendError::Transient(why)), Some(code)) => {
                assert!(why.contains(code), "{to}: {why}");
            }
            (other, _) => panic!("{to}: {other:?}"),
        }
    }
    let got = smtp.wait_for(3, Duration::from_secs(10)).await;
    let to: Vec<&str> = got.iter().map(|m| m.to[0].as_str()).collect();
    assert_eq!(to, ["ada@example.com", "grace@example.com", "alan@example.com"]);
    assert!(got.iter().all(|m| m.subject() == "Welcome"));
    assert_eq!(
        smtp.pipelined(),
        5,
        "MAIL, RCPT and DATA went together for every email"
    );

    // A server that does not offer it gets one command at a time.
    let plain = SmtpServer::start().await;
    plain.set(|b| b.no_pipelining = true);
    let mailer = self::mailer(&plain);
    send(&mailer, message("ada@example.com"))
        .await
        .expect("delivered");
    send(&mailer, message("grace@example.com"))
        .await
        .expect("delivered");
    assert_eq!(plain.wait_for(2, Duration::from_secs(10)).await.len(), 2);
    assert_eq!(plain.pipelined(), 0);
}

/// Only the end of a message commits the server to it, so an email waits
/// for its send slot with its envelope already accepted: a slot then stands
/// for the message's last round trip and its record, not the whole
/// exchange. With no slot free in time, the connection is closed before the
/// message ends and the server keeps nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_smtp_takes_the_send_slot_after_the_envelope_and_an_email_held_there_is_not_delivered() {
    let smtp = SmtpServer::start().await;
    let mailer = mailer(&smtp);
    let slots = Arc::new(Semaphore::new(1));
    let taken = slots.clone().acquire_owned().await.unwrap();
    let gate = Gate::new(slots.clone(), Instant::now() + Duration::from_millis(300));
    let held = mailer.send(message("ada@example.com"), gate).await;
    assert!(matches!(held, Sent::Held), "{held:?}");
    assert_eq!(
        smtp.pipelined(),
        1,
        "the envelope went before the slot was waited for"
    );
    assert!(smtp.received().is_empty(), "an email with no slot was delivered");

    // The slot comes free while the next email waits at it.
    let gate = Gate::new(slots.clone(), Instant::now() + Duration::from_secs(30));
    let sending = tokio::spawn({
        let mailer = mailer.clone();
        async move { mailer.send(message("grace@example.com"), gate).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while smtp.pipelined() < 2 {
        assert!(Instant::now() < deadline, "the second envelope never went");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(smtp.received().is_empty(), "sent without its slot");
    drop(taken);
    let slot = match sending.await.unwrap() {
        Sent::Answered(Ok(()), Some(slot)) => slot,
        other => panic!("{other:?}"),
    };
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].to, ["grace@example.com"]);
    assert_eq!(slots.available_permits(), 0, "the answer came without its slot");
    drop(slot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_emails_become_files_a_person_can_read() {
    let dir = std::env::temp_dir().join(format!("onramp-mail-{}", uuid::Uuid::now_v7()));
    let mut config = Config::from_lookup(|_| None).unwrap();
    config.mail_dir = dir.clone();
    let mailer = Mailer::from_config(&config).unwrap();
    assert!(mailer.describe().contains(&*dir.to_string_lossy()));
    send(&mailer, message("ada@example.com")).await.expect("written");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(text.contains("Subject: Welcome"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
