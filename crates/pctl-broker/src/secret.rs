//! Secret storage: locked, zeroized memory for everything read from 1Password
//! or returned by STS.
//!
//! Each [`LockedString`] owns its own page-aligned allocation that is
//! `mlock`ed (kept out of swap) and excluded from core dumps, and is wiped
//! before it is freed. [`ZeroizingAllocator`] wipes every other heap block on
//! free, so transient copies made by parsers and the AWS SDK do not linger.

use std::alloc::{GlobalAlloc, Layout, System};

use zeroize::Zeroize;

use crate::platform;

/// A UTF-8 secret in locked memory.
pub struct LockedString {
    ptr: *mut u8,
    len: usize,
    layout: Layout,
}

// SAFETY: the buffer is owned exclusively and only read through `&self`.
unsafe impl Send for LockedString {}
// SAFETY: shared access is read-only.
unsafe impl Sync for LockedString {}

impl LockedString {
    /// Copies `value` into a fresh locked page. The caller wipes its own copy.
    pub fn new(value: &str) -> Self {
        let page = platform::page_size();
        let size = value.len().max(1).div_ceil(page) * page;
        let layout = Layout::from_size_align(size, page).expect("page-aligned layout");
        // SAFETY: layout has non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        platform::lock_pages(ptr, size);
        // SAFETY: ptr is valid for `size >= value.len()` bytes and does not overlap `value`.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), ptr, value.len()) };
        LockedString {
            ptr,
            len: value.len(),
            layout,
        }
    }

    /// Takes a `String`, wiping it after the copy.
    pub fn from_string(mut value: String) -> Self {
        let s = Self::new(&value);
        value.zeroize();
        s
    }

    /// The secret itself. Keep the borrow short.
    pub fn expose(&self) -> &str {
        // SAFETY: ptr holds `len` bytes copied from a valid &str.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.ptr, self.len)) }
    }
}

impl secrecy::ExposeSecret<str> for LockedString {
    fn expose_secret(&self) -> &str {
        self.expose()
    }
}

impl Clone for LockedString {
    fn clone(&self) -> Self {
        Self::new(self.expose())
    }
}

impl Drop for LockedString {
    fn drop(&mut self) {
        // SAFETY: ptr is valid for layout.size() bytes and owned by self.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) };
        buf.zeroize();
        platform::unlock_pages(self.ptr, self.layout.size());
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) };
    }
}

impl std::fmt::Debug for LockedString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockedString(***)")
    }
}

/// A global allocator that wipes every block before handing it back to the
/// system allocator, so freed buffers (pipe reads, JSON text, HTTP bodies)
/// never keep a secret. Install it in the binary with `#[global_allocator]`.
pub struct ZeroizingAllocator;

// SAFETY: delegates to `System`, only adding a wipe before free.
unsafe impl GlobalAlloc for ZeroizingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        wipe(ptr, layout.size());
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Never let the system allocator move a block without wiping the old one.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = System.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

