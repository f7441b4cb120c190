//! Reading PTX text: its ISA version and its entry points.

/// The `.version major.minor` of a PTX text.
pub fn isa_version(ptx: &str) -> Option<(u32, u32)> {
    let line = ptx
        .lines()
        .find(|l| l.trim_start().starts_with(".version"))?;
    let (major, minor) = line.split_whitespace().nth(1)?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Every `.entry` with its parameter count.
pub fn entries(ptx: &str) -> Vec<(String, usize)> {
    signatures(ptx)
        .into_iter()
        .map(|(name, types)| (name, types.len()))
        .collect()
}

/// Every `.entry` with its parameters' PTX types (`.u64`, `.f32`, `.b8` for arrays).
pub fn signatures(ptx: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = ptx;
    while let Some(at) = rest.find(".entry ") {
        let after = &rest[at + ".entry ".len()..];
        let name_end = after
            .find(|c: char| c == '(' || c.is_whitespace())
            .unwrap_or(after.len());
        let name = after[..name_end].to_string();
        let mut types = Vec::new();
        if let (Some(open), Some(close)) = (after.find('('), after.find(')'))
            && open < close
            && after[name_end..open].trim().is_empty()
        {
            for decl in after[open + 1..close].split(',') {
                let ty = decl.split_whitespace().skip(1).find(|w| {
                    w.starts_with('.') && !matches!(*w, ".align" | ".ptr" | ".global" | ".const")
                });
                if let Some(ty) = ty {
                    types.push(ty.to_string());
                }
            }
        }
        out.push((name, types));
        rest = &after[name_end..];
    }
    out
}

/// The minimum CUDA driver version (as `major * 1000 + minor * 10`) that can JIT a PTX
/// ISA version, from NVIDIA's PTX ISA release notes (ISA 9.0 came with CUDA 13.0, 8.x
/// with CUDA 12.x, 7.x with CUDA 11.x).
pub fn min_driver_for_isa((major, minor): (u32, u32)) -> u32 {
    match major {
        9 => 13_000 + minor * 10,
        8 => 12_000 + minor * 10,
        7 => 11_000 + minor * 10,
        _ => 10_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = ".version 9.0\n.target sm_75\n.visible .entry foo(\n\t.param .u64 foo_param_0,\n\t.param .f32 foo_param_1\n)\n{\n}\n.visible .entry bar()\n{\n}\n";

    #[test]
    fn parses_version_and_entries() {
        assert_eq!(isa_version(SAMPLE), Some((9, 0)));
        assert_eq!(
            entries(SAMPLE),
            vec![("foo".to_string(), 2), ("bar".to_string(), 0)]
        );
        assert_eq!(min_driver_for_isa((9, 0)), 13_000);
        assert_eq!(
            signatures(SAMPLE),
            vec![
                (
                    "foo".to_string(),
                    vec![".u64".to_string(), ".f32".to_string()]
                ),
                ("bar".to_string(), vec![])
            ]
        );
        assert_eq!(min_driver_for_isa((8, 4)), 12_040);
    }
}
