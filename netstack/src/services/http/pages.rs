//! The endpoints and where their data comes from.
//!
//! | path | body |
//! |---|---|
//! | `/` | the machine's status as text ([`StatusSource::status_text`]) |
//! | `/?format=json`, `/status.json` | the same as JSON ([`StatusSource::status_json`]) |
//! | `/stats/dlstat` | `dlstat`'s per-link counters as JSON |
//! | `/stats/flowstat` | `flowstat`'s per-flow counters as JSON |
//! | `/bytes/N` | `N` bytes (at most [`MAX_BYTES`]) of [`super::pattern`], streamed |
//!
//! Anything else is `404`; `/bytes/N` with `N` not a number or over the
//! limit is `400`. The data comes from a [`StatusSource`] the instance
//! provides, so this module knows nothing of stacks or links.

use alloc::string::String;
use alloc::vec::Vec;

/// The largest `/bytes/N`: 1 GiB.
pub const MAX_BYTES: u64 = 1 << 30;

/// What the status pages show, provided by whoever runs the server (a
/// FireEngine instance, a host test).
pub trait StatusSource: Send + Sync {
    /// The `/` page, plain text.
    fn status_text(&self) -> String;
    /// The `/status.json` document.
    fn status_json(&self) -> String;
    /// `dlstat`'s counters as a JSON document.
    fn dlstat_json(&self) -> String;
    /// `flowstat`'s counters as a JSON document.
    fn flowstat_json(&self) -> String;
}

/// What a request gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    /// A body made at once (small).
    Bytes {
        /// `200` or an error status.
        code: u16,
        /// Its `Content-Type`.
        content_type: &'static str,
        /// The bytes.
        data: Vec<u8>,
    },
    /// `len` bytes of the pattern, made as the send room opens.
    Pattern {
        /// How many.
        len: u64,
    },
}

/// The body for `target` (a GET's; a HEAD gets the same head).
pub fn route(target: &str, src: &dyn StatusSource) -> Body {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let json = |s: String| Body::Bytes { code: 200, content_type: "application/json", data: s.into_bytes() };
    match path {
        "/" | "/index.html" => {
            if query.is_some_and(|q| q.split('&').any(|kv| kv == "format=json")) {
                json(src.status_json())
            } else {
                Body::Bytes { code: 200, content_type: "text/plain; charset=utf-8", data: src.status_text().into_bytes() }
            }
        }
        "/status.json" => json(src.status_json()),
        "/stats/dlstat" => json(src.dlstat_json()),
        "/stats/flowstat" => json(src.flowstat_json()),
        _ => match path.strip_prefix("/bytes/") {
            Some(n) => match parse_count(n) {
                Some(len) => Body::Pattern { len },
                None => error(400),
            },
            None => error(404),
        },
    }
}

/// An error response's body.
pub fn error(code: u16) -> Body {
    Body::Bytes { code, content_type: "text/plain; charset=utf-8", data: super::response::error_body(code) }
}

fn parse_count(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    (n <= MAX_BYTES).then_some(n)
}

/// Turns the parseable output of an admin command (`-p -o a,b,c`: one
/// line per row, fields split by `:`, a `:` inside a field as `\:`) into a
/// JSON array of objects keyed by `fields`.
pub fn parseable_to_json(out: &mut String, fields: &[&str], text: &str) {
    out.push('[');
    let mut first = true;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let cells = split_parseable(line);
        if !first {
            out.push(',');
        }
        first = false;
        out.push('{');
        for (i, f) in fields.iter().enumerate() {
            super::json::key(out, i == 0, f);
            super::json::cell(out, cells.get(i).map_or("", |s| s.as_str()));
        }
        out.push('}');
    }
    out.push(']');
}

fn split_parseable(line: &str) -> Vec<String> {
    let mut v = alloc::vec![String::new()];
    let mut esc = false;
    for c in line.chars() {
        match (esc, c) {
            (false, '\\') => esc = true,
            (false, ':') => v.push(String::new()),
            (_, c) => {
                esc = false;
                if let Some(l) = v.last_mut() {
                    l.push(c);
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    struct S;
    impl StatusSource for S {
        fn status_text(&self) -> String {
            String::from("up\n")
        }
        fn status_json(&self) -> String {
            String::from("{}")
        }
        fn dlstat_json(&self) -> String {
            String::from("[1]")
        }
        fn flowstat_json(&self) -> String {
            String::from("[2]")
        }
    }

    #[test]
    fn routes() {
        assert!(matches!(route("/", &S), Body::Bytes { code: 200, content_type: "text/plain; charset=utf-8", .. }));
        assert!(matches!(route("/?format=json", &S), Body::Bytes { code: 200, content_type: "application/json", .. }));
        assert!(matches!(route("/stats/flowstat", &S), Body::Bytes { code: 200, ref data, .. } if data == b"[2]"));
        assert_eq!(route("/bytes/10", &S), Body::Pattern { len: 10 });
        assert_eq!(route("/bytes/1073741824", &S), Body::Pattern { len: MAX_BYTES });
        assert!(matches!(route("/bytes/1073741825", &S), Body::Bytes { code: 400, .. }));
        assert!(matches!(route("/bytes/-1", &S), Body::Bytes { code: 400, .. }));
        assert!(matches!(route("/nope", &S), Body::Bytes { code: 404, .. }));
    }

    #[test]
    fn parseable() {
        let mut s = String::new();
        parseable_to_json(&mut s, &["link", "ipkts", "mac"], "net0:12:2\\:8\\:20\nvnic1:0:x\n");
        assert_eq!(s, r#"[{"link":"net0","ipkts":12,"mac":"2:8:20"},{"link":"vnic1","ipkts":0,"mac":"x"}]"#);
    }
}
