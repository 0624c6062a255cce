//! Where a socket's client connects from, as the gateway reports it in its logs, the HTTP API
//! and webhook bodies: the TCP peer, and the client's IP as the server judges it (behind
//! `server.trusted_proxies`, the address they forwarded; otherwise the peer's).

use std::net::IpAddr;

use ferrio_engineio::TrustedProxies;
use ferrio_socketio::Socket;

/// The client's IP address: the peer's, or behind trusted `proxies` the one they forwarded.
/// `None` when the connection has no IP peer (an in-memory bridge, a Unix socket).
pub(crate) fn client_ip(socket: &Socket, proxies: Option<&TrustedProxies>) -> Option<IpAddr> {
    let handshake = socket.handshake();
    let peer = handshake.remote_addr?.ip();
    Some(match proxies {
        // Only behind a trusted peer are the forwarding headers read (and parsed) at all.
        Some(proxies) if proxies.trusts(peer) => proxies.client_of(peer, &handshake.headers()),
        _ => peer,
    })
}

/// The TCP peer (`ip:port`, a proxy's behind one) for a log line or a listing; `-` when none.
pub(crate) fn peer(socket: &Socket) -> String {
    socket
        .handshake()
        .remote_addr
        .map_or_else(|| "-".to_owned(), |addr| addr.to_string())
}

/// The client's IP for a log line; `-` when none.
pub(crate) fn client_ip_text(socket: &Socket, proxies: Option<&TrustedProxies>) -> String {
    client_ip(socket, proxies).map_or_else(|| "-".to_owned(), |ip| ip.to_string())
}
