/** Formatting of numbers, sizes, rates, durations and times for display. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n < 0) return String(n);
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v)} ${UNITS[i]}`;
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return Math.round(n).toLocaleString('en-US');
}

/** Messages per second: one decimal below 10, none above. */
export function formatRate(n: number | null | undefined, unit = 'msg/s'): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const v = n < 10 ? (Math.round(n * 10) / 10).toString() : Math.round(n).toLocaleString('en-US');
  return `${v} ${unit}`;
}

export function formatThroughput(bytesPerSecond: number | null | undefined): string {
  if (bytesPerSecond === null || bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond)) return '—';
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** A duration in seconds as `1d 2h`, `3h 5m`, `4m 10s`, `12s`; -1 as "infinite". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 0) return 'infinite';
  if (seconds === 0) return '0 s';
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  const parts: string[] = [];
  if (d) parts.push(`${d}d`);
  if (h) parts.push(`${h}h`);
  if (m && !d) parts.push(`${m}m`);
  if (s && !d && !h) parts.push(`${s}s`);
  return parts.slice(0, 2).join(' ') || '0 s';
}

/** An epoch (ms, or seconds when `unit` says so) as a local date-time with seconds. */
export function formatTime(epoch: number | string | null | undefined, unit: 'ms' | 's' = 'ms'): string {
  if (epoch === null || epoch === undefined || epoch === '' || epoch === 0) return '—';
  const d = typeof epoch === 'string' ? new Date(epoch) : new Date(unit === 's' ? epoch * 1000 : epoch);
  if (Number.isNaN(d.getTime())) return String(epoch);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** How long ago an epoch (ms) was, coarse. */
export function formatAgo(epochMs: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - epochMs) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Retention in Pulsar's units: -1 infinite, 0 none. */
export function formatRetention(r: { retentionTimeInMinutes?: number; retentionSizeInMB?: number } | null | undefined): string {
  if (!r) return '—';
  const t = r.retentionTimeInMinutes ?? 0;
  const s = r.retentionSizeInMB ?? 0;
  const time = t < 0 ? 'forever' : t === 0 ? 'no time' : formatDuration(t * 60);
  const size = s < 0 ? 'no size limit' : s === 0 ? 'no size' : formatBytes(s * 1024 * 1024);
  if (t === 0 && s === 0) return 'none (acknowledged messages may be deleted)';
  return `${time}, ${size}`;
}
