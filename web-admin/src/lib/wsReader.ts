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

/** The `messageId` of a message frame without parsing it (ids are base64: no escapes), or null. */
export function frameMessageId(frame: string): string | null {
  const key = '"messageId":"';
  const i = frame.indexOf(key);
  if (i < 0) return null;
  const j = frame.indexOf('"', i + key.length);
  return j > i + key.length ? frame.slice(i + key.length, j) : null;
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

/** The most messages a second the broker sends a tail (the highest cap the tail offers). */
export const SERVER_CAP = 500;

/** The count of a `{"type":"skipped","count":N}` frame (the broker's sampling), or null. */
export function skippedCount(frame: string): number | null {
  // The broker writes `type` first; a message frame never starts so (it starts with its id).
  // Any key order is accepted all the same.
  if (!frame.startsWith('{"type":"skipped"') && !(frame.startsWith('{"count":') && frame.includes('"skipped"'))) {
    return null;
  }
  try {
    const parsed = JSON.parse(frame) as { type?: string; count?: number };
    return parsed.type === 'skipped' && typeof parsed.count === 'number' ? parsed.count : null;
  } catch {
    return null;
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
  // The broker samples beyond SERVER_CAP messages a second (and reports what it skipped), so the
  // tab keeps up with any rate; the tail's own cap samples further.
  const q = new URLSearchParams({
    readerName: 'console-tail',
    receiverQueueSize: '1000',
    maxMessagesPerSecond: String(SERVER_CAP),
  });
  if (typeof start === 'string') q.set('messageId', start);
  else {
    const parts = start.after.split(':').map(Number);
    q.set('messageId', messageIdToBase64({ ledgerId: parts[0], entryId: parts[1], partition: parts[2] ?? -1, batchIndex: parts[3] }));
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

export type TailStart = 'earliest' | 'latest';
export type TailUrls = Record<TailStart, string>;

/**
 * The tail itself: the socket, the acknowledgements, the sampler. Runs in a Web Worker (see
 * `TailReader`), so thousands of frames a second never touch the page's main thread; only the
 * sampled messages and the counts cross over, every `flushEveryMs`.
 */
export class TailCore {
  private socket: WebSocket | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private pending: TailMessage[] = [];
  private sampler: RateSampler;
  private meter = new RateMeter();
  private paused = false;
  private held: string[] = [];
  private serverSkipped = 0;
  stats: TailStats = { received: 0, shown: 0, skipped: 0, rate: 0 };

  constructor(
    private readonly urls: TailUrls,
    private readonly cb: TailCallbacks,
    maxPerSecond: number,
    private readonly flushEveryMs = 250,
  ) {
    this.sampler = new RateSampler(maxPerSecond);
  }

  start(from: TailStart) {
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

  private open(start: TailStart) {
    this.close(null);
    this.paused = false;
    this.held = [];
    this.cb.onState('connecting');
    const socket = new WebSocket(this.urls[start]);
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
    if (this.paused) {
      this.held.push(data);
      return;
    }
    this.accept(socket, data);
  }

  /**
   * Acknowledges the frame at once, then shows it if the sampler admits it. Only admitted frames
   * are parsed: at thousands of messages a second the rest cost one string search each.
   */
  private accept(socket: WebSocket, data: string) {
    const skipped = skippedCount(data);
    if (skipped !== null) {
      // Sampled away by the broker: received and skipped, never sent.
      this.stats.received += skipped;
      this.serverSkipped += skipped;
      this.stats.skipped = this.sampler.skipped + this.serverSkipped;
      return;
    }
    const messageId = frameMessageId(data);
    if (!messageId) return;
    if (socket.readyState === WebSocket.OPEN) socket.send(`{"messageId":"${messageId}"}`);
    const now = performance.now();
    this.stats.received++;
    this.meter.mark(now);
    if (!this.sampler.offer(now)) {
      this.stats.skipped = this.sampler.skipped + this.serverSkipped;
      return;
    }
    let frame: Frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame.payload === undefined) return;
    const id = messageIdFromBase64(messageId);
    this.stats.shown++;
    this.pending.push({
      messageId: id ? messageIdText(id) : messageId,
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

/** Commands from the page to the tail's worker, and what the worker answers. */
export type WorkerCommand =
  | { type: 'start'; urls: TailUrls; cap: number; from: TailStart }
  | { type: 'cap'; cap: number }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'stop' };
export type WorkerEvent = { type: 'batch'; batch: TailMessage[]; stats: TailStats } | { type: 'state'; state: TailState; reason?: string };

/**
 * The page's handle on a tail: the work happens in a Web Worker when the browser has them (it
 * always does outside tests), else on the main thread.
 */
export class TailReader {
  private worker: Worker | null = null;
  private core: TailCore | null = null;

  constructor(
    private readonly urls: TailUrls,
    cb: TailCallbacks,
    private cap: number,
  ) {
    if (typeof Worker !== 'undefined') {
      try {
        this.worker = new Worker(new URL('./tailWorker.ts', import.meta.url), { type: 'module', name: 'magnetar-tail' });
        this.worker.onmessage = (e: MessageEvent<WorkerEvent>) => {
          if (e.data.type === 'batch') cb.onMessages(e.data.batch, e.data.stats);
          else cb.onState(e.data.state, e.data.reason);
        };
      } catch {
        this.worker = null;
      }
    }
    if (!this.worker) this.core = new TailCore(urls, cb, cap);
  }

  private post(c: WorkerCommand) {
    this.worker?.postMessage(c);
  }

  start(from: TailStart) {
    if (this.core) this.core.start(from);
    else this.post({ type: 'start', urls: this.urls, cap: this.cap, from });
  }

  setCap(cap: number) {
    this.cap = cap;
    if (this.core) this.core.setCap(cap);
    else this.post({ type: 'cap', cap });
  }

  pause() {
    if (this.core) this.core.pause();
    else this.post({ type: 'pause' });
  }

  resume() {
    if (this.core) this.core.resume();
    else this.post({ type: 'resume' });
  }

  /** Closes the tail; the handle can start again. */
  stop() {
    if (this.core) this.core.stop();
    else this.post({ type: 'stop' });
  }

  /** Closes the tail and its worker for good. */
  dispose() {
    this.core?.stop();
    if (this.worker) {
      this.post({ type: 'stop' });
      const w = this.worker;
      // Let the worker close its socket (a clean close frame) before it goes.
      setTimeout(() => w.terminate(), 500);
      this.worker = null;
    }
  }
}
