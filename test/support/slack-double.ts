/**
 * A local stand-in for Slack: the Web API methods modelgate calls (chat.postMessage, chat.update,
 * chat.postEphemeral, conversations.history, views.open) under /api/, and response_url sinks under /response/.
 * It records every call so tests can assert on the posted and updated blocks. Binds 127.0.0.1 on a free port.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedCall {
  method: string;
  args: Record<string, unknown>;
  authorization?: string;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  text?: string;
  blocks: Array<Record<string, unknown>>;
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  updates: number;
}

export interface ResponseUrlPost {
  id: string;
  body: Record<string, unknown>;
}

export interface SlackDouble {
  /** Base for WebClient's slackApiUrl, ending in `/api/`. */
  apiUrl: string;
  /** Prefix of response_urls this double serves (`…/response/`). */
  responseUrlPrefix: string;
  responseUrl(id: string): string;
  calls: RecordedCall[];
  messages: StoredMessage[];
  responses: ResponseUrlPost[];
  callsOf(method: string): RecordedCall[];
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** WebClient sends form fields with objects JSON-encoded; decode those back. */
function decodeArgs(raw: string, contentType: string | undefined): Record<string, unknown> {
  if ((contentType ?? '').includes('application/json')) return raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    if (/^[[{]/.test(v)) {
      try {
        out[k] = JSON.parse(v);
        continue;
      } catch {
        // plain string
      }
    }
    out[k] = v;
  }
  return out;
}

export async function startSlackDouble(): Promise<SlackDouble> {
  const calls: RecordedCall[] = [];
  const messages: StoredMessage[] = [];
  const responses: ResponseUrlPost[] = [];
  let seq = 0;

  const server: Server = createServer((req, res) => {
    void (async () => {
      const raw = await readBody(req);
      const url = req.url ?? '/';
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (url.startsWith('/response/')) {
        responses.push({ id: url.slice('/response/'.length), body: JSON.parse(raw || '{}') as Record<string, unknown> });
        return send(200, { ok: true });
      }
      if (!url.startsWith('/api/')) return send(404, { ok: false, error: 'unknown_path' });
      const method = url.slice('/api/'.length).split('?')[0];
      const args = decodeArgs(raw, req.headers['content-type']);
      calls.push({ method, args, authorization: req.headers.authorization });
      switch (method) {
        case 'chat.postMessage': {
          const ts = `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;
          const channel = String(args.channel);
          messages.push({
            channel,
            ts,
            text: args.text as string | undefined,
            blocks: (args.blocks as StoredMessage['blocks']) ?? [],
            metadata: args.metadata as StoredMessage['metadata'],
            updates: 0,
          });
          return send(200, { ok: true, channel, ts, message: { ts, text: args.text } });
        }
        case 'chat.update': {
          const m = messages.find((x) => x.channel === args.channel && x.ts === args.ts);
          if (!m) return send(200, { ok: false, error: 'message_not_found' });
          m.blocks = (args.blocks as StoredMessage['blocks']) ?? m.blocks;
          m.text = (args.text as string | undefined) ?? m.text;
          m.updates++;
          return send(200, { ok: true, channel: m.channel, ts: m.ts });
        }
        case 'conversations.history': {
          const inChannel = messages.filter((x) => x.channel === args.channel).reverse();
          return send(200, { ok: true, messages: inChannel.map((x) => ({ ts: x.ts, text: x.text, metadata: x.metadata })), has_more: false });
        }
        case 'views.open':
          return send(200, { ok: true, view: { id: `V${++seq}` } });
        case 'chat.postEphemeral':
          return send(200, { ok: true, message_ts: `${Date.now() / 1000}` });
        default:
          return send(200, { ok: false, error: 'unknown_method' });
      }
    })().catch(() => {
      res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl: `${base}/api/`,
    responseUrlPrefix: `${base}/response/`,
    responseUrl: (id) => `${base}/response/${id}`,
    calls,
    messages,
    responses,
    callsOf: (method) => calls.filter((c) => c.method === method),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
