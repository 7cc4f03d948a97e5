//! SYN cookies (RFC 4987 §3.6, after Bernstein's scheme and Linux's
//! use of it): when a listener's q0 is full ([`super::listen_q`] says
//! [`super::listen_q::SynDecision::SynCookie`]), the SYN-ACK goes out with
//! an ISN that carries what the connection needs and no state is kept; the
//! client's ACK brings it back in `SEG.ACK - 1`. illumos has none; ours,
//! keyed with SipHash-2-4.
//!
//! Our ISN (the cookie), 32 bits:
//!
//! * bits 31..24: `(slot mod 32) << 3 | mss_index`, XORed with 8 key-
//!   dependent bits of the 4-tuple and the client's ISN (so the SYN-ACK does
//!   not show the slot and MSS bits; whoever knows the tuple and key
//!   removes them again),
//! * bits 23..0: a 24-bit MAC, SipHash-2-4 under the secret over the
//!   4-tuple, the client's ISN, the whole slot number, the MSS index and
//!   the option code below.
//!
//! A slot is [`SynCookieConfig::slot_ms`] of the caller's clock (64 s by
//! default). An ACK is taken while its slot is the current one or the one
//! before (so a cookie lives between one and two slots), and only if the
//! MAC matches; the whole slot number in the MAC keeps an old cookie from
//! coming back when the 5 slot bits wrap. A random ACK passes with
//! probability 2/32 × 2^-24 = 2^-28 (about 3.7e-9).
//!
//! The MSS is the largest of [`SYNCOOKIE_MSS`] not above the client's
//! (the smallest entry if it asked for less): never more than it can take.
//!
//! Options. Window scale, SACK-permitted and ECN cannot be carried in 32
//! bits with the rest, so, as Linux does, they go in the low 6 bits of our
//! timestamp value when the client sent a timestamp option (RFC 7323): bits
//! 3..0 the window scale the client asked for (0..14; 15 for none), bit 4
//! SACK permitted, bit 5 ECN. The TSval is the caller's timestamp clock
//! with those 6 bits replaced, moved back 64 when that would put it ahead
//! of the clock, so TSval never runs ahead and stays monotonic. The client
//! echoes it as TSecr in its ACK; the 6 bits are covered by the MAC, so
//! they cannot be changed either. Without timestamps there is nowhere to
//! keep them: the connection goes on without window scaling, SACK and ECN
//! (the MAC then covers an option code that says "none", and an ACK that
//! suddenly brings a TSecr does not validate).
//!
//! Counters (named as Linux's `TcpExt` ones; illumos has none):
//! `SyncookiesSent` per cookie minted, `SyncookiesRecv` per ACK that
//! validated, `SyncookiesFailed` per ACK that did not.

use core::fmt;

use super::seq;
use super::siphash::SipHasher24;
use super::tuple::FourTuple;

/// The MSS values a cookie can carry (3 bits): the smallest any stack
/// accepts, the RFC 9293 default, IPv6 minimum, tunnels, PPPoE,
/// Ethernet, jumbo frames.
pub const SYNCOOKIE_MSS: [u16; 8] = [48, 536, 1220, 1400, 1440, 1452, 1460, 8960];

/// The MSS to assume when the SYN has no MSS option (RFC 9293 §3.7.1).
pub const TCP_DEFAULT_MSS: u16 = 536;

/// Default slot length: 64 s.
pub const SYNCOOKIE_SLOT_MS: u64 = 64_000;

/// The low bits of TSval that carry the options.
const TS_OPT_BITS: u32 = 6;
const TS_OPT_MASK: u32 = (1 << TS_OPT_BITS) - 1;
/// The option code when the client sent no timestamps.
const NO_TS: u8 = 0xff;
/// Window scale field value for "not asked for".
const NO_WSCALE: u32 = 15;
/// RFC 7323's largest window scale.
const MAX_WSCALE: u8 = 14;

/// The SYN options a cookie can keep (only with timestamps).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SynCookieOpts {
    /// The client's window scale option (shift), if it sent one; more than
    /// 14 is taken as 14 (RFC 7323 §2.3).
    pub wscale: Option<u8>,
    /// The client sent SACK-permitted.
    pub sack: bool,
    /// The client asked for ECN (ECE and CWR on the SYN).
    pub ecn: bool,
}

