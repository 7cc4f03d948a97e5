//! In-kernel tests selected with `test=NAME` on the kernel command line.
//! Pass ends QEMU with code 0, failure with 1, a CPU exception with 102.

use std::sync::{Mutex, MutexGuard};

use arbalest_tests::{assert_contains, assert_exit, run_ktest, ExitKind, KTEST_TIMEOUT};

/// One kernel test at a time: the clock and scheduler tests measure time
/// under TCG, and a busy sibling VM (the migrate test keeps 4 vCPUs busy)
/// on the same host cores makes the guest lose timer ticks.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn smp_threads(smp: usize) {
    let what = format!("smp-threads (smp {smp})");
    let (kind, out) = run_ktest("smp-threads", smp, KTEST_TIMEOUT);
    assert_exit(&what, kind, ExitKind::Code(0), &out);
    assert_contains(&what, &out, "ktest smp-threads: PASS");
    for cpu in 0..smp {
        assert_contains(&what, &out, &format!("smp-threads: thread bound to cpu {cpu} ran on cpu {cpu}"));
    }
}

#[test]
fn smp_threads_4() {
    let _one = one_at_a_time();
    smp_threads(4);
}

#[test]
fn smp_threads_8() {
    let _one = one_at_a_time();
    smp_threads(8);
}

#[test]
fn page_fault() {
    let _one = one_at_a_time();
    let (kind, out) = run_ktest("page-fault", 2, KTEST_TIMEOUT);
    assert_exit("page-fault", kind, ExitKind::Code(102), &out);
    for needle in ["EXCEPTION #PF", "vector=14", "cr2=0x00007eadbeef0000", "rip=0x"] {
        assert_contains("page-fault", &out, needle);
    }
}

#[test]
fn divide_error() {
    let _one = one_at_a_time();
    let (kind, out) = run_ktest("divide-error", 2, KTEST_TIMEOUT);
    assert_exit("divide-error", kind, ExitKind::Code(102), &out);
    for needle in ["EXCEPTION #DE", "vector=0"] {
        assert_contains("divide-error", &out, needle);
    }
}

#[test]
fn timer_sleep() {
    let _one = one_at_a_time();
    let (kind, out) = run_ktest("timer-sleep", 2, KTEST_TIMEOUT);
    assert_exit("timer-sleep", kind, ExitKind::Code(0), &out);
    assert_contains("timer-sleep", &out, "ktest timer-sleep: PASS");
}

#[test]
fn timer_calibration() {
    let _one = one_at_a_time();
    let (kind, out) = run_ktest("timer-calibration", 2, KTEST_TIMEOUT);
    assert_exit("timer-calibration", kind, ExitKind::Code(0), &out);
    assert_contains("timer-calibration", &out, "ktest timer-calibration: PASS");
}

#[test]
fn unknown_test() {
    let _one = one_at_a_time();
    let (kind, out) = run_ktest("no-such-test", 1, KTEST_TIMEOUT);
    assert_exit("test=no-such-test", kind, ExitKind::Code(1), &out);
    assert_contains("test=no-such-test", &out, "unknown kernel test");
}

#[test]
fn stack_overflow_hits_guard_page() {
    let _one = one_at_a_time();
    let (kind, out) = run_ktest("stack-overflow", 2, KTEST_TIMEOUT);
    assert_exit("stack-overflow", kind, ExitKind::Code(102), &out);
    for needle in ["EXCEPTION #PF", "vector=14", "stack overflow: guard page", "thread: overflow"] {
        assert_contains("stack-overflow", &out, needle);
    }
}

#[test]
fn panic_reports_and_exits_101() {
    let _one = one_at_a_time();
    let (kind, out) = run_ktest("panic", 2, KTEST_TIMEOUT);
    assert_exit("panic", kind, ExitKind::Code(101), &out);
    assert_contains("panic", &out, "KERNEL PANIC on cpu");
    assert_contains("panic", &out, "deliberate panic from ktest");
}

/// Scheduler behaviour: each test passes only if the kernel says PASS.
fn sched_test(name: &str, smp: usize) {
    let what = format!("{name} (smp {smp})");
    let (kind, out) = run_ktest(name, smp, KTEST_TIMEOUT);
    assert_exit(&what, kind, ExitKind::Code(0), &out);
    assert_contains(&what, &out, &format!("ktest {name}: PASS"));
}

#[test]
fn preemption_among_equal_priorities() {
    let _one = one_at_a_time();
    sched_test("preempt", 2);
}

#[test]
fn priority_preempts_at_once() {
    let _one = one_at_a_time();
    sched_test("priority", 2);
}

#[test]
fn a_lock_holder_is_not_preempted_until_it_unlocks() {
    let _one = one_at_a_time();
    sched_test("preempt-lock", 2);
}

#[test]
fn raising_a_threads_priority_takes_effect_at_once() {
    let _one = one_at_a_time();
    sched_test("set-priority", 2);
}

#[test]
fn threads_move_between_cpus_on_request() {
    let _one = one_at_a_time();
    sched_test("migrate", 4);
}

#[test]
fn cross_cpu_wakeup_by_ipi() {
    let _one = one_at_a_time();
    sched_test("ipi", 4);
}

#[test]
fn per_cpu_callouts() {
    let _one = one_at_a_time();
    sched_test("callout", 1);
    sched_test("callout", 4);
}
