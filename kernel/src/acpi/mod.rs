//! ACPI table parsing (placeholder)
