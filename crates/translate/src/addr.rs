//! The address spaces a translation crosses, as types: a virtual address
//! (guest-virtual when virtualized), a guest-physical address and a
//! host-physical address are different things, and a function that needs
//! one cannot be handed another.
//!
//! Natively there is one physical space, the machine's: `Hpa`. A table maps
//! one space to another and lives in the second (`PageTables<In, Out>`):
//! native and shadow tables map `Va` to `Hpa`, a guest's tables `Va` to
//! `Gpa`, the host's (nested) and the hypervisor's map of guest memory
//! (shadow) `Gpa` to `Hpa`. Inside a structure addresses are bare integers
//! (keys, masks, shifts); the types hold at its boundary.

/// An address of one space.
pub trait Address: Copy + Eq + Ord + std::hash::Hash + std::fmt::Debug {
    /// The space's name, for messages.
    const SPACE: &'static str;

    fn raw(self) -> u64;

    fn from_raw(raw: u64) -> Self;

    /// The address `bytes` above this one.
    #[inline(always)]
    fn plus(self, bytes: u64) -> Self {
        Self::from_raw(self.raw() + bytes)
    }

    /// The first byte of the page of `1 << shift` bytes holding it.
    #[inline(always)]
    fn page_base(self, shift: u32) -> Self {
        Self::from_raw(self.raw() >> shift << shift)
    }

    /// Its offset in its page of `1 << shift` bytes.
    #[inline(always)]
    fn page_offset(self, shift: u32) -> u64 {
        self.raw() & ((1u64 << shift) - 1)
    }
}

macro_rules! address {
    ($name:ident, $space:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl Address for $name {
            const SPACE: &'static str = $space;

            #[inline(always)]
            fn raw(self) -> u64 {
                self.0
            }

            #[inline(always)]
            fn from_raw(raw: u64) -> Self {
                $name(raw)
            }
        }
    };
}

address!(Va, "virtual", "A virtual address: what a program's references name (guest-virtual in a VM).");
address!(Gpa, "guest-physical", "A guest-physical address: a VM's idea of physical memory.");
address!(Hpa, "host-physical", "A host-physical address: the machine's memory (natively, the only physical space).");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_split_an_address_into_base_and_offset() {
        let a = Gpa(0x1234_5678);
        assert_eq!(a.page_base(12), Gpa(0x1234_5000));
        assert_eq!(a.page_offset(12), 0x678);
        assert_eq!(a.page_base(21).plus(a.page_offset(21)), a);
        assert_eq!(Hpa::SPACE, "host-physical");
    }
}
