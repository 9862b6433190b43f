//! Everything that differs between Linux and macOS: process hardening,
//! memory locking and who is on the other end of a socket.
//!
//! macOS path (not testable on our Linux CI): `PT_DENY_ATTACH` via `ptrace`
//! replaces `PR_SET_DUMPABLE`; `RLIMIT_CORE` and `mlock` are the same;
//! `MADV_DONTDUMP` has no equivalent (core dumps are already off);
//! peer credentials come from `getpeereid`/`LOCAL_PEERPID` (tokio's
//! `peer_cred` does this) and the executable from `proc_pidpath`; the
//! service unit is a launchd agent instead of a systemd user unit. The
//! owner of a loopback TCP peer (the credential endpoint's check) comes
//! from sock_diag netlink on Linux; macOS has neither sock_diag nor a
//! public layout for its socket table (`net.inet.tcp.pcblist_n`), so
//! there the endpoint relies on its token alone ([`tcp_peer_scan`]).

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

/// Asks our child `pid` (not yet waited for, so the PID is still its) to
/// end with SIGTERM, the same on Linux and macOS: a curses pinentry then
/// restores the terminal it drew on, which SIGKILL would leave garbled.
pub fn terminate_child(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) with integer arguments only.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// A child that leads a process group of its own (`setpgid(0, 0)` at
/// spawn, the same on Linux and macOS), so that what it starts goes with
/// it: dropped before it was waited for (a timeout, a cancelled request),
/// the whole group gets SIGKILL, not only the child. `op` may start helpers
/// (the desktop app's integration) that would otherwise outlive it, holding
/// its output pipes. A child already waited for is left alone: its PID, and
/// so its group's ID, may belong to another process by then.
pub struct GroupChild(tokio::process::Child);

impl GroupChild {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut tokio::process::Command) -> std::io::Result<Self> {
        cmd.process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map(GroupChild)
    }
}

impl std::ops::Deref for GroupChild {
    type Target = tokio::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for GroupChild {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        // `id()` is None once the child was reaped.
        let Some(pid) = self.0.id().and_then(|p| libc::pid_t::try_from(p).ok()) else {
            return;
        };
        // SAFETY: killpg(2) with integer arguments only; the group is the
        // unreaped child's own, so its ID cannot have been reused.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

/// Accepts a connection on `listener` as a non-blocking, close-on-exec
/// socket ([`crate::server`] registers it with the reactor only when it
/// would block).
///
/// Linux: one `accept4` with both flags. macOS (no `accept4`): `accept`,
/// then `O_NONBLOCK` and `FD_CLOEXEC` set on the new socket (std's
/// `accept` sets close-on-exec; `set_nonblocking` the other).
pub fn accept_nonblocking(
    listener: &std::os::unix::net::UnixListener,
) -> std::io::Result<std::os::unix::net::UnixStream> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        use nix::sys::socket::{accept4, SockFlag};
        use std::os::fd::{AsRawFd, FromRawFd};
        let fd = accept4(
            listener.as_raw_fd(),
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )?;
        // SAFETY: accept4 returned this descriptor, open and owned by no one else.
        Ok(unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) })
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        let (s, _) = listener.accept()?;
        s.set_nonblocking(true)?;
        Ok(s)
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

/// The parent process of `pid`, for `allowed_programs` ([`crate::guard`]):
/// the program that ran a `pctl` client.
///
/// Linux: the fourth field of `/proc/PID/stat` (after the command name,
/// which may hold spaces and parentheses: read after the last `)`).
/// macOS: `proc_pidinfo(PROC_PIDTBSDINFO)`'s `pbi_ppid`.
pub fn parent_of(pid: i32) -> Option<i32> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat_ppid(&stat)
    }
    #[cfg(target_os = "macos")]
    {
        // SAFETY: proc_bsdinfo is plain data; zeroed is a valid value.
        let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
        // SAFETY: info is writable for `size` bytes.
        let n = unsafe {
            libc::proc_pidinfo(
                pid,
                libc::PROC_PIDTBSDINFO,
                0,
                &mut info as *mut _ as *mut libc::c_void,
                size,
            )
        };
        (n == size).then_some(info.pbi_ppid as i32)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = pid;
        None
    }
}

