//! Framing and the connection type both sides use.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of UTF-8
//! JSON. Frames larger than [`MAX_FRAME`] are refused from the length prefix
//! alone, before any allocation or any further read, so a hostile prefix
//! costs the reader nothing. Raw frame bytes are wiped after use (they may
//! hold credentials).
//!
//! [`Connection`] wraps a stream: blocking methods for the client (no async
//! runtime in `pctl`), `_async` methods for the daemon (feature `tokio`).
//! [`Connection::connect`] is how a client reaches the daemon: it writes
//! nothing until the socket's directory, the socket file and the peer's UID
//! all say the daemon is its own user's (see [`crate::dirs`], [`crate::peer`]).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::{dirs, peer};

/// Largest frame either side accepts, in bytes.
pub const MAX_FRAME: usize = 64 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {0} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parses a frame's length prefix, refusing oversize frames.
pub fn frame_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Encodes any message as a frame (wiped when dropped).
pub fn encode<T: Serialize>(msg: &T) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut out = Zeroizing::new(vec![0u8; 4]);
    serde_json::to_writer(&mut *out, msg)?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    out[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

fn eof_is_closed(e: std::io::Error) -> FrameError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        FrameError::Closed
    } else {
        FrameError::Io(e)
    }
}

/// Writes one frame (blocking).
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let buf = encode(msg)?;
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame's body (blocking). Nothing past the prefix is read when
/// the prefix exceeds [`MAX_FRAME`].
pub fn read_body<R: Read>(r: &mut R) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header).map_err(eof_is_closed)?;
    let mut body = Zeroizing::new(vec![0u8; frame_len(header)?]);
    r.read_exact(&mut body)?;
    Ok(body)
}

/// Reads one frame and decodes it (blocking).
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let body = read_body(r)?;
    Ok(serde_json::from_slice(&body)?)
}

/// One side of a pctl connection.
pub struct Connection<S> {
    stream: S,
}

impl<S> Connection<S> {
    pub fn new(stream: S) -> Self {
        Connection { stream }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }
}

impl<S: Read + Write> Connection<S> {
    /// Sends one message.
    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        write_frame(&mut self.stream, msg)
    }

    /// Receives one message.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        read_frame(&mut self.stream)
    }
}

/// Why a client could not reach a daemon it trusts.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing listens there (no directory, no socket, or a stale socket).
    #[error("no pctl daemon at {0}")]
    Absent(std::path::PathBuf),
    /// Something is there that is not provably this user's daemon.
    #[error(transparent)]
    Untrusted(#[from] dirs::Untrusted),
    #[error("cannot connect to the pctl daemon at {0}: {1}")]
    Io(std::path::PathBuf, std::io::Error),
}

impl Connection<UnixStream> {
    /// Connects to the daemon at `socket` after checking, in this order and
    /// before a single byte is written: the socket's directory is this
    /// user's and not writable by others (lstat), the socket file is a
    /// socket of this user (lstat), and the process that accepted the
    /// connection runs as this user (the kernel's peer credentials). This
    /// holds for any `PCTL_SOCK`.
    pub fn connect(socket: &Path) -> Result<Self, ConnectError> {
        let absent = || ConnectError::Absent(socket.to_path_buf());
        if !dirs::check_private_dir(&dirs::socket_dir(socket))? || !dirs::check_socket_file(socket)?
        {
            return Err(absent());
        }
        let stream = match UnixStream::connect(socket) {
            Ok(s) => s,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Err(absent())
            }
            Err(e) => return Err(ConnectError::Io(socket.to_path_buf(), e)),
        };
        let me = peer::euid();
        let cred = peer::peer_cred(&stream).map_err(|e| {
            ConnectError::Untrusted(dirs::Untrusted(format!(
                "refusing the pctl daemon at {}: cannot read its credentials ({e})",
                socket.display()
            )))
        })?;
        if cred.uid != me {
            return Err(ConnectError::Untrusted(dirs::Untrusted(format!(
                "refusing the process serving {}: it runs as uid {}, not you (uid {me}); remove {} or set PCTL_SOCK to a socket of your own",
                socket.display(),
                cred.uid,
                dirs::socket_dir(socket).display()
            ))));
        }
        Ok(Connection::new(stream))
    }
}

#[cfg(feature = "tokio")]
mod nonblocking {
    use super::*;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
        /// Sends one message.
        pub async fn send_async<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
            let buf = encode(msg)?;
            self.stream.write_all(&buf).await?;
            self.stream.flush().await?;
            Ok(())
        }

        /// Reads one frame's body. Nothing past the prefix is read when the
        /// prefix exceeds [`MAX_FRAME`].
        pub async fn read_body_async(&mut self) -> Result<Zeroizing<Vec<u8>>, FrameError> {
            let mut header = [0u8; 4];
            self.stream
                .read_exact(&mut header)
                .await
                .map_err(eof_is_closed)?;
            let mut body = Zeroizing::new(vec![0u8; frame_len(header)?]);
            self.stream.read_exact(&mut body).await?;
            Ok(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_stops_at_an_oversize_prefix() {
        let mut data = (100_000_000u32).to_be_bytes().to_vec();
        data.extend_from_slice(&[b'x'; 1000]);
        let mut r = &data[..];
        let err = read_body(&mut r).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge(100_000_000)), "{err}");
        assert_eq!(r.len(), 1000, "read past the refused prefix");
    }

    #[test]
    fn connect_refuses_a_socket_in_an_open_directory_without_writing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pctl-conn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let sock = dir.join("s");
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        listener.set_nonblocking(true).unwrap();
        let err = Connection::connect(&sock).err().unwrap();
        assert!(matches!(err, ConnectError::Untrusted(_)), "{err}");
        assert!(err.to_string().contains("lets others write"), "{err}");
        assert!(
            listener.accept().is_err(),
            "connected to an untrusted socket"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut c = Connection::connect(&sock).unwrap();
        let (mut server, _) = {
            listener.set_nonblocking(false).unwrap();
            listener.accept().unwrap()
        };
        c.send(&"hello").unwrap();
        let got: String = read_frame(&mut server).unwrap();
        assert_eq!(got, "hello");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
