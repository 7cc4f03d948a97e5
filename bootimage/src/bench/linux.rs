//! The Linux reference guest: Debian's stock kernel with a small initramfs
//! holding busybox-static, the NIC modules and this repository's service
//! binary (`guest/linux-services`).
//!
//! Everything is fetched by Debian package name with the machine's apt
//! (`apt-cache` resolves `linux-image-amd64` to the concrete
//! `linux-image-*-amd64` package it depends on; `apt-get download` fetches
//! it and `busybox-static`; `dpkg-deb -x` unpacks them) and cached under
//! `target/bench-cache/linux/`. The initramfs is a newc cpio written by
//! [`super::cpio`]. Module dependencies come from each module's `.modinfo`
//! (`depends=`), since a package ships no `modules.dep` (depmod makes it
//! at install time).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cpio::Cpio;

/// The meta-package whose dependency names the concrete kernel package.
pub const KERNEL_META: &str = "linux-image-amd64";
/// busybox, statically linked.
pub const BUSYBOX: &str = "busybox-static";
/// Modules the guest loads (with their dependencies, in dependency order).
pub const ROOT_MODULES: [&str; 3] = ["virtio_pci", "virtio_net", "igb"];
/// Printed on the serial console by the service binary once it listens.
pub const READY_MARKER: &str = "arbalest-linux-services: listening";
/// The guest's name for its one NIC.
pub const IFACE: &str = "eth0";
/// Cargo package of the service binary.
pub const SERVICES_PACKAGE: &str = "arbalest-linux-services";
/// Rust target of the service binary.
pub const SERVICES_TARGET: &str = "x86_64-unknown-linux-gnu";

/// What [`prepare`] made.
#[derive(Clone, Debug)]
pub struct LinuxGuest {
    /// `vmlinuz-*` from the kernel package.
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Package name and version, e.g. `linux-image-6.1.0-56-amd64 6.1.192-2`.
    pub kernel_package: String,
    pub busybox_package: String,
    /// Modules in the initramfs, in load order.
    pub modules: Vec<String>,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let what = format!("{cmd:?}");
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `(Version, Depends)` of the candidate version of `pkg`.
fn apt_show(pkg: &str) -> Result<(String, String), String> {
    let text = run(Command::new("apt-cache").args(["show", "--no-all-versions", pkg]))?;
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string())).unwrap_or_default()
    };
    let version = field("Version:");
    if version.is_empty() {
        return Err(format!("apt-cache show {pkg}: no Version"));
    }
    Ok((version, field("Depends:")))
}

/// The concrete kernel package named in the `Depends:` of [`KERNEL_META`]
/// (`linux-image-6.1.0-56-amd64 (= 6.1.192-2)` → `linux-image-6.1.0-56-amd64`).
pub fn kernel_package_from_depends(depends: &str) -> Option<String> {
    depends
        .split([',', '|'])
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .find(|n| n.starts_with("linux-image-") && n.ends_with("-amd64") && *n != KERNEL_META)
        .map(str::to_string)
}

/// Resolves `pkg`'s candidate, running `apt-get update` once if apt knows nothing yet.
fn apt_show_or_update(pkg: &str, log: &dyn Fn(&str)) -> Result<(String, String), String> {
    match apt_show(pkg) {
        Ok(v) => Ok(v),
        Err(first) => {
            log(&format!("apt-cache knows no {pkg} ({first}); running apt-get update"));
            run(Command::new("apt-get").args(["update", "-qq"]))?;
            apt_show(pkg)
        }
    }
}

/// `dir/<pkg>_<version>_*.deb`, downloaded by name unless already there.
fn download(dir: &Path, pkg: &str, version: &str, log: &dyn Fn(&str)) -> Result<PathBuf, String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let find = || -> Option<PathBuf> {
        // apt-get download escapes ':' of an epoch as %3a.
        let v = version.replace(':', "%3a");
        let prefix = format!("{pkg}_{v}_");
        fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    log(&format!("downloading {pkg} {version} (apt-get download)"));
    run(Command::new("apt-get").args(["download", "-qq", &format!("{pkg}={version}")]).current_dir(dir))?;
    find().ok_or_else(|| format!("apt-get download {pkg}={version} left no .deb in {}", dir.display()))
}

