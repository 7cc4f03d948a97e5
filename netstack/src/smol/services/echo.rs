//! TCP echo (RFC 862): every byte received is sent back, in order. Data is
//! taken from the receive buffer only as far as the send buffer has room,
//! so nothing is lost when the peer reads slowly (the receive window
//! closes instead).

use smoltcp::socket::tcp;

use super::pool::Io;

/// Moves what fits from `s`'s receive buffer to its send buffer, through
/// `scratch`.
pub fn serve(s: &mut tcp::Socket<'static>, scratch: &mut [u8], io: &mut Io) {
    if !s.may_send() {
        // Our side is closed or reset: nothing can be answered any more.
        super::discard::serve(s, io);
        return;
    }
    while s.can_recv() {
        let room = s.send_capacity() - s.send_queue();
        let n = room.min(scratch.len());
        if n == 0 {
            break;
        }
        let got = match s.recv_slice(&mut scratch[..n]) {
            Ok(k) if k > 0 => k,
            _ => break,
        };
        io.bytes_in += got as u64;
        let sent = s.send_slice(&scratch[..got]).unwrap_or(0);
        io.bytes_out += sent as u64;
    }
}
