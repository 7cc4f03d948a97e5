//! Application services that run inside a stack instance but whose
//! protocol logic is plain Rust, independent of any stack: [`http`], the
//! in-kernel HTTP/1.1 server's protocol core. The FireEngine wiring (a TCP
//! listener, upcalls inside the conn's squeue, flow control) lives in
//! `fireengine::instance::http_svc`.

pub mod http;
