//! Conformance: service accounts, their tokens and the revocation log.

use super::{assert_err, assert_names, info, tenant};
use crate::{MetadataStore, ServiceAccount, ServiceAccountToken};
use std::sync::Arc;

fn account(t: &str, name: &str) -> ServiceAccount {
    ServiceAccount { tenant: tenant(t), name: name.into(), description: format!("{name} app"), created_at: 1000 }
}

fn token(t: &str, account: &str, id: &str, expires_at: Option<i64>) -> ServiceAccountToken {
    ServiceAccountToken { id: id.into(), tenant: tenant(t), account: account.into(), created_at: 2000, expires_at }
}

pub async fn service_account_create_get_list_delete(store: Arc<dyn MetadataStore>) {
    let err = assert_err!(store.create_service_account(&account("acme", "app")).await, NotFound);
    assert_names(&err, "tenant acme");
    store.create_tenant(&tenant("acme"), &info(&["admin"])).await.unwrap();
    store.create_service_account(&account("acme", "ingest")).await.unwrap();
    store.create_service_account(&account("acme", "app")).await.unwrap();
    let err = assert_err!(store.create_service_account(&account("acme", "app")).await, AlreadyExists);
    assert_names(&err, "service account app");
    assert_eq!(store.get_service_account(&tenant("acme"), "app").await.unwrap(), Some(account("acme", "app")));
    assert_eq!(store.get_service_account(&tenant("acme"), "ghost").await.unwrap(), None);
    let names: Vec<_> =
        store.list_service_accounts(&tenant("acme")).await.unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, vec!["app", "ingest"]);
    assert!(store.list_service_accounts(&tenant("other")).await.unwrap().is_empty());
    store.delete_service_account(&tenant("acme"), "app").await.unwrap();
    let err = assert_err!(store.delete_service_account(&tenant("acme"), "app").await, NotFound);
    assert_names(&err, "service account app");
}

pub async fn service_account_tokens_list_and_revoke(store: Arc<dyn MetadataStore>) {
    store.create_tenant(&tenant("acme"), &info(&["admin"])).await.unwrap();
    store.create_service_account(&account("acme", "app")).await.unwrap();
    let err = assert_err!(store.create_service_account_token(&token("acme", "ghost", "t0", None)).await, NotFound);
    assert_names(&err, "service account ghost");
    assert_err!(store.list_service_account_tokens(&tenant("acme"), "ghost").await, NotFound);
    assert!(store.list_service_account_tokens(&tenant("acme"), "app").await.unwrap().is_empty());
    store.create_service_account_token(&token("acme", "app", "t1", Some(9_000))).await.unwrap();
    store.create_service_account_token(&token("acme", "app", "t2", None)).await.unwrap();
    let err = assert_err!(store.create_service_account_token(&token("acme", "app", "t2", None)).await, AlreadyExists);
    assert_names(&err, "token t2");
    assert_eq!(
        store.list_service_account_tokens(&tenant("acme"), "app").await.unwrap(),
        vec![token("acme", "app", "t1", Some(9_000)), token("acme", "app", "t2", None)]
    );
    assert!(store.list_revoked_tokens(0, 100).await.unwrap().is_empty());

    store.revoke_service_account_token(&tenant("acme"), "app", "t1").await.unwrap();
    let err = assert_err!(store.revoke_service_account_token(&tenant("acme"), "app", "t1").await, NotFound);
    assert_names(&err, "token t1");
    assert_eq!(store.list_service_account_tokens(&tenant("acme"), "app").await.unwrap().len(), 1);
    let revoked = store.list_revoked_tokens(0, 100).await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!((revoked[0].token_id.as_str(), revoked[0].expires_at), ("t1", Some(9_000)));
    assert!(store.list_revoked_tokens(revoked[0].seq, 100).await.unwrap().is_empty());
}

