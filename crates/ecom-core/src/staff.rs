//! What merchant staff may do: the panel's areas, the set a staff member holds, and
//! the rules of who may manage whom. No I/O; the panel, the merchant API and the
//! team service all ask these types.

use crate::{Invalid, StaffRole};
use std::fmt;

/// A part of the merchant panel (and the merchant API) that a staff member may be
/// given. Owners and admins have them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Products, collections, categories, inventory, import/export, media.
    Catalog,
    /// Orders, fulfilment, refunds, returns.
    Orders,
    /// Customers and their history.
    Customers,
    /// Store settings: checkout, shipping, taxes, theme, API tokens, webhooks,
    /// notification settings, domains.
    Settings,
    /// Dashboards, reports, audit and delivery logs.
    Analytics,
}

impl Permission {
    pub const ALL: [Permission; 5] =
        [Permission::Catalog, Permission::Orders, Permission::Customers, Permission::Settings, Permission::Analytics];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Catalog => "catalog",
            Self::Orders => "orders",
            Self::Customers => "customers",
            Self::Settings => "settings",
            Self::Analytics => "analytics",
        }
    }

    /// The name people read: "Orders".
    pub fn label(self) -> &'static str {
        match self {
            Self::Catalog => "Catalog",
            Self::Orders => "Orders",
            Self::Customers => "Customers",
            Self::Settings => "Settings",
            Self::Analytics => "Analytics",
        }
    }

    /// What the area covers, for the invite form.
    pub fn covers(self) -> &'static str {
        match self {
            Self::Catalog => "products, collections, inventory, import and export, images",
            Self::Orders => "orders, fulfilment, refunds and returns",
            Self::Customers => "customers and their orders",
            Self::Settings => "checkout, shipping, taxes, theme, API tokens, webhooks, notifications, domains",
            Self::Analytics => "dashboards, reports, audit and delivery logs",
        }
    }

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let v = value.trim();
        Self::ALL.into_iter().find(|p| p.as_str() == v).ok_or_else(|| {
            let known: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
            Invalid::new("areas", format!("unknown area `{v}`; known: {}", known.join(", ")))
        })
    }

    /// The staff area an API scope's area belongs to (an app token keeps its scopes;
    /// a staff session also needs this area).
    pub fn for_scope(area: crate::scope::Area) -> Self {
        use crate::scope::Area;
        match area {
            Area::Products | Area::Inventory => Self::Catalog,
            Area::Orders => Self::Orders,
            Area::Customers => Self::Customers,
            Area::Webhooks => Self::Settings,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A set of areas, stored as a comma-separated list (`catalog,orders`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

impl Permissions {
    pub const fn none() -> Self {
        Self(0)
    }

    pub fn all() -> Self {
        Self::from_iter(Permission::ALL)
    }

    fn bit(p: Permission) -> u8 {
        1 << (p as u8)
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & Self::bit(p) != 0
    }

    pub fn with(self, p: Permission) -> Self {
        Self(self.0 | Self::bit(p))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// A comma- or space-separated list; an unknown name is refused.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        value.split([',', ' ']).filter(|p| !p.trim().is_empty()).map(Permission::parse).collect()
    }

    /// The names, as stored.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        iter.into_iter().fold(Self::none(), Self::with)
    }
}

impl fmt::Display for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

/// A member's role and areas, as checked on every panel page and API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub role: StaffRole,
    /// The areas a staff member was given; owners and admins have all of them
    /// whatever is stored.
    pub areas: Permissions,
}

impl Access {
    pub fn new(role: StaffRole, areas: Permissions) -> Self {
        Self { role, areas }
    }

    pub fn allows(self, p: Permission) -> bool {
        self.role.has_every_area() || self.areas.contains(p)
    }

    /// The areas in effect.
    pub fn effective(self) -> Permissions {
        if self.role.has_every_area() { Permissions::all() } else { self.areas }
    }

    /// Whether this member may open the staff page, invite and manage members.
    pub fn manages_team(self) -> bool {
        self.role.has_every_area()
    }

    /// Whether this member may give `role` to someone, or change or remove a member
    /// who has `role`: owners anyone, admins only staff, staff no one.
    pub fn may_manage(self, role: StaffRole) -> bool {
        match self.role {
            StaffRole::Owner => true,
            StaffRole::Admin => role == StaffRole::Staff,
            StaffRole::Staff => false,
        }
    }
}

/// The role and areas chosen in an invite or a member's edit form: staff need at
/// least one area; owners and admins carry none (they have all).
pub fn parse_grant(role: &str, areas: &[&str]) -> Result<(StaffRole, Permissions), Invalid> {
    let role =
        StaffRole::parse(role.trim()).ok_or_else(|| Invalid::new("role", "choose a role: owner, admin or staff"))?;
    let areas: Permissions = areas.iter().map(|a| Permission::parse(a)).collect::<Result<_, _>>()?;
    match role {
        StaffRole::Staff if areas.is_empty() => Err(Invalid::new(
            "areas",
            "give a staff member at least one area (catalog, orders, customers, settings, analytics)",
        )),
        StaffRole::Staff => Ok((role, areas)),
        _ => Ok((role, Permissions::none())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_parse_print_and_check() {
        let p = Permissions::parse("orders, catalog orders").unwrap_or_default();
        assert_eq!(p.to_string(), "catalog,orders");
        assert!(p.contains(Permission::Orders) && !p.contains(Permission::Settings));
        assert!(Permissions::parse("everything").is_err());
        assert_eq!(Permissions::parse(""), Ok(Permissions::none()));
        let staff = Access::new(StaffRole::Staff, p);
        assert!(staff.allows(Permission::Catalog) && !staff.allows(Permission::Analytics));
        assert!(Access::new(StaffRole::Admin, Permissions::none()).allows(Permission::Settings));
    }

    #[test]
    fn only_owners_manage_owners_and_admins() {
        let owner = Access::new(StaffRole::Owner, Permissions::none());
        let admin = Access::new(StaffRole::Admin, Permissions::none());
        let staff = Access::new(StaffRole::Staff, Permissions::all());
        assert!(owner.may_manage(StaffRole::Owner) && owner.may_manage(StaffRole::Admin));
        assert!(admin.may_manage(StaffRole::Staff) && !admin.may_manage(StaffRole::Admin));
        assert!(!admin.may_manage(StaffRole::Owner) && !staff.may_manage(StaffRole::Staff));
        assert!(!staff.manages_team());
    }

    #[test]
    fn staff_need_an_area() {
        assert_eq!(parse_grant("staff", &[]).map_err(|e| e.field), Err("areas"));
        assert_eq!(parse_grant("boss", &["orders"]).map_err(|e| e.field), Err("role"));
        assert_eq!(parse_grant("admin", &["orders"]), Ok((StaffRole::Admin, Permissions::none())));
        assert_eq!(
            parse_grant("staff", &["orders"]),
            Ok((StaffRole::Staff, Permissions::none().with(Permission::Orders)))
        );
    }
}
