//! The IP, ICMP, UDP and TCP MIB counters under their illumos names (MIB-II as
//! `netstat -s` prints them, `FIREENGINE.md` section 6), each an
//! `AtomicU64`, with `fields()` yielding (illumos name, value) in illumos'
//! order.
//!
//! As in illumos, `ipForwarding` (1 forwarding, 2 host), `ipDefaultTTL`
//! and `ipReasmTimeout` (seconds fragments are held) are values, not
//! counts; everything else counts events.

use core::sync::atomic::{AtomicU64, Ordering};

/// Adds one to a counter.
#[inline]
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Adds `n` to a counter.
#[inline]
pub fn bump_by(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

macro_rules! mib {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $s:literal $(= $init:expr)?,)* }) => {
        $(#[$m])*
        #[derive(Debug)]
        pub struct $name {
            $($(#[$fm])* pub $field: AtomicU64,)*
        }

        impl $name {
            /// The illumos names, in illumos' order.
            pub const NAMES: &'static [&'static str] = &[$($s),*];

            /// All counters at zero (values at their defaults).
            pub const fn new() -> Self {
                $name { $($field: AtomicU64::new(mib!(@init $($init)?)),)* }
            }

            /// (illumos name, current value) for every counter, in order.
            pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$(($s, self.$field.load(Ordering::Relaxed))),*].into_iter()
            }

            /// The value of the counter named `name` (illumos spelling).
            pub fn get(&self, name: &str) -> Option<u64> {
                self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }
    };
    (@init) => { 0 };
    (@init $e:expr) => { $e };
}

/// illumos' default TTL (`ip_def_ttl`).
pub const IP_DEFAULT_TTL: u64 = 255;
/// illumos' `ip_reass_timeout` default, in seconds.
pub const IP_REASS_TIMEOUT_S: u64 = 60;

mib! {
    /// IP group counters (`mib2_ip_t`).
    IpMib {
        /// 1 = forwarding, 2 = host (value).
        ip_forwarding: "ipForwarding" = 2,
        /// Default TTL (value).
        ip_default_ttl: "ipDefaultTTL" = IP_DEFAULT_TTL,
        /// Datagrams received, including those in error.
        ip_in_receives: "ipInReceives",
        /// Discarded for header errors.
        ip_in_hdr_errors: "ipInHdrErrors",
        /// Discarded for an invalid or foreign address.
        ip_in_addr_errors: "ipInAddrErrors",
        /// Discarded for a bad header checksum (only here, not also in
        /// ipInHdrErrors, as illumos counts it).
        ip_in_cksum_errs: "ipInCksumErrs",
        /// Forwarded.
        ip_forw_datagrams: "ipForwDatagrams",
        /// Not forwarded because forwarding is off (a host's count of
        /// datagrams for an address not its own).
        ip_forw_prohibits: "ipForwProhibits",
        /// Delivered to an unknown protocol.
        ip_in_unknown_protos: "ipInUnknownProtos",
        /// Discarded for lack of resources.
        ip_in_discards: "ipInDiscards",
        /// Delivered to a transport.
        ip_in_delivers: "ipInDelivers",
        /// Handed down by transports.
        ip_out_requests: "ipOutRequests",
        /// Dropped on output for lack of resources.
        ip_out_discards: "ipOutDiscards",
        /// Dropped on output for want of a route.
        ip_out_no_routes: "ipOutNoRoutes",
        /// Seconds fragments are held awaiting reassembly (value).
        ip_reasm_timeout: "ipReasmTimeout" = IP_REASS_TIMEOUT_S,
        /// Fragments received that needed reassembly.
        ip_reasm_reqds: "ipReasmReqds",
        /// Datagrams reassembled.
        ip_reasm_oks: "ipReasmOKs",
        /// Reassembly failures (any cause, timeouts included).
        ip_reasm_fails: "ipReasmFails",
        /// Fragments that were exact duplicates.
        ip_reasm_duplicates: "ipReasmDuplicates",
        /// Fragments that partly overlapped data already held.
        ip_reasm_part_dups: "ipReasmPartDups",
        /// Datagrams fragmented.
        ip_frag_oks: "ipFragOKs",
        /// Datagrams that needed fragmenting but could not be (DF).
        ip_frag_fails: "ipFragFails",
        /// Fragments created.
        ip_frag_creates: "ipFragCreates",
        /// (ours) Datagrams sent to the instance itself (127/8 or one of
        /// its addresses): through its loopback, never on a link.
        ip_loopback_datagrams: "ipLoopbackDatagrams",
    }
}

