//! The server's RFC 6455 framing over a raw TCP connection: frames are built here byte by byte,
//! so that the broken ones a normal client library would never send can be sent too.

mod common;

use common::{config, connect_from, TestServer, WAIT};
use ferrio_engineio::{DisconnectReason, Message, Sid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const KEY: [u8; 4] = [0xa1, 0x07, 0x5c, 0xe3];

/// A masked client frame; `first` is the FIN/RSV/opcode byte.
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ferrio_engineio_proto::wsframe::encode_masked(&mut out, first, payload, KEY);
    out
}

/// A server frame as read: the first byte (FIN and opcode) and the payload.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    Frame(u8, Vec<u8>),
    /// The server ended the TCP connection.
    Eof,
}

/// The next server frame. Server frames must not be masked.
async fn read_frame(stream: &mut TcpStream) -> Read {
    let mut head = [0u8; 2];
    match timeout(WAIT, stream.read_exact(&mut head))
        .await
        .expect("a frame in time")
    {
        Ok(_) => {}
        Err(_) => return Read::Eof,
    }
    assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
    let len = match head[1] & 0x7f {
        126 => usize::from(stream.read_u16().await.expect("length")),
        127 => usize::try_from(stream.read_u64().await.expect("length")).expect("size"),
        short => usize::from(short),
    };
    let mut payload = vec![0; len];
    timeout(WAIT, stream.read_exact(&mut payload))
        .await
        .expect("a payload in time")
        .expect("the payload");
    Read::Frame(head[0], payload)
}

struct RawWs {
    stream: TcpStream,
    sid: Sid,
}

impl RawWs {
    /// Opens a direct v4 WebSocket session and reads its open packet.
    async fn open(server: &mut TestServer) -> Self {
        Self::open_sending(server, &[]).await
    }

    /// [`RawWs::open`], with `early` written in the same write as the request.
    async fn open_sending(server: &mut TestServer, early: &[u8]) -> Self {
        let mut stream = connect_from(None, server.addr).await;
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            TestServer::target("EIO=4&transport=websocket"),
            server.addr
        );
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(early);
        stream.write_all(&bytes).await.expect("write");
        // The answer's head, byte by byte so that no frame byte after it is taken.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            assert!(head.len() < 4096, "answer head too long");
            let byte = timeout(WAIT, stream.read_u8())
                .await
                .expect("answer in time")
                .expect("read the answer");
            head.push(byte);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "the RFC's example accept key: {head}"
        );
        let Read::Frame(0x81, open) = read_frame(&mut stream).await else {
            panic!("expected the open packet");
        };
        let open: serde_json::Value =
            serde_json::from_slice(&open[1..]).expect("the open packet's JSON");
        let sid = common::sid_of(&open);
        server.connected(sid).await;
        Self { stream, sid }
    }

    async fn send(&mut self, bytes: &[u8]) {
        timeout(WAIT, self.stream.write_all(bytes))
            .await
            .expect("write in time")
            .expect("write");
    }

    async fn read(&mut self) -> Read {
        read_frame(&mut self.stream).await
    }

    /// Reads the server's close frame, returns its code, and checks that the connection ends.
    async fn closed_with(&mut self) -> Option<u16> {
        let Read::Frame(0x88, payload) = self.read().await else {
            panic!("expected a close frame");
        };
        assert_eq!(self.read().await, Read::Eof, "the connection ends after it");
        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
    }
}

#[tokio::test]
async fn pings_are_answered_and_fragments_reassembled() {
    let mut server = TestServer::start(config()).await;
    let mut ws = RawWs::open(&mut server).await;

    ws.send(&frame(0x89, b"are you there")).await;
    assert_eq!(
        ws.read().await,
        Read::Frame(0x8a, b"are you there".to_vec())
    );

    // A text message in three fragments, a ping and a pong between them, all in one write.
    let mut wire = frame(0x01, b"4h\xc3");
    wire.extend(frame(0x89, b""));
    wire.extend(frame(0x00, b"\xa9l"));
    wire.extend(frame(0x8a, b"unsolicited"));
    wire.extend(frame(0x80, b"lo"));
    ws.send(&wire).await;
    assert_eq!(ws.read().await, Read::Frame(0x8a, Vec::new()));
    assert_eq!(server.message(ws.sid).await, Message::from("héllo"));
    assert_eq!(
        ws.read().await,
        Read::Frame(0x81, "4héllo".as_bytes().to_vec())
    );

    // A message trickled in one byte per write still arrives whole.
    for byte in frame(0x82, &[7; 300]) {
        ws.send(&[byte]).await;
    }
    assert_eq!(
        server.message(ws.sid).await,
        Message::Binary(vec![7; 300].into())
    );
    assert_eq!(ws.read().await, Read::Frame(0x82, vec![7; 300]));

    // A large message out: header, then the payload from its own buffer.
    let big = "x".repeat(70_000);
    ws.send(&frame(0x81, format!("4{big}").as_bytes())).await;
    assert_eq!(
        ws.read().await,
        Read::Frame(0x81, format!("4{big}").into_bytes())
    );
}

