//! Credentials for the three kinds of account. The tables share their credential
//! columns, so one set of queries serves all three, picked by the [`Realm`].

use crate::{Result, StoreError};
use ecom_core::{AccountId, AccountKind, Email, Realm, StaffRole, TenantId};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Func, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};

/// An account's identity and password hash, as needed to sign in.
#[derive(Clone)]
pub struct Credential {
    pub id: AccountId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    /// Bumped on each password change; a session from an older version is void.
    pub auth_version: i32,
    /// Staff only.
    pub role: Option<StaffRole>,
    /// Staff only: the panel areas given to a member with the staff role.
    pub areas: ecom_core::staff::Permissions,
}

impl Credential {
    /// A staff member's role and areas (`None` for other kinds of account).
    pub fn access(&self) -> Option<ecom_core::staff::Access> {
        self.role.map(|role| ecom_core::staff::Access::new(role, self.areas))
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("auth_version", &self.auth_version)
            .finish_non_exhaustive()
    }
}

/// A new account to store; the password is already hashed.
pub struct NewAccount<'a> {
    pub realm: Realm,
    pub email: &'a Email,
    pub name: &'a str,
    pub password_hash: &'a str,
    /// Required for staff, ignored otherwise.
    pub role: StaffRole,
}

fn table(kind: AccountKind) -> Alias {
    Alias::new(match kind {
        AccountKind::Admin => "platform_admins",
        AccountKind::Staff => "staff",
        AccountKind::Customer => "customers",
    })
}

fn col(name: &str) -> Alias {
    Alias::new(name)
}

/// `SELECT <credential columns> FROM <realm table> WHERE tenant_id = <realm tenant>`.
fn select_in(realm: Realm) -> SelectStatement {
    let mut q = Query::select();
    q.from(table(realm.kind())).columns(["id", "email", "name", "password_hash", "auth_version"].map(col));
    if realm.kind() == AccountKind::Staff {
        q.columns([col("role"), col("areas")]);
    }
    if let Some(tenant) = realm.tenant() {
        q.and_where(Expr::col(col("tenant_id")).eq(tenant.0));
    }
    q
}

fn from_row(realm: Realm, row: &QueryResult) -> Result<Credential> {
    let (role, areas) = if realm.kind() == AccountKind::Staff {
        let raw: String = row.try_get("", "role")?;
        let role =
            StaffRole::parse(&raw).ok_or(StoreError::Corrupt { table: "staff", detail: format!("role {raw}") })?;
        let raw: String = row.try_get("", "areas")?;
        let areas = ecom_core::staff::Permissions::parse(&raw)
            .map_err(|_| StoreError::Corrupt { table: "staff", detail: format!("areas {raw}") })?;
        (Some(role), areas)
    } else {
        (None, ecom_core::staff::Permissions::none())
    };
    Ok(Credential {
        id: AccountId(row.try_get("", "id")?),
        email: row.try_get("", "email")?,
        name: row.try_get("", "name")?,
        password_hash: row.try_get("", "password_hash")?,
        auth_version: row.try_get("", "auth_version")?,
        role,
        areas,
    })
}

pub async fn insert(txn: &DatabaseTransaction, new: NewAccount<'_>) -> Result<AccountId> {
    let id = AccountId::new();
    let mut cols =
        vec![col("id"), col("email"), col("name"), col("password_hash"), col("auth_version"), col("created_at")];
    let mut vals: Vec<Expr> = vec![
        Expr::value(id.0),
        Expr::value(new.email.as_str()),
        Expr::value(new.name),
        Expr::value(new.password_hash),
        Expr::value(1),
        Expr::value(chrono::Utc::now()),
    ];
    if let Some(tenant) = new.realm.tenant() {
        cols.push(col("tenant_id"));
        vals.push(Expr::value(tenant.0));
    }
    if new.realm.kind() == AccountKind::Staff {
        cols.push(col("role"));
        vals.push(Expr::value(new.role.as_str()));
    }
    let stmt = Query::insert().into_table(table(new.realm.kind())).columns(cols).values_panic(vals).to_owned();
    txn.execute(&stmt).await.map_err(|e| StoreError::conflict_or_db(e, "an account with that email"))?;
    Ok(id)
}

