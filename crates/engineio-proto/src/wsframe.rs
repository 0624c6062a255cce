//! RFC 6455 framing for the server end of a WebSocket: client frames in, server frames out.
//!
//! [`Decoder`] is fed the bytes read from the connection ([`Decoder::handle_bytes`]) and yields
//! whole messages and control frames ([`Decoder::poll_event`]): it unmasks, reassembles
//! fragmented messages (control frames may come between the fragments) and checks every rule a
//! server must enforce, each broken rule being a [`FrameError`] that names the close code to send.
//! Between frames it holds no allocation, so an idle connection costs only the struct.
//!
//! Server frames are never masked and never fragmented: [`encode_frame`] and [`encode_close`]
//! append one whole frame to a buffer, so that several can leave in one write.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// A close status code (RFC 6455 section 7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection is fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL: Self = Self(1002);
    /// 1005: the close frame carried no code (never sent on the wire).
    pub const NO_STATUS: Self = Self(1005);
    /// 1007: a text message, or a close reason, was not valid UTF-8.
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1009: a message was larger than the server accepts.
    pub const TOO_BIG: Self = Self(1009);

    /// Whether a peer may send this code in a close frame: the codes RFC 6455 and its registry
    /// define for that use, plus the ranges left to libraries (3000-3999) and applications
    /// (4000-4999).
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// The frame opcodes of RFC 6455.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: the next fragment of a message.
    Continuation,
    /// 0x1: a text message (or its first fragment).
    Text,
    /// 0x2: a binary message (or its first fragment).
    Binary,
    /// 0x8: the closing handshake.
    Close,
    /// 0x9: a ping, answered with a pong carrying the same payload.
    Ping,
    /// 0xA: a pong.
    Pong,
}

impl OpCode {
    /// The opcode of a frame's first byte, if it is one RFC 6455 defines.
    pub fn from_bits(bits: u8) -> Option<Self> {
        Some(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return None,
        })
    }

    /// The four bits on the wire.
    pub fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Whether this is a control frame (close, ping, pong).
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// Something a client sent, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete text message; the bytes are valid UTF-8.
    Text(Bytes),
    /// A complete binary message.
    Binary(Bytes),
    /// A ping; the server answers with a pong carrying this payload.
    Ping(Bytes),
    /// A pong (the server sends no pings, so it is ignored).
    Pong,
    /// The client starts the closing handshake with this code ([`CloseCode::NO_STATUS`] when
    /// the frame had no payload). The server echoes a close frame, then ends the connection.
    Close(CloseCode),
}

/// A client broke a framing rule. The connection cannot go on: the server sends a close frame
/// with [`FrameError::close_code`] and ends it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// A client frame was not masked.
    #[error("client frame is not masked")]
    Unmasked,
    /// A reserved bit was set, but no extension was negotiated.
    #[error("reserved bits set without an extension")]
    ReservedBits,
    /// The opcode is not one RFC 6455 defines.
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A control frame carried more than 125 bytes.
    #[error("control frame of {0} bytes (max 125)")]
    ControlTooLong(u64),
    /// A control frame had its FIN bit clear.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A continuation frame came while no fragmented message was open.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame came before the fragmented message in progress ended.
    #[error("new message before the fragmented one ended")]
    UnfinishedMessage,
    /// A 64-bit payload length had its most significant bit set.
    #[error("64-bit frame length with its top bit set")]
    InvalidLength,
    /// The message (all its fragments so far) is larger than the server accepts. Refused as
    /// soon as a frame header says so, before the payload is buffered.
    #[error("message of {size} bytes (max {max})")]
    MessageTooLong {
        /// The size the message reached with this frame.
        size: u64,
        /// The most the server accepts.
        max: u64,
    },
    /// A complete text message was not valid UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// A close frame's payload was one byte: too short for a code.
    #[error("close frame payload of one byte")]
    CloseTooShort,
    /// A close frame carried a code that may not be sent on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A close frame's reason was not valid UTF-8.
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
}

impl FrameError {
    /// The close code the server answers this error with.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::MessageTooLong { .. } => CloseCode::TOO_BIG,
            Self::InvalidUtf8 | Self::InvalidCloseReason => CloseCode::INVALID_PAYLOAD,
            _ => CloseCode::PROTOCOL,
        }
    }
}

/// A parsed client frame header.
#[derive(Debug, Clone, Copy)]
struct Header {
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    /// Bytes of the header itself, mask key included.
    len: usize,
    payload_len: u64,
}

