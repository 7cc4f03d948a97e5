//! JSON lines, the table and the machine description of `bench`.
//!
//! One JSON object per configuration × phase × repetition × guest:
//!
//! ```text
//! {"schema":"arbalest-bench/1","run_id":..,"command":..,
//!  "guest":"arbalest","config":"virtio q4 smp2","nic":"virtio","queues":4,"smp":2,
//!  "polling":"off","stack":"smol","ip_stack":"smoltcp","cpu":"qemu64","maxbw":"none","accel":"tcg","mem":"512M",
//!  "phase":"tcp_rr_1","title":..,"rep":0,"reps":3,"parallel":4,"warmup_s":1,"duration_s":5,
//!  "status":"ok"|"failed"|"n/a"|"unavailable","value":1234.5,"unit":"trans/s",
//!  "figures":{..., "latency_us":{"p50":..,"p99":..,"p99_9":..}},"error":null,
//!  "started_unix":..,"ended_unix":..,"started":"2026-...Z","ended":..,
//!  "boot_s":..,"qemu_command_line":..,"tap_queues":{"numqueues":4,"numdisabled":0},
//!  "guest_info":{..},"machine":{..}}
//! ```

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::client::Figures;
use super::{Guest, Images, Knob, Knobs, Opts, Phase, RunningVm};
use crate::Accel;

/// Version of the record layout.
pub const SCHEMA: &str = "arbalest-bench/1";

/// `status` of a phase the guest's stack could not run (FireEngine's TCP
/// phases before FireEngine had TCP): not run, not a failure; `error` says
/// why. Runs no longer write it; `--from` still reads older files.
pub const STATUS_NA: &str = "n/a";

pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// `2026-11-28T23:59:01Z` for a Unix time.
pub fn iso_utc(t: f64) -> String {
    let secs = t.max(0.0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// The trimmed standard output of a command that succeeded, else "".
pub fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The trimmed standard output of a command that succeeded (maybe empty),
/// or an error saying what `what` could not be read and why.
pub fn run_figure(what: &str, cmd: &str, args: &[&str]) -> Result<String, String> {
    let line = format!("{cmd} {}", args.join(" "));
    let out = Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot read {what}: cannot run `{line}`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("cannot read {what}: `{line}` failed ({}): {}", out.status, err.trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// [`run_figure`] for a figure that cannot be empty.
pub fn sh_figure(what: &str, cmd: &str, args: &[&str]) -> Result<String, String> {
    let text = run_figure(what, cmd, args)?;
    if text.is_empty() {
        return Err(format!("cannot read {what}: `{cmd} {}` printed nothing", args.join(" ")));
    }
    Ok(text)
}

/// What a figure's machine is: cores, CPU model, memory, QEMU, host kernel.
pub struct Host {
    pub cores: usize,
    pub model: String,
    pub mem_kib: u64,
    pub qemu: String,
    pub kernel: String,
}

/// The host CPU's `model name` from `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Result<String, String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .ok_or_else(|| "cannot read the host CPU model: no `model name` line in /proc/cpuinfo".to_string())
}

/// `MemTotal` in KiB from `/proc/meminfo` text.
pub fn mem_total_kib(meminfo: &str) -> Result<u64, String> {
    meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .filter(|&k: &u64| k > 0)
        .ok_or_else(|| "cannot read the host memory: no `MemTotal: N kB` line in /proc/meminfo".to_string())
}

impl Host {
    /// Reads it off this machine, after set-up ([`crate::setup`], once per
    /// process), so that a fresh machine's QEMU is installed before its
    /// version is read, whoever asks first. Every figure is read or the
    /// whole description is an error naming what is missing: nothing is
    /// recorded as unknown.
    pub fn probe() -> Result<Host, String> {
        crate::setup().map_err(|e| format!("cannot describe the machine before set-up succeeds: {e}"))?;
        let read = |p: &str, what: &str| std::fs::read_to_string(p).map_err(|e| format!("cannot read {what}: {p}: {e}"));
        let model = cpu_model(&read("/proc/cpuinfo", "the host CPU model")?)?;
        let mem_kib = mem_total_kib(&read("/proc/meminfo", "the host memory")?)?;
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .map_err(|e| format!("cannot read the host's CPU count: {e}"))?;
        let qemu = crate::qemu_version_in(None).map_err(|e| format!("cannot read the QEMU version: {e}"))?;
        let kernel = read("/proc/sys/kernel/osrelease", "the host kernel release")?.trim().to_string();
        if kernel.is_empty() {
            return Err("cannot read the host kernel release: /proc/sys/kernel/osrelease is empty".into());
        }
        Ok(Host { cores, model, mem_kib, qemu, kernel })
    }

    /// Memory in GiB.
    pub fn mem_gib(&self) -> f64 {
        self.mem_kib as f64 / 1048576.0
    }

    /// One line: `2 cores (model), 24 GiB, QEMU ..., Linux 6.x`.
    pub fn summary(&self) -> String {
        format!("{} cores ({}), {:.0} GiB, {}, Linux {}", self.cores, self.model, self.mem_gib(), self.qemu, self.kernel)
    }
}

/// The host: cores, CPU model, memory, QEMU, host kernel, accelerator, and
/// the repository's commit. An error names the figure that could not be
/// read ([`Host::probe`]; the commit needs `git` and the repository).
pub fn machine_info(accel: Accel) -> Result<Value, String> {
    let Host { cores, model, mem_kib, qemu, kernel } = Host::probe()?;
    let ws = crate::workspace_root();
    let ws = ws.to_string_lossy();
    let commit = sh_figure("the repository's commit", "git", &["-C", &ws, "rev-parse", "--short=12", "HEAD"])?;
    let dirty = !run_figure("whether the work tree has changes", "git", &["-C", &ws, "status", "--porcelain", "--untracked-files=no"])?
        .is_empty();
    let mem_gib = mem_kib as f64 / 1048576.0;
    let v = json!({
        "summary": format!("{cores} cores ({model}), {mem_gib:.0} GiB, {qemu}, accel {accel}, host Linux {kernel}"),
        "cores": cores, "cpu_model": model, "mem_gib": (mem_gib * 10.0).round() / 10.0,
        "qemu": qemu, "host_kernel": kernel, "accel": accel.to_string(),
        "git_commit": commit, "git_dirty": dirty,
    });
    check_machine(&v)?;
    Ok(v)
}

/// The figures every record's `machine` must hold, each read (no `?`, no
/// empty string, numbers above zero).
pub const MACHINE_FIGURES: [&str; 8] =
    ["summary", "cores", "cpu_model", "mem_gib", "qemu", "host_kernel", "accel", "git_commit"];

/// `Ok(())` if `machine` (a record's `machine` object) holds every one of
/// [`MACHINE_FIGURES`], read; else an error naming the missing ones.
pub fn check_machine(machine: &Value) -> Result<(), String> {
    let mut bad = Vec::new();
    for k in MACHINE_FIGURES {
        let ok = match &machine[k] {
            Value::String(s) => !is_unknown(s),
            Value::Number(n) => n.as_f64().is_some_and(|v| v > 0.0),
            _ => false,
        };
        if !ok {
            bad.push(format!("{k}={}", machine[k]));
        }
    }
    if !machine["qemu"].as_str().is_some_and(|q| q.contains("QEMU")) {
        bad.push(format!("qemu={} (not a QEMU version)", machine["qemu"]));
    }
    if !machine["git_dirty"].is_boolean() {
        bad.push(format!("git_dirty={}", machine["git_dirty"]));
    }
    if bad.is_empty() { Ok(()) } else { Err(format!("machine figures unread: {}: {machine}", bad.join(", "))) }
}

/// A string that stands for a figure nobody read: empty, `?`, `unknown`.
pub fn is_unknown(s: &str) -> bool {
    let t = s.trim();
    t.is_empty() || t.chars().all(|c| c == '?') || t.eq_ignore_ascii_case("unknown")
}

/// Every string in `record` (any depth) that [`is_unknown`], by its path
/// (`machine.qemu`, `guest_info.console[2]`), plus a missing or unread
/// `machine` ([`check_machine`]). Empty for a record whose figures were all
/// read.
pub fn unknown_figures(record: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::String(s) if is_unknown(s) => out.push(format!("{path}={v}")),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, &format!("{path}[{i}]"), out);
                }
            }
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, &if path.is_empty() { k.clone() } else { format!("{path}.{k}") }, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(record, "", &mut out);
    if let Err(e) = check_machine(&record["machine"]) {
        out.push(e);
    }
    out
}

