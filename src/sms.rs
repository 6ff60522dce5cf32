//! Sending SMS codes: POSTed as JSON to a webhook (`ONRAMP_SMS_WEBHOOK_URL`,
//! which an SMS provider or a relay answers), or, in development, written to
//! the log.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `body` to `to`; the error says why it failed.
/// Texts a second-factor set-up code, in the words registration and the
/// set-up at sign-in both use.
pub async fn send_verification_code(
    webhook: Option<&str>,
    to: &str,
    code: &str,
    organization_name: &str,
) -> crate::error::Result<()> {
    let body = format!("{code} is your {organization_name} verification code.");
    send(webhook, to, &body)
        .await
        .map_err(|why| crate::error::Error::Unavailable(format!("the code could not be sent by SMS: {why}")))
}

pub async fn send(webhook: Option<&str>, to: &str, body: &str) -> Result<(), String> {
    let Some(url) = webhook else {
        tracing::info!(sms.to = %mask(to), sms.body = %body, "development SMS provider: not sent, only logged");
        return Ok(());
    };
    tokio::time::timeout(WEBHOOK_TIMEOUT, post(url, to, body))
        .await
        .map_err(|_| "the SMS webhook did not answer in time".to_owned())?
}

async fn post(url: &str, to: &str, body: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("the SMS webhook must be http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let payload = serde_json::json!({"to": to, "body": body}).to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let mut stream = TcpStream::connect(host)
        .await
        .map_err(|e| format!("the SMS webhook is unreachable: {e}"))?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.map_err(|e| e.to_string())?;
    let status_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    match status_line.split_whitespace().nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        _ => Err(format!("the SMS webhook answered '{status_line}'")),
    }
}

/// A number with all but its last three digits hidden.
pub fn mask(number: &str) -> String {
    let keep = number.len().saturating_sub(3);
    number
        .chars()
        .enumerate()
        .map(|(i, c)| if i < keep && c.is_ascii_digit() { '•' } else { c })
        .collect()
}
