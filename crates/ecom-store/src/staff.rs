//! A store's team: members' roles and areas, and invitations. Members are rows of the
//! `staff` account table (see [`crate::accounts`]); invitations live in
//! `staff_invitations` until they are accepted, revoked or expire.

use crate::{Result, StoreError};
use chrono::{DateTime, Utc};
use ecom_core::staff::Permissions;
use ecom_core::{AccountId, Email, StaffRole, TenantId};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use uuid::Uuid;

fn col(name: &str) -> Alias {
    Alias::new(name)
}

const INVITES: &str = "staff_invitations";

/// An invitation as stored.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub role: StaffRole,
    pub areas: Permissions,
    pub expires_at: DateTime<Utc>,
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Invitation {
    /// Neither accepted nor revoked, and not expired at `now`.
    pub fn is_pending(&self, now: DateTime<Utc>) -> bool {
        self.accepted_at.is_none() && self.revoked_at.is_none() && self.expires_at > now
    }
}

fn invitation(row: &QueryResult) -> Result<Invitation> {
    let corrupt = |detail: String| StoreError::Corrupt { table: "staff_invitations", detail };
    let role: String = row.try_get("", "role")?;
    let areas: String = row.try_get("", "areas")?;
    Ok(Invitation {
        id: row.try_get("", "id")?,
        email: row.try_get("", "email")?,
        role: StaffRole::parse(&role).ok_or_else(|| corrupt(format!("role {role}")))?,
        areas: Permissions::parse(&areas).map_err(|_| corrupt(format!("areas {areas}")))?,
        expires_at: row.try_get("", "expires_at")?,
        invited_by: row.try_get("", "invited_by")?,
        created_at: row.try_get("", "created_at")?,
        accepted_at: row.try_get("", "accepted_at")?,
        revoked_at: row.try_get("", "revoked_at")?,
    })
}

fn select_invites(tenant: TenantId) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .from(col(INVITES))
        .columns(
            ["id", "email", "role", "areas", "expires_at", "invited_by", "created_at", "accepted_at", "revoked_at"]
                .map(col),
        )
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0))
        .to_owned()
}

/// A new invitation to store; only the token's hash is kept.
pub struct NewInvitation<'a> {
    pub email: &'a Email,
    pub role: StaffRole,
    pub areas: Permissions,
    pub token_hash: &'a str,
    pub expires_at: DateTime<Utc>,
    pub invited_by: &'a str,
}

pub async fn insert_invitation(txn: &DatabaseTransaction, tenant: TenantId, new: NewInvitation<'_>) -> Result<Uuid> {
    let id = Uuid::now_v7();
    let stmt = Query::insert()
        .into_table(col(INVITES))
        .columns(
            ["id", "tenant_id", "email", "role", "areas", "token_hash", "expires_at", "invited_by", "created_at"]
                .map(col),
        )
        .values_panic([
            Expr::value(id),
            Expr::value(tenant.0),
            Expr::value(new.email.as_str()),
            Expr::value(new.role.as_str()),
            Expr::value(new.areas.to_string()),
            Expr::value(new.token_hash),
            Expr::value(new.expires_at),
            Expr::value(new.invited_by.chars().take(300).collect::<String>()),
            Expr::value(Utc::now()),
        ])
        .to_owned();
    txn.execute(&stmt).await?;
    Ok(id)
}

/// Every invitation still pending at `now`, newest first.
pub async fn pending(txn: &DatabaseTransaction, tenant: TenantId, now: DateTime<Utc>) -> Result<Vec<Invitation>> {
    let q = select_invites(tenant)
        .and_where(Expr::col(col("accepted_at")).is_null())
        .and_where(Expr::col(col("revoked_at")).is_null())
        .and_where(Expr::col(col("expires_at")).gt(now))
        .order_by(col("created_at"), sea_orm::Order::Desc)
        .to_owned();
    txn.query_all(&q).await?.iter().map(invitation).collect()
}

/// The pending invitation for `email`, if there is one.
pub async fn pending_for(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    email: &Email,
    now: DateTime<Utc>,
) -> Result<Option<Invitation>> {
    Ok(pending(txn, tenant, now).await?.into_iter().find(|i| i.email == email.as_str()))
}

pub async fn find_invitation(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid) -> Result<Option<Invitation>> {
    let q = select_invites(tenant).and_where(Expr::col(col("id")).eq(id)).to_owned();
    txn.query_one(&q).await?.as_ref().map(invitation).transpose()
}