pub async fn deleting_account_or_tenant_revokes_its_tokens(store: Arc<dyn MetadataStore>) {
    store.create_tenant(&tenant("acme"), &info(&["admin"])).await.unwrap();
    store.create_service_account(&account("acme", "a")).await.unwrap();
    store.create_service_account(&account("acme", "b")).await.unwrap();
    store.create_service_account_token(&token("acme", "a", "ta1", None)).await.unwrap();
    store.create_service_account_token(&token("acme", "a", "ta2", None)).await.unwrap();
    store.create_service_account_token(&token("acme", "b", "tb1", Some(5))).await.unwrap();

    store.delete_service_account(&tenant("acme"), "a").await.unwrap();
    let ids: Vec<_> = store.list_revoked_tokens(0, 100).await.unwrap().into_iter().map(|r| r.token_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"ta1".to_string()) && ids.contains(&"ta2".to_string()), "{ids:?}");

    // Re-created with the same name, the account does not revive old tokens.
    store.create_service_account(&account("acme", "a")).await.unwrap();
    assert!(store.list_service_account_tokens(&tenant("acme"), "a").await.unwrap().is_empty());

    store.delete_tenant(&tenant("acme"), true).await.unwrap();
    let revoked = store.list_revoked_tokens(0, 100).await.unwrap();
    let ids: Vec<_> = revoked.iter().map(|r| r.token_id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids[2], "tb1");
    assert!(revoked.windows(2).all(|w| w[0].seq < w[1].seq));
    // Paging by seq and limit.
    let first = store.list_revoked_tokens(0, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(store.list_revoked_tokens(first[0].seq, 100).await.unwrap().len(), 2);
}

pub async fn revocations_of_expired_tokens_are_pruned(store: Arc<dyn MetadataStore>) {
    store.create_tenant(&tenant("acme"), &info(&["admin"])).await.unwrap();
    store.create_service_account(&account("acme", "app")).await.unwrap();
    assert_eq!(store.prune_revoked_tokens(i64::MAX).await.unwrap(), 0, "nothing to prune");
    // Revoked in this order, so the row pruned first ("old") holds the highest sequence.
    for (id, expires_at) in [("forever", None), ("live", Some(9_000)), ("edge", Some(5_000)), ("old", Some(1_000))] {
        store.create_service_account_token(&token("acme", "app", id, expires_at)).await.unwrap();
        store.revoke_service_account_token(&tenant("acme"), "app", id).await.unwrap();
    }
    let before = store.list_revoked_tokens(0, 100).await.unwrap();
    assert_eq!(before.len(), 4);
    let old_seq = before.iter().find(|r| r.token_id == "old").expect("old revoked").seq;

    // Strictly before the cutoff: "edge" (expires exactly at it) stays.
    assert_eq!(store.prune_revoked_tokens(5_000).await.unwrap(), 1);
    let ids: Vec<_> = store.list_revoked_tokens(0, 100).await.unwrap().into_iter().map(|r| r.token_id).collect();
    assert_eq!(ids, vec!["forever", "live", "edge"]);
    assert_eq!(store.prune_revoked_tokens(5_000).await.unwrap(), 0, "pruning is idempotent");

    // A later revocation gets a sequence above the pruned one: pollers past `old_seq` see it.
    store.create_service_account_token(&token("acme", "app", "next", Some(9_500))).await.unwrap();
    store.revoke_service_account_token(&tenant("acme"), "app", "next").await.unwrap();
    let after = store.list_revoked_tokens(old_seq, 100).await.unwrap();
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].token_id, "next");
    assert!(after[0].seq > old_seq);

    // Tokens that never expire are never pruned; live tokens of the account are untouched.
    store.create_service_account_token(&token("acme", "app", "unrevoked", Some(1))).await.unwrap();
    assert_eq!(store.prune_revoked_tokens(i64::MAX).await.unwrap(), 3);
    let ids: Vec<_> = store.list_revoked_tokens(0, 100).await.unwrap().into_iter().map(|r| r.token_id).collect();
    assert_eq!(ids, vec!["forever"]);
    let live = store.list_service_account_tokens(&tenant("acme"), "app").await.unwrap();
    assert_eq!(live, vec![token("acme", "app", "unrevoked", Some(1))]);
}