/// The bench command as a user would type it.
pub fn command_line(_opts: &Opts) -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut v = vec!["cargo run --release --".to_string()];
    // Inside a test the process's arguments are the test harness's.
    if args.first().map(String::as_str) == Some("bench") {
        v.extend(args.iter().map(|a| crate::shell_quote(a)));
        v.join(" ")
    } else {
        format!("bootimage::bench::main (from {})", std::env::args().next().unwrap_or_default())
    }
}

/// What the guest said about itself (console lines) and what it runs.
pub fn guest_info(guest: Guest, images: &Images, vm: &RunningVm) -> Value {
    let console = vm.serial_text();
    match guest {
        Guest::Arbalest => {
            let lines: Vec<&str> = console
                .lines()
                .filter(|l| l.contains("net0") || l.contains("CPUs on-line"))
                .map(|l| l.trim())
                .take(8)
                .collect();
            json!({
                "kernel": images.arbalest.as_ref().map(|p| p.display().to_string()),
                "stack": vm.knobs.stack.ip_stack(),
                "console": lines,
            })
        }
        Guest::Linux => {
            let lines: Vec<&str> =
                console.lines().filter(|l| l.contains("arbalest-linux")).map(|l| l.trim()).take(8).collect();
            let l = images.linux.as_ref();
            json!({
                "kernel_package": l.map(|l| l.kernel_package.clone()),
                "busybox": l.map(|l| l.busybox_package.clone()),
                "modules": l.map(|l| l.modules.clone()),
                "console": lines,
            })
        }
    }
}

/// What every record of one run shares.
pub struct Ctx<'a> {
    pub run_id: &'a str,
    pub command: &'a str,
    pub machine: &'a Value,
    pub opts: &'a Opts,
    pub images: &'a Images,
}

fn knob_fields(guest: Guest, k: &Knobs) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("guest".into(), json!(guest.name()));
    m.insert("config".into(), json!(k.to_string()));
    m.insert("nic".into(), json!(k.nic.to_string()));
    m.insert("queues".into(), json!(k.queues));
    m.insert("smp".into(), json!(k.smp));
    m.insert("polling".into(), json!(k.polling.value_name()));
    m.insert("stack".into(), json!(k.stack.value_name()));
    // The stack that answered: the knob for Arbalest, Linux's own for Linux.
    m.insert("ip_stack".into(), json!(if guest == Guest::Linux { "linux" } else { k.stack.ip_stack() }));
    m.insert("cpu".into(), json!(k.cpu.0));
    m.insert("maxbw".into(), json!(k.maxbw.value_name()));
    m
}