/// The kind of the fragmented message being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// Turns the bytes a client sends into [`Event`]s. Sans-IO: it never reads or writes itself.
///
/// Drive it by passing each chunk read from the connection to [`Decoder::handle_bytes`], then
/// calling [`Decoder::poll_event`] until it returns `Ok(None)` (it needs more bytes). After an
/// error or a [`Event::Close`], stop: the connection is over.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes received that do not make a whole frame yet. Empty (no allocation) between frames.
    pending: BytesMut,
    /// The fragmented message in progress, if one is. Boxed: fragmented messages are rare, and
    /// the decoder lives in every connection's task.
    message: Option<Box<Fragmented>>,
    /// The largest message accepted, in bytes.
    max_message: u64,
}

/// A fragmented message being reassembled.
#[derive(Debug)]
struct Fragmented {
    kind: Kind,
    /// The unmasked payload so far.
    payload: BytesMut,
}

impl Decoder {
    /// A decoder that accepts messages of up to `max_message` bytes (all fragments together).
    pub fn new(max_message: u64) -> Self {
        Self {
            max_message,
            ..Self::default()
        }
    }

    /// Takes bytes read from the connection.
    pub fn handle_bytes(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
    }

    /// Whether the decoder holds no bytes: no partial frame and no partial message.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.message.is_none()
    }

    /// The next whole message or control frame, `Ok(None)` when more bytes are needed.
    pub fn poll_event(&mut self) -> Result<Option<Event>, FrameError> {
        loop {
            let Some(header) = parse_header(&self.pending)? else {
                self.release();
                return Ok(None);
            };
            if !header.opcode.is_control() {
                let so_far = self
                    .message
                    .as_ref()
                    .map_or(0, |message| message.payload.len());
                let size = so_far as u64 + header.payload_len;
                if size > self.max_message {
                    return Err(FrameError::MessageTooLong {
                        size,
                        max: self.max_message,
                    });
                }
            }
            // Within `max_message` (data) or 125 (control), both of which fit in memory.
            let total = header.len as u64 + header.payload_len;
            if (self.pending.len() as u64) < total {
                return Ok(None);
            }
            let mut payload = self.pending.split_to(total as usize).split_off(header.len);
            self.release();
            unmask(&mut payload, header.mask);
            if let Some(event) = self.handle_frame(header, payload)? {
                return Ok(Some(event));
            }
        }
    }

    /// Drops the buffer once it holds nothing, so that an idle connection keeps no allocation
    /// (an empty `BytesMut` split from a larger one still refers to it).
    fn release(&mut self) {
        if self.pending.is_empty() {
            self.pending = BytesMut::new();
        }
    }

    /// Applies one whole, unmasked frame; `None` when it only continued a message.
    fn handle_frame(
        &mut self,
        header: Header,
        payload: BytesMut,
    ) -> Result<Option<Event>, FrameError> {
        let kind = match header.opcode {
            OpCode::Ping => return Ok(Some(Event::Ping(payload.freeze()))),
            OpCode::Pong => return Ok(Some(Event::Pong)),
            OpCode::Close => return close_event(&payload).map(Some),
            OpCode::Text | OpCode::Binary if self.message.is_some() => {
                return Err(FrameError::UnfinishedMessage)
            }
            OpCode::Text => Kind::Text,
            OpCode::Binary => Kind::Binary,
            OpCode::Continuation => {
                let Some(message) = self.message.as_mut() else {
                    return Err(FrameError::UnexpectedContinuation);
                };
                message.payload.extend_from_slice(&payload);
                if !header.fin {
                    return Ok(None);
                }
                return match self.message.take() {
                    Some(message) => message_event(message.kind, message.payload).map(Some),
                    None => Ok(None),
                };
            }
        };
        if header.fin {
            return message_event(kind, payload).map(Some);
        }
        // The first fragment: its buffer becomes the message's.
        self.message = Some(Box::new(Fragmented { kind, payload }));
        Ok(None)
    }
}

fn message_event(kind: Kind, payload: BytesMut) -> Result<Event, FrameError> {
    match kind {
        Kind::Binary => Ok(Event::Binary(payload.freeze())),
        Kind::Text => match std::str::from_utf8(&payload) {
            Ok(_) => Ok(Event::Text(payload.freeze())),
            Err(_) => Err(FrameError::InvalidUtf8),
        },
    }
}

