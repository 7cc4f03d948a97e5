//! bootimage library
