//! Kernel command line (placeholder)
