use arbalest_tests::*;
use std::time::Duration;
#[test]
fn t() {
    let mut vm = Vm::boot(Config::with_smp(1));
    let e = vm.expect("never", Duration::from_secs(2)).unwrap_err();
    assert!(e.contains("timed out") && e.contains("arbalest# "), "{e}");
    let e = vm.wait_exit(Duration::from_secs(1)).unwrap_err();
    assert!(e.contains("killed"), "{e}");
    println!("{e}");
    let mut vm = Vm::boot(Config::with_smp(1));
    vm.expect(PROMPT, BOOT_TIMEOUT).unwrap();
    vm.close_stdin();
    println!("{:?}", vm.wait_exit(Duration::from_secs(3)).map_err(|e| e.len()));
    let mut vm = Vm::boot(Config::with_smp(1));
    vm.expect(PROMPT, BOOT_TIMEOUT).unwrap();
    vm.send("echo x\n\x04");
    println!("{:?}", vm.wait_exit(Duration::from_secs(3)));
    println!("{:?}", vm.expect("y", Duration::from_secs(3)).map_err(|e| e.lines().next().unwrap().to_string()));
}
