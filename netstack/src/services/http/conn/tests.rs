//! Host tests of the connection state machine, and the fuzzer: thousands
//! of random and mutated byte sequences, fed in random pieces with random
//! send room and clock steps; every byte that comes out must parse as a
//! sequence of well-formed responses, one per request answered.

use alloc::string::String;
use alloc::vec::Vec;

use super::*;

struct Src;
impl StatusSource for Src {
    fn status_text(&self) -> String {
        String::from("Arbalest status\n")
    }
    fn status_json(&self) -> String {
        String::from("{\"ok\":true}")
    }
    fn dlstat_json(&self) -> String {
        String::from("[]")
    }
    fn flowstat_json(&self) -> String {
        String::from("[]")
    }
}

/// One response as read back from the output.
#[derive(Debug)]
struct Resp {
    code: u16,
    head: String,
    body: Vec<u8>,
}

/// Splits `out` into responses, checking each is well-formed; `bodies`
/// says per response whether a body follows (HEAD has none). The last
/// body may be cut short when `cut` (the test stopped draining).
fn responses(out: &[u8], bodies: &[(u16, bool)], cut: bool) -> Vec<Resp> {
    let mut v = Vec::new();
    let mut at = 0;
    for (i, &(code, has_body)) in bodies.iter().enumerate() {
        if at == out.len() && cut {
            break;
        }
        let rest = &out[at..];
        let end = rest.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
            assert!(cut, "response {i}: no end of head in {:?}", String::from_utf8_lossy(rest));
            rest.len()
        });
        if end == rest.len() {
            break;
        }
        let head = core::str::from_utf8(&rest[..end]).expect("head is ASCII");
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap();
        let want = alloc::format!("HTTP/1.1 {} {}", code, super::super::response::reason(code));
        assert_eq!(status, want, "response {i}");
        let mut len = None;
        let mut server = false;
        for l in lines {
            let (n, val) = l.split_once(": ").expect("header: value");
            match n {
                "Content-Length" => len = Some(val.parse::<usize>().expect("length")),
                "Server" => server = val == "Arbalest",
                _ => {}
            }
        }
        assert!(server, "response {i}: Server");
        let len = len.expect("Content-Length");
        at += end + 4;
        let blen = if has_body { len } else { 0 };
        let avail = out.len() - at;
        if avail < blen {
            assert!(cut, "response {i}: body short");
            v.push(Resp { code, head: String::from(head), body: out[at..].to_vec() });
            at = out.len();
            break;
        }
        v.push(Resp { code, head: String::from(head), body: out[at..at + blen].to_vec() });
        at += blen;
    }
    assert_eq!(at, out.len(), "bytes after the last response");
    v
}

fn run(input: &[u8]) -> (HttpConn, Vec<u8>) {
    let ctr = HttpCounters::default();
    let mut c = HttpConn::new(0);
    let mut at = 0;
    let mut out = Vec::new();
    while at < input.len() && !c.should_close() {
        let k = c.input_room().min(input.len() - at);
        c.feed(&input[at..at + k], 0, &Src, &ctr);
        at += k;
        out.extend(c.output(1 << 20, 0, &Src, &ctr));
    }
    c.peer_finished(0, &Src, &ctr);
    loop {
        let o = c.output(1 << 20, 0, &Src, &ctr);
        if o.is_empty() {
            break;
        }
        out.extend(o);
    }
    (c, out)
}

