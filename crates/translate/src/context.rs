//! Address spaces, VMs and the ids that tag their cached translations.
//!
//! Each (VM, context) pair of the trace is an address space, numbered in
//! order of first appearance across the run (`SpaceId`) and within its VM.
//! What a TLB or split page-walk-cache entry carries to tell address spaces
//! apart is a `HardwareTag`: the address-space id the space holds in its
//! VM's pool (a PCID or ASID) and, with VM tags, the VM (a VPID or VMID).
//! This module decides, at each change of address space, what the change
//! is (a context switch or a VM switch), whether the `[context]` policy
//! flushes, and which id the space runs with; the simulator applies what
//! it decides to the TLBs and walkers.

use rustc_hash::FxHashMap;

use crate::config::{ContextConfig, SwitchPolicy};

/// An address space, numbered across the run in order of first appearance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpaceId(pub usize);

/// A VM, numbered in order of first appearance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VmId(pub usize);

/// What a cached translation is tagged with: the VM part (the VM's number
/// plus one with VM tags, else 0) in the high 16 bits, the address-space id
/// in the low 16. 0 where nothing needs telling apart (flush at every
/// switch). The packing is written here and nowhere else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HardwareTag(pub u32);

impl HardwareTag {
    /// The tag of entries of address-space id `id` in the VM whose part is
    /// `vm_part`.
    pub fn new(vm_part: u32, id: u16) -> HardwareTag {
        HardwareTag((vm_part << 16) | u32::from(id))
    }

    /// The VM part of VM `vm`: its number plus one with VM tags, else 0.
    pub fn vm_part(vm: VmId, vm_tags: bool) -> u32 {
        if vm_tags {
            vm.0 as u32 + 1
        } else {
            0
        }
    }
}

/// The address space running now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Current {
    /// The trace's (VM, context), `None` before the first reference.
    pub key: Option<(u16, u16)>,
    pub space: SpaceId,
    pub vm: VmId,
    /// The space's number within its VM.
    pub local: usize,
    pub tag: HardwareTag,
    /// The tag of the VM's own entries (nested TLB, host caches).
    pub vm_tag: u32,
}

impl Current {
    pub fn none() -> Current {
        Current { key: None, space: SpaceId(0), vm: VmId(0), local: 0, tag: HardwareTag(0), vm_tag: 0 }
    }
}

/// What a change of address space is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SwitchKind {
    /// The first reference: nothing ran before.
    First,
    /// Another address space of the same VM.
    Context,
    /// Another VM.
    Vm,
}

/// What the simulator must do at a change of address space, in order:
/// count it, flush everything if `flush`, drop the entries of `recycled`
/// (an id taken from the space that ran least recently), then run as
/// `current`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Switch {
    pub kind: SwitchKind,
    pub flush: bool,
    pub recycled: Option<HardwareTag>,
    pub current: Current,
}

/// Every address space and VM seen, and each VM's pool of ids.
#[derive(Clone, Debug)]
pub(crate) struct AddressSpaces {
    policy: ContextConfig,
    /// (trace VM, trace context) -> address space.
    spaces: FxHashMap<(u16, u16), SpaceId>,
    /// Per address space: its VM and its number within the VM.
    placement: Vec<(VmId, usize)>,
    /// Trace VM -> VM, and address spaces per VM.
    vms: FxHashMap<u16, VmId>,
    spaces_per_vm: Vec<usize>,
    /// Per VM: which address space holds each id, and when it last ran.
    pools: Vec<Vec<Option<(SpaceId, u64)>>>,
    /// Per address space: its id in its VM's pool, if it holds one.
    ids: Vec<Option<u16>>,
    clock: u64,
}

impl AddressSpaces {
    pub fn new(policy: &ContextConfig) -> AddressSpaces {
        AddressSpaces {
            policy: policy.clone(),
            spaces: FxHashMap::default(),
            placement: Vec::new(),
            vms: FxHashMap::default(),
            spaces_per_vm: Vec::new(),
            pools: Vec::new(),
            ids: Vec::new(),
            clock: 0,
        }
    }

    /// Address spaces seen.
    pub fn spaces(&self) -> usize {
        self.placement.len()
    }