fn close_event(payload: &[u8]) -> Result<Event, FrameError> {
    match payload {
        [] => Ok(Event::Close(CloseCode::NO_STATUS)),
        [_] => Err(FrameError::CloseTooShort),
        [high, low, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*high, *low]));
            if !code.is_valid_on_wire() {
                return Err(FrameError::InvalidCloseCode(code.0));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(FrameError::InvalidCloseReason);
            }
            Ok(Event::Close(code))
        }
    }
}

/// Parses a client frame header at the start of `bytes`; `None` when it is not all there yet.
/// The checks on the first two bytes come first, so a broken frame is refused at once.
fn parse_header(bytes: &[u8]) -> Result<Option<Header>, FrameError> {
    let [first, second, rest @ ..] = bytes else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let opcode = OpCode::from_bits(first & 0x0f).ok_or(FrameError::UnknownOpcode(first & 0x0f))?;
    let fin = first & 0x80 != 0;
    if second & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    let short = second & 0x7f;
    if opcode.is_control() {
        if !fin {
            return Err(FrameError::FragmentedControl);
        }
        if short > 125 {
            return Err(FrameError::ControlTooLong(u64::from(short)));
        }
    }
    let (payload_len, extended) = match short {
        126 => match rest {
            [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(raw) => {
                let mut be = [0; 8];
                be.copy_from_slice(raw);
                let len = u64::from_be_bytes(be);
                if len >> 63 != 0 {
                    return Err(FrameError::InvalidLength);
                }
                (len, 8)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 0),
    };
    let Some(key) = rest.get(extended..extended + 4) else {
        return Ok(None);
    };
    let mut mask = [0; 4];
    mask.copy_from_slice(key);
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        len: 2 + extended + 4,
        payload_len,
    }))
}

/// Applies (or removes: it is its own inverse) a frame's mask.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (index, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[index & 3];
    }
}

/// How many bytes the header of an unmasked server frame with this payload length takes.
pub fn header_len(payload_len: usize) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    }
}

/// Appends one whole server frame (FIN set, unmasked).
pub fn encode_frame(out: &mut impl BufMut, opcode: OpCode, payload: &[u8]) {
    encode_header(out, opcode, payload.len());
    out.put_slice(payload);
}

/// Appends the header of a server frame (FIN set, unmasked) whose payload of `len` bytes the
/// caller writes next, e.g. straight from its own buffer.
pub fn encode_header(out: &mut impl BufMut, opcode: OpCode, len: usize) {
    out.put_u8(0x80 | opcode.bits());
    put_length(out, 0, len);
}

/// Appends one frame as a client sends it: `first` is the whole first byte (FIN, RSV bits and
/// opcode, given as is, so that a test can also build frames a server must refuse), then the
/// length with the mask bit, the masking key and the payload masked with it.
pub fn encode_masked(out: &mut impl BufMut, first: u8, payload: &[u8], key: [u8; 4]) {
    out.put_u8(first);
    put_length(out, 0x80, payload.len());
    out.put_slice(&key);
    for (i, byte) in payload.iter().enumerate() {
        out.put_u8(byte ^ key[i % 4]);
    }
}

/// The second byte (the mask bit `mask_bit` and the 7-bit length or its escape) and the
/// extended length, in its shortest form.
fn put_length(out: &mut impl BufMut, mask_bit: u8, len: usize) {
    match len {
        len @ 0..=125 => out.put_u8(mask_bit | len as u8),
        len @ 126..=0xffff => {
            out.put_u8(mask_bit | 126);
            out.put_u16(len as u16);
        }
        len => {
            out.put_u8(mask_bit | 127);
            out.put_u64(len as u64);
        }
    }
}

