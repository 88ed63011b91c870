//! The database handle: connection pool, migrations, and tenant-scoped transactions.

use crate::migration::{self, APP_ROLE};
use crate::{Result, StoreError};
use ecom_core::TenantId;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use std::time::Duration;

/// Which engine is behind the handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open the pool.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// `sqlite://path?mode=rwc` or `postgres://…`.
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// Connection counts for `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The shared database handle. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
    max_connections: u32,
    /// SQL statements run since start (also `ecom_db_statements_total`).
    statements: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the pool. SQLite files are created when missing and run in WAL mode.
    pub async fn connect(options: &DbOptions) -> Result<Self> {
        let backend = if options.url.starts_with("postgres://") || options.url.starts_with("postgresql://") {
            Backend::Postgres
        } else if options.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Db(sea_orm::DbErr::Custom(
                "database URL must start with sqlite: or postgres://".into(),
            )));
        };
        let mut opts = ConnectOptions::new(options.url.clone());
        opts.max_connections(options.max_connections)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            .idle_timeout(Duration::from_secs(300))
            .sqlx_logging(false);
        if backend == Backend::Sqlite {
            opts.map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5))
                    // SQLite's default page cache is 2 MB: a store of any size then
                    // reads most B-tree pages back through pread() on every query.
                    // 64 MB of cache (per connection; the default pool has one), and
                    // the file memory-mapped for reads (pages the kernel shares and can
                    // drop), keep the working set in memory. Measured with a 200,000-
                    // message backlog (bench/results/notify.md): 769 messages/s against
                    // 465 with 16 MB, for 44 MiB more peak RSS; a larger map was a
                    // little faster but its pages count in RSS.
                    .pragma("cache_size", "-65536")
                    .pragma("mmap_size", "268435456")
                    .pragma("temp_store", "memory")
            });
        }
        let mut conn = Database::connect(opts).await?;
        let statements = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = statements.clone();
        conn.set_metric_callback(move |info| {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("ecom_db_statements_total").increment(1);
            if info.failed {
                metrics::counter!("ecom_db_statement_errors_total").increment(1);
            }
            // Every statement with its time, for finding where time goes:
            // `RUST_LOG=warn,ecom_sql=trace`.
            tracing::trace!(target: "ecom_sql", us = info.elapsed.as_micros() as u64, failed = info.failed,
                sql = %info.statement.sql);
        });
        Ok(Self { conn, backend, max_connections: options.max_connections, statements })
    }

    /// How many SQL statements this pool has run: lets tests and benchmarks check
    /// that a request costs the queries it should.
    pub fn statements(&self) -> u64 {
        self.statements.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The raw connection, for the few callers that manage their own transactions
    /// (migrations, tests). Tenant data must go through [`Db::tenant_txn`].
    pub fn connection(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Brings the schema up to date. On PostgreSQL an advisory lock makes concurrent
    /// starts of several nodes wait for each other instead of racing.
    pub async fn migrate(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            let pool = self.conn.get_postgres_connection_pool();
            let mut lock_conn = pool.acquire().await.map_err(sqlx_err)?;
            const LOCK_KEY: i64 = 0x0ec0_0001;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(LOCK_KEY)
                .execute(&mut *lock_conn)
                .await
                .map_err(sqlx_err)?;
            let result = migration::run(&self.conn).await;
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(LOCK_KEY)
                .execute(&mut *lock_conn)
                .await
                .map_err(sqlx_err)?;
            result?;
        } else {
            migration::run(&self.conn).await?;
        }
        Ok(())
    }

    /// Applies the migrations before `name` that are not applied yet, and stops there:
    /// lets an upgrade test make the schema an older version left, write rows the way
    /// that version did, then [`Db::migrate`]. An unknown name is an error.
    pub async fn migrate_until(&self, name: &str) -> Result<()> {
        migration::run_until(&self.conn, name).await?;
        Ok(())
    }

    /// `SELECT 1`, for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        self.conn.ping().await?;
        Ok(())
    }

    /// Refreshes the planner's statistics after a bulk write. Without them PostgreSQL
    /// plans a freshly imported catalog as if tables were empty (nested loops over
    /// thousands of rows: 600 ms instead of 4 ms for a collection page).
    pub async fn analyze(&self, tables: &[&str]) -> Result<()> {
        for table in tables {
            if !table.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                continue;
            }
            self.conn.execute_unprepared(&format!("ANALYZE {table}")).await?;
        }
        Ok(())
    }

    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle) = match self.backend {
            Backend::Postgres => {
                let p = self.conn.get_postgres_connection_pool();
                (p.size(), p.num_idle() as u32)
            }
            Backend::Sqlite => {
                let p = self.conn.get_sqlite_connection_pool();
                (p.size(), p.num_idle() as u32)
            }
        };
        PoolStats { size, idle, max: self.max_connections }
    }

    /// A transaction that can see and write one tenant's rows only. On PostgreSQL it
    /// drops to the plain application role and sets `ecom.tenant_id` for this
    /// transaction alone, so row-level security backs up the `tenant_id` filters.
    pub async fn tenant_txn(&self, tenant: TenantId) -> Result<DatabaseTransaction> {
        let txn = self.begin().await?;
        if self.backend == Backend::Postgres {
            // The id is a formatted UUID, never user text, so it is safe to inline;
            // one round trip sets both.
            txn.execute_unprepared(&format!(
                "SET LOCAL ROLE {APP_ROLE}; SELECT set_config('ecom.tenant_id', '{}', true)",
                tenant.0
            ))
            .await?;
        }
        Ok(txn)
    }

    /// A transaction for platform-level work that spans tenants: resolving a host,
    /// the super-admin panel, platform accounts. Row-level security lets it through
    /// because it declares platform scope; tenant-facing code never calls it.
    pub async fn platform_txn(&self) -> Result<DatabaseTransaction> {
        let txn = self.begin().await?;
        if self.backend == Backend::Postgres {
            txn.execute_unprepared(&format!(
                "SET LOCAL ROLE {APP_ROLE}; SELECT set_config('ecom.scope', 'platform', true)"
            ))
            .await?;
        }
        Ok(txn)
    }

    /// Whether PostgreSQL's autovacuum is off for this server (`false` on SQLite). The
    /// outbox and queue tables update every row they hold several times: without vacuum
    /// their indexes fill with dead entries and their statistics go stale, and the relay
    /// slows down (bench/results/notify.md: a million notifications at ~1,540/s with it
    /// off, 3,584/s with it on).
    pub async fn autovacuum_off(&self) -> Result<bool> {
        if self.backend != Backend::Postgres {
            return Ok(false);
        }
        let row = self
            .conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT current_setting('autovacuum')",
            ))
            .await?;
        let setting = row.map(|r| r.try_get_by_index::<String>(0)).transpose()?;
        Ok(setting.as_deref() == Some("off"))
    }

    /// On SQLite a transaction takes the write lock when it begins (`BEGIN IMMEDIATE`).
    /// One that read first and then wrote would be refused at once ("database is
    /// locked", whatever the busy timeout) when another process — `ecom import` beside
    /// `ecom serve`, a second node on the same file — committed in between: SQLite
    /// cannot move a reader's snapshot forward into a write. Taken at `BEGIN`, the lock
    /// is waited for (the busy timeout) instead. In one process the pool's one
    /// connection runs transactions one at a time anyway, so this costs nothing there.
    async fn begin(&self) -> Result<DatabaseTransaction> {
        Ok(match self.backend {
            Backend::Sqlite => {
                self.conn
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..Default::default()
                    })
                    .await?
            }
            Backend::Postgres => self.conn.begin().await?,
        })
    }
}

