//! Column output as illumos `ofmt` does it: every field has a name and a
//! width; `-o field,...` (or `-o all`) picks the columns; the human form
//! pads each column to its width (a value that overflows pushes the next
//! column right by as much, then later columns catch up) and prints `--`
//! for an empty value; the parsable form (`-p`) joins raw values with `:`,
//! escaping `:` and `\` with a backslash when more than one field is shown.
//! As in ofmt, the header comes with the first row: no rows, no header.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// A column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Header, in capitals.
    pub name: &'static str,
    /// Width including the separating space.
    pub width: usize,
}

/// Why a field list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfmtError {
    /// A name not among the fields.
    Unknown(String),
    /// `all` with `-p`.
    AllParsable,
}

impl fmt::Display for OfmtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfmtError::Unknown(n) => write!(f, "invalid field(s) specified: {n}"),
            OfmtError::AllParsable => f.write_str("output field 'all' invalid in parsable mode"),
        }
    }
}

/// A chosen set of columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ofmt {
    fields: &'static [Field],
    cols: Vec<usize>,
    parsable: bool,
    headed: bool,
}

impl Ofmt {
    /// Columns from `spec` (`-o` value) or else `default`, both
    /// comma-separated, case-insensitive.
    pub fn new(fields: &'static [Field], spec: Option<&str>, default: &str, parsable: bool) -> Result<Ofmt, OfmtError> {
        let list = spec.unwrap_or(default);
        let mut cols = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name.eq_ignore_ascii_case("all") {
                if parsable {
                    return Err(OfmtError::AllParsable);
                }
                cols.extend(0..fields.len());
                continue;
            }
            match fields.iter().position(|f| f.name.eq_ignore_ascii_case(name)) {
                Some(i) => cols.push(i),
                None => return Err(OfmtError::Unknown(name.to_string())),
            }
        }
        if cols.is_empty() {
            return Err(OfmtError::Unknown(list.to_string()));
        }
        Ok(Ofmt { fields, cols, parsable, headed: false })
    }

    /// Prints one row, after the header if it is the first (the header is
    /// not printed in parsable mode); `values` holds one value per field,
    /// in field order.
    pub fn row(&mut self, out: &mut dyn Write, values: &[String]) -> fmt::Result {
        if !self.headed && !self.parsable {
            let names: Vec<&str> = self.cols.iter().map(|&c| self.fields[c].name).collect();
            self.human(out, &names)?;
        }
        self.headed = true;
        let vals: Vec<&str> = self.cols.iter().map(|&c| values.get(c).map_or("", String::as_str)).collect();
        if self.parsable {
            let escape = vals.len() > 1;
            for (k, v) in vals.iter().enumerate() {
                if k > 0 {
                    out.write_char(':')?;
                }
                for ch in v.chars() {
                    if escape && (ch == ':' || ch == '\\') {
                        out.write_char('\\')?;
                    }
                    out.write_char(ch)?;
                }
            }
            return out.write_char('\n');
        }
        let vals: Vec<&str> = vals.into_iter().map(|v| if v.is_empty() { "--" } else { v }).collect();
        self.human(out, &vals)
    }

    fn human(&self, out: &mut dyn Write, vals: &[&str]) -> fmt::Result {
        let (mut printed, mut budget) = (0usize, 0usize);
        for (k, v) in vals.iter().enumerate() {
            out.write_str(v)?;
            printed += v.chars().count();
            if k + 1 == vals.len() {
                break;
            }
            budget += self.fields[self.cols[k]].width;
            let pad = budget.saturating_sub(printed).max(1);
            for _ in 0..pad {
                out.write_char(' ')?;
            }
            printed += pad;
        }
        out.write_char('\n')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    static F: [Field; 3] = [Field { name: "A", width: 4 }, Field { name: "BB", width: 5 }, Field { name: "C", width: 3 }];

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn human_and_parsable() {
        let mut o = Ofmt::new(&F, None, "a,bb,c", false).unwrap();
        let mut out = String::new();
        o.row(&mut out, &s(&["x", "", "z"])).unwrap();
        o.row(&mut out, &s(&["longer", "y", "z"])).unwrap();
        assert_eq!(out, "A   BB   C\nx   --   z\nlonger y z\n");
        let mut p = Ofmt::new(&F, Some("c,a"), "a", true).unwrap();
        let mut out = String::new();
        p.row(&mut out, &s(&["a:b", "", "c\\"])).unwrap();
        assert_eq!(out, "c\\\\:a\\:b\n");
        assert_eq!(Ofmt::new(&F, Some("nope"), "a", false), Err(OfmtError::Unknown("nope".into())));
        assert_eq!(Ofmt::new(&F, Some("all"), "a", true), Err(OfmtError::AllParsable));
        assert_eq!(Ofmt::new(&F, Some("all"), "a", false).unwrap().cols, vec![0, 1, 2]);
    }
}
