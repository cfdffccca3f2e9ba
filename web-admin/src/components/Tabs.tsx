import { Link } from '@tanstack/react-router';

/** Tabs as links: the tab is part of the URL, so every tab can be bookmarked and shared. */
export function Tabs<T extends string>({ tabs, current, label }: { tabs: { tab: T; label: string }[]; current: T; label: string }) {
  return (
    <nav className="tabs" aria-label={label}>
      {tabs.map((t, i) => (
        <Link
          key={t.tab}
          to="."
          // Active only on an exact match of the search (else every tab matched partially).
          activeOptions={{ exact: true, includeSearch: true }}
          search={((prev: Record<string, unknown>) => ({ ...keep(prev), tab: i === 0 ? undefined : t.tab })) as never}
          aria-current={current === t.tab ? 'page' : undefined}
        >
          {t.label}
        </Link>
      ))}
    </nav>
  );
}

/** Search parameters that survive a tab switch: none (each tab starts clean), but the role in permission views. */
function keep(prev: Record<string, unknown>): Record<string, unknown> {
  return prev.role ? { role: prev.role } : {};
}
