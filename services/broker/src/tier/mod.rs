//! Ownership of namespace bundles by the brokers of a tier (issue 11; design notes §6).
//!
//! With `[broker.tier] enabled`, a broker serves a partition only while it owns the partition's
//! bundle (a row of the ownership table in state `owned`, with this broker's id and session), and
//! loads a partition only then (`check_owned`, called by the registry). Any broker may be asked
//! for any topic: `route` says whether to serve it here or to forward it to the owner's internal
//! address. Rows are created `free` on first need and assigned by the leader
//! (`placement`); a broker takes an `assigning` row addressed to it by moving it to `owned`.
//! Every transition is a compare-and-set on the row's epoch and state in the metadata store, so
//! two brokers acting on stale views cannot both win.
//!
//! Without it (standalone, the default), the broker owns every bundle and nothing is checked.

mod balance;
mod isolation;
pub mod load;
mod lookup;
pub use lookup::{Redirect, binary_host_port};
mod placement;
mod release;
pub use release::Released;
mod split;
#[cfg(test)]
mod tests;

use crate::BrokerError;
use crate::error::{Entity, Result};
use crate::membership::Membership;
use crate::metrics::tier::TierMetrics;
use magnetar_core::bundles::{BundleRange, Bundles};
use magnetar_core::hash::bundle_hash;
use magnetar_core::{NamespaceName, TopicName};
use magnetar_metadata::{
    BrokerRecord, BrokerState, BundleOwnership, BundleState, BundleTransition, Freshness, MetadataError, MetadataStore,
    PolicyCache,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// `[broker.tier]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TierConfig {
    /// Serve only the bundles this broker owns and forward the rest (several brokers on one
    /// PostgreSQL). Off: this broker serves every topic (standalone, a single broker).
    pub enabled: bool,
    /// The address other brokers forward requests to (`host:port`); the advertised address
    /// when empty. Clients never see it.
    pub internal_address: String,
    /// How long a request for a bundle nobody owns yet waits for the leader's assignment before
    /// it is answered 503 (milliseconds).
    pub assignment_wait_ms: u64,
    /// How often the ownership table and the membership are re-read, assignments addressed to
    /// this broker taken, and (on the leader) free bundles assigned (milliseconds).
    pub refresh_interval_ms: u64,
    /// `/lookup/v2/topic/...` answers the owner's advertised address instead of the cluster's
    /// service address (only for clients that can reach every broker).
    pub lookup_owner_address: bool,
    /// Most time a forwarded request may take to connect to the owner (milliseconds).
    pub forward_connect_timeout_ms: u64,
    /// A WebSocket connection to an owner (a session spliced or fanned out through this broker)
    /// from which nothing, not even the answer to a ping (sent three times in this period), came
    /// for this long is taken for lost, as a dead or stalled owner never closes it
    /// (milliseconds).
    pub owner_silence_ms: u64,
    /// Most time a SIGTERM may spend handing this broker's bundles to the others before it
    /// stops anyway (milliseconds); keep it below the pod's termination grace period. What is
    /// not handed over by then stays owned and is taken back when this broker returns.
    pub drain_timeout_ms: u64,
    /// How often the leader looks at the balance of bundles over the brokers (milliseconds).
    pub rebalance_interval_ms: u64,
    /// A broker sheds bundles when it owns more than the mean by this fraction (0.25 = 25 %).
    pub rebalance_margin: f64,
    /// Most bundle moves the leader asks for in any minute.
    pub max_moves_per_minute: u32,
    /// A moved bundle is not moved again for balance within this time (milliseconds).
    pub bundle_cooldown_ms: u64,
    /// The leader splits a bundle that exceeds one of the thresholds below and holds at least
    /// two topics (Pulsar's `loadBalancerAutoBundleSplitEnabled`).
    pub auto_split: bool,
    /// Messages per second in and out of one bundle above which it is split.
    pub split_msg_rate: f64,
    /// Bytes per second in and out of one bundle above which it is split.
    pub split_bytes_rate: f64,
    /// Topics (partitions) in one bundle above which it is split.
    pub split_topics: u64,
    /// A namespace is not split beyond this many bundles.
    pub max_bundles_per_namespace: usize,
}

