//! glibc's allocator held to a fixed mapping threshold.
//!
//! glibc serves an allocation of 128 KiB or more with its own mapping, and
//! each time it frees one it raises that threshold to the freed size. After
//! the first chunk of a bulk send, the chunk's buffers of a mebibyte or more
//! therefore come from the heap, and the small allocations made between two
//! chunks pin the space they leave: the server's resident memory grew with
//! the length of a send while its live heap did not. A threshold set
//! explicitly stays put. glibc takes it from `mallopt`, which would need
//! `unsafe`, or from `GLIBC_TUNABLES` as the program starts, so `serve`
//! starts itself once more with that variable set.

/// The threshold, glibc's own default, held.
pub const TUNABLE: &str = "glibc.malloc.mmap_threshold=131072";

/// Runs this program again in the same process with [`TUNABLE`] set, unless
/// `GLIBC_TUNABLES` is already set (by an operator, or by that second start).
/// Returns only if it did not: on another C library, or when the program's
/// file cannot be run again (replaced since it started, say).
pub fn hold_mapping_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;

        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return;
        }
        let Ok(program) = std::env::current_exe() else {
            return;
        };
        let failed = std::process::Command::new(program)
            .args(std::env::args_os().skip(1))
            .env("GLIBC_TUNABLES", TUNABLE)
            .exec();
        eprintln!(
            "onramp: could not start again with GLIBC_TUNABLES={TUNABLE} ({failed}); going on without it"
        );
    }
}
