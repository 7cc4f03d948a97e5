//! The admin commands against the test network: output formats, error
//! wording, exit statuses, and that bad input changes nothing.

mod common;

use arbalest_netstack::IpStack;
use common::*;

/// net0 and net1 exist as links; nothing is plumbed.
fn links() -> Net {
    let mut n = Net::new();
    n.add_link("net0", 1);
    n.add_link("net1", 2);
    n
}

fn ok(n: &mut Net, line: &str) -> String {
    let (status, out) = n.cmd(line);
    assert_eq!(status, 0, "{line}: {out}");
    out
}

fn fails(n: &mut Net, line: &str, status: i32, first_line: &str) -> String {
    let (s, out) = n.cmd(line);
    assert_eq!(s, status, "{line}: {out}");
    assert_eq!(out.lines().next().unwrap_or(""), first_line, "{line}");
    out
}

#[test]
fn ipadm_addresses() {
    let mut n = links();
    assert_eq!(ok(&mut n, "ipadm create-addr -T static -a 10.0.0.2/24 net0"), "");
    assert_eq!(ok(&mut n, "ipadm create-addr -t -T static -a local=10.0.1.2/24 net0/second"), "");
    assert_eq!(ok(&mut n, "ipadm create-addr -T static -a 10.0.2.2/24 net0"), "");
    assert_eq!(ok(&mut n, "ipadm create-addr -T static -a 192.168.7.1 net1/v4"), "");
    assert_eq!(
        ok(&mut n, "ipadm show-addr"),
        "ADDROBJ           TYPE     STATE        ADDR\n\
         net0/v4           static   ok           10.0.0.2/24\n\
         net0/second       static   ok           10.0.1.2/24\n\
         net0/_a           static   ok           10.0.2.2/24\n\
         net1/v4           static   ok           192.168.7.1/24\n"
    );
    assert_eq!(ok(&mut n, "ipadm show-addr -p -o addrobj,addr net0/second"), "net0/second:10.0.1.2/24\n");
    assert_eq!(ok(&mut n, "ipadm show-addr -o addr net1"), "ADDR\n192.168.7.1/24\n");
    assert_eq!(ok(&mut n, "ipadm show-addr -p -o addr net1/"), "192.168.7.1/24\n");
    assert_eq!(
        ok(&mut n, "ipadm show-addr -o all net1/v4"),
        "ADDROBJ           TYPE     STATE        CURRENT PERSISTENT ADDR\n\
         net1/v4           static   ok           U--t-   ---        192.168.7.1/24\n"
    );

    fails(&mut n, "ipadm create-addr -T static -a 10.0.0.2/24 net1/x", 1, "ipadm: cannot create address: Address already in use");
    fails(&mut n, "ipadm create-addr -T static -a 10.0.0.9/24 net0/v4", 1, "ipadm: cannot create address: Address object already exists");
    fails(&mut n, "ipadm create-addr -T static -a 10.0.0.300/24 net0/y", 1, "ipadm: cannot set local address: Invalid IP address provided");
    fails(&mut n, "ipadm create-addr -T static -a 10.0.0.0/24 net0/y", 1, "ipadm: cannot set local address: Invalid IP address provided");
    fails(&mut n, "ipadm create-addr -T static -a 224.0.0.9/24 net0/y", 1, "ipadm: cannot set local address: Invalid IP address provided");
    fails(&mut n, "ipadm create-addr -T static -a 10.0.0.7/24 net9", 1, "ipadm: cannot create address: No such interface");
    fails(&mut n, "ipadm create-addr -T dhcp net0/d", 1, "ipadm: cannot create address: Operation not supported");
    fails(&mut n, "ipadm create-addr -T bogus -a 10.0.0.7/24 net0/z", 1, "ipadm: invalid address type bogus");
    assert_eq!(ok(&mut n, "ipadm create-addr -T static -a 10.9.0.1/24 net0/z"), "");
    fails(&mut n, "ipadm create-addr -T static -a 10.9.1.1/24 net0/w", 1, "ipadm: cannot create address: Too many addresses on the interface");
    let out = fails(&mut n, "ipadm create-addr -x -T static -a 10.0.0.7/24 net0", 2, "ipadm: unrecognized option '-x'");
    assert!(out.lines().nth(1).unwrap().starts_with("usage: create-addr"), "{out}");
    fails(&mut n, "ipadm create-addr -T static -a 10.0.0.7/24", 2, "ipadm: invalid arguments");
    fails(&mut n, "ipadm create-addr -T static net0/q", 2, "ipadm: invalid arguments for type static");
    fails(&mut n, "ipadm create-addr -T static -a 10.0.0.7/24 net0/9bad", 2, "ipadm: invalid address object name: net0/9bad");
    fails(&mut n, "ipadm create-addr -T static -a", 2, "ipadm: option '-a' requires a value");
    fails(&mut n, "ipadm show-addr -p", 1, "ipadm: -p requires -o");
    fails(&mut n, "ipadm show-addr -o nosuch", 1, "ipadm: invalid field(s) specified: nosuch");
    fails(&mut n, "ipadm show-addr net0/nosuch", 1, "ipadm: address object not found");
    fails(&mut n, "ipadm show-addr net7/", 1, "ipadm: cannot get address information: No such interface");
    // Nothing changed by the failures.
    let n0 = n.inst(0);
    assert_eq!(n0.addrs().len(), 4);
    assert_eq!(n.inst(1).addrs().len(), 1);

    assert_eq!(ok(&mut n, "ipadm delete-addr net0/second"), "");
    assert_eq!(ok(&mut n, "ipadm delete-addr net0"), "");
    fails(&mut n, "ipadm delete-addr net0/second", 1, "ipadm: cannot delete address: Object not found");
    fails(&mut n, "ipadm delete-addr net8/v4", 1, "ipadm: cannot delete address: Object not found");
    fails(&mut n, "ipadm delete-addr", 2, "usage: delete-addr\t<addrobj>");
    assert_eq!(ok(&mut n, "ipadm show-addr -p -o addrobj"), "net0/_a\nnet0/z\nnet1/v4\n");
}