#[cfg(any(target_os = "linux", test))]
fn parse_stat_ppid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The argument vector of `pid` (its `argv[0]` and the script an
/// interpreter runs are what `allowed_programs` also matches).
///
/// Linux: `/proc/PID/cmdline` (NUL-separated). macOS: the `KERN_PROCARGS2`
/// sysctl (argc, the executable path, then the NUL-separated arguments).
pub fn argv_of(pid: i32) -> Option<Vec<String>> {
    #[cfg(target_os = "linux")]
    {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        Some(
            raw.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        )
    }
    #[cfg(target_os = "macos")]
    {
        let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid];
        let mut size: libc::size_t = 0;
        // SAFETY: a size query (null buffer).
        let r = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                3,
                std::ptr::null_mut(),
                &mut size,
                std::ptr::null_mut(),
                0,
            )
        };
        if r != 0 || size < 4 {
            return None;
        }
        let mut buf = vec![0u8; size];
        // SAFETY: buf is writable for `size` bytes.
        let r = unsafe {
            libc::sysctl(
                mib.as_mut_ptr(),
                3,
                buf.as_mut_ptr() as *mut libc::c_void,
                &mut size,
                std::ptr::null_mut(),
                0,
            )
        };
        if r != 0 {
            return None;
        }
        buf.truncate(size);
        let argc = i32::from_ne_bytes(buf[..4].try_into().ok()?) as usize;
        let mut parts = buf[4..].split(|b| *b == 0).filter(|a| !a.is_empty());
        parts.next()?; // the executable path
        Some(
            parts
                .take(argc)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect(),
        )
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = pid;
        None
    }
}

/// Whether [`tcp_peer_diag`] / [`tcp_peer_scan`] can tell who is on the
/// other end of a loopback TCP connection on this OS.
pub const TCP_PEER_UID_CHECKABLE: bool = cfg!(target_os = "linux");

/// The process side of one end of a loopback TCP connection: the UID that
/// owns the socket and its inode (for [`pid_of_socket`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpOwner {
    pub uid: u32,
    pub inode: u64,
}

/// `TCP_ESTABLISHED` in the kernel's state numbering (`/proc/net/tcp`'s
/// `st` column and `inet_diag_msg.idiag_state`).
const TCP_ESTABLISHED: u8 = 1;

/// The owner a socket row names, or `None` when the row does not name a
/// live socket held by a process: a closed connection's row (a TIME_WAIT
/// or orphaned FIN_WAIT mini-socket) has inode 0 and reads as uid 0, so
/// anything but ESTABLISHED with an inode is unknown, never root.
fn live_owner(state: u8, uid: u32, inode: u64) -> Option<TcpOwner> {
    (state == TCP_ESTABLISHED && inode != 0).then_some(TcpOwner { uid, inode })
}

