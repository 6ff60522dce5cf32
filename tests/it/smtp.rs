//! A real SMTP server on loopback that records what it receives, with knobs
//! for the faults tests need: refusing recipients, answering slowly, being
//! down, or not offering PIPELINING.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
    time::Instant,
};

#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-unstuffed.
    pub data: String,
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.data.as_bytes())
            .unwrap_or_default()
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.parsed().header_raw(name).map(|v| v.trim().to_owned())
    }

    /// Every http(s) link in the text part.
    pub fn links(&self) -> Vec<String> {
        let text = self.text();
        text.split_whitespace()
            .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(|w| w.trim_end_matches(['.', ',', ')', '>']).to_owned())
            .collect()
    }

    /// The value of `name` in the query of the first link that has it.
    pub fn link_param(&self, name: &str) -> Option<String> {
        self.links().iter().find_map(|link| {
            let query = link.split_once('?')?.1;
            query.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == name).then(|| v.to_owned())
            })
        })
    }
}

/// How the server behaves; tests change it while it runs.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Recipients refused with a permanent 550.
    pub refuse: Vec<String>,
    /// Recipients refused with a transient 451.
    pub defer: Vec<String>,
    /// Waited before answering each DATA.
    pub delay: Duration,
    /// Greet with 421 and hang up, as a server that is down.
    pub down: bool,
    /// Leave PIPELINING out of the EHLO answer.
    pub no_pipelining: bool,
}

/// What the server refused, counted as it answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refusals {
    /// Permanent 550s to a recipient.
    pub permanent: u64,
    /// Transient 451s to a recipient.
    pub transient: u64,
    /// Connections greeted with 421 while down.
    pub turned_away: u64,
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    refusals: Arc<Mutex<Refusals>>,
    arrived: Arc<Notify>,
    /// Transactions whose MAIL, RCPT and DATA arrived together.
    pipelined: Arc<AtomicU64>,
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP receiver");
        let port = listener.local_addr().expect("local address").port();
        let server = SmtpServer {
            port,
            received: Arc::default(),
            behaviour: Arc::default(),
            refusals: Arc::default(),
            arrived: Arc::new(Notify::new()),
            pipelined: Arc::default(),
        };
        let accepting = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let session = accepting.clone();
                tokio::spawn(async move {
                    let _ = session.session(stream).await;
                });
            }
        });
        server
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.behaviour.lock().expect("behaviour lock"));
    }

    /// Transactions whose MAIL, RCPT and DATA arrived in one piece.
    pub fn pipelined(&self) -> u64 {
        self.pipelined.load(Ordering::Relaxed)
    }

    pub fn refusals(&self) -> Refusals {
        *self.refusals.lock().expect("refusals lock")
    }

    fn refused(&self, count: impl FnOnce(&mut Refusals)) {
        count(&mut self.refusals.lock().expect("refusals lock"));
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received lock").clone()
    }

    /// Messages to `address` (any case).
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Waits until at least `n` messages have arrived, or panics at the
    /// deadline with what did arrive.
    pub async fn wait_for(&self, n: usize, deadline: Duration) -> Vec<Received> {
        let until = Instant::now() + deadline;
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            // Registered before the count is read, so an arrival in between
            // still wakes us.
            notified.as_mut().enable();
            // Counted under the lock: copying thousands of messages at every
            // arrival would cost more than the sending it waits for.
            if self.received.lock().expect("received lock").len() >= n {
                return self.received();
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                panic!(
                    "waited {deadline:?} for {n} emails, got {}",
                    self.received().len()
                );
            }
        }
    }

    async fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        if self.behaviour.lock().expect("behaviour lock").down {
            self.refused(|r| r.turned_away += 1);
            write
                .write_all(b"421 localhost service not available\r\n")
                .await?;
            return Ok(());
        }
        write.write_all(b"220 localhost ESMTP onramp-test\r\n").await?;
        let mut from = String::new();
        let mut to = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_owned();
            let upper = command.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") {
                let pipelining = if self.behaviour.lock().expect("behaviour lock").no_pipelining {
                    ""
                } else {
                    "250-PIPELINING\r\n"
                };
                format!("250-localhost\r\n{pipelining}250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n")
            } else if upper.starts_with("HELO") {
                "250 localhost\r\n".into()
            } else if upper.starts_with("MAIL FROM:") {
                if lines.buffer().windows(6).any(|w| w == b"DATA\r\n") {
                    self.pipelined.fetch_add(1, Ordering::Relaxed);
                }
                from = address_of(&command);
                to.clear();
                "250 OK\r\n".into()
            } else if upper.starts_with("RCPT TO:") {
                let rcpt = address_of(&command);
                let behaviour = self.behaviour.lock().expect("behaviour lock").clone();
                if behaviour.refuse.iter().any(|r| r.eq_ignore_ascii_case(&rcpt)) {
                    self.refused(|r| r.permanent += 1);
                    "550 5.1.1 mailbox unavailable\r\n".into()
                } else if behaviour.defer.iter().any(|r| r.eq_ignore_ascii_case(&rcpt)) {
                    self.refused(|r| r.transient += 1);
                    "451 4.3.0 try again later\r\n".into()
                } else {
                    to.push(rcpt);
                    "250 OK\r\n".into()
                }
            } else if upper == "DATA" && to.is_empty() {
                // As RFC 2920 asks of a pipelining server: no data for a
                // transaction whose every recipient was refused.
                "554 5.5.1 no valid recipients\r\n".into()
            } else if upper == "DATA" {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let delay = self.behaviour.lock().expect("behaviour lock").delay;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                self.received.lock().expect("received lock").push(Received {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                self.arrived.notify_waiters();
                "250 OK queued\r\n".into()
            } else if upper == "RSET" {
                to.clear();
                "250 OK\r\n".into()
            } else if upper == "NOOP" {
                "250 OK\r\n".into()
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                "502 command not implemented\r\n".into()
            };
            write.write_all(reply.as_bytes()).await?;
        }
    }
}

fn address_of(command: &str) -> String {
    let start = command.find('<').map_or(0, |i| i + 1);
    let end = command.rfind('>').unwrap_or(command.len());
    command.get(start..end).unwrap_or_default().to_owned()
}
