//! The kernel command line: `log=debug test=smp-threads foo bar="a b"`.
//!
//! Words are separated by ASCII whitespace; double quotes group a value that
//! holds spaces (`key="a b"`, or `"key=a b"`) and are removed. A word is a
//! `key=value` pair split at its first `=`, or a bare `key` (a flag). When a
//! key repeats, the last occurrence wins for [`Cmdline::get`].

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use log::LevelFilter;

/// The log level used when the command line names none or a bad one.
pub const DEFAULT_LOG_LEVEL: LevelFilter = LevelFilter::Info;

/// A parsed kernel command line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// The words in order: key and, for `key=value`, the value.
    entries: Vec<(String, Option<String>)>,
}

impl Cmdline {
    /// Parses a command line. Never fails: an unterminated quote runs to the
    /// end of the line, an empty key (`=x`) is kept as the key `""`.
    pub fn parse(line: &str) -> Cmdline {
        let mut entries = Vec::new();
        let mut chars = line.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                chars.next();
            }
            if chars.peek().is_none() {
                break;
            }
            // One word: quotes toggle, whitespace outside quotes ends it.
            // Remember where the first unquoted '=' went.
            let mut word = String::new();
            let mut split = None;
            let mut quoted = false;
            while let Some(&c) = chars.peek() {
                if c.is_ascii_whitespace() && !quoted {
                    break;
                }
                chars.next();
                match c {
                    '"' => quoted = !quoted,
                    '=' if split.is_none() && !quoted => {
                        split = Some(word.len());
                        word.push(c);
                    }
                    _ => word.push(c),
                }
            }
            // `"key=a b"` quotes the whole pair: split at the first '='.
            let split = split.or_else(|| word.find('='));
            entries.push(match split {
                Some(i) => (String::from(&word[..i]), Some(String::from(&word[i + 1..]))),
                None => (word, None),
            });
        }
        Cmdline { entries }
    }

    /// The value of the last `key=value`, or `None` when `key` has no value
    /// (absent, or present only as a bare flag).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// True when `key` is present as a bare word, or its last value is not
    /// one of `0`, `no`, `off`, `false`.
    pub fn flag(&self, key: &str) -> bool {
        match self.entries.iter().rev().find(|(k, _)| k == key) {
            None => false,
            Some((_, None)) => true,
            Some((_, Some(v))) => !matches!(v.as_str(), "0" | "no" | "off" | "false"),
        }
    }

    /// True when `key` appears at all, with or without a value.
    pub fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    /// Every word in order, as `(key, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for an empty command line.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `log=` level; see [`parse_log_level`].
    pub fn log_level(&self) -> (LevelFilter, Option<String>) {
        if self.contains("log") && self.get("log").is_none() {
            return parse_log_level(Some(""));
        }
        parse_log_level(self.get("log"))
    }
}

/// Parses a log level name (`error`, `warn`, `info`, `debug`, `trace`, `off`;
/// any case). `None` gives [`DEFAULT_LOG_LEVEL`]; an unknown name gives the
/// default and a warning for the caller to print once logging is up.
pub fn parse_log_level(value: Option<&str>) -> (LevelFilter, Option<String>) {
    let Some(value) = value else {
        return (DEFAULT_LOG_LEVEL, None);
    };
    let level = match value.to_ascii_lowercase().as_str() {
        "off" => LevelFilter::Off,
        "error" => LevelFilter::Error,
        "warn" => LevelFilter::Warn,
        "info" => LevelFilter::Info,
        "debug" => LevelFilter::Debug,
        "trace" => LevelFilter::Trace,
        _ => {
            let warning = format!(
                "cmdline: unknown log level '{value}' (use error|warn|info|debug|trace|off), using info"
            );
            return (DEFAULT_LOG_LEVEL, Some(warning));
        }
    };
    (level, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn keys_values_flags() {
        let c = Cmdline::parse("log=debug test=smp-threads foo bar=baz");
        assert_eq!(c.len(), 4);
        assert_eq!(c.get("log"), Some("debug"));
        assert_eq!(c.get("test"), Some("smp-threads"));
        assert_eq!(c.get("bar"), Some("baz"));
        assert_eq!(c.get("foo"), None);
        assert_eq!(c.get("nope"), None);
        assert!(c.flag("foo"));
        assert!(c.flag("bar"));
        assert!(!c.flag("nope"));
        assert!(c.contains("foo"));
        let all: Vec<_> = c.iter().collect();
        assert_eq!(
            all,
            vec![
                ("log", Some("debug")),
                ("test", Some("smp-threads")),
                ("foo", None),
                ("bar", Some("baz")),
            ]
        );
    }

    #[test]
    fn quotes() {
        let c = Cmdline::parse(r#"a="x y  z" "b=1 2" c=" " d="" e="unterminated value"#);
        assert_eq!(c.get("a"), Some("x y  z"));
        assert_eq!(c.get("b"), Some("1 2"));
        assert_eq!(c.get("c"), Some(" "));
        assert_eq!(c.get("d"), Some(""));
        assert_eq!(c.get("e"), Some("unterminated value"));
        assert_eq!(c.len(), 5);
    }

    #[test]
    fn quoted_equals_stays_in_value() {
        let c = Cmdline::parse(r#"k="a=b" x=1=2"#);
        assert_eq!(c.get("k"), Some("a=b"));
        assert_eq!(c.get("x"), Some("1=2"));
    }

    #[test]
    fn whitespace_and_empty() {
        assert!(Cmdline::parse("").is_empty());
        assert!(Cmdline::parse(" \t\n ").is_empty());
        let c = Cmdline::parse("  a\tb\n");
        assert_eq!(c.len(), 2);
        let c = Cmdline::parse("=x");
        assert_eq!(c.get(""), Some("x"));
    }

    #[test]
    fn last_wins_and_false_flags() {
        let c = Cmdline::parse("v=1 v=2 q=0 r=no s=off t=false u=yes");
        assert_eq!(c.get("v"), Some("2"));
        assert!(!c.flag("q"));
        assert!(!c.flag("r"));
        assert!(!c.flag("s"));
        assert!(!c.flag("t"));
        assert!(c.flag("u"));
    }

    #[test]
    fn log_levels() {
        assert_eq!(Cmdline::parse("").log_level(), (LevelFilter::Info, None));
        assert_eq!(
            Cmdline::parse("log=debug").log_level(),
            (LevelFilter::Debug, None)
        );
        assert_eq!(
            Cmdline::parse("log=TRACE").log_level(),
            (LevelFilter::Trace, None)
        );
        assert_eq!(
            Cmdline::parse("log=off").log_level(),
            (LevelFilter::Off, None)
        );
        assert_eq!(parse_log_level(Some("error")), (LevelFilter::Error, None));
        assert_eq!(parse_log_level(Some("warn")), (LevelFilter::Warn, None));
        assert_eq!(parse_log_level(Some("info")), (LevelFilter::Info, None));
        let (level, warning) = Cmdline::parse("log=chatty").log_level();
        assert_eq!(level, LevelFilter::Info);
        assert!(warning.unwrap().contains("'chatty'"));
        let (level, warning) = Cmdline::parse("log").log_level();
        assert_eq!(level, LevelFilter::Info);
        assert!(warning.is_some());
    }
}