impl SynCookieOpts {
    fn code(self) -> u32 {
        let ws = self.wscale.map_or(NO_WSCALE, |w| u32::from(w.min(MAX_WSCALE)));
        ws | (u32::from(self.sack) << 4) | (u32::from(self.ecn) << 5)
    }

    fn from_code(code: u32) -> Self {
        let ws = code & 0xf;
        SynCookieOpts {
            wscale: if ws > u32::from(MAX_WSCALE) { None } else { Some(ws as u8) },
            sack: code & (1 << 4) != 0,
            ecn: code & (1 << 5) != 0,
        }
    }
}

/// What goes into our SYN-ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynCookie {
    /// Our ISN.
    pub isn: u32,
    /// The MSS the cookie carries (the one to announce and to use).
    pub mss: u16,
    /// Our TSval, when the client sent timestamps.
    pub tsval: Option<u32>,
}

/// A connection recovered from a valid cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieConn {
    /// Our ISN (the cookie): SND.UNA was ISS + 1 = SEG.ACK.
    pub iss: u32,
    /// The client's ISN: RCV.NXT is IRS + 1 = SEG.SEQ.
    pub irs: u32,
    /// The MSS to send with.
    pub mss: u16,
    /// The options, when timestamps were in use (otherwise none of window
    /// scale, SACK or ECN).
    pub opts: Option<SynCookieOpts>,
}

/// Why an ACK's cookie was refused (each one `SyncookiesFailed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieError {
    /// Its slot is neither the current one nor the one before.
    Stale,
    /// The MAC does not match: forged, altered, or another connection's.
    Forged,
}

/// Knobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynCookieConfig {
    /// Length of one time slot, in the caller's milliseconds (at least 1).
    pub slot_ms: u64,
}

impl Default for SynCookieConfig {
    fn default() -> Self {
        SynCookieConfig { slot_ms: SYNCOOKIE_SLOT_MS }
    }
}

/// Counters, under Linux's `TcpExt` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SynCookieStats {
    /// `SyncookiesSent`: cookies minted.
    pub sent: u64,
    /// `SyncookiesRecv`: ACKs whose cookie validated.
    pub recv: u64,
    /// `SyncookiesFailed`: ACKs whose cookie did not.
    pub failed: u64,
}

impl SynCookieStats {
    /// (name, value) for each counter.
    pub fn fields(&self) -> [(&'static str, u64); 3] {
        [("SyncookiesSent", self.sent), ("SyncookiesRecv", self.recv), ("SyncookiesFailed", self.failed)]
    }
}

/// Mints and checks SYN cookies under one secret.
#[derive(Clone)]
pub struct SynCookies {
    key: [u8; 16],
    cfg: SynCookieConfig,
    stats: SynCookieStats,
}

impl fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SynCookies").field("cfg", &self.cfg).field("stats", &self.stats).finish_non_exhaustive()
    }
}

/// The index of the MSS a cookie carries for a client that announced `mss`.
pub fn mss_index(mss: u16) -> usize {
    SYNCOOKIE_MSS.iter().rposition(|&m| m <= mss).unwrap_or(0)
}

impl SynCookies {
    /// Cookies keyed with `secret` (draw it at random, once; keep it apart
    /// from the ISN key).
    pub fn new(secret: [u8; 16], cfg: SynCookieConfig) -> Self {
        let cfg = SynCookieConfig { slot_ms: cfg.slot_ms.max(1) };
        SynCookies { key: secret, cfg, stats: SynCookieStats::default() }
    }

    /// The counters.
    pub fn stats(&self) -> &SynCookieStats {
        &self.stats
    }

    /// The settings.
    pub fn config(&self) -> &SynCookieConfig {
        &self.cfg
    }

    fn slot(&self, now_ms: u64) -> u64 {
        now_ms / self.cfg.slot_ms
    }

    /// The 8 bits that hide the slot and MSS index.
    fn mask(&self, tuple: &FourTuple, irs: u32) -> u8 {
        let (t, n) = tuple.encode();
        let mut h = SipHasher24::new(&self.key);
        h.write(b"M");
        h.write(t.get(..n).unwrap_or(&[]));
        h.write(&irs.to_be_bytes());
        (h.finish() >> 56) as u8
    }

