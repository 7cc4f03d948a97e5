//! The bandwidth tick: releases the `maxbw` allowance of every MAC client
//! that has a limit or packets waiting, every millisecond while any does
//! (illumos recomputes its SRS allowance per clock tick).

use alloc::sync::Arc;
use alloc::vec::Vec;

use arbalest_mac::client::MacClient;

use crate::sched::{self, Priority};

fn clients() -> Vec<Arc<MacClient>> {
    let mut v: Vec<Arc<MacClient>> = arbalest_mac::mac::links().iter().map(|m| m.primary().clone()).collect();
    v.extend(arbalest_mac::link::vnics());
    v
}

/// Starts the tick thread.
pub fn start() -> bool {
    // Medium like every data-path thread: the shapers take spin locks the
    // lanes also take, and a higher-priority spinner would starve a
    // preempted holder on the same CPU.
    sched::spawn("mac/bwtick", Priority::Medium, None, || loop {
        let mut busy = false;
        for c in clients() {
            if c.tx_bw.limit().is_some() || c.rx_bw.limit().is_some() || c.tx_bw.backlogged() || c.rx_bw.backlogged() {
                busy = true;
                c.bw_service();
            }
        }
        sched::sleep_ms(if busy { 1 } else { 20 });
    })
    .is_some()
}
