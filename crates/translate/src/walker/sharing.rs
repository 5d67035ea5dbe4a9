//! Zero-page sharing (`host.share_zero_pages`, nested mode): every
//! guest-physical page that holds zeros is backed by one host frame of
//! zeros, mapped read-only; a write to one is a copy-on-write fault that
//! gives it a frame of its own.
//!
//! An address trace carries no data, so content is known only as far as
//! the OS's own writes tell it: a page the guest demand-zeroed (a minor
//! fault) holds zeros until something writes it. The host pages (of the
//! host's smallest size, no larger than the guest's smallest) are tracked
//! one by one:
//! - the guest demand-zeroes a page: each of its host pages the host maps
//!   gives its frame back and maps the zero frame (sharing is immediate,
//!   the most a scanner could find); one the host does not map now (never
//!   touched, or swapped out) is shared when the host next maps it for a
//!   read. A store's own host page is written, so it is not shared.
//! - a write to a shared page (a store's walk or dirty-bit assist, the
//!   guest's walk writing a table entry there) breaks the share: a VM exit,
//!   a fresh host frame (which a host limit counts, and may evict for);
//! - the guest filling a page with data writes every host page of it:
//!   shared ones are broken by the hypervisor's I/O path, with no exit. A
//!   page is filled with data when read back from the guest's swap (a major
//!   fault), and when first touched by an instruction fetch: it holds code,
//!   read from the program's file (the one sign of a file-backed page an
//!   address trace gives; a page first touched by a load is taken to be
//!   anonymous, as every first touch is priced as a zeroed page).
//!
//! Identical pages other than zeros need the data; they are not modelled.

use rustc_hash::FxHashSet;
use serde::Serialize;

use super::nested::{Nested, Running};
use crate::addr::{Address, Gpa, Hpa};
use crate::residency::PageKey;

/// What zero-page sharing did, in total or for one VM.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SharingCounters {
    /// Host pages backed by the zero frame at the end, and the most at once.
    pub shared_pages: u64,
    pub shared_peak: u64,
    /// Times a host page came to share the zero frame.
    pub pages_shared: u64,
    /// Shares broken by a write of the VM's (each a VM exit).
    pub cow_faults: u64,
    /// Shares broken by the guest filling a page with data (the
    /// hypervisor's I/O: no exit).
    pub cow_by_io: u64,
}

/// The sharing state of the host's pages.
#[derive(Clone, Debug, Default)]
pub(super) struct ZeroSharing {
    /// The one host frame of zeros, while pages share it.
    zero_frame: Option<Hpa>,
    /// Host pages (space: the VM) mapped to it.
    shared: FxHashSet<PageKey>,
    /// Host pages that hold zeros but are not mapped by the host now.
    pending: FxHashSet<PageKey>,
    /// Host page shift (the host's smallest page).
    shift: u32,
    counters: SharingCounters,
    by_vm: Vec<SharingCounters>,
    /// Copy-on-write faults not yet turned into exits.
    exits_due: u64,
}

impl ZeroSharing {
    pub fn new(shift: u32) -> ZeroSharing {
        ZeroSharing { shift, ..ZeroSharing::default() }
    }

    fn page(&self, vm: usize, gpa: Gpa) -> PageKey {
        PageKey { space: vm, base: gpa.raw() >> self.shift << self.shift, shift: self.shift }
    }

    pub fn is_shared(&self, vm: usize, gpa: Gpa) -> bool {
        !self.shared.is_empty() && self.shared.contains(&self.page(vm, gpa))
    }

    fn vm(&mut self, vm: usize) -> &mut SharingCounters {
        if self.by_vm.len() <= vm {
            self.by_vm.resize(vm + 1, SharingCounters::default());
        }
        &mut self.by_vm[vm]
    }

    /// Copy-on-write faults since the last call, each a VM exit.
    pub fn take_exits(&mut self) -> u64 {
        std::mem::take(&mut self.exits_due)
    }

    /// In total and by VM (numbered in order of appearance).
    pub fn counters(&self) -> (SharingCounters, Vec<SharingCounters>) {
        let mut by_vm = self.by_vm.clone();
        for page in &self.shared {
            if by_vm.len() <= page.space {
                by_vm.resize(page.space + 1, SharingCounters::default());
            }
            by_vm[page.space].shared_pages += 1;
        }
        (SharingCounters { shared_pages: self.shared.len() as u64, ..self.counters.clone() }, by_vm)
    }
}

impl Nested {
    /// After a host fault mapped `gpa`'s host page for a read or a write:
    /// a page known to hold zeros is mapped to the zero frame if read
    /// (returns true: its fresh frame went back unused, and it is not
    /// admitted to a host limit), and no longer known to if written.
    pub(super) fn share_if_zero(&mut self, vm: usize, gpa: Gpa, write: bool) -> bool {
        let Some(sharing) = self.sharing.as_deref_mut() else { return false };
        let page = sharing.page(vm, gpa);
        if !sharing.pending.remove(&page) || write {
            return false;
        }
        self.share(page);
        true
    }

