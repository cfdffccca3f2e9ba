import { useState } from 'react';
import { useNavigate } from '@tanstack/react-router';
import { parseLocation } from '../lib/goto';

/** Opens a tenant, namespace or topic by name (roles that hold grants but administer no tenant start here). */
export function GoTo() {
  const navigate = useNavigate();
  const [text, setText] = useState('');
  const [bad, setBad] = useState(false);
  return (
    <form
      className="inline"
      onSubmit={(e) => {
        e.preventDefault();
        const loc = parseLocation(text);
        setBad(!loc);
        if (!loc) return;
        if (loc.topic)
          navigate({ to: '/tenants/$tenant/namespaces/$namespace/topics/$topic', params: { tenant: loc.tenant, namespace: loc.namespace!, topic: loc.topic } });
        else if (loc.namespace) navigate({ to: '/tenants/$tenant/namespaces/$namespace', params: { tenant: loc.tenant, namespace: loc.namespace } });
        else navigate({ to: '/tenants/$tenant', params: { tenant: loc.tenant } });
      }}
    >
      <div className="field">
        <label htmlFor="goto">Tenant, namespace or topic</label>
        <input
          id="goto"
          size={44}
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder="acme/orders or persistent://acme/orders/created"
          aria-invalid={bad}
          aria-describedby={bad ? 'goto-error' : undefined}
        />
      </div>
      <button type="submit">Open</button>
      {bad ? (
        <span id="goto-error" role="alert" className="muted">
          Expected tenant, tenant/namespace or [persistent://]tenant/namespace/topic
        </span>
      ) : null}
    </form>
  );
}
