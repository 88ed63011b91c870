//! A store's team: inviting people by email, accepting an invitation, changing a
//! member's role and areas, removing a member, handing over ownership. Every change
//! is checked against the acting member's role ([`Access::may_manage`]) and written
//! to the audit log in the same transaction.

use crate::accounts::{INVITE_TTL_DAYS, SignedIn, new_token, token_hash};
use crate::ratelimit::Limit;
use crate::{Accounts, Result, ServiceError, passwords};
use chrono::{Duration, Utc};
use ecom_core::staff::{Access, Permissions, parse_grant};
use ecom_core::{AccountId, Email, Invalid, NewPassword, Realm, StaffRole, Tenant, TenantId};
use ecom_store::accounts::{self as accounts_repo, Credential, NewAccount};
use ecom_store::staff::{self as repo, Invitation, NewInvitation};
use ecom_store::{DatabaseTransaction, Db, StoreError};
use uuid::Uuid;

const NOT_A_MANAGER: &str = "Only an owner or an admin can manage the team — ask an owner.";
const OWNERS_ONLY: &str = "Only an owner can invite, change or remove owners and admins — ask an owner.";
const LAST_OWNER: &str = "The store needs at least one owner: make someone else an owner first.";
const BAD_INVITE: &str = "This invitation has expired, was revoked or was already used. Ask the store for a new one.";

/// The team page's content.
pub struct Team {
    pub members: Vec<Credential>,
    pub invitations: Vec<Invitation>,
}

/// What an invitation link leads to.
pub enum InviteLookup {
    /// Usable: the invitation, and whether the address already has a (customer)
    /// account in this store, whose password then proves it is theirs.
    Usable { invitation: Invitation, existing_account: bool },
    /// Expired, revoked, used or unknown.
    Gone,
}

/// How many staff accounts and pending invitations a store has: what a plan's staff
/// limit counts.
pub async fn seats_used(db: &Db, tenant: TenantId) -> Result<i64> {
    let txn = db.tenant_txn(tenant).await?;
    let seats = seats_in(&txn, tenant).await?;
    txn.commit().await.map_err(StoreError::from)?;
    Ok(seats)
}

/// [`seats_used`] in the caller's transaction.
async fn seats_in(txn: &ecom_store::DatabaseTransaction, tenant: TenantId) -> Result<i64> {
    let members = accounts_repo::count(txn, Realm::Staff(tenant)).await?;
    let pending = repo::pending(txn, tenant, Utc::now()).await?.len();
    Ok(members + i64::try_from(pending).unwrap_or(i64::MAX))
}

fn actor_label(actor: &Credential) -> String {
    format!("staff {}", actor.email)
}

fn access_of(actor: &Credential) -> Result<Access> {
    actor.access().filter(|a| a.manages_team()).ok_or(ServiceError::Unauthorized(NOT_A_MANAGER))
}

fn describe(role: StaffRole, areas: Permissions) -> String {
    if role == StaffRole::Staff { format!("{} ({})", role.as_str(), areas) } else { role.as_str().to_owned() }
}

async fn commit(txn: DatabaseTransaction) -> Result<()> {
    txn.commit().await.map_err(StoreError::from)?;
    Ok(())
}

impl Accounts {
    /// The store's members (by email) and pending invitations (newest first).
    pub async fn team(&self, tenant: TenantId) -> Result<Team> {
        let txn = self.db().tenant_txn(tenant).await?;
        let members = accounts_repo::list_staff(&txn, tenant).await?;
        let invitations = repo::pending(&txn, tenant, Utc::now()).await?;
        commit(txn).await?;
        Ok(Team { members, invitations })
    }

    /// A member of the store, by id.
    pub async fn member(&self, tenant: TenantId, id: AccountId) -> Result<Credential> {
        let txn = self.db().tenant_txn(tenant).await?;
        let found = accounts_repo::find_by_id(&txn, Realm::Staff(tenant), id).await?;
        commit(txn).await?;
        found.ok_or(ServiceError::NotFound)
    }

