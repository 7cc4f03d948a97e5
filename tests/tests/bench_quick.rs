//! The network bench harness (`cargo run --release -- bench`) end to end:
//! `--quick` with both guests (Arbalest and the Debian Linux reference) on
//! virtio-net with 2 queue pairs and 2 CPUs (the smallest configuration
//! that exercises multi-queue TAP, both guests' boots and every client
//! phase), checking that every phase produced a non-zero figure and that
//! the JSON lines, the table and the plot are well formed, with every
//! figure read (no `?`: the machine is described after set-up, in this
//! process, even on a fresh machine). This checks the harness, not the
//! speed. Needs root (namespaces, TAP) and Debian's apt
//! (the Linux guest's packages are fetched by name and cached under
//! `target/bench-cache/`).

use bootimage::bench::serde_json::{self, Value};
use bootimage::bench::{report, Phase};

/// `words` without the values of `-kernel`, `-initrd`, `-append` and the
/// namespace name (the only differences allowed between the guests).
fn comparable(cmdline: &str) -> Vec<String> {
    let words: Vec<&str> = cmdline.split(' ').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if ["-kernel", "-initrd", "-append"].contains(&w) {
            // -append's value is one quoted word that may contain spaces.
            i += 1;
            if words.get(i).is_some_and(|v| v.starts_with('\'')) {
                while i < words.len() && !words[i].ends_with('\'') {
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        if w == "-fw_cfg" && words.get(i + 1).is_some_and(|v| v.starts_with("name=opt/arbalest/ksyms,")) {
            // Arbalest's symbol table for its profiler: a file the guest
            // may read, not part of the machine.
            i += 2;
            continue;
        }
        out.push(if w.starts_with("arbt") { "NS".to_string() } else { w.to_string() });
        i += 1;
    }
    out
}

#[test]
fn bench_quick_both_guests() {
    let dir = std::env::temp_dir().join(format!("arbalest-bench-quick-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (out, plot, table) = (dir.join("quick.jsonl"), dir.join("quick.png"), dir.join("quick.md"));
    let args: Vec<String> = [
        "--quick",
        "--guests",
        "arbalest,linux",
        "--configs",
        "virtio:2",
        "--smp",
        "2",
        "--parallel",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let code = bootimage::bench::main(&args);
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{}: {e} (bench exit {code})", out.display()));
    assert_eq!(code, 0, "bench --quick failed; records:\n{text}");

    let recs: Vec<Value> = text
        .lines()
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}: {l}", i + 1)))
        .collect();
    assert_eq!(recs.len(), 2 * Phase::ALL.len(), "one record per guest and phase:\n{text}");
    let mut cmdlines = Vec::new();
    for guest in ["arbalest", "linux"] {
        for phase in Phase::ALL {
            let name = phase.name();
            let r: Vec<&Value> = recs.iter().filter(|r| r["guest"] == guest && r["phase"] == name).collect();
            assert_eq!(r.len(), 1, "{guest} {name}: expected one record:\n{text}");
            let r = r[0];
            let ctx = format!("{guest} {name}: {r}");
            assert_eq!(r["schema"], "arbalest-bench/1", "{ctx}");
            assert_eq!(r["status"], "ok", "{ctx}");
            let v = r["value"].as_f64().unwrap_or(0.0);
            assert!(v.is_finite() && v > 0.0, "no non-zero figure: {ctx}");
            assert!(r["unit"].as_str().is_some_and(|u| !u.is_empty()), "{ctx}");
            assert!(r["error"].is_null(), "{ctx}");
            assert_eq!((r["config"].as_str(), r["nic"].as_str()), (Some("virtio q2 smp2"), Some("virtio")), "{ctx}");
            assert_eq!((r["queues"].as_u64(), r["smp"].as_u64(), r["rep"].as_u64()), (Some(2), Some(2), Some(0)), "{ctx}");
            assert_eq!((r["polling"].as_str(), r["maxbw"].as_str()), (Some("off"), Some("none")), "{ctx}");
            // Arbalest runs the default stack, FireEngine; Linux its own.
            let ip_stack = if guest == "linux" { "linux" } else { "fireengine" };
            assert_eq!(r["ip_stack"].as_str(), Some(ip_stack), "{ctx}");
            let (t0, t1) = (r["started_unix"].as_f64().unwrap(), r["ended_unix"].as_f64().unwrap());
            assert!(t0 > 1.6e9 && t1 >= t0, "{ctx}");
            assert!(r["started"].as_str().is_some_and(|s| s.ends_with('Z') && s.len() == 20), "{ctx}");
            assert!(r["machine"]["cores"].as_u64().unwrap_or(0) > 0, "{ctx}");
            assert!(r["machine"]["qemu"].as_str().is_some_and(|q| q.contains("QEMU")), "{ctx}");
            // No figure anywhere in the record reads `?`, `unknown` or "".
            let unknown = report::unknown_figures(r);
            assert!(unknown.is_empty(), "unread figures {unknown:?}: {ctx}");
            assert!(r["boot_s"].as_f64().is_some_and(|b| b > 0.0), "{ctx}");
            // Both queue pairs in use, seen from the TAP (QEMU detaches the
            // queues a guest does not enable).
            assert_eq!(r["tap_queues"]["numqueues"].as_u64(), Some(2), "{ctx}");
            assert_eq!(r["tap_queues"]["numdisabled"].as_u64(), Some(0), "{ctx}");
            let f = &r["figures"];
            assert!(f.is_object(), "{ctx}");
            let lat = &f["latency_us"];
            match phase {
                Phase::StreamTx | Phase::StreamRx | Phase::StreamTxPar | Phase::StreamRxPar => {
                    assert!(f["bytes"].as_u64().unwrap_or(0) > 0, "{ctx}");
                    let conns = if name.ends_with("_par") { 2 } else { 1 };
                    assert_eq!(f["connections"].as_u64(), Some(conns), "{ctx}");
                }
                _ => {
                    let (p50, p99, p999) = (lat["p50"].as_f64().unwrap(), lat["p99"].as_f64().unwrap(), lat["p99_9"].as_f64().unwrap());
                    assert!(p50 > 0.0 && p99 >= p50 && p999 >= p99, "{ctx}");
                }
            }
            if phase == Phase::UdpRr {
                let (sent, answered, lost) = (f["sent"].as_u64().unwrap(), f["answered"].as_u64().unwrap(), f["lost"].as_u64().unwrap());
                assert!(answered > 0 && sent == answered + lost, "{ctx}");
            }
            if phase == Phase::Rr1k {
                assert_eq!(f["message_bytes"].as_u64(), Some(1024), "{ctx}");
            }
            let cmd = r["qemu_command_line"].as_str().unwrap();
            assert!(cmd.contains("queues=2") && cmd.contains("virtio-net-pci,netdev=n0,mq=on"), "{ctx}");
            cmdlines.push((guest, comparable(cmd)));
        }
    }
    // The identical QEMU command line, but for kernel, initrd, append and
    // Arbalest's symbol table.
    let a = &cmdlines.iter().find(|c| c.0 == "arbalest").unwrap().1;
    let l = &cmdlines.iter().find(|c| c.0 == "linux").unwrap().1;
    assert_eq!(a, l, "the guests' QEMU command lines differ beyond -kernel/-initrd/-append/the ksyms -fw_cfg");
    let linux = recs.iter().find(|r| r["guest"] == "linux").unwrap();
    assert!(linux["guest_info"]["kernel_package"].as_str().is_some_and(|p| p.starts_with("linux-image-")), "{linux}");

    let png = std::fs::read(&plot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5000, "bad plot");
    let md = std::fs::read_to_string(&table).unwrap();
    assert!(!md.contains("FAILED"), "{md}");
    assert_eq!(md.lines().filter(|l| l.starts_with("| virtio q2 smp2 |")).count(), Phase::ALL.len(), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}
