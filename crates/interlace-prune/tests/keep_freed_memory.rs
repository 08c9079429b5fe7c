//! `keep_freed_memory` keeps a freed large block resident, where glibc's default gives it back.
//!
//! Its own process with its own `main` (no test harness): the setting is process-wide, and
//! glibc serves large blocks of threads other than the main one from separate arenas.

/// Resident memory of this process in MiB (`VmRSS`).
fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse::<f64>().ok()).expect("VmRSS value") / 1024.0
}

/// Resident memory gained by allocating, touching and freeing a 256 MiB block.
fn kept_after_free_mib() -> f64 {
    let before = resident_mib();
    let block = std::hint::black_box(vec![1u8; 256 << 20]);
    drop(block);
    resident_mib() - before
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn main() {
    // glibc's default: the block is mmap'ed and unmapped on free.
    let by_default = kept_after_free_mib();
    assert!(by_default < 16.0, "glibc's default kept {by_default:.1} MiB of a freed 256 MiB block");
    assert!(interlace_prune::keep_freed_memory(), "not applied (a MALLOC_* variable set in the environment?)");
    let kept = kept_after_free_mib();
    assert!(kept > 240.0, "with keep_freed_memory only {kept:.1} MiB of a freed 256 MiB block stayed resident");
    // The kept memory is reused: a second block of the same size adds nothing.
    let again = kept_after_free_mib();
    assert!(again < 16.0, "a second 256 MiB block added {again:.1} MiB instead of reusing the first");
    println!("keep_freed_memory: default kept {by_default:.1} MiB, with it {kept:.1} MiB, then reused ({again:.1} MiB more)");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn main() {
    assert!(!interlace_prune::keep_freed_memory());
}
