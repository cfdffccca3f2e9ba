/**
 * Shapes the OpenAPI description leaves loose (`{"type": "object"}`): Pulsar's stats, policies
 * and internal stats. Typed by hand in this one place; everything else comes from schema.gen.ts.
 */
import type { components } from './schema.gen';

export type Schemas = components['schemas'];
export type WhoAmI = Schemas['WhoAmI'];
export type BrowsePage = Schemas['BrowsePage'];
export type BrowsedMessage = BrowsePage['messages'][number];
export type ServiceAccount = Schemas['AccountView'];
export type TokenInfo = Schemas['TokenView'];
export type MintedToken = Schemas['MintedToken'];
export type TenantInfo = Schemas['TenantInfo'];
export type RetentionPolicies = Schemas['RetentionPolicies'];
export type OffloadStatus = Schemas['OffloadStatus'];
export type LoadReport = Schemas['LoadReport'];
/** A row of the broker tier's bundle ownership table. */
export type BundleView = Schemas['BundleView'];
/** What a forced takeover did. */
export type Takeover = Schemas['Takeover'];
/** The limit and life policies in force, each with the level it comes from. */
export type AppliedPolicies = Schemas['EffectivePolicies'];
export type PolicyLevel = Schemas['Level'];

export interface ConsumerStats {
  consumerName?: string;
  address?: string;
  connectedSince?: string;
  unackedMessages?: number;
  msgOutCounter?: number;
  /** A binary-protocol consumer's unused FLOW permits (0 for WebSocket and HTTP consumers). */
  availablePermits?: number;
  /** The client library of a binary-protocol consumer. */
  clientVersion?: string | null;
  /** The consumer's properties. */
  metadata?: Record<string, string>;
}

export interface SubscriptionStats {
  type: string;
  msgBacklog: number;
  msgRateOut: number;
  msgThroughputOut: number;
  msgRateRedeliver: number;
  msgRateExpired: number;
  unackedMessages: number;
  msgDelayed: number;
  consumers: ConsumerStats[];
  lastConsumedTimestamp?: number;
  lastAckedTimestamp?: number;
  isDurable?: boolean;
  /** Pulsar's subscription properties (PIP-105). */
  subscriptionProperties?: Record<string, string>;
}

export interface TopicStats {
  msgRateIn: number;
  msgRateOut: number;
  msgThroughputIn: number;
  msgThroughputOut: number;
  msgInCounter: number;
  averageMsgSize: number;
  storageSize: number;
  backlogSize: number;
  offloadedStorageSize: number;
  /** `local`, `object-store`, `replicated`, or `mixed` while a topic's partitions differ (docs/durability.md). */
  durability?: string;
  /** Brokers each record is written to (1 unless replicated); the lowest of a topic's partitions in its totals. */
  writeQuorum?: number;
  /** The ack quorum in force (1 unless replicated). */
  ackQuorum?: number;
  /** The brokers holding copies besides the owner (replicated durability; absent in totals). */
  replicaPeers?: string[];
  subscriptions: Record<string, SubscriptionStats>;
}

export interface PartitionedTopicStats extends TopicStats {
  metadata: { partitions: number };
  partitions: Record<string, TopicStats>;
}

export interface LedgerInfo {
  ledgerId: number;
  entries: number;
  size: number;
  offloaded: boolean;
  timestamp?: number;
}

export interface CursorInfo {
  markDeletePosition: string;
  readPosition: string;
  individuallyDeletedMessages: string;
}

export interface InternalStats {
  entriesAddedCounter: number;
  numberOfEntries: number;
  totalSize: number;
  lastConfirmedEntry: string;
  state: string;
  ledgers: LedgerInfo[];
  cursors: Record<string, CursorInfo>;
}

export interface BacklogQuota {
  limitSize?: number;
  limitTime?: number;
  policy: string;
}

/** Pulsar's namespace `Policies` (snake_case), the fields the console reads. */
export interface Policies {
  auth_policies?: {
    namespace_auth?: Record<string, string[]>;
    destination_auth?: Record<string, Record<string, string[]>>;
    subscription_auth_roles?: Record<string, string[]>;
  };
  backlog_quota_map?: Record<string, BacklogQuota>;
  message_ttl_in_seconds?: number | null;
  retention_policies?: RetentionPolicies | null;
  offload_threshold?: number;
  offload_threshold_in_seconds?: number | null;
  offload_deletion_lag_ms?: number | null;
  offload_policies?: Record<string, unknown> | null;
  subscription_auth_mode?: string;
  autoTopicCreationOverride?: AutoTopicCreation;
  [other: string]: unknown;
}

export interface AutoTopicCreation {
  allowAutoTopicCreation: boolean;
  topicType?: 'partitioned' | 'non-partitioned';
  defaultNumPartitions?: number;
}

export type RuntimeConfig = Record<string, string>;
