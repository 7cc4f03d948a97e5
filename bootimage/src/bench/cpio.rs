//! A writer for the Linux initramfs format: a "newc" (SVR4, no CRC) cpio
//! archive, which the kernel unpacks into its root file system.
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex
//! fields), the NUL-terminated name padded to a multiple of 4, then the data
//! padded to a multiple of 4. The archive ends with the entry `TRAILER!!!`.

use std::io::{self, Write};

/// File types for [`Cpio::entry`]'s `mode`.
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

/// Builds a newc archive in memory.
#[derive(Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

fn pad4(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

impl Cpio {
    pub fn new() -> Cpio {
        Cpio { out: Vec::new(), ino: 1 }
    }

    /// One entry. `name` without a leading '/'; `rdev` for device nodes.
    pub fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let name = name.trim_start_matches('/');
        let nlink = if mode & 0o170000 == S_IFDIR { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
    }

    pub fn dir(&mut self, name: &str) {
        self.entry(name, S_IFDIR | 0o755, &[], (0, 0));
    }

    pub fn file(&mut self, name: &str, data: &[u8], perm: u32) {
        self.entry(name, S_IFREG | perm, data, (0, 0));
    }

    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, S_IFLNK | 0o777, target.as_bytes(), (0, 0));
    }

    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) {
        self.entry(name, S_IFCHR | perm, &[], (major, minor));
    }

    /// Appends the trailer and returns the archive.
    pub fn finish(mut self) -> Vec<u8> {
        self.ino = 0;
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        // Conventional: pad the whole archive to 512 bytes.
        while !self.out.len().is_multiple_of(512) {
            self.out.push(0);
        }
        self.out
    }

    /// [`Cpio::finish`] into a writer.
    pub fn write_to(self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.finish())
    }
}

/// One archive entry as [`parse`] returns it: `(name, mode, data, rdev)`.
pub type Entry = (String, u32, Vec<u8>, (u32, u32));

/// Reads a newc archive back, without the trailer. For tests and for
/// checking what the harness built.
pub fn parse(mut b: &[u8]) -> Result<Vec<Entry>, String> {
    let total = b.len();
    let mut out = Vec::new();
    loop {
        let at = total - b.len();
        if b.len() < 110 || &b[..6] != b"070701" {
            return Err(format!("no newc header at offset {at}"));
        }
        let field = |i: usize| -> Result<u32, String> {
            let s = std::str::from_utf8(&b[6 + 8 * i..14 + 8 * i]).map_err(|e| e.to_string())?;
            u32::from_str_radix(s, 16).map_err(|e| format!("offset {at}: {e}"))
        };
        let (mode, size, rmaj, rmin, namesize) = (field(1)?, field(6)? as usize, field(9)?, field(10)?, field(11)? as usize);
        let name_end = 110 + namesize;
        if namesize == 0 || b.len() < name_end {
            return Err(format!("offset {at}: truncated name"));
        }
        let name = String::from_utf8_lossy(&b[110..name_end - 1]).into_owned();
        let data_start = name_end.div_ceil(4) * 4;
        let data_end = data_start + size;
        if b.len() < data_end {
            return Err(format!("offset {at}: truncated data of {name}"));
        }
        if name == "TRAILER!!!" {
            return Ok(out);
        }
        out.push((name, mode, b[data_start..data_end].to_vec(), (rmaj, rmin)));
        b = &b[(data_end.div_ceil(4) * 4).min(b.len())..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut c = Cpio::new();
        c.dir("bin");
        c.file("/bin/busybox", b"\x7fELF...", 0o755);
        c.symlink("bin/sh", "busybox");
        c.char_dev("dev/console", 0o600, 5, 1);
        c.file("init", b"#!/bin/sh\n", 0o755);
        let a = c.finish();
        assert_eq!(a.len() % 512, 0);
        assert!(a.starts_with(b"07070100000001000041ed"));
        let e = parse(&a).unwrap();
        let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(names, ["bin", "bin/busybox", "bin/sh", "dev/console", "init"]);
        assert_eq!(e[1].1, S_IFREG | 0o755);
        assert_eq!(e[1].2, b"\x7fELF...");
        assert_eq!((e[2].1, e[2].2.as_slice()), (S_IFLNK | 0o777, &b"busybox"[..]));
        assert_eq!(e[3].3, (5, 1));
        assert_eq!(e[4].2, b"#!/bin/sh\n");
    }

    /// What the system's cpio makes of it, when there is one.
    #[test]
    fn system_cpio_agrees() {
        let mut c = Cpio::new();
        c.dir("d");
        c.file("d/f", b"hello", 0o644);
        let a = c.finish();
        let Ok(mut child) = std::process::Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
        else {
            return; // no cpio on this host: the round trip above is the check
        };
        child.stdin.take().unwrap().write_all(&a).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "d\nd/f\n");
    }
}
