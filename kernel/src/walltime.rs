//! Calendar arithmetic (placeholder)