mib! {
    /// ICMP group counters (`mib2_icmp_t`).
    IcmpMib {
        /// Messages received.
        icmp_in_msgs: "icmpInMsgs",
        /// Messages received with errors (bad length, ...).
        icmp_in_errors: "icmpInErrors",
        /// Messages received with a bad checksum.
        icmp_in_cksum_errs: "icmpInCksumErrs",
        /// Messages of an unknown type received.
        icmp_in_unknowns: "icmpInUnknowns",
        /// Destination unreachables received.
        icmp_in_dest_unreachs: "icmpInDestUnreachs",
        /// Time exceededs received.
        icmp_in_time_excds: "icmpInTimeExcds",
        /// Redirects received.
        icmp_in_redirects: "icmpInRedirects",
        /// Redirects refused (not from the current first hop, a gateway
        /// off-link, a broadcast one).
        icmp_in_bad_redirects: "icmpInBadRedirects",
        /// Echo requests received.
        icmp_in_echos: "icmpInEchos",
        /// Echo replies received.
        icmp_in_echo_reps: "icmpInEchoReps",
        /// Messages sent.
        icmp_out_msgs: "icmpOutMsgs",
        /// Messages not sent (rate limit, resources).
        icmp_out_drops: "icmpOutDrops",
        /// Messages not sent for ICMP-internal errors.
        icmp_out_errors: "icmpOutErrors",
        /// Destination unreachables sent.
        icmp_out_dest_unreachs: "icmpOutDestUnreachs",
        /// Time exceededs sent.
        icmp_out_time_excds: "icmpOutTimeExcds",
        /// Echo requests sent.
        icmp_out_echos: "icmpOutEchos",
        /// Echo replies sent.
        icmp_out_echo_reps: "icmpOutEchoReps",
        /// Fragmentation-needed unreachables sent.
        icmp_out_frag_needed: "icmpOutFragNeeded",
        /// Fragmentation-needed unreachables received (also counted in
        /// icmpInDestUnreachs).
        icmp_in_frag_needed: "icmpInFragNeeded",
    }
}

mib! {
    /// UDP group counters (`mib2_udp_t`).
    UdpMib {
        /// Datagrams delivered.
        udp_in_datagrams: "udpInDatagrams",
        /// Datagrams not delivered for errors (a bad length; a checksum
        /// error counts in udpInCksumErrs instead).
        udp_in_errors: "udpInErrors",
        /// Datagrams sent.
        udp_out_datagrams: "udpOutDatagrams",
        /// Datagrams not sent for errors.
        udp_out_errors: "udpOutErrors",
        /// Datagrams dropped because the receive buffer was full.
        udp_in_overflows: "udpInOverflows",
        /// Datagrams for a port nobody listens on.
        udp_no_ports: "udpNoPorts",
        /// Datagrams dropped for a bad checksum (illumos
        /// `udpIfStatsInCksumErrs`; not also in udpInErrors).
        udp_in_cksum_errs: "udpInCksumErrs",
    }
}

