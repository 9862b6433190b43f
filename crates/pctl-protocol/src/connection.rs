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
//! It reads ahead: a frame's first read asks for up to [`READ_AHEAD`] bytes,
//! so a small frame (prefix and body) costs one `read`, and whatever came
//! after it stays buffered for the next frame (pipelining). A body longer
//! than what came with its prefix is read to its end straight into the
//! body, never past it; an oversize prefix is refused with nothing read
//! past what that first read brought (at most [`READ_AHEAD`] bytes, into the
//! fixed buffer).
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

/// How many bytes a [`Connection`] asks for when it reads a frame's start.
pub const READ_AHEAD: usize = 4096;

/// A [`Connection`]'s read-ahead buffer: bytes read but not yet taken as a
/// frame are `buf[start..end]`; every other byte of `buf` is zero (taken
/// bytes are wiped as they are taken, the rest when it is dropped). The
/// buffer is allocated at the first read.
#[derive(Default)]
struct ReadAhead {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadAhead {
    /// Whether a frame's whole length prefix is buffered.
    fn has_prefix(&self) -> bool {
        self.end - self.start >= 4
    }

    /// Where the next read goes: the free space after the buffered bytes,
    /// which are first moved to the front. Called only while fewer than the
    /// prefix's 4 bytes are buffered, so it is never empty.
    fn spare(&mut self) -> &mut [u8] {
        use zeroize::Zeroize;
        if self.buf.is_empty() {
            self.buf = vec![0; READ_AHEAD];
        }
        if self.start > 0 {
            let n = self.end - self.start;
            self.buf.copy_within(self.start..self.end, 0);
            // what the move did not overwrite
            self.buf[n.max(self.start)..self.end].zeroize();
            (self.start, self.end) = (0, n);
        }
        &mut self.buf[self.end..]
    }