#[test]
fn keepalive_and_pipelining_answer_in_order() {
    let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nHEAD /status.json HTTP/1.1\r\nHost: a\r\n\r\nGET /bytes/300 HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /?format=json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let (c, out) = run(req);
    let r = responses(&out, &c.log, false);
    let codes: Vec<u16> = r.iter().map(|r| r.code).collect();
    assert_eq!(codes, [200, 200, 200, 404, 405, 200], "the last request comes after close");
    assert_eq!(r[0].body, b"Arbalest status\n");
    assert!(r[1].body.is_empty() && r[1].head.contains("Content-Length: 11"), "HEAD: length, no body");
    assert_eq!(r[2].body.len(), 300);
    assert!(r[2].body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    assert!(r[4].head.contains("Allow: GET, HEAD"));
    assert_eq!(r[5].body, b"{\"ok\":true}");
    assert!(r[5].head.contains("Connection: close"));
    assert!(c.should_close());
}

#[test]
fn http10_closes_unless_keepalive() {
    let (c, out) = run(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    assert_eq!(responses(&out, &c.log, false).len(), 1);
    let (c, out) = run(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    let r = responses(&out, &c.log, false);
    assert_eq!(r.len(), 2);
    assert!(r[0].head.contains("Connection: keep-alive"));
    assert!(r[1].head.contains("Connection: close"));
}

#[test]
fn refusals_close_after_answer() {
    for (req, code) in [
        (&b"BAD\x01 / HTTP/1.1\r\n\r\n"[..], 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n", 413),
        (b"GET / HTTP/3.0\r\n\r\n", 505),
    ] {
        let mut two = req.to_vec();
        two.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let (c, out) = run(&two);
        let r = responses(&out, &c.log, false);
        assert_eq!(r.len(), 1, "{:?}", String::from_utf8_lossy(req));
        assert_eq!(r[0].code, code);
        assert!(r[0].head.contains("Connection: close"));
        assert!(c.should_close());
    }
}

#[test]
fn slow_client_gets_408_and_idle_closes_quietly() {
    let ctr = HttpCounters::default();
    let mut c = HttpConn::new(0);
    c.feed(b"GET / HT", 1000, &Src, &ctr);
    c.tick(REQUEST_TIMEOUT_MS - 1, &ctr);
    assert!(c.output(4096, REQUEST_TIMEOUT_MS - 1, &Src, &ctr).is_empty());
    c.tick(REQUEST_TIMEOUT_MS, &ctr);
    let out = c.output(4096, REQUEST_TIMEOUT_MS, &Src, &ctr);
    let r = responses(&out, &c.log, false);
    assert_eq!(r[0].code, 408);
    assert!(c.should_close());
    assert_eq!(ctr.timeouts.load(Ordering::Relaxed), 1);

    // Idle after an answer: the clock starts when the answer is out.
    let mut c = HttpConn::new(0);
    c.feed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 5000, &Src, &ctr);
    assert!(!c.output(1 << 16, 5000, &Src, &ctr).is_empty());
    c.tick(5000 + REQUEST_TIMEOUT_MS - 1, &ctr);
    assert!(!c.should_close());
    c.tick(5000 + REQUEST_TIMEOUT_MS, &ctr);
    assert!(c.should_close());
    assert!(c.output(4096, 20_000, &Src, &ctr).is_empty(), "idle: closed with no answer");
}

#[test]
fn bytes_stream_within_room_and_write_timeout() {
    let ctr = HttpCounters::default();
    let mut c = HttpConn::new(0);
    c.feed(b"GET /bytes/1073741824 HTTP/1.1\r\nHost: a\r\n\r\n", 0, &Src, &ctr);
    let first = c.output(1000, 0, &Src, &ctr);
    assert_eq!(first.len(), 1000);
    for t in 1..50 {
        let o = c.output(65536, t, &Src, &ctr);
        assert_eq!(o.len(), 65536, "never more than the room");
    }
    c.tick(49 + WRITE_TIMEOUT_MS - 1, &ctr);
    assert!(!c.should_abort());
    c.tick(49 + WRITE_TIMEOUT_MS, &ctr);
    assert!(c.should_abort(), "a client that stops reading is reset");
}

#[test]
fn input_is_bounded_while_an_answer_is_in_flight() {
    let ctr = HttpCounters::default();
    let mut c = HttpConn::new(0);
    c.feed(b"GET /bytes/100000000 HTTP/1.1\r\nHost: a\r\n\r\n", 0, &Src, &ctr);
    let one = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut fed = 0;
    while c.input_room() > 0 {
        let k = c.input_room().min(one.len());
        c.feed(&one[..k], 0, &Src, &ctr);
        fed += k;
        assert!(fed <= MAX_INBUF + one.len());
    }
    assert!(fed >= MAX_INBUF - one.len());
}

#[test]
fn overload_answers_503() {
    let ctr = HttpCounters::default();
    let mut c = HttpConn::refused(0, &ctr);
    let out = c.output(4096, 0, &Src, &ctr);
    assert_eq!(responses(&out, &c.log, false)[0].code, 503);
    assert!(c.should_close());
}

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HEAD /status.json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET /bytes/1000 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd",
    b"GET /stats/dlstat HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /?format=json HTTP/1.1\nHost: a\n\n",
    b"\r\n\r\nGET http://h/stats/flowstat HTTP/1.1\r\nHost: h\r\nX: y\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
];

fn mutate(rng: &mut Rng) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::new();
    for _ in 0..1 + rng.below(4) {
        v.extend_from_slice(SEEDS[rng.below(SEEDS.len())]);
    }
    if rng.below(8) == 0 {
        // Pure noise.
        return (0..rng.below(3000)).map(|_| rng.next() as u8).collect();
    }
    for _ in 0..rng.below(6) {
        if v.is_empty() {
            break;
        }
        let at = rng.below(v.len());
        match rng.below(7) {
            0 => v[at] = rng.next() as u8,
            1 => v[at] ^= 1 << rng.below(8),
            2 => {
                v.remove(at);
            }
            3 => {
                let b = [b'\r', b'\n', b' ', b':', b'\t', 0, 0x7f, 0xff, b'/', b'9'][rng.below(10)];
                v.insert(at, b);
            }
            4 => v.truncate(at),
            5 => {
                // Repeat a slice (long lines, many headers).
                let end = (at + 1 + rng.below(40)).min(v.len());
                let piece = v[at..end].to_vec();
                let times = rng.below(600);
                for _ in 0..times {
                    v.splice(at..at, piece.iter().copied());
                }
            }
            _ => {
                let s = SEEDS[rng.below(SEEDS.len())];
                v.splice(at..at, s.iter().copied());
            }
        }
    }
    v
}

#[test]
fn fuzz_every_response_is_well_formed() {
    let mut rng = Rng(0x4152_4241_4c45_5354);
    let ctr = HttpCounters::default();
    let mut answered = 0usize;
    for case in 0..6000 {
        let input = mutate(&mut rng);
        let mut c = HttpConn::new(0);
        let mut now = 0u64;
        let mut at = 0;
        let mut out = Vec::new();
        let cap = 256 * 1024;
        while at < input.len() && out.len() < cap && !c.should_close() && !c.should_abort() {
            let room = c.input_room();
            assert!(room > 0 || !c.drained(), "case {case}: stalled with nothing to send");
            let k = room.min(1 + rng.below(700)).min(input.len() - at);
            c.feed(&input[at..at + k], now, &Src, &ctr);
            at += k;
            out.extend(c.output(1 + rng.below(9000), now, &Src, &ctr));
            now += rng.below(3000) as u64;
            c.tick(now, &ctr);
        }
        if rng.below(2) == 0 {
            c.peer_finished(now, &Src, &ctr);
        }
        while out.len() < cap {
            let o = c.output(1 + rng.below(65536), now, &Src, &ctr);
            if o.is_empty() {
                break;
            }
            out.extend(o);
        }
        let cut = out.len() >= cap;
        let r = responses(&out, &c.log, cut);
        assert!(r.len() + usize::from(cut) >= c.log.len(), "case {case}: answers logged but not sent");
        answered += r.len();
        // Time passing ends every connection that is not sending.
        c.tick(now + REQUEST_TIMEOUT_MS, &ctr);
        if !cut {
            let _ = c.output(1 << 16, now + REQUEST_TIMEOUT_MS, &Src, &ctr);
            assert!(c.should_close() || c.should_abort() || !c.drained(), "case {case}: lingers");
        }
    }
    assert!(answered > 3000, "the fuzzer reached answers: {answered}");
}