#[test]
fn ipadm_interfaces_and_usage() {
    let mut n = links();
    assert_eq!(ok(&mut n, "ipadm show-if"), "", "no interfaces, no header");
    assert_eq!(ok(&mut n, "ipadm show-addr"), "");
    assert_eq!(ok(&mut n, "ipadm create-ip net0"), "");
    assert_eq!(ok(&mut n, "ipadm create-if -t net1"), "");
    n.ports[1].link.up.store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        ok(&mut n, "ipadm show-if"),
        "IFNAME     CLASS    STATE    ACTIVE STACK      OVER\n\
         net0       ip       ok       yes    smoltcp    --\n\
         net1       ip       failed   yes    smoltcp    --\n"
    );
    assert_eq!(ok(&mut n, "ipadm show-if -p -o ifname,state net1"), "net1:failed\n");
    assert_eq!(ok(&mut n, "ipadm show-if -p -o ifname,stack"), "net0:smoltcp\nnet1:smoltcp\n");
    let before = ok(&mut n, "ipadm show-if");
    fails(&mut n, "ipadm create-if -s lwip net2", 2, "ipadm: invalid stack 'lwip': expected fireengine or smoltcp");
    fails(&mut n, "ipadm create-if -s net2", 2, "usage: create-ip\t[-t] [-s fireengine|smoltcp] <IP-interface>");
    fails(&mut n, "ipadm create-if net2 -s", 2, "ipadm: option '-s' requires a value");
    assert_eq!(ok(&mut n, "ipadm show-if"), before, "refused lines change nothing");
    fails(&mut n, "ipadm create-ip net0", 1, "ipadm: cannot create interface net0: Interface already exists");
    fails(&mut n, "ipadm create-ip net4", 1, "ipadm: cannot create interface net4: No such interface");
    fails(&mut n, "ipadm create-ip bad!name", 1, "ipadm: cannot create interface bad!name: Invalid interface name");
    fails(&mut n, "ipadm show-if net4", 1, "ipadm: cannot get information for interface(s): No such interface");
    fails(&mut n, "ipadm show-if -o all -p", 1, "ipadm: output field 'all' invalid in parsable mode");
    assert_eq!(ok(&mut n, "ipadm delete-ip net1"), "");
    fails(&mut n, "ipadm delete-ip net1", 1, "ipadm: cannot delete interface net1: No such interface");
    assert_eq!(ok(&mut n, "ipadm show-if -p -o ifname"), "net0\n");

    let out = fails(&mut n, "ipadm", 2, "usage:  ipadm <subcommand> <args> ...");
    assert!(out.contains("\tcreate-addr\t[-t] -T static -a [local=]addr[/prefixlen] <addrobj>\n"));
    fails(&mut n, "ipadm frobnicate", 2, "ipadm: unknown subcommand 'frobnicate'");
    assert_eq!(ok(&mut n, "ipadm help show-addr"), "usage: show-addr\t[[-p] -o <field>,...] [<addrobj>]\n");
    assert!(ok(&mut n, "ipadm help").starts_with("usage:  ipadm"));
}

