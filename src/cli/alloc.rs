//! The process's allocator policy: glibc malloc's thresholds, set once before a command that
//! streams data starts its threads. It owns those knobs and nothing else; the library allocates
//! as it always does (benches/README.md, "The allocator, measured").
//!
//! By default glibc gives a freed buffer of a megabyte or more back to the kernel (`munmap`, or a
//! trimmed heap top), so the next chunk, sealed blob or pack read faults in fresh zeroed pages:
//! a first backup of the corpus took 0.9 million page faults and a sixth of its CPU in the kernel.
//! Keeping such buffers in the heap (no `mmap` below 32 MiB, no trimming below 1 GiB, heap grown
//! 64 MiB at a time) lets them be reused; the peak RSS of backups does not move (measured), since
//! what is kept is what the peak already held. Restores keep the default: their arenas hold more
//! that way, and their peak has a target of its own.

/// Which allocator policy a command runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// glibc's defaults.
    Default,
    /// Large buffers stay in the heap and are reused (backup, dump, check, copy, jobs).
    Streaming,
}

/// Sets `policy` for the rest of the process. Call before the command starts threads; a no-op
/// for [`Policy::Default`] and on other C libraries. `CAIRN_MALLOC_DEFAULT=1` keeps glibc's
/// defaults (to measure against).
pub fn set(policy: Policy) {
    if policy == Policy::Default || std::env::var_os("CAIRN_MALLOC_DEFAULT").is_some_and(|v| v == "1") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MIB: libc::c_int = 1024 * 1024;
        // SAFETY: mallopt only changes malloc's parameters; it is called before the command's
        // threads exist, and a rejected value (return 0) leaves the default in place.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 * MIB);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * MIB);
            libc::mallopt(libc::M_TOP_PAD, 64 * MIB);
        }
    }
}
