//! Generic netlink requests and their answers, synchronously: a
//! `netlink-sys` socket, messages framed by `netlink-packet-core` and
//! `netlink-packet-generic`, families found by name through the
//! controller. No crate covers the `netdev` family or ethtool's RSS, so a
//! request is a command and raw attributes, and an answer the attributes
//! as they came.

use netlink_packet_core::{
    DecodeError, Emitable, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload, NlaBuffer, NlasIterator,
    ParseableParametrized,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::protocols::NETLINK_GENERIC;
use netlink_sys::{Socket, SocketAddr};

/// An attribute to send: its type (with `NLA_F_NESTED` when nested) and
/// value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Type, flags included.
    pub kind: u16,
    /// Value, unpadded.
    pub value: Vec<u8>,
}

impl Attr {
    /// A `u32` attribute (host byte order, as netlink has it).
    pub fn u32(kind: u16, v: u32) -> Self {
        Self { kind, value: v.to_ne_bytes().to_vec() }
    }

    /// A nested attribute of `inner`.
    pub fn nested(kind: u16, inner: &[Attr]) -> Self {
        let mut value = vec![0; inner.iter().map(|a| a.buffer_len()).sum()];
        let mut at = 0;
        for a in inner {
            a.emit(&mut value[at..]);
            at += a.buffer_len();
        }
        Self { kind: kind | netlink_packet_core::NLA_F_NESTED, value }
    }
}

impl netlink_packet_core::Nla for Attr {
    fn value_len(&self) -> usize {
        self.value.len()
    }
    fn kind(&self) -> u16 {
        self.kind
    }
    fn emit_value(&self, buffer: &mut [u8]) {
        buffer.copy_from_slice(&self.value);
    }
}

/// An answer's attributes, by type (flags taken off).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs(pub Vec<(u16, Vec<u8>)>);

impl Attrs {
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut v = Vec::new();
        for nla in NlasIterator::new(buf) {
            let nla: NlaBuffer<&[u8]> = nla?;
            v.push((
                nla.kind() & !(netlink_packet_core::NLA_F_NESTED | netlink_packet_core::NLA_F_NET_BYTEORDER),
                nla.value().to_vec(),
            ));
        }
        Ok(Self(v))
    }

    /// The value of attribute `kind`.
    pub fn get(&self, kind: u16) -> Option<&[u8]> {
        self.0.iter().find(|(k, _)| *k == kind).map(|(_, v)| v.as_slice())
    }

    /// Attribute `kind` as a `u32`.
    pub fn u32(&self, kind: u16) -> Option<u32> {
        self.get(kind).and_then(|v| Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?)))
    }

    /// Attribute `kind` as a `u64`.
    pub fn u64(&self, kind: u16) -> Option<u64> {
        self.get(kind).and_then(|v| Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?)))
    }

    /// Every attribute `kind`, each read as nested attributes.
    pub fn each_nested(&self, kind: u16) -> Vec<Attrs> {
        self.0.iter().filter(|(k, _)| *k == kind).filter_map(|(_, v)| Attrs::parse(v).ok()).collect()
    }

    /// Attribute `kind` read as nested attributes.
    pub fn nested(&self, kind: u16) -> Option<Attrs> {
        self.get(kind).and_then(|v| Attrs::parse(v).ok())
    }
}

/// One message of a family known by id.
#[derive(Clone, Debug)]
struct Raw {
    id: u16,
    cmd: u8,
    version: u8,
    attrs: Vec<Attr>,
    answer: Attrs,
}

impl GenlFamily for Raw {
    fn family_name() -> &'static str {
        ""
    }
    fn family_id(&self) -> u16 {
        self.id
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        self.version
    }
}

impl Emitable for Raw {
    fn buffer_len(&self) -> usize {
        self.attrs.iter().map(|a| a.buffer_len()).sum()
    }
    fn emit(&self, buffer: &mut [u8]) {
        let mut at = 0;
        for a in &self.attrs {
            a.emit(&mut buffer[at..]);
            at += a.buffer_len();
        }
    }
}

impl ParseableParametrized<[u8], GenlHeader> for Raw {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(Self { id: 0, cmd: header.cmd, version: header.version, attrs: Vec::new(), answer: Attrs::parse(buf)? })
    }
}

/// A generic netlink socket.
pub struct Genl {
    socket: Socket,
    seq: u32,
}

impl Genl {
    /// Opens and binds one.
    pub fn new() -> Result<Self, String> {
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(|e| format!("netlink socket: {e}"))?;
        socket.bind_auto().map_err(|e| format!("netlink bind: {e}"))?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(|e| format!("netlink connect: {e}"))?;
        Ok(Self { socket, seq: 1 })
    }

    fn send<F>(&mut self, msg: GenlMessage<F>, dump: bool) -> Result<u32, String>
    where
        F: GenlFamily + Emitable + std::fmt::Debug,
    {
        let mut nl = NetlinkMessage::from(msg);
        nl.header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        self.seq += 1;
        nl.header.sequence_number = self.seq;
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(|e| format!("netlink send: {e}"))?;
        Ok(self.seq)
    }

    /// The id of family `name`, `None` when the kernel has no such family.
    pub fn family(&mut self, name: &str) -> Result<Option<u16>, String> {
        let msg = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(name.to_owned())],
        });
        self.send(msg, false)?;
        let (buf, _) = self.socket.recv_from_full().map_err(|e| format!("netlink receive: {e}"))?;
        let m = <NetlinkMessage<GenlMessage<GenlCtrl>>>::deserialize(&buf).map_err(|e| format!("netlink: {e}"))?;
        Ok(match m.payload {
            NetlinkPayload::InnerMessage(g) => {
                g.payload.nlas.iter().find_map(|n| if let GenlCtrlAttrs::FamilyId(id) = n { Some(*id) } else { None })
            }
            _ => None,
        })
    }

    /// Sends command `cmd` of family `id` with `attrs` and returns every
    /// answer's attributes (`Err` with the kernel's error number as a
    /// `std::io::Error` text when it refuses).
    pub fn request(
        &mut self,
        id: u16,
        cmd: u8,
        version: u8,
        attrs: Vec<Attr>,
        dump: bool,
    ) -> Result<Vec<Attrs>, Refused> {
        let mut msg = GenlMessage::from_payload(Raw { id, cmd, version, attrs, answer: Attrs::default() });
        msg.set_resolved_family_id(id);
        let seq = self.send(msg, dump).map_err(Refused::Io)?;
        let mut answers = Vec::new();
        loop {
            let (buf, _) = self.socket.recv_from_full().map_err(|e| Refused::Io(format!("netlink receive: {e}")))?;
            let mut at = 0;
            while at < buf.len() {
                let m = <NetlinkMessage<GenlMessage<Raw>>>::deserialize(&buf[at..])
                    .map_err(|e| Refused::Io(format!("netlink: {e}")))?;
                at += (m.header.length as usize).next_multiple_of(4).max(16);
                if m.header.sequence_number != seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(g) => {
                        answers.push(g.payload.answer);
                        if !dump {
                            return Ok(answers);
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(answers),
                            Some(code) => Err(Refused::Errno(-code.get())),
                        };
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The kernel said no: this errno (`EOPNOTSUPP`: the driver does not
    /// implement it).
    Errno(i32),
    /// The socket failed.
    Io(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Errno(n) => write!(f, "{}", std::io::Error::from_raw_os_error(*n)),
            Refused::Io(s) => f.write_str(s),
        }
    }
}