    /// Invites `email` with a role and areas: checks everything first, then records
    /// the invitation and queues the email with its accept link (`link_base?token=…`)
    /// in one transaction.
    pub async fn invite_staff(
        &self,
        actor: &Credential,
        tenant: &Tenant,
        email: &str,
        role: &str,
        areas: &[&str],
        link_base: &str,
    ) -> Result<Invitation> {
        let access = access_of(actor)?;
        let email = Email::parse(email)?;
        let (role, areas) = parse_grant(role, areas)?;
        if !access.may_manage(role) {
            return Err(ServiceError::Unauthorized(OWNERS_ONLY));
        }
        let realm = Realm::Staff(tenant.id);
        let now = Utc::now();
        let txn = self.db().tenant_txn(tenant.id).await?;
        // The plan's staff accounts count members and pending invitations alike,
        // one invitation at a time per store.
        crate::plans::take_turn(&txn, tenant.id, crate::plans::Limit::Staff).await?;
        let seats = u64::try_from(seats_in(&txn, tenant.id).await?).unwrap_or(u64::MAX);
        crate::plans::ensure_within_txn(&txn, tenant.id, crate::plans::Limit::Staff, seats.saturating_add(1)).await?;
        if accounts_repo::find_by_email(&txn, realm, &email).await?.is_some() {
            return Err(Invalid::new("email", format!("{email} is already a member of this team")).into());
        }
        if repo::pending_for(&txn, tenant.id, &email, now).await?.is_some() {
            return Err(Invalid::new(
                "email",
                format!("{email} has been invited already: resend or revoke that invitation below"),
            )
            .into());
        }
        self.limits()
            .check(Limit::InvitePerStore, &tenant.id.to_string())
            .map_err(|retry_after_secs| ServiceError::RateLimited { retry_after_secs })?;
        let token = new_token();
        let expires_at = now + Duration::days(INVITE_TTL_DAYS);
        let invited_by = actor_label(actor);
        let id = repo::insert_invitation(
            &txn,
            tenant.id,
            NewInvitation {
                email: &email,
                role,
                areas,
                token_hash: &token_hash(&token),
                expires_at,
                invited_by: &invited_by,
            },
        )
        .await?;
        self.send_invitation(&txn, tenant, actor, email.as_str(), role, areas, &format!("{link_base}?token={token}"))
            .await?;
        ecom_store::orders::audit(&txn, tenant.id, &invited_by, "staff.invite", email.as_str(), &describe(role, areas))
            .await?;
        let invitation = repo::find_invitation(&txn, tenant.id, id).await?.ok_or(ServiceError::NotFound)?;
        commit(txn).await?;
        Ok(invitation)
    }

    #[expect(clippy::too_many_arguments, reason = "one email, its parts named")]
    async fn send_invitation(
        &self,
        txn: &DatabaseTransaction,
        tenant: &Tenant,
        actor: &Credential,
        to: &str,
        role: StaffRole,
        areas: Permissions,
        link: &str,
    ) -> Result<()> {
        let store = &tenant.name;
        let who = if actor.name.is_empty() { actor.email.clone() } else { format!("{} ({})", actor.name, actor.email) };
        let what = match role {
            StaffRole::Owner => "an owner, with every area and the team".to_owned(),
            StaffRole::Admin => "an admin, with every area of the panel".to_owned(),
            StaffRole::Staff => {
                let labels: Vec<&str> = areas.iter().map(|p| p.label()).collect();
                format!("staff, working in: {}", labels.join(", "))
            }
        };
        let subject = format!("Join the {store} team");
        let body = format!(
            "Hello,\n\n{who} invites you ({to}) to the merchant panel of {store}, as {what}.\n\n\
             Accept within {INVITE_TTL_DAYS} days with this link:\n\n{link}\n\n\
             If you did not expect this, ignore this message; nothing happens without you.\n"
        );
        self.mailer().send(txn, Some(tenant.id), to, &subject, &body).await
    }

    /// Sends a pending (or expired, not revoked) invitation again with a new link and
    /// a fresh lifetime; the old link stops working.
    pub async fn resend_invite(&self, actor: &Credential, tenant: &Tenant, id: Uuid, link_base: &str) -> Result<()> {
        let access = access_of(actor)?;
        let txn = self.db().tenant_txn(tenant.id).await?;
        let inv = repo::find_invitation(&txn, tenant.id, id).await?.ok_or(ServiceError::NotFound)?;
        if !access.may_manage(inv.role) {
            return Err(ServiceError::Unauthorized(OWNERS_ONLY));
        }
        self.limits()
            .check(Limit::InvitePerStore, &tenant.id.to_string())
            .map_err(|retry_after_secs| ServiceError::RateLimited { retry_after_secs })?;
        let token = new_token();
        if !repo::renew(&txn, tenant.id, id, &token_hash(&token), Utc::now() + Duration::days(INVITE_TTL_DAYS)).await? {
            return Err(ServiceError::NotFound);
        }
        self.send_invitation(
            &txn,
            tenant,
            actor,
            &inv.email,
            inv.role,
            inv.areas,
            &format!("{link_base}?token={token}"),
        )
        .await?;
        ecom_store::orders::audit(&txn, tenant.id, &actor_label(actor), "staff.invite.resend", &inv.email, "").await?;
        commit(txn).await
    }

