//! Boot on 1, 2, 4 and 8 CPUs; every CPU must come on-line.

use arbalest_tests::{parse_psrinfo_line, Config, Vm};

fn boot_and_check(smp: usize) {
    let mut vm = Vm::boot_to_prompt(Config::with_smp(smp));

    let out = vm.run("psrinfo");
    let lines: Vec<&str> = out.lines().collect();
    vm.check(lines.len() == smp, format!("psrinfo printed {} lines, expected {smp}:\n{out}", lines.len()));
    for (i, line) in lines.iter().enumerate() {
        match parse_psrinfo_line(line) {
            Some(id) => vm.check(id == i, format!("psrinfo line {i} has cpu id {id}: {line:?}")),
            None => vm.check(false, format!("psrinfo line {i} does not match the format: {line:?}")),
        }
    }

    let out = vm.run("psrinfo -v");
    let apics = out.matches("APIC").count();
    vm.check(apics == smp, format!("psrinfo -v mentions APIC {apics} times, expected {smp}:\n{out}"));

    vm.poweroff(0);
}

#[test]
fn boot_smp1() {
    boot_and_check(1);
}

#[test]
fn boot_smp2() {
    boot_and_check(2);
}

#[test]
fn boot_smp4() {
    boot_and_check(4);
}

#[test]
fn boot_smp8() {
    boot_and_check(8);
}