#[tokio::test]
async fn a_close_frame_is_echoed_then_the_connection_ends() {
    let mut server = TestServer::start(config()).await;
    let mut ws = RawWs::open(&mut server).await;
    ws.send(&frame(0x88, b"\x0f\xa0going")).await;
    assert_eq!(ws.closed_with().await, Some(4000));
    assert_eq!(
        server.disconnected(ws.sid).await,
        DisconnectReason::TransportClose
    );

    // Without a code, the echo has none either.
    let mut ws = RawWs::open(&mut server).await;
    ws.send(&frame(0x88, b"")).await;
    assert_eq!(ws.closed_with().await, None);
    assert_eq!(
        server.disconnected(ws.sid).await,
        DisconnectReason::TransportClose
    );
}

#[tokio::test]
async fn broken_frames_close_with_the_code_for_the_rule() {
    let mut unmasked = frame(0x81, b"4hi");
    unmasked[1] &= 0x7f;
    let mut unfinished = frame(0x01, b"4a");
    unfinished.extend(frame(0x81, b"4b"));
    let cases: [(&str, Vec<u8>, u16); 9] = [
        ("unmasked", unmasked, 1002),
        ("reserved bit", frame(0xc1, b"4hi"), 1002),
        ("unknown opcode", frame(0x83, b""), 1002),
        ("long control frame", frame(0x89, &[0; 126]), 1002),
        ("fragmented control frame", frame(0x09, b""), 1002),
        ("lone continuation", frame(0x80, b"4"), 1002),
        ("nested message", unfinished, 1002),
        ("invalid UTF-8", frame(0x81, b"4\xff"), 1007),
        (
            "reserved close code",
            frame(0x88, &1005u16.to_be_bytes()),
            1002,
        ),
    ];
    let mut server = TestServer::start(config()).await;
    let mut bystander = RawWs::open(&mut server).await;
    for (name, wire, code) in cases {
        let mut ws = RawWs::open(&mut server).await;
        ws.send(&wire).await;
        assert_eq!(ws.closed_with().await, Some(code), "{name}");
        assert_eq!(
            server.disconnected(ws.sid).await,
            DisconnectReason::TransportError,
            "{name}"
        );
    }
    bystander.send(&frame(0x81, b"4still here")).await;
    assert_eq!(
        bystander.read().await,
        Read::Frame(0x81, b"4still here".to_vec())
    );
    assert!(!server.has_disconnected(bystander.sid));
}

#[tokio::test]
async fn frames_sent_with_the_request_are_not_lost() {
    let mut server = TestServer::start(config()).await;
    // The HTTP parser reads them with the request; they belong to the WebSocket.
    let mut early = frame(0x89, b"early");
    early.extend(frame(0x81, b"4first"));
    let mut ws = RawWs::open_sending(&mut server, &early).await;
    assert_eq!(ws.read().await, Read::Frame(0x8a, b"early".to_vec()));
    assert_eq!(server.message(ws.sid).await, Message::from("first"));
    assert_eq!(ws.read().await, Read::Frame(0x81, b"4first".to_vec()));
}

#[tokio::test]
async fn a_queue_larger_than_one_write_arrives_whole_and_in_order() {
    let mut server = TestServer::start(config()).await;
    let mut ws = RawWs::open(&mut server).await;
    // 40 KiB queued at once: written in several turns of the frame loop, 16 KiB each.
    let messages: Vec<Message> = (0..40u8)
        .map(|i| Message::from(format!("{i:02}{}", "x".repeat(1022)).as_str()))
        .collect();
    server
        .socket(ws.sid)
        .send_many(messages.clone())
        .expect("queued");
    for message in messages {
        let Message::Text(text) = message else {
            unreachable!("text messages")
        };
        let expected = format!("4{}", text.as_str());
        assert_eq!(ws.read().await, Read::Frame(0x81, expected.into_bytes()));
    }
    // The client's side is still heard.
    ws.send(&frame(0x89, b"after")).await;
    assert_eq!(ws.read().await, Read::Frame(0x8a, b"after".to_vec()));
}
