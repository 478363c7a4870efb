//! A worker's frame memory, and the AF_XDP sockets that share it.
//!
//! A worker without AF_XDP ports gets a heap arena. One with AF_XDP ports
//! gets an mmap'ed UMEM sized for every ring its sockets can fill, plus
//! `frames-per-worker` for batches and the other ports; its AF_XDP ports
//! share one registration of it (`XDP_SHARED_UMEM`) unless a port asks
//! for its own or the kernel refuses to share, in which case the same
//! memory is registered again: frames still move between ports by index.

use std::sync::Arc;

use crate::config::{AfXdpConfig, Config, PortKind};
use crate::frame::Arena;
use crate::port::{Port, PortInfo};
use crate::runtime::BuildError;

/// Drop reasons of an AF_XDP port (empty when built without AF_XDP).
#[cfg(feature = "af-xdp")]
pub const AFXDP_DROP_REASONS: &[&str] = crate::port::afxdp::AfXdpDrop::NAMES;
/// Drop reasons of an AF_XDP port (empty when built without AF_XDP).
#[cfg(not(feature = "af-xdp"))]
pub const AFXDP_DROP_REASONS: &[&str] = &[];

/// Frame memory of one worker and the UMEM registrations on it.
pub struct WorkerMemory {
    arena: Arc<Arena>,
    #[cfg(feature = "af-xdp")]
    batch: usize,
    #[cfg(feature = "af-xdp")]
    area: Option<Arc<crate::port::afxdp::umem::UmemArea>>,
    #[cfg(feature = "af-xdp")]
    shared: Option<Arc<crate::port::afxdp::umem::UmemReg>>,
    /// Startup notes (bind modes and why), one line per socket.
    pub notes: Vec<String>,
    /// nfv's XDP engine, when it replaces libxdp's program on the ports.
    pub xdp: Option<XdpPorts>,
}

/// The XDP engine the AF_XDP ports attach, and what it does on each
/// port (by [`crate::packet::PortId`]).
#[derive(Clone)]
pub struct XdpPorts {
    /// The engine.
    pub engine: Arc<dyn crate::offload::Engine>,
    /// Its work per port, from the plan.
    pub programs: Arc<[crate::offload::PortProgram]>,
    /// Every port's interface (0: not a device), for cross-connects.
    pub ifindex: Arc<[u32]>,
}

impl WorkerMemory {
    /// Sizes and maps worker `wi`'s memory for the ports of `cfg`.
    pub fn new(cfg: &Config, wi: usize) -> Result<Self, BuildError> {
        let batch = cfg.run.batch_size;
        // One socket per polled queue of an AF_XDP port, or one tx-only
        // socket for an AF_XDP port the worker does not poll.
        let w = &cfg.workers[wi];
        let xdp: Vec<&AfXdpConfig> = cfg
            .ports
            .iter()
            .enumerate()
            .filter_map(|(pid, p)| match &p.kind {
                PortKind::AfXdp(a) => Some((pid, a)),
                _ => None,
            })
            .flat_map(|(pid, a)| {
                let polled = w.rx.iter().filter(|(p, _)| *p as usize == pid).count();
                std::iter::repeat_n(a, polled.max(1))
            })
            .collect();
        if xdp.is_empty() {
            return Ok(Self::heap(cfg.run.frames_per_worker, batch));
        }
        #[cfg(not(feature = "af-xdp"))]
        {
            Err(BuildError(
                "this nfv was built without the `af-xdp` feature; rebuild with it to use af-xdp ports".into(),
            ))
        }
        #[cfg(feature = "af-xdp")]
        {
            // Every socket can hold a full fill ring and a full tx ring of
            // frames, plus a batch in flight either way. Frames waiting in
            // rx and completion rings come out of the fill/tx share, and
            // `frames-per-worker` covers batches and the other ports: a
            // short pool only means a smaller refill, never a stall.
            let in_rings: u32 = xdp.iter().map(|a| a.fill_ring + a.tx_ring + 2 * batch as u32).sum();
            let frames = cfg.run.frames_per_worker + in_rings;
            let area = crate::port::afxdp::umem::UmemArea::new(frames).map_err(|e| {
                BuildError(format!(
                    "worker {wi}: cannot map {} MiB of frame memory: {e}",
                    (frames as usize * 2048) >> 20
                ))
            })?;
            let notes = match area.hugetlb {
                true => vec![format!(
                    "worker {wi}: frame memory in {} huge pages of 2 MiB (the node's pool)",
                    area.len().div_ceil(2 << 20)
                )],
                false => Vec::new(),
            };
            Ok(Self { arena: area.arena(), batch, area: Some(area), shared: None, notes, xdp: None })
        }
    }

    /// A heap arena, for workers (and benches) without AF_XDP ports.
    pub fn heap(frames: u32, batch: usize) -> Self {
        #[cfg(not(feature = "af-xdp"))]
        let _ = batch;
        Self {
            arena: Arena::heap(frames),
            #[cfg(feature = "af-xdp")]
            batch,
            #[cfg(feature = "af-xdp")]
            area: None,
            #[cfg(feature = "af-xdp")]
            shared: None,
            notes: Vec::new(),
            xdp: None,
        }
    }

    /// The arena the worker's pool and batches use.
    pub fn arena(&self) -> Arc<Arena> {
        self.arena.clone()
    }

