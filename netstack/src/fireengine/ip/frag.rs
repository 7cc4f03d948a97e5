//! Output fragmentation (RFC 791 section 3.2): cut an IPv4 datagram that
//! is larger than the link MTU into fragments whose payloads (all but the
//! last) are multiples of 8 bytes, the first carrying all options and the
//! rest only those with the copied flag; or refuse when DF is set, so the
//! caller can send ICMP "fragmentation needed".

use alloc::vec;
use alloc::vec::Vec;

use super::mib::{bump, bump_by, IpMib};
use crate::fireengine::wire::ipv4::{Ipv4Error, Ipv4Header};

/// The smallest MTU every IPv4 link must carry (RFC 791).
pub const IPV4_MIN_MTU: usize = 68;

/// Why a datagram could not be fragmented (counted in `ipFragFails`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragError {
    /// DF is set and the datagram is larger than the MTU: send ICMP
    /// destination unreachable code 4 with this MTU.
    DontFragment {
        /// The MTU to report as next-hop MTU.
        mtu: u16,
    },
    /// The MTU cannot carry a header plus 8 bytes.
    MtuTooSmall,
    /// The bytes are not a well-formed IPv4 datagram.
    BadDatagram(Ipv4Error),
}

/// Cuts `datagram` (header and payload, checksum not checked) to fit
/// `mtu`. A datagram that already fits is returned as the only element,
/// unchanged and uncounted. Otherwise each fragment is a complete IPv4
/// datagram with its own correct checksum; `ipFragOKs` counts the
/// datagram and `ipFragCreates` the fragments. A datagram that is itself
/// a fragment is cut further, keeping its offset and its MF on the last
/// piece.
pub fn fragment(datagram: &[u8], mtu: usize, mib: &IpMib) -> Result<Vec<Vec<u8>>, FragError> {
    let (h, payload) = match Ipv4Header::parse(datagram, false) {
        Ok(v) => v,
        Err(e) => {
            bump(&mib.ip_frag_fails);
            return Err(FragError::BadDatagram(e));
        }
    };
    let whole = h.header_len() + payload.len();
    if whole <= mtu {
        return Ok(vec![datagram[..whole].to_vec()]);
    }
    if h.dont_frag {
        bump(&mib.ip_frag_fails);
        return Err(FragError::DontFragment { mtu: mtu.min(usize::from(u16::MAX)) as u16 });
    }
    let mut later = h;
    later.options = h.options.copied_only();
    // Every fragment must carry at least 8 payload bytes.
    let room = |hdr: &Ipv4Header| mtu.saturating_sub(hdr.header_len()) & !7;
    if room(&h) < 8 || room(&later) < 8 {
        bump(&mib.ip_frag_fails);
        return Err(FragError::MtuTooSmall);
    }
    let mut out = Vec::new();
    let mut done = 0usize;
    while done < payload.len() {
        let mut fh = if done == 0 { h } else { later };
        let n = room(&fh).min(payload.len() - done);
        let last = done + n == payload.len();
        fh.more_frags = if last { h.more_frags } else { true };
        fh.frag_offset = h.frag_offset.saturating_add(done as u16);
        fh.payload_len = n as u16;
        let hlen = fh.header_len();
        let mut f = vec![0u8; hlen + n];
        if let Err(e) = fh.emit(&mut f) {
            bump(&mib.ip_frag_fails);
            return Err(FragError::BadDatagram(e));
        }
        f[hlen..].copy_from_slice(&payload[done..done + n]);
        out.push(f);
        done += n;
    }
    bump(&mib.ip_frag_oks);
    bump_by(&mib.ip_frag_creates, out.len() as u64);
    Ok(out)
}
