//! A small POSIX `getopt`: single-letter options, grouped flags, option
//! arguments attached or separate, `--`, and illumos error messages.
//!
//! The spec string lists option letters; a letter followed by `:` takes an
//! argument (`"vo:p"`). Option parsing stops at the first operand (no
//! permutation), at `--` (which is consumed), or at a lone `-` (an operand).

use alloc::vec::Vec;
use core::fmt;

/// A command-line error, worded as illumos `getopt(3C)` words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetoptError {
    /// An option letter not in the spec.
    Illegal(char),
    /// An option that takes an argument came last.
    MissingArgument(char),
}

impl fmt::Display for GetoptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetoptError::Illegal(c) => write!(f, "illegal option -- {c}"),
            GetoptError::MissingArgument(c) => write!(f, "option requires an argument -- {c}"),
        }
    }
}

/// Parsed arguments: the options in order, then the operands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// Each option seen, with its argument for `x:` options.
    pub opts: Vec<(char, Option<&'a str>)>,
    /// Everything after the options.
    pub operands: Vec<&'a str>,
}

impl<'a> Parsed<'a> {
    /// True when option `c` was given at least once.
    pub fn has(&self, c: char) -> bool {
        self.opts.iter().any(|&(o, _)| o == c)
    }

    /// The argument of the last `-c`.
    pub fn value(&self, c: char) -> Option<&'a str> {
        self.opts
            .iter()
            .rev()
            .find(|&&(o, _)| o == c)
            .and_then(|&(_, v)| v)
    }

    /// The arguments of every `-c`, in order.
    pub fn values(&self, c: char) -> impl Iterator<Item = &'a str> + '_ {
        self.opts
            .iter()
            .filter(move |&&(o, _)| o == c)
            .filter_map(|&(_, v)| v)
    }
}

/// What the spec says about one option letter.
fn lookup(spec: &str, c: char) -> Option<bool> {
    if c == ':' {
        return None;
    }
    let mut chars = spec.chars().peekable();
    while let Some(s) = chars.next() {
        let takes_arg = chars.peek() == Some(&':');
        if s == c {
            return Some(takes_arg);
        }
    }
    None
}

/// Parses `args` (the words after the command name) against `spec`.
pub fn getopt<'a>(args: &[&'a str], spec: &str) -> Result<Parsed<'a>, GetoptError> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty()) else {
            break;
        };
        i += 1;
        for (pos, c) in letters.char_indices() {
            match lookup(spec, c) {
                None => return Err(GetoptError::Illegal(c)),
                Some(false) => parsed.opts.push((c, None)),
                Some(true) => {
                    let rest = &letters[pos + c.len_utf8()..];
                    let value = if !rest.is_empty() {
                        rest
                    } else if let Some(next) = args.get(i) {
                        i += 1;
                        next
                    } else {
                        return Err(GetoptError::MissingArgument(c));
                    };
                    parsed.opts.push((c, Some(value)));
                    break;
                }
            }
        }
    }
    parsed.operands.extend_from_slice(&args[i..]);
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn flags_grouped_and_values() {
        let p = getopt(&["-v", "-o", "a,b", "-pv", "x", "-z"], "vo:p").unwrap();
        assert_eq!(
            p.opts,
            vec![('v', None), ('o', Some("a,b")), ('p', None), ('v', None)]
        );
        assert_eq!(p.operands, vec!["x", "-z"]); // stops at first operand
        assert!(p.has('v') && p.has('p') && !p.has('q'));
        assert_eq!(p.value('o'), Some("a,b"));
    }

    #[test]
    fn attached_values() {
        let p = getopt(&["-oall", "-vofoo", "-o", "-v"], "vo:").unwrap();
        assert_eq!(p.values('o').collect::<Vec<_>>(), vec!["all", "foo", "-v"]);
        assert_eq!(p.value('o'), Some("-v"));
        assert!(p.operands.is_empty());
    }

    #[test]
    fn double_dash_and_lone_dash() {
        let p = getopt(&["-v", "--", "-p", "x"], "vp").unwrap();
        assert_eq!(p.opts, vec![('v', None)]);
        assert_eq!(p.operands, vec!["-p", "x"]);
        let p = getopt(&["-", "-v"], "v").unwrap();
        assert!(p.opts.is_empty());
        assert_eq!(p.operands, vec!["-", "-v"]);
        let p = getopt(&[], "v").unwrap();
        assert_eq!(p, Parsed::default());
    }

    #[test]
    fn errors() {
        assert_eq!(getopt(&["-z"], "vo:"), Err(GetoptError::Illegal('z')));
        assert_eq!(getopt(&["-vz"], "vo:"), Err(GetoptError::Illegal('z')));
        assert_eq!(
            getopt(&["-o"], "vo:"),
            Err(GetoptError::MissingArgument('o'))
        );
        assert_eq!(
            getopt(&["-vo"], "vo:"),
            Err(GetoptError::MissingArgument('o'))
        );
        assert_eq!(getopt(&["-:"], "vo:"), Err(GetoptError::Illegal(':')));
        assert_eq!(getopt(&["-é"], "v"), Err(GetoptError::Illegal('é')));
        assert_eq!(getopt(&["-1"], ""), Err(GetoptError::Illegal('1')));
        assert_eq!(GetoptError::Illegal('z').to_string(), "illegal option -- z");
        assert_eq!(
            GetoptError::MissingArgument('o').to_string(),
            "option requires an argument -- o"
        );
    }
}