impl Default for TierConfig {
    fn default() -> Self {
        TierConfig {
            enabled: false,
            internal_address: String::new(),
            assignment_wait_ms: 5_000,
            refresh_interval_ms: 500,
            lookup_owner_address: false,
            forward_connect_timeout_ms: 2_000,
            owner_silence_ms: 15_000,
            drain_timeout_ms: 25_000,
            rebalance_interval_ms: 5_000,
            rebalance_margin: 0.25,
            max_moves_per_minute: 10,
            bundle_cooldown_ms: 60_000,
            // Pulsar's defaults (`loadBalancerNamespaceBundleMax*`, `...MaximumBundles`).
            auto_split: true,
            split_msg_rate: 30_000.0,
            split_bytes_rate: 100.0 * 1024.0 * 1024.0,
            split_topics: 1_000,
            max_bundles_per_namespace: 128,
        }
    }
}

/// Unanswered keep-alive probes after which a connection to an owner is dropped.
pub const OWNER_KEEPALIVE_PROBES: u32 = 3;

impl TierConfig {
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_millis(self.refresh_interval_ms.max(10))
    }

    /// How long connecting to an owner may take (at least 1 ms).
    pub fn forward_connect_timeout(&self) -> Duration {
        Duration::from_millis(self.forward_connect_timeout_ms.max(1))
    }

    pub fn owner_silence(&self) -> Duration {
        Duration::from_millis(self.owner_silence_ms)
    }

    /// TCP keep-alive on connections to owners: the idle time before the first probe and the
    /// time between probes (`OWNER_KEEPALIVE_PROBES` go unanswered before the connection is
    /// dropped), so that a
    /// dead host is noticed within about `owner_silence`. At least a second each: the kernel
    /// counts them in whole seconds.
    pub fn owner_keepalive(&self) -> (Duration, Duration) {
        let silence = self.owner_silence();
        ((silence / 3).max(Duration::from_secs(1)), (silence / 6).max(Duration::from_secs(1)))
    }
}

/// Where a request for a topic is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This broker owns the topic's bundle.
    Local,
    /// Another live broker owns it: forward to its internal address.
    Forward { broker: String, address: String },
}

/// A bundle row with what the tier knows of its owner, for the admin view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleView {
    /// `tenant/namespace/range`.
    pub bundle: String,
    pub state: BundleState,
    pub owner: Option<String>,
    pub epoch: i64,
    /// Owned or being assigned to a broker whose lease has expired: its partitions are not
    /// served until that broker returns (no silent takeover of a tail only it holds).
    pub unavailable: bool,
}

type Key = (NamespaceName, String);

pub struct Tier {
    config: TierConfig,
    metadata: Arc<dyn MetadataStore>,
    policies: Arc<PolicyCache>,
    membership: Arc<Membership>,
    /// The ownership table as last read (refresh loop, or a fresh read of one row).
    rows: RwLock<HashMap<Key, BundleOwnership>>,
    /// The cluster's brokers by id as last read.
    brokers: RwLock<HashMap<String, BrokerRecord>>,
    metrics: TierMetrics,
    /// Bundles this process is handing over: their requests are held, not served here.
    moving: Mutex<HashSet<Key>>,
    balance: balance::Balance,
    /// The hot bundle the leader decided to split, until the broker takes it (`split`).
    pending_split: Mutex<Option<(NamespaceName, BundleRange)>>,
}

fn key(ns: &NamespaceName, range: &BundleRange) -> Key {
    (ns.clone(), range.to_string())
}

impl Tier {
    pub fn new(
        config: TierConfig,
        metadata: Arc<dyn MetadataStore>,
        policies: Arc<PolicyCache>,
        membership: Arc<Membership>,
        metrics: TierMetrics,
    ) -> Arc<Tier> {
        Arc::new(Tier {
            config,
            metadata,
            policies,
            membership,
            rows: RwLock::default(),
            brokers: RwLock::default(),
            metrics,
            moving: Mutex::default(),
            balance: Mutex::default(),
            pending_split: Mutex::default(),
        })
    }

