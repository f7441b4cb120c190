//! Reading a module's PTX: its ISA version and each `.entry` with its parameters, so a
//! launch can decode `kernelParams` by the kernel's real signature.

use crate::abi::{CuResult, INVALID_IMAGE, INVALID_PTX, UNSUPPORTED_PTX_VERSION};

/// One kernel parameter: its PTX type and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// `.u64`, `.f32`, `.b8[16]`, ...
    pub ty: String,
    /// Bytes.
    pub size: usize,
}

/// A kernel entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The `.entry` name.
    pub name: String,
    /// Parameters in order.
    pub params: Vec<Param>,
}

/// The newest PTX ISA the simulated driver (CUDA 13.0) accepts.
pub const MAX_ISA: (u32, u32) = (9, 0);

/// Parses a module image: PTX text (NUL-terminated at the call site).
pub fn parse(text: &str) -> Result<Vec<Entry>, CuResult> {
    let version = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(".version"))
        .ok_or(INVALID_IMAGE)?;
    let (major, minor) = version.trim().split_once('.').ok_or(INVALID_PTX)?;
    let isa: (u32, u32) = (
        major.trim().parse().map_err(|_| INVALID_PTX)?,
        minor.trim().parse().map_err(|_| INVALID_PTX)?,
    );
    if isa > MAX_ISA {
        return Err(UNSUPPORTED_PTX_VERSION);
    }
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".entry ") {
        let after = &rest[at + ".entry ".len()..];
        let name_end = after
            .find(|c: char| c == '(' || c.is_whitespace())
            .unwrap_or(after.len());
        let name = after[..name_end].trim().to_string();
        let body_start = after[name_end..].trim_start();
        let mut params = Vec::new();
        if let Some(list) = body_start.strip_prefix('(') {
            let close = list.find(')').ok_or(INVALID_PTX)?;
            for decl in list[..close].split(',') {
                let decl = decl.trim();
                if decl.is_empty() {
                    continue;
                }
                params.push(param(decl)?);
            }
        }
        out.push(Entry { name, params });
        rest = &after[name_end..];
    }
    Ok(out)
}

/// `.param .u64 name`, `.param .align 8 .b8 name[16]`.
fn param(decl: &str) -> Result<Param, CuResult> {
    let words: Vec<&str> = decl.split_whitespace().collect();
    if words.first() != Some(&".param") {
        return Err(INVALID_PTX);
    }
    let ty = words
        .iter()
        .skip(1)
        .find(|w| {
            w.starts_with('.') && **w != ".align" && **w != ".ptr" && !w.starts_with(".global")
        })
        .ok_or(INVALID_PTX)?;
    let scalar = match &ty[1..] {
        "u8" | "s8" | "b8" => 1,
        "u16" | "s16" | "b16" | "f16" => 2,
        "u32" | "s32" | "b32" | "f32" => 4,
        "u64" | "s64" | "b64" | "f64" => 8,
        _ => return Err(INVALID_PTX),
    };
    let last = words.last().ok_or(INVALID_PTX)?;
    let count = match (last.find('['), last.find(']')) {
        (Some(o), Some(c)) if o < c => last[o + 1..c].parse::<usize>().map_err(|_| INVALID_PTX)?,
        _ => 1,
    };
    Ok(Param {
        ty: if count > 1 {
            format!("{ty}[{count}]")
        } else {
            ty.to_string()
        },
        size: scalar * count,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_and_their_parameter_sizes() {
        let ptx = ".version 9.0\n.target sm_75\n.visible .entry foo(\n\t.param .u64 .ptr .global .align 4 foo_param_0,\n\t.param .f32 foo_param_1,\n\t.param .align 8 .b8 foo_param_2[16]\n)\n{\n}\n.visible .entry bar()\n{\n}\n";
        let e = parse(ptx).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].name, "foo");
        assert_eq!(
            e[0].params.iter().map(|p| p.size).collect::<Vec<_>>(),
            vec![8, 4, 16]
        );
        assert!(e[1].params.is_empty());
        assert_eq!(parse(".version 9.1\n"), Err(UNSUPPORTED_PTX_VERSION));
        assert_eq!(parse("\u{7f}ELF"), Err(INVALID_IMAGE));
    }

    #[test]
    fn every_shipped_kernel_has_a_twin() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../gpujobs-cuda/ptx");
        let mut seen = 0;
        for f in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            for e in parse(&text).unwrap() {
                let twin = crate::twins::builtin(&e.name)
                    .unwrap_or_else(|| panic!("kernel {} has no CPU twin", e.name));
                assert_eq!(
                    twin.params,
                    e.params.len(),
                    "twin of {} takes another number of parameters",
                    e.name
                );
                seen += 1;
            }
        }
        assert!(seen >= 20, "read {seen} kernels");
    }
}