    /// The 24-bit MAC.
    fn mac(&self, tuple: &FourTuple, irs: u32, slot: u64, idx: u8, opt_code: u8) -> u32 {
        let (t, n) = tuple.encode();
        let mut h = SipHasher24::new(&self.key);
        h.write(b"C");
        h.write(t.get(..n).unwrap_or(&[]));
        h.write(&irs.to_be_bytes());
        h.write(&slot.to_be_bytes());
        h.write(&[idx, opt_code]);
        (h.finish() as u32) & 0x00ff_ffff
    }

    /// The cookie for a SYN on `tuple` with sequence number `irs`, MSS
    /// option `mss` (or [`TCP_DEFAULT_MSS`] when it had none), at
    /// `now_ms`. With `timestamps` (the caller's TSval clock now, and the
    /// SYN's options) the options go into the returned TSval; without,
    /// they are lost. One `SyncookiesSent`.
    pub fn mint(
        &mut self,
        tuple: &FourTuple,
        irs: u32,
        mss: u16,
        timestamps: Option<(u32, SynCookieOpts)>,
        now_ms: u64,
    ) -> SynCookie {
        self.stats.sent += 1;
        self.make(tuple, irs, mss, timestamps, now_ms)
    }

    /// [`SynCookies::mint`] without the count, for a caller that keeps its
    /// own counters and shares one `SynCookies` between threads.
    pub fn make(
        &self,
        tuple: &FourTuple,
        irs: u32,
        mss: u16,
        timestamps: Option<(u32, SynCookieOpts)>,
        now_ms: u64,
    ) -> SynCookie {
        let slot = self.slot(now_ms);
        let idx = mss_index(mss);
        let (opt_code, tsval) = match timestamps {
            Some((ts_now, opts)) => {
                let code = opts.code();
                let mut ts = (ts_now & !TS_OPT_MASK) | code;
                if code > ts_now & TS_OPT_MASK {
                    ts = ts.wrapping_sub(TS_OPT_MASK + 1);
                }
                (code as u8, Some(ts))
            }
            None => (NO_TS, None),
        };
        let top = ((((slot & 31) as u8) << 3) | idx as u8) ^ self.mask(tuple, irs);
        let isn = (u32::from(top) << 24) | self.mac(tuple, irs, slot, idx as u8, opt_code);
        SynCookie { isn, mss: SYNCOOKIE_MSS.get(idx).copied().unwrap_or(TCP_DEFAULT_MSS), tsval }
    }

    /// Checks the ACK that answers a cookie: its `SEG.SEQ` (`seg_seq`),
    /// `SEG.ACK` (`seg_ack`) and, if it carries a timestamp option, its
    /// TSecr, at `now_ms`. Counted `SyncookiesRecv` or `SyncookiesFailed`.
    pub fn check(
        &mut self,
        tuple: &FourTuple,
        seg_seq: u32,
        seg_ack: u32,
        tsecr: Option<u32>,
        now_ms: u64,
    ) -> Result<CookieConn, CookieError> {
        let r = self.validate(tuple, seg_seq, seg_ack, tsecr, now_ms);
        match r {
            Ok(_) => self.stats.recv += 1,
            Err(_) => self.stats.failed += 1,
        }
        r
    }

    /// [`SynCookies::check`] without the count (see [`SynCookies::make`]).
    pub fn validate(
        &self,
        tuple: &FourTuple,
        seg_seq: u32,
        seg_ack: u32,
        tsecr: Option<u32>,
        now_ms: u64,
    ) -> Result<CookieConn, CookieError> {
        let iss = seq::advance(seg_ack, -1);
        let irs = seq::advance(seg_seq, -1);
        let top = ((iss >> 24) as u8) ^ self.mask(tuple, irs);
        let (t5, idx) = (u64::from(top >> 3), top & 7);
        let now = self.slot(now_ms);
        let slot = [Some(now), now.checked_sub(1)]
            .into_iter()
            .flatten()
            .find(|s| s & 31 == t5)
            .ok_or(CookieError::Stale)?;
        let opt_code = tsecr.map_or(NO_TS, |e| (e & TS_OPT_MASK) as u8);
        if iss & 0x00ff_ffff != self.mac(tuple, irs, slot, idx, opt_code) {
            return Err(CookieError::Forged);
        }
        Ok(CookieConn {
            iss,
            irs,
            mss: SYNCOOKIE_MSS.get(usize::from(idx)).copied().unwrap_or(TCP_DEFAULT_MSS),
            opts: tsecr.map(|e| SynCookieOpts::from_code(e & TS_OPT_MASK)),
        })
    }
}