    /// Revokes a pending invitation: its link stops working at once.
    pub async fn revoke_invite(&self, actor: &Credential, tenant: &Tenant, id: Uuid) -> Result<()> {
        let access = access_of(actor)?;
        let txn = self.db().tenant_txn(tenant.id).await?;
        let inv = repo::find_invitation(&txn, tenant.id, id).await?.ok_or(ServiceError::NotFound)?;
        if !access.may_manage(inv.role) {
            return Err(ServiceError::Unauthorized(OWNERS_ONLY));
        }
        if !repo::revoke(&txn, tenant.id, id, Utc::now()).await? {
            return Err(ServiceError::NotFound);
        }
        ecom_store::orders::audit(&txn, tenant.id, &actor_label(actor), "staff.invite.revoke", &inv.email, "").await?;
        commit(txn).await
    }

    /// What an invitation link shows, without using it.
    pub async fn lookup_invite(&self, tenant: TenantId, token: &str) -> Result<InviteLookup> {
        if token.len() != 64 {
            return Ok(InviteLookup::Gone);
        }
        let txn = self.db().tenant_txn(tenant).await?;
        let found = repo::invitation_by_token(&txn, tenant, &token_hash(token)).await?;
        let result = match found {
            Some(invitation) if invitation.is_pending(Utc::now()) => {
                let email = Email::parse(&invitation.email)?;
                let existing_account =
                    accounts_repo::find_by_email(&txn, Realm::Customer(tenant), &email).await?.is_some();
                InviteLookup::Usable { invitation, existing_account }
            }
            _ => InviteLookup::Gone,
        };
        commit(txn).await?;
        Ok(result)
    }

