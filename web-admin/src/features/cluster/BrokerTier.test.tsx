import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { QueryClientProvider } from '@tanstack/react-query';
import { createQueryClient } from '../../lib/queryClient';
import { SessionProvider } from '../../lib/sessionContext';
import type { BundleView, Takeover } from '../../lib/api/types';
import { BrokerTier } from './components/BrokerTier';

const DEAD = 'acme/orders/0x00000000_0x80000000';
const OWNED = 'acme/orders/0x80000000_0xffffffff';
const TIER: BundleView[] = [
  { bundle: OWNED, state: 'owned', owner: 'b1:6650', epoch: 4, unavailable: false },
  { bundle: DEAD, state: 'owned', owner: 'b2:6650', epoch: 7, unavailable: true },
  { bundle: 'acme/billing/0x00000000_0xffffffff', state: 'assigning', owner: 'b1:6650', epoch: 2, unavailable: false },
];
const TAKEOVER: Takeover = {
  bundle: DEAD,
  previousOwner: 'b2:6650',
  newOwner: 'b1:6650',
  partitions: [{ topic: 'persistent://acme/orders/created-partition-0', continuesFromOffset: 1200, cursorsRewound: 2 }],
  mayLose: 'messages b2:6650 acknowledged from offset 1200 on, if any',
};

interface Broker {
  bundles: BundleView[];
  allowedOps: string[];
  takeover?: { status: number; body: unknown };
}

/** A broker answering the tier's requests; records the requests it gets. */
function mockBroker(b: Broker) {
  const calls: string[] = [];
  const f = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const raw = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    const body = init?.body ?? (input instanceof Request ? await input.clone().text() : undefined);
    const url = new URL(raw, 'http://console.test');
    const path = url.pathname + url.search;
    calls.push(`${method} ${path}`);
    if (path === '/admin/v2/auth/whoami') {
      return Response.json({ authenticationEnabled: true, role: 'r', roles: ['r'], superuser: false, expiresAt: null });
    }
    if (path === '/admin/v2/auth/allowed') {
      const { checks } = JSON.parse(String(body));
      return Response.json({ results: checks.map((c: { operation: string }) => b.allowedOps.includes(c.operation)) });
    }
    if (path === '/admin/v2/brokers/c1') return Response.json(['b1:6650']);
    if (path === '/admin/v2/brokers/c1/bundles') return Response.json(b.bundles);
    if (method === 'POST' && url.pathname === `/admin/v2/brokers/c1/bundles/${DEAD}/takeover` && b.takeover) {
      return Response.json(b.takeover.body, { status: b.takeover.status });
    }
    return Response.json({ reason: `unexpected ${method} ${path}` }, { status: 404 });
  });
  vi.stubGlobal('fetch', f);
  return calls;
}

function renderTier() {
  return render(
    <QueryClientProvider client={createQueryClient()}>
      <SessionProvider>
        <BrokerTier cluster="c1" />
      </SessionProvider>
    </QueryClientProvider>,
  );
}