/// The invitation a token belongs to, whatever its state.
pub async fn invitation_by_token(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    token_hash: &str,
) -> Result<Option<Invitation>> {
    let q = select_invites(tenant).and_where(Expr::col(col("token_hash")).eq(token_hash)).to_owned();
    txn.query_one(&q).await?.as_ref().map(invitation).transpose()
}

/// Marks a pending invitation accepted, in one conditional statement so that a token
/// works once even when two requests race; false when it was no longer pending.
pub async fn mark_accepted(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let q = Query::update()
        .table(col(INVITES))
        .value(col("accepted_at"), now)
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0))
        .and_where(Expr::col(col("id")).eq(id))
        .and_where(Expr::col(col("accepted_at")).is_null())
        .and_where(Expr::col(col("revoked_at")).is_null())
        .and_where(Expr::col(col("expires_at")).gt(now))
        .to_owned();
    Ok(txn.execute(&q).await?.rows_affected() == 1)
}

/// Revokes a pending invitation; false when it was not pending.
pub async fn revoke(txn: &DatabaseTransaction, tenant: TenantId, id: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let q = Query::update()
        .table(col(INVITES))
        .value(col("revoked_at"), now)
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0))
        .and_where(Expr::col(col("id")).eq(id))
        .and_where(Expr::col(col("accepted_at")).is_null())
        .and_where(Expr::col(col("revoked_at")).is_null())
        .to_owned();
    Ok(txn.execute(&q).await?.rows_affected() == 1)
}

/// Gives a not-yet-accepted invitation a new token and lifetime (the old link stops
/// working); false when it was accepted or revoked.
pub async fn renew(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool> {
    let q = Query::update()
        .table(col(INVITES))
        .value(col("token_hash"), token_hash)
        .value(col("expires_at"), expires_at)
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0))
        .and_where(Expr::col(col("id")).eq(id))
        .and_where(Expr::col(col("accepted_at")).is_null())
        .and_where(Expr::col(col("revoked_at")).is_null())
        .to_owned();
    Ok(txn.execute(&q).await?.rows_affected() == 1)
}

/// How many invitations were made since `since` (for the per-store invite limit that
/// holds across nodes).
pub async fn made_since(txn: &DatabaseTransaction, tenant: TenantId, since: DateTime<Utc>) -> Result<i64> {
    let q = Query::select()
        .from(col(INVITES))
        .expr_as(Expr::col(col("id")).count(), col("n"))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0))
        .and_where(Expr::col(col("created_at")).gte(since))
        .to_owned();
    Ok(match txn.query_one(&q).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    })
}

/// Sets a member's role and areas.
pub async fn set_access(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    member: AccountId,
    role: StaffRole,
    areas: Permissions,
) -> Result<bool> {
    let q = Query::update()
        .table(col("staff"))
        .value(col("role"), role.as_str())
        .value(col("areas"), areas.to_string())
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0))
        .and_where(Expr::col(col("id")).eq(member.0))
        .to_owned();
    Ok(txn.execute(&q).await?.rows_affected() == 1)
}

/// Deletes a member's account; their sessions stop at their next request, as every
/// request looks the account up. Their one-time tokens go with it.
pub async fn remove(txn: &DatabaseTransaction, tenant: TenantId, member: AccountId) -> Result<bool> {
    let tokens = Query::delete()
        .from_table(col("password_resets"))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0))
        .and_where(Expr::col(col("account_kind")).eq("staff"))
        .and_where(Expr::col(col("account_id")).eq(member.0))
        .to_owned();
    txn.execute(&tokens).await?;
    let q = Query::delete()
        .from_table(col("staff"))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0))
        .and_where(Expr::col(col("id")).eq(member.0))
        .to_owned();
    Ok(txn.execute(&q).await?.rows_affected() == 1)
}

/// How many owners the store has.
pub async fn owner_count(txn: &DatabaseTransaction, tenant: TenantId) -> Result<i64> {
    let q = Query::select()
        .from(col("staff"))
        .expr_as(Expr::col(col("id")).count(), col("n"))
        .and_where(Expr::col(col("tenant_id")).eq(tenant.0))
        .and_where(Expr::col(col("role")).eq(StaffRole::Owner.as_str()))
        .to_owned();
    Ok(match txn.query_one(&q).await? {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    })
}