#[test]
fn route_and_netstat() {
    let mut n = links();
    ok(&mut n, "ipadm create-addr -T static -a 10.0.0.2/24 net0");
    ok(&mut n, "ipadm create-addr -T static -a 172.16.5.5/32 net1/host");
    ok(&mut n, "ipadm create-addr -T static -a 192.168.1.2/24 net1");
    assert_eq!(ok(&mut n, "route add default 10.0.0.1"), "add net default: gateway 10.0.0.1\n");
    assert_eq!(ok(&mut n, "route add -net 192.168.0.0/16 10.0.0.254"), "add net 192.168.0.0/16: gateway 10.0.0.254\n");
    assert_eq!(ok(&mut n, "route -n add 10.20.0.0 -netmask 255.255.0.0 192.168.1.1"), "add net 10.20.0.0/16: gateway 192.168.1.1\n");
    assert_eq!(ok(&mut n, "route add -host 8.8.4.4 192.168.1.1"), "add host 8.8.4.4: gateway 192.168.1.1\n");
    assert_eq!(ok(&mut n, "route -q add 8.8.8.0/24 10.0.0.1"), "");
    assert_eq!(
        ok(&mut n, "netstat -rn"),
        "\nRouting Table: IPv4\n\
         \x20 Destination           Gateway           Flags  Ref     Use     Interface\n\
         -------------------- -------------------- ----- ----- ---------- ---------\n\
         default              10.0.0.1             UG        0          0 net0\n\
         10.0.0.0             10.0.0.2             U         0          0 net0\n\
         172.16.5.5           172.16.5.5           UH        0          0 net1\n\
         192.168.1.0          192.168.1.2          U         0          0 net1\n\
         192.168.0.0          10.0.0.254           UG        0          0 net0\n\
         8.8.8.0              10.0.0.1             UG        0          0 net0\n\
         10.20.0.0            192.168.1.1          UG        0          0 net1\n\
         8.8.4.4              192.168.1.1          UGH       0          0 net1\n"
    );
    fails(&mut n, "route add default 10.0.0.5", 1, "add net default: gateway 10.0.0.5: entry exists");
    fails(&mut n, "route add 10.30.0.0/16 10.9.9.9", 1, "add net 10.30.0.0/16: gateway 10.9.9.9: Network is unreachable");
    fails(&mut n, "route add 10.30.0.0/16 10.0.0.2", 1, "add net 10.30.0.0/16: gateway 10.0.0.2: Invalid argument provided");
    assert_eq!(ok(&mut n, "route delete default"), "delete net default: gateway 10.0.0.1\n");
    fails(&mut n, "route delete default", 1, "delete net default: not in table");
    fails(&mut n, "route delete -net 192.168.0.0/16 10.0.0.9", 1, "delete net 192.168.0.0/16: gateway 10.0.0.9: not in table");
    assert_eq!(ok(&mut n, "route delete -net 192.168.0.0/16 10.0.0.254"), "delete net 192.168.0.0/16: gateway 10.0.0.254\n");
    fails(&mut n, "route add -ifp net7 default 10.0.0.1", 1, "route: net7: no such interface");
    fails(&mut n, "route -x add default 10.0.0.1", 2, "route: illegal option -- x");
    fails(&mut n, "route add default", 2, "route: missing gateway");
    fails(&mut n, "route add default 10.0.0.1 -mtu 9000", 2, "route: bad keyword: -mtu");
    fails(&mut n, "route add 10.0.0/8 10.0.0.1", 2, "route: bad address: 10.0.0/8");
    fails(&mut n, "route add 10.0.0.0/40 10.0.0.1", 2, "route: bad prefix: 10.0.0.0/40");
    fails(&mut n, "route add 10.1.0.0 -netmask 255.0.255.0 10.0.0.1", 2, "route: bad netmask: 255.0.255.0");
    fails(&mut n, "route frob", 2, "route: unknown command: frob");
    fails(&mut n, "route", 2, "usage: route [-nq] {add | delete} [-net | -host] destination [gateway] [-netmask mask] [-ifp ifname]");
    // Deleting the address takes the routes through it along.
    ok(&mut n, "ipadm delete-addr net1/v4");
    let routes = ok(&mut n, "netstat -r");
    assert!(!routes.contains("192.168.1.1"), "{routes}");
    assert!(routes.contains("8.8.8.0              10.0.0.1"), "{routes}");

    fails(&mut n, "netstat", 2, "netstat: only the -a, -r and -s reports are available");
    fails(&mut n, "netstat -z", 2, "netstat: illegal option -- z");
    fails(&mut n, "netstat -rn -f inet6", 1, "netstat: inet6: unknown address family");
    ok(&mut n, "netstat -rn -f inet");
}

