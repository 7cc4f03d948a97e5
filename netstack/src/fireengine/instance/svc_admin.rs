//! The service table of a FireEngine instance, for `svcs` and `svcadm`:
//! which services exist (TCP echo 7, discard 9, chargen 19; UDP echo 7,
//! discard 9; HTTP 80), whether each runs, since when, and their
//! counters. Enabling opens the service's listener or socket; disabling
//! closes it: a TCP SYN to it then gets a RST (a UDP datagram an ICMP
//! port unreachable), while connections already established are left to
//! finish. Everything runs at instance creation except HTTP.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use arbalest_mac::sync::Mutex;

use super::http_svc::HttpState;
use super::tcp_svc::SvcKind;
use super::{Core, FeInstance, DISCARD_PORT, ECHO_PORT};
use crate::services::http::HTTP_PORT;
use crate::stack::{NetError, Proto, SvcInfo, service_fmri};

/// The services' state kept in the instance.
#[derive(Default)]
pub struct SvcState {
    /// The HTTP service.
    pub http: HttpState,
    /// When each service last changed state (ms on the instance clock),
    /// by `svcadm` name; a service not here has run since the start.
    stimes: Mutex<Vec<(&'static str, u64)>>,
    /// When the instance started its services, ms + 1 (0: not yet).
    created_ms: core::sync::atomic::AtomicU64,
}

/// Every service an instance has, by `svcadm` name, with its transport
/// and port.
const ALL: &[(&str, Proto, u16)] = &[
    ("echo", Proto::Tcp, 7),
    ("discard", Proto::Tcp, 9),
    ("chargen", Proto::Tcp, 19),
    ("udp-echo", Proto::Udp, ECHO_PORT),
    ("udp-discard", Proto::Udp, DISCARD_PORT),
    ("http", Proto::Tcp, HTTP_PORT),
];

fn tcp_kind(name: &str) -> Option<SvcKind> {
    [SvcKind::Echo, SvcKind::Discard, SvcKind::Chargen].into_iter().find(|k| k.name() == name)
}

impl Core {
    fn udp_service_on(&self, port: u16) -> bool {
        self.services.lock().iter().any(|s| s.local().is_some_and(|a| a.port() == port))
    }

    /// The services as `svcs` lists them.
    pub(super) fn services_list(&self) -> Vec<SvcInfo> {
        let stimes = self.svc.stimes.lock().clone();
        let tcp = self.tcp_services.lock();
        ALL.iter()
            .map(|&(name, proto, port)| {
                let wire = match (name, proto) {
                    ("udp-echo", _) => "echo",
                    ("udp-discard", _) => "discard",
                    (n, _) => n,
                };
                let fmri = service_fmri(wire, proto).map_or("", |f| f.1);
                let (online, counters) = if name == "http" {
                    (self.svc.http.listener_open(), self.svc.http.counters.fields())
                } else if let Some(k) = tcp_kind(name) {
                    let e = tcp.iter().find(|(kk, _, _)| *kk == k);
                    let c = e.map(|(_, _, c)| {
                        alloc::vec![
                            ("accepted", c.accepted.load(Ordering::Relaxed)),
                            ("bytes_in", c.bytes_in.load(Ordering::Relaxed)),
                            ("bytes_out", c.bytes_out.load(Ordering::Relaxed)),
                        ]
                    });
                    (e.is_some(), c.unwrap_or_default())
                } else {
                    let e = if port == ECHO_PORT { &self.echo } else { &self.discard };
                    (
                        self.udp_service_on(port),
                        alloc::vec![
                            ("received", e.received.load(Ordering::Relaxed)),
                            ("refused", e.refused.load(Ordering::Relaxed)),
                            ("bytes", e.bytes.load(Ordering::Relaxed)),
                        ],
                    )
                };
                let created = self.svc.created_ms.load(Ordering::Relaxed).saturating_sub(1);
                let since_ms = stimes.iter().find(|(n, _)| *n == name).map_or(created, |(_, t)| *t);
                let since_us = Some(since_ms * 1000);
                SvcInfo { name, fmri, proto, port, online, since_us, manageable: true, counters }
            })
            .collect()
    }

    /// Notes when the services started (the first call counts).
    pub(super) fn services_started(&self) {
        let now = self.now_ms() + 1;
        let _ = self.svc.created_ms.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    fn stamp(&self, name: &'static str) {
        let now = self.now_ms();
        let mut s = self.svc.stimes.lock();
        s.retain(|(n, _)| *n != name);
        s.push((name, now));
    }
}

impl HttpState {
    /// Whether the listener is open.
    pub fn listener_open(&self) -> bool {
        self.listener_is_some()
    }
}

impl FeInstance {
    /// `svcadm enable|disable NAME`.
    pub(super) fn set_service_state(&self, name: &str, enable: bool) -> Result<(), NetError> {
        let &(name, proto, port) = ALL.iter().find(|(n, _, _)| *n == name).ok_or(NetError::NotFound)?;
        let c = &self.core;
        let was = c.services_list().iter().any(|s| s.name == name && s.online);
        if was == enable {
            return Ok(());
        }
        match (name, proto) {
            ("http", _) => {
                if enable {
                    c.http_enable()?;
                } else {
                    c.http_disable();
                }
            }
            (_, Proto::Tcp) => {
                let k = tcp_kind(name).ok_or(NetError::NotFound)?;
                if enable {
                    c.start_tcp_service(k)?;
                } else {
                    let gone = {
                        let mut v = c.tcp_services.lock();
                        let i = v.iter().position(|(kk, _, _)| *kk == k);
                        i.map(|i| v.remove(i))
                    };
                    // The listener closes here, with no lock held.
                    drop(gone);
                }
            }
            (_, Proto::Udp) => {
                if enable {
                    if port == ECHO_PORT {
                        self.start_echo()?;
                    } else {
                        self.start_discard()?;
                    }
                } else {
                    let gone = {
                        let mut v = c.services.lock();
                        let i = v.iter().position(|s| s.local().is_some_and(|a| a.port() == port));
                        i.map(|i| v.remove(i))
                    };
                    drop(gone);
                }
            }
        }
        c.stamp(name);
        Ok(())
    }
}
