//! Who is on the other end of a connected Unix socket.
//!
//! Both sides use it: the daemon admits only clients of its own user, and
//! the client talks only to a daemon of its own user (a stranger's process
//! listening at the socket path must never see a request).
//!
//! - Linux: `SO_PEERCRED` (uid and pid of the peer at `connect`/`listen` time).
//! - macOS: `getpeereid` for the uid and `LOCAL_PEERPID` for the pid
//!   (`SOL_LOCAL`). The kernel records both when the connection is made,
//!   so a peer cannot change them afterwards.

use std::os::fd::{AsFd, AsRawFd};

/// The credentials the kernel recorded for a socket peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub uid: u32,
    /// `None` where the platform does not report it.
    pub pid: Option<i32>,
}

/// Reads the peer's credentials of a connected Unix stream socket.
pub fn peer_cred<F: AsFd>(sock: &F) -> std::io::Result<PeerCred> {
    imp::peer_cred(sock.as_fd().as_raw_fd())
}

/// This process's effective user ID.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::PeerCred;

    pub fn peer_cred(fd: std::os::fd::RawFd) -> std::io::Result<PeerCred> {
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: cred and len are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&mut cred as *mut libc::ucred).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(PeerCred {
            uid: cred.uid,
            pid: (cred.pid > 0).then_some(cred.pid),
        })
    }
}

#[cfg(target_os = "macos")]
mod imp {
    use super::PeerCred;

    pub fn peer_cred(fd: std::os::fd::RawFd) -> std::io::Result<PeerCred> {
        let (mut uid, mut gid) = (0 as libc::uid_t, 0 as libc::gid_t);
        // SAFETY: uid and gid are valid for writes.
        if unsafe { libc::getpeereid(fd, &mut uid, &mut gid) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut pid: libc::pid_t = 0;
        let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
        // SAFETY: pid and len are valid for writes of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_LOCAL,
                libc::LOCAL_PEERPID,
                (&mut pid as *mut libc::pid_t).cast(),
                &mut len,
            )
        };
        Ok(PeerCred {
            uid,
            pid: (rc == 0 && pid > 0).then_some(pid),
        })
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
mod imp {
    pub fn peer_cred(_fd: std::os::fd::RawFd) -> std::io::Result<super::PeerCred> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "peer credentials are implemented for Linux and macOS only",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_of_a_pair_are_this_user() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        for s in [&a, &b] {
            let c = peer_cred(s).unwrap();
            assert_eq!(c.uid, euid());
            #[cfg(target_os = "linux")]
            assert_eq!(c.pid, Some(std::process::id() as i32));
        }
    }

    #[test]
    fn a_file_is_not_a_socket() {
        let f = std::fs::File::open("/").unwrap();
        assert!(peer_cred(&f).is_err());
    }
}
