/**
 * The broker tier's ownership table as the console shows it: bundles parsed into their parts,
 * unavailable ones first, and how many bundles each broker owns.
 */
import type { BundleView } from '../../lib/api/types';

export interface BundleRef {
  tenant: string;
  namespace: string;
  /** The hash range, `0x00000000_0x10000000`. */
  range: string;
}

/** `tenant/namespace/range` into its parts; null for anything else. */
export function parseBundle(bundle: string): BundleRef | null {
  const parts = bundle.split('/');
  if (parts.length !== 3 || parts.some((p) => p === '')) return null;
  const [tenant, namespace, range] = parts;
  return { tenant, namespace, range };
}

export interface BrokerBundles {
  broker: string;
  /** Bundles in state `owned` held by this broker. */
  owned: number;
  /** False for an owner that is not in the live list (its lease expired). */
  live: boolean;
}

export interface TierSummary {
  /** Unavailable bundles first, then by name. */
  rows: BundleView[];
  unavailable: BundleView[];
  /** Owners of unavailable bundles, sorted. */
  deadOwners: string[];
  /** Every live broker (with 0 when it owns nothing), then owners that are not live. */
  brokers: BrokerBundles[];
}

export function summarizeTier(bundles: BundleView[], liveBrokers: string[]): TierSummary {
  const rows = [...bundles].sort((a, b) => Number(b.unavailable) - Number(a.unavailable) || a.bundle.localeCompare(b.bundle));
  const unavailable = rows.filter((r) => r.unavailable);
  const deadOwners = [...new Set(unavailable.flatMap((r) => (r.owner ? [r.owner] : [])))].sort();
  const owned = new Map<string, number>(liveBrokers.map((b) => [b, 0]));
  for (const r of bundles) {
    if (r.owner && r.state === 'owned') owned.set(r.owner, (owned.get(r.owner) ?? 0) + 1);
  }
  const live = new Set(liveBrokers);
  const brokers = [...owned.entries()]
    .map(([broker, n]) => ({ broker, owned: n, live: live.has(broker) }))
    .sort((a, b) => Number(b.live) - Number(a.live) || a.broker.localeCompare(b.broker));
  return { rows, unavailable, deadOwners, brokers };
}

/** The banner's headline: "2 bundles unavailable: held by a broker that stopped renewing its lease". */
export function unavailableHeadline(bundles: number, owners: number): string {
  const what = `${bundles} ${bundles === 1 ? 'bundle' : 'bundles'} unavailable`;
  const who = owners === 1 ? 'a broker that stopped renewing its lease' : 'brokers that stopped renewing their lease';
  return `${what}: held by ${who}`;
}
