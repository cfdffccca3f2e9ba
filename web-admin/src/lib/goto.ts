/** Parses `tenant`, `tenant/namespace`, `tenant/namespace/topic` or `persistent://tenant/namespace/topic`. */
export function parseLocation(text: string): { tenant: string; namespace?: string; topic?: string } | null {
  const t = text.trim().replace(/^persistent:\/\//, '');
  if (!t) return null;
  const parts = t.split('/');
  if (parts.length > 3 || parts.some((p) => !p || /\s/.test(p))) return null;
  const [tenant, namespace, topic] = parts;
  return { tenant, namespace, topic: topic?.replace(/-partition-\d+$/, '') };
}