fn sqlx_err(e: sqlx::Error) -> StoreError {
    StoreError::Db(sea_orm::DbErr::Custom(format!("database: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{Db, DbOptions};
    use crate::StoreError;
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    use std::time::Duration;

    async fn count(db: &impl ConnectionTrait) -> i64 {
        let row = db.query_one_raw(Statement::from_string(DbBackend::Sqlite, "SELECT n FROM counter")).await.unwrap();
        row.unwrap().try_get_by_index::<i64>(0).unwrap()
    }

    /// Two processes on one SQLite file (here two pools): a transaction that reads and
    /// then writes while the other commits a write is not refused; the other waits.
    #[tokio::test]
    async fn a_transaction_that_reads_then_writes_is_not_refused_when_another_process_writes() {
        let dir = std::env::temp_dir().join(format!("ecom-db-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("ecom.db").display());
        let options = DbOptions { url, max_connections: 1, acquire_timeout: Duration::from_secs(5) };
        let (a, b) = (Db::connect(&options).await.unwrap(), Db::connect(&options).await.unwrap());
        a.connection().execute_unprepared("CREATE TABLE counter (n INTEGER NOT NULL)").await.unwrap();
        a.connection().execute_unprepared("INSERT INTO counter VALUES (0)").await.unwrap();

        let txn = a.platform_txn().await.unwrap();
        assert_eq!(count(&txn).await, 0);
        let other = tokio::spawn(async move {
            let txn = b.platform_txn().await?;
            txn.execute_unprepared("UPDATE counter SET n = n + 10").await?;
            txn.commit().await?;
            Ok::<_, StoreError>(())
        });
        // Time for the other to commit, had it not had to wait: a deferred transaction's
        // write below would then fail with "database is locked".
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!other.is_finished(), "the other process waits for this transaction");
        txn.execute_unprepared("UPDATE counter SET n = n + 1").await.expect("the write after a read is not refused");
        txn.commit().await.unwrap();
        other.await.unwrap().unwrap();
        assert_eq!(count(a.connection()).await, 11);
        std::fs::remove_dir_all(&dir).ok();
    }
}