    /// A write of VM `vm` to `gpa` is about to happen: if its host page is
    /// shared, the write faults and the page gets a frame of its own.
    #[inline]
    pub(super) fn before_host_write(&mut self, vm: usize, gpa: Gpa, running: Running) {
        if self.sharing.as_deref().is_some_and(|s| s.is_shared(vm, gpa)) {
            let page = self.sharing.as_deref().expect("checked").page(vm, gpa);
            self.break_share(page, running, true);
        }
    }

    /// The guest of VM `vm` mapped the guest page at `base` (of `shift`)
    /// in a fault: demand-zeroed (its host pages hold zeros, but for the
    /// one `written` by the store that faulted, if any), or filled with
    /// `data` (read from the guest's swap or a file: every host page of it
    /// written).
    pub(super) fn guest_filled(
        &mut self,
        vm: usize,
        (base, shift): (Gpa, u32),
        data: bool,
        written: Option<Gpa>,
        running: Running,
    ) {
        let Some(sharing) = self.sharing.as_deref_mut() else { return };
        let host_shift = sharing.shift;
        let written = written.map(|gpa| sharing.page(vm, gpa));
        let end = base.raw() + (1u64 << shift);
        let mut at = base.raw();
        while at < end {
            let page = PageKey { space: vm, base: at, shift: host_shift };
            at += 1u64 << host_shift;
            let sharing = self.sharing.as_deref_mut().expect("checked above");
            sharing.pending.remove(&page);
            let shared = sharing.shared.contains(&page);
            if data {
                if shared {
                    self.break_share(page, running, false);
                }
            } else if Some(page) != written && !shared {
                if self.host.tables.is_mapped(vm, Gpa(page.base)) {
                    self.share(page);
                } else {
                    sharing.pending.insert(page);
                }
            }
        }
    }

    /// The host page `page`, mapped to a frame of its own, holds zeros: the
    /// frame goes back and the page maps the zero frame.
    fn share(&mut self, page: PageKey) {
        let sharing = self.sharing.as_deref_mut().expect("sharing");
        let frame = self.host.tables.discard(page).expect("a shared page is mapped at the host's page size");
        self.host.frames.release(frame, page.shift);
        let zero = match sharing.zero_frame {
            Some(zero) => zero,
            None => {
                let zero = self.host.frames.allocate(page.shift);
                if let Some(pager) = self.host.pager.as_deref_mut() {
                    // Counted against a host limit, never evicted.
                    pager.pin_frames(1u64 << page.shift);
                }
                *sharing.zero_frame.insert(zero)
            }
        };
        if let Some(pager) = self.host.pager.as_deref_mut() {
            pager.forget(page);
        }
        self.host.tables.map(page.space, Gpa(page.base), page.shift, zero, &mut self.host.frames);
        sharing.shared.insert(page);
        let shared = sharing.shared.len() as u64;
        sharing.counters.pages_shared += 1;
        sharing.counters.shared_peak = sharing.counters.shared_peak.max(shared);
        sharing.vm(page.space).pages_shared += 1;
    }

    /// The zero frame goes back once no page maps it (so sharing never
    /// holds more host frames than it saves).
    fn release_zero_frame_if_unused(&mut self) {
        let sharing = self.sharing.as_deref_mut().expect("sharing");
        if !sharing.shared.is_empty() {
            return;
        }
        if let Some(zero) = sharing.zero_frame.take() {
            self.host.frames.release(zero, sharing.shift);
            if let Some(pager) = self.host.pager.as_deref_mut() {
                pager.unpin_frames(1u64 << sharing.shift);
            }
        }
    }

    /// A write to the shared host page `page` (by the VM, `by_vm`, an exit;
    /// else the hypervisor's I/O): it gets a frame of its own, as a host
    /// fault does, which a host limit admits.
    fn break_share(&mut self, page: PageKey, running: Running, by_vm: bool) {
        let sharing = self.sharing.as_deref_mut().expect("sharing");
        sharing.shared.remove(&page);
        if by_vm {
            sharing.counters.cow_faults += 1;
            sharing.vm(page.space).cow_faults += 1;
            sharing.exits_due += 1;
        } else {
            sharing.counters.cow_by_io += 1;
            sharing.vm(page.space).cow_by_io += 1;
        }
        self.host.tables.discard(page);
        self.release_zero_frame_if_unused();
        let gpa = Gpa(page.base);
        let found = self.host.tables.walk(page.space, gpa, true, &mut self.host.frames);
        debug_assert!(found.faulted && !found.major);
        if self.host.pager.is_some() {
            self.host_page_in(page.space, gpa, &found, running);
        }
    }

    /// Balloon: the host drops `page` (of VM `page.space`) and its
    /// content; says what it had.
    pub(super) fn discard_host_page(&mut self, page: PageKey) -> Dropped {
        let frame = self.host.tables.discard(page);
        if let Some(sharing) = self.sharing.as_deref_mut() {
            // Its content goes too.
            sharing.pending.remove(&page);
            if frame.is_some() && sharing.shared.remove(&page) {
                self.release_zero_frame_if_unused();
                return Dropped::Shared;
            }
        }
        frame.map_or(Dropped::Nothing, Dropped::Frame)
    }
}

/// What the host dropped of a guest-physical page.
pub(super) enum Dropped {
    /// It was not mapped (at that size).
    Nothing,
    /// It mapped the zero frame, which stays.
    Shared,
    /// It had a frame of its own, now free.
    Frame(Hpa),
}
