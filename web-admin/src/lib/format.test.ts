import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount, formatDuration, formatRate, formatRetention, formatThroughput } from './format';

describe('format', () => {
  it('sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(10 * 1024 * 1024)).toBe('10.0 MiB');
    expect(formatBytes(5 * 1024 ** 4)).toBe('5.00 TiB');
    expect(formatBytes(undefined)).toBe('—');
    expect(formatBytes(-1)).toBe('-1');
  });
  it('counts and rates', () => {
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatRate(3.14159)).toBe('3.1 msg/s');
    expect(formatRate(5012.7)).toBe('5,013 msg/s');
    expect(formatThroughput(2048)).toBe('2.00 KiB/s');
  });
  it('durations', () => {
    expect(formatDuration(0)).toBe('0 s');
    expect(formatDuration(-1)).toBe('infinite');
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(3600 + 120)).toBe('1h 2m');
    expect(formatDuration(2 * 86400 + 3 * 3600)).toBe('2d 3h');
  });
  it('retention in Pulsar units', () => {
    expect(formatRetention({ retentionTimeInMinutes: 0, retentionSizeInMB: 0 })).toMatch(/^none/);
    expect(formatRetention({ retentionTimeInMinutes: -1, retentionSizeInMB: -1 })).toBe('forever, no size limit');
    expect(formatRetention({ retentionTimeInMinutes: 60, retentionSizeInMB: 1024 })).toBe('1h, 1.00 GiB');
  });
});
