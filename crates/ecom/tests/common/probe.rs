//! A probe consumer for the bus tests.

use ecom_bus::{Consumer, ConsumerError, Event, Topic};
use ecom_store::Db;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

/// A consumer of order events whose effect is its receipt; counts calls and effects,
/// and fails while `failures_left` > 0 or while `broken`.
pub struct Probe {
    pub name: &'static str,
    pub db: Db,
    pub failures_left: AtomicU32,
    pub broken: AtomicBool,
    pub calls: AtomicU32,
    pub effects: AtomicU32,
    pub attempts_at: std::sync::Mutex<Vec<Instant>>,
}

impl Probe {
    pub fn new(name: &'static str, db: &Db, failures: u32, broken: bool) -> Arc<Self> {
        Arc::new(Self {
            name,
            db: db.clone(),
            failures_left: AtomicU32::new(failures),
            broken: AtomicBool::new(broken),
            calls: AtomicU32::new(0),
            effects: AtomicU32::new(0),
            attempts_at: std::sync::Mutex::new(Vec::new()),
        })
    }
}

#[async_trait::async_trait]
impl Consumer for Probe {
    fn name(&self) -> &'static str {
        self.name
    }

    fn topics(&self) -> &[Topic] {
        Topic::ORDERS
    }

    async fn handle(&self, event: &Event) -> Result<(), ConsumerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.attempts_at.lock().unwrap().push(Instant::now());
        if self.broken.load(Ordering::SeqCst) {
            return Err(ConsumerError::failed("warehouse unreachable"));
        }
        if self.failures_left.load(Ordering::SeqCst) > 0 {
            self.failures_left.fetch_sub(1, Ordering::SeqCst);
            return Err(ConsumerError::failed("temporarily unavailable"));
        }
        event.order().map_err(|e| ConsumerError::failed(e.to_string()))?;
        let Some(txn) = self.begin_once(&self.db, event).await? else { return Ok(()) };
        txn.commit().await.map_err(ecom_store::StoreError::from)?;
        self.effects.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
