//! Plain SMTP (`smtp://host:port`, no TLS, no login) over lettre's own
//! connection, on sockets with TCP_NODELAY. lettre's pooled transport opens
//! its sockets without it, so each message's final `.`, written on its own,
//! waits for the server's delayed acknowledgement; here it goes at once.
//! Where the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go in
//! one write, so an email costs two round trips instead of four; lettre
//! still builds every command and reads every answer.
//! At most `ONRAMP_SMTP_CONNECTIONS` connections are open, and idle ones are
//! kept for reuse. An email takes its send slot only once the server has
//! accepted its envelope: until the message's end is written the server
//! cannot accept it, so a process killed while emails wait there sends none
//! of them twice.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use lettre::{
    Message,
    address::Envelope,
    transport::smtp::{
        Error,
        client::AsyncSmtpConnection,
        commands::{Data, Ehlo, Mail, Rcpt},
        extension::ClientId,
    },
};
use tokio::{
    sync::Semaphore,
    time::{Instant, error::Elapsed, timeout, timeout_at},
};

use super::{Gate, SendError, Sent};

/// A connection idle longer than this is checked with NOOP before reuse: the
/// server may have closed it meanwhile.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Relay {
    host: String,
    port: u16,
    timeout: Duration,
    idle: Arc<Mutex<Vec<(Connection, Instant)>>>,
    keep: usize,
    /// One turn per connection in use, `keep` in all, so that open
    /// connections never outnumber `keep`: a new one is opened only when
    /// none is idle.
    turns: Arc<Semaphore>,
}

struct Connection {
    smtp: AsyncSmtpConnection,
    /// The server offered PIPELINING.
    pipelining: bool,
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
            turns: Arc::new(Semaphore::new(keep)),
        })
    }

    /// Sends `message`, taking its slot from `gate` once the server has
    /// accepted the envelope and waits for the message.
    pub async fn send(&self, message: Message, gate: Gate) -> Sent {
        if Instant::now() > gate.until {
            return Sent::Held;
        }
        // The connections in use never outnumber the ones this relay keeps.
        let Ok(Ok(_turn)) = timeout_at(gate.until, self.turns.clone().acquire_owned()).await else {
            return Sent::Held;
        };
        let mut connection = match self.connection().await {
            Ok(connection) => connection,
            Err(e) => return Sent::Answered(Err(e), None),
        };
        let email = message.formatted();
        let envelope = message.envelope();
        let ascii_addresses = envelope
            .from()
            .into_iter()
            .chain(envelope.to())
            .all(|a| AsRef::<str>::as_ref(a).is_ascii());
        if !(connection.pipelining && email.is_ascii() && ascii_addresses) {
            // lettre's own send works out the MAIL parameters that non-ASCII
            // addresses or content need, and sends the envelope and the
            // message in one go.
            let Some(slot) = gate.pass().await else {
                self.give_back(connection);
                return Sent::Held;
            };
            let sent = timeout(self.timeout, connection.smtp.send(envelope, &email)).await;
            return Sent::Answered(self.settle(connection, sent.map(|s| s.map(drop))), Some(slot));
        }
        let accepted = timeout(self.timeout, pipelined_envelope(&mut connection.smtp, envelope)).await;
        if !matches!(accepted, Ok(Ok(()))) {
            return Sent::Answered(self.settle(connection, accepted), None);
        }
        let Some(slot) = gate.pass().await else {
            // Closed before the message ends, the transaction is dropped.
            drop(connection);
            return Sent::Held;
        };
        let sent = timeout(self.timeout, message_of(&mut connection.smtp, email)).await;
        Sent::Answered(self.settle(connection, sent), Some(slot))
    }

    /// What an exchange came to; the connection is kept for the next email
    /// unless it broke.
    fn settle(
        &self,
        connection: Connection,
        sent: Result<Result<(), Error>, Elapsed>,
    ) -> Result<(), SendError> {
        match sent {
            Ok(Ok(())) => {
                self.give_back(connection);
                Ok(())
            }
            Ok(Err(e)) => {
                if !connection.smtp.has_broken() {
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

    async fn connection(&self) -> Result<Connection, SendError> {
        loop {
            let reused = self.idle.lock().map_or(None, |mut idle| idle.pop());
            let Some((mut connection, since)) = reused else {
                break;
            };
            if since.elapsed() < CHECK_AFTER_IDLE
                || timeout(self.timeout, connection.smtp.test_connected())
                    .await
                    .unwrap_or(false)
            {
                return Ok(connection);
            }
            connection.smtp.abort().await;
        }
        let opened = timeout(self.timeout, async {
            let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| {
                    SendError::Unreachable(format!("cannot connect to {}:{}: {e}", self.host, self.port))
                })?;
            // Best effort: without it the relay is only slower.
            let _ = stream.set_nodelay(true);
            let mut smtp =
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), &ClientId::default())
                    .await
                    .map_err(|e| super::classify(&e))?;
            // lettre keeps only the extensions it uses from its EHLO; asking
            // again (which resets nothing on a fresh session) shows the rest.
            let ehlo = smtp
                .command(Ehlo::new(ClientId::default()))
                .await
                .map_err(|e| super::classify(&e))?;
            let pipelining = ehlo.message().any(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))
            });
            Ok(Connection { smtp, pipelining })
        })
        .await;
        opened.unwrap_or_else(|_| {
            Err(SendError::Unreachable(format!(
                "no greeting from {}:{} within {:?}",
                self.host, self.port, self.timeout
            )))
        })
    }

    fn give_back(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.keep
        {
            idle.push((connection, Instant::now()));
        }
    }
}

