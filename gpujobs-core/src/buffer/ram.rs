//! How much memory the host has: the ceiling of buffer budgets and job limits.

/// Total physical memory from `/proc/meminfo` (Linux); `None` elsewhere.
pub fn physical_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
