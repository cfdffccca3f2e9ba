import { describe, expect, it } from 'vitest';
import { urlOf } from '../../lib/api/client';
import type { BundleView } from '../../lib/api/types';
import { takeoverSpec, unloadBundleSpec } from './api';
import { parseBundle, summarizeTier, unavailableHeadline } from './tier';

const row = (bundle: string, owner: string | null, extra: Partial<BundleView> = {}): BundleView => ({ bundle, state: 'owned', owner, epoch: 1, unavailable: false, ...extra });

describe('bundle names', () => {
  it('splits tenant/namespace/range', () => {
    expect(parseBundle('acme/orders/0x00000000_0x10000000')).toEqual({ tenant: 'acme', namespace: 'orders', range: '0x00000000_0x10000000' });
  });
  it('refuses anything else', () => {
    expect(parseBundle('acme/0x00000000_0x10000000')).toBeNull();
    expect(parseBundle('acme//0x0_0x1')).toBeNull();
    expect(parseBundle('a/b/c/d')).toBeNull();
  });
});

describe('tier summary', () => {
  const rows = [
    row('acme/orders/0x80000000_0xffffffff', 'b1:8080'),
    row('acme/orders/0x00000000_0x80000000', 'b2:8080'),
    row('acme/billing/0x00000000_0xffffffff', 'b3:8080', { unavailable: true }),
    row('zeta/x/0x00000000_0xffffffff', null, { state: 'free' }),
    row('acme/audit/0x00000000_0xffffffff', 'b1:8080', { state: 'releasing' }),
  ];
  const s = summarizeTier(rows, ['b1:8080', 'b2:8080', 'b4:8080']);
  it('puts unavailable bundles first, then sorts by name', () => {
    expect(s.rows.map((r) => r.bundle)).toEqual([
      'acme/billing/0x00000000_0xffffffff',
      'acme/audit/0x00000000_0xffffffff',
      'acme/orders/0x00000000_0x80000000',
      'acme/orders/0x80000000_0xffffffff',
      'zeta/x/0x00000000_0xffffffff',
    ]);
    expect(s.unavailable.map((r) => r.bundle)).toEqual(['acme/billing/0x00000000_0xffffffff']);
    expect(s.deadOwners).toEqual(['b3:8080']);
  });
  it('counts owned bundles per live broker, idle ones included, dead owners last', () => {
    expect(s.brokers).toEqual([
      { broker: 'b1:8080', owned: 1, live: true },
      { broker: 'b2:8080', owned: 1, live: true },
      { broker: 'b4:8080', owned: 0, live: true },
      { broker: 'b3:8080', owned: 1, live: false },
    ]);
  });
  it('words the banner for one or several owners', () => {
    expect(unavailableHeadline(1, 1)).toBe('1 bundle unavailable: held by a broker that stopped renewing its lease');
    expect(unavailableHeadline(3, 2)).toBe('3 bundles unavailable: held by brokers that stopped renewing their lease');
  });
});

describe('tier requests', () => {
  const b = { tenant: 'acme', namespace: 'orders', range: '0x00000000_0x80000000' };
  it('unloads one bundle', () => {
    expect(urlOf(unloadBundleSpec(b))).toBe('/admin/v2/namespaces/acme/orders/0x00000000_0x80000000/unload');
    expect(unloadBundleSpec(b).method).toBe('PUT');
  });
  it('forces a takeover only with acceptDataLoss=true', () => {
    expect(urlOf(takeoverSpec('c1', b))).toBe('/admin/v2/brokers/c1/bundles/acme/orders/0x00000000_0x80000000/takeover?acceptDataLoss=true');
    expect(takeoverSpec('c1', b).method).toBe('POST');
  });
});
