//! Pod discovery: what Kubernetes handed the pod, read before the
//! configuration is checked, so that a port may name an attachment or a
//! device-plugin resource instead of an interface, and `nfv check --pod`
//! and the start-up log can say what was found and how each port was
//! matched.
//!
//! Sources: Multus's network-status annotation in a downward-API volume
//! ([`annotations`]), the SR-IOV and AF_XDP device plugins' environment
//! variables and sysfs ([`devices`]), the process's CPUs and the node's
//! huge pages ([`cpus`]). Every path is taken from [`PodEnv`], so tests
//! give fixture trees.

pub mod annotations;
pub mod cpus;
pub mod devices;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use annotations::Attachment;

/// Where discovery looks: the process's environment and the usual paths,
/// or fixtures.
#[derive(Clone, Debug)]
pub struct PodEnv {
    /// Environment variables.
    pub vars: BTreeMap<String, String>,
    /// The downward-API directory: `network-status` (the annotation
    /// alone) or `annotations` (all of them). `NFV_PODINFO`, default
    /// `/etc/podinfo`.
    pub podinfo: PathBuf,
    /// sysfs. `NFV_SYSFS`, default `/sys`.
    pub sysfs: PathBuf,
    /// procfs (`/proc`).
    pub proc_root: PathBuf,
    /// The cgroup v2 hierarchy (`/sys/fs/cgroup`).
    pub cgroup: PathBuf,
}

impl PodEnv {
    /// This process's.
    pub fn from_process() -> Self {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        let path = |var: &str, default: &str| PathBuf::from(vars.get(var).map_or(default, String::as_str));
        Self {
            podinfo: path("NFV_PODINFO", "/etc/podinfo"),
            sysfs: path("NFV_SYSFS", "/sys"),
            proc_root: PathBuf::from("/proc"),
            cgroup: PathBuf::from("/sys/fs/cgroup"),
            vars,
        }
    }
}

/// How a port names its device in a pod (`interface = { network = ... }`
/// or `{ resource = ..., index = ... }`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodDevice {
    /// A network attachment by its NetworkAttachmentDefinition's name
    /// (`sriov-n3`, or `namespace/sriov-n3`).
    #[serde(default)]
    pub network: Option<String>,
    /// A device-plugin resource (`intel.com/sriov_n3`): its `index`th
    /// device.
    #[serde(default)]
    pub resource: Option<String>,
    /// Which of the resource's devices (from 0).
    #[serde(default)]
    pub index: usize,
}

impl PodDevice {
    /// Exactly one of `network` and `resource`.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.network, &self.resource) {
            (Some(_), None) | (None, Some(_)) => Ok(()),
            _ => Err("name the pod's device by `network` or by `resource`, one of them".into()),
        }
    }
}

/// What the pod has.
#[derive(Clone, Debug, Default)]
pub struct Pod {
    /// Running in a Kubernetes pod (the service environment, or a
    /// network-status file).
    pub in_pod: bool,
    /// Multus's attachments, and the file they were read from.
    pub attachments: Vec<Attachment>,
    /// See `attachments`.
    pub status_file: Option<PathBuf>,
    /// Why the network-status file could not be read, if one was there.
    pub status_error: Option<String>,
    /// The files looked for.
    pub status_looked: Vec<PathBuf>,
    /// The SR-IOV device plugin's resources: variable, PCI addresses.
    pub pci_resources: Vec<(String, Vec<String>)>,
    /// The AF_XDP device plugin's: variable, netdevs.
    pub afxdp_resources: Vec<(String, Vec<String>)>,
    /// The CPUs this process may run on, as it started.
    pub cpus: Vec<usize>,
    /// The cgroup's cpuset, where there is one.
    pub cpuset: Option<Vec<usize>>,
    /// Huge pages.
    pub huge: cpus::HugePages,
    sysfs: PathBuf,
}

