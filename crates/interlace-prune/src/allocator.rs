//! The process's memory allocator policy for tensor work on the CPU.
//!
//! A CPU backend allocates and frees tensors of tens to hundreds of megabytes many times per
//! forward and backward pass (the 256 × 151,936 logits alone are 155 MB in f32). glibc's malloc
//! serves blocks that large with `mmap` and gives them back with `munmap` when freed, so every
//! pass faults in and zeroes the same memory again: `perf` of an `interlace bench` training step
//! on burn-flex showed the kernel's page clearing and fault handling at about 17% of the samples.
//! Keeping freed memory inside the process removes that work (docs/performance.md, lever 7).

/// Environment variables through which a user tunes glibc's malloc: when one is set, that
/// choice wins and [`keep_freed_memory`] leaves the allocator alone.
const USER_MALLOC_SETTINGS: [&str; 5] = ["MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX"];

/// Makes the allocator keep the memory freed tensors leave behind, for reuse by the next ones,
/// instead of returning it to the operating system and faulting it in again on the next pass.
///
/// On Linux with glibc it serves every allocation from malloc's heaps (no per-block `mmap`) and
/// trims a heap only when more than 2 GiB at its top are free. The process's resident memory then
/// stays near its peak until it exits; the peak itself grows a little (measured: 4,072 → 4,219 MiB
/// for the 2B-shaped calibration bench, 5,240 → 5,378–5,386 MiB for its training step) while the
/// training step got 1.18–1.28× faster. Call it once, first thing in `main`: it is a process-wide
/// setting, which is why a library never does it on its own. The `interlace` CLI does.
///
/// Returns whether the setting was applied: `false` on other platforms and allocators, or when
/// the user has tuned malloc through its environment variables (`MALLOC_MMAP_MAX_`,
/// `MALLOC_TRIM_THRESHOLD_`, …, or `glibc.malloc` in `GLIBC_TUNABLES`), which are left to win.
pub fn keep_freed_memory() -> bool {
    if user_tuned_malloc(std::env::vars_os().map(|(name, value)| (name.to_string_lossy().into_owned(), value.to_string_lossy().into_owned()))) {
        return false;
    }
    apply_keep_freed_memory()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply_keep_freed_memory() -> bool {
    // SAFETY: mallopt only changes malloc's tuning parameters; it is documented as safe to call
    // at any time, and any value of these two parameters is valid.
    unsafe { libc::mallopt(libc::M_MMAP_MAX, 0) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply_keep_freed_memory() -> bool {
    false
}

/// Whether the environment `vars` already tunes glibc's malloc.
fn user_tuned_malloc(mut vars: impl Iterator<Item = (String, String)>) -> bool {
    vars.any(|(name, value)| USER_MALLOC_SETTINGS.contains(&name.as_str()) || (name == "GLIBC_TUNABLES" && value.contains("glibc.malloc.")))
}

#[cfg(test)]
mod tests {
    use super::user_tuned_malloc;

    fn vars(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<Vec<_>>().into_iter()
    }

    #[test]
    fn a_users_malloc_settings_win() {
        assert!(!user_tuned_malloc(vars(&[("PATH", "/usr/bin"), ("MALLOC_CHECK", "1")])));
        assert!(user_tuned_malloc(vars(&[("MALLOC_TRIM_THRESHOLD_", "0")])));
        assert!(user_tuned_malloc(vars(&[("MALLOC_ARENA_MAX", "2")])));
        assert!(user_tuned_malloc(vars(&[("GLIBC_TUNABLES", "glibc.malloc.mmap_max=4")])));
        assert!(!user_tuned_malloc(vars(&[("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F")])));
    }
}