/// An address as the socket tables print it for either family: an
/// IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, what Java and .NET
/// sockets show for an IPv4 peer) becomes the IPv4 address it maps.
fn canonical(a: std::net::SocketAddr) -> std::net::SocketAddr {
    std::net::SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// Who holds the other end of a loopback TCP connection, whose socket is at
/// `peer` and connected to ours at `local`: one `sock_diag` (`INET_DIAG`)
/// netlink request for exactly that 4-tuple, which the kernel answers from
/// its connection hash in constant time, however many sockets the machine
/// has. The kernel finds an IPv6 socket connected through an IPv4-mapped
/// address from the IPv4 tuple too.
///
/// `Ok(None)`: no live socket of a process has that tuple (closed, in
/// TIME_WAIT, never there): refuse. `Err`: the kernel could not be asked
/// (no `inet_diag`, netlink refused): use [`tcp_peer_scan`].
///
/// macOS has no sock_diag; see [`tcp_peer_scan`].
pub fn tcp_peer_diag(
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
) -> std::io::Result<Option<TcpOwner>> {
    #[cfg(target_os = "linux")]
    {
        diag::query(local, peer)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (local, peer);
        Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
    }
}

/// The fallback of [`tcp_peer_diag`]: the row of `/proc/net/tcp` or
/// `/proc/net/tcp6` (IPv4-mapped rows included) whose local address is
/// `peer` and remote address `local`. The table has a row per socket on
/// the machine (tens of thousands under a TIME_WAIT flood), so this reads
/// files for milliseconds: call it off the async threads.
///
/// macOS: not implemented (`None`); the table is only reachable through
/// the `net.inet.tcp.pcblist_n` sysctl, whose record layout is private, so
/// the credential endpoint relies on its token alone there (SECURITY.md).
pub fn tcp_peer_scan(local: std::net::SocketAddr, peer: std::net::SocketAddr) -> Option<TcpOwner> {
    #[cfg(target_os = "linux")]
    {
        ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|path| {
            let f = std::fs::File::open(path).ok()?;
            tcp_table_row(std::io::BufReader::new(f), local, peer)
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (local, peer);
        None
    }
}

#[cfg(target_os = "linux")]
mod diag {
    use std::io;
    use std::net::SocketAddr;

    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NlAddr};

    use super::{canonical, live_owner, TcpOwner};

    pub(super) fn query(local: SocketAddr, peer: SocketAddr) -> io::Result<Option<TcpOwner>> {
        let family = if peer.is_ipv4() { AF_INET } else { AF_INET6 };
        let mut header = NetlinkHeader::default();
        // Not NLM_F_DUMP: one socket, looked up by its tuple.
        header.flags = NLM_F_REQUEST;
        let mut msg = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol: IPPROTO_TCP,
                extensions: ExtensionFlags::empty(),
                states: StateFlags::all(),
                socket_id: SocketId {
                    // The peer's socket: its source is the peer's address.
                    source_port: peer.port(),
                    destination_port: local.port(),
                    source_address: peer.ip(),
                    destination_address: local.ip(),
                    interface_id: 0,
                    // INET_DIAG_NOCOOKIE: match by the tuple alone.
                    cookie: [0xff; 8],
                },
            })
            .into(),
        );
        msg.finalize();
        let mut out = vec![0u8; msg.buffer_len()];
        msg.serialize(&mut out);

        let mut sock = Socket::new(NETLINK_SOCK_DIAG)?;
        sock.bind_auto()?;
        sock.connect(&NlAddr::new(0, 0))?;
        sock.send(&out, 0)?;
        // The kernel queues the answer while handling the send: never wait.
        let mut buf = Vec::with_capacity(8192);
        let n = sock.recv(&mut buf, libc::MSG_DONTWAIT)?;
        buf.truncate(n);
        let reply = NetlinkMessage::<SockDiagMessage>::deserialize(&buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        match reply.payload {
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                let h = &r.header;
                let id = &h.socket_id;
                // The exact lookup may fall back to a listener on that
                // port: only the very tuple asked for counts.
                let same = canonical(SocketAddr::new(id.source_address, id.source_port))
                    == canonical(peer)
                    && canonical(SocketAddr::new(id.destination_address, id.destination_port))
                        == canonical(local);
                Ok(same
                    .then(|| live_owner(h.state, h.uid, u64::from(h.inode)))
                    .flatten())
            }
            // ENOENT: no socket has that tuple.
            NetlinkPayload::Error(e) if e.raw_code() == -libc::ENOENT => Ok(None),
            NetlinkPayload::Error(e) => Err(io::Error::from_raw_os_error(-e.raw_code())),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected sock_diag answer",
            )),
        }
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

