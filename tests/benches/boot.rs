//! `cargo bench -p arbalest-tests --bench boot`: kernel size, boot time to
//! the first prompt, and the kernel's context-switch benchmark.

use std::process::exit;
use std::time::Duration;

use arbalest_tests::{elf_sections, kernel, run_ktest, Config, ExitKind, Vm, BOOT_TIMEOUT, EXIT_TIMEOUT, KTEST_TIMEOUT, PROMPT};

const BOOTS: usize = 5;

fn main() {
    let elf = kernel();
    let bytes = std::fs::read(&elf).unwrap_or_else(|e| panic!("{}: {e}", elf.display()));
    println!("kernel  {}", elf.display());
    println!("  {:<12} {:>12}", "file", bytes.len());
    match elf_sections(&bytes) {
        Ok(secs) => {
            for want in [".text", ".rodata", ".data", ".bss"] {
                let size: u64 = secs.iter().filter(|(n, _)| n == want || n.starts_with(&format!("{want}."))).map(|(_, s)| s).sum();
                println!("  {:<12} {:>12}", want, size);
            }
        }
        Err(e) => println!("  (cannot read sections: {e})"),
    }

    println!();
    println!("boot to first prompt ({BOOTS} boots, {})", Config::default().accel);
    println!("  {:<6} {:>9} {:>9} {:>9}", "smp", "min ms", "median ms", "max ms");
    let mut failed = false;
    for smp in [1usize, 4] {
        let mut ms = Vec::new();
        for _ in 0..BOOTS {
            let mut vm = Vm::boot(Config::with_smp(smp));
            if let Err(e) = vm.expect(PROMPT, BOOT_TIMEOUT) {
                eprintln!("smp {smp}: no prompt:\n{e}");
                exit(1);
            }
            ms.push(vm.started().elapsed().as_secs_f64() * 1000.0);
            vm.send_line("poweroff 0");
            match vm.wait_exit(EXIT_TIMEOUT) {
                Ok(ExitKind::Code(0)) => {}
                Ok(k) => {
                    eprintln!("smp {smp}: poweroff 0 ended with {k:?}");
                    failed = true;
                }
                Err(e) => {
                    eprintln!("smp {smp}: {e}");
                    failed = true;
                }
            }
        }
        ms.sort_by(|a, b| a.total_cmp(b));
        println!("  {:<6} {:>9.1} {:>9.1} {:>9.1}", smp, ms[0], ms[ms.len() / 2], ms[ms.len() - 1]);
    }

    println!();
    let smp = 1;
    println!("context switch (test=ctxswitch, smp {smp})");
    let (kind, out) = run_ktest("ctxswitch", smp, KTEST_TIMEOUT.max(Duration::from_secs(300)));
    let lines: Vec<&str> = out.lines().filter(|l| l.trim_start().starts_with("ctxswitch:")).collect();
    for l in &lines {
        println!("  {}", l.trim());
    }
    if kind != ExitKind::Code(0) || lines.is_empty() {
        eprintln!("test=ctxswitch: {kind:?}, {} ctxswitch: lines\n--- transcript ---\n{out}", lines.len());
        failed = true;
    }
    if failed {
        exit(1);
    }
}
