import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render, screen } from '@testing-library/react';
import { QueryClientProvider } from '@tanstack/react-query';
import { createQueryClient } from '../../lib/queryClient';
import { SessionProvider } from '../../lib/sessionContext';
import { SubscriptionsPanel } from './components/SubscriptionsPanel';
import type { SubscriptionStats } from '../../lib/api/types';

const sub: SubscriptionStats = {
  type: 'Shared',
  msgBacklog: 12,
  msgRateOut: 0,
  msgThroughputOut: 0,
  msgRateRedeliver: 0,
  msgRateExpired: 0,
  unackedMessages: 0,
  msgDelayed: 0,
  consumers: [{ consumerName: 'c1', address: '127.0.0.1:5555', unackedMessages: 0, availablePermits: 750, clientVersion: 'Pulsar-CPP-v4.2.0' }],
  subscriptionProperties: { team: 'billing' },
};

/** A broker that says yes to `allowedOps` only. */
function mockBroker(allowedOps: string[]) {
  const f = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const body = init?.body ?? (input instanceof Request ? await input.clone().text() : undefined);
    if (url.endsWith('/admin/v2/auth/whoami')) {
      return Response.json({ authenticationEnabled: true, role: 'r', roles: ['r'], superuser: false, expiresAt: null });
    }
    if (url.endsWith('/admin/v2/auth/allowed')) {
      const { checks } = JSON.parse(String(body));
      return Response.json({ results: checks.map((c: { operation: string }) => allowedOps.includes(c.operation)) });
    }
    return new Response('{"reason":"unexpected"}', { status: 404 });
  });
  vi.stubGlobal('fetch', f);
  return f;
}

function renderPanel() {
  return render(
    <QueryClientProvider client={createQueryClient()}>
      <SessionProvider>
        <SubscriptionsPanel t={{ tenant: 'acme', namespace: 'orders', topic: 'created' }} subscriptions={{ billing: sub }} partitioned={false} />
      </SessionProvider>
    </QueryClientProvider>,
  );
}

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('subscription actions follow the API', () => {
  it('a role the API refuses sees no action', async () => {
    mockBroker([]);
    renderPanel();
    expect(await screen.findByText('127.0.0.1:5555')).toBeTruthy();
    await new Promise((r) => setTimeout(r, 50));
    expect(screen.queryByRole('button', { name: /reset cursor/i })).toBeNull();
    expect(screen.queryByRole('button', { name: /unsubscribe/i })).toBeNull();
  });
  it('a role allowed to reset cursors sees those actions, and only those', async () => {
    mockBroker(['ResetCursor']);
    renderPanel();
    expect(await screen.findByRole('button', { name: 'Reset cursor to a time on billing' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Reset cursor to a message id on billing' })).toBeTruthy();
    expect(screen.queryByRole('button', { name: /unsubscribe/i })).toBeNull();
    expect(screen.queryByRole('button', { name: /skip messages/i })).toBeNull();
  });
});

describe('a subscription shows its consumers and properties', () => {
  it('with each consumer\'s client and unused permits, and the subscription\'s properties', async () => {
    mockBroker([]);
    renderPanel();
    expect(await screen.findByText('Pulsar-CPP-v4.2.0')).toBeTruthy();
    expect(screen.getByText('750')).toBeTruthy();
    expect(screen.getByTestId('properties-billing').textContent).toContain('team=billing');
  });
});
