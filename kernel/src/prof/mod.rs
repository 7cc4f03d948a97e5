//! The kernel profiler behind `lockstat -I`: a [`sampler::Sampler`] that
//! the scheduler tick feeds with the interrupted program counter while a
//! profile runs, and the [`ksyms::Ksyms`] table that names the functions
//! those counters fell in (handed over by `bootimage` through fw_cfg).

pub mod ksyms;
pub mod sampler;

/// The one profile of the system (the scheduler tick samples into it).
pub static PROFILE: sampler::Sampler = sampler::Sampler::new();
