//! Devices a device plugin handed the pod, from its environment: the
//! SR-IOV network device plugin's `PCIDEVICE_<RESOURCE>` (PCI addresses,
//! comma-separated; the resource name upper-cased, `.` and `/` and `-`
//! turned to `_`), the AF_XDP device plugin's `AFXDP_DEVICES` (netdev
//! names); and the netdev a PCI address has, from sysfs
//! (`bus/pci/devices/<address>/net/<name>`).

use std::path::Path;

/// The environment variable the SR-IOV device plugin sets for `resource`
/// (`intel.com/sriov_n3` -> `PCIDEVICE_INTEL_COM_SRIOV_N3`).
pub fn pcidevice_var(resource: &str) -> String {
    let name: String =
        resource.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("PCIDEVICE_{name}")
}

/// The PCI addresses `value` lists (a `PCIDEVICE_*` variable).
pub fn pci_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The netdevs `value` lists (an `AFXDP_DEVICES*` variable: names
/// separated by spaces or commas).
pub fn netdev_list(value: &str) -> Vec<String> {
    value.split([' ', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// What sysfs (rooted at `sysfs`) says of PCI device `address`: its netdev
/// (the first under `net/`), its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciDevice {
    /// The kernel's interface for it, if its driver made one.
    pub netdev: Option<String>,
    /// Its driver (`iavf`, `mlx5_core`, `vfio-pci`), if bound.
    pub driver: Option<String>,
}

/// Looks PCI device `address` up under `sysfs`; `None` when there is no
/// such device.
pub fn pci_device(sysfs: &Path, address: &str) -> Option<PciDevice> {
    let dev = sysfs.join("bus/pci/devices").join(address);
    if !dev.exists() {
        return None;
    }
    let mut names: Vec<String> = std::fs::read_dir(dev.join("net"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    let driver = std::fs::read_link(dev.join("driver"))
        .ok()
        .and_then(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()));
    Some(PciDevice { netdev: names.into_iter().next(), driver })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_and_lists_as_the_plugins_write_them() {
        assert_eq!(pcidevice_var("intel.com/sriov_n3"), "PCIDEVICE_INTEL_COM_SRIOV_N3");
        assert_eq!(pcidevice_var("nvidia.com/cx6-vf"), "PCIDEVICE_NVIDIA_COM_CX6_VF");
        assert_eq!(pci_list("0000:18:02.5,0000:18:02.6"), ["0000:18:02.5", "0000:18:02.6"]);
        assert_eq!(netdev_list("ens801f0v1 ens801f0v2"), ["ens801f0v1", "ens801f0v2"]);
    }
}
