/**
 * The live tail: a Pulsar WebSocket reader (`/ws/v2/reader/...`) that never creates a
 * subscription. Every frame is acknowledged at once (a reader's acks only free its receive
 * window), so the broker never waits on the browser and producers are never slowed. What is
 * shown is capped at `maxPerSecond`: beyond it messages are counted and skipped (sampled), and
 * the count is shown. Pausing stops acknowledging: the reader's window (1000 messages) fills and
 * the broker stops sending, holding the reader's place in the log (producers are unaffected:
 * a reader only reads); resuming acknowledges the held messages and goes on, so nothing is lost
 * across a pause unless it is sampled away.
 */
import { messageIdToBase64, messageIdFromBase64, messageIdText } from './messageId';

export interface TailMessage {
  /** `L:E:P` */
  messageId: string;
  payload: string;
  key?: string;
  properties: Record<string, string>;
  publishTime: string;
  eventTime?: string;
}

export interface TailStats {
  received: number;
  shown: number;
  skipped: number;
  /** Messages per second received over the last second. */
  rate: number;
}

export type TailState = 'connecting' | 'live' | 'paused' | 'closed' | 'error';

/** Admits at most `cap` items per one-second window; counts the rest. */
export class RateSampler {
  private windowStart = 0;
  private inWindow = 0;
  skipped = 0;
  constructor(public cap: number) {}
  offer(nowMs: number): boolean {
    if (nowMs - this.windowStart >= 1000) {
      this.windowStart = nowMs;
      this.inWindow = 0;
    }
    if (this.inWindow < this.cap) {
      this.inWindow++;
      return true;
    }
    this.skipped++;
    return false;
  }
}

/** Counts events over a sliding one-second window. */
export class RateMeter {
  private stamps: number[] = [];
  private head = 0;
  mark(nowMs: number) {
    this.stamps.push(nowMs);
  }
  rate(nowMs: number): number {
    while (this.head < this.stamps.length && nowMs - this.stamps[this.head] > 1000) this.head++;
    if (this.head > 4096) {
      this.stamps = this.stamps.slice(this.head);
      this.head = 0;
    }
    return this.stamps.length - this.head;
  }
}

/** Builds the reader URL; `after` (an `L:E:P` id) starts after that message. */
export function readerUrl(
  origin: string,
  topic: { tenant: string; namespace: string; topic: string },
  start: 'earliest' | 'latest' | { after: string },
  token: string | null,
): string {
  const ws = origin.replace(/^http/, 'ws');
  const path = `/ws/v2/reader/persistent/${encodeURIComponent(topic.tenant)}/${encodeURIComponent(topic.namespace)}/${encodeURIComponent(topic.topic)}`;
  const q = new URLSearchParams({ readerName: 'console-tail', receiverQueueSize: '1000' });
  if (typeof start === 'string') q.set('messageId', start);
  else {
    const parts = start.after.split(':').map(Number);
    q.set('messageId', messageIdToBase64({ ledgerId: parts[0], entryId: parts[1], partition: parts[2] ?? -1 }));
  }
  if (token) q.set('token', token);
  return `${ws}${path}?${q}`;
}

interface Frame {
  messageId?: string;
  payload?: string;
  key?: string;
  properties?: Record<string, string>;
  publishTime?: string;
  eventTime?: string;
  error?: string;
}

export interface TailCallbacks {
  onMessages(batch: TailMessage[], stats: TailStats): void;
  onState(state: TailState, reason?: string): void;
}

export class TailReader {
  private socket: WebSocket | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private pending: TailMessage[] = [];
  private sampler: RateSampler;
  private meter = new RateMeter();
  private paused = false;
  private held: Frame[] = [];
  stats: TailStats = { received: 0, shown: 0, skipped: 0, rate: 0 };

  constructor(
    private readonly urlFor: (start: 'earliest' | 'latest' | { after: string }) => string,
    private readonly cb: TailCallbacks,
    maxPerSecond: number,
    private readonly flushEveryMs = 250,
  ) {
    this.sampler = new RateSampler(maxPerSecond);
  }

  start(from: 'earliest' | 'latest') {
    this.open(from);
  }

  setCap(maxPerSecond: number) {
    this.sampler.cap = maxPerSecond;
  }

  pause() {
    this.paused = true;
    this.cb.onState('paused');
  }

  resume() {
    this.paused = false;
    const held = this.held;
    this.held = [];
    const socket = this.socket;
    if (socket) for (const f of held) this.accept(socket, f);
    this.cb.onState(socket ? 'live' : 'closed');
  }

  stop() {
    this.close('closed');
  }

  private open(start: 'earliest' | 'latest' | { after: string }) {
    this.close(null);
    this.paused = false;
    this.held = [];
    this.cb.onState('connecting');
    const socket = new WebSocket(this.urlFor(start));
    this.socket = socket;
    socket.onopen = () => this.cb.onState('live');
    socket.onmessage = (ev) => this.receive(socket, ev.data);
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.flush();
      this.cb.onState(ev.code === 1000 || ev.code === 1005 ? 'closed' : 'error', ev.reason || `connection closed (${ev.code})`);
    };
    socket.onerror = () => {
      /* onclose follows with the code */
    };
    this.timer = setInterval(() => this.flush(), this.flushEveryMs);
  }

  private receive(socket: WebSocket, data: unknown) {
    if (typeof data !== 'string') return;
    let frame: Frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!frame.messageId || frame.payload === undefined) return;
    if (this.paused) {
      this.held.push(frame);
      return;
    }
    this.accept(socket, frame);
  }

  private accept(socket: WebSocket, frame: Frame & { messageId?: string; payload?: string }) {
    if (!frame.messageId || frame.payload === undefined) return;
    if (socket.readyState === WebSocket.OPEN) socket.send(`{"messageId":"${frame.messageId}"}`);
    const now = performance.now();
    this.stats.received++;
    this.meter.mark(now);
    const id = messageIdFromBase64(frame.messageId);
    const text = id ? messageIdText(id) : frame.messageId;
    if (!this.sampler.offer(now)) {
      this.stats.skipped = this.sampler.skipped;
      return;
    }
    this.stats.shown++;
    this.pending.push({
      messageId: text,
      payload: frame.payload,
      key: frame.key,
      properties: frame.properties ?? {},
      publishTime: frame.publishTime ?? '',
      eventTime: frame.eventTime,
    });
  }

  private flush() {
    this.stats.rate = this.meter.rate(performance.now());
    const batch = this.pending;
    this.pending = [];
    this.cb.onMessages(batch, { ...this.stats });
  }

  private close(state: TailState | null) {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const s = this.socket;
    this.socket = null;
    if (s) {
      s.onmessage = null;
      s.onclose = null;
      try {
        s.close(1000);
      } catch {
        /* already closed */
      }
    }
    this.flush();
    if (state) this.cb.onState(state);
  }
}
