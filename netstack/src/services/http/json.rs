//! A minimal JSON writer for the status pages: objects, arrays, strings
//! (escaped per RFC 8259), numbers and booleans, written into a `String`.
//! Commas are the caller's (`sep`), so nesting needs no state.

use alloc::string::String;
use core::fmt::Write;

/// Appends `s` as a JSON string literal.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `"key":` (with a leading comma unless `first`).
pub fn key(out: &mut String, first: bool, k: &str) {
    if !first {
        out.push(',');
    }
    string(out, k);
    out.push(':');
}

/// Appends `"key":value` for a number.
pub fn num(out: &mut String, first: bool, k: &str, v: u64) {
    key(out, first, k);
    let _ = write!(out, "{v}");
}

/// Appends `"key":"value"`.
pub fn str_field(out: &mut String, first: bool, k: &str, v: &str) {
    key(out, first, k);
    string(out, v);
}

/// A value of a parseable admin table cell: a number when it is all
/// digits (and fits), else a string.
pub fn cell(out: &mut String, v: &str) {
    if !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()) && !(v.len() > 1 && v.starts_with('0')) {
        out.push_str(v);
    } else {
        string(out, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut s = String::new();
        string(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\u0001é\"");
        let mut s = String::new();
        cell(&mut s, "123");
        cell(&mut s, "0123");
        cell(&mut s, "1.5K");
        assert_eq!(s, "123\"0123\"\"1.5K\"");
    }
}