/// An address of `/proc/net/tcp{,6}`: "0100007F:1F90" (the IPv4 address
/// as the kernel's in-memory u32, the port in hex) or 32 hex digits of
/// four such words for IPv6; IPv4-mapped IPv6 addresses come back as IPv4.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_table_addr(s: &str) -> Option<std::net::SocketAddr> {
    use std::net::{IpAddr, Ipv6Addr, SocketAddr};
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |w: &str| u32::from_str_radix(w, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::from(word(ip)?),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(canonical(SocketAddr::new(ip, port)))
}

/// The live owner named by the `/proc/net/tcp{,6}` row for the socket at
/// `peer` connected to `local` ([`live_owner`]: state and inode checked).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn tcp_table_row(
    table: impl std::io::BufRead,
    local: std::net::SocketAddr,
    peer: std::net::SocketAddr,
) -> Option<TcpOwner> {
    let (local, peer) = (canonical(local), canonical(peer));
    table
        .lines()
        .skip(1)
        .map_while(Result::ok)
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || parse_table_addr(f[1])? != peer || parse_table_addr(f[2])? != local {
                return None;
            }
            let state = u8::from_str_radix(f[3], 16).ok()?;
            live_owner(state, f[7].parse().ok()?, f[9].parse().ok()?)
        })
}

#[cfg(test)]
mod tcp_tests {
    use super::*;
    use std::net::SocketAddr;

