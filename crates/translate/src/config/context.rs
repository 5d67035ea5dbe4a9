//! `[context]`: what a change of address space does to cached translations.

#[allow(unused_imports)]
use super::*;

/// What happens to cached translations when the running address space or
/// VM changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContextConfig {
    /// `flush` (every switch empties the TLBs and page-walk caches) or
    /// `tagged` (entries carry an address-space id from a finite pool)
    /// [default: tagged].
    #[serde(default)]
    pub switch: SwitchPolicy,
    /// `tagged`: address-space ids per VM: 4096 for x86's 12-bit PCIDs, 6 for
    /// the dynamic ASIDs Linux keeps per CPU. When they run out, the least
    /// recently used id is recycled and only its entries are flushed
    /// [default: 4096].
    #[serde(default = "default_ids")]
    pub ids: u32,
    /// Entries carry the VM's id too (Intel VPID, AMD ASID, Arm VMID): a
    /// switch between VMs keeps them. Without, a switch between VMs, and
    /// every VM exit, flushes [default: true].
    #[serde(default = "default_true")]
    pub vm_tags: bool,
}

fn default_ids() -> u32 {
    4096
}

fn default_true() -> bool {
    true
}

impl Default for ContextConfig {
    fn default() -> ContextConfig {
        ContextConfig { switch: SwitchPolicy::default(), ids: default_ids(), vm_tags: true }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SwitchPolicy {
    Flush,
    #[default]
    Tagged,
}
