//! What a NIC can do for nfv, as the running kernel reports it: `nfv hw
//! probe IFACE` reads the netdev netlink family (XDP, AF_XDP and RX/TX
//! metadata features), ethtool over netlink (channels, rings, RSS) and
//! sysfs (driver, PCI id), and writes a hardware profile
//! ([`nfv_core::hwprofile`]) that `nfv check` accepts.

#[cfg(feature = "xdp")]
pub mod blast;
pub mod genl;
#[cfg(feature = "xdp")]
pub mod plugin;
pub mod probe;
#[cfg(feature = "xdp")]
pub mod receiver;
#[cfg(feature = "xdp")]
pub mod xdp;