    /// `n` more bytes were read into [`Self::spare`].
    fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// Takes the buffered frame (whose prefix is buffered): its body, and
    /// how many of the body's bytes were buffered (the rest is to be read).
    /// An oversize prefix is refused before any allocation.
    fn take(&mut self) -> Result<(Zeroizing<Vec<u8>>, usize), FrameError> {
        use zeroize::Zeroize;
        let s = self.start;
        let len = frame_len([
            self.buf[s],
            self.buf[s + 1],
            self.buf[s + 2],
            self.buf[s + 3],
        ])?;
        let have = len.min(self.end - s - 4);
        let mut body = Zeroizing::new(vec![0u8; len]);
        body[..have].copy_from_slice(&self.buf[s + 4..s + 4 + have]);
        self.buf[s..s + 4 + have].zeroize();
        self.start += 4 + have;
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
        Ok((body, have))
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        if let Some(left) = self.buf.get_mut(self.start..self.end) {
            left.zeroize();
        }
    }
}

/// One side of a pctl connection.
pub struct Connection<S> {
    stream: S,
    ahead: ReadAhead,
}

impl<S> Connection<S> {
    pub fn new(stream: S) -> Self {
        Connection {
            stream,
            ahead: ReadAhead::default(),
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, to write around the framing (tests). Reading from it
    /// would miss what the connection has already read ahead.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }
}

impl<S: Read + Write> Connection<S> {
    /// Sends one message.
    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        write_frame(&mut self.stream, msg)
    }

    /// Reads one frame's body: one `read` for a frame of up to
    /// [`READ_AHEAD`] bytes that arrives whole, none when it came with the
    /// one before. Same errors and limits as [`read_body`].
    pub fn read_body(&mut self) -> Result<Zeroizing<Vec<u8>>, FrameError> {
        while !self.ahead.has_prefix() {
            let n = loop {
                match self.stream.read(self.ahead.spare()) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            if n == 0 {
                return Err(FrameError::Closed);
            }
            self.ahead.filled(n);
        }
        let (mut body, have) = self.ahead.take()?;
        if have < body.len() {
            self.stream.read_exact(&mut body[have..])?;
        }
        Ok(body)
    }

    /// Receives one message.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        let body = self.read_body()?;
        Ok(serde_json::from_slice(&body)?)
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

        /// Reads one frame's body, as [`Connection::read_body`] does: one
        /// `read` for a small frame that arrives whole, the rest of a longer
        /// one straight into its body, nothing more once the prefix exceeds
        /// [`MAX_FRAME`].
        pub async fn read_body_async(&mut self) -> Result<Zeroizing<Vec<u8>>, FrameError> {
            while !self.ahead.has_prefix() {
                let n = self.stream.read(self.ahead.spare()).await?;
                if n == 0 {
                    return Err(FrameError::Closed);
                }
                self.ahead.filled(n);
            }
            let (mut body, have) = self.ahead.take()?;
            if have < body.len() {
                self.stream.read_exact(&mut body[have..]).await?;
            }
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

    /// A stream of fixed bytes handed out at most `piece` bytes per `read`,
    /// counting the reads (writes go nowhere).
    struct Counted<'a> {
        data: &'a [u8],
        piece: usize,
        reads: usize,
    }

    impl Read for Counted<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            let n = buf.len().min(self.piece).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    impl Write for Counted<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn a_small_frame_is_read_in_one_read() {
        let one = encode(&"a small request").unwrap();
        let mut c = Connection::new(Counted {
            data: &one,
            piece: usize::MAX,
            reads: 0,
        });
        assert_eq!(c.recv::<String>().unwrap(), "a small request");
        assert_eq!(c.get_ref().reads, 1, "reads for one small frame");

        // Pipelined: three frames in one read, each taken in turn; then the
        // end of the stream is one more read.
        let three = [
            &encode(&"one").unwrap()[..],
            &encode(&"two").unwrap()[..],
            &encode(&"three").unwrap()[..],
        ]
        .concat();
        let mut c = Connection::new(Counted {
            data: &three,
            piece: usize::MAX,
            reads: 0,
        });
        for want in ["one", "two", "three"] {
            assert_eq!(c.recv::<String>().unwrap(), want);
        }
        assert_eq!(c.get_ref().reads, 1, "reads for three pipelined frames");
        assert!(matches!(c.recv::<String>(), Err(FrameError::Closed)));
        assert_eq!(c.get_ref().reads, 2);
    }

    #[test]
    fn a_frame_in_pieces_or_too_big_is_handled_as_before() {
        // What the unbuffered reader (`read_body`, the reader before
        // read-ahead) makes of a stream, frame by frame until an error.
        fn before(data: &[u8]) -> (Vec<Vec<u8>>, String) {
            let mut r = data;
            let mut got = Vec::new();
            loop {
                match read_body(&mut r) {
                    Ok(b) => got.push(b.to_vec()),
                    Err(e) => return (got, e.to_string()),
                }
            }
        }
        fn now(data: &[u8], piece: usize) -> (Vec<Vec<u8>>, String, usize) {
            let mut c = Connection::new(Counted {
                data,
                piece,
                reads: 0,
            });
            let mut got = Vec::new();
            loop {
                match c.read_body() {
                    Ok(b) => got.push(b.to_vec()),
                    Err(e) => return (got, e.to_string(), data.len() - c.get_ref().data.len()),
                }
            }
        }
        let big = vec![b'x'; MAX_FRAME];
        let mid = vec![b'y'; READ_AHEAD + 10];
        let small = frame(b"\"hello\"");
        let streams: Vec<(&str, Vec<u8>)> = vec![
            ("small", small.clone()),
            ("empty body", frame(b"")),
            ("at the limit", frame(&big)),
            ("past the read-ahead", [frame(&mid), small.clone()].concat()),
            (
                "small then big",
                [small.clone(), frame(&big), small.clone()].concat(),
            ),
            (
                "read-ahead boundary",
                [frame(&vec![b'z'; READ_AHEAD - 6]), small.clone()].concat(),
            ),
            ("cut in the prefix", [small.clone(), vec![0, 0]].concat()),
            ("cut in the body", small[..small.len() - 2].to_vec()),
            (
                "oversize",
                [
                    small.clone(),
                    ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec(),
                    big.clone(),
                ]
                .concat(),
            ),
            ("nothing", Vec::new()),
        ];
        for (name, data) in &streams {
            let (want, want_err) = before(data);
            for piece in [1, 2, 3, 5, 7, 4096, usize::MAX] {
                let (got, err, taken) = now(data, piece);
                assert!(got == want, "{name}, {piece}-byte pieces: other frames");
                assert_eq!(err, want_err, "{name}, {piece}-byte pieces");
                if *name == "oversize" {
                    // refused from the prefix: nothing read past the first
                    // read that brought it
                    assert!(
                        taken <= small.len() + READ_AHEAD,
                        "{name}, {piece}-byte pieces: read {taken} bytes"
                    );
                }
            }
        }
        assert_eq!(
            now(&streams[0].1, usize::MAX).1,
            FrameError::Closed.to_string()
        );
    }

    #[test]
    fn read_ahead_wipes_what_it_handed_out() {
        let two = [&encode(&"secret-one").unwrap()[..], &[0, 0][..]].concat();
        let mut c = Connection::new(Counted {
            data: &two,
            piece: usize::MAX,
            reads: 0,
        });
        assert_eq!(c.recv::<String>().unwrap(), "secret-one");
        let a = &c.ahead;
        assert_eq!((a.start, a.end), (two.len() - 2, two.len()));
        assert!(a.buf[..a.start].iter().all(|&b| b == 0), "taken bytes kept");
        assert!(a.buf[a.end..].iter().all(|&b| b == 0));
        // the two bytes left are moved to the front for the next read
        assert!(matches!(c.recv::<String>(), Err(FrameError::Closed)));
        let a = &c.ahead;
        assert_eq!((a.start, a.end), (0, 2));
        assert!(a.buf[2..].iter().all(|&b| b == 0), "moved bytes kept");
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
