import { lazy, Suspense, useRef } from 'react';
import { useTheme } from '../lib/themeContext';
import type { SeriesSpec } from './LiveChart';

const LiveChart = lazy(() => import('./LiveChart'));

export type { SeriesSpec };

/** A live chart; its library loads on first use. */
export function Chart(props: { title: string; series: SeriesSpec[]; data: number[][]; format: (v: number) => string; axis?: (v: number) => string }) {
  const { theme } = useTheme();
  return (
    <Suspense fallback={<div className="chart" style={{ minHeight: 200 }} aria-busy="true" />}>
      <LiveChart {...props} theme={theme} />
    </Suspense>
  );
}

/**
 * A rolling window of samples: call with the latest values each time new data arrives
 * (`at` = when it arrived); returns uPlot's aligned arrays [times (s), series...].
 */
export function useRolling(values: number[] | undefined, at: number, max = 60): number[][] {
  const ref = useRef<{ at: number; data: number[][] }>({ at: 0, data: [] });
  if (values && at && at !== ref.current.at) {
    const prev = ref.current.data.length === values.length + 1 ? ref.current.data : [[], ...values.map(() => [])];
    const next = prev.map((col, i) => [...col.slice(-(max - 1)), i === 0 ? at / 1000 : values[i - 1]]);
    ref.current = { at, data: next };
  }
  return ref.current.data.length ? ref.current.data : [[], ...(values ?? []).map(() => [])];
}

/** Axis ticks of byte values: 512, 1.5K, 20M (binary units). */
export function shortBytes(v: number): string {
  const units = ['', 'K', 'M', 'G', 'T'];
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${Math.sign(v) < 0 ? '-' : ''}${+x.toFixed(x < 10 && i > 0 ? 1 : 0)}${units[i]}`;
}
