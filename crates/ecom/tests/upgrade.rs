//! Upgrades: a database an older version left is brought up to date with its rows kept.
//! Each test makes the schema as it stood before a migration, writes rows the way that
//! version did, migrates, and reads them back through today's code. SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Backend;
use ecom_core::{Currency, Locale, Slug};
use ecom_store::{Db, DbOptions, tenants};
use sea_orm::{ConnectionTrait, Statement, Value};
use std::time::Duration;
use uuid::Uuid;

async fn open(backend: Backend, dir: &std::path::Path) -> Option<Db> {
    let url = common::fresh_database(backend, dir).await?;
    Some(Db::connect(&DbOptions { url, max_connections: 2, acquire_timeout: Duration::from_secs(10) }).await.unwrap())
}

/// m0023: the text, HTML and headers of messages queued before it move to
/// `notification_bodies`, a store's and a platform one alike; the queue and the log
/// keep working on them.
async fn message_bodies_move_to_their_own_table(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = open(backend, dir.path()).await else { return };
    db.migrate_until("m0023_notification_bodies").await.unwrap();
    let store = tenants::create(
        &db,
        &tenants::NewTenant {
            slug: Slug::parse("demo").unwrap(),
            name: "Demo".into(),
            currency: Currency::parse("USD").unwrap(),
            locale: Locale::parse("en-US").unwrap(),
        },
    )
    .await
    .unwrap();
    let conn = db.connection();
    let backend_kind = conn.get_database_backend();
    let (store_msg, platform_msg) = (Uuid::now_v7(), Uuid::now_v7());
    let headers = r#"[["List-Unsubscribe","<https://demo.example/u>"]]"#;
    for (id, tenant, text, html, hdrs, status) in [
        (store_msg, Some(store.id.0), "Your order 1001", "<p>Your order <b>1001</b></p>", headers, "pending"),
        (platform_msg, None, "Reset your password", "", "", "sent"),
    ] {
        let sql = "INSERT INTO notifications (id, tenant_id, channel, recipient, template, subject, body_text, \
                   body_html, status, attempts, next_attempt_at, claimed_by, provider_id, last_error, created_at, \
                   headers, link) VALUES ($1, $2, 'email', 'pat@example.com', 'order_placed', 'Hello', $3, $4, $5, \
                   0, $6, '', '', '', $6, $7, '')";
        let now = chrono::Utc::now();
        let values: Vec<Value> =
            vec![id.into(), tenant.into(), text.into(), html.into(), status.into(), now.into(), hdrs.into()];
        conn.execute_raw(Statement::from_sql_and_values(backend_kind, sql, values)).await.unwrap();
    }

    db.migrate().await.unwrap();

    let txn = db.platform_txn().await.unwrap();
    let (rows, total) = ecom_store::notifications::list(&txn, None, 10).await.unwrap();
    assert_eq!(total, 2);
    assert!(rows.iter().all(|r| r.subject == "Hello" && r.recipient == "pat@example.com"), "{rows:?}");
    let bodies = ecom_store::notifications::bodies(&txn, &[store_msg, platform_msg]).await.unwrap();
    let kept = &bodies[&store_msg];
    assert_eq!((kept.tenant_id, kept.body_text.as_str()), (Some(store.id.0), "Your order 1001"));
    assert_eq!(kept.body_html, "<p>Your order <b>1001</b></p>");
    assert_eq!(
        ecom_store::notifications::headers_of(kept),
        [("List-Unsubscribe".to_owned(), "<https://demo.example/u>".to_owned())]
    );
    let platform = &bodies[&platform_msg];
    assert_eq!(
        (platform.tenant_id, platform.body_text.as_str(), platform.headers.as_str()),
        (None, "Reset your password", "")
    );
    // The waiting one is still claimable: the queue row lost its bodies, not its place.
    let now = chrono::Utc::now();
    let claimed = ecom_store::notifications::LEASE
        .claim(&txn, "upgrade-test", now, now + chrono::Duration::minutes(1), 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|r| r.id).collect::<Vec<_>>(), [store_msg]);
    txn.commit().await.unwrap();

    // The bodies went out of the queue table; a message deleted takes its body along.
    let gone = conn.execute_unprepared("SELECT body_html FROM notifications").await;
    assert!(gone.is_err(), "body_html is still a column of notifications");
    let txn = db.platform_txn().await.unwrap();
    txn.execute_raw(Statement::from_sql_and_values(
        backend_kind,
        "DELETE FROM notifications WHERE id = $1",
        [platform_msg.into()],
    ))
    .await
    .unwrap();
    let left = ecom_store::notifications::bodies(&txn, &[store_msg, platform_msg]).await.unwrap();
    assert_eq!(left.keys().copied().collect::<Vec<_>>(), [store_msg]);
    txn.commit().await.unwrap();
}
backends!(message_bodies_move_to_their_own_table);
