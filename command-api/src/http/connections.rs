//! The HTTP listener's bound on open connections (`AEGIS_MAX_CONNECTIONS`): every connection
//! holds buffers and a task for as long as it is open, so a flood of clients would otherwise
//! grow memory without limit. Past the bound a connection is answered `503` with
//! `Retry-After` and closed, without reading its request; past the bound on those answers
//! too, it is closed at once.

use aegis_runtime::metrics::Metrics;
use axum::serve::Listener;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Refusals written at once; each costs one small write and at most a second of waiting for
/// the client to close. Past it, a connection is closed without an answer.
const REFUSING: usize = 512;

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-type: application/json\r\ncontent-length: 97\r\nconnection: close\r\n\r\n{\"error\":\"unavailable\",\"message\":\"the server holds as many connections as it may; retry shortly\"}";

pub struct Bounded {
    inner: TcpListener,
    open: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Bounded {
    pub fn new(inner: TcpListener, max: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            open: Arc::new(Semaphore::new(max.max(1))),
            refusing: Arc::new(Semaphore::new(REFUSING)),
            metrics,
        }
    }

    fn refuse(&self, mut io: TcpStream) {
        self.metrics.connection_refused();
        let Ok(slot) = self.refusing.clone().try_acquire_owned() else {
            return; // dropped: closed at once
        };
        tokio::spawn(async move {
            // A lingering close: answer, end our side, then read what the client sent until
            // it closes (or a second passes). Closing with its request unread would reset the
            // connection, and the reset can destroy the answer before the client reads it.
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                io.write_all(REFUSAL).await?;
                io.shutdown().await?;
                let mut sink = [0u8; 1024];
                while io.read(&mut sink).await? > 0 {}
                io::Result::Ok(())
            })
            .await;
            drop(slot);
        });
    }
}

impl Listener for Bounded {
    type Io = Held;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Held, SocketAddr) {
        loop {
            // Axum's own accept: it waits out errors such as too many open files.
            let (io, addr) = Listener::accept(&mut self.inner).await;
            match self.open.clone().try_acquire_owned() {
                Ok(slot) => return (Held { io, _slot: slot }, addr),
                Err(_) => self.refuse(io),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection that frees its place under the bound when it closes.
pub struct Held {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Held {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Held {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::REFUSAL;

    #[test]
    fn the_refusal_is_one_whole_http_response() {
        let text = std::str::from_utf8(REFUSAL).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|n| n.parse().ok())
            .expect("a length");
        assert_eq!(length, body.len());
        let body: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(body["error"], "unavailable");
    }
}
