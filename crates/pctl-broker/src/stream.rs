//! The daemon's end of a client connection, registered with the runtime's
//! reactor (epoll) only once a read or a write on it would block.
//!
//! Most clients have sent their whole request by the time the daemon accepts
//! them, and then shut their sending side (the `pctl` client does, see
//! `RequestKind::holds_connection`): such a connection is served on the
//! bare non-blocking socket with a `read` for the request, a `write` for the
//! answer and a `read` that finds the client's end at once, and never costs
//! the `epoll_ctl` and `epoll_wait` of a registration. While the socket is
//! bare every read and write is tried directly; the first that would block
//! registers the socket, and from then on everything goes through tokio as
//! before (same readiness, same timeouts).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream as Bare;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;

/// A client connection, bare or registered.
pub struct Stream(Inner);

enum Inner {
    /// Not registered; non-blocking.
    Bare(Bare),
    Registered(UnixStream),
    /// Registration failed: the socket is closed.
    Lost,
}

impl Stream {
    /// A freshly accepted socket, which must be in non-blocking mode.
    pub fn bare(sock: Bare) -> Self {
        Stream(Inner::Bare(sock))
    }

    /// Whether the socket is registered with the reactor.
    #[cfg(test)]
    pub fn is_registered(&self) -> bool {
        matches!(self.0, Inner::Registered(_))
    }

    /// Registers a bare socket (must run inside the runtime).
    fn registered(&mut self) -> io::Result<&mut UnixStream> {
        if let Inner::Bare(_) = self.0 {
            let Inner::Bare(sock) = std::mem::replace(&mut self.0, Inner::Lost) else {
                unreachable!()
            };
            self.0 = Inner::Registered(UnixStream::from_std(sock)?);
        }
        match &mut self.0 {
            Inner::Registered(s) => Ok(s),
            _ => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection could not be registered",
            )),
        }
    }
}

impl From<UnixStream> for Stream {
    fn from(s: UnixStream) -> Self {
        Stream(Inner::Registered(s))
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Inner::Bare(sock) = &mut this.0 {
            match sock.read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if would_block(&e) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match this.registered() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Inner::Bare(sock) = &mut this.0 {
            match sock.write(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if would_block(&e) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        match this.registered() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Inner::Registered(s) => Pin::new(s).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Inner::Bare(sock) => Poll::Ready(sock.shutdown(std::net::Shutdown::Write)),
            Inner::Registered(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Lost => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A request already sent is read and answered on the bare socket; the
    /// next read, which would wait, registers it and still gets its data.
    #[tokio::test]
    async fn a_socket_is_registered_only_when_it_would_block() {
        let (a, mut b) = Bare::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.write_all(b"request").unwrap();
        let mut s = Stream::bare(a);
        let mut buf = [0u8; 64];
        assert_eq!(s.read(&mut buf).await.unwrap(), 7);
        s.write_all(b"answer").await.unwrap();
        s.flush().await.unwrap();
        assert!(!s.is_registered());
        let mut got = [0u8; 6];
        b.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"answer");
        let later = tokio::spawn(async move {
            let n = s.read(&mut buf).await.unwrap();
            (s.is_registered(), buf[..n].to_vec())
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        b.write_all(b"more").unwrap();
        let (registered, data) = later.await.unwrap();
        assert!(registered);
        assert_eq!(data, b"more");
    }

    /// A client that shut its sending side after its request (as `pctl`
    /// does): request, answer and the client's end, all on the bare socket.
    #[tokio::test]
    async fn a_client_that_is_done_sending_never_costs_a_registration() {
        let (a, mut b) = Bare::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.write_all(b"request").unwrap();
        b.shutdown(std::net::Shutdown::Write).unwrap();
        let mut s = Stream::bare(a);
        let mut buf = [0u8; 64];
        assert_eq!(s.read(&mut buf).await.unwrap(), 7);
        s.write_all(b"answer").await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 0, "the client's end");
        assert!(!s.is_registered());
        let mut got = Vec::new();
        drop(s);
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"answer");
    }

    /// An answer larger than the socket's buffer: written in part on the
    /// bare socket, the rest once registered, all of it in order.
    #[tokio::test]
    async fn a_write_that_would_block_finishes_registered() {
        let (a, mut b) = Bare::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut s = Stream::bare(a);
        let big: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let mut all = Vec::new();
            b.read_to_end(&mut all).unwrap();
            all
        });
        s.write_all(&big).await.unwrap();
        assert!(s.is_registered());
        drop(s);
        assert!(reader.join().unwrap() == big);
    }
}
