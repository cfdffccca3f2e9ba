/** A live time series (uPlot), loaded with the pages that show charts, not with the first page. */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** Seconds of history a chart shows. */
const WINDOW_S = 90;

/** Axis ticks: 950, 1.2k, 3.4M. */
export function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(a < 10 ? 1 : 0)}`;
}

export interface SeriesSpec {
  label: string;
  /** A CSS variable name of the theme, e.g. --chart-1. */
  color: string;
}

export default function LiveChart({
  title,
  series,
  data,
  format,
  axis = compact,
  theme,
}: {
  title: string;
  series: SeriesSpec[];
  data: number[][];
  format: (v: number) => string;
  axis?: (v: number) => string;
  theme: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const fmt = useRef(format);
  fmt.current = format;
  const ax = useRef(axis);
  ax.current = axis;

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const css = getComputedStyle(document.documentElement);
    const text = css.getPropertyValue('--muted').trim() || '#555';
    const grid = css.getPropertyValue('--border').trim() || '#ccc';
    const style = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    const opts: uPlot.Options = {
      width: Math.max(260, el.clientWidth - 8),
      height: 160,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      // The last WINDOW_S seconds, whatever has been sampled so far.
      scales: {
        x: { time: true, range: (_u, _min, max) => [(max || Date.now() / 1000) - WINDOW_S, max || Date.now() / 1000] },
        // From zero, with headroom; 0..1 while everything is zero.
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] },
      },
      axes: [style, { ...style, size: 64, values: (_u, vals) => vals.map((v) => ax.current(v)) }],
      series: [
        {},
        ...series.map((s) => ({
          label: s.label,
          stroke: css.getPropertyValue(s.color).trim() || '#4338ca',
          width: 2,
          value: (_u: uPlot, v: number | null) => (v === null ? '—' : fmt.current(v)),
        })),
      ],
    };
    const u = new uPlot(opts, data as uPlot.AlignedData, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(260, el.clientWidth - 8), height: 160 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [theme, series.map((s) => s.label).join()]);

  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data]);

  return (
    <figure className="chart" aria-label={title} style={{ margin: 0 }}>
      <h3>{title}</h3>
      <div ref={box} aria-hidden="true" />
      <figcaption className="sr-only">
        {title}: latest {series.map((s, i) => `${s.label} ${format(data[i + 1]?.[data[i + 1].length - 1] ?? 0)}`).join(', ')}
      </figcaption>
    </figure>
  );
}