/// An email's envelope with its commands pipelined: MAIL, each RCPT and DATA
/// in one write, their answers read in order. After any refusal the
/// connection is closed, as lettre's own send does, so that no answer still
/// on the way can be taken for the next email's.
async fn pipelined_envelope(smtp: &mut AsyncSmtpConnection, envelope: &Envelope) -> Result<(), Error> {
    let mut commands = Mail::new(envelope.from().cloned(), Vec::new()).to_string();
    for to in envelope.to() {
        commands.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
    }
    commands.push_str(&Data.to_string());
    // `command` writes them all and reads MAIL's answer.
    let mut refused = smtp.command(commands).await.err();
    if refused.as_ref().is_none_or(|e| e.status().is_some()) {
        for _ in 0..=envelope.to().len() {
            match smtp.read_response().await {
                Ok(_) => {}
                // The connection broke: no further answer will come.
                Err(e) if e.status().is_none() => {
                    refused = Some(e);
                    break;
                }
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
    }
    match refused {
        Some(e) => {
            smtp.abort().await;
            Err(e)
        }
        None => Ok(()),
    }
}

/// The message after an accepted envelope, with the line that ends it, in
/// one write. lettre's `message` writes the end in a write of its own: on a
/// connection with TCP_NODELAY, a segment of its own for both ends to
/// handle, for every email. The connection is closed if it is refused.
async fn message_of(smtp: &mut AsyncSmtpConnection, email: Vec<u8>) -> Result<(), Error> {
    // Only ASCII messages take this way (see `send`), so the text is there.
    let sent = match String::from_utf8(email) {
        Ok(text) => smtp.command(data_section(text)).await,
        Err(e) => smtp.message(e.as_bytes()).await,
    };
    match sent {
        Ok(_) => Ok(()),
        Err(e) => {
            smtp.abort().await;
            Err(e)
        }
    }
}

/// `email` as DATA carries it (RFC 5321, 4.5.2): a period that starts a
/// line is doubled, and a line of one period ends it. A line starts after
/// CR LF only, as in lettre's own encoding. Such periods are rare, so the
/// text is searched for them (not walked a character at a time) and kept
/// as it is when there are none.
pub fn data_section(email: String) -> String {
    const END: &str = "\r\n.\r\n";
    let bytes = email.as_bytes();
    let starts_line = |at: usize| at == 0 || bytes.get(at.wrapping_sub(2)..at) == Some(b"\r\n");
    // A one-character search runs on memchr; most periods are inside lines.
    let mut periods = email
        .match_indices('.')
        .map(|(at, _)| at)
        .filter(|&at| starts_line(at))
        .peekable();
    if periods.peek().is_none() {
        let mut out = email;
        out.push_str(END);
        return out;
    }
    let mut out = String::with_capacity(email.len() + email.len() / 64 + END.len());
    let mut copied = 0;
    for at in periods {
        out.push_str(&email[copied..at]);
        out.push('.');
        copied = at;
    }
    out.push_str(&email[copied..]);
    out.push_str(END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_section_doubles_each_period_that_starts_a_line_and_ends_with_one_alone() {
        assert_eq!(
            data_section(".\r\ntest\r\n..x\r\nmid.dle.\r\n.".into()),
            "..\r\ntest\r\n...x\r\nmid.dle.\r\n..\r\n.\r\n"
        );
        // Only CR LF ends a line.
        assert_eq!(
            data_section("a\n.b\r.c\r\r\n.d".into()),
            "a\n.b\r.c\r\r\n..d\r\n.\r\n"
        );
        assert_eq!(data_section(String::new()), "\r\n.\r\n");
    }

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
