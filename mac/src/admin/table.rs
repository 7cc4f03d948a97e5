//! The output table every admin command prints (illumos `ofmt`):
//!
//! * a template of [`Field`]s per output form, with a name (the header, in
//!   capitals), a minimum width and an alignment (numbers right, names
//!   left);
//! * `-o field,...` / `-o all` pick and order the columns ([`select`]);
//!   names are matched without regard to case;
//! * human output: a header line, then rows, columns at least one space
//!   apart, each as wide as its widest value; the last column is not
//!   padded when left-aligned (no trailing blanks);
//! * parseable output (`-p`): no header, values joined by `:`, and when
//!   there is more than one column each `:` or `\` in a value is escaped
//!   with a `\`.
//!
//! Rows are given as one value per template field (in template order); the
//! table prints the selected ones. An empty value prints as `--`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// Alignment of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One output field of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Header and `-o` name.
    pub name: &'static str,
    /// Minimum width of the column (values may widen it).
    pub width: usize,
    pub align: Align,
    /// Printed without `-o`.
    pub default: bool,
}

impl Field {
    /// A left-aligned default field.
    pub const fn left(name: &'static str, width: usize) -> Field {
        Field { name, width, align: Align::Left, default: true }
    }

    /// A right-aligned (numeric) default field.
    pub const fn right(name: &'static str, width: usize) -> Field {
        Field { name, width, align: Align::Right, default: true }
    }

    /// The same field, printed only when asked for with `-o`.
    pub const fn extra(self) -> Field {
        Field { default: false, ..self }
    }
}

/// A bad `-o` argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldError {
    /// Names that are no field of the output form.
    Unknown(Vec<String>),
    /// `-o` named nothing at all (`-o ,`).
    Empty,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldError::Unknown(names) => {
                f.write_str(if names.len() > 1 { "unknown output fields:" } else { "unknown output field:" })?;
                for n in names {
                    write!(f, " '{n}'")?;
                }
                Ok(())
            }
            FieldError::Empty => f.write_str("no output fields specified"),
        }
    }
}

/// The columns to print, as indexes into `template`: the default fields
/// without `-o`, every field for `-o all`, else the named ones in the
/// order given.
pub fn select(template: &[Field], spec: Option<&str>) -> Result<Vec<usize>, FieldError> {
    let Some(spec) = spec else {
        return Ok((0..template.len()).filter(|&i| template[i].default).collect());
    };
    if spec.eq_ignore_ascii_case("all") {
        return Ok((0..template.len()).collect());
    }
    let mut cols = Vec::new();
    let mut bad = Vec::new();
    for name in spec.split(',').filter(|n| !n.is_empty()) {
        match template.iter().position(|f| f.name.eq_ignore_ascii_case(name)) {
            Some(i) => cols.push(i),
            None => bad.push(String::from(name)),
        }
    }
    if !bad.is_empty() {
        return Err(FieldError::Unknown(bad));
    }
    if cols.is_empty() {
        return Err(FieldError::Empty);
    }
    Ok(cols)
}

/// A table being printed. Keep it across the batches of a repeating
/// command (`dlstat -i`): widths only grow, and the header is printed
/// again only when they do.
pub struct Table<'t> {
    template: &'t [Field],
    cols: Vec<usize>,
    parsable: bool,
    widths: Vec<usize>,
    header_done: bool,
}

fn value(row: &[String], i: usize) -> &str {
    match row.get(i) {
        Some(v) if !v.is_empty() => v,
        _ => "--",
    }
}

impl<'t> Table<'t> {
    /// A table of the `cols` of `template` (from [`select`]).
    pub fn new(template: &'t [Field], cols: Vec<usize>, parsable: bool) -> Table<'t> {
        let widths = cols.iter().map(|&i| template.get(i).map_or(0, |f| f.width.max(f.name.len()))).collect();
        Table { template, cols, parsable, widths, header_done: false }
    }

    /// Prints `rows` (each one value per template field). Nothing at all
    /// for no rows.
    pub fn print(&mut self, out: &mut dyn Write, rows: &[Vec<String>]) -> fmt::Result {
        if rows.is_empty() {
            return Ok(());
        }
        if self.parsable {
            let escape = self.cols.len() > 1;
            for row in rows {
                let mut line = String::new();
                for (n, &i) in self.cols.iter().enumerate() {
                    if n > 0 {
                        line.push(':');
                    }
                    let v = row.get(i).map_or("", String::as_str);
                    for c in v.chars() {
                        if escape && (c == ':' || c == '\\') {
                            line.push('\\');
                        }
                        line.push(c);
                    }
                }
                writeln!(out, "{line}")?;
            }
            return Ok(());
        }
        let mut grew = false;
        for row in rows {
            for (n, &i) in self.cols.iter().enumerate() {
                let w = value(row, i).chars().count();
                if let Some(cur) = self.widths.get_mut(n)
                    && w > *cur
                {
                    *cur = w;
                    grew = true;
                }
            }
        }
        if !self.header_done || grew {
            let names: Vec<String> =
                self.cols.iter().map(|&i| String::from(self.template.get(i).map_or("?", |f| f.name))).collect();
            self.line(out, &names, |_, v| v)?;
            self.header_done = true;
        }
        for row in rows {
            self.line(out, row, |i, _| i)?;
        }
        Ok(())
    }

    /// One line. `pick(template index, column number)` says where in
    /// `vals` the column's value is.
    fn line(&self, out: &mut dyn Write, vals: &[String], pick: impl Fn(usize, usize) -> usize) -> fmt::Result {
        let mut line = String::new();
        let last = self.cols.len().saturating_sub(1);
        for (n, &i) in self.cols.iter().enumerate() {
            let v = value(vals, pick(i, n));
            let width = self.widths.get(n).copied().unwrap_or(0);
            let pad = width.saturating_sub(v.chars().count());
            let align = self.template.get(i).map_or(Align::Left, |f| f.align);
            if n > 0 {
                line.push(' ');
            }
            match align {
                Align::Right => {
                    line.extend(core::iter::repeat_n(' ', pad));
                    line.push_str(v);
                }
                Align::Left => {
                    line.push_str(v);
                    if n != last {
                        line.extend(core::iter::repeat_n(' ', pad));
                    }
                }
            }
        }
        writeln!(out, "{line}")
    }
}

/// Compresses ring indexes into ranges: `[0, 1, 2, 3]` → `0-3`,
/// `[0, 2]` → `0,2`, `[0, 1, 4]` → `0-1,4`; none → `--`.
pub fn ranges(items: &[usize]) -> String {
    let mut v: Vec<usize> = items.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut s = String::new();
    let mut i = 0;
    while let Some(&start) = v.get(i) {
        let mut end = start;
        while v.get(i + 1).is_some_and(|&n| Some(n) == end.checked_add(1)) {
            i += 1;
            end = v[i];
        }
        if !s.is_empty() {
            s.push(',');
        }
        if end == start {
            let _ = write!(s, "{start}");
        } else {
            let _ = write!(s, "{start}-{end}");
        }
        i += 1;
    }
    if s.is_empty() {
        s.push_str("--");
    }
    s
}
