//! Broker membership: one row per broker with a lease on the database's clock.

use super::errors::classify;
use super::{SqlMetadataStore, from_json, get, to_json};
use crate::{BrokerLoad, BrokerRecord, BrokerRegistration, BrokerState, LeaseGrant, MetadataError, Result};
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

/// A query whose text embeds the dialect's clock expression (`Dialect::now_ms_sql`, a constant
/// of this crate) and nothing else: no value from outside reaches the SQL text.
fn clocked(sql: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql)
}

fn lease_to_db(lease_ms: u64) -> Result<i64> {
    i64::try_from(lease_ms).map_err(|_| MetadataError::Internal(format!("lease of {lease_ms} ms is out of range")))
}

fn state_name(state: BrokerState) -> &'static str {
    match state {
        BrokerState::Active => "active",
        BrokerState::Draining => "draining",
    }
}

fn grant(row: &AnyRow) -> Result<LeaseGrant> {
    Ok(LeaseGrant { expires_at_ms: get(row, "lease_expires_at_ms")?, db_now_ms: get(row, "db_now_ms")? })
}

fn record(row: &AnyRow) -> Result<BrokerRecord> {
    let broker_id: String = get(row, "broker_id")?;
    let state: String = get(row, "state")?;
    let state = match state.as_str() {
        "draining" => BrokerState::Draining,
        _ => BrokerState::Active,
    };
    let load_json: String = get(row, "load_json")?;
    let lease_expires_at_ms: i64 = get(row, "lease_expires_at_ms")?;
    let db_now_ms: i64 = get(row, "db_now_ms")?;
    Ok(BrokerRecord {
        load: from_json::<BrokerLoad>(&load_json, format_args!("load of broker {broker_id}"))?,
        registration: BrokerRegistration {
            session_id: get(row, "session_id")?,
            cluster: get(row, "cluster")?,
            internal_address: get(row, "internal_address")?,
            advertised_address: get(row, "advertised_address")?,
            binary_internal_url: get(row, "binary_internal_url")?,
            binary_advertised_url: get(row, "binary_advertised_url")?,
            binary_advertised_tls_url: get(row, "binary_advertised_tls_url")?,
            version: get(row, "version")?,
            broker_id,
        },
        state,
        registered_at_ms: get(row, "registered_at_ms")?,
        lease_expires_at_ms,
        alive: lease_expires_at_ms > db_now_ms,
    })
}

impl SqlMetadataStore {
    pub(crate) async fn register_broker_impl(
        &self,
        reg: &BrokerRegistration,
        lease_ms: u64,
        replaces: Option<&str>,
    ) -> Result<LeaseGrant> {
        let now = self.dialect().now_ms_sql();
        let lease = lease_to_db(lease_ms)?;
        let mut tx = self.begin_write().await?;
        // The no-op update locks an existing row (PostgreSQL) so that two processes starting with
        // one id cannot both pass the check below; SQLite holds the write lock already.
        sqlx::query("UPDATE brokers SET broker_id = broker_id WHERE broker_id = $1")
            .bind(&reg.broker_id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        let held = sqlx::query(clocked(format!(
            "SELECT session_id, lease_expires_at_ms, {now} AS db_now_ms FROM brokers WHERE broker_id = $1"
        )))
        .bind(&reg.broker_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        if let Some(row) = held {
            let session: String = get(&row, "session_id")?;
            let expires: i64 = get(&row, "lease_expires_at_ms")?;
            let db_now: i64 = get(&row, "db_now_ms")?;
            let ours = session == reg.session_id || Some(session.as_str()) == replaces;
            if !ours && expires > db_now {
                return Err(MetadataError::Conflict(format!(
                    "broker {} is registered by another live process (session {session}) for {} ms more",
                    reg.broker_id,
                    expires - db_now
                )));
            }
        }
        let row = sqlx::query(clocked(format!(
            "INSERT INTO brokers (broker_id, session_id, cluster, internal_address, advertised_address, version, \
             state, load_json, registered_at_ms, lease_expires_at_ms, binary_internal_url, binary_advertised_url, \
             binary_advertised_tls_url) \
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, {now}, {now} + $8, $9, $10, $11) \
             ON CONFLICT (broker_id) DO UPDATE SET session_id = excluded.session_id, cluster = excluded.cluster, \
             internal_address = excluded.internal_address, advertised_address = excluded.advertised_address, \
             binary_internal_url = excluded.binary_internal_url, \
             binary_advertised_url = excluded.binary_advertised_url, \
             binary_advertised_tls_url = excluded.binary_advertised_tls_url, \
             version = excluded.version, state = excluded.state, load_json = excluded.load_json, \
             registered_at_ms = excluded.registered_at_ms, lease_expires_at_ms = excluded.lease_expires_at_ms \
             RETURNING lease_expires_at_ms, {now} AS db_now_ms"
        )))
        .bind(&reg.broker_id)
        .bind(&reg.session_id)
        .bind(&reg.cluster)
        .bind(&reg.internal_address)
        .bind(&reg.advertised_address)
        .bind(&reg.version)
        .bind(to_json(&BrokerLoad::default())?)
        .bind(lease)
        .bind(&reg.binary_internal_url)
        .bind(&reg.binary_advertised_url)
        .bind(&reg.binary_advertised_tls_url)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        let granted = grant(&row)?;
        tx.commit().await.map_err(classify)?;
        Ok(granted)
    }

    pub(crate) async fn renew_broker_lease_impl(
        &self,
        broker_id: &str,
        session_id: &str,
        lease_ms: u64,
        state: BrokerState,
        load: &BrokerLoad,
    ) -> Result<Option<LeaseGrant>> {
        let now = self.dialect().now_ms_sql();
        // Only an unexpired lease of this very session is extended: once it has lapsed, another
        // broker may already act on the assumption that this one is gone.
        let row = sqlx::query(clocked(format!(
            "UPDATE brokers SET lease_expires_at_ms = {now} + $1, state = $2, load_json = $3 \
             WHERE broker_id = $4 AND session_id = $5 AND lease_expires_at_ms > {now} \
             RETURNING lease_expires_at_ms, {now} AS db_now_ms"
        )))
        .bind(lease_to_db(lease_ms)?)
        .bind(state_name(state))
        .bind(to_json(load)?)
        .bind(broker_id)
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        row.as_ref().map(grant).transpose()
    }

    pub(crate) async fn list_brokers_impl(&self, cluster: &str) -> Result<Vec<BrokerRecord>> {
        let now = self.dialect().now_ms_sql();
        let rows = sqlx::query(clocked(format!(
            "SELECT broker_id, session_id, cluster, internal_address, advertised_address, binary_internal_url, \
             binary_advertised_url, binary_advertised_tls_url, version, state, load_json, registered_at_ms, lease_expires_at_ms, {now} AS db_now_ms \
             FROM brokers WHERE cluster = $1 ORDER BY broker_id"
        )))
        .bind(cluster)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        rows.iter().map(record).collect()
    }

    pub(crate) async fn deregister_broker_impl(&self, broker_id: &str, session_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM brokers WHERE broker_id = $1 AND session_id = $2")
            .bind(broker_id)
            .bind(session_id)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(())
    }
}
