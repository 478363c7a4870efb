//! Multus's `k8s.v1.cni.cncf.io/network-status` annotation as a pod reads
//! it from a downward-API volume: the attachments the CNI plugins made,
//! each with the interface it has in the pod and, for a device such as
//! an SR-IOV VF, its Device Information (the Network Plumbing Working
//! Group's device-info spec: `type = "pci"`, `pci.pci-address`).
//!
//! A downward-API file of one annotation
//! (`metadata.annotations['k8s.v1.cni.cncf.io/network-status']`) holds
//! its value as is; a file of all of them (`metadata.annotations`) holds
//! one `key="value"` line each, the value quoted as Go's `strconv.Quote`
//! writes it (Kubernetes `pkg/fieldpath` `FormatMap`). Both are read.

use serde::Deserialize;

/// The annotation Multus writes.
pub const NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";

/// One attachment of the pod (an element of network-status).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Attachment {
    /// The attachment's network: `namespace/name` of its
    /// NetworkAttachmentDefinition (or the cluster network's name).
    pub name: String,
    /// The interface's name in the pod (`net1`).
    #[serde(default)]
    pub interface: Option<String>,
    /// Addresses the CNI plugin's IPAM gave it.
    #[serde(default)]
    pub ips: Vec<String>,
    /// Its MAC address.
    #[serde(default)]
    pub mac: Option<String>,
    /// The cluster's default network.
    #[serde(default)]
    pub default: bool,
    /// Device Information, where the plugin gave it.
    #[serde(default)]
    pub device_info: Option<DeviceInfo>,
}

/// Device Information (device-info spec 1.x): what the attachment's
/// device is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeviceInfo {
    /// `pci`, `vdpa`, `vhost-user`, `memif`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `pci`: its addresses.
    #[serde(default)]
    pub pci: Option<PciInfo>,
}

/// A PCI device's addresses (device-info spec, `pci`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PciInfo {
    /// The device (a VF): `0000:18:02.5`.
    #[serde(default)]
    pub pci_address: Option<String>,
    /// Its physical function.
    #[serde(default)]
    pub pf_pci_address: Option<String>,
}

/// The attachments in `text`, a downward-API file of the network-status
/// annotation alone or of every annotation.
pub fn network_status(text: &str) -> Result<Vec<Attachment>, String> {
    let value = match text.trim_start().starts_with('[') {
        true => text.to_string(),
        false => {
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(NETWORK_STATUS)?.strip_prefix('='))
                .ok_or_else(|| format!("no `{NETWORK_STATUS}` annotation"))?;
            unquote(line.trim_end())?
        }
    };
    serde_json::from_str(&value).map_err(|e| format!("`{NETWORK_STATUS}` is not Multus's JSON: {e}"))
}

/// A Go-quoted string (`strconv.Quote`) without its quotes and escapes.
fn unquote(q: &str) -> Result<String, String> {
    let inner = q
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| format!("a quoted value was expected, not `{}`", q.chars().take(40).collect::<String>()))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    let bad = || "a bad escape in the annotation's value".to_string();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Result<u32, String> {
            let s: String = chars.take(n).collect();
            if s.len() != n {
                return Err(bad());
            }
            u32::from_str_radix(&s, 16).map_err(|_| bad())
        };
        match chars.next().ok_or_else(bad)? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            c @ ('\\' | '"' | '\'') => out.push(c),
            'x' => out.push(char::from_u32(hex(&mut chars, 2)?).ok_or_else(bad)?),
            'u' => out.push(char::from_u32(hex(&mut chars, 4)?).ok_or_else(bad)?),
            'U' => out.push(char::from_u32(hex(&mut chars, 8)?).ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Multus's documented shape: the cluster network first, then an
    /// SR-IOV attachment with its Device Information.
    const STATUS: &str = r#"[{
    "name": "cbr0",
    "interface": "eth0",
    "ips": ["10.244.1.24"],
    "mac": "4e:8e:fd:53:16:4b",
    "default": true,
    "dns": {}
},{
    "name": "cnf/sriov-n3",
    "interface": "net1",
    "ips": ["10.10.0.1"],
    "mac": "ca:fe:c0:ff:ee:01",
    "dns": {},
    "device-info": {
        "type": "pci",
        "version": "1.1.0",
        "pci": {
            "pci-address": "0000:18:02.5",
            "pf-pci-address": "0000:18:00.0"
        }
    }
}]"#;

    #[test]
    fn the_annotation_alone_and_among_all_annotations_read_alike() {
        let one = network_status(STATUS).unwrap();
        assert_eq!(one.len(), 2);
        assert!(one[0].default);
        let vf = &one[1];
        assert_eq!((vf.name.as_str(), vf.interface.as_deref()), ("cnf/sriov-n3", Some("net1")));
        let pci = vf.device_info.as_ref().unwrap().pci.as_ref().unwrap();
        assert_eq!(pci.pci_address.as_deref(), Some("0000:18:02.5"));
        // As Kubernetes writes every annotation: key="Go-quoted value".
        let quoted = format!("{STATUS:?}");
        let all =
            format!("kubernetes.io/config.seen=\"2026-12-04T10:00:00Z\"\n{NETWORK_STATUS}={quoted}\nother=\"x\"\n");
        assert_eq!(network_status(&all).unwrap(), one);
        assert!(network_status("other=\"x\"\n").unwrap_err().contains("no `k8s.v1.cni.cncf.io/network-status`"));
        assert!(network_status("[{\"nam\": 1}]").unwrap_err().contains("not Multus's JSON"));
        assert_eq!(unquote(r#""a\"b\\c\u00e9\x41""#).unwrap(), "a\"b\\céA");
    }
}
