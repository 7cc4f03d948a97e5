//! Device drivers: PCI, virtio-net and igb. Each driver implements the MAC
//! provider interface of `arbalest-mac`; hardware access goes through small
//! traits the kernel implements, so ring and register logic is host-testable.
//!
//! Empty until the driver issues land.
#![no_std]