/// The record of one phase of one boot.
#[allow(clippy::too_many_arguments)]
pub fn record(
    ctx: &Ctx,
    guest: Guest,
    k: &Knobs,
    rep: usize,
    phase: Phase,
    vm: Option<(&RunningVm, &Value, f64)>,
    result: Result<&Figures, &str>,
    times: Option<(f64, f64)>,
) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("schema".into(), json!(SCHEMA));
    m.insert("run_id".into(), json!(ctx.run_id));
    m.insert("command".into(), json!(ctx.command));
    m.extend(knob_fields(guest, k));
    m.insert("accel".into(), json!(ctx.opts.accel.to_string()));
    m.insert("mem".into(), json!(ctx.opts.mem));
    m.insert("linux_channels".into(), json!(ctx.opts.linux_channels.as_deref().unwrap_or("default")));
    m.insert("phase".into(), json!(phase.name()));
    m.insert("title".into(), json!(phase.title(ctx.opts.parallel)));
    m.insert("rep".into(), json!(rep));
    m.insert("reps".into(), json!(ctx.opts.reps));
    m.insert("parallel".into(), json!(ctx.opts.parallel));
    if phase == Phase::UdpFlood {
        m.insert("flood_senders".into(), json!(ctx.opts.flood_senders));
    }
    m.insert("warmup_s".into(), json!(ctx.opts.warmup));
    m.insert("duration_s".into(), json!(ctx.opts.duration));
    match result {
        Ok(f) => {
            m.insert("status".into(), json!("ok"));
            m.insert("value".into(), json!(f.value()));
            m.insert("unit".into(), json!(f.unit()));
            m.insert("figures".into(), f.details());
            m.insert("error".into(), Value::Null);
        }
        Err(e) => {
            m.insert("status".into(), json!("failed"));
            m.insert("value".into(), Value::Null);
            m.insert("unit".into(), Value::Null);
            m.insert("figures".into(), Value::Null);
            m.insert("error".into(), json!(e));
        }
    }
    let (t0, t1) = times.unwrap_or_else(|| (unix_now(), unix_now()));
    m.insert("started_unix".into(), json!(t0));
    m.insert("ended_unix".into(), json!(t1));
    m.insert("started".into(), json!(iso_utc(t0)));
    m.insert("ended".into(), json!(iso_utc(t1)));
    match vm {
        Some((vm, info, boot)) => {
            m.insert("boot_s".into(), json!((boot * 1000.0).round() / 1000.0));
            m.insert("qemu_command_line".into(), json!(vm.command_line));
            m.insert(
                "tap_queues".into(),
                vm.tap_queues().map(|(n, d)| json!({"numqueues": n, "numdisabled": d})).unwrap_or(Value::Null),
            );
            m.insert("guest_info".into(), info.clone());
        }
        None => {
            m.insert("boot_s".into(), Value::Null);
            let cmd = super::qemu_config(guest, k, ctx.opts, "NS", ctx.images)
                .map(|(c, kern)| super::command_line(&c, &kern, k.cpu))
                .unwrap_or_else(|e| format!("(no command line: {e})"));
            m.insert("qemu_command_line".into(), json!(cmd));
            m.insert("tap_queues".into(), Value::Null);
            m.insert("guest_info".into(), Value::Null);
        }
    }
    m.insert("machine".into(), ctx.machine.clone());
    Value::Object(m)
}

/// The record of a configuration that cannot run yet.
pub fn record_unavailable(run_id: &str, command: &str, machine: &Value, guest: Guest, k: &Knobs, why: &str) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("schema".into(), json!(SCHEMA));
    m.insert("run_id".into(), json!(run_id));
    m.insert("command".into(), json!(command));
    m.extend(knob_fields(guest, k));
    m.insert("phase".into(), Value::Null);
    m.insert("status".into(), json!("unavailable"));
    m.insert("value".into(), Value::Null);
    m.insert("error".into(), json!(format!("not available yet: {why}")));
    let t = unix_now();
    m.insert("started_unix".into(), json!(t));
    m.insert("started".into(), json!(iso_utc(t)));
    m.insert("machine".into(), machine.clone());
    Value::Object(m)
}

/// Parses JSON lines (blank lines skipped); each must be an object.
pub fn parse_lines(text: &str) -> Result<Vec<Value>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1))?;
            if v.is_object() { Ok(v) } else { Err(format!("line {}: not an object", i + 1)) }
        })
        .collect()
}

pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// A number with about three significant digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Per guest within one (configuration, phase): the medians over repetitions.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub values: Vec<f64>,
    pub p50: Vec<f64>,
    pub p99: Vec<f64>,
    pub p999: Vec<f64>,
    pub lost: u64,
    pub sent: u64,
    pub failed: usize,
    pub unavailable: bool,
    /// Not run: the stack lacks the protocol (the record's `error`).
    pub na: Option<String>,
    pub unit: Option<String>,
}

impl Cell {
    pub fn median(&self) -> Option<f64> {
        median(&mut self.values.clone())
    }

    /// `1234 ±3%` (spread: half the range over the median, with repetitions).
    pub fn figure(&self) -> String {
        if self.unavailable {
            return "not available yet".into();
        }
        if let (Some(why), true) = (&self.na, self.values.is_empty() && self.failed == 0) {
            return why.clone();
        }
        match self.median() {
            None if self.failed > 0 => "FAILED".into(),
            None => "–".into(),
            Some(m) => {
                let mut s = num(m);
                if self.values.len() > 1 && m > 0.0 {
                    let (lo, hi) = self.values.iter().fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                    s.push_str(&format!(" ±{:.0}%", (hi - lo) / 2.0 / m * 100.0));
                }
                if self.failed > 0 {
                    s.push_str(&format!(" ({} failed)", self.failed));
                }
                s
            }
        }
    }

