import type { RequestSpec } from '../lib/api/client';
import { toCurl } from '../lib/curl';
import { useSession } from '../lib/sessionContext';
import { CopyButton } from './Copy';

/** The equivalent curl command of an action (token elided as $MAGNETAR_TOKEN). */
export function Curl({ spec, label }: { spec: RequestSpec | RequestSpec[]; label: string }) {
  const { whoami } = useSession();
  const specs = Array.isArray(spec) ? spec : [spec];
  const text = specs.map((s) => toCurl(s, { authenticated: whoami?.authenticationEnabled ?? true })).join('\n');
  return (
    <details className="curl">
      <summary>curl: {label}</summary>
      <pre>{text}</pre>
      <CopyButton text={text} label={`Copy curl: ${label}`} />
    </details>
  );
}
