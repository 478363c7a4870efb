//! pcap / pcapng file port: replay any capture through a chain, and record
//! what a chain transmits.
//!
//! Link types other than Ethernet are given a synthetic Ethernet header when
//! the L3 protocol is known (raw IP, BSD loopback, Linux cooked capture), so
//! most captures replay as they are; the rest are skipped and counted.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};

use crate::batch::Batch;
use crate::frame::{FramePool, MAX_DATA};
use crate::packet::{Meta, PktDesc};
use crate::port::{Port, PortInfo};
use nfv_net::wire::ethertype;

/// Drop reasons of a pcap port, in counter order.
pub const PCAP_DROP_REASONS: &[&str] =
    &["unsupported-linktype", "oversized-record", "unknown-l3", "read-error", "write-error", "no-frame"];
const UNSUPPORTED: usize = 0;
const OVERSIZED: usize = 1;
const UNKNOWN_L3: usize = 2;
const READ_ERROR: usize = 3;
const WRITE_ERROR: usize = 4;
const NO_FRAME: usize = 5;

enum Source {
    Pcap(PcapReader<BufReader<File>>),
    PcapNg { reader: PcapNgReader<BufReader<File>>, links: Vec<DataLink> },
}

/// A record pulled from either format.
struct Record {
    link: DataLink,
    data: Vec<u8>,
}

/// One pcapng file recording what every port of a run transmits, each
/// port an interface named after it (`nfv replay --out`: tshark shows a
/// packet's port as `frame.interface_name`). Ports share it through a
/// lock taken once per transmitted burst; a replay runs one worker.
#[derive(Clone)]
pub struct Recorder(Arc<Mutex<PcapNgWriter<BufWriter<File>>>>);

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    /// Creates `path` with one Ethernet interface per port name, in port
    /// order (interface N is port N).
    pub fn create(path: &Path, ports: &[String]) -> Result<Self, PcapOpenError> {
        let err = |e: &dyn std::fmt::Display| PcapOpenError(format!("{}: {e}", path.display()));
        let f = File::create(path).map_err(|e| err(&e))?;
        let mut w = PcapNgWriter::new(BufWriter::new(f)).map_err(|e| err(&e))?;
        for name in ports {
            let idb = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: 0,
                options: vec![InterfaceDescriptionOption::IfName(Cow::Owned(name.clone()))],
            };
            w.write_block(&Block::InterfaceDescription(idb)).map_err(|e| err(&e))?;
        }
        Ok(Self(Arc::new(Mutex::new(w))))
    }

    /// Flushes what is buffered (the file is complete once every port
    /// holding the recorder is gone, or after this).
    pub fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        self.0.lock().map_err(|_| std::io::Error::other("recorder poisoned"))?.get_mut().flush()
    }
}

/// Where a pcap port writes what it transmits.
enum Sink {
    /// Nowhere: an input-only port discards what it is sent.
    None,
    /// Its own pcap file; buffered, written out when the port is dropped.
    File(PcapWriter<BufWriter<File>>),
    /// The run's recorder, as this interface.
    Recorder(Recorder, u32),
}

/// The pcap port.
pub struct PcapPort {
    info: PortInfo,
    source: Option<Source>,
    sink: Sink,
    scratch: Vec<u8>,
}

/// Errors opening capture files.
#[derive(Debug)]
pub struct PcapOpenError(pub String);

impl std::fmt::Display for PcapOpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PcapOpenError {}

impl PcapPort {
    /// Opens `input` for reading (pcap or pcapng, by magic number) and/or
    /// creates `output` (pcap, Ethernet link type).
    pub fn open(info: PortInfo, input: Option<&Path>, output: Option<&Path>) -> Result<Self, PcapOpenError> {
        let source = input.map(open_source).transpose()?;
        let sink = match output {
            None => Sink::None,
            Some(p) => {
                let f = File::create(p).map_err(|e| PcapOpenError(format!("{}: {e}", p.display())))?;
                Sink::File(
                    PcapWriter::new(BufWriter::new(f)).map_err(|e| PcapOpenError(format!("{}: {e}", p.display())))?,
                )
            }
        };
        Ok(Self { info, source, sink, scratch: Vec::with_capacity(MAX_DATA) })
    }