    /// Accepts an invitation: makes the staff account with the invitation's role and
    /// areas and returns its session. A new person chooses a name and password; a
    /// person who already has an account in this store under that email proves it
    /// with that account's password and keeps it. The token works once.
    pub async fn accept_invite(
        &self,
        tenant: &Tenant,
        ip: &str,
        token: &str,
        name: &str,
        password: &str,
    ) -> Result<SignedIn> {
        let InviteLookup::Usable { invitation, existing_account } = self.lookup_invite(tenant.id, token).await? else {
            return Err(ServiceError::Unauthorized(BAD_INVITE));
        };
        let email = Email::parse(&invitation.email)?;
        let realm = Realm::Staff(tenant.id);
        let (hash, name) = if existing_account {
            // Same checks and limits as signing in with that account.
            let who = self.sign_in(Realm::Customer(tenant.id), ip, email.as_str(), password).await?;
            let txn = self.db().tenant_txn(tenant.id).await?;
            let cred = accounts_repo::find_by_id(&txn, who.realm, who.id).await?.ok_or(ServiceError::NotFound)?;
            commit(txn).await?;
            let name = if name.trim().is_empty() { cred.name.clone() } else { name.trim().to_owned() };
            (cred.password_hash, name)
        } else {
            let new = NewPassword::parse(password)?;
            (passwords::hash(new.expose().to_owned()).await?, name.trim().to_owned())
        };
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(Invalid::new("name", "enter your name (1 to 200 characters)").into());
        }
        let now = Utc::now();
        let txn = self.db().tenant_txn(tenant.id).await?;
        if !repo::mark_accepted(&txn, tenant.id, invitation.id, now).await? {
            return Err(ServiceError::Unauthorized(BAD_INVITE));
        }
        let id = accounts_repo::insert(
            &txn,
            NewAccount { realm, email: &email, name: &name, password_hash: &hash, role: invitation.role },
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                ServiceError::Invalid(Invalid::new("email", format!("{email} is already a member: sign in instead")))
            }
            other => other.into(),
        })?;
        repo::set_access(&txn, tenant.id, id, invitation.role, invitation.areas).await?;
        // The emailed link proved the address: record it as a used verification.
        let proof = token_hash(&new_token());
        let verify = ecom_store::tokens::Purpose::Verify;
        ecom_store::tokens::insert(&txn, realm, id, verify, &proof, now + Duration::minutes(1)).await?;
        ecom_store::tokens::consume(&txn, realm, verify, &proof, now).await?;
        ecom_store::orders::audit(
            &txn,
            tenant.id,
            &format!("staff {email}"),
            "staff.accept",
            email.as_str(),
            &format!("{}; invited by {}", describe(invitation.role, invitation.areas), invitation.invited_by),
        )
        .await?;
        commit(txn).await?;
        Ok(SignedIn { realm, id, auth_version: 1 })
    }

    /// Changes a member's role and areas. Only owners touch owners and admins; the
    /// last owner stays an owner.
    pub async fn update_member(
        &self,
        actor: &Credential,
        tenant: &Tenant,
        member: AccountId,
        role: &str,
        areas: &[&str],
    ) -> Result<()> {
        let access = access_of(actor)?;
        let (role, areas) = parse_grant(role, areas)?;
        let txn = self.db().tenant_txn(tenant.id).await?;
        // Team changes of a store take turns, so two owners removing or demoting each
        // other at once cannot leave the store without one.
        crate::plans::take_turn(&txn, tenant.id, crate::plans::Limit::Staff).await?;
        let target =
            accounts_repo::find_by_id(&txn, Realm::Staff(tenant.id), member).await?.ok_or(ServiceError::NotFound)?;
        let current = target.role.ok_or(ServiceError::NotFound)?;
        if !access.may_manage(current) || !access.may_manage(role) {
            return Err(ServiceError::Unauthorized(OWNERS_ONLY));
        }
        if current == StaffRole::Owner && role != StaffRole::Owner && repo::owner_count(&txn, tenant.id).await? <= 1 {
            return Err(ServiceError::Unauthorized(LAST_OWNER));
        }
        repo::set_access(&txn, tenant.id, member, role, areas).await?;
        let detail = format!("{} → {}", describe(current, target.areas), describe(role, areas));
        ecom_store::orders::audit(&txn, tenant.id, &actor_label(actor), "staff.update", &target.email, &detail).await?;
        commit(txn).await
    }

    /// Removes a member: their account goes, and with it every session they have.
    pub async fn remove_member(&self, actor: &Credential, tenant: &Tenant, member: AccountId) -> Result<()> {
        let access = access_of(actor)?;
        let txn = self.db().tenant_txn(tenant.id).await?;
        // Team changes of a store take turns, so two owners removing or demoting each
        // other at once cannot leave the store without one.
        crate::plans::take_turn(&txn, tenant.id, crate::plans::Limit::Staff).await?;
        let target =
            accounts_repo::find_by_id(&txn, Realm::Staff(tenant.id), member).await?.ok_or(ServiceError::NotFound)?;
        let role = target.role.ok_or(ServiceError::NotFound)?;
        if !access.may_manage(role) {
            return Err(ServiceError::Unauthorized(OWNERS_ONLY));
        }
        if role == StaffRole::Owner && repo::owner_count(&txn, tenant.id).await? <= 1 {
            return Err(ServiceError::Unauthorized(LAST_OWNER));
        }
        if !repo::remove(&txn, tenant.id, member).await? {
            return Err(ServiceError::NotFound);
        }
        ecom_store::orders::audit(&txn, tenant.id, &actor_label(actor), "staff.remove", &target.email, role.as_str())
            .await?;
        commit(txn).await
    }

    /// Hands the store over: `member` becomes an owner and the acting owner an admin.
    pub async fn transfer_ownership(&self, actor: &Credential, tenant: &Tenant, member: AccountId) -> Result<()> {
        if actor.role != Some(StaffRole::Owner) {
            return Err(ServiceError::Unauthorized("Only an owner can hand over the store — ask an owner."));
        }
        if actor.id == member {
            return Err(Invalid::new("member", "choose another member to hand the store to").into());
        }
        let txn = self.db().tenant_txn(tenant.id).await?;
        // Team changes of a store take turns, so two owners removing or demoting each
        // other at once cannot leave the store without one.
        crate::plans::take_turn(&txn, tenant.id, crate::plans::Limit::Staff).await?;
        let target =
            accounts_repo::find_by_id(&txn, Realm::Staff(tenant.id), member).await?.ok_or(ServiceError::NotFound)?;
        repo::set_access(&txn, tenant.id, member, StaffRole::Owner, Permissions::none()).await?;
        repo::set_access(&txn, tenant.id, actor.id, StaffRole::Admin, Permissions::none()).await?;
        ecom_store::orders::audit(
            &txn,
            tenant.id,
            &actor_label(actor),
            "staff.transfer",
            &target.email,
            &format!("owner now {}; {} is an admin", target.email, actor.email),
        )
        .await?;
        commit(txn).await
    }
}
