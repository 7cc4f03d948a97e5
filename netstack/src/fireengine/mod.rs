//! FireEngine: Arbalest's own IP stack, after Solaris 10's (see
//! `../shared/FIREENGINE.md` and the seed "Solaris Networking — The Magic
//! Revealed"). Each concept lives in the room of its name; arrows point
//! down this list only (a room uses the rooms below it, never above):
//!
//! * [`instance`]: a FireEngine stack instance on a link ([`crate::IpStack`]):
//!   the receive walk, output, the UDP echo and discard services.
//! * [`socket`]: the socket calls every service and tool uses (sockfs'
//!   role): socket, bind, listen, accept, connect, send, recv, shutdown,
//!   close, poll and upcalls, over the protocol's handle.
//! * [`udp`]: UDP conns (`udp_t`) in the classifier's UDP table: bind,
//!   connect, classify, deliver, and the socket handle services use
//!   (through [`udp::UdpHost`], which the instance implements).
//! * [`tcp`]: FireEngine TCP (part 2), room by room: sequence numbers so
//!   far (not yet wired into the instance).
//! * [`sock`]: the socket interface's bounded receive queues and upcalls.
//! * [`tunables`]: the protocol properties (`ipadm show-prop`/`set-prop`)
//!   and `ndd` variables of `/dev/ip`, `/dev/icmp`, `/dev/udp`,
//!   `/dev/tcp`, shared by every instance, the squeue tunables among them.
//! * [`classifier`]: the IP classifier, fanout tables of [`conn`]s in
//!   illumos' lookup order (connected 5-tuple, bound/listening, UDP,
//!   protocol).
//! * [`conn`]: `conn_t`, one per endpoint, reference counted, bound to one
//!   [`squeue`].
//! * [`squeue`]: the per-CPU serialization queue (vertical perimeter):
//!   enter inline when free (`SQ_PROCESS`), queue when busy (`SQ_FILL`),
//!   bounded drains, a worker per squeue.
//! * [`icmp`]: ICMP processing: RFC 1122 error rules, the error rate
//!   limiter, building errors and echo replies, classifying input.
//! * [`route`]: the routing table (longest-prefix match, a generation
//!   number for the route a conn caches).
//! * [`arp`]: the neighbour cache (RFC 826).
//! * [`tcp_conn`]: TCP receive reassembly, ISNs, SYN cookies, listen queues.
//! * [`ip`]: IPv4 input validation with its MIB counters, bounded
//!   reassembly, output fragmentation.
//! * [`wire`]: header types that parse and emit (IPv4, ARP, ICMP, UDP,
//!   TCP) and the Internet checksum.
//!
//! smoltcp (`crate::smol`) stays a separate, self-contained alternative.

pub mod arp;
pub mod bytes;
pub mod classifier;
pub mod conn;
pub mod icmp;
pub mod ip;
pub mod instance;
pub mod route;
pub mod sock;
pub mod socket;
pub mod squeue;
pub mod tcp;
pub mod tcp_conn;
pub mod tcp_pcb;
pub mod tunables;
pub mod udp;
pub mod wire;
