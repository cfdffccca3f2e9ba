import { useState, type ReactNode } from 'react';
import type { RequestSpec } from '../../../lib/api/client';
import type { Policies } from '../../../lib/api/types';
import {
  removeAutoCreationSpec,
  removeDeletionLagSpec,
  removeQuotaSpec,
  removeRetentionSpec,
  removeTtlSpec,
  setAutoCreationSpec,
  setDeletionLagSpec,
  setOffloadSecondsSpec,
  setOffloadThresholdSpec,
  setQuotaSpec,
  setRetentionSpec,
  setSubAuthModeSpec,
  setTtlSpec,
} from '../api';
import type { PolicyKey } from '../effective';

type Ns = { tenant: string; namespace: string };
const QUOTA_POLICIES = ['producer_request_hold', 'producer_exception', 'consumer_backlog_eviction'];

function NumberField({ id, label, value, onChange, hint }: { id: string; label: string; value: string; onChange: (v: string) => void; hint?: string }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} type="number" value={value} onChange={(e) => onChange(e.target.value)} required aria-describedby={hint ? `${id}-hint` : undefined} />
      {hint ? (
        <span className="hint" id={`${id}-hint`}>
          {hint}
        </span>
      ) : null}
    </div>
  );
}

/** The form of one policy: fields, and the request to set it (and to remove it, if it can be). */
export function usePolicyEditor(key: PolicyKey, ns: Ns, p: Policies): { fields: ReactNode; set: RequestSpec; remove?: RequestSpec } {
  const r = p.retention_policies;
  const [a, setA] = useState(() => initialA(key, p));
  const [b, setB] = useState(() => initialB(key, p));
  const id = (s: string) => `policy-${key}-${s}`;
  switch (key) {
    case 'retention':
      return {
        fields: (
          <>
            <NumberField id={id('time')} label="Retention time (minutes)" value={a} onChange={setA} hint="-1 forever, 0 none" />
            <NumberField id={id('size')} label="Retention size (MB)" value={b} onChange={setB} hint="-1 no limit, 0 none" />
          </>
        ),
        set: setRetentionSpec(ns, { retentionTimeInMinutes: Number(a), retentionSizeInMB: Number(b) }),
        remove: r ? removeRetentionSpec(ns) : undefined,
      };
    case 'messageTTL':
      return {
        fields: <NumberField id={id('ttl')} label="Message TTL (seconds)" value={a} onChange={setA} hint="0: messages never expire" />,
        set: setTtlSpec(ns, Number(a)),
        remove: p.message_ttl_in_seconds != null ? removeTtlSpec(ns) : undefined,
      };
    case 'backlogQuotaSize':
    case 'backlogQuotaAge': {
      const type = key === 'backlogQuotaSize' ? 'destination_storage' : 'message_age';
      const existing = p.backlog_quota_map?.[type];
      return {
        fields: (
          <>
            {key === 'backlogQuotaSize' ? (
              <NumberField id={id('limit')} label="Backlog limit (bytes)" value={a} onChange={setA} />
            ) : (
              <NumberField id={id('limit')} label="Oldest unacknowledged message may be (seconds)" value={a} onChange={setA} />
            )}
            <div className="field">
              <label htmlFor={id('policy')}>When exceeded</label>
              <select id={id('policy')} value={b || QUOTA_POLICIES[0]} onChange={(e) => setB(e.target.value)}>
                {QUOTA_POLICIES.map((q) => (
                  <option key={q}>{q}</option>
                ))}
              </select>
            </div>
          </>
        ),
        set: setQuotaSpec(ns, type, key === 'backlogQuotaSize' ? { limitSize: Number(a), policy: b || QUOTA_POLICIES[0] } : { limitTime: Number(a), policy: b || QUOTA_POLICIES[0] }),
        remove: existing ? removeQuotaSpec(ns, type) : undefined,
      };
    }
    case 'offloadThreshold':
      return {
        fields: <NumberField id={id('bytes')} label="Offload threshold (bytes kept locally)" value={a} onChange={setA} hint="-1 off, 0 as soon as a segment is sealed" />,
        set: setOffloadThresholdSpec(ns, Number(a)),
      };
    case 'offloadThresholdInSeconds':
      return {
        fields: <NumberField id={id('secs')} label="Offload segments older than (seconds)" value={a} onChange={setA} hint="-1 off" />,
        set: setOffloadSecondsSpec(ns, Number(a)),
      };
    case 'offloadDeletionLag':
      return {
        fields: <NumberField id={id('ms')} label="Deletion lag (milliseconds)" value={a} onChange={setA} hint="-1 keeps local copies" />,
        set: setDeletionLagSpec(ns, Number(a)),
        remove: p.offload_deletion_lag_ms != null ? removeDeletionLagSpec(ns) : undefined,
      };
    case 'autoTopicCreation':
      return {
        fields: (
          <>
            <div className="field">
              <label htmlFor={id('mode')}>Auto-creation</label>
              <select id={id('mode')} value={a || 'non-partitioned'} onChange={(e) => setA(e.target.value)}>
                <option value="off">off</option>
                <option value="non-partitioned">on, non-partitioned</option>
                <option value="partitioned">on, partitioned</option>
              </select>
            </div>
            {a === 'partitioned' ? <NumberField id={id('n')} label="Partitions" value={b || '1'} onChange={setB} /> : null}
          </>
        ),
        set: setAutoCreationSpec(
          ns,
          a === 'off'
            ? { allowAutoTopicCreation: false }
            : a === 'partitioned'
              ? { allowAutoTopicCreation: true, topicType: 'partitioned', defaultNumPartitions: Number(b || '1') }
              : { allowAutoTopicCreation: true, topicType: 'non-partitioned' },
        ),
        remove: p.autoTopicCreationOverride ? removeAutoCreationSpec(ns) : undefined,
      };
    case 'subscriptionAuthMode':
      return {
        fields: (
          <div className="field">
            <label htmlFor={id('mode')}>Subscription auth mode</label>
            <select id={id('mode')} value={a || 'None'} onChange={(e) => setA(e.target.value)}>
              <option>None</option>
              <option>Prefix</option>
            </select>
          </div>
        ),
        set: setSubAuthModeSpec(ns, a === 'Prefix' ? 'Prefix' : 'None'),
      };
  }
}

