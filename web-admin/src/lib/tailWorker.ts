/**
 * The live tail's Web Worker: owns the WebSocket reader, acknowledges and samples every frame,
 * and posts the page only what it shows (see `TailCore` in wsReader.ts).
 */
import { TailCore, type WorkerCommand, type WorkerEvent } from './wsReader';

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<WorkerCommand>) => void) | null;
  postMessage(message: WorkerEvent): void;
};

let core: TailCore | null = null;

scope.onmessage = (e) => {
  const c = e.data;
  switch (c.type) {
    case 'start':
      core?.stop();
      core = new TailCore(
        c.urls,
        {
          onMessages: (batch, stats) => scope.postMessage({ type: 'batch', batch, stats }),
          onState: (state, reason) => scope.postMessage({ type: 'state', state, reason }),
        },
        c.cap,
      );
      core.start(c.from);
      break;
    case 'cap':
      core?.setCap(c.cap);
      break;
    case 'pause':
      core?.pause();
      break;
    case 'resume':
      core?.resume();
      break;
    case 'stop':
      core?.stop();
      break;
  }
};
