import type { ReactNode } from 'react';
import { Link } from '@tanstack/react-router';

export interface Crumb {
  label: string;
  to?: string;
  params?: Record<string, string>;
}

export function PageHeader({ title, crumbs, actions, children }: { title: string; crumbs?: Crumb[]; actions?: ReactNode; children?: ReactNode }) {
  return (
    <>
      {crumbs && crumbs.length ? (
        <nav className="breadcrumbs" aria-label="Breadcrumbs">
          <ol>
            {crumbs.map((c, i) => (
              <li key={i}>
                {c.to ? (
                  // eslint-disable-next-line @typescript-eslint/no-explicit-any
                  <Link to={c.to as any} params={c.params as any}>
                    {c.label}
                  </Link>
                ) : (
                  c.label
                )}
              </li>
            ))}
          </ol>
        </nav>
      ) : null}
      <div className="page-head">
        <div>
          <h1>{title}</h1>
          {children}
        </div>
        {actions ? <div className="row">{actions}</div> : null}
      </div>
    </>
  );
}

export function Tiles({ items }: { items: { label: string; value: ReactNode }[] }) {
  return (
    <dl className="tiles">
      {items.map((i) => (
        <div className="tile" key={i.label}>
          <dt>{i.label}</dt>
          <dd>{i.value}</dd>
        </div>
      ))}
    </dl>
  );
}
