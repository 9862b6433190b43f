//! Everything that differs between Linux and macOS: process hardening,
//! memory locking and who is on the other end of a socket.
//!
//! macOS path (not testable on our Linux CI): `PT_DENY_ATTACH` via `ptrace`
//! replaces `PR_SET_DUMPABLE`; `RLIMIT_CORE` and `mlock` are the same;
//! `MADV_DONTDUMP` has no equivalent (core dumps are already off);
//! peer credentials come from `getpeereid`/`LOCAL_PEERPID` (tokio's
//! `peer_cred` does this) and the executable from `proc_pidpath`; the
//! service unit is a launchd agent instead of a systemd user unit.

use std::path::PathBuf;

/// The memory page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// Keeps pages out of swap and out of core dumps.
///
/// An `mlock` failure (a low `RLIMIT_MEMLOCK`: EPERM at 0, ENOMEM once it
/// is used up) warns instead of failing closed: the page is still excluded
/// from core dumps, the process is still non-dumpable, and the only loss
/// is that the page may be swapped. The first failure is logged once and
/// kept for `status` ([`mlock_failure`]); SECURITY.md (memory) says why.
pub fn lock_pages(ptr: *mut u8, len: usize) {
    // SAFETY: callers pass a live allocation of `len` bytes.
    let rc = unsafe { libc::mlock(ptr as *const libc::c_void, len) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        MLOCK_FAILURE.get_or_init(|| {
            let msg = format!(
                "mlock failed ({err}): secrets may be written to swap; raise RLIMIT_MEMLOCK \
                 (`ulimit -l`, LimitMEMLOCK= for a service), then restart the daemon with `pctl stop`"
            );
            tracing::warn!("{msg}");
            msg
        });
    }
    #[cfg(target_os = "linux")]
    // SAFETY: advisory call on a live allocation.
    unsafe {
        libc::madvise(ptr as *mut libc::c_void, len, libc::MADV_DONTDUMP);
    }
}

static MLOCK_FAILURE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The first `mlock` failure of this process, for `status`; `None` while
/// every secret page has been locked.
pub fn mlock_failure() -> Option<&'static str> {
    MLOCK_FAILURE.get().map(String::as_str)
}

/// Tries to lock one page now (for `pctl doctor`), so [`mlock_failure`]
/// answers even before the first secret was stored.
pub fn probe_mlock() {
    let mut page = vec![0u8; page_size()];
    lock_pages(page.as_mut_ptr(), page.len());
    unlock_pages(page.as_mut_ptr(), page.len());
}

/// Undoes [`lock_pages`] before the memory is freed.
pub fn unlock_pages(ptr: *mut u8, len: usize) {
    // SAFETY: callers pass a live allocation of `len` bytes.
    unsafe {
        libc::munlock(ptr as *const libc::c_void, len);
    }
}

/// The stack below a thread's current frame: how many bytes lie between
/// `sp` and the lowest address of its stack mapping, and whether that
/// mapping grows on demand (the main thread's `[stack]`, whose low end is
/// the deepest page the thread ever touched) or is a fixed thread stack
/// above a guard page.
pub struct StackRoom {
    pub bytes: usize,
    pub grows: bool,
}

/// Where `sp` lives, from `/proc/self/maps` (a process may always read its
/// own, dumpable or not). `None` when it cannot be told.
///
/// macOS: no `/proc`; `pthread_get_stackaddr_np` and
/// `pthread_get_stacksize_np` give the whole reserved stack, not the used
/// part, so callers fall back to a fixed depth there.
pub fn stack_below(sp: usize) -> Option<StackRoom> {
    #[cfg(target_os = "linux")]
    {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        maps.lines().find_map(|line| {
            let mut parts = line.split_whitespace();
            let (lo, hi) = parts.next()?.split_once('-')?;
            let lo = usize::from_str_radix(lo, 16).ok()?;
            let hi = usize::from_str_radix(hi, 16).ok()?;
            (lo..hi).contains(&sp).then(|| StackRoom {
                bytes: sp - lo,
                grows: parts.nth(4) == Some("[stack]"),
            })
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = sp;
        None
    }
}

/// Forbids core dumps and same-user debuggers for this process.
///
/// Linux: `RLIMIT_CORE = 0` and `PR_SET_DUMPABLE = 0`, which also makes
/// `/proc/PID/mem` and `ptrace` unavailable to other processes of the same
/// user. macOS: `RLIMIT_CORE = 0` and `ptrace(PT_DENY_ATTACH)`.
pub fn harden_process() -> std::io::Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to a local struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[cfg(target_os = "macos")]
    // SAFETY: PT_DENY_ATTACH takes no address or data.
    unsafe {
        libc::ptrace(libc::PT_DENY_ATTACH, 0, std::ptr::null_mut(), 0);
    }
    Ok(())
}

/// Whether this process may be dumped or traced by its own user.
pub fn is_dumpable() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with integer arguments only.
        (unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }) != 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The executable of another process, for the audit log.
