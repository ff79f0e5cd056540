//! Just enough ELF reading to check that a runtime binary fits a board: its
//! machine (aarch64, arm, x86_64) and the glibc symbol versions it needs
//! (the `GLIBC_2.x` names in `.gnu.version_r`, the same list that
//! `objdump -T` shows).

use std::path::Path;

/// Errors raised while reading an ELF file.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an ELF file or is truncated.
    #[error("{path}: not a valid ELF file: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// The CPU architecture of an ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// 64-bit ARM (`EM_AARCH64`).
    Aarch64,
    /// 32-bit ARM (`EM_ARM`).
    Arm,
    /// x86-64 (`EM_X86_64`).
    X86_64,
    /// Anything else (the raw `e_machine`).
    Other(u16),
}

impl Machine {
    /// The machine a Rust target triple runs on.
    pub fn from_triple(triple: &str) -> Option<Machine> {
        let arch = triple.split('-').next()?;
        match arch {
            "aarch64" => Some(Machine::Aarch64),
            a if a.starts_with("arm") || a.starts_with("thumb") => Some(Machine::Arm),
            "x86_64" => Some(Machine::X86_64),
            _ => None,
        }
    }

    fn from_raw(m: u16) -> Machine {
        match m {
            183 => Machine::Aarch64,
            40 => Machine::Arm,
            62 => Machine::X86_64,
            other => Machine::Other(other),
        }
    }
}

/// What the checks need from a binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// The CPU architecture.
    pub machine: Machine,
    /// 64-bit (`ELFCLASS64`) or 32-bit.
    pub is_64: bool,
    /// Whether the file has a program interpreter (dynamically linked).
    pub dynamic: bool,
    /// Every `GLIBC_x.y[.z]` version it requires, sorted, highest last.
    pub glibc_versions: Vec<(u32, u32, u32)>,
}

impl ElfInfo {
    /// The highest required glibc version, if any (`None` for static or musl binaries).
    pub fn max_glibc(&self) -> Option<(u32, u32, u32)> {
        self.glibc_versions.last().copied()
    }
}

/// Format a glibc version triple as `2.17` (or `2.3.4`).
pub fn format_version(v: (u32, u32, u32)) -> String {
    if v.2 == 0 {
        format!("{}.{}", v.0, v.1)
    } else {
        format!("{}.{}.{}", v.0, v.1, v.2)
    }
}

/// Read the machine and glibc requirements of an ELF file.
pub fn read(path: &Path) -> Result<ElfInfo, ElfError> {
    let data = std::fs::read(path).map_err(|source| ElfError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&data).map_err(|reason| ElfError::Malformed {
        path: path.display().to_string(),
        reason,
    })
}

struct Reader<'a> {
    data: &'a [u8],
    le: bool,
}

