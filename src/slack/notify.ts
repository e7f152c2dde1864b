/**
 * Posting and updating a lifecycle's Slack message. The message carries Slack message metadata naming the
 * workflow, so a retried post (the activity timed out after Slack accepted it) finds and updates the first
 * message instead of posting a second one.
 */
import type { WebClient } from '@slack/web-api';
import type { LifecycleState } from '../workflows/definitions.js';
import { renderLifecycleMessage, type NotifyLinks } from './blocks.js';

export const METADATA_EVENT = 'modelgate_lifecycle';

export interface SlackMessageRef {
  channel: string;
  ts: string;
}

/** The ts of an earlier message for this workflow in `channel` (last day), or undefined; never throws. */
export async function findLifecycleMessage(slack: WebClient, channel: string, workflowId: string): Promise<string | undefined> {
  try {
    const res = await slack.conversations.history({
      channel,
      limit: 100,
      include_all_metadata: true,
      oldest: String(Math.floor(Date.now() / 1000) - 24 * 3600),
    });
    for (const m of res.messages ?? []) {
      const meta = (m as { metadata?: { event_type?: string; event_payload?: Record<string, unknown> } }).metadata;
      if (meta?.event_type === METADATA_EVENT && meta.event_payload?.workflow_id === workflowId && m.ts) return m.ts;
    }
  } catch {
    // Missing channels:history scope or a transient error: posting again is the lesser evil.
  }
  return undefined;
}

export async function postLifecycleMessage(
  slack: WebClient,
  channel: string,
  state: LifecycleState,
  links: NotifyLinks,
): Promise<SlackMessageRef> {
  const { text, blocks } = renderLifecycleMessage(state, links);
  const res = await slack.chat.postMessage({
    channel,
    text,
    blocks: blocks as never,
    unfurl_links: false,
    metadata: { event_type: METADATA_EVENT, event_payload: { workflow_id: state.workflowId, model: state.model, version: state.version } },
  });
  if (!res.ts || !res.channel) throw new Error('Slack chat.postMessage answered without channel/ts');
  return { channel: res.channel, ts: res.ts };
}

export async function updateLifecycleMessage(slack: WebClient, ref: SlackMessageRef, state: LifecycleState, links: NotifyLinks): Promise<void> {
  const { text, blocks } = renderLifecycleMessage(state, links);
  await slack.chat.update({ channel: ref.channel, ts: ref.ts, text, blocks: blocks as never });
}