impl Pod {
    /// Reads what `env` shows.
    pub fn discover(env: &PodEnv) -> Self {
        let mut pod = Pod { sysfs: env.sysfs.clone(), ..Pod::default() };
        for name in ["network-status", "annotations"] {
            let f = env.podinfo.join(name);
            pod.status_looked.push(f.clone());
            let Ok(text) = std::fs::read_to_string(&f) else { continue };
            match annotations::network_status(&text) {
                Ok(a) => {
                    pod.attachments = a;
                    pod.status_file = Some(f);
                    pod.status_error = None;
                    break;
                }
                Err(e) => pod.status_error = Some(format!("{}: {e}", f.display())),
            }
        }
        for (k, v) in &env.vars {
            if k.starts_with("PCIDEVICE_") && !k.ends_with("_INFO") {
                pod.pci_resources.push((k.clone(), devices::pci_list(v)));
            } else if k.starts_with("AFXDP_DEVICES") {
                pod.afxdp_resources.push((k.clone(), devices::netdev_list(v)));
            }
        }
        pod.in_pod = env.vars.contains_key("KUBERNETES_SERVICE_HOST") || pod.status_file.is_some();
        pod.cpus = cpus::affinity();
        pod.cpuset = cpus::cgroup_cpuset(&env.proc_root, &env.cgroup);
        pod.huge = cpus::huge_pages(&env.proc_root);
        pod
    }

    /// The interface `d` names, and how it was matched; an error says
    /// where it looked.
    pub fn resolve(&self, d: &PodDevice) -> Result<(String, String), String> {
        match (&d.network, &d.resource) {
            (Some(n), _) => self.by_network(n),
            (None, Some(r)) => self.by_resource(r, d.index),
            (None, None) => Err("no `network` or `resource` named".into()),
        }
    }

    fn by_network(&self, n: &str) -> Result<(String, String), String> {
        let Some(file) = &self.status_file else {
            let looked: Vec<String> = self.status_looked.iter().map(|p| p.display().to_string()).collect();
            let why = self.status_error.clone().unwrap_or_else(|| format!("looked for {}", looked.join(" and ")));
            return Err(format!(
                "network `{n}`: no Multus network-status ({why}; a downward-API volume of the pod's `{}` \
                 annotation, NFV_PODINFO names its directory)",
                annotations::NETWORK_STATUS
            ));
        };
        let a =
            self.attachments.iter().find(|a| a.name == n || a.name.rsplit('/').next() == Some(n)).ok_or_else(|| {
                let names: Vec<&str> = self.attachments.iter().map(|a| a.name.as_str()).collect();
                format!("network `{n}`: not among the pod's attachments in {} ({})", file.display(), names.join(", "))
            })?;
        let pci = a.device_info.as_ref().and_then(|d| d.pci.as_ref()).and_then(|p| p.pci_address.clone());
        let at = pci.as_deref().map(|p| format!(", PCI {p}")).unwrap_or_default();
        if let Some(i) = &a.interface {
            return Ok((i.clone(), format!("network `{}`: interface {i}{at} (Multus network-status)", a.name)));
        }
        let pci =
            pci.ok_or_else(|| format!("network `{}`: its status names no interface and no PCI device", a.name))?;
        let i = self.netdev_of(&pci)?;
        Ok((i.clone(), format!("network `{}`: PCI {pci}, interface {i} by sysfs", a.name)))
    }

    fn by_resource(&self, r: &str, index: usize) -> Result<(String, String), String> {
        let var = devices::pcidevice_var(r);
        if let Some((_, list)) = self.pci_resources.iter().find(|(k, _)| *k == var) {
            let pci = list
                .get(index)
                .ok_or_else(|| format!("resource `{r}`: {var} lists {} device(s), not an index {index}", list.len()))?;
            let i = self.netdev_of(pci)?;
            return Ok((i.clone(), format!("resource `{r}` #{index}: {var} PCI {pci}, interface {i} by sysfs")));
        }
        // The AF_XDP device plugin's resources are `afxdp/POOL`; it lists
        // every AF_XDP device the container got in one variable.
        if r.starts_with("afxdp/")
            && let Some((k, list)) = self.afxdp_resources.iter().find(|(k, _)| k == "AFXDP_DEVICES")
        {
            let i = list
                .get(index)
                .ok_or_else(|| format!("resource `{r}`: {k} lists {} device(s), not an index {index}", list.len()))?;
            return Ok((i.clone(), format!("resource `{r}` #{index}: {k} interface {i} (AF_XDP device plugin)")));
        }
        let seen: Vec<&str> = self.pci_resources.iter().chain(&self.afxdp_resources).map(|(k, _)| k.as_str()).collect();
        Err(format!(
            "resource `{r}`: no {var} in the environment (the SR-IOV device plugin sets it in a container that \
             requests `{r}`; found: {})",
            if seen.is_empty() { "no device-plugin variables".to_string() } else { seen.join(", ") }
        ))
    }