    /// The VM the trace calls `trace_vm`, if it has run.
    pub fn vm_of_trace(&self, trace_vm: u16) -> Option<VmId> {
        self.vms.get(&trace_vm).copied()
    }

    /// The trace's id of VM `vm`.
    pub fn trace_vm(&self, vm: VmId) -> Option<u16> {
        self.vms.iter().find(|(_, &v)| v == vm).map(|(&id, _)| id)
    }

    /// The VM of address space `space`, if it has run.
    pub fn vm_of(&self, space: SpaceId) -> Option<VmId> {
        self.placement.get(space.0).map(|&(vm, _)| vm)
    }

    /// VMs seen.
    pub fn vms(&self) -> usize {
        self.spaces_per_vm.len()
    }

    /// The trace's (VM, context) starts running after `previous`.
    pub fn switch_to(&mut self, previous: &Current, trace_vm: u16, context: u16) -> Switch {
        let space = self.space_of(trace_vm, context);
        let (vm, local) = self.placement[space.0];
        let kind = match previous.key {
            None => SwitchKind::First,
            Some(_) if vm != previous.vm => SwitchKind::Vm,
            Some(_) => SwitchKind::Context,
        };
        let flush = match (kind, self.policy.switch) {
            (SwitchKind::First, _) => false,
            (_, SwitchPolicy::Flush) => true,
            (kind, SwitchPolicy::Tagged) => kind == SwitchKind::Vm && !self.policy.vm_tags,
        };
        let vm_part = HardwareTag::vm_part(vm, self.policy.vm_tags);
        let (tag, recycled) = match self.policy.switch {
            // Everything is flushed at every switch: no tag is needed.
            SwitchPolicy::Flush => (HardwareTag(0), None),
            SwitchPolicy::Tagged => {
                let (id, recycled) = self.take_id(space, vm);
                (HardwareTag::new(vm_part, id), recycled.map(|stale| HardwareTag::new(vm_part, stale)))
            }
        };
        let current = Current { key: Some((trace_vm, context)), space, vm, local, tag, vm_tag: vm_part };
        Switch { kind, flush, recycled, current }
    }

    /// The tag under which the TLBs may hold translations of `space` while
    /// `current` runs, if they may hold any: the running space's tag; with
    /// tags, a space's own while it holds an id (and its VM's entries
    /// survived the VM switches, which needs VM tags if it is another VM's).
    /// Flushing at every switch leaves only the running space's.
    pub fn cached_tag(&self, space: SpaceId, current: &Current) -> Option<HardwareTag> {
        if current.key.is_some() && space == current.space {
            return Some(current.tag);
        }
        match self.policy.switch {
            SwitchPolicy::Flush => None,
            SwitchPolicy::Tagged => {
                let (vm, _) = *self.placement.get(space.0)?;
                if vm != current.vm && !self.policy.vm_tags {
                    return None;
                }
                let vm_part = HardwareTag::vm_part(vm, self.policy.vm_tags);
                self.ids[space.0].map(|id| HardwareTag::new(vm_part, id))
            }
        }
    }

    /// The address space of (VM, context), numbering it if new.
    fn space_of(&mut self, trace_vm: u16, context: u16) -> SpaceId {
        let next_space = SpaceId(self.placement.len());
        let space = *self.spaces.entry((trace_vm, context)).or_insert(next_space);
        if space == next_space {
            let next_vm = VmId(self.spaces_per_vm.len());
            let vm = *self.vms.entry(trace_vm).or_insert(next_vm);
            if vm == next_vm {
                self.spaces_per_vm.push(0);
                self.pools.push(vec![None; self.policy.ids as usize]);
            }
            self.placement.push((vm, self.spaces_per_vm[vm.0]));
            self.spaces_per_vm[vm.0] += 1;
            self.ids.push(None);
        }
        space
    }

