//! VLAN VNICs on a booted kernel (issue 5: "a VLAN id on a VNIC tags on
//! Tx, filters and strips on Rx"): `dladm create-vnic -l net0 -v 7 vnic7`
//! with an address in 10.0.7.0/24, talked to from the host with crafted
//! 802.1Q frames on the TAP (the host kernel here has no 8021q module, so
//! no VLAN interface): a tagged ARP request and a tagged ping to it are
//! answered, and the answers carry VLAN 7; the same ping untagged, or
//! tagged with VLAN 8, is not answered. On virtio-net (software
//! classification) and on igb in VMDq mode, where the VNIC has a pool
//! (hardware lane) of its own.
//!
//! Linux takes the tag of a received frame out of the packet data before
//! an AF_PACKET socket sees it, so the answers' tags are read from
//! `PACKET_AUXDATA`.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use arbalest_tests::frames::{self, Mac};
use arbalest_tests::net::{table_value, wait_addr_ok, NetVm};
use arbalest_tests::Config;
use bootimage::{Net, Nic};

const VID: u16 = 7;
const HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 7, 1);
const VNIC: Ipv4Addr = Ipv4Addr::new(10, 0, 7, 2);

const PACKET_AUXDATA: libc::c_int = 8;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;

/// An AF_PACKET socket that reports received frames' VLAN tags.
struct TagSocket {
    fd: OwnedFd,
    ifindex: i32,
}

/// A received frame: its bytes (tag removed by Linux) and its VLAN id.
#[derive(Debug)]
struct Rx {
    data: Vec<u8>,
    vid: Option<u16>,
}

impl TagSocket {
    /// Opens on `ifname` of the calling thread's namespace.
    fn open(ifname: &str) -> Result<TagSocket, String> {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2), checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(proto)) };
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = std::ffi::CString::new(ifname).unwrap();
        // SAFETY: NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(format!("no interface {ifname}"));
        }
        // SAFETY: zeroed sockaddr_ll is valid; filled as bind needs.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = ifindex;
        let one: libc::c_int = 1;
        // SAFETY: valid pointers and sizes.
        unsafe {
            if libc::bind(fd.as_raw_fd(), &sll as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_ll>() as u32) != 0 {
                return Err(format!("bind: {}", std::io::Error::last_os_error()));
            }
            if libc::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_AUXDATA, &one as *const _ as *const libc::c_void, 4) != 0 {
                return Err(format!("PACKET_AUXDATA: {}", std::io::Error::last_os_error()));
            }
            libc::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &one as *const _ as *const libc::c_void, 4);
        }
        Ok(TagSocket { fd, ifindex })
    }

    fn send(&self, frame: &[u8]) -> Result<(), String> {
        // SAFETY: zeroed sockaddr_ll is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: frame valid for its length; sll is a sockaddr_ll.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n as usize != frame.len() {
            return Err(format!("sendto: {n}: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Frames received within `dur`.
    fn capture(&self, dur: Duration) -> Vec<Rx> {
        let deadline = Instant::now() + dur;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        let mut cbuf = [0u64; 64];
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) } <= 0 {
                continue;
            }
            let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
            // SAFETY: zeroed msghdr is valid; pointers set below are live for the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
            // SAFETY: msg describes valid buffers.
            let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
            if n <= 0 {
                continue;
            }
            let mut vid = None;
            // SAFETY: walking the control messages recvmsg filled in.
            unsafe {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == PACKET_AUXDATA {
                        let aux = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::tpacket_auxdata);
                        if aux.tp_status & TP_STATUS_VLAN_VALID != 0 {
                            vid = Some(aux.tp_vlan_tci & 0x0fff);
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            let mut data = buf[..n as usize].to_vec();
            // A tag still in the data (no untagging on the way) counts too.
            if data.len() >= 18 && data[12..14] == [0x81, 0x00] {
                vid = Some(u16::from_be_bytes([data[14], data[15]]) & 0x0fff);
                data.drain(12..16);
            }
            out.push(Rx { data, vid });
        }
        out
    }
}

/// An 802.1Q-tagged frame.
fn tagged(dst: Mac, src: Mac, vid: u16, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vid.to_be_bytes().to_vec();
    p.extend_from_slice(&ethertype.to_be_bytes());
    p.extend_from_slice(payload);
    frames::eth(dst, src, frames::ETHERTYPE_VLAN, &p)
}

fn arp_request(sha: Mac, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&tpa.octets());
    a
}

fn echo(id: u16, seq: u16) -> Vec<u8> {
    frames::ipv4(HOST, VNIC, frames::PROTO_ICMP, seq, &frames::icmp_echo_request(id, seq, b"arbalest vlan"))
}

/// (ARP replies, echo replies with `id`) from `from` in `rx`, with their VLAN ids.
fn answers(rx: &[Rx], from: Mac, id: u16) -> (Vec<Option<u16>>, Vec<Option<u16>>) {
    let mut arp = Vec::new();
    let mut icmp = Vec::new();
    for r in rx {
        let d = &r.data;
        if d.len() < 42 || d[6..12] != from {
            continue;
        }
        match u16::from_be_bytes([d[12], d[13]]) {
            0x0806 if d[20..22] == [0, 2] && d[28..32] == VNIC.octets() => arp.push(r.vid),
            0x0800 if d[23] == 1 && d[34] == 0 && u16::from_be_bytes([d[38], d[39]]) == id => icmp.push(r.vid),
            _ => {}
        }
    }
    (arp, icmp)
}

