//! An SMTP sink on loopback that keeps the link token of every message it
//! accepts, for the scenarios that complete what the emails start.

use std::sync::{Arc, Mutex};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

#[derive(Clone)]
pub struct Sink {
    pub port: u16,
    /// The link tokens of the emails accepted, when asked to keep them.
    tokens: Option<Arc<Mutex<Vec<String>>>>,
}

impl Sink {
    /// A sink that keeps the token of each email's link.
    pub async fn keeping_tokens() -> Sink {
        Self::launch(Some(Arc::default())).await
    }

    pub fn tokens(&self) -> Vec<String> {
        self.tokens
            .as_ref()
            .and_then(|t| t.lock().ok().map(|t| t.clone()))
            .unwrap_or_default()
    }

    async fn launch(tokens: Option<Arc<Mutex<Vec<String>>>>) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the sink");
        let port = listener.local_addr().expect("address").port();
        let sink = Sink { port, tokens };
        let kept = sink.tokens.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let _ = session(stream, kept.as_deref()).await;
                });
            }
        });
        sink
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

/// The token of the first link in a message, undoing quoted-printable.
fn token_of(data: &str) -> Option<String> {
    let text = data.replace("=\r\n", "").replace("=3D", "=");
    let start = text.find("token=")? + "token=".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

async fn session(stream: TcpStream, tokens: Option<&Mutex<Vec<String>>>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                if tokens.is_some() {
                    data.push_str(&line);
                }
            }
            if let Some(token) = tokens.and_then(|_| token_of(&data)) {
                if let Some(Ok(mut kept)) = tokens.map(Mutex::lock) {
                    kept.push(token);
                }
            }
            b"250 accepted\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 OK\r\n"
        };
        write.write_all(reply).await?;
    }
}
