//! FireEngine TCP (part 2): RFC 9293 TCP inside the squeues, built room by
//! room. Arrows point down this list only (a room uses the rooms below it
//! and [`crate::fireengine::wire`], never above):
//!
//! * [`tcb`]: one connection's state machine (input, output, timers, the
//!   user's calls), a plain type driven by the instance inside the conn's
//!   squeue.
//! * [`config`]: what a connection is configured with (tunables and
//!   socket options).
//! * [`segment`]: segments in and out as the TCB sees them.
//! * [`challenge`]: the instance's RFC 5961 challenge-ACK rate limit.
//! * [`cc`]: congestion control (NewReno, CUBIC).
//! * [`rto`]: the retransmission timer estimator (RFC 6298).
//! * [`scoreboard`]: the sender's SACK scoreboard (RFC 6675).
//! * [`sndbuf`]: the send queue.
//! * [`state`]: the connection states.
//! * [`seq`]: sequence numbers, compared and added modulo 2^32 (RFC 9293
//!   section 3.4).
//!
//! The TCP header and its options are [`crate::fireengine::wire::tcp`];
//! receive reassembly, ISNs, SYN cookies and listen queues are
//! [`crate::fireengine::tcp_conn`].

pub mod cc;
pub mod challenge;
pub mod config;
pub mod rto;
pub mod scoreboard;
pub mod segment;
pub mod seq;
pub mod sndbuf;
pub mod state;
pub mod tcb;