    /// The netdev of PCI device `pci`, or why there is none.
    fn netdev_of(&self, pci: &str) -> Result<String, String> {
        let dev = devices::pci_device(&self.sysfs, pci)
            .ok_or_else(|| format!("PCI device {pci} is not in {}", self.sysfs.join("bus/pci/devices").display()))?;
        dev.netdev.ok_or_else(|| match dev.driver.as_deref() {
            Some(d @ ("vfio-pci" | "uio_pci_generic" | "igb_uio")) => format!(
                "PCI device {pci} is bound to {d}, which makes no netdev: AF_XDP needs the kernel's driver (iavf, \
                 ice, i40e, mlx5_core); bind the VF back, or mark the SR-IOV resource `deviceType: netdevice`"
            ),
            Some(d) => format!("PCI device {pci} (driver {d}) has no netdev in this network namespace"),
            None => format!("PCI device {pci} has no driver bound"),
        })
    }

    /// What was found, for `nfv check --pod`.
    pub fn render(&self) -> String {
        let mut out = format!("pod: {}\n", if self.in_pod { "yes" } else { "no (no Kubernetes environment)" });
        match &self.status_file {
            Some(f) => {
                out += &format!("network-status: {} attachment(s) from {}\n", self.attachments.len(), f.display());
                for a in &self.attachments {
                    let pci = a.device_info.as_ref().and_then(|d| d.pci.as_ref()).and_then(|p| p.pci_address.clone());
                    out += &format!(
                        "  {:<24} interface {:<8} ips {}{}{}\n",
                        a.name,
                        a.interface.as_deref().unwrap_or("-"),
                        if a.ips.is_empty() { "-".to_string() } else { a.ips.join(",") },
                        pci.map(|p| format!(" pci {p}")).unwrap_or_default(),
                        if a.default { " (default network)" } else { "" }
                    );
                }
            }
            None => {
                let looked: Vec<String> = self.status_looked.iter().map(|p| p.display().to_string()).collect();
                out += &format!("network-status: none (looked for {})\n", looked.join(", "));
                if let Some(e) = &self.status_error {
                    out += &format!("  {e}\n");
                }
            }
        }
        for (k, v) in self.pci_resources.iter().chain(&self.afxdp_resources) {
            out += &format!("device plugin: {k} = {}\n", v.join(","));
        }
        out += &format!("cpus: {} (affinity)", cpus::format_list(&self.cpus));
        if let Some(c) = &self.cpuset {
            out += &format!(", cgroup cpuset {}", cpus::format_list(c));
        }
        let h = &self.huge;
        out += &format!(
            "\nhuge pages: {} of {} free ({} KiB each), hugetlbfs mounts: {}\n",
            h.free,
            h.total,
            h.size_kib,
            if h.mounts.is_empty() { "none".to_string() } else { h.mounts.join(", ") }
        );
        out
    }
}