    pub fn metrics(&self) -> &TierMetrics {
        &self.metrics
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn config(&self) -> &TierConfig {
        &self.config
    }

    fn me(&self) -> (&str, &str) {
        let r = self.membership.registration();
        (&r.broker_id, &r.session_id)
    }

    fn mine(&self, row: &BundleOwnership) -> bool {
        let (id, session) = self.me();
        row.owner.as_deref() == Some(id) && row.owner_session.as_deref() == Some(session)
    }

    /// The bundle of the namespace `name` (a partition or a topic) hashes into.
    pub async fn bundle_of(&self, name: &TopicName) -> Result<BundleRange> {
        let bundles = self.bundles(name.namespace(), Freshness::Cached).await?;
        Ok(bundles.find(bundle_hash(&name.to_string())))
    }

    /// The namespace's bundles from its policies.
    async fn bundles(&self, ns: &NamespaceName, freshness: Freshness) -> Result<Bundles> {
        let policies = self
            .policies
            .policies(ns, freshness)
            .await?
            .ok_or_else(|| BrokerError::NotFound(Entity::Namespace(ns.clone())))?;
        Bundles::from_data(&policies.bundles)
            .map_err(|e| BrokerError::Internal(format!("stored bundles of namespace {ns} are invalid: {e}")))
    }

    /// Whether this broker may load the partition `name`: its bundle is owned by this broker's
    /// process, read fresh from the store (a load is rare; serving from a stale view is not).
    pub async fn check_owned(&self, name: &TopicName) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let range = self.bundle_of(name).await?;
        let row = self.metadata.get_bundle(name.namespace(), &range.to_string()).await?;
        match row {
            Some(row)
                if matches!(row.state, BundleState::Owned | BundleState::Releasing)
                    && self.mine(&row)
                    && !self.is_moving(&key(name.namespace(), &range)) =>
            {
                self.remember(row);
                Ok(())
            }
            other => {
                let state = other.as_ref().map_or("unassigned", |r| r.state.as_str());
                Err(BrokerError::NotOwner(format!(
                    "this broker does not own bundle {}/{range} of {name} (it is {state}); ask any broker of the cluster",
                    name.namespace()
                )))
            }
        }
    }

    /// Where to serve a request for `name`. A bundle nobody owns yet is created and waited for
    /// (bounded by `assignment_wait_ms`); an assignment addressed to this broker is taken here.
    /// `forwarded`: the request came from another broker and may not be forwarded again.
    pub async fn route(&self, name: &TopicName, forwarded: bool) -> Result<Route> {
        if !self.enabled() {
            return Ok(Route::Local);
        }
        let range = self.bundle_of(name).await?;
        self.route_bundle(name.namespace(), &range, forwarded).await
    }