    /// Opens `input` (if any) and records what the port transmits into
    /// `recorder`, as the interface of its port number.
    pub fn recording(info: PortInfo, input: Option<&Path>, recorder: Recorder) -> Result<Self, PcapOpenError> {
        let source = input.map(open_source).transpose()?;
        let interface = info.id as u32;
        Ok(Self { info, source, sink: Sink::Recorder(recorder, interface), scratch: Vec::with_capacity(MAX_DATA) })
    }

    fn next_record(&mut self) -> Option<Record> {
        let src = self.source.as_mut()?;
        let rec = match src {
            Source::Pcap(r) => {
                let link = r.header().datalink;
                match r.next_packet() {
                    None => None,
                    Some(Ok(p)) => Some(Ok(Record { link, data: p.data.into_owned() })),
                    Some(Err(e)) => Some(Err(e)),
                }
            }
            Source::PcapNg { reader, links } => loop {
                match reader.next_block() {
                    None => break None,
                    Some(Err(e)) => break Some(Err(e)),
                    Some(Ok(Block::SectionHeader(_))) => links.clear(),
                    Some(Ok(Block::InterfaceDescription(i))) => links.push(i.linktype),
                    Some(Ok(Block::EnhancedPacket(p))) => {
                        let link = links.get(p.interface_id as usize).copied().unwrap_or(DataLink::ETHERNET);
                        break Some(Ok(Record { link, data: p.data.into_owned() }));
                    }
                    Some(Ok(Block::SimplePacket(p))) => {
                        let link = links.first().copied().unwrap_or(DataLink::ETHERNET);
                        break Some(Ok(Record { link, data: p.data.into_owned() }));
                    }
                    Some(Ok(_)) => {}
                }
            },
        };
        match rec {
            Some(Ok(r)) => Some(r),
            Some(Err(_)) => {
                // A corrupt file ends the replay; everything before counted.
                self.info.counters.count_drop(READ_ERROR, 1);
                self.source = None;
                None
            }
            None => {
                self.source = None;
                None
            }
        }
    }
}

fn open_source(path: &Path) -> Result<Source, PcapOpenError> {
    let err = |e: &dyn std::fmt::Display| PcapOpenError(format!("{}: {e}", path.display()));
    let mut f = File::open(path).map_err(|e| err(&e))?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).map_err(|e| err(&e))?;
    let f = File::open(path).map_err(|e| err(&e))?;
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        let reader = PcapNgReader::new(BufReader::new(f)).map_err(|e| err(&e))?;
        let links = reader.interfaces().iter().map(|i| i.linktype).collect();
        Ok(Source::PcapNg { reader, links })
    } else {
        Ok(Source::Pcap(PcapReader::new(BufReader::new(f)).map_err(|e| err(&e))?))
    }
}

