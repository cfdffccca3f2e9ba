import { useQuery } from '@tanstack/react-query';
import { Curl } from '../../../components/Curl';
import { ErrorNotice, Loading } from '../../../components/Notice';
import { fetchAppliedPolicies, namespaceKeys } from '../api';
import { appliedRows } from '../applied';

type Ns = { tenant: string; namespace: string };

/** The limit and life policies a topic of the namespace gets, and where each value comes from. */
export function AppliedLimits({ tenant, namespace }: Ns) {
  const q = useQuery({ queryKey: namespaceKeys.applied(tenant, namespace), queryFn: () => fetchAppliedPolicies(tenant, namespace) });
  if (q.isPending) return <Loading what="Reading the limits in force" />;
  if (q.error) return <ErrorNotice error={q.error} action="Reading the limits in force" />;
  return (
    <section aria-labelledby="limits-in-force">
      <h3 id="limits-in-force">Limits in force</h3>
      <p className="muted">What a topic of this namespace gets unless it sets its own value (topic policies win over these).</p>
      <div className="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Policy</th>
              <th scope="col">Value in force</th>
              <th scope="col">Source</th>
            </tr>
          </thead>
          <tbody>
            {appliedRows(q.data).map((row) => (
              <tr key={row.key}>
                <th scope="row" style={{ background: 'transparent', color: 'var(--text)' }}>
                  {row.label}
                </th>
                <td>{row.value}</td>
                <td>
                  <span className={`badge ${row.level === 'broker' ? 'inherited' : 'set'}`}>{row.level === 'broker' ? 'broker default' : 'set here'}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Curl spec={{ method: 'GET', path: '/admin/v2/namespaces/{tenant}/{namespace}/appliedPolicies', params: { tenant, namespace } }} label="read the limits in force" />
    </section>
  );
}