beforeAll(() => {
  // jsdom has <dialog> without its modal methods.
  HTMLDialogElement.prototype.showModal = function (this: HTMLDialogElement) {
    this.setAttribute('open', '');
  };
  HTMLDialogElement.prototype.close = function (this: HTMLDialogElement) {
    this.removeAttribute('open');
  };
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('broker tier panel', () => {
  it('says the tier is off when the ownership table is empty, and shows no table', async () => {
    mockBroker({ bundles: [], allowedOps: [] });
    renderTier();
    expect(await screen.findByText(/single broker: the tier is off/i)).toBeTruthy();
    expect(screen.queryByRole('table')).toBeNull();
  });

  it('lists each bundle with its state, owner and epoch, and the bundles per broker', async () => {
    mockBroker({ bundles: TIER, allowedOps: [] });
    renderTier();
    const table = await screen.findByRole('table', { name: 'Bundle ownership' });
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => within(r).getAllByRole('cell')[0].textContent)).toEqual([DEAD, 'acme/billing/0x00000000_0xffffffff', OWNED]);
    const owned = within(rows[2]).getAllByRole('cell').map((c) => c.textContent);
    expect(owned).toEqual([OWNED, 'owned', 'b1:6650', '4']);
    const perBroker = screen.getByRole('table', { name: 'Bundles owned per broker' });
    const b1 = within(perBroker).getByRole('cell', { name: 'b1:6650' }).closest('tr')!;
    expect(within(b1).getAllByRole('cell').map((c) => c.textContent)).toEqual(['b1:6650', 'live', '1']);
    const b2 = within(perBroker).getByRole('cell', { name: 'b2:6650' }).closest('tr')!;
    expect(within(b2).getAllByRole('cell').map((c) => c.textContent)).toEqual(['b2:6650', 'expired', '1']);
    // No role was allowed to act: no action column.
    await new Promise((r) => setTimeout(r, 50));
    expect(screen.queryByRole('button', { name: /unload|takeover/i })).toBeNull();
  });

  it('flags unavailable bundles in a banner that names them and their owner', async () => {
    mockBroker({ bundles: TIER, allowedOps: [] });
    renderTier();
    const banner = await screen.findByRole('alert');
    expect(banner.textContent).toContain('1 bundle unavailable: held by a broker that stopped renewing its lease');
    expect(within(banner).getByText(DEAD)).toBeTruthy();
    expect(banner.textContent).toContain('b2:6650');
    expect(banner.textContent).not.toContain(OWNED);
  });

  it('offers unload on owned bundles and force takeover on unavailable ones to a role allowed to unload', async () => {
    mockBroker({ bundles: TIER, allowedOps: ['UnloadNamespace'] });
    renderTier();
    expect(await screen.findByRole('button', { name: `Force takeover of ${DEAD}` })).toBeTruthy();
    expect(screen.getByRole('button', { name: `Unload ${OWNED}` })).toBeTruthy();
    expect(screen.queryByRole('button', { name: `Unload ${DEAD}` })).toBeNull();
    // A bundle being assigned has no action.
    expect(screen.queryByRole('button', { name: /acme\/billing/ })).toBeNull();
  });

  it('asks before a forced takeover, saying what is lost, then shows where each partition continues', async () => {
    const calls = mockBroker({ bundles: TIER, allowedOps: ['UnloadNamespace'], takeover: { status: 200, body: TAKEOVER } });
    renderTier();
    fireEvent.click(await screen.findByRole('button', { name: `Force takeover of ${DEAD}` }));
    const dialog = screen.getByRole('dialog', { name: `Force takeover of ${DEAD}` });
    expect(dialog.textContent).toMatch(/acknowledged to producers but had not uploaded yet is lost/);
    expect(dialog.textContent).toContain('b2:6650');
    expect(calls.some((c) => c.includes('/takeover'))).toBe(false);

    fireEvent.click(within(dialog).getByRole('button', { name: 'Take over and accept data loss' }));
    const result = await within(dialog).findByRole('group', { name: 'Takeover result' });
    expect(calls).toContain(`POST /admin/v2/brokers/c1/bundles/${DEAD}/takeover?acceptDataLoss=true`);
    expect(result.textContent).toContain('b1:6650 owns it now');
    const partition = within(result).getByRole('cell', { name: 'persistent://acme/orders/created-partition-0' }).closest('tr')!;
    expect(within(partition).getAllByRole('cell').map((c) => c.textContent)).toEqual(['persistent://acme/orders/created-partition-0', '1,200', '2']);
    expect(result.textContent).toContain(TAKEOVER.mayLose);
    expect(within(dialog).getByRole('button', { name: 'Done' })).toBeTruthy();
  });

  it("shows the API's reason when the takeover is refused", async () => {
    mockBroker({
      bundles: TIER,
      allowedOps: ['UnloadNamespace'],
      takeover: { status: 409, body: { reason: 'broker b2:6650 is alive: unload the bundle instead' } },
    });
    renderTier();
    fireEvent.click(await screen.findByRole('button', { name: `Force takeover of ${DEAD}` }));
    const dialog = screen.getByRole('dialog', { name: `Force takeover of ${DEAD}` });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Take over and accept data loss' }));
    const error = await within(dialog).findByText(/Error 409: broker b2:6650 is alive: unload the bundle instead/);
    expect(error.textContent).toContain('Force takeover failed.');
    expect(within(dialog).queryByRole('group', { name: 'Takeover result' })).toBeNull();
  });

  it('shows the reason when the ownership table cannot be read', async () => {
    mockBroker({ bundles: TIER, allowedOps: [] });
    const f = globalThis.fetch;
    vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
      const raw = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
      if (raw.endsWith('/admin/v2/brokers/c1/bundles')) return Response.json({ reason: 'metadata store unavailable' }, { status: 503 });
      return f(input, init);
    });
    renderTier();
    expect(await screen.findByText(/Error 503: metadata store unavailable/, {}, { timeout: 5_000 })).toBeTruthy();
  });
});