    const HEAD: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    /// An IPv4 address as the kernel prints it on this machine.
    fn hex4(a: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(a))
    }

    /// An IPv6 address as the kernel prints it: four in-memory u32 words.
    fn hex6(a: std::net::Ipv6Addr) -> String {
        a.octets()
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes(w.try_into().unwrap())))
            .collect()
    }

    fn row(n: u32, local: &str, remote: &str, st: &str, uid: u32, inode: u64) -> String {
        format!(
            "{n}: {local} {remote} {st} 00000000:00000000 00:00000000 00000000 {uid:>5}        0 {inode} 1 0\n"
        )
    }

    fn lookup(table: &str, local: &str, peer: &str) -> Option<TcpOwner> {
        let local: SocketAddr = local.parse().unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        tcp_table_row(std::io::Cursor::new(table), local, peer)
    }

    #[test]
    fn finds_the_peer_row_of_a_loopback_connection() {
        let lo = hex4([127, 0, 0, 1]);
        let table = format!(
            "{HEAD}{}{}{}",
            row(0, &format!("{lo}:1F90"), "00000000:0000", "0A", 1000, 1),
            row(
                1,
                &format!("{lo}:1F90"),
                &format!("{lo}:D431"),
                "01",
                1000,
                2
            ),
            row(
                2,
                &format!("{lo}:D431"),
                &format!("{lo}:1F90"),
                "01",
                1001,
                3
            ),
        );
        assert_eq!(
            lookup(&table, "127.0.0.1:8080", "127.0.0.1:54321"),
            Some(TcpOwner {
                uid: 1001,
                inode: 3
            })
        );
        assert_eq!(lookup(&table, "127.0.0.1:8080", "127.0.0.1:54322"), None);
    }

    /// Issue 15 item 7: a closed connection's row (a TIME_WAIT or orphaned
    /// FIN_WAIT2 mini-socket: uid 0, inode 0) is unknown, not root.
    #[test]
    fn a_closed_connections_row_is_unknown_not_root() {
        let lo = hex4([127, 0, 0, 1]);
        for st in ["06", "05", "08", "07"] {
            let table = format!(
                "{HEAD}{}",
                row(0, &format!("{lo}:D431"), &format!("{lo}:1F90"), st, 0, 0)
            );
            assert_eq!(
                lookup(&table, "127.0.0.1:8080", "127.0.0.1:54321"),
                None,
                "state {st}"
            );
        }
        // ESTABLISHED but no inode (orphaned) is unknown too.
        let table = format!(
            "{HEAD}{}",
            row(0, &format!("{lo}:D431"), &format!("{lo}:1F90"), "01", 0, 0)
        );
        assert_eq!(lookup(&table, "127.0.0.1:8080", "127.0.0.1:54321"), None);
        assert_eq!(live_owner(6, 0, 0), None);
        assert_eq!(live_owner(1, 0, 0), None);
        assert_eq!(live_owner(1, 0, 7), Some(TcpOwner { uid: 0, inode: 7 }));
    }

    /// Issue 15 item 5: Java and .NET connect through an IPv6 socket to
    /// `::ffff:127.0.0.1`; their row is in tcp6 with mapped addresses.
    #[test]
    fn finds_an_ipv4_mapped_row_in_tcp6() {
        let mapped: std::net::Ipv6Addr = "::ffff:127.0.0.1".parse().unwrap();
        let m = hex6(mapped);
        let table = format!(
            "{HEAD}{}",
            row(0, &format!("{m}:D431"), &format!("{m}:1F90"), "01", 1001, 9)
        );
        let want = Some(TcpOwner {
            uid: 1001,
            inode: 9,
        });
        assert_eq!(lookup(&table, "127.0.0.1:8080", "127.0.0.1:54321"), want);
        assert_eq!(
            lookup(
                &table,
                "[::ffff:127.0.0.1]:8080",
                "[::ffff:127.0.0.1]:54321"
            ),
            want
        );
        // a real IPv6 loopback row is not the IPv4 one
        let l6 = hex6(std::net::Ipv6Addr::LOCALHOST);
        let table = format!(
            "{HEAD}{}",
            row(
                0,
                &format!("{l6}:D431"),
                &format!("{l6}:1F90"),
                "01",
                1001,
                9
            )
        );
        assert_eq!(lookup(&table, "127.0.0.1:8080", "127.0.0.1:54321"), None);
        assert_eq!(lookup(&table, "[::1]:8080", "[::1]:54321"), want);
    }

    #[test]
    fn table_addresses_that_are_not_addresses_are_skipped() {
        for bad in [
            "",
            "0100007F",
            "0100007F:",
            "ZZ00007F:1F90",
            "0100007F0:1F90",
            "é:1F90",
        ] {
            assert_eq!(parse_table_addr(bad), None, "{bad:?}");
        }
    }

    #[cfg(target_os = "linux")]
    fn me() -> u32 {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_loopback_connection_is_ours_by_diag_and_by_scan() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        let local = s.local_addr().unwrap();
        let by_diag = tcp_peer_diag(local, peer).unwrap().unwrap();
        assert_eq!(by_diag.uid, me());
        assert_eq!(tcp_peer_scan(local, peer), Some(by_diag));
        assert_eq!(
            pid_of_socket(by_diag.inode, by_diag.uid),
            Some(std::process::id() as i32)
        );
        // our own end (the listener side) is a different socket
        assert_ne!(
            tcp_peer_diag(peer, local).unwrap().unwrap().inode,
            by_diag.inode
        );
        // nobody at that port: unknown, by either way
        let gone: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(tcp_peer_diag(local, gone).unwrap(), None);
        assert_eq!(tcp_peer_scan(local, gone), None);
    }

    /// A client whose socket is IPv6, connected to `::ffff:127.0.0.1`
    /// (what a JVM does): the endpoint sees an IPv4 peer.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_ipv4_mapped_client_is_ours_by_diag_and_by_scan() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let c = std::net::TcpStream::connect(format!("[::ffff:127.0.0.1]:{port}")).unwrap();
        assert!(c.local_addr().unwrap().is_ipv6());
        let (s, peer) = l.accept().unwrap();
        assert!(peer.is_ipv4());
        let local = s.local_addr().unwrap();
        let by_diag = tcp_peer_diag(local, peer).unwrap().unwrap();
        assert_eq!(by_diag.uid, me());
        assert_eq!(tcp_peer_scan(local, peer), Some(by_diag));
    }

    /// Issue 15 item 7 on a real socket: the client closed (its side is a
    /// FIN_WAIT2/TIME_WAIT mini-socket): unknown.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_closed_client_is_unknown() {
        use std::io::Write;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, peer) = l.accept().unwrap();
        let local = s.local_addr().unwrap();
        c.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        drop(c);
        // The close is asynchronous: poll until the row is no longer live.
        let mut seen = Some(());
        for _ in 0..200 {
            if tcp_peer_diag(local, peer).unwrap().is_none() {
                seen = None;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(seen, None, "the closed socket still reads as live");
        assert_eq!(tcp_peer_scan(local, peer), None);
    }
}