    /// `p50/p99/p99.9` in µs (medians over repetitions), and UDP loss.
    pub fn detail(&self) -> String {
        let mut s = match (median(&mut self.p50.clone()), median(&mut self.p99.clone()), median(&mut self.p999.clone())) {
            (Some(a), Some(b), Some(c)) => format!("{}/{}/{}", num(a), num(b), num(c)),
            _ => "–".into(),
        };
        if self.sent > 0 {
            s.push_str(&format!(", lost {}/{}", self.lost, self.sent));
            if self.lost > 0 {
                s.push_str(&format!(" ({:.1}%)", self.lost as f64 / self.sent as f64 * 100.0));
            }
        }
        s
    }
}

/// Column keys of the table, in order: Arbalest on FireEngine, Arbalest on
/// smoltcp (`arbalest`, as records before FireEngine existed), Linux.
pub const COLUMNS: [&str; 3] = ["fireengine", "arbalest", "linux"];

/// The column of a record: `linux`, or `fireengine`/`arbalest` by the stack.
pub fn column(r: &Value) -> String {
    match (r["guest"].as_str().unwrap_or("?"), r["stack"].as_str()) {
        ("arbalest", Some("fireengine")) => "fireengine".into(),
        (g, _) => g.to_string(),
    }
}

/// The columns present in `rows`, in [`COLUMNS`] order, with their headings
/// (`Arbalest` when smoltcp is the only Arbalest column, else by stack).
pub fn columns(rows: &[(String, String, String, BTreeMap<String, Cell>)]) -> Vec<(&'static str, &'static str)> {
    let has = |k: &str| rows.iter().any(|r| r.3.contains_key(k));
    let fe = has("fireengine");
    COLUMNS
        .iter()
        .filter(|k| has(k) || (**k == "arbalest" && !fe) || **k == "linux")
        .map(|&k| {
            (
                k,
                match k {
                    "fireengine" => "FireEngine",
                    "arbalest" if fe => "smoltcp",
                    "arbalest" => "Arbalest",
                    _ => "Linux",
                },
            )
        })
        .collect()
}

/// The rows of the table: `(configuration, phase, title, {column: cell})`
/// in the order of first appearance ([`column`]).
pub fn cells(records: &[Value]) -> Vec<(String, String, String, BTreeMap<String, Cell>)> {
    let mut rows: Vec<(String, String, String, BTreeMap<String, Cell>)> = Vec::new();
    for r in records {
        let config = r["config"].as_str().unwrap_or("?").to_string();
        let guest = column(r);
        let status = r["status"].as_str().unwrap_or("");
        let phase = r["phase"].as_str().unwrap_or("(all)").to_string();
        let title = r["title"].as_str().unwrap_or(&phase).to_string();
        let i = match rows.iter().position(|x| x.0 == config && x.1 == phase) {
            Some(i) => i,
            None => {
                rows.push((config.clone(), phase.clone(), title, BTreeMap::new()));
                rows.len() - 1
            }
        };
        let c = rows[i].3.entry(guest).or_default();
        match status {
            "ok" => {
                if let Some(v) = r["value"].as_f64() {
                    c.values.push(v);
                }
                c.unit = r["unit"].as_str().map(str::to_string);
                let l = &r["figures"]["latency_us"];
                if let (Some(a), Some(b), Some(d)) = (l["p50"].as_f64(), l["p99"].as_f64(), l["p99_9"].as_f64()) {
                    c.p50.push(a);
                    c.p99.push(b);
                    c.p999.push(d);
                }
                c.lost += r["figures"]["lost"].as_u64().unwrap_or(0);
                c.sent += r["figures"]["sent"].as_u64().unwrap_or(0);
            }
            "unavailable" => c.unavailable = true,
            STATUS_NA => c.na = Some(r["error"].as_str().unwrap_or(STATUS_NA).to_string()),
            _ => c.failed += 1,
        }
    }
    rows
}

