//! `sqstat` against canned squeue counters: the default and `-o` columns,
//! `-p -o`, interval reports of deltas (ended by the count or by an
//! interrupt), and every refused command line.

mod common;

use arbalest_netstack::fireengine::squeue::SqStats;
use common::*;

const USAGE: &str = "usage: sqstat [-p] [-o field,...] [interval [count]]\n";

fn sq0() -> SqStats {
    SqStats {
        id: 0,
        cpu: 0,
        conns: 3,
        queue_len: 1,
        processed_inline: 1200,
        queued: 40,
        drained_other: 5,
        drained_worker: 35,
        worker_wakeups: 12,
        drain_time_limit: 1,
        max_queue_len: 9,
        drops: 0,
        remote_enters: 7,
    }
}

fn sq1() -> SqStats {
    SqStats {
        id: 1,
        cpu: 1,
        conns: 12,
        queue_len: 0,
        processed_inline: 987_654,
        queued: 2048,
        drained_other: 100,
        drained_worker: 1948,
        worker_wakeups: 300,
        drain_time_limit: 4,
        max_queue_len: 64,
        drops: 2,
        remote_enters: 31,
    }
}

/// Two squeues with [`sq0`] and [`sq1`]'s counters.
fn two() -> Net {
    let mut n = Net::new();
    n.squeues = vec![sq0(), sq1()];
    n
}

fn ok(n: &mut Net, line: &str) -> String {
    let (status, out) = n.cmd(line);
    assert_eq!(status, 0, "{line}: {out}");
    out
}

const HEADER: &str = "CPU  CONNS     INLINE     QUEUED     WORKER  WAKEUPS   MAXQ TLIMIT  DROPS\n";

#[test]
fn default_columns_for_two_squeues() {
    let mut n = two();
    assert_eq!(
        ok(&mut n, "sqstat"),
        format!(
            "{HEADER}\
             \x20 0      3       1200         40         35       12      9      1      0\n\
             \x20 1     12     987654       2048       1948      300     64      4      2\n"
        )
    );
}

#[test]
fn no_squeue_prints_the_header_only() {
    let mut n = Net::new();
    assert_eq!(ok(&mut n, "sqstat"), HEADER);
    assert_eq!(ok(&mut n, "sqstat -p -o cpu,drops"), "");
}

#[test]
fn chosen_columns() {
    let mut n = two();
    assert_eq!(
        ok(&mut n, "sqstat -o cpu,other,remote,qlen"),
        "CPU      OTHER     REMOTE   QLEN\n  0          5          7      1\n  1        100         31      0\n"
    );
    assert_eq!(
        ok(&mut n, "sqstat -o all"),
        "CPU  CONNS     INLINE     QUEUED     WORKER  WAKEUPS   MAXQ TLIMIT  DROPS      OTHER     REMOTE   QLEN  ID\n\
         \x20 0      3       1200         40         35       12      9      1      0          5          7      1   0\n\
         \x20 1     12     987654       2048       1948      300     64      4      2        100         31      0   1\n"
    );
    // Field names are case-insensitive; a value wider than its column
    // pushes the line right.
    n.squeues[0].processed_inline = 123_456_789_012;
    assert_eq!(ok(&mut n, "sqstat -o CPU,Inline"), "CPU     INLINE\n  0 123456789012\n  1     987654\n");
}

#[test]
fn parsable() {
    let mut n = two();
    assert_eq!(
        ok(&mut n, "sqstat -p -o cpu,conns,inline,queued,worker,wakeups,maxq,tlimit,drops"),
        "0:3:1200:40:35:12:9:1:0\n1:12:987654:2048:1948:300:64:4:2\n"
    );
    assert_eq!(ok(&mut n, "sqstat -po id,remote"), "0:7\n1:31\n");
    assert_eq!(ok(&mut n, "sqstat -p -o drops"), "0\n2\n");
}

/// After 1 s: squeue 0 ran 100 more inline, queued 10 more (worker drained
/// 8, 2 waiting, a longer queue seen); squeue 1 changed only its conns.
fn later() -> Vec<SqStats> {
    let mut a = sq0();
    a.processed_inline += 100;
    a.queued += 10;
    a.drained_worker += 8;
    a.worker_wakeups += 3;
    a.queue_len = 2;
    a.max_queue_len = 15;
    a.conns = 4;
    let mut b = sq1();
    b.conns = 11;
    vec![a, b]
}