function initialA(key: PolicyKey, p: Policies): string {
  switch (key) {
    case 'retention':
      return String(p.retention_policies?.retentionTimeInMinutes ?? 0);
    case 'messageTTL':
      return String(p.message_ttl_in_seconds ?? 0);
    case 'backlogQuotaSize':
      return String(p.backlog_quota_map?.destination_storage?.limitSize ?? 1073741824);
    case 'backlogQuotaAge':
      return String(p.backlog_quota_map?.message_age?.limitTime ?? 86400);
    case 'offloadThreshold':
      return String(p.offload_threshold ?? -1);
    case 'offloadThresholdInSeconds':
      return String(p.offload_threshold_in_seconds ?? -1);
    case 'offloadDeletionLag':
      return String(p.offload_deletion_lag_ms ?? 14_400_000);
    case 'autoTopicCreation': {
      const a = p.autoTopicCreationOverride;
      return a ? (a.allowAutoTopicCreation ? (a.topicType ?? 'non-partitioned') : 'off') : 'non-partitioned';
    }
    case 'subscriptionAuthMode':
      return p.subscription_auth_mode ?? 'None';
  }
}

function initialB(key: PolicyKey, p: Policies): string {
  switch (key) {
    case 'retention':
      return String(p.retention_policies?.retentionSizeInMB ?? 0);
    case 'backlogQuotaSize':
      return p.backlog_quota_map?.destination_storage?.policy ?? QUOTA_POLICIES[0];
    case 'backlogQuotaAge':
      return p.backlog_quota_map?.message_age?.policy ?? QUOTA_POLICIES[0];
    case 'autoTopicCreation':
      return String(p.autoTopicCreationOverride?.defaultNumPartitions ?? 1);
    default:
      return '';
  }
}