    /// The id of `space` in its VM's pool: its own if it still holds one, a
    /// free one, or the least recently run space's; returns the id and, in
    /// the last case, the id whose entries are now stale.
    fn take_id(&mut self, space: SpaceId, vm: VmId) -> (u16, Option<u16>) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(id) = self.ids[space.0] {
            self.pools[vm.0][usize::from(id)] = Some((space, clock));
            return (id, None);
        }
        let pool = &mut self.pools[vm.0];
        let (id, recycled) = match pool.iter().position(Option::is_none) {
            Some(free) => (free, None),
            None => {
                let (oldest, _) = pool
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, slot)| slot.expect("the pool is full").1)
                    .expect("at least one id");
                let (owner, _) = pool[oldest].expect("full");
                self.ids[owner.0] = None;
                (oldest, Some(oldest as u16))
            }
        };
        self.pools[vm.0][id] = Some((space, clock));
        self.ids[space.0] = Some(id as u16);
        (id as u16, recycled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(switch: SwitchPolicy, ids: u32, vm_tags: bool) -> ContextConfig {
        ContextConfig { switch, ids, vm_tags }
    }

    /// Two ids, three spaces A B C of one VM: C takes the id of A, which ran
    /// least recently; A coming back takes B's.
    #[test]
    fn a_full_pool_recycles_the_least_recently_run_spaces_id() {
        let mut spaces = AddressSpaces::new(&policy(SwitchPolicy::Tagged, 2, false));
        let mut current = Current::none();
        let mut run = |context: u16| {
            let switch = spaces.switch_to(&current, 0, context);
            current = switch.current;
            (switch.current.tag.0, switch.recycled.map(|t| t.0), switch.kind)
        };
        assert_eq!(run(0), (0, None, SwitchKind::First));
        assert_eq!(run(1), (1, None, SwitchKind::Context));
        assert_eq!(run(2), (0, Some(0), SwitchKind::Context), "A's id, recycled");
        assert_eq!(run(0), (1, Some(1), SwitchKind::Context), "B's id now");
    }

    #[test]
    fn vm_tags_go_in_the_high_half_and_keep_vm_switches_from_flushing() {
        let mut spaces = AddressSpaces::new(&policy(SwitchPolicy::Tagged, 4, true));
        let first = spaces.switch_to(&Current::none(), 7, 0);
        let second = spaces.switch_to(&first.current, 9, 0);
        assert_eq!(second.kind, SwitchKind::Vm);
        assert!(!second.flush);
        assert_eq!(second.current.tag, HardwareTag::new(2, 0), "the second VM (part 2), id 0");
        let mut untagged = AddressSpaces::new(&policy(SwitchPolicy::Tagged, 4, false));
        let first = untagged.switch_to(&Current::none(), 7, 0);
        assert!(untagged.switch_to(&first.current, 9, 0).flush, "without VM tags a VM switch flushes");
    }

    /// Whose entries the TLBs may hold while another space runs: under
    /// flush only the running space's; with tags a space holding an id, of
    /// another VM only with VM tags; a space whose id was recycled none.
    #[test]
    fn cached_tags_follow_the_switch_policy() {
        let trace = [(0, 0), (0, 1), (1, 0)];
        let run = |switch, ids, vm_tags| {
            let mut spaces = AddressSpaces::new(&policy(switch, ids, vm_tags));
            let mut current = Current::none();
            for (vm, context) in trace {
                current = spaces.switch_to(&current, vm, context).current;
            }
            (0..3).map(|space| spaces.cached_tag(SpaceId(space), &current).map(|t| t.0)).collect::<Vec<_>>()
        };
        // Running: VM 1's space 2.
        assert_eq!(run(SwitchPolicy::Flush, 4, false), [None, None, Some(0)]);
        assert_eq!(run(SwitchPolicy::Tagged, 4, false), [None, None, Some(0)], "VM 0's were flushed at the VM switch");
        let vm0 = |id| HardwareTag::new(1, id).0;
        assert_eq!(run(SwitchPolicy::Tagged, 4, true), [Some(vm0(0)), Some(vm0(1)), Some(HardwareTag::new(2, 0).0)]);
        // One id per VM: VM 0's space 0 lost its id to space 1.
        assert_eq!(run(SwitchPolicy::Tagged, 1, true), [None, Some(vm0(0)), Some(HardwareTag::new(2, 0).0)]);
    }
}
