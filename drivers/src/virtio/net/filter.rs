//! The receive filter the driver keeps and replays to the device through
//! the control queue (`CTRL_RX`): promiscuous mode, extra unicast
//! addresses and multicast addresses in the device's MAC table
//! (`VIRTIO_NET_CTRL_MAC_TABLE_SET`: a unicast list then a multicast list,
//! each `le32 entries` + 6 bytes per address). The factory address is
//! always accepted by the device and never in the table. More multicast
//! addresses than the table holds switch the device to all-multicast.

use alloc::vec::Vec;

use arbalest_mac::MacAddr;

/// Extra unicast addresses the table takes (QEMU's table holds 64
/// addresses in all).
pub const UNICAST_TABLE: usize = 31;
/// Multicast addresses the table takes before falling back to allmulti.
pub const MULTICAST_TABLE: usize = 32;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RxFilter {
    pub promisc: bool,
    pub unicast: Vec<MacAddr>,
    pub multicast: Vec<MacAddr>,
}

impl RxFilter {
    /// Whether the device must accept all multicast.
    pub fn allmulti(&self) -> bool {
        self.multicast.len() > MULTICAST_TABLE
    }

    /// The MAC_TABLE_SET payload.
    pub fn mac_table(&self) -> Vec<u8> {
        let multi: &[MacAddr] = if self.allmulti() { &[] } else { &self.multicast };
        let mut out = Vec::with_capacity(8 + 6 * (self.unicast.len() + multi.len()));
        for list in [&self.unicast[..], multi] {
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for a in list {
                out.extend_from_slice(a);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_layout_and_overflow() {
        let mut f = RxFilter::default();
        f.unicast.push([2, 0, 0, 0, 0, 1]);
        f.multicast.push([1, 0, 0x5e, 0, 0, 1]);
        assert_eq!(f.mac_table(), [1, 0, 0, 0, 2, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0x5e, 0, 0, 1]);
        assert!(!f.allmulti());
        for i in 0..MULTICAST_TABLE as u8 {
            f.multicast.push([1, 0, 0x5e, 0, 1, i]);
        }
        assert!(f.allmulti());
        assert_eq!(f.mac_table().len(), 4 + 6 + 4);
    }
}
