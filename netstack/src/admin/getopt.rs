//! A small `getopt` for the admin commands: single-letter options, flags
//! clustered (`-rn`), values attached or separate (`-ofoo`, `-o foo`),
//! operands anywhere (options after operands are still options, so
//! `ping HOST -c 3` works), `--` ends the options.

use alloc::vec::Vec;

/// One option found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt<'a> {
    /// The letter.
    pub name: char,
    /// Its value, for options that take one.
    pub value: Option<&'a str>,
}

/// A bad command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptError {
    /// An option letter not in the spec.
    Unknown(char),
    /// An option that needs a value came last.
    MissingValue(char),
}

/// Options and operands of a command line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// Options in order of appearance.
    pub opts: Vec<Opt<'a>>,
    /// Everything else, in order.
    pub operands: Vec<&'a str>,
}

impl<'a> Parsed<'a> {
    /// Whether flag `c` was given.
    pub fn has(&self, c: char) -> bool {
        self.opts.iter().any(|o| o.name == c)
    }

    /// The last value given for option `c`.
    pub fn value(&self, c: char) -> Option<&'a str> {
        self.opts.iter().rev().find(|o| o.name == c).and_then(|o| o.value)
    }

    /// How often option `c` was given.
    pub fn count(&self, c: char) -> usize {
        self.opts.iter().filter(|o| o.name == c).count()
    }
}

/// Parses `args` (without the command name) against `spec`: letters, each
/// followed by `:` if it takes a value.
pub fn getopt<'a>(args: &[&'a str], spec: &str) -> Result<Parsed<'a>, OptError> {
    let takes_value = |c: char| -> Option<bool> {
        let mut it = spec.chars().peekable();
        while let Some(x) = it.next() {
            let v = it.peek() == Some(&':');
            if v {
                it.next();
            }
            if x == c && x != ':' {
                return Some(v);
            }
        }
        None
    };
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        i += 1;
        if a == "--" {
            p.operands.extend_from_slice(&args[i..]);
            break;
        }
        if a.len() < 2 || !a.starts_with('-') {
            p.operands.push(a);
            continue;
        }
        let body = &a[1..];
        for (k, c) in body.char_indices() {
            match takes_value(c) {
                None => return Err(OptError::Unknown(c)),
                Some(false) => p.opts.push(Opt { name: c, value: None }),
                Some(true) => {
                    let rest = &body[k + c.len_utf8()..];
                    let value = if !rest.is_empty() {
                        rest
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1]
                    } else {
                        return Err(OptError::MissingValue(c));
                    };
                    p.opts.push(Opt { name: c, value: Some(value) });
                    break;
                }
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn forms() {
        let p = getopt(&["-rn", "x", "-o", "a,b", "-pofoo", "--", "-z"], "rnpo:").unwrap();
        assert!(p.has('r') && p.has('n') && p.has('p'));
        assert_eq!(p.value('o'), Some("foo"));
        assert_eq!(p.count('o'), 2);
        assert_eq!(p.operands, vec!["x", "-z"]);
        assert_eq!(getopt(&["-x"], "ab:"), Err(OptError::Unknown('x')));
        assert_eq!(getopt(&["-b"], "ab:"), Err(OptError::MissingValue('b')));
        assert_eq!(getopt(&["-"], "a").unwrap().operands, vec!["-"]);
        assert_eq!(getopt(&["-:"], "a:"), Err(OptError::Unknown(':')));
    }
}