mib! {
    /// The TCP MIB (illumos `mib2_tcp` names as `netstat -s` prints them;
    /// the last ones, marked "ours", are Arbalest's additions). Values, not
    /// counts: tcpRtoAlgorithm, tcpRtoMin, tcpRtoMax, tcpMaxConn, tcpCurrEstab.
    TcpMib {
        /// The RTO algorithm (4: Van Jacobson's, as illumos reports).
        rto_algorithm: "tcpRtoAlgorithm" = 4,
        /// The smallest RTO, ms (a value).
        rto_min: "tcpRtoMin" = 400,
        /// The largest RTO, ms (a value).
        rto_max: "tcpRtoMax" = 60000,
        /// The connection limit (a value; set by the instance).
        max_conn: "tcpMaxConn" = u64::MAX,
        /// Active opens (connect).
        active_opens: "tcpActiveOpens",
        /// Passive opens (SYN to a listener taken).
        passive_opens: "tcpPassiveOpens",
        /// Opens that failed (SYN_SENT/SYN_RCVD to CLOSED).
        attempt_fails: "tcpAttemptFails",
        /// ESTABLISHED or CLOSE_WAIT connections reset.
        estab_resets: "tcpEstabResets",
        /// Connections now ESTABLISHED or CLOSE_WAIT (a gauge).
        curr_estab: "tcpCurrEstab",
        /// Segments sent, retransmissions excluded.
        out_segs: "tcpOutSegs",
        /// Data segments sent (not retransmitted).
        out_data_segs: "tcpOutDataSegs",
        /// Data bytes sent (not retransmitted).
        out_data_bytes: "tcpOutDataBytes",
        /// Segments retransmitted.
        retrans_segs: "tcpRetransSegs",
        /// Bytes retransmitted.
        retrans_bytes: "tcpRetransBytes",
        /// Pure ACKs sent.
        out_ack: "tcpOutAck",
        /// ACKs sent by the delayed-ACK timer.
        out_ack_delayed: "tcpOutAckDelayed",
        /// Segments sent with URG.
        out_urg: "tcpOutUrg",
        /// Window updates sent.
        out_win_update: "tcpOutWinUpdate",
        /// Zero-window probes sent.
        out_win_probe: "tcpOutWinProbe",
        /// SYN, FIN and RST segments sent.
        out_control: "tcpOutControl",
        /// RSTs sent.
        out_rsts: "tcpOutRsts",
        /// Fast retransmissions.
        out_fast_retrans: "tcpOutFastRetrans",
        /// (ours) Large segments handed to the link for segmentation
        /// (LSO), and their data bytes (each also counts in
        /// tcpOutDataSegs as the MSS-sized segments it becomes).
        out_lso_segs: "tcpOutLsoSegs",
        out_lso_bytes: "tcpOutLsoBytes",
        /// (ours) Large received segments (coalesced by the device or the
        /// sender's LSO through a switch), taken as one.
        in_large_segs: "tcpInLargeSegs",
        /// Segments received (errors included).
        in_segs: "tcpInSegs",
        /// ACKs of new data received.
        in_ack_segs: "tcpInAckSegs",
        /// Bytes those ACKs acknowledged.
        in_ack_bytes: "tcpInAckBytes",
        /// Duplicate ACKs received.
        in_dup_ack: "tcpInDupAck",
        /// ACKs of bytes never sent.
        in_ack_unsent: "tcpInAckUnsent",
        /// Segments received in order.
        in_inorder_segs: "tcpInInorderSegs",
        /// Bytes received in order.
        in_inorder_bytes: "tcpInInorderBytes",
        /// Segments received out of order.
        in_unorder_segs: "tcpInUnorderSegs",
        /// Bytes received out of order.
        in_unorder_bytes: "tcpInUnorderBytes",
        /// Segments entirely duplicate.
        in_dup_segs: "tcpInDupSegs",
        /// Bytes of those.
        in_dup_bytes: "tcpInDupBytes",
        /// Segments partly duplicate.
        in_part_dup_segs: "tcpInPartDupSegs",
        /// Duplicate bytes of those.
        in_part_dup_bytes: "tcpInPartDupBytes",
        /// Segments (partly) past the window.
        in_past_win_segs: "tcpInPastWinSegs",
        /// Bytes past the window.
        in_past_win_bytes: "tcpInPastWinBytes",
        /// Zero-window probes received.
        in_win_probe: "tcpInWinProbe",
        /// Window updates received.
        in_win_update: "tcpInWinUpdate",
        /// Segments for no conn (answered with RST unless RST).
        in_closed: "tcpInClosed",
        /// ACKs that gave no RTT sample.
        rtt_no_update: "tcpRttNoUpdate",
        /// RTT samples taken.
        rtt_update: "tcpRttUpdate",
        /// Retransmission timer expiries.
        tim_retrans: "tcpTimRetrans",
        /// Connections dropped by retransmission time-outs.
        tim_retrans_drop: "tcpTimRetransDrop",
        /// Keepalive timer expiries.
        tim_keepalive: "tcpTimKeepalive",
        /// Keepalive probes sent.
        tim_keepalive_probe: "tcpTimKeepaliveProbe",
        /// Connections dropped by keepalive.
        tim_keepalive_drop: "tcpTimKeepaliveDrop",
        /// SYNs dropped for a full listen queue (q).
        listen_drop: "tcpListenDrop",
        /// SYNs dropped for a full q0.
        listen_drop_q0: "tcpListenDropQ0",
        /// Half-open conns dropped to make room in q0.
        half_open_drop: "tcpHalfOpenDrop",
        /// Connections refused because the instance holds `_conn_max`
        /// already (ours): SYNs and cookie ACKs answered with a RST, and
        /// local connects failed.
        conn_max_drop: "tcpConnMaxDrop",
        /// Segments retransmitted by SACK recovery.
        out_sack_retrans_segs: "tcpOutSackRetransSegs",
        /// Segments dropped for errors (bad checksum, header).
        in_errs: "tcpInErrs",
        /// (ours) RFC 5961 challenge ACKs sent.
        out_challenge_acks: "tcpOutChallengeAcks",
        /// (ours) Challenge ACKs not sent, over the rate limit.
        challenge_ack_limited: "tcpChallengeAckLimited",
        /// (ours) Segments dropped by PAWS (RFC 7323).
        in_paws_drops: "tcpInPawsDrops",
        /// (ours) SYN cookies sent (q0 full).
        syn_cookies_sent: "tcpSynCookiesSent",
        /// (ours) Valid SYN cookies received.
        syn_cookies_recv: "tcpSynCookiesRecv",
        /// (ours) ACKs with a cookie that failed.
        syn_cookies_failed: "tcpSynCookiesFailed",
        /// (ours) Cookie ACKs whose cookie had made a conn already (a
        /// late copy; no second conn made).
        syn_cookies_replayed: "tcpSynCookiesReplayed",
        /// (ours) Segments queued to a listener whose conn was made before
        /// the listener ran them (they went on to the conn).
        in_listener_reclassified: "tcpInListenerReclassified",
        /// (ours) TIME_WAIT conns reused by a newer SYN.
        time_wait_reused: "tcpTimeWaitReused",
        /// (ours) SYNs refused by the connection limit (answered RST).
        conn_limit_drops: "tcpConnLimitDrops",
        /// (ours) ICMP errors that reached a conn (unreachable, time
        /// exceeded, fragmentation needed).
        in_icmp_errors: "tcpInIcmpErrors",
        /// (ours) Of those, ignored: the quoted sequence number was not in
        /// [SND.UNA, SND.MAX) (RFC 5927 4.1), or no seq was quoted.
        in_icmp_out_of_window: "tcpInIcmpOutOfWindow",
        /// (ours) Path MTU decreases taken (RFC 1191): the MSS was cut.
        pmtu_decreases: "tcpPmtuDecreases",
        /// (ours) Fragmentation-needed errors that would not lower the MSS
        /// (no smaller than the current path MSS).
        pmtu_ignored: "tcpPmtuIgnored",
        /// (ours) Connects refused by an ICMP port/protocol unreachable in
        /// SYN_SENT.
        icmp_refused: "tcpIcmpConnRefused",
        /// (ours) Soft ICMP errors kept (reported only if the conn times
        /// out, RFC 1122 4.2.3.9).
        icmp_soft_errors: "tcpIcmpSoftErrors",
        /// (ours) Destinations pushed out of the full PMTU cache.
        pmtu_cache_evictions: "tcpPmtuCacheEvictions",
        /// (ours; illumos keeps these in `tcp_stat`) Loopback connection
        /// pairs fused once their handshake completed.
        fusion_fused: "tcpFusionFused",
        /// Fused pairs unfused (urgent data, a close or shutdown, a reset).
        fusion_unfused: "tcpFusionUnfused",
        /// Loopback pairs not fused because `do_tcp_fusion` is 0.
        fusion_disabled: "tcpFusionDisabled",
        /// Loopback pairs that did not qualify (illumos
        /// `tcp_fusion_unqualified`): the ends on different squeues, a
        /// simultaneous open, the peer gone or not established.
        fusion_unqualified: "tcpFusionUnqualified",
        /// Bytes moved fused (straight into the peer's receive queue).
        fusion_bytes: "tcpFusionBytes",
        /// Fused sends that filled the peer (the sender stops; illumos
        /// `tcp_fusion_flowctl`).
        fusion_flowctl: "tcpFusionFlowctl",
        /// Fused senders woken by their reader draining (illumos
        /// `tcp_fusion_backenabled`).
        fusion_backenabled: "tcpFusionBackenabled",
        /// Unfused for urgent data (illumos `tcp_fusion_urg`).
        fusion_urg: "tcpFusionUrg",
    }
}