pub fn exe_of(pid: i32) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_link(format!("/proc/{pid}/exe")).ok()
    }
    #[cfg(target_os = "macos")]
    {
        let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
        // SAFETY: buf is writable for its whole length.
        let n = unsafe {
            libc::proc_pidpath(pid, buf.as_mut_ptr() as *mut libc::c_void, buf.len() as u32)
        };
        if n <= 0 {
            return None;
        }
        buf.truncate(n as usize);
        String::from_utf8(buf).ok().map(PathBuf::from)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = pid;
        None
    }
}

/// Whether [`tcp_peer`] can tell who is on the other end of a loopback
/// TCP connection on this OS.
pub const TCP_PEER_UID_CHECKABLE: bool = cfg!(target_os = "linux");

/// Who holds the other end of a loopback TCP connection, whose socket is at
/// `peer` and connected to ours at `local` (IPv4): its UID and the socket's
/// inode (for [`pid_of_socket`]).
///
/// Linux: the kernel's socket table, `/proc/net/tcp` (the peer's socket is
/// the row whose local address is `peer` and remote address `local`).
/// macOS: not implemented (`None`); the table is only reachable through
/// the `net.inet.tcp.pcblist_n` sysctl, whose record layout is private, so
/// the credential endpoint relies on its token alone there (SECURITY.md).
pub fn tcp_peer(local: std::net::SocketAddr, peer: std::net::SocketAddr) -> Option<(u32, u64)> {
    #[cfg(target_os = "linux")]
    {
        let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
        tcp_table_row(&table, local, peer)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (local, peer);
        None
    }
}

/// The process of `uid` holding socket `inode`: the `/proc/PID/fd` entry
/// linking to `socket:[INODE]`, searched among that UID's processes (the
/// owner of `/proc/PID`) that this process may inspect. A scan of every
/// such process's descriptors (milliseconds): call it off the async
/// threads. macOS: `None`.
pub fn pid_of_socket(inode: u64, uid: u32) -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let want = format!("socket:[{inode}]");
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|p| {
            let pid: i32 = p.file_name().to_str()?.parse().ok()?;
            if p.metadata().ok()?.uid() != uid {
                return None;
            }
            let fds = std::fs::read_dir(p.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str())
                })
                .then_some(pid)
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (inode, uid);
        None
    }
}

/// The UID and inode columns of the `/proc/net/tcp` row for the socket at
/// `peer` connected to `local`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn tcp_table_row(
    table: &str,
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
) -> Option<(u32, u64)> {
    use std::net::{IpAddr, SocketAddr};
    // "0100007F:1F90": the address as the kernel's in-memory u32, the port in hex.
    let parse = |s: &str| -> Option<SocketAddr> {
        let (ip, port) = s.split_once(':')?;
        let ip = u32::from_str_radix(ip, 16).ok()?;
        let port = u16::from_str_radix(port, 16).ok()?;
        Some(SocketAddr::new(IpAddr::from(ip.to_ne_bytes()), port))
    };
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || parse(f[1])? != peer || parse(f[2])? != local {
            return None;
        }
        Some((f[7].parse().ok()?, f[9].parse().ok()?))
    })
}

#[cfg(test)]
mod tcp_tests {
    use super::*;

    #[test]
    fn finds_the_peer_row_of_a_loopback_connection() {
        // Host byte order as the kernel prints it on this machine.
        let hex = |a: [u8; 4]| format!("{:08X}", u32::from_ne_bytes(a));
        let lo = hex([127, 0, 0, 1]);
        let table = format!(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: {lo}:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0\n\
             1: {lo}:1F90 {lo}:D431 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0\n\
             2: {lo}:D431 {lo}:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 3 1 0\n"
        );
        let server: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let client: std::net::SocketAddr = "127.0.0.1:54321".parse().unwrap();
        assert_eq!(tcp_table_row(&table, server, client), Some((1001, 3)));
        let other: std::net::SocketAddr = "127.0.0.1:54322".parse().unwrap();
        assert_eq!(tcp_table_row(&table, server, other), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_loopback_connection_is_ours() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let (uid, inode) = tcp_peer(s.local_addr().unwrap(), peer).unwrap();
        assert_eq!(uid, me);
        assert_eq!(pid_of_socket(inode, uid), Some(std::process::id() as i32));
    }
}
