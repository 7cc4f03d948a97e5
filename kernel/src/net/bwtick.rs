//! The bandwidth tick: releases the `maxbw` allowance of every MAC client
//! (and of its flows) that has a limit or packets waiting, every millisecond while any does
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
    // High, the default priority of links' lanes, so that shaped links
    // keep their rate under load. (Data-path locks hold off preemption,
    // so threads of different priorities may share them.)
    sched::spawn("mac/bwtick", Priority::High, None, || loop {
        let mut busy = false;
        for c in clients() {
            if c.bw_active() {
                busy = true;
                c.bw_service();
            }
        }
        sched::sleep_ms(if busy { 1 } else { 20 });
    })
    .is_some()
}
