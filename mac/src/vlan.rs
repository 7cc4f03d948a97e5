//! IEEE 802.1Q tags: inserted on a VLAN client's transmit, matched and
//! stripped on receive.

use crate::mblk::Mblk;

const TPID: u16 = 0x8100;

/// The VLAN id of a tagged frame (0 if untagged or too short).
pub fn vid_of(f: &[u8]) -> u16 {
    if f.len() >= 18 && u16::from_be_bytes([f[12], f[13]]) == TPID { u16::from_be_bytes([f[14], f[15]]) & 0x0fff } else { 0 }
}

/// Inserts a tag with `vid` after the addresses. False (frame unchanged)
/// if there is no headroom or the frame is shorter than its addresses.
pub fn tag(m: &mut Mblk, vid: u16) -> bool {
    if m.len() < 12 || !m.prepend(4) {
        return false;
    }
    let d = m.data_mut();
    d.copy_within(4..16, 0);
    d[12..14].copy_from_slice(&TPID.to_be_bytes());
    d[14..16].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
    // A partial checksum's start and a large send's header length count
    // from the frame's first byte.
    crate::cksum::shift(m, 4);
    shift_gso(m, 4);
    true
}

/// Removes the tag of a tagged frame.
pub fn strip(m: &mut Mblk) {
    if m.len() >= 18 {
        let d = m.data_mut();
        d.copy_within(0..12, 4);
        m.advance(4);
        crate::cksum::shift(m, -4);
        shift_gso(m, -4);
    }
}

/// Moves a large send's header length by `delta` (a tag added or removed).
fn shift_gso(m: &mut Mblk, delta: i32) {
    if let Some(g) = m.meta.gso.as_mut() {
        g.hdr_len = (i32::from(g.hdr_len) + delta).clamp(0, i32::from(u16::MAX)) as u16;
    }
}