#[test]
fn interval_reports_deltas_until_the_count() {
    let mut n = two();
    let t = n.now_us;
    n.squeue_script.push_back((t + 1_000_000, later()));
    let (status, out) = n.cmd("sqstat -o cpu,conns,inline,queued,worker,wakeups,maxq,qlen 1 2");
    assert_eq!(status, 0, "{out}");
    let h = "CPU  CONNS     INLINE     QUEUED     WORKER  WAKEUPS   MAXQ   QLEN\n";
    assert_eq!(
        out,
        format!(
            "{h}\
             \x20 0      3       1200         40         35       12      9      1\n\
             \x20 1     12     987654       2048       1948      300     64      0\n\
             {h}\
             \x20 0      4        100         10          8        3     15      2\n\
             \x20 1     11          0          0          0        0     64      0\n"
        )
    );
    // One interval slept, and no more.
    assert_eq!(n.now_us, t + 1_000_000);
}

#[test]
fn interval_parsable_and_a_third_report() {
    let mut n = two();
    let t = n.now_us;
    n.squeue_script.push_back((t + 2_000_000, later()));
    let mut last = later();
    last[1].processed_inline += 5;
    n.squeue_script.push_back((t + 4_000_000, last));
    assert_eq!(ok(&mut n, "sqstat -p -o cpu,inline 2 3"), "0:1200\n1:987654\n0:100\n1:0\n0:0\n1:5\n");
    assert_eq!(n.now_us, t + 4_000_000);
}

#[test]
fn interval_without_count_runs_until_interrupted() {
    let mut n = two();
    // The first 12 checks pass: the 11 of the first interval (1 s in
    // 100 ms steps) and one in the second, whose next check stops it.
    let (status, out) = n.cmd_interrupted("sqstat -p -o cpu,drops 1", Some(12));
    assert_eq!(status, 0, "{out}");
    assert_eq!(out, "0:0\n1:2\n0:0\n1:0\n");
    // Interrupted before the first sleep: one report.
    let (status, out) = n.cmd_interrupted("sqstat -p -o cpu 5 10", Some(0));
    assert_eq!((status, out.as_str()), (0, "0\n1\n"));
}

#[test]
fn refused_command_lines() {
    let cases: &[(&str, i32, &str)] = &[
        ("sqstat -x", 2, "sqstat: illegal option -- x"),
        ("sqstat -o", 2, "sqstat: option requires an argument -- o"),
        ("sqstat -p", 2, "sqstat: -p requires -o"),
        ("sqstat -p 1", 2, "sqstat: -p requires -o"),
        ("sqstat -o nosuch", 1, "sqstat: invalid field(s) specified: nosuch"),
        ("sqstat -o cpu,bogus", 1, "sqstat: invalid field(s) specified: bogus"),
        ("sqstat -o ,", 1, "sqstat: invalid field(s) specified: ,"),
        ("sqstat -p -o all", 1, "sqstat: output field 'all' invalid in parsable mode"),
        ("sqstat 0", 1, "sqstat: invalid interval value '0'"),
        ("sqstat x", 1, "sqstat: invalid interval value 'x'"),
        ("sqstat +1", 1, "sqstat: invalid interval value '+1'"),
        ("sqstat 1.5", 1, "sqstat: invalid interval value '1.5'"),
        ("sqstat 99999999999999999999", 1, "sqstat: invalid interval value '99999999999999999999'"),
        ("sqstat 1 0", 1, "sqstat: invalid count value '0'"),
        ("sqstat 1 -2", 2, "sqstat: illegal option -- 2"),
        ("sqstat 1 many", 1, "sqstat: invalid count value 'many'"),
        ("sqstat 1 2 3", 2, "sqstat: too many arguments"),
    ];
    for &(line, status, msg) in cases {
        let mut n = two();
        let t = n.now_us;
        let (s, out) = n.cmd(line);
        assert_eq!((s, out), (status, format!("{msg}\n{USAGE}")), "{line}");
        assert_eq!(n.now_us, t, "{line} slept");
    }
}
