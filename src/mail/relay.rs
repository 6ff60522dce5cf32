//! Plain SMTP (`smtp://host:port`, no TLS, no login) over lettre's own
//! connection, on sockets with TCP_NODELAY. lettre's pooled transport opens
//! its sockets without it, so each message's final `.`, written on its own,
//! waits for the server's delayed acknowledgement; here it goes at once.
//! How many connections exist is bounded by the outbox's send slots; idle
//! ones are kept for reuse.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lettre::{
    Message,
    transport::smtp::{client::AsyncSmtpConnection, extension::ClientId},
};
use tokio::time::{Instant, timeout};

use super::SendError;

/// A connection idle longer than this is checked with NOOP before reuse: the
/// server may have closed it meanwhile.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Relay {
    host: String,
    port: u16,
    timeout: Duration,
    idle: Arc<Mutex<Vec<(AsyncSmtpConnection, Instant)>>>,
    keep: usize,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relay({}:{})", self.host, self.port)
    }
}

impl Relay {
    /// A relay for `url` when it is plain SMTP with nothing to negotiate:
    /// `smtp://host[:port]` with no user, password or query.
    pub fn for_url(url: &str, timeout: Duration, keep: usize) -> Option<Relay> {
        let rest = url.strip_prefix("smtp://")?;
        if rest.contains(['@', '?', '/']) {
            return None;
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (host, port.parse().ok()?),
            _ => (rest, 25),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        (!host.is_empty()).then(|| Relay {
            host: host.to_owned(),
            port,
            timeout,
            idle: Arc::default(),
            keep,
        })
    }

    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        let mut connection = self.connection().await?;
        let sent = timeout(
            self.timeout,
            connection.send(message.envelope(), &message.formatted()),
        )
        .await;
        match sent {
            Ok(Ok(_)) => {
                self.give_back(connection);
                Ok(())
            }
            Ok(Err(e)) => {
                // A refused recipient leaves the connection usable; lettre
                // marks one that broke.
                if !connection.has_broken() {
                    self.give_back(connection);
                }
                Err(super::classify(&e))
            }
            Err(_) => Err(SendError::Unreachable(format!(
                "no answer from {}:{} within {:?}",
                self.host, self.port, self.timeout
            ))),
        }
    }

    async fn connection(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let reused = self.idle.lock().map_or(None, |mut idle| idle.pop());
            let Some((mut connection, since)) = reused else {
                break;
            };
            if since.elapsed() < CHECK_AFTER_IDLE
                || timeout(self.timeout, connection.test_connected())
                    .await
                    .unwrap_or(false)
            {
                return Ok(connection);
            }
            connection.abort().await;
        }
        let opened = timeout(self.timeout, async {
            let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| {
                    SendError::Unreachable(format!("cannot connect to {}:{}: {e}", self.host, self.port))
                })?;
            // Best effort: without it the relay is only slower.
            let _ = stream.set_nodelay(true);
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &ClientId::default())
                .await
                .map_err(|e| super::classify(&e))
        })
        .await;
        opened.unwrap_or_else(|_| {
            Err(SendError::Unreachable(format!(
                "no greeting from {}:{} within {:?}",
                self.host, self.port, self.timeout
            )))
        })
    }

    fn give_back(&self, connection: AsyncSmtpConnection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.keep
        {
            idle.push((connection, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_urls_with_nothing_to_negotiate_take_the_relay() {
        let t = Duration::from_secs(1);
        let parsed = |url| Relay::for_url(url, t, 4).map(|r| (r.host, r.port));
        assert_eq!(parsed("smtp://127.0.0.1:2525"), Some(("127.0.0.1".into(), 2525)));
        assert_eq!(parsed("smtp://mail.example"), Some(("mail.example".into(), 25)));
        assert_eq!(parsed("smtp://[::1]:2525"), Some(("::1".into(), 2525)));
        for other in [
            "smtps://mail.example:465",
            "smtp://user:pw@mail.example:587",
            "smtp://mail.example:587?tls=required",
            "smtp://mail.example:notaport",
        ] {
            assert!(Relay::for_url(other, t, 4).is_none(), "{other}");
        }
    }
}
