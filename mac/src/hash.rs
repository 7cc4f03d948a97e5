//! Flow hashing for Tx ring selection and software fanout: a hash of the
//! IPv4/IPv6 addresses and TCP/UDP ports, so one connection always maps to
//! the same ring (illumos `mac_pkt_hash` with the L4 policy).

/// Hashes an Ethernet frame by its L3/L4 identity; non-IP frames hash by
/// their Ethernet addresses. Never 0 (0 means "not hashed yet").
pub fn frame_hash(f: &[u8]) -> u32 {
    if f.len() < 14 {
        return 1;
    }
    let mut et = u16::from_be_bytes([f[12], f[13]]);
    let mut off = 14;
    if et == 0x8100 && f.len() >= 18 {
        et = u16::from_be_bytes([f[16], f[17]]);
        off = 18;
    }
    let mut h: u32 = 0x811c_9dc5;
    let mut mix = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u32;
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    match et {
        0x0800 if f.len() >= off + 20 => {
            let ihl = ((f[off] & 0x0f) as usize) * 4;
            let proto = f[off + 9];
            mix(&f[off + 12..off + 20]);
            mix(&[proto]);
            let frag = u16::from_be_bytes([f[off + 6], f[off + 7]]) & 0x3fff;
            let l4 = off + ihl;
            if frag == 0 && (proto == 6 || proto == 17) && ihl >= 20 && f.len() >= l4 + 4 {
                mix(&f[l4..l4 + 4]);
            }
        }
        0x86dd if f.len() >= off + 40 => {
            let proto = f[off + 6];
            mix(&f[off + 8..off + 40]);
            mix(&[proto]);
            let l4 = off + 40;
            if (proto == 6 || proto == 17) && f.len() >= l4 + 4 {
                mix(&f[l4..l4 + 4]);
            }
        }
        _ => mix(&f[0..12]),
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    if h == 0 { 1 } else { h }
}

#[cfg(test)]
mod tests {
    use super::frame_hash;

    fn tcp4(src_port: u16) -> [u8; 54] {
        let mut f = [0u8; 54];
        f[12] = 0x08;
        f[14] = 0x45;
        f[23] = 6;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        f[34..36].copy_from_slice(&src_port.to_be_bytes());
        f[36..38].copy_from_slice(&7u16.to_be_bytes());
        f
    }

    #[test]
    fn same_flow_same_hash_and_ports_spread() {
        assert_eq!(frame_hash(&tcp4(1000)), frame_hash(&tcp4(1000)));
        let rings: std::collections::HashSet<u32> = (1000..1016).map(|p| frame_hash(&tcp4(p)) % 4).collect();
        assert!(rings.len() >= 3, "16 flows over 4 rings hit {rings:?}");
    }

    #[test]
    fn short_and_odd_frames_do_not_panic() {
        for n in 0..60 {
            let f = std::vec![0x45u8; n];
            let _ = frame_hash(&f);
        }
    }
}
