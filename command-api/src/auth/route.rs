//! A route's needs: the one permission it requires, the add-ons the tenant must hold, its
//! billable operation and seed 003's controls. Both route tables (`routes`, `platform_routes`)
//! are made of these.

use aegis_identity::controls::Addon;
use aegis_identity::permissions::Permission;

/// The controls the document lists for a route ("Required Controls").
pub mod controls {
    pub const NONE: u8 = 0;
    /// The tenant must be entitled to the route's service.
    pub const ENTITLEMENTS: u8 = 1;
    /// The tenant's monthly quota of the billable operation is checked first.
    pub const QUOTA: u8 = 2;
    /// The request is recorded: in the event log when it returns secret material, otherwise
    /// in the decision log.
    pub const AUDIT: u8 = 4;
    /// A success is metered as the billable operation.
    pub const METERING: u8 = 8;
    /// Only a tenant administrator (the permission is one only ADMIN holds by default).
    pub const ADMIN: u8 = 16;

    pub const NAMES: [(u8, &str); 5] = [
        (ENTITLEMENTS, "entitlements"),
        (QUOTA, "quota"),
        (AUDIT, "audit"),
        (METERING, "metering"),
        (ADMIN, "admin"),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub permission: Permission,
    /// The add-ons the tenant must be entitled to (403 `entitlement_required`): a seed 003
    /// route may need its service and an add-on such as `byohsm`.
    pub addons: [Option<Addon>; 2],
    /// The billable operation a success records (metering).
    pub meter: Option<&'static str>,
    /// Seed 003's controls for the route ([`controls`]); the quota of `meter`
    /// is checked before the handler runs (429 `quota_exceeded`) when `QUOTA` is among them.
    pub controls: u8,
}

impl Route {
    pub(super) const fn needs(mut self, addon: Addon) -> Self {
        self.addons[0] = Some(addon);
        self
    }

    pub(super) const fn metered(mut self, operation: &'static str) -> Self {
        use controls::{METERING, QUOTA};
        self.meter = Some(operation);
        self.controls |= QUOTA | METERING;
        self
    }

    /// The add-ons it needs.
    pub fn addons(&self) -> impl Iterator<Item = Addon> + '_ {
        self.addons.iter().flatten().copied()
    }

    pub fn controlled_by(&self, control: u8) -> bool {
        self.controls & control != 0
    }
}
