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

/// Overwrites `STACK_SCRUB` bytes of this thread's stack below the caller.
///
/// Key material derived while signing (the SigV4 signing key, HMAC state)
/// lives in stack frames that are popped, not wiped. Calling this after
/// the work that signed, from a frame no deeper than the one that started
/// it, overwrites those dead frames.
#[inline(never)]
pub fn scrub_stack() {
    let mut buf = [0u8; STACK_SCRUB];
    // Volatile-ish: black_box keeps the compiler from eliding the writes.
    buf.zeroize();
    std::hint::black_box(&mut buf);
}

/// How much stack [`scrub_stack`] overwrites.
pub const STACK_SCRUB: usize = 256 * 1024;

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
}