#[test]
fn netstat_statistics() {
    let mut n = Net::new();
    n.add_instance("net0", 1, "10.0.0.1/24");
    n.add_instance("net1", 2, "10.0.0.2/24");
    ok(&mut n, "ping -i net1 10.0.0.1");
    let out = ok(&mut n, "netstat -s");
    assert!(out.starts_with("\nIP instance net0 (smol)\n"), "{out}");
    assert!(out.contains("        rxPackets           =         2     rxBytes             ="), "{out}");
    assert!(out.contains("PROTO  PORT SERVICE    ACCEPTED  REFUSED ACTIVE       IBYTES       OBYTES\n"), "{out}");
    assert!(out.contains("tcp       7 echo              0        0      0            0            0\n"), "{out}");
    assert!(out.contains("udp       7 echo"), "{out}");
    assert!(out.contains("\nIP instance net1 (smol)\n"), "{out}");
}

#[test]
fn ping_command() {
    let mut n = Net::new();
    n.add_instance("net0", 1, "10.0.0.1/24");
    n.add_instance("net1", 2, "10.0.0.2/24");
    assert_eq!(ok(&mut n, "ping 10.0.0.2"), "10.0.0.2 is alive\n");
    assert_eq!(ok(&mut n, "ping -i net1 10.0.0.1"), "10.0.0.1 is alive\n");
    assert_eq!(ok(&mut n, "ping 10.0.0.1 -c 2"), "10.0.0.1 is alive\n");

    let out = ok(&mut n, "ping -s -c 3 -I 0.2 10.0.0.1");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "PING 10.0.0.1: 56 data bytes");
    for (i, l) in lines[1..4].iter().enumerate() {
        let head = format!("64 bytes from 10.0.0.1: icmp_seq={i}. time=");
        assert!(l.starts_with(&head) && l.ends_with(" ms"), "{l}");
    }
    assert_eq!(lines[4], "");
    assert_eq!(lines[5], "----10.0.0.1 PING Statistics----");
    assert_eq!(lines[6], "3 packets transmitted, 3 packets received, 0% packet loss");
    assert!(lines[7].starts_with("round-trip (ms)  min/avg/max = "), "{}", lines[7]);
    assert_eq!(lines.len(), 8);

    // data_size and npackets after the host, as illumos ping -s.
    let out = ok(&mut n, "ping -s 10.0.0.2 100 2");
    assert!(out.starts_with("PING 10.0.0.2: 100 data bytes\n108 bytes from 10.0.0.2: icmp_seq=0. time="), "{out}");
    assert!(out.contains("2 packets transmitted, 2 packets received, 0% packet loss\n"), "{out}");

    // No answer.
    let (status, out) = n.cmd("ping 10.0.0.77 2");
    assert_eq!((status, out.as_str()), (1, "no answer from 10.0.0.77\n"));
    let (status, out) = n.cmd("ping -s -c 2 10.0.0.77");
    assert_eq!(status, 1);
    assert!(out.ends_with("----10.0.0.77 PING Statistics----\n2 packets transmitted, 0 packets received, 100% packet loss\n"), "{out}");

    // Until interrupted.
    let (status, out) = n.cmd_interrupted("ping -s -I 0.05 10.0.0.1", Some(30));
    assert_eq!(status, 0);
    assert!(out.contains("packets transmitted"), "{out}");
    assert!(out.contains("icmp_seq=2."), "{out}");

    // Errors.
    fails(&mut n, "ping", 2, "ping: missing host");
    fails(&mut n, "ping -c 0 10.0.0.1", 2, "ping: bad count: 0");
    fails(&mut n, "ping -I x 10.0.0.1", 2, "ping: bad interval: x");
    fails(&mut n, "ping -q 10.0.0.1", 2, "ping: illegal option -- q");
    fails(&mut n, "ping 10.0.0.1 5 6", 2, "ping: extra arguments");
    fails(&mut n, "ping 10.0.0.1 soon", 2, "ping: bad timeout: soon");
    fails(&mut n, "ping nosuchhost", 1, "ping: unknown host nosuchhost");
    fails(&mut n, "ping 192.168.9.9", 1, "ping: sendto: Network is unreachable");
    fails(&mut n, "ping -i net5 10.0.0.1", 1, "ping: net5: no such interface");
    fails(&mut n, "ping -s 10.0.0.1 9000", 1, "ping: data size too large (at most 1472)");
}