fn vlan_vnic(vm: &mut NetVm, hw: bool) {
    for c in [format!("dladm create-vnic -l net0 -v {VID} vnic7"), format!("ipadm create-addr -T static -a {VNIC}/24 vnic7")] {
        let out = vm.run(&c);
        vm.check(out.trim().is_empty(), format!("`{c}` failed:\n{out}"));
    }
    // A FireEngine address answers ARP once duplicate-address detection
    // has found it free.
    if let Err(e) = wait_addr_ok(vm.vm(), "vnic7/v4", Duration::from_secs(30)) {
        vm.check(false, e);
    }
    let show = vm.run("dladm show-vnic -p -o macaddress,vid vnic7");
    let mut f = show.trim().rsplitn(2, ':');
    let vid = f.next().unwrap_or("");
    let mac = f.next().map(|m| m.replace("\\:", ":")).unwrap_or_default();
    vm.check(vid == VID.to_string(), format!("show-vnic VID: {show:?}"));
    let vmac = frames::parse_mac(&mac).unwrap_or_else(|| panic!("VNIC MAC from {show:?}"));
    let lanes = vm.run("dlstat show-link -r -p -o id vnic7");
    let want = if hw { "hw" } else { "sw" };
    vm.check(lanes.lines().any(|l| l.trim() == want), format!("vnic7 is not a {want} lane:\n{lanes}"));

    let host_mac = vm.ns().tap_mac();
    let tap = vm.ns().tap().to_string();
    let (rx_tagged, rx_untagged, rx_other) = vm.in_ns(move || -> Result<_, String> {
        let s = TagSocket::open(&tap)?;
        // Tagged: ARP first (so the VNIC learns the host), then pings.
        s.send(&tagged([0xff; 6], host_mac, VID, 0x0806, &arp_request(host_mac, HOST, VNIC)))?;
        std::thread::sleep(Duration::from_millis(200));
        for seq in 0..3 {
            s.send(&tagged(vmac, host_mac, VID, 0x0800, &echo(0x7a07, seq)))?;
        }
        let a = s.capture(Duration::from_secs(2));
        // Untagged, and on another VLAN: nobody is there.
        for seq in 0..3 {
            s.send(&frames::eth(vmac, host_mac, 0x0800, &echo(0x7a00, seq)))?;
        }
        let b = s.capture(Duration::from_secs(1));
        for seq in 0..3 {
            s.send(&tagged(vmac, host_mac, VID + 1, 0x0800, &echo(0x7a08, seq)))?;
        }
        let c = s.capture(Duration::from_secs(1));
        Ok((a, b, c))
    })
    .unwrap_or_else(|e| panic!("{e}"));

    let (arp, icmp) = answers(&rx_tagged, vmac, 0x7a07);
    let diag = || format!("captured {} frames; dlstat:\n", rx_tagged.len());
    let stats = vm.run("dlstat show-link -r vnic7") + &vm.run("dlstat show-link -t vnic7") + &vm.run("netstat -s");
    vm.check(!arp.is_empty(), format!("no ARP reply from vnic7 to a tagged request\n{}{stats}", diag()));
    vm.check(arp.iter().all(|v| *v == Some(VID)), format!("vnic7's ARP replies carry VLAN ids {arp:?}, not {VID}"));
    vm.check(icmp.len() >= 2, format!("{} echo replies to 3 tagged pings\n{}{stats}", icmp.len(), diag()));
    vm.check(icmp.iter().all(|v| *v == Some(VID)), format!("vnic7's echo replies carry VLAN ids {icmp:?}, not {VID}"));
    let (_, icmp) = answers(&rx_untagged, vmac, 0x7a00);
    vm.check(icmp.is_empty(), format!("untagged pings to vnic7's MAC were answered: {icmp:?}"));
    let (_, icmp) = answers(&rx_other, vmac, 0x7a08);
    vm.check(icmp.is_empty(), format!("pings on VLAN {} were answered by the VLAN {VID} VNIC: {icmp:?}", VID + 1));
}

#[test]
fn vlan_vnic_on_virtio_tags_and_filters() {
    let mut vm = NetVm::boot(2, 2);
    vm.wait_reachable(Duration::from_secs(60));
    vlan_vnic(&mut vm, false);
}

#[test]
fn vlan_vnic_on_igb_vmdq_tags_and_filters() {
    let mut cfg = Config::with_smp(4);
    cfg.net = Net::none().with_nic(Nic::Igb);
    cfg.push_append("igb.vmdq=4");
    let mut vm = NetVm::boot_with(cfg, 4);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let out = vm.run("dladm show-phys");
        if table_value(&out, "net0", "STATE").as_deref() == Some("up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    vm.wait_reachable(Duration::from_secs(60));
    vlan_vnic(&mut vm, true);
}
