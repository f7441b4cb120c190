//! Page faults of this process, so benchmarks can show what the buffer pool saves.

/// Minor page faults of this process so far (field 10 of `/proc/self/stat`); `None`
/// where that file does not exist.
pub fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count the
    // fields after its closing parenthesis. Field 3 is the first after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(10 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn touching_fresh_pages_counts_faults() {
        let before = super::minor_faults().expect("linux has /proc/self/stat");
        let mut v = vec![0u8; 64 << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        std::hint::black_box(&v);
        let after = super::minor_faults().expect("readable");
        assert!(after > before, "{before} -> {after}");
    }
}
