//! The Crossbow MAC layer: provider interface (rings, ring groups), MAC
//! clients, soft ring sets, VNICs, etherstubs, flows and statistics.
//!
//! Empty until the MAC-layer issues land; the crate exists now so that its
//! name and its place in the dependency graph (`drivers → mac ← netstack`)
//! are fixed.
#![no_std]