#[cfg(test)]
mod process_tests {
    #[test]
    fn ppid_is_read_after_a_command_name_with_spaces_and_parens() {
        let stat = "4242 (my (odd) prog) S 17 4242 4242 0 -1 4194560";
        assert_eq!(super::parse_stat_ppid(stat), Some(17));
        assert_eq!(super::parse_stat_ppid("garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_parent_and_argv() {
        let me = std::process::id() as i32;
        let parent = super::parent_of(me).unwrap();
        assert_eq!(parent as u32, std::os::unix::process::parent_id());
        let argv = super::argv_of(me).unwrap();
        assert!(!argv.is_empty());
    }
}

/// For the tests of the runners that use [`GroupChild`]: a program that
/// starts a long-lived child of its own and hangs.
#[cfg(test)]
pub(crate) mod group_testing {
    use std::future::Future;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    /// A script in `dir` that starts `sleep 30` in the background (its
    /// stdout, the script's, stays open), writes the sleep's PID to the
    /// returned file, then waits for it. Absolute paths only: the runners
    /// give their programs a trimmed environment.
    pub fn script_with_a_child(dir: &Path) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let pid = dir.join("child.pid");
        let script = dir.join("starts-a-child");
        let p = pid.display();
        std::fs::write(
            &script,
            format!("#!/bin/sh\n/bin/sleep 30 &\necho $! > {p}.tmp\n/bin/mv {p}.tmp {p}\nwait\n"),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        (script, pid)
    }

    /// The child's PID, once the script wrote it.
    pub fn child_pid(pidfile: &Path) -> Option<i32> {
        std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
    }

    /// Runs `attempt(timeout)` (a run of the script that the runner gives
    /// up on after `timeout`) until the script had started its child before
    /// it was given up on, with a longer timeout each time (a loaded machine
    /// may start the script slowly); the child's PID.
    pub async fn child_of_a_timed_out_run<F, Fut>(pidfile: &Path, mut attempt: F) -> i32
    where
        F: FnMut(Duration) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut timeout = Duration::from_millis(200);
        loop {
            let _ = std::fs::remove_file(pidfile);
            attempt(timeout).await;
            if let Some(pid) = child_pid(pidfile) {
                return pid;
            }
            assert!(
                timeout < Duration::from_secs(10),
                "the script never started its child"
            );
            timeout *= 2;
        }
    }

    /// Whether `pid` still runs (a zombie, dead but not yet reaped, does not).
    fn running(pid: i32) -> bool {
        #[cfg(target_os = "linux")]
        {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            state != Some(Some('Z'))
        }
        #[cfg(not(target_os = "linux"))]
        {
            // SAFETY: kill(2) with signal 0 only checks that the process exists.
            unsafe { libc::kill(pid, 0) == 0 }
        }
    }

    /// Waits (at most 10 s) for `pid` to end: whether it did.
    pub fn ends(pid: i32) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while running(pid) {
            if Instant::now() > until {
                // leave nothing behind
                // SAFETY: kill(2) with integer arguments only.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// A dropped [`super::GroupChild`] takes what it started with it (a
    /// request cancelled while its `op` runs).
    #[tokio::test]
    async fn a_dropped_group_child_takes_its_children_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let (script, pidfile) = script_with_a_child(dir.path());
        let mut child = super::GroupChild::spawn(
            tokio::process::Command::new(&script).stdout(std::process::Stdio::piped()),
        )
        .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        let pid = loop {
            if let Some(pid) = child_pid(&pidfile) {
                break pid;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the script ended early"
            );
            assert!(Instant::now() < until, "the script never started its child");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        drop(child);
        assert!(ends(pid), "the script's child outlived it");
    }
}
