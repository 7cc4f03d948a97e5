//! Time: the monotonic nanosecond clock (TSC-based) and the calibration of
//! the TSC and the local APIC timer against the HPET, cross-checked
//! against the ACPI PM timer.

pub mod calibrate;
pub mod clock;
