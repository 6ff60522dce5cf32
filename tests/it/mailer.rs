//! The mail transport against the real SMTP receiver: delivery, and the
//! permanent and transient refusals the outbox tells apart.

use std::time::Duration;

use lettre::message::{Message, MultiPart};
use onramp::{
    config::Config,
    mail::{Mailer, SendError},
};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_delivers_both_parts_and_tells_permanent_from_transient_refusals() {
    let smtp = SmtpServer::start().await;
    let mailer = mailer(&smtp);
    mailer.send(message("ada@example.com")).await.expect("delivered");
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].to, ["ada@example.com"]);
    assert_eq!(got[0].from, "onramp@onramp.test");
    assert_eq!(got[0].subject(), "Welcome");
    assert_eq!(got[0].link_param("token").as_deref(), Some("abc"));
    assert!(got[0].html().contains("<a href="), "{}", got[0].html());
    assert_eq!(got[0].header("Message-ID").as_deref(), Some("<m1@onramp.test>"));

    smtp.set(|b| b.refuse = vec!["gone@example.com".into()]);
    match mailer.send(message("gone@example.com")).await {
        Err(SendError::Permanent(reason)) => assert!(reason.contains("550"), "{reason}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    smtp.set(|b| b.defer = vec!["busy@example.com".into()]);
    assert!(matches!(
        mailer.send(message("busy@example.com")).await,
        Err(SendError::Transient(_))
    ));
    assert_eq!(smtp.received().len(), 1, "nothing else was accepted");
    assert!(smtp.to("gone@example.com").is_empty());
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
        match (mailer.send(message(to)).await, refused) {
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
    mailer.send(message("ada@example.com")).await.expect("delivered");
    mailer
        .send(message("grace@example.com"))
        .await
        .expect("delivered");
    assert_eq!(plain.wait_for(2, Duration::from_secs(10)).await.len(), 2);
    assert_eq!(plain.pipelined(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_emails_become_files_a_person_can_read() {
    let dir = std::env::temp_dir().join(format!("onramp-mail-{}", uuid::Uuid::now_v7()));
    let mut config = Config::from_lookup(|_| None).unwrap();
    config.mail_dir = dir.clone();
    let mailer = Mailer::from_config(&config).unwrap();
    assert!(mailer.describe().contains(&*dir.to_string_lossy()));
    mailer.send(message("ada@example.com")).await.expect("written");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(text.contains("Subject: Welcome"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