/// Converts a record to an Ethernet frame in `out`; `Err(reason)` if it
/// cannot be.
fn to_ethernet(link: DataLink, data: &[u8], out: &mut Vec<u8>) -> Result<(), usize> {
    out.clear();
    let (et, payload) = match link {
        DataLink::ETHERNET => {
            out.extend_from_slice(data);
            return Ok(());
        }
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => match data.first().map(|b| b >> 4) {
            Some(4) => (ethertype::IPV4, data),
            Some(6) => (ethertype::IPV6, data),
            _ => return Err(UNKNOWN_L3),
        },
        // BSD loopback: a 4-byte address family in host / network order.
        DataLink::NULL | DataLink::LOOP => {
            let Some(fam) = data.get(..4) else { return Err(UNKNOWN_L3) };
            let f = u32::from_le_bytes(fam.try_into().unwrap()).min(u32::from_be_bytes(fam.try_into().unwrap()));
            match f {
                2 => (ethertype::IPV4, &data[4..]),
                24 | 28 | 30 => (ethertype::IPV6, &data[4..]),
                _ => return Err(UNKNOWN_L3),
            }
        }
        // Linux cooked capture v1: 16-byte header, protocol at 14.
        DataLink::LINUX_SLL => {
            let Some(h) = data.get(..16) else { return Err(UNKNOWN_L3) };
            (u16::from_be_bytes([h[14], h[15]]), &data[16..])
        }
        _ => return Err(UNSUPPORTED),
    };
    out.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    out.extend_from_slice(&et.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

impl Port for PcapPort {
    fn info(&self) -> &PortInfo {
        &self.info
    }

    fn rx_burst(&mut self, pool: &mut FramePool, batch: &mut Batch) -> usize {
        batch.assert_pool(pool);
        let mut n = 0;
        let mut bytes = 0;
        while batch.room() > 0 {
            let Some(rec) = self.next_record() else { break };
            let mut scratch = std::mem::take(&mut self.scratch);
            let converted = to_ethernet(rec.link, &rec.data, &mut scratch);
            match converted {
                Err(reason) => self.info.counters.count_drop(reason, 1),
                Ok(()) if scratch.len() > MAX_DATA => self.info.counters.count_drop(OVERSIZED, 1),
                Ok(()) => match pool.desc_from(&scratch, Meta { port: self.info.id, ..Meta::default() }) {
                    None => self.info.counters.count_drop(NO_FRAME, 1),
                    Some(desc) => {
                        batch.push_desc(desc);
                        bytes += scratch.len() as u64;
                        n += 1;
                    }
                },
            }
            self.scratch = scratch;
        }
        self.info.counters.rx(n as u64, bytes);
        n
    }

    fn tx_burst(&mut self, pool: &mut FramePool, pkts: &mut Vec<PktDesc>) {
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut sent = 0;
        let mut bytes = 0;
        let recorder = match &self.sink {
            Sink::Recorder(r, i) => Some((r.clone(), *i)),
            _ => None,
        };
        let mut shared = recorder.as_ref().and_then(|(r, i)| r.0.lock().ok().map(|w| (w, *i)));
        for d in pkts.drain(..) {
            let data = &pool.frame(d.frame)[d.data_range()];
            let ok = match (&mut self.sink, shared.as_mut()) {
                (Sink::File(w), _) => {
                    w.write_packet(&PcapPacket::new(ts, data.len() as u32, data)).map(drop).map_err(io_text)
                }
                (Sink::Recorder(..), Some((w, interface))) => {
                    let epb = EnhancedPacketBlock {
                        interface_id: *interface,
                        timestamp: ts,
                        original_len: data.len() as u32,
                        data: Cow::Borrowed(data),
                        options: Vec::new(),
                    };
                    w.write_block(&Block::EnhancedPacket(epb)).map(drop).map_err(io_text)
                }
                (Sink::Recorder(..), None) => Err("the recorder's lock is poisoned".into()),
                (Sink::None, _) => Ok(()),
            };
            match ok {
                Ok(()) => {
                    sent += 1;
                    bytes += data.len() as u64;
                }
                Err(e) => {
                    self.info.counters.count_drop(WRITE_ERROR, 1);
                    self.fault(e);
                }
            }
            pool.free(d.frame);
        }
        self.info.counters.tx(sent, bytes);
    }

    fn exhausted(&self) -> bool {
        self.source.is_none()
    }

    fn finish(&mut self, _pool: &mut FramePool) {
        // What the buffer holds is written now, or its loss is said: a
        // writer dropped later would lose it silently.
        use std::io::Write;
        let flushed = match std::mem::replace(&mut self.sink, Sink::None) {
            Sink::File(w) => w.into_writer().flush().map_err(|e| e.to_string()),
            Sink::Recorder(r, i) => {
                let flushed = r.flush().map_err(|e| e.to_string());
                self.sink = Sink::Recorder(r, i);
                flushed
            }
            Sink::None => Ok(()),
        };
        if let Err(e) = flushed {
            self.fault(format!("the last packets were not written: {e}"));
        }
    }
}

/// A pcap-file error as the OS said it ("No space left on device", not
/// the crate's "Error reading bytes" around it).
fn io_text(e: pcap_file::PcapError) -> String {
    match e {
        pcap_file::PcapError::IoError(io) => io.to_string(),
        other => other.to_string(),
    }
}

impl PcapPort {
    /// Records the port's first write error (said once, on stderr too:
    /// the rest only count).
    #[cold]
    fn fault(&self, e: String) {
        if self.info.counters.fault.set(e.clone()).is_ok() {
            eprintln!("nfv: port {}: capture write failed: {e}; the run will end in error", self.info.counters.name);
        }
    }
}
