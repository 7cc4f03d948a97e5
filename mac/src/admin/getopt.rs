//! Option parsing for the admin commands: single-letter options, grouped
//! flags (`-pH`), option arguments attached (`-olink`) or separate
//! (`-o link`), `--` ending the options. Options and operands may be mixed
//! (`dladm show-phys net0 -H`), as illumos' `getopt_long` allows.

use alloc::vec::Vec;
use core::fmt;

/// A command-line error, worded as `getopt(3C)` words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptError {
    /// An option letter not in the spec.
    Illegal(char),
    /// An option that takes an argument came last.
    MissingArgument(char),
}

impl fmt::Display for OptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptError::Illegal(c) => write!(f, "illegal option -- {c}"),
            OptError::MissingArgument(c) => write!(f, "option requires an argument -- {c}"),
        }
    }
}

/// Parsed arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opts<'a> {
    /// Each option in order, with its argument for options that take one.
    pub opts: Vec<(char, Option<&'a str>)>,
    /// The operands, in order.
    pub operands: Vec<&'a str>,
}

impl<'a> Opts<'a> {
    /// Whether `-c` was given.
    pub fn has(&self, c: char) -> bool {
        self.opts.iter().any(|&(o, _)| o == c)
    }

    /// The argument of the last `-c`.
    pub fn value(&self, c: char) -> Option<&'a str> {
        self.opts.iter().rev().find(|&&(o, _)| o == c).and_then(|&(_, v)| v)
    }

    /// The first option given more than once, other than those in `allow`.
    pub fn duplicate(&self, allow: &str) -> Option<char> {
        self.opts
            .iter()
            .enumerate()
            .find_map(|(i, &(c, _))| (!allow.contains(c) && self.opts[..i].iter().any(|&(o, _)| o == c)).then_some(c))
    }
}

/// Parses `args` (the words after the command or subcommand name) against
/// `spec`: option letters, each followed by `:` if it takes an argument.
pub fn getopt<'a>(args: &[&'a str], spec: &str) -> Result<Opts<'a>, OptError> {
    let takes_arg = |c: char| -> Option<bool> {
        if c == ':' {
            return None;
        }
        let i = spec.find(c)?;
        Some(spec[i + c.len_utf8()..].starts_with(':'))
    };
    let mut out = Opts::default();
    let mut i = 0;
    while let Some(&arg) = args.get(i) {
        i += 1;
        if arg == "--" {
            out.operands.extend(args.get(i..).unwrap_or_default().iter().copied());
            break;
        }
        let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty()) else {
            out.operands.push(arg);
            continue;
        };
        for (pos, c) in letters.char_indices() {
            match takes_arg(c) {
                None => return Err(OptError::Illegal(c)),
                Some(false) => out.opts.push((c, None)),
                Some(true) => {
                    let rest = &letters[pos + c.len_utf8()..];
                    if !rest.is_empty() {
                        out.opts.push((c, Some(rest)));
                    } else if let Some(&next) = args.get(i) {
                        i += 1;
                        out.opts.push((c, Some(next)));
                    } else {
                        return Err(OptError::MissingArgument(c));
                    }
                    break;
                }
            }
        }
    }
    Ok(out)
}
