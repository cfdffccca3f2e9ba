//! Service accounts, their tokens and the revocation log. Revocations are written by the
//! `service_account_tokens_revoke` trigger of migration 0002, so cascaded deletes (account,
//! tenant) revoke too.

use super::errors::{Target, classify, classify_write};
use super::{SqlMetadataStore, get};
use crate::{MetadataError, Result, RevokedToken, ServiceAccount, ServiceAccountToken};
use magnetar_core::TenantName;
use sqlx::any::AnyRow;

fn account_of(tenant: &TenantName, row: &AnyRow) -> Result<ServiceAccount> {
    Ok(ServiceAccount {
        tenant: tenant.clone(),
        name: get(row, "name")?,
        description: get(row, "description")?,
        created_at: get(row, "created_at")?,
    })
}

impl SqlMetadataStore {
    pub(crate) async fn create_service_account_impl(&self, a: &ServiceAccount) -> Result<()> {
        let target = Target::new(
            format_args!("service account {} of tenant {}", a.name, a.tenant),
            format_args!("tenant {}", a.tenant),
        );
        sqlx::query("INSERT INTO service_accounts (tenant, name, description, created_at) VALUES ($1, $2, $3, $4)")
            .bind(a.tenant.as_str())
            .bind(&a.name)
            .bind(&a.description)
            .bind(a.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| classify_write(e, Some(&target)))?;
        Ok(())
    }

    pub(crate) async fn get_service_account_impl(
        &self,
        tenant: &TenantName,
        name: &str,
    ) -> Result<Option<ServiceAccount>> {
        let row =
            sqlx::query("SELECT name, description, created_at FROM service_accounts WHERE tenant = $1 AND name = $2")
                .bind(tenant.as_str())
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
        row.map(|r| account_of(tenant, &r)).transpose()
    }

    pub(crate) async fn list_service_accounts_impl(&self, tenant: &TenantName) -> Result<Vec<ServiceAccount>> {
        let rows =
            sqlx::query("SELECT name, description, created_at FROM service_accounts WHERE tenant = $1 ORDER BY name")
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
        rows.iter().map(|r| account_of(tenant, r)).collect()
    }

    pub(crate) async fn delete_service_account_impl(&self, tenant: &TenantName, name: &str) -> Result<()> {
        // Tokens go by ON DELETE CASCADE; the trigger records each as revoked.
        let done = sqlx::query("DELETE FROM service_accounts WHERE tenant = $1 AND name = $2")
            .bind(tenant.as_str())
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(MetadataError::NotFound(format!("service account {name} of tenant {tenant}")));
        }
        Ok(())
    }

    pub(crate) async fn create_service_account_token_impl(&self, t: &ServiceAccountToken) -> Result<()> {
        let target = Target::new(
            format_args!("token {}", t.id),
            format_args!("service account {} of tenant {}", t.account, t.tenant),
        );
        sqlx::query(
            "INSERT INTO service_account_tokens (id, tenant, account, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&t.id)
        .bind(t.tenant.as_str())
        .bind(&t.account)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&self.pool)
        .await
        .map_err(|e| classify_write(e, Some(&target)))?;
        Ok(())
    }

    pub(crate) async fn list_service_account_tokens_impl(
        &self,
        tenant: &TenantName,
        account: &str,
    ) -> Result<Vec<ServiceAccountToken>> {
        // The LEFT JOIN tells a missing account (no row) from one without tokens (a NULL row).
        let rows = sqlx::query(
            "SELECT t.id AS id, t.created_at AS created_at, t.expires_at AS expires_at FROM service_accounts a \
             LEFT JOIN service_account_tokens t ON t.tenant = a.tenant AND t.account = a.name \
             WHERE a.tenant = $1 AND a.name = $2 ORDER BY t.created_at, t.id",
        )
        .bind(tenant.as_str())
        .bind(account)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        if rows.is_empty() {
            return Err(MetadataError::NotFound(format!("service account {account} of tenant {tenant}")));
        }
        let mut tokens = Vec::new();
        for row in &rows {
            let Some(id) = get::<Option<String>>(row, "id")? else { continue };
            tokens.push(ServiceAccountToken {
                id,
                tenant: tenant.clone(),
                account: account.to_string(),
                created_at: get(row, "created_at")?,
                expires_at: get(row, "expires_at")?,
            });
        }
        Ok(tokens)
    }

    pub(crate) async fn revoke_service_account_token_impl(
        &self,
        tenant: &TenantName,
        account: &str,
        id: &str,
    ) -> Result<()> {
        let done = sqlx::query("DELETE FROM service_account_tokens WHERE id = $1 AND tenant = $2 AND account = $3")
            .bind(id)
            .bind(tenant.as_str())
            .bind(account)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(MetadataError::NotFound(format!("token {id} of service account {account} of tenant {tenant}")));
        }
        Ok(())
    }

    pub(crate) async fn list_revoked_tokens_impl(&self, after_seq: i64, limit: u32) -> Result<Vec<RevokedToken>> {
        let rows =
            sqlx::query("SELECT seq, token_id, expires_at FROM revoked_tokens WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after_seq)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
        rows.iter()
            .map(|r| {
                Ok(RevokedToken {
                    seq: get(r, "seq")?,
                    token_id: get(r, "token_id")?,
                    expires_at: get(r, "expires_at")?,
                })
            })
            .collect()
    }

    pub(crate) async fn prune_revoked_tokens_impl(&self, expired_before: i64) -> Result<u64> {
        // The seq column (AUTOINCREMENT / BIGSERIAL) never hands out a deleted value again.
        let done = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at IS NOT NULL AND expires_at < $1")
            .bind(expired_before)
            .execute(&self.pool)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected())
    }
}