pub async fn find_by_email(txn: &DatabaseTransaction, realm: Realm, email: &Email) -> Result<Option<Credential>> {
    let q = select_in(realm).and_where(Expr::col(col("email")).eq(email.as_str())).to_owned();
    txn.query_one(&q).await?.map(|row| from_row(realm, &row)).transpose()
}

pub async fn find_by_id(txn: &DatabaseTransaction, realm: Realm, id: AccountId) -> Result<Option<Credential>> {
    let q = select_in(realm).and_where(Expr::col(col("id")).eq(id.0)).to_owned();
    txn.query_one(&q).await?.map(|row| from_row(realm, &row)).transpose()
}

/// Stores a new password hash and bumps the auth version; returns the new version.
pub async fn set_password(
    txn: &DatabaseTransaction,
    realm: Realm,
    id: AccountId,
    password_hash: &str,
) -> Result<Option<i32>> {
    let mut q = Query::update();
    q.table(table(realm.kind()))
        .value(col("password_hash"), password_hash)
        .value(col("auth_version"), Expr::col(col("auth_version")).add(1))
        .and_where(Expr::col(col("id")).eq(id.0));
    if let Some(tenant) = realm.tenant() {
        q.and_where(Expr::col(col("tenant_id")).eq(tenant.0));
    }
    if txn.execute(&q).await?.rows_affected() != 1 {
        return Ok(None);
    }
    Ok(find_by_id(txn, realm, id).await?.map(|c| c.auth_version))
}

/// Changes an account's display name.
pub async fn set_name(txn: &DatabaseTransaction, realm: Realm, id: AccountId, name: &str) -> Result<bool> {
    let mut q = Query::update();
    q.table(table(realm.kind())).value(col("name"), name).and_where(Expr::col(col("id")).eq(id.0));
    if let Some(tenant) = realm.tenant() {
        q.and_where(Expr::col(col("tenant_id")).eq(tenant.0));
    }
    Ok(txn.execute(&q).await?.rows_affected() == 1)
}

/// How many accounts a realm has: used to decide whether demo data is needed and by
/// the panels.
pub async fn count(txn: &DatabaseTransaction, realm: Realm) -> Result<i64> {
    let mut q = Query::select();
    q.from(table(realm.kind())).expr_as(Expr::col(col("id")).count(), col("n"));
    if let Some(tenant) = realm.tenant() {
        q.and_where(Expr::col(col("tenant_id")).eq(tenant.0));
    }
    Ok(match txn.query_one(&q).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    })
}

/// Staff of a store, for the merchant panel.
pub async fn list_staff(txn: &DatabaseTransaction, tenant: TenantId) -> Result<Vec<Credential>> {
    let realm = Realm::Staff(tenant);
    let q = select_in(realm).order_by(col("email"), sea_orm::Order::Asc).to_owned();
    txn.query_all(&q).await?.iter().map(|row| from_row(realm, row)).collect()
}

/// A store's customers, by email, optionally only those whose email or name contains
/// `search`; and how many match.
pub async fn list_customers(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    search: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<Credential>, i64)> {
    let realm = Realm::Customer(tenant);
    let mut q = select_in(realm);
    let mut n = Query::select();
    n.from(table(realm.kind()))
        .expr_as(Expr::col(col("id")).count(), col("n"))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0));
    if let Some(s) = search.map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", s.to_lowercase().replace(['%', '_'], ""));
        let cond =
            Expr::col(col("email")).like(&pattern).or(Expr::expr(Func::lower(Expr::col(col("name")))).like(&pattern));
        q.and_where(cond.clone());
        n.and_where(cond);
    }
    q.order_by(col("email"), sea_orm::Order::Asc).limit(limit).offset(offset);
    let rows = txn.query_all(&q).await?.iter().map(|row| from_row(realm, row)).collect::<Result<Vec<_>>>()?;
    let total = match txn.query_one(&n).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok((rows, total))
}