/// Appends a server close frame: the code, or no payload at all for [`CloseCode::NO_STATUS`]
/// (which may not travel on the wire), then the reason, cut to fit the 125 bytes of a control
/// frame at a character boundary.
pub fn encode_close(out: &mut impl BufMut, code: CloseCode, reason: &str) {
    if code == CloseCode::NO_STATUS {
        encode_frame(out, OpCode::Close, &[]);
        return;
    }
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = [0; 125];
    payload[..2].copy_from_slice(&code.0.to_be_bytes());
    payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    encode_frame(out, OpCode::Close, &payload[..2 + end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame: `first` is the FIN/RSV/opcode byte, the payload is masked with `KEY`.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_masked(&mut out, first, payload, KEY);
        out
    }

    /// Every event of `bytes` fed at once, then the error if one stopped it.
    fn decode_all(max: u64, bytes: &[u8]) -> (Vec<Event>, Option<FrameError>) {
        let mut decoder = Decoder::new(max);
        decoder.handle_bytes(bytes);
        let mut events = Vec::new();
        loop {
            match decoder.poll_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => return (events, None),
                Err(error) => return (events, Some(error)),
            }
        }
    }

    fn error_of(bytes: &[u8]) -> FrameError {
        let (_, error) = decode_all(1024, bytes);
        error.unwrap_or_else(|| panic!("no error for {bytes:02x?}"))
    }

    #[test]
    fn a_masked_text_frame_is_unmasked() {
        let (events, error) = decode_all(1024, &client_frame(0x81, b"4hello"));
        assert_eq!(events, [Event::Text(Bytes::from_static(b"4hello"))]);
        assert_eq!(error, None);
    }

    #[test]
    fn lengths_of_7_16_and_64_bits() {
        for len in [0, 125, 126, 65_535, 65_536] {
            let payload = vec![7u8; len];
            let (events, error) = decode_all(1 << 20, &client_frame(0x82, &payload));
            assert_eq!(error, None, "length {len}");
            assert_eq!(
                events,
                [Event::Binary(Bytes::from(payload))],
                "length {len}"
            );
        }
    }

    #[test]
    fn bytes_arriving_one_at_a_time_give_the_same_events() {
        let mut wire = client_frame(0x01, b"4he");
        wire.extend(client_frame(0x89, b"ping"));
        wire.extend(client_frame(0x80, b"llo"));
        wire.extend(client_frame(0x82, &[0u8; 300]));
        let (whole, _) = decode_all(1024, &wire);
        let mut decoder = Decoder::new(1024);
        let mut split = Vec::new();
        for byte in &wire {
            decoder.handle_bytes(std::slice::from_ref(byte));
            while let Some(event) = decoder.poll_event().unwrap() {
                split.push(event);
            }
        }
        assert_eq!(split, whole);
        assert_eq!(whole.len(), 3);
        assert!(decoder.is_empty());
        assert_eq!(
            decoder.pending.capacity(),
            0,
            "no buffer kept between frames"
        );
    }

    #[test]
    fn fragments_are_reassembled_around_control_frames() {
        let mut wire = client_frame(0x01, b"4he");
        wire.extend(client_frame(0x89, b"are you there"));
        wire.extend(client_frame(0x00, b"ll"));
        wire.extend(client_frame(0x8a, b""));
        wire.extend(client_frame(0x80, b"o"));
        let (events, error) = decode_all(1024, &wire);
        assert_eq!(error, None);
        assert_eq!(
            events,
            [
                Event::Ping(Bytes::from_static(b"are you there")),
                Event::Pong,
                Event::Text(Bytes::from_static(b"4hello")),
            ]
        );
    }

    #[test]
    fn unmasked_client_frames_are_refused() {
        let mut wire = client_frame(0x81, b"hi");
        wire[1] &= 0x7f;
        assert_eq!(error_of(&wire), FrameError::Unmasked);
        assert_eq!(FrameError::Unmasked.close_code(), CloseCode::PROTOCOL);
    }

    #[test]
    fn reserved_bits_and_unknown_opcodes_are_refused() {
        for rsv in [0x40, 0x20, 0x10] {
            assert_eq!(
                error_of(&client_frame(0x81 | rsv, b"x")),
                FrameError::ReservedBits
            );
        }
        for opcode in [3, 7, 0xb, 0xf] {
            assert_eq!(
                error_of(&client_frame(0x80 | opcode, b"")),
                FrameError::UnknownOpcode(opcode)
            );
        }
    }

    #[test]
    fn control_frames_are_short_and_whole() {
        let long = client_frame(0x89, &[0; 126]);
        assert_eq!(error_of(&long), FrameError::ControlTooLong(126));
        assert_eq!(
            error_of(&client_frame(0x09, b"")),
            FrameError::FragmentedControl
        );
        let (events, _) = decode_all(1024, &client_frame(0x89, &[1; 125]));
        assert_eq!(events, [Event::Ping(Bytes::from(vec![1; 125]))]);
    }

    #[test]
    fn continuations_need_an_open_message_and_messages_do_not_nest() {
        assert_eq!(
            error_of(&client_frame(0x80, b"x")),
            FrameError::UnexpectedContinuation
        );
        let mut wire = client_frame(0x01, b"a");
        wire.extend(client_frame(0x81, b"b"));
        assert_eq!(error_of(&wire), FrameError::UnfinishedMessage);
    }

    #[test]
    fn a_64_bit_length_with_the_top_bit_is_refused() {
        let mut wire = vec![0x82, 0x80 | 127];
        wire.extend_from_slice(&(1u64 << 63).to_be_bytes());
        wire.extend_from_slice(&KEY);
        assert_eq!(error_of(&wire), FrameError::InvalidLength);
    }

    #[test]
    fn text_must_be_utf8_once_complete() {
        // A character split across two fragments is fine.
        let mut wire = client_frame(0x01, &"é".as_bytes()[..1]);
        wire.extend(client_frame(0x80, &"é".as_bytes()[1..]));
        let (events, error) = decode_all(1024, &wire);
        assert_eq!((events.len(), error), (1, None));
        let error = error_of(&client_frame(0x81, b"\xff"));
        assert_eq!(error, FrameError::InvalidUtf8);
        assert_eq!(error.close_code(), CloseCode::INVALID_PAYLOAD);
        // Binary messages are not checked.
        assert_eq!(decode_all(1024, &client_frame(0x82, b"\xff")).1, None);
    }

    #[test]
    fn messages_over_the_limit_are_refused_from_the_header() {
        // Only the header of a 2,000-byte frame: refused before the payload arrives.
        let wire = client_frame(0x82, &[0; 2000]);
        let error = error_of(&wire[..8]);
        assert_eq!(
            error,
            FrameError::MessageTooLong {
                size: 2000,
                max: 1024
            }
        );
        assert_eq!(error.close_code(), CloseCode::TOO_BIG);
        // Fragments count together.
        let mut wire = client_frame(0x02, &[0; 1000]);
        wire.extend(client_frame(0x80, &[0; 25]));
        assert_eq!(
            error_of(&wire),
            FrameError::MessageTooLong {
                size: 1025,
                max: 1024
            }
        );
        assert_eq!(decode_all(1024, &client_frame(0x82, &[0; 1024])).1, None);
    }

    #[test]
    fn close_frames_carry_a_valid_code_and_utf8_reason() {
        let close = |payload: &[u8]| decode_all(1024, &client_frame(0x88, payload));
        assert_eq!(close(b"").0, [Event::Close(CloseCode::NO_STATUS)]);
        assert_eq!(close(b"\x03\xe8bye").0, [Event::Close(CloseCode::NORMAL)]);
        assert_eq!(close(b"\x0f\xa0").0, [Event::Close(CloseCode(4000))]);
        assert_eq!(close(b"\x03").1, Some(FrameError::CloseTooShort));
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1100, 2999, 5000] {
            assert_eq!(
                close(&code.to_be_bytes()).1,
                Some(FrameError::InvalidCloseCode(code)),
                "code {code}"
            );
        }
        let error = close(b"\x03\xe8\xff").1;
        assert_eq!(error, Some(FrameError::InvalidCloseReason));
        assert_eq!(
            FrameError::InvalidCloseReason.close_code(),
            CloseCode::INVALID_PAYLOAD
        );
    }

    #[test]
    fn server_frames_are_unmasked_and_whole() {
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let payload = vec![9u8; len];
            let mut out = Vec::new();
            encode_frame(&mut out, OpCode::Binary, &payload);
            assert_eq!(out.len(), header_len(len) + len, "length {len}");
            assert_eq!(out[0], 0x82);
            assert_eq!(out[1] & 0x80, 0, "not masked");
            assert_eq!(&out[header_len(len)..], &payload[..]);
        }
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Pong, b"hey");
        assert_eq!(out, b"\x8a\x03hey");
    }

    #[test]
    fn close_frames_out() {
        let mut out = Vec::new();
        encode_close(&mut out, CloseCode::NO_STATUS, "ignored");
        assert_eq!(out, b"\x88\x00");
        out.clear();
        encode_close(&mut out, CloseCode::TOO_BIG, "too big");
        assert_eq!(out, b"\x88\x09\x03\xf1too big");
        // The reason is cut to fit 125 bytes, at a character boundary.
        out.clear();
        encode_close(&mut out, CloseCode::NORMAL, &"é".repeat(100));
        assert_eq!(out[1], 2 + 122);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }
}