/// Unpacks `deb` into `dir` once (a marker file records completion).
fn extract(deb: &Path, dir: &Path) -> Result<(), String> {
    let marker = dir.join(".arbalest-extracted");
    if marker.exists() {
        return Ok(());
    }
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir))?;
    fs::write(&marker, deb.to_string_lossy().as_bytes()).map_err(|e| e.to_string())
}

/// The strings of an ELF64 object's `.modinfo` section (`key=value`).
pub fn modinfo(elf: &[u8]) -> Result<Vec<String>, String> {
    let rd16 = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let rd32 = |o: usize| elf.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
    let rd64 = |o: usize| elf.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize);
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return Err("not a little-endian ELF64 object".into());
    }
    let bad = || "truncated ELF".to_string();
    let shoff = rd64(0x28).ok_or_else(bad)?;
    let shentsize = rd16(0x3a).ok_or_else(bad)?;
    let shnum = rd16(0x3c).ok_or_else(bad)?;
    let shstrndx = rd16(0x3e).ok_or_else(bad)?;
    let sh = |i: usize| -> Option<(usize, usize, usize)> {
        let b = shoff + i * shentsize;
        Some((rd32(b)?, rd64(b + 0x18)?, rd64(b + 0x20)?))
    };
    let (_, stroff, strsize) = sh(shstrndx).ok_or_else(bad)?;
    let names = elf.get(stroff..stroff + strsize).ok_or_else(bad)?;
    for i in 0..shnum {
        let (name, off, size) = sh(i).ok_or_else(bad)?;
        let n = names.get(name..).ok_or_else(bad)?;
        let n = &n[..n.iter().position(|&c| c == 0).unwrap_or(n.len())];
        if n == b".modinfo" {
            let data = elf.get(off..off + size).ok_or_else(bad)?;
            return Ok(data
                .split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect());
        }
    }
    Err("no .modinfo section".into())
}

/// A module's name as the kernel knows it (`i2c-algo-bit.ko` → `i2c_algo_bit`).
pub fn module_name(file: &str) -> String {
    file.trim_end_matches(".ko").replace('-', "_")
}