    /// Opens an AF_XDP socket on `cfg.interface` queue `queue` in this
    /// memory. `tx_only` sockets leave the interface's traffic to the
    /// kernel (no XDP program, no XSKMAP entry).
    #[cfg(feature = "af-xdp")]
    pub fn open_af_xdp(
        &mut self,
        info: PortInfo,
        cfg: &AfXdpConfig,
        queue: u16,
        tx_only: bool,
    ) -> Result<Box<dyn Port>, BuildError> {
        use crate::config::UmemSharing;
        use crate::port::afxdp::{AfXdpPort, umem::UmemReg};
        let area = self.area.as_ref().expect("memory of a worker with af-xdp ports is a UMEM").clone();
        let name = info.name.clone();
        let fail = |e: std::io::Error| BuildError(format!("port `{name}`: {e}"));
        let fresh = move || UmemReg::register(&area, cfg.fill_ring, cfg.comp_ring).map_err(umem_hint);
        let (mut reg, sharing) = match (cfg.umem, &self.shared) {
            (UmemSharing::Shared, Some(r)) => (r.clone(), true),
            _ => (fresh().map_err(fail)?, false),
        };
        let program = self.xdp.as_ref().map(|x| x.programs.get(info.id as usize).copied().unwrap_or_default());
        let engine = self.xdp.as_ref().map(|x| x.engine.clone());
        let ifindexes = self.xdp.as_ref().map(|x| x.ifindex.clone()).unwrap_or_else(|| Arc::from(Vec::new()));
        // nfv's XDP engine in place of libxdp's program: attached as the
        // socket bound (driver mode, generic where the device has no
        // hook), the socket added to its map.
        let attach = |ifindex: u32, driver: bool, fd| -> std::io::Result<(bool, String)> {
            let (Some(e), Some(p)) = (&engine, program) else { unreachable!("only given with an engine") };
            let mode = if driver { cfg.mode } else { crate::config::XdpMode::Skb };
            let peer = p.patch_to.and_then(|q| ifindexes.get(q as usize).copied()).unwrap_or(0);
            let (driver, note) = e.attach(ifindex, mode, p, peer).map_err(std::io::Error::other)?;
            e.add_socket(ifindex, queue as u32, fd).map_err(std::io::Error::other)?;
            Ok((driver, note))
        };
        // The AF_XDP device plugin's program instead: the socket goes into
        // the XSK map its server hands over, at its queue.
        let plugin = |_ifindex: u32, driver: bool, fd: std::os::fd::RawFd| -> std::io::Result<(bool, String)> {
            let path = cfg.xsk_map_socket.as_deref().expect("only given with a socket");
            let map = crate::port::afxdp::device_plugin::xsk_map(path, &cfg.interface)?;
            let key = queue as u32;
            // SAFETY: the map's fd and key and value of its sizes (u32).
            let rc = unsafe {
                libbpf_sys::bpf_map_update_elem(
                    std::os::fd::AsRawFd::as_raw_fd(&map),
                    (&key as *const u32).cast(),
                    (&fd as *const i32).cast(),
                    libbpf_sys::BPF_ANY as u64,
                )
            };
            if rc != 0 {
                let e = std::io::Error::from_raw_os_error(-rc);
                return Err(std::io::Error::other(format!("the device plugin's XSK map refused the socket: {e}")));
            }
            Ok((driver, format!("XSK map from the AF_XDP device plugin ({})", path.display())))
        };
        let own: Option<&crate::port::afxdp::OwnProgram<'_>> = match (&cfg.xsk_map_socket, &engine) {
            (Some(_), _) => Some(&plugin as _),
            (None, Some(_)) => Some(&attach as _),
            (None, None) => None,
        };
        let open = |reg: &mut Arc<UmemReg>, info: PortInfo| {
            AfXdpPort::open(info, cfg, queue, reg, &fresh, self.batch, tx_only, own)
        };
        let (port, report) = match open(&mut reg, info.clone()) {
            Ok(p) => p,
            // Sharing across devices needs the same bind mode on both; if
            // the kernel refuses, register the memory again for this port.
            Err(e) if sharing => {
                reg = fresh().map_err(fail)?;
                let (port, mut report) = open(&mut reg, info.clone()).map_err(fail)?;
                report.push_str(&format!("; shared UMEM refused ({e}), registered separately"));
                (port, report)
            }
            Err(e) => return Err(fail(e)),
        };
        if cfg.umem == UmemSharing::Shared && self.shared.is_none() {
            self.shared = Some(reg);
        }
        self.notes.push(report);
        Ok(Box::new(port))
    }

    /// Without the feature there is nothing to open.
    #[cfg(not(feature = "af-xdp"))]
    pub fn open_af_xdp(
        &mut self,
        info: PortInfo,
        _cfg: &AfXdpConfig,
        _queue: u16,
        _tx_only: bool,
    ) -> Result<Box<dyn Port>, BuildError> {
        Err(BuildError(format!("port `{}`: this nfv was built without the `af-xdp` feature", info.name)))
    }
}

/// Explains the usual reason registration fails.
#[cfg(feature = "af-xdp")]
fn umem_hint(e: std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(libc::ENOBUFS) | Some(libc::ENOMEM) | Some(libc::EPERM) => std::io::Error::new(
            e.kind(),
            format!(
                "cannot register UMEM ({e}): the memlock limit is too small; run as root (CAP_IPC_LOCK), \
                 raise `ulimit -l`, or lower frames-per-worker and ring sizes"
            ),
        ),
        _ => e,
    }
}
