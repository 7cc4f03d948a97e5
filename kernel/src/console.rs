//! The serial console: formatted output (`kprint!`, `kprintln!`, the `log`
//! backend) and the bounded input queue the UART interrupt fills and the
//! shell drains.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use spin::Mutex;

use crate::dev::serial;
use crate::sched::WaitQueue;

static OUT: Mutex<()> = Mutex::new(());
/// Set when the machine is going down on a fault: output stops taking
/// the lock (its holder may be the CPU that faulted).
static EMERGENCY: AtomicBool = AtomicBool::new(false);

fn put_bytes(s: &str) {
    for b in s.bytes() {
        if b == b'\n' {
            serial::write_byte(b'\r');
        }
        serial::write_byte(b);
    }
}

/// Writes `s` to the console, turning "\n" into "\r\n".
pub fn write_str(s: &str) {
    crate::arch::without_interrupts(|| {
        if EMERGENCY.load(Ordering::Relaxed) {
            put_bytes(s);
            return;
        }
        let _g = OUT.lock();
        put_bytes(s);
    })
}

/// Writes `s` to the console unchanged (the shell already sends "\r\n").
pub fn write_raw(s: &str) {
    crate::arch::without_interrupts(|| {
        let _g = if EMERGENCY.load(Ordering::Relaxed) { None } else { Some(OUT.lock()) };
        for b in s.bytes() {
            serial::write_byte(b);
        }
    })
}

/// A `fmt::Write` to the console that sends bytes unchanged.
pub struct RawConsole;

impl Write for RawConsole {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_raw(s);
        Ok(())
    }
}

/// Switches the console to lock-free emergency output.
pub fn enter_emergency() {
    EMERGENCY.store(true, Ordering::SeqCst);
}

/// A `fmt::Write` to the console.
pub struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_str(s);
        Ok(())
    }
}

/// Formats to the console as one unit (other CPUs' output does not
/// interleave within it, up to 512 bytes).
pub fn print_fmt(args: fmt::Arguments) {
    let mut buf = Buffer { data: [0; 512], len: 0, overflow: false };
    let _ = buf.write_fmt(args);
    if buf.overflow {
        let _ = Console.write_fmt(args);
    } else {
        // Buffer holds only whole UTF-8 strings written by fmt.
        write_str(core::str::from_utf8(&buf.data[..buf.len]).unwrap_or(""));
    }
}

struct Buffer {
    data: [u8; 512],
    len: usize,
    overflow: bool,
}

impl Write for Buffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.overflow || self.len + s.len() > self.data.len() {
            self.overflow = true;
            return Ok(());
        }
        self.data[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// Prints to the serial console.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the serial console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::console::write_str("\n") };
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let ns = crate::time::clock::now_ns();
            let cpu = crate::percpu::try_this().map(|p| p.id).unwrap_or(0);
            print_fmt(format_args!(
                "[{:>5}.{:06}] cpu{} {:<5} {}\n",
                ns / 1_000_000_000,
                (ns / 1000) % 1_000_000,
                cpu,
                r.level(),
                r.args()
            ));
        }
    }
    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Routes the `log` crate to the console at `level`.
pub fn init_logger(level: log::LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

// ---------------------------------------------------------------- input

const INPUT_CAP: usize = 4096;

struct InputRing {
    buf: [u8; INPUT_CAP],
    head: usize,
    len: usize,
}

static INPUT: Mutex<InputRing> = Mutex::new(InputRing { buf: [0; INPUT_CAP], head: 0, len: 0 });
static INPUT_WAIT: WaitQueue = WaitQueue::new();
/// Set while the input queue is full and the UART's receive interrupt is
/// off: input then waits in the UART (and QEMU holds back the rest) until
/// the shell has read some, so nothing typed or piped in is lost.
static RX_PAUSED: AtomicBool = AtomicBool::new(false);
/// Set by the UART interrupt when Ctrl-C arrives; cleared by the shell.
pub static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// The UART interrupt handler: drains the receiver into the input queue.
pub fn uart_interrupt(_f: &mut crate::arch::trap::TrapFrame) {
    let mut got = false;
    loop {
        let mut r = INPUT.lock();
        if r.len == INPUT_CAP {
            // Full: leave the rest in the UART (back-pressure, no drop)
            // until `try_read` makes room.
            serial::disable_rx_interrupt();
            RX_PAUSED.store(true, Ordering::Release);
            break;
        }
        let Some(b) = serial::read_byte() else { break };
        if b == 0x03 {
            INTERRUPT.store(true, Ordering::Release);
        }
        let i = (r.head + r.len) % INPUT_CAP;
        r.buf[i] = b;
        r.len += 1;
        got = true;
    }
    if got {
        INPUT_WAIT.wake_all();
    }
}

/// Takes one input byte, if any is queued.
pub fn try_read() -> Option<u8> {
    crate::arch::without_interrupts(|| {
        let mut r = INPUT.lock();
        if r.len == 0 {
            return None;
        }
        let b = r.buf[r.head];
        r.head = (r.head + 1) % INPUT_CAP;
        r.len -= 1;
        drop(r);
        if RX_PAUSED.swap(false, Ordering::AcqRel) {
            // Room again: the UART interrupts at once if input waits.
            serial::enable_rx_interrupt();
        }
        Some(b)
    })
}

/// Blocks the calling thread until an input byte arrives.
pub fn read_blocking() -> u8 {
    loop {
        if let Some(b) = try_read() {
            return b;
        }
        INPUT_WAIT.wait_until(|| INPUT.lock().len > 0);
    }
}

/// Drops a queued Ctrl-C byte at the head of the input (the one that
/// stopped a repeating command), so it does not also cancel the next line.
pub fn discard_pending_interrupt() {
    crate::arch::without_interrupts(|| {
        let mut r = INPUT.lock();
        if r.len > 0 && r.buf[r.head] == 0x03 {
            r.head = (r.head + 1) % INPUT_CAP;
            r.len -= 1;
            drop(r);
            if RX_PAUSED.swap(false, Ordering::AcqRel) {
                serial::enable_rx_interrupt();
            }
        }
    })
}