#[test]
fn ping_reaches_through_a_gateway() {
    let mut n = Net::new();
    // A gateway instance with both subnets on one wire: B reaches it by
    // ARP, and the route makes 10.0.1.1 reachable through it.
    let gw = n.add_instance("net0", 1, "10.0.0.1/24");
    gw.add_addr("net0/far", net("10.0.1.1/24")).unwrap();
    n.add_instance("net1", 2, "10.0.0.2/24");
    ok(&mut n, "route add -net 10.0.1.0/24 10.0.0.1");
    assert_eq!(ok(&mut n, "ping -i net1 10.0.1.1"), "10.0.1.1 is alive\n");
}

/// `netstat -an`'s `TCP: IPv4` table, after the UDP one as illumos
/// prints them: the services' listeners (`*.*` peer, Swind 0, Rwind the
/// receive buffer a connection gets), an accepted connection, and a user's
/// client connection through SYN_SENT, with its queues.
#[test]
fn netstat_an_tcp_table() {
    let mut n = Net::new();
    let inst = n.add_instance("net0", 1, "10.0.0.2/24");
    n.add_peer(9, "10.0.0.1/24");
    const HEAD: &str = "\nTCP: IPv4\n   Local Address        Remote Address    Swind Send-Q Rwind Recv-Q    State\n\
                        -------------------- -------------------- ----- ------ ----- ------ -----------\n";
    let listeners = "      *.7                  *.*                0      0 65535      0 LISTEN\n\
                     \x20     *.9                  *.*                0      0 65535      0 LISTEN\n\
                     \x20     *.19                 *.*                0      0 65535      0 LISTEN\n";
    let out = ok(&mut n, "netstat -an");
    let udp_at = out.find("\nUDP: IPv4\n").expect("UDP table");
    let tcp_at = out.find(HEAD).expect("TCP table");
    assert!(udp_at < tcp_at, "UDP first, as illumos' netstat.c:\n{out}");
    assert_eq!(&out[tcp_at..], format!("{HEAD}{listeners}"), "{out}");
    assert_eq!(ok(&mut n, "netstat -a -f inet"), out);

    // The peer connects to echo; a user connects out to the peer.
    let h = n.peer().connect(ip("10.0.0.2"), 7);
    let accepted = n.peer().listen(5001);
    n.run_ms(50);
    let c = inst.tcp_connect(ip("10.0.0.1"), 5001).unwrap();
    let out = ok(&mut n, "netstat -an");
    let lport = inst.tcp_endpoints().iter().find(|e| e.state == "SYN_SENT").map(|e| e.local.port()).expect("a SYN_SENT endpoint");
    let pport = n.peer().tcp(h).local_endpoint().unwrap().port;
    assert!(out.ends_with(&format!(
        "{HEAD}      *.7                  *.*                0      0 65535      0 LISTEN\n\
         10.0.0.2.7           10.0.0.1.{pport:<11} 65535      0 65535      0 ESTABLISHED\n\
         \x20     *.9                  *.*                0      0 65535      0 LISTEN\n\
         \x20     *.19                 *.*                0      0 65535      0 LISTEN\n\
         {:<20} 10.0.0.1.5001        65535      0 65535      0 SYN_SENT\n",
        format!("10.0.0.2.{lport}")
    )), "{out}");
    n.run_ms(50);
    // Queued and not yet sent: Send-Q holds it, Swind is what is left.
    assert_eq!(inst.tcp_send(c, &[7u8; 3000]).unwrap(), 3000);
    let e = *inst.tcp_endpoints().iter().find(|e| e.local.port() == lport).unwrap();
    assert_eq!((e.state, e.send_q, e.swind, e.recv_q, e.rwind), ("ESTABLISHED", 3000, 65535 - 3000, 0, 65535));
    n.run_ms(50);
    // The peer's bytes wait unread: Recv-Q holds them, Rwind shrinks.
    assert_eq!(n.peer().tcp(accepted).send_slice(&[1u8; 1000]).unwrap(), 1000);
    n.run_ms(50);
    let out = ok(&mut n, "netstat -an");
    let row = out.lines().find(|l| l.starts_with(&format!("10.0.0.2.{lport} "))).expect("the client's row");
    assert_eq!(row, format!("{:<20} 10.0.0.1.5001        65535      0 64535   1000 ESTABLISHED", format!("10.0.0.2.{lport}")), "{out}");
}
