//! Shell (placeholder)