    /// Where the bundle `range` of `ns` is served (see `route`). A range that is no longer one
    /// of the namespace's bundles (it was split meanwhile) answers `NotOwner`: the caller routes
    /// again, by the fresh bundles this check loaded.
    pub async fn route_bundle(&self, ns: &NamespaceName, range: &BundleRange, forwarded: bool) -> Result<Route> {
        if !self.enabled() {
            return Ok(Route::Local);
        }
        let k = key(ns, range);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.assignment_wait_ms);
        let mut pause = Duration::from_millis(10);
        // Being handed over by this process: held until its next owner is known.
        if self.is_moving(&k) {
            self.metrics.held_requests.inc();
            while self.is_moving(&k) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        } else if let Some(row) = self.cached(&k)
            && let Some(route) = self.decide(&row).await?
        {
            // The cached row answers while it says "here" or "there, live"; anything else is
            // looked at fresh.
            return self.check_hop(route, forwarded, &k);
        }
        let mut counted = false;
        // Never a row for a range that is gone: it would be placed and owned for nothing.
        self.check_current(ns, range).await?;
        loop {
            let row = self.metadata.ensure_bundle(ns, &k.1).await.map_err(|e| match e {
                MetadataError::NotFound(_) => BrokerError::NotFound(Entity::Namespace(ns.clone())),
                e => e.into(),
            })?;
            let row = self.advance(row).await?;
            self.remember(row.clone());
            if let Some(route) = self.decide(&row).await? {
                return self.check_hop(route, forwarded, &k);
            }
            if let Some(reason) = self.unavailable_reason(&row).await? {
                return Err(BrokerError::BundleUnavailable(reason));
            }
            if !counted {
                self.metrics.held_requests.inc();
                counted = true;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(BrokerError::NotOwner(format!(
                    "bundle {}/{} has no owner yet ({}) after {} ms; retry",
                    k.0,
                    k.1,
                    row.state.as_str(),
                    self.config.assignment_wait_ms
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// `route` without the cached row: after the owner it named answered that the bundle moved.
    /// `NotOwner` when `range` is no longer one of the namespace's bundles, read fresh (which
    /// refreshes the policy cache, so the caller's next route finds the bundles of now).
    pub(crate) async fn check_current(&self, ns: &NamespaceName, range: &BundleRange) -> Result<()> {
        if self.is_current(ns, range).await? {
            return Ok(());
        }
        self.rows.write().unwrap_or_else(|e| e.into_inner()).remove(&key(ns, range));
        Err(BrokerError::NotOwner(format!("bundle {ns}/{range} was split; route the request again")))
    }

    /// Whether `range` is one of the namespace's bundles now (read fresh).
    pub async fn is_current(&self, ns: &NamespaceName, range: &BundleRange) -> Result<bool> {
        Ok(self.bundles(ns, Freshness::Fresh).await?.has(range))
    }

    /// `is_current` for a row; a row whose range does not parse, or whose namespace is gone
    /// (its rows go with it), is left alone.
    async fn is_current_row(&self, row: &BundleOwnership) -> Result<bool> {
        let Ok(range) = BundleRange::parse(&row.bundle) else { return Ok(true) };
        match self.is_current(&row.namespace, &range).await {
            Err(BrokerError::NotFound(_)) => Ok(true),
            other => other,
        }
    }

    pub async fn reroute(&self, name: &TopicName, forwarded: bool) -> Result<Route> {
        if self.enabled()
            && let Ok(range) = self.bundle_of(name).await
        {
            self.rows.write().unwrap_or_else(|e| e.into_inner()).remove(&key(name.namespace(), &range));
        }
        self.route(name, forwarded).await
    }

    /// `route_bundle` from a fresh read of the bundle's row.
    pub async fn reroute_bundle(&self, ns: &NamespaceName, range: &BundleRange, forwarded: bool) -> Result<Route> {
        self.rows.write().unwrap_or_else(|e| e.into_inner()).remove(&key(ns, range));
        self.route_bundle(ns, range, forwarded).await
    }

    fn check_hop(&self, route: Route, forwarded: bool, k: &Key) -> Result<Route> {
        match route {
            Route::Forward { broker, .. } if forwarded => Err(BrokerError::NotOwner(format!(
                "bundle {}/{} is owned by broker {broker}, not by the broker this request was forwarded to; retry",
                k.0, k.1
            ))),
            r => Ok(r),
        }
    }

    /// What this broker does for a row: take an assignment addressed to it, take back a bundle
    /// of its own previous process, and (as leader) assign a free one.
    async fn advance(&self, row: BundleOwnership) -> Result<BundleOwnership> {
        let (id, session) = self.me();
        let owner = row.owner.as_deref();
        let take = match row.state {
            BundleState::Assigning => owner == Some(id),
            BundleState::Owned => owner == Some(id) && row.owner_session.as_deref() != Some(session),
            BundleState::Free | BundleState::Releasing => false,
        };
        if take {
            return self.take(row).await;
        }
        if row.state == BundleState::Free && self.is_leader().await? {
            self.place().await?;
            return Ok(self.metadata.get_bundle(&row.namespace, &row.bundle).await?.unwrap_or(row));
        }
        Ok(row)
    }

    /// Before this process, started on a blank data directory, takes back a bundle its previous
    /// process held: each partition of it that had local durability under its current epoch
    /// lost its tail past the uploaded segments with that directory, and continues at their
    /// end. Its cursors and deduplication snapshot past that point are moved back, as a forced
    /// takeover does, so that consumers receive the messages stored there from now on instead
    /// of skipping them. Partitions with object-store or replicated durability recover their
    /// tail at load and are left as they are.
    async fn abandon_lost_tails(&self, row: &BundleOwnership) -> Result<()> {
        let range = BundleRange::parse(&row.bundle).map_err(BrokerError::InvalidArgument)?;
        for (name, log_id) in crate::takeover::partitions_of_namespace(self.metadata.as_ref(), &row.namespace).await? {
            if !crate::bundles::in_bundle(&range, &name.to_string()) || self.metadata.may_fail_over(log_id).await? {
                continue;
            }
            let end = crate::takeover::uploaded_end(self.metadata.as_ref(), log_id).await?;
            let rewound = crate::takeover::rewind_past(self.metadata.as_ref(), log_id, end).await?;
            tracing::error!(topic = %name, continues_from_offset = end, cursors_rewound = rewound,
                "this broker started on a blank data directory: the partition's tail past its uploaded segments, \
                 on its previous disk only (local durability), is lost");
        }
        Ok(())
    }

    /// Moves a row addressed to this broker (or to its previous process) to `owned` under this
    /// process's session. A lost race leaves the row as the winner made it.
    async fn take(&self, row: BundleOwnership) -> Result<BundleOwnership> {
        if !self.membership.may_acknowledge() {
            return Ok(row);
        }
        // Its previous process's (an assignment is addressed to this one).
        if row.state == BundleState::Owned && self.membership.started_blank() {
            self.abandon_lost_tails(&row).await?;
        }
        let (id, session) = self.me();
        let to = BundleTransition { state: BundleState::Owned, owner: Some((id.to_string(), session.to_string())) };
        match self.metadata.transition_bundle(&row.namespace, &row.bundle, row.epoch, row.state, &to, &[]).await {
            Ok(owned) => {
                self.metrics.transition("owned");
                tracing::info!(bundle = %format!("{}/{}", owned.namespace, owned.bundle), epoch = owned.epoch, "bundle owned");
                Ok(owned)
            }
            Err(MetadataError::Conflict(_)) => {
                Ok(self.metadata.get_bundle(&row.namespace, &row.bundle).await?.unwrap_or(row))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `Some` route when the row settles it: owned (or being assigned) by this process, or by
    /// another live broker.
    async fn decide(&self, row: &BundleOwnership) -> Result<Option<Route>> {
        match row.state {
            // A release asked of this process that it has not begun yet: still served here.
            BundleState::Owned | BundleState::Releasing if self.mine(row) => {
                Ok((!self.is_moving(&(row.namespace.clone(), row.bundle.clone()))).then_some(Route::Local))
            }
            // Releasing elsewhere: its owner serves or holds it until the next owner is known.
            BundleState::Owned | BundleState::Assigning | BundleState::Releasing => {
                let Some(owner) = row.owner.as_deref() else { return Ok(None) };
                if owner == self.me().0 {
                    return Ok(None);
                }
                match self.live_broker(owner).await? {
                    Some(b) if b.registration.session_id == row.owner_session.clone().unwrap_or_default() => {
                        Ok(Some(Route::Forward { broker: owner.to_string(), address: b.registration.internal_address }))
                    }
                    _ => Ok(None),
                }
            }
            BundleState::Free => Ok(None),
        }
    }

    /// Why a row owned by a broker that is gone cannot be served (crash rules: its bundles wait
    /// for it to return; no silent takeover).
    async fn unavailable_reason(&self, row: &BundleOwnership) -> Result<Option<String>> {
        if row.state != BundleState::Owned {
            return Ok(None);
        }
        let Some(owner) = row.owner.as_deref() else { return Ok(None) };
        if owner == self.me().0 {
            return Ok(None);
        }
        let live = self.live_broker(owner).await?;
        let same_session = live.as_ref().map(|b| Some(&b.registration.session_id) == row.owner_session.as_ref());
        Ok(match same_session {
            Some(true) => None,
            // Restarted: its new process takes the bundle back on its next refresh.
            Some(false) => None,
            None => Some(format!(
                "bundle {}/{} is owned by broker {owner}, which is not a live member of the tier (stopped, or its lease expired): its partitions are unavailable until it returns",
                row.namespace, row.bundle
            )),
        })
    }

    fn cached(&self, k: &Key) -> Option<BundleOwnership> {
        self.rows.read().unwrap_or_else(|e| e.into_inner()).get(k).cloned()
    }

    fn remember(&self, row: BundleOwnership) {
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        let k = (row.namespace.clone(), row.bundle.clone());
        // Never go back to an older epoch than one already seen.
        if rows.get(&k).is_none_or(|r| r.epoch <= row.epoch) {
            rows.insert(k, row);
        }
    }

    /// Resolves once broker `id` is no longer a live member as the ownership pass last read the
    /// membership (its lease expired, or it left), looked at every refresh interval. A request
    /// forwarded to it and still unanswered then will not be acknowledged by it: a broker past its
    /// lease acknowledges nothing. (An owner that froze, as a stalled VM does, keeps its
    /// connections open: without this a request forwarded to it waited until it woke.)
    pub async fn lost(&self, id: &str) {
        let mut tick = tokio::time::interval(self.config.refresh_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let brokers = self.brokers.read().unwrap_or_else(|e| e.into_inner());
            if !brokers.get(id).is_some_and(|b| b.alive) {
                return;
            }
        }
    }

    /// The live broker `id` as last read, re-reading the membership once if it is unknown.
    async fn live_broker(&self, id: &str) -> Result<Option<BrokerRecord>> {
        let known = self.brokers.read().unwrap_or_else(|e| e.into_inner()).get(id).cloned();
        let record = match known {
            Some(b) => Some(b),
            None => self.refresh_brokers().await?.remove(id),
        };
        Ok(record.filter(|b| b.alive))
    }

    async fn refresh_brokers(&self) -> Result<HashMap<String, BrokerRecord>> {
        let list = self.membership.brokers().await?;
        let map: HashMap<String, BrokerRecord> =
            list.into_iter().map(|b| (b.registration.broker_id.clone(), b)).collect();
        *self.brokers.write().unwrap_or_else(|e| e.into_inner()) = map.clone();
        Ok(map)
    }

    /// The leader: the live, active broker registered first (ties by id). Every broker computes
    /// it from the membership table; two brokers that briefly both believe they lead can only
    /// race on compare-and-set transitions, which one of them loses.
    pub async fn leader(&self) -> Result<Option<BrokerRecord>> {
        let brokers = self.refresh_brokers().await?;
        Ok(brokers.into_values().filter(|b| b.alive && b.state == BrokerState::Active).min_by(|a, b| {
            (a.registered_at_ms, &a.registration.broker_id).cmp(&(b.registered_at_ms, &b.registration.broker_id))
        }))
    }

    pub(crate) async fn is_leader(&self) -> Result<bool> {
        Ok(self.membership.may_acknowledge()
            && self.leader().await?.is_some_and(|l| l.registration.session_id == self.me().1))
    }

    /// The bundles (`tenant/namespace/range`) `broker` owns, from the store.
    pub async fn owned_by(&self, broker: &str) -> Result<Vec<String>> {
        Ok(self
            .metadata
            .list_bundles()
            .await?
            .into_iter()
            .filter(|r| r.state == BundleState::Owned && r.owner.as_deref() == Some(broker))
            .map(|r| format!("{}/{}", r.namespace, r.bundle))
            .collect())
    }

    /// The ownership table with availability, from the store.
    pub async fn view(&self) -> Result<Vec<BundleView>> {
        let brokers = self.refresh_brokers().await?;
        let rows = self.metadata.list_bundles().await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let held = matches!(r.state, BundleState::Owned | BundleState::Assigning | BundleState::Releasing);
                let live = r.owner.as_ref().and_then(|o| brokers.get(o)).is_some_and(|b| b.alive);
                BundleView {
                    bundle: format!("{}/{}", r.namespace, r.bundle),
                    unavailable: held && !live,
                    state: r.state,
                    owner: r.owner,
                    epoch: r.epoch,
                }
            })
            .collect())
    }

    /// The owner's advertised address for `name` (lookups configured to answer it), `None`
    /// when this broker owns it or the tier is off.
    pub async fn owner_advertised_address(&self, name: &TopicName) -> Result<Option<String>> {
        match self.route(name, false).await? {
            Route::Local => Ok(None),
            Route::Forward { broker, .. } => {
                Ok(self.live_broker(&broker).await?.map(|b| b.registration.advertised_address))
            }
        }
    }
}