impl Reader<'_> {
    fn bytes(&self, off: u64, n: usize) -> Result<&[u8], String> {
        let off = usize::try_from(off).map_err(|_| "offset too large".to_string())?;
        self.data
            .get(off..off.checked_add(n).ok_or("offset overflow")?)
            .ok_or_else(|| format!("truncated at offset {off}"))
    }
    fn u16(&self, off: u64) -> Result<u16, String> {
        let b: [u8; 2] = self.bytes(off, 2)?.try_into().map_err(|_| "short read")?;
        Ok(if self.le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }
    fn u32(&self, off: u64) -> Result<u32, String> {
        let b: [u8; 4] = self.bytes(off, 4)?.try_into().map_err(|_| "short read")?;
        Ok(if self.le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }
    fn u64(&self, off: u64) -> Result<u64, String> {
        let b: [u8; 8] = self.bytes(off, 8)?.try_into().map_err(|_| "short read")?;
        Ok(if self.le {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    }
    fn cstr(&self, off: u64) -> Result<&str, String> {
        let start = usize::try_from(off).map_err(|_| "offset too large".to_string())?;
        let rest = self.data.get(start..).ok_or("string offset out of range")?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated string")?;
        std::str::from_utf8(&rest[..end]).map_err(|_| "string is not UTF-8".to_string())
    }
}

const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
const PT_INTERP: u32 = 3;

/// Parse ELF bytes (see [`read`]).
pub fn parse(data: &[u8]) -> Result<ElfInfo, String> {
    if data.len() < 52 || &data[..4] != b"\x7fELF" {
        return Err("missing ELF magic".into());
    }
    let is_64 = match data[4] {
        1 => false,
        2 => true,
        c => return Err(format!("unknown ELF class {c}")),
    };
    let le = match data[5] {
        1 => true,
        2 => false,
        e => return Err(format!("unknown ELF data encoding {e}")),
    };
    let r = Reader { data, le };
    let machine = Machine::from_raw(r.u16(18)?);
    let (phoff, shoff, phentsize, phnum, shentsize, shnum) = if is_64 {
        (
            r.u64(32)?,
            r.u64(40)?,
            r.u16(54)?,
            r.u16(56)?,
            r.u16(58)?,
            r.u16(60)?,
        )
    } else {
        (
            u64::from(r.u32(28)?),
            u64::from(r.u32(32)?),
            r.u16(42)?,
            r.u16(44)?,
            r.u16(46)?,
            r.u16(48)?,
        )
    };
    let mut dynamic = false;
    for i in 0..u64::from(phnum) {
        if r.u32(phoff + i * u64::from(phentsize))? == PT_INTERP {
            dynamic = true;
        }
    }
    // Section header fields: type at 4; offset at 24 (64) / 16 (32); size at
    // 32 / 20; link at 40 / 24; info at 44 / 28.
    let section = |i: u64| -> Result<(u32, u64, u64, u32, u32), String> {
        let base = shoff + i * u64::from(shentsize);
        let ty = r.u32(base + 4)?;
        if is_64 {
            Ok((
                ty,
                r.u64(base + 24)?,
                r.u64(base + 32)?,
                r.u32(base + 40)?,
                r.u32(base + 44)?,
            ))
        } else {
            Ok((
                ty,
                u64::from(r.u32(base + 16)?),
                u64::from(r.u32(base + 20)?),
                r.u32(base + 24)?,
                r.u32(base + 28)?,
            ))
        }
    };
    let mut versions = Vec::new();
    for i in 0..u64::from(shnum) {
        let (ty, offset, _size, link, count) = section(i)?;
        if ty != SHT_GNU_VERNEED {
            continue;
        }
        let (_, strtab, _, _, _) = section(u64::from(link))?;
        // Elf_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32.
        // Elf_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32.
        let mut need = offset;
        for _ in 0..count {
            let cnt = r.u16(need + 2)?;
            let mut aux = need + u64::from(r.u32(need + 8)?);
            for _ in 0..cnt {
                let name = r.cstr(strtab + u64::from(r.u32(aux + 8)?))?;
                if let Some(v) = name.strip_prefix("GLIBC_").and_then(parse_version) {
                    versions.push(v);
                }
                let next = r.u32(aux + 12)?;
                if next == 0 {
                    break;
                }
                aux += u64::from(next);
            }
            let next = r.u32(need + 12)?;
            if next == 0 {
                break;
            }
            need += u64::from(next);
        }
    }
    versions.sort_unstable();
    versions.dedup();
    Ok(ElfInfo {
        machine,
        is_64,
        dynamic,
        glibc_versions: versions,
    })
}

fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut it = s.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    let patch = match it.next() {
        Some(p) => p.parse().ok()?,
        None => 0,
    };
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The versions objdump reports for the same file.
    fn objdump_versions(path: &Path) -> Option<Vec<(u32, u32, u32)>> {
        let out = std::process::Command::new("objdump")
            .arg("-T")
            .arg(path)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut v: Vec<_> = text
            .split_whitespace()
            .filter_map(|w| {
                w.trim_matches(|c| c == '(' || c == ')')
                    .strip_prefix("GLIBC_")
                    .and_then(parse_version)
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        Some(v)
    }

    #[test]
    fn reads_this_test_binary_like_objdump() {
        let exe = std::env::current_exe().unwrap();
        let info = read(&exe).unwrap();
        assert_eq!(info.machine, Machine::X86_64);
        assert!(info.is_64 && info.dynamic);
        assert!(info.max_glibc().unwrap() >= (2, 2, 5));
        if let Some(expected) = objdump_versions(&exe) {
            // objdump -T lists only versions of imported symbols; the
            // version-needs table may add a few more but never a higher one.
            assert_eq!(info.max_glibc(), expected.last().copied());
        }
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse(b"not an elf file at all, just text..............................").is_err());
        let mut truncated = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        truncated.truncate(64);
        assert!(parse(&truncated).is_err());
    }

    #[test]
    fn triples() {
        assert_eq!(
            Machine::from_triple("armv7-unknown-linux-gnueabihf"),
            Some(Machine::Arm)
        );
        assert_eq!(
            Machine::from_triple("aarch64-unknown-linux-gnu"),
            Some(Machine::Aarch64)
        );
        assert_eq!(Machine::from_triple("riscv64gc-unknown-linux-gnu"), None);
        assert_eq!(format_version((2, 17, 0)), "2.17");
    }
}