/// This process's pod, discovered once (before any worker pins itself).
pub fn current() -> &'static Pod {
    static POD: std::sync::OnceLock<Pod> = std::sync::OnceLock::new();
    POD.get_or_init(|| Pod::discover(&PodEnv::from_process()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pod's fixture tree: the downward-API file, a sysfs with a VF on
    /// its kernel driver (netdev `ens1f0v3` in the host's name, as sysfs
    /// shows a VF not moved into the pod) and one bound to vfio-pci.
    fn fixture(name: &str, status: Option<&str>, vars: &[(&str, &str)]) -> PodEnv {
        let root = std::env::temp_dir().join(format!("nfv-pod-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dev = |bdf: &str| root.join("sys/bus/pci/devices").join(bdf);
        std::fs::create_dir_all(dev("0000:18:02.5").join("net/ens1f0v3")).unwrap();
        std::fs::create_dir_all(root.join("sys/bus/pci/drivers/iavf")).unwrap();
        std::fs::create_dir_all(root.join("sys/bus/pci/drivers/vfio-pci")).unwrap();
        std::os::unix::fs::symlink(root.join("sys/bus/pci/drivers/iavf"), dev("0000:18:02.5").join("driver")).unwrap();
        std::fs::create_dir_all(dev("0000:18:02.6")).unwrap();
        std::os::unix::fs::symlink(root.join("sys/bus/pci/drivers/vfio-pci"), dev("0000:18:02.6").join("driver"))
            .unwrap();
        std::fs::create_dir_all(root.join("podinfo")).unwrap();
        if let Some(s) = status {
            std::fs::write(root.join("podinfo/network-status"), s).unwrap();
        }
        PodEnv {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            podinfo: root.join("podinfo"),
            sysfs: root.join("sys"),
            proc_root: PathBuf::from("/proc"),
            cgroup: PathBuf::from("/sys/fs/cgroup"),
        }
    }

    const STATUS: &str = r#"[{"name":"cbr0","interface":"eth0","ips":["10.244.1.24"],"default":true,"dns":{}},
        {"name":"cnf/sriov-n3","interface":"net1","ips":["10.10.0.1"],"mac":"ca:fe:c0:ff:ee:01","dns":{},
         "device-info":{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:18:02.5"}}},
        {"name":"cnf/sriov-n6","ips":[],"dns":{},
         "device-info":{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:18:02.5"}}}]"#;

    fn network(n: &str) -> PodDevice {
        PodDevice { network: Some(n.into()), resource: None, index: 0 }
    }

    fn resource(r: &str, index: usize) -> PodDevice {
        PodDevice { network: None, resource: Some(r.into()), index }
    }

    #[test]
    fn networks_are_found_by_name_with_or_without_namespace_and_by_pci_through_sysfs() {
        let env = fixture("net", Some(STATUS), &[("KUBERNETES_SERVICE_HOST", "10.96.0.1")]);
        let pod = Pod::discover(&env);
        assert!(pod.in_pod);
        let (i, how) = pod.resolve(&network("sriov-n3")).unwrap();
        assert_eq!(i, "net1");
        assert!(how.contains("cnf/sriov-n3") && how.contains("PCI 0000:18:02.5"), "{how}");
        assert_eq!(pod.resolve(&network("cnf/sriov-n3")).unwrap().0, "net1");
        let (i, how) = pod.resolve(&network("sriov-n6")).unwrap();
        assert_eq!((i.as_str(), how.contains("by sysfs")), ("ens1f0v3", true), "no interface in the status: sysfs");
        let e = pod.resolve(&network("sriov-n9")).unwrap_err();
        assert!(e.contains("not among the pod's attachments") && e.contains("cbr0, cnf/sriov-n3"), "{e}");
        assert!(pod.render().contains("cnf/sriov-n3             interface net1"), "{}", pod.render());
    }

    #[test]
    fn resources_are_found_by_the_device_plugins_variables_and_their_absence_is_explained() {
        let vars = [("PCIDEVICE_INTEL_COM_SRIOV_N3", "0000:18:02.5,0000:18:02.6"), ("AFXDP_DEVICES", "ens801f0v1")];
        let pod = Pod::discover(&fixture("res", None, &vars));
        assert!(!pod.in_pod, "no service environment, no network-status");
        let (i, how) = pod.resolve(&resource("intel.com/sriov_n3", 0)).unwrap();
        assert_eq!(i, "ens1f0v3");
        assert!(how.contains("PCIDEVICE_INTEL_COM_SRIOV_N3 PCI 0000:18:02.5"), "{how}");
        let e = pod.resolve(&resource("intel.com/sriov_n3", 1)).unwrap_err();
        assert!(e.contains("bound to vfio-pci") && e.contains("deviceType: netdevice"), "{e}");
        assert!(pod.resolve(&resource("intel.com/sriov_n3", 2)).unwrap_err().contains("lists 2 device(s)"));
        let e = pod.resolve(&resource("intel.com/sriov_n6", 0)).unwrap_err();
        assert!(e.contains("no PCIDEVICE_INTEL_COM_SRIOV_N6") && e.contains("PCIDEVICE_INTEL_COM_SRIOV_N3"), "{e}");
        let (i, how) = pod.resolve(&resource("afxdp/pool1", 0)).unwrap();
        assert_eq!((i.as_str(), how.contains("AF_XDP device plugin")), ("ens801f0v1", true));
        let e = pod.resolve(&network("sriov-n3")).unwrap_err();
        assert!(e.contains("no Multus network-status") && e.contains("podinfo/network-status"), "{e}");
    }
}