/// The Markdown table, with the command, date and machine above it.
pub fn table(records: &[Value]) -> String {
    let mut s = String::new();
    if let Some(r) = records.first() {
        s.push_str(&format!("command: `{}`\n\n", r["command"].as_str().unwrap_or("?")));
        let t = records.iter().filter_map(|r| r["started_unix"].as_f64()).fold(f64::MAX, f64::min);
        if t < f64::MAX {
            s.push_str(&format!("date: {}\n\n", iso_utc(t)));
        }
        s.push_str(&format!("machine: {}\n\n", r["machine"]["summary"].as_str().unwrap_or("?")));
        if let Some(c) = r["machine"]["git_commit"].as_str() {
            let dirty = if r["machine"]["git_dirty"].as_bool() == Some(true) { " (with uncommitted changes)" } else { "" };
            s.push_str(&format!("commit: {c}{dirty}\n\n"));
        }
        let reps = records.iter().filter_map(|r| r["reps"].as_u64()).max().unwrap_or(1);
        let dur = r["duration_s"].as_f64().or_else(|| records.iter().find_map(|r| r["duration_s"].as_f64()));
        let warm = records.iter().find_map(|r| r["warmup_s"].as_f64());
        if let (Some(d), Some(w)) = (dur, warm) {
            s.push_str(&format!(
                "{d} s per phase after {w} s of warm-up, {reps} repetition{} (median{}); latencies in µs\n\n",
                if reps == 1 { "" } else { "s" },
                if reps > 1 { "; ± is half the range" } else { "" }
            ));
        }
    }
    let rows = cells(records);
    let cols = columns(&rows);
    // Ratios: every Arbalest column against Linux, then FireEngine against smoltcp.
    let mut ratios: Vec<(usize, usize)> = Vec::new();
    if let Some(li) = cols.iter().position(|c| c.0 == "linux") {
        ratios.extend((0..cols.len()).filter(|&i| i != li).map(|i| (i, li)));
    }
    if let (Some(f), Some(a)) = (cols.iter().position(|c| c.0 == "fireengine"), cols.iter().position(|c| c.0 == "arbalest")) {
        ratios.push((f, a));
    }
    let mut head = String::from("| configuration | phase | unit |");
    let mut rule = String::from("|---|---|---|");
    for c in &cols {
        head.push_str(&format!(" {} |", c.1));
        rule.push_str("---:|");
    }
    for &(x, y) in &ratios {
        head.push_str(&format!(" {}/{} |", cols[x].1, cols[y].1));
        rule.push_str("---:|");
    }
    for c in &cols {
        head.push_str(&format!(" {} p50/p99/p99.9 |", c.1));
        rule.push_str("---|");
    }
    s.push_str(&head);
    s.push('\n');
    s.push_str(&rule);
    s.push('\n');
    for (config, _phase, title, cells) in rows {
        let cs: Vec<Cell> = cols.iter().map(|c| cells.get(c.0).cloned().unwrap_or_default()).collect();
        let unit = cs.iter().find_map(|c| c.unit.clone()).unwrap_or_else(|| "–".into());
        let mut line = format!("| {config} | {title} | {unit} |");
        for c in &cs {
            line.push_str(&format!(" {} |", c.figure()));
        }
        for &(x, y) in &ratios {
            let r = match (cs[x].median(), cs[y].median()) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
                _ => "–".into(),
            };
            line.push_str(&format!(" {r} |"));
        }
        for c in &cs {
            line.push_str(&format!(" {} |", c.detail()));
        }
        s.push_str(&line);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The machine description runs set-up itself (so on a fresh machine
    /// QEMU is installed before its version is read, whatever test asks
    /// first) and every figure in it is read.
    #[test]
    fn machine_described_after_setup() {
        let m = machine_info(Accel::Tcg).unwrap_or_else(|e| panic!("{e}"));
        check_machine(&m).unwrap();
        assert!(m["qemu"].as_str().unwrap().starts_with("QEMU emulator version "), "{m}");
        assert!(m["cores"].as_u64().unwrap() > 0 && m["mem_gib"].as_f64().unwrap() > 0.0, "{m}");
        assert_eq!(m["git_commit"].as_str().unwrap().len(), 12, "{m}");
        let rec = json!({"schema": SCHEMA, "guest": "arbalest", "machine": m});
        assert_eq!(unknown_figures(&rec), Vec::<String>::new());
        let h = Host::probe().unwrap();
        assert!(!h.summary().contains('?'), "{}", h.summary());
    }

    /// A `?`, an empty string or `unknown` anywhere in a record is found by
    /// its path; so is a machine figure that is missing or zero.
    #[test]
    fn unknown_figures_are_found() {
        let machine = json!({
            "summary": "2 cores (x), 8 GiB, QEMU emulator version 8.2.2, accel tcg, host Linux 6.1",
            "cores": 2, "cpu_model": "x", "mem_gib": 7.8, "qemu": "QEMU emulator version 8.2.2",
            "host_kernel": "6.1.0", "accel": "tcg", "git_commit": "0123456789ab", "git_dirty": false,
        });
        check_machine(&machine).unwrap();
        let good = json!({"guest": "linux", "figures": {"latency_us": {"p50": 1.0}}, "error": null,
            "guest_info": {"console": ["a", "b"]}, "machine": machine});
        assert!(unknown_figures(&good).is_empty(), "{:?}", unknown_figures(&good));

        let mut bad = good.clone();
        bad["machine"]["qemu"] = json!("?");
        let u = unknown_figures(&bad);
        assert!(u.iter().any(|p| p == "machine.qemu=\"?\""), "{u:?}");
        assert!(u.iter().any(|p| p.contains("machine figures unread") && p.contains("qemu=\"?\"")), "{u:?}");
        let mut bad = good.clone();
        bad["machine"]["host_kernel"] = json!("");
        bad["guest_info"]["console"][1] = json!(" ?? ");
        bad["phase"] = json!("Unknown");
        let u = unknown_figures(&bad);
        for p in ["machine.host_kernel=\"\"", "guest_info.console[1]=\" ?? \"", "phase=\"Unknown\""] {
            assert!(u.iter().any(|x| x == p), "{p} not in {u:?}");
        }
        for (k, v) in [("cores", json!(0)), ("mem_gib", json!(0.0)), ("git_commit", Value::Null), ("git_dirty", json!("?"))] {
            let mut m = machine.clone();
            m[k] = v;
            let e = check_machine(&m).unwrap_err();
            assert!(e.contains(k), "{k}: {e}");
        }
        let mut m = machine.clone();
        m.as_object_mut().unwrap().remove("cpu_model");
        assert!(check_machine(&m).unwrap_err().contains("cpu_model=null"));
        assert!(unknown_figures(&json!({"guest": "linux"})).iter().any(|p| p.contains("machine figures unread")));
        for s in ["", " ", "?", "???", "unknown", "UNKNOWN"] {
            assert!(is_unknown(s), "{s:?}");
        }
        for s in ["0", "n/a", "a?", "QEMU emulator version 8.2.2"] {
            assert!(!is_unknown(s), "{s:?}");
        }
    }

    /// What cannot be read from /proc is an error naming it.
    #[test]
    fn proc_figures() {
        let cpu = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(cpu).unwrap(), "AMD EPYC 7B13");
        assert!(cpu_model("processor\t: 0\n").unwrap_err().contains("model name"));
        assert!(cpu_model("model name\t:  \n").is_err());
        assert_eq!(mem_total_kib("MemTotal:       32871428 kB\nMemFree: 1 kB\n").unwrap(), 32871428);
        assert!(mem_total_kib("MemFree: 1 kB\n").unwrap_err().contains("MemTotal"));
        assert!(mem_total_kib("MemTotal: lots\n").is_err());
        let e = sh_figure("the thing", "/nonexistent/arbalest-no-such-tool", &["-v"]).unwrap_err();
        assert!(e.contains("cannot read the thing") && e.contains("cannot run"), "{e}");
        let e = sh_figure("the thing", "false", &[]).unwrap_err();
        assert!(e.contains("failed"), "{e}");
        assert!(sh_figure("the thing", "true", &[]).unwrap_err().contains("printed nothing"));
        assert_eq!(run_figure("the thing", "true", &[]).unwrap(), "");
    }

    #[test]
    fn dates() {
        assert_eq!(iso_utc(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_798_761_599.0), "2026-12-31T23:59:59Z");
    }

    #[test]
    fn medians_and_numbers() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
        assert_eq!(num(1234.56), "1235");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(0.1234), "0.123");
    }

    #[test]
    fn table_from_records() {
        let rec = |guest: &str, phase: &str, v: Option<f64>, p50: f64| {
            json!({
                "command": "cargo run --release -- bench --quick", "guest": guest, "config": "virtio q1 smp2",
                "phase": phase, "title": phase, "status": if v.is_some() {"ok"} else {"failed"},
                "value": v, "unit": "trans/s", "reps": 2, "duration_s": 1.0, "warmup_s": 0.0, "started_unix": 0.0,
                "figures": {"latency_us": {"p50": p50, "p99": 2.0 * p50, "p99_9": 3.0 * p50}},
                "machine": {"summary": "2 cores", "git_commit": "abc", "git_dirty": false},
            })
        };
        let recs = vec![
            rec("arbalest", "tcp_rr_1", Some(100.0), 10.0),
            rec("linux", "tcp_rr_1", Some(400.0), 5.0),
            rec("linux", "tcp_rr_1", Some(600.0), 5.0),
            rec("arbalest", "tcp_rr_1", Some(100.0), 10.0),
            rec("arbalest", "udp_rr", None, 0.0),
        ];
        let t = table(&recs);
        assert!(t.contains("| virtio q1 smp2 | tcp_rr_1 | trans/s | 100 ±0% | 500 ±20% | 0.200 | 10.0/20.0/30.0 | 5.00/10.0/15.0 |"), "{t}");
        assert!(t.contains("| udp_rr | – | FAILED | – | – |"), "{t}");
        assert!(t.contains("command: `cargo run --release -- bench --quick`"));
        let lines = recs.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n");
        assert_eq!(parse_lines(&lines).unwrap().len(), 5);
        assert!(parse_lines("{\"a\":1}\n[1]").is_err());
        assert!(parse_lines("{nope").is_err());
        assert!(t.contains("| configuration | phase | unit | Arbalest | Linux | Arbalest/Linux | Arbalest p50/p99/p99.9 | Linux p50/p99/p99.9 |"), "{t}");
    }

    #[test]
    fn three_columns_with_fireengine() {
        let rec = |guest: &str, stack: &str, phase: &str, status: &str, v: Option<f64>| {
            json!({
                "guest": guest, "stack": stack, "config": "virtio q1 smp2", "phase": phase, "title": phase,
                "status": status, "value": v, "unit": "trans/s",
                "error": if status == STATUS_NA { Value::from("n/a: no TCP on fireengine yet") } else { Value::Null },
                "figures": {"latency_us": {"p50": 1.0, "p99": 2.0, "p99_9": 3.0}, "sent": 100, "lost": 10},
                "machine": {"summary": "2 cores"},
            })
        };
        let recs = vec![
            rec("arbalest", "smol", "udp_flood", "ok", Some(200.0)),
            rec("arbalest", "fireengine", "udp_flood", "ok", Some(300.0)),
            rec("linux", "smol", "udp_flood", "ok", Some(100.0)),
            rec("arbalest", "smol", "tcp_rr_1", "ok", Some(50.0)),
            rec("arbalest", "fireengine", "tcp_rr_1", STATUS_NA, None),
            rec("linux", "smol", "tcp_rr_1", "ok", Some(25.0)),
        ];
        let t = table(&recs);
        assert!(t.contains("| FireEngine | smoltcp | Linux | FireEngine/Linux | smoltcp/Linux | FireEngine/smoltcp | FireEngine p50/p99/p99.9 |"), "{t}");
        assert!(t.contains("| virtio q1 smp2 | udp_flood | trans/s | 300 | 200 | 100 | 3.000 | 2.000 | 1.500 | 1.00/2.00/3.00, lost 10/100 (10.0%) |"), "{t}");
        assert!(t.contains("| virtio q1 smp2 | tcp_rr_1 | trans/s | n/a: no TCP on fireengine yet | 50.0 | 25.0 | – | 2.000 | – | – |"), "{t}");
        assert!(!t.contains("FAILED"), "{t}");
        assert_eq!(column(&recs[1]), "fireengine");
        assert_eq!(column(&recs[2]), "linux");
    }
}