/// Load order of `roots` and their dependencies: every module after all it
/// depends on. `deps` maps a module to its `depends=`; a name missing from
/// `deps` is built in (or absent) and skipped.
pub fn load_order(roots: &[&str], deps: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    fn visit(m: &str, deps: &BTreeMap<String, Vec<String>>, seen: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if !seen.insert(m.to_string()) {
            return;
        }
        let Some(d) = deps.get(m) else { return };
        for x in d {
            visit(x, deps, seen, out);
        }
        out.push(m.to_string());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in roots {
        visit(r, deps, &mut seen, &mut out);
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// The guest's `/init` (busybox sh). The host passes `arbip=ADDR/PREFIX`
/// and `arbgw=GW` on the kernel command line; Linux hands unknown `k=v`
/// arguments to init as environment variables.
pub fn init_script(modules: &[String]) -> String {
    format!(
        r#"#!/bin/sh
# Arbalest bench: Linux reference guest init.
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "arbalest-linux-guest: Linux $(uname -r), $(nproc) CPUs"
echo "arbalest-linux-guest: mitigations in effect: $(grep -l Mitigation /sys/devices/system/cpu/vulnerabilities/* 2>/dev/null | xargs -n1 basename 2>/dev/null | tr '\n' ' ')"
for m in {modules}; do
    insmod /lib/modules/$m.ko || echo "arbalest-linux-guest: insmod $m failed"
done
i=0
while [ ! -e /sys/class/net/{iface} ]; do
    i=$((i+1))
    if [ $i -gt 600 ]; then echo "arbalest-linux-guest: no {iface}"; poweroff -f; fi
    sleep 0.1
done
# Queue pairs: the driver's default (combined = min(maximum, CPUs) for
# virtio-net and igb, as Arbalest does), unless the host asked for
# arbchannels=N|max (busybox has no ethtool -L; the service binary does it).
arbalest-linux-services channels {iface} $arbchannels
ip link set lo up
ip addr add ${{arbip:-10.0.0.2/24}} dev {iface}
ip link set {iface} up
[ -n "$arbgw" ] && ip route add default via $arbgw
drv=$(basename $(readlink /sys/class/net/{iface}/device/driver))
echo "arbalest-linux-guest: {iface} driver $drv, rx queues $(ls -d /sys/class/net/{iface}/queues/rx-* | wc -l), tx queues $(ls -d /sys/class/net/{iface}/queues/tx-* | wc -l)"
arbalest-linux-services &
while true; do sleep 3600; done
"#,
        modules = modules.join(" "),
        iface = IFACE,
    )
}

/// Builds the static service binary; returns its path.
pub fn build_services(cache: &Path) -> Result<PathBuf, String> {
    let ws = crate::workspace_root();
    let target_dir = cache.join("guest-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args(["build", "--release", "-q", "-p", SERVICES_PACKAGE, "--target", SERVICES_TARGET, "--target-dir"])
        .arg(&target_dir)
        .current_dir(&ws)
        .env("RUSTFLAGS", "-C target-feature=+crt-static -C strip=debuginfo")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building {SERVICES_PACKAGE} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let bin = target_dir.join(SERVICES_TARGET).join("release").join(SERVICES_PACKAGE);
    let elf = fs::read(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    if has_interp(&elf) {
        return Err(format!("{} is dynamically linked (has PT_INTERP)", bin.display()));
    }
    Ok(bin)
}

/// True when an ELF64 has a `PT_INTERP` program header (is dynamically linked).
pub fn has_interp(elf: &[u8]) -> bool {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" {
        return false;
    }
    let rd = |o: usize, n: usize| {
        elf.get(o..o + n).map(|b| b.iter().rev().fold(0usize, |a, &x| (a << 8) | x as usize)).unwrap_or(0)
    };
    let (phoff, phentsize, phnum) = (rd(0x20, 8), rd(0x36, 2), rd(0x38, 2));
    (0..phnum).any(|i| rd(phoff + i * phentsize, 4) == 3)
}

/// Downloads (once), unpacks (once) and assembles the Linux guest under
/// `cache` (`target/bench-cache`). `log` gets progress lines.
pub fn prepare(cache: &Path, log: &dyn Fn(&str)) -> Result<LinuxGuest, String> {
    let dir = cache.join("linux");
    let debs = dir.join("debs");
    let (meta_version, depends) = apt_show_or_update(KERNEL_META, log)?;
    let kpkg = kernel_package_from_depends(&depends)
        .ok_or_else(|| format!("{KERNEL_META} {meta_version}: no linux-image-*-amd64 in Depends: {depends}"))?;
    let (kver, _) = apt_show_or_update(&kpkg, log)?;
    let (bver, _) = apt_show_or_update(BUSYBOX, log)?;
    let kdeb = download(&debs, &kpkg, &kver, log)?;
    let bdeb = download(&debs, BUSYBOX, &bver, log)?;
    let kroot = dir.join(format!("root-{kpkg}-{kver}"));
    let broot = dir.join(format!("root-{BUSYBOX}-{bver}"));
    extract(&kdeb, &kroot)?;
    extract(&bdeb, &broot)?;

    let kernel = fs::read_dir(kroot.join("boot"))
        .map_err(|e| format!("{}/boot: {e}", kroot.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("vmlinuz-")))
        .ok_or_else(|| format!("no vmlinuz-* in {}/boot", kroot.display()))?;
    let moddir = fs::read_dir(kroot.join("lib/modules"))
        .map_err(|e| format!("{}/lib/modules: {e}", kroot.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .ok_or_else(|| "no lib/modules/<version> in the kernel package".to_string())?;

    // Index every module by name, with its dependencies.
    let mut files = Vec::new();
    walk(&moddir.join("kernel"), &mut files);
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for f in files {
        if let Some(n) = f.file_name().and_then(|n| n.to_str()).filter(|n| n.ends_with(".ko")) {
            by_name.insert(module_name(n), f.clone());
        }
    }
    if by_name.is_empty() {
        return Err(format!("no uncompressed .ko modules under {}", moddir.display()));
    }
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut todo: Vec<String> = ROOT_MODULES.iter().map(|s| s.to_string()).collect();
    while let Some(m) = todo.pop() {
        if deps.contains_key(&m) {
            continue;
        }
        let Some(path) = by_name.get(&m) else { continue };
        let elf = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let info = modinfo(&elf).map_err(|e| format!("{}: {e}", path.display()))?;
        let d: Vec<String> = info
            .iter()
            .find_map(|kv| kv.strip_prefix("depends="))
            .map(|v| v.split(',').filter(|s| !s.is_empty()).map(module_name).collect())
            .unwrap_or_default();
        todo.extend(d.iter().cloned());
        deps.insert(m, d);
    }
    let builtin = fs::read_to_string(moddir.join("modules.builtin")).unwrap_or_default();
    for r in ROOT_MODULES {
        let is_builtin = builtin.lines().any(|l| l.rsplit('/').next().map(module_name).as_deref() == Some(r));
        if !by_name.contains_key(r) && !is_builtin {
            return Err(format!("module {r} is neither in the kernel package nor built in"));
        }
    }
    let order = load_order(&ROOT_MODULES, &deps);

    let services = build_services(cache)?;
    let busybox = broot.join("bin/busybox");

    let mut c = Cpio::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"] {
        c.dir(d);
    }
    c.char_dev("dev/console", 0o600, 5, 1);
    c.char_dev("dev/null", 0o666, 1, 3);
    let read = |p: &Path| fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    c.file("bin/busybox", &read(&busybox)?, 0o755);
    c.symlink("bin/sh", "busybox");
    c.file(&format!("bin/{SERVICES_PACKAGE}"), &read(&services)?, 0o755);
    for m in &order {
        c.file(&format!("lib/modules/{m}.ko"), &read(&by_name[m])?, 0o644);
    }
    c.file("init", init_script(&order).as_bytes(), 0o755);
    let initrd = dir.join("initramfs.cpio");
    fs::write(&initrd, c.finish()).map_err(|e| format!("{}: {e}", initrd.display()))?;

    Ok(LinuxGuest {
        kernel,
        initrd,
        kernel_package: format!("{kpkg} {kver}"),
        busybox_package: format!("{BUSYBOX} {bver}"),
        modules: order,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_package() {
        assert_eq!(
            kernel_package_from_depends("linux-image-6.1.0-56-amd64 (= 6.1.192-2)").as_deref(),
            Some("linux-image-6.1.0-56-amd64")
        );
        assert_eq!(
            kernel_package_from_depends("foo, linux-image-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1)").as_deref(),
            Some("linux-image-6.12.95+deb12-amd64")
        );
        assert_eq!(kernel_package_from_depends("linux-base"), None);
    }

    #[test]
    fn module_order() {
        let mut deps = BTreeMap::new();
        let d = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        deps.insert("virtio_net".to_string(), d(&["virtio_ring", "virtio", "net_failover"]));
        deps.insert("net_failover".to_string(), d(&["failover"]));
        deps.insert("failover".to_string(), d(&[]));
        deps.insert("virtio_ring".to_string(), d(&[]));
        deps.insert("virtio".to_string(), d(&[]));
        deps.insert("virtio_pci".to_string(), d(&["virtio_ring", "virtio"]));
        deps.insert("igb".to_string(), d(&["dca", "i2c_algo_bit"]));
        deps.insert("dca".to_string(), d(&[]));
        let o = load_order(&ROOT_MODULES, &deps);
        let pos = |m: &str| o.iter().position(|x| x == m).unwrap_or_else(|| panic!("{m} missing from {o:?}"));
        assert!(pos("virtio_ring") < pos("virtio_pci") && pos("virtio") < pos("virtio_pci"));
        assert!(pos("failover") < pos("net_failover") && pos("net_failover") < pos("virtio_net"));
        assert!(pos("dca") < pos("igb"));
        assert!(!o.contains(&"i2c_algo_bit".to_string()), "unknown = built in: skipped");
        assert_eq!(o.len(), 8);
        assert_eq!(module_name("i2c-algo-bit.ko"), "i2c_algo_bit");
    }

    #[test]
    fn script_mentions_modules() {
        let s = init_script(&["a".into(), "b".into()]);
        assert!(s.contains("for m in a b; do"));
        assert!(s.contains("ip addr add ${arbip:-10.0.0.2/24} dev eth0"));
    }

    #[test]
    fn elf_bits() {
        // This test binary itself: an ELF the host can read.
        let me = fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(me.starts_with(b"\x7fELF"));
        assert!(modinfo(b"not elf").is_err());
        assert!(!has_interp(b"nope"));
    }
}
