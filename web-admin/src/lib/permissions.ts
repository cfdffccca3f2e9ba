/**
 * What the signed-in role (or another role) may do, as the API answers it
 * (`POST /admin/v2/auth/allowed`). The console never copies the authorization rules: it asks,
 * and shows a control only when the answer is yes.
 */

export interface Check {
  operation: string;
  resource: string;
  subscription?: string;
}

export const tenantResource = (tenant: string) => tenant;
export const namespaceResource = (tenant: string, namespace: string) => `${tenant}/${namespace}`;
export const topicResource = (tenant: string, namespace: string, topic: string) =>
  `persistent://${tenant}/${namespace}/${topic}`;

export function checkKey(c: Check): string {
  return `${c.operation}|${c.resource}|${c.subscription ?? ''}`;
}

export type Allowed = (operation: string, resource: string, subscription?: string) => boolean;

/** A lookup over answered checks: unknown (not asked, or not answered yet) is "no". */
export function allowedFrom(checks: Check[], results: boolean[] | undefined): Allowed {
  const map = new Map<string, boolean>();
  if (results) checks.forEach((c, i) => map.set(checkKey(c), results[i] === true));
  return (operation, resource, subscription) => map.get(checkKey({ operation, resource, subscription })) === true;
}

/** Checks split into requests of at most `max` (the API's cap). */
export function chunkChecks(checks: Check[], max = 200): Check[][] {
  const out: Check[][] = [];
  for (let i = 0; i < checks.length; i += max) out.push(checks.slice(i, i + max));
  return out;
}

/** Operations a role may have in a namespace, with what each means to a user. */
export const NAMESPACE_OPERATIONS: { operation: string; label: string }[] = [
  { operation: 'GetNamespacePolicies', label: 'read the namespace policies' },
  { operation: 'SetNamespacePolicy', label: 'change the namespace policies' },
  { operation: 'CreateTopic', label: 'create topics' },
  { operation: 'DeleteTopic', label: 'delete topics' },
  { operation: 'GrantPermission', label: 'grant and revoke permissions' },
  { operation: 'ClearBacklog', label: 'clear backlogs across the namespace' },
  { operation: 'DeleteNamespace', label: 'delete the namespace' },
];

/** Operations a role may have on a topic. */
export const TOPIC_OPERATIONS: { operation: string; label: string; subscription?: boolean }[] = [
  { operation: 'Produce', label: 'produce messages' },
  { operation: 'Consume', label: 'consume (subscribe)', subscription: true },
  { operation: 'Read', label: 'read without a subscription (reader, tail)' },
  { operation: 'PeekMessages', label: 'browse messages' },
  { operation: 'GetTopicStats', label: 'read stats' },
  { operation: 'ResetCursor', label: 'reset cursors, skip, clear backlog', subscription: true },
  { operation: 'DeleteSubscription', label: 'delete subscriptions', subscription: true },
  { operation: 'OffloadTopic', label: 'trigger offload' },
  { operation: 'DeleteTopic', label: 'delete the topic' },
  { operation: 'GrantPermission', label: 'grant permissions on the topic' },
];

export interface ConsumerRole {
  role: string;
  why: string;
  /** Subscriptions whose role list leaves the role out (it may use every other one). */
  except: string[];
}

/**
 * Who can consume a topic: tenant admins (always), and roles with a `consume` grant on the
 * namespace or the topic; subscription role lists keep a granted role out of the subscriptions
 * they list it not in. `grants` is the topic's effective grant map (namespace + topic).
 */
export function consumersOf(
  grants: Record<string, string[]>,
  adminRoles: string[],
  subscriptionRoles: Record<string, string[]>,
): ConsumerRole[] {
  const out: ConsumerRole[] = adminRoles.map((role) => ({ role, why: 'tenant admin', except: [] }));
  for (const [role, actions] of Object.entries(grants)) {
    if (!actions.includes('consume') || adminRoles.includes(role)) continue;
    const restricted = Object.entries(subscriptionRoles).filter(([, roles]) => roles.length > 0);
    const except = restricted.filter(([, roles]) => !roles.includes(role)).map(([s]) => s);
    out.push({ role, why: 'consume grant', except });
  }
  return out.sort((a, b) => a.role.localeCompare(b.role));
}
