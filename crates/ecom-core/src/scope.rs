//! Access scopes of merchant API tokens, named as in Shopify's Admin API
//! (`read_products`, `write_orders`, …). Writing an area implies reading it.

use crate::Invalid;
use std::fmt;

/// What a part of the merchant API touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    Products,
    Inventory,
    Orders,
    Customers,
    Webhooks,
}

impl Area {
    pub const ALL: [Area; 5] = [Area::Products, Area::Inventory, Area::Orders, Area::Customers, Area::Webhooks];

    pub fn as_str(self) -> &'static str {
        match self {
            Area::Products => "products",
            Area::Inventory => "inventory",
            Area::Orders => "orders",
            Area::Customers => "customers",
            Area::Webhooks => "webhooks",
        }
    }
}

/// Reading or also writing an area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    Read,
    Write,
}

/// One scope, e.g. `write_products`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub access: Access,
    pub area: Area,
}

impl Scope {
    pub const fn read(area: Area) -> Self {
        Self { access: Access::Read, area }
    }

    pub const fn write(area: Area) -> Self {
        Self { access: Access::Write, area }
    }

    /// Every scope there is, reads first.
    pub fn all() -> Vec<Scope> {
        let reads = Area::ALL.iter().map(|a| Scope::read(*a));
        reads.chain(Area::ALL.iter().map(|a| Scope::write(*a))).collect()
    }

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        let (access, area) = s.split_once('_').unwrap_or(("", s));
        let access = match access {
            "read" => Access::Read,
            "write" => Access::Write,
            _ => return Err(unknown(s)),
        };
        let area = Area::ALL.into_iter().find(|a| a.as_str() == area).ok_or_else(|| unknown(s))?;
        Ok(Self { access, area })
    }

    /// Whether holding `self` allows what `needed` names.
    pub fn covers(self, needed: Scope) -> bool {
        self.area == needed.area && (self.access == Access::Write || needed.access == Access::Read)
    }
}

fn unknown(s: &str) -> Invalid {
    let known: Vec<String> = Scope::all().iter().map(ToString::to_string).collect();
    Invalid::new("scopes", format!("unknown scope `{s}`; known: {}", known.join(", ")))
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = match self.access {
            Access::Read => "read",
            Access::Write => "write",
        };
        write!(f, "{access}_{}", self.area.as_str())
    }
}

/// A set of scopes, kept sorted and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// Everything: what a signed-in owner's session may do.
    pub fn everything() -> Self {
        Self(Scope::all().into_iter().filter(|s| s.access == Access::Write).collect())
    }

    pub fn new(mut scopes: Vec<Scope>) -> Self {
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    /// A comma- or space-separated list, e.g. `read_products,write_orders`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let scopes =
            s.split([',', ' ']).filter(|p| !p.trim().is_empty()).map(Scope::parse).collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(scopes))
    }

    pub fn allows(&self, needed: Scope) -> bool {
        self.0.iter().any(|s| s.covers(needed))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_print_and_imply() {
        let s = Scopes::parse("write_products, read_orders read_orders").unwrap_or_default();
        assert_eq!(s.to_string(), "read_orders,write_products");
        assert!(s.allows(Scope::read(Area::Products)), "write implies read");
        assert!(s.allows(Scope::write(Area::Products)));
        assert!(s.allows(Scope::read(Area::Orders)));
        assert!(!s.allows(Scope::write(Area::Orders)));
        assert!(!s.allows(Scope::read(Area::Customers)));
        for bad in ["read_everything", "products", "admin_products", "read-products"] {
            let err = Scopes::parse(bad).err().map(|e| e.message).unwrap_or_default();
            assert!(err.contains("unknown scope"), "{bad}: {err}");
        }
        assert!(Scopes::everything().allows(Scope::write(Area::Webhooks)));
        assert_eq!(Scopes::parse(&Scopes::everything().to_string()), Ok(Scopes::everything()));
    }
}