/// Volatile wipe that the optimiser cannot drop as a dead store before free.
unsafe fn wipe(ptr: *mut u8, len: usize) {
    let words = len / 8;
    let wp = ptr as *mut u64;
    if (ptr as usize).is_multiple_of(8) {
        for i in 0..words {
            std::ptr::write_volatile(wp.add(i), 0);
        }
        for i in words * 8..len {
            std::ptr::write_volatile(ptr.add(i), 0);
        }
    } else {
        for i in 0..len {
            std::ptr::write_volatile(ptr.add(i), 0);
        }
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Overwrites this thread's dead stack: every byte below the caller's frame
/// that earlier, deeper calls have used.
///
/// Key material derived while signing (the SigV4 signing key and its HMAC
/// pad blocks) lives in stack frames that are popped, not wiped. Calling
/// this after the work that signed, from a frame no deeper than the one that
/// started it, overwrites those dead frames. On Linux the depth is what the
/// thread has really touched (see [`platform::stack_below`]), so a deep debug
/// build is covered as well as a release build; elsewhere it is
/// [`STACK_SCRUB`].
#[inline(never)]
pub fn scrub_stack() {
    let here = 0u8;
    let sp = std::hint::black_box(&here) as *const u8 as usize;
    let floor = match platform::stack_below(sp) {
        // The main thread's stack grows on demand and its mapping ends at
        // the deepest page ever touched: scrub down to it, never past it
        // (going past would push that mark deeper on every lock).
        Some(room) if room.grows => sp - room.bytes,
        // A thread stack is a fixed mapping above a guard page: stop short.
        Some(room) => sp - room.bytes.saturating_sub(SCRUB_MARGIN),
        None => sp.saturating_sub(STACK_SCRUB),
    };
    scrub_down_to(floor.max(sp.saturating_sub(STACK_SCRUB_MAX)));
}

/// Zeroes one `SCRUB_CHUNK` frame and recurses until the next would reach
/// `floor`; then [`scrub_tail`] finishes in small frames. Recursion reaches
/// any depth without a variable-sized stack array.
#[inline(never)]
fn scrub_down_to(floor: usize) {
    let mut buf = [0u8; SCRUB_CHUNK];
    // zeroize writes volatile: the stores are not dropped as dead.
    buf.zeroize();
    std::hint::black_box(&mut buf);
    let low = buf.as_ptr() as usize;
    if low > floor + SCRUB_CHUNK + SCRUB_TAIL {
        scrub_down_to(floor);
    } else {
        scrub_tail(floor);
    }
    // Keep the frame (and its buffer) alive across the call: no tail call.
    std::hint::black_box(&buf);
}

#[inline(never)]
fn scrub_tail(floor: usize) {
    let mut buf = [0u8; SCRUB_FINE];
    buf.zeroize();
    std::hint::black_box(&mut buf);
    if buf.as_ptr() as usize > floor + SCRUB_FINE + SCRUB_TAIL {
        scrub_tail(floor);
    }
    std::hint::black_box(&buf);
}

/// How much stack [`scrub_stack`] overwrites where the stack's used depth
/// cannot be read (not Linux).
pub const STACK_SCRUB: usize = 1024 * 1024;
/// Never scrub more than this (the default main-thread stack is 8 MiB).
pub const STACK_SCRUB_MAX: usize = 6 * 1024 * 1024;
const SCRUB_CHUNK: usize = 16 * 1024;
const SCRUB_FINE: usize = 512;
/// Left untouched just above the floor: room for the calls each scrub frame
/// makes (a deeper stack than the floor is never touched).
const SCRUB_TAIL: usize = 512;
/// Room left above a thread stack's guard page for the scrubber's own calls
/// and a signal handler.
const SCRUB_MARGIN: usize = 32 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locked_string_round_trips_and_hides_in_debug() {
        let s = LockedString::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{s:?}"), "LockedString(***)");
        let c = s.clone();
        assert_eq!(c.expose(), s.expose());
    }

    #[test]
    fn empty_and_page_sized_values() {
        assert_eq!(LockedString::new("").expose(), "");
        let big = "x".repeat(platform::page_size() + 1);
        assert_eq!(LockedString::new(&big).expose(), big);
    }

    /// kSigning of the SigV4 example in AWS's documentation (secret
    /// `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, 2012-02-15, us-east-1, iam).
    #[cfg(target_os = "linux")]
    const EXAMPLE_K_SIGNING: &str =
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d";

    /// Derives the example signing key `levels` x 4 KiB below the caller,
    /// as the SDK does deep inside a request.
    #[cfg(target_os = "linux")]
    #[inline(never)]
    fn sign_deep(levels: usize) -> u8 {
        let mut pad = [0u8; 4096];
        std::hint::black_box(&mut pad);
        if levels > 0 {
            return sign_deep(levels - 1) ^ std::hint::black_box(pad[1]);
        }
        let key = aws_sigv4::sign::v4::generate_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_329_264_000),
            "us-east-1",
            "iam",
        );
        std::hint::black_box(key.as_ref()[0])
    }

    /// Whether the dead stack below this frame holds `needle`, read through
    /// /proc/self/mem (a read syscall: no access below the stack pointer).
    #[cfg(target_os = "linux")]
    fn dead_stack_holds(needle: &[u8]) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let here = 0u8;
        let sp = std::hint::black_box(&here) as *const u8 as usize;
        let room = platform::stack_below(sp).expect("the stack is in /proc/self/maps");
        // skip the frames this function and the reads below it use
        let skip = 16 * 1024;
        let mut buf = vec![0u8; room.bytes - skip];
        let mut mem = std::fs::File::open("/proc/self/mem").unwrap();
        mem.seek(SeekFrom::Start((sp - room.bytes) as u64)).unwrap();
        mem.read_exact(&mut buf).unwrap();
        buf.windows(needle.len()).any(|w| w == needle)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn scrub_stack_wipes_a_signing_key_left_deep_in_dead_frames() {
        let want: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&EXAMPLE_K_SIGNING[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        // ~400 KiB deep: a debug build of the daemon signs about this far
        // below its lock call (its stack reaches ~590 KiB).
        sign_deep(100);
        assert!(
            dead_stack_holds(&want),
            "the probe does not see the signing key in the dead stack: it would prove nothing"
        );
        scrub_stack();
        assert!(
            !dead_stack_holds(&want),
            "the signing key survived scrub_stack in a dead frame"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stack_below_finds_this_threads_stack() {
        let here = 0u8;
        let sp = std::hint::black_box(&here) as *const u8 as usize;
        let room = platform::stack_below(sp).unwrap();
        assert!(room.bytes > 0 && room.bytes < 64 * 1024 * 1024);
        // libtest runs each test on a spawned thread: a fixed mapping
        assert!(!room.grows);
    }
}
