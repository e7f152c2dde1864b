/**
 * Slack notification activities. The workflow calls notifyStaging once when a version reaches Staging, keeps
 * the returned `{ channel, ts }` and passes it to notifyUpdate on every later move. Without a Slack token both
 * are no-ops that say so (`skipped`), so a deployment without Slack runs the same workflow.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { WebClient } from '@slack/web-api';
import type { LifecycleState } from '../workflows/definitions.js';
import type { NotifyLinks } from '../slack/blocks.js';
import { findLifecycleMessage, postLifecycleMessage, updateLifecycleMessage } from '../slack/notify.js';

export interface NotifyDeps {
  /** Undefined when MODELGATE_SLACK_BOT_TOKEN is not set. */
  slack: WebClient | undefined;
  links: NotifyLinks;
}

export interface NotifyStagingInput {
  state: LifecycleState;
  channel: string;
  /** Set when the workflow already posted (e.g. a re-notify after continue-as-new): the message is updated. */
  ts?: string;
}

export interface NotifyUpdateInput {
  state: LifecycleState;
  channel: string;
  ts?: string;
}

export interface NotifyResult {
  channel: string;
  ts?: string;
  /** Why nothing was sent (no Slack token, no message to update). */
  skipped?: string;
}

/** Slack answers that retrying cannot fix. */
const PERMANENT = new Set([
  'channel_not_found', 'not_in_channel', 'is_archived', 'invalid_auth', 'not_authed', 'account_inactive',
  'token_revoked', 'missing_scope', 'message_not_found', 'cant_update_message', 'invalid_blocks', 'msg_too_long',
  'no_permission', 'restricted_action',
]);

function classify(err: unknown): unknown {
  const code = (err as { data?: { error?: string } }).data?.error;
  if (code && PERMANENT.has(code)) {
    return ApplicationFailure.create({ type: 'SlackPermanent', nonRetryable: true, message: `Slack refused: ${code}` });
  }
  return err;
}

export function createNotifyActivities(deps: NotifyDeps) {
  return {
    async notifyStaging(input: NotifyStagingInput): Promise<NotifyResult> {
      const { slack, links } = deps;
      if (!slack) return { channel: input.channel, skipped: 'Slack is not configured (MODELGATE_SLACK_BOT_TOKEN unset)' };
      try {
        // A retry after Slack accepted the first post finds that message by its metadata.
        const ts = input.ts ?? (await findLifecycleMessage(slack, input.channel, input.state.workflowId));
        if (ts) {
          await updateLifecycleMessage(slack, { channel: input.channel, ts }, input.state, links);
          return { channel: input.channel, ts };
        }
        return await postLifecycleMessage(slack, input.channel, input.state, links);
      } catch (err) {
        throw classify(err);
      }
    },

    async notifyUpdate(input: NotifyUpdateInput): Promise<NotifyResult> {
      const { slack, links } = deps;
      if (!slack) return { channel: input.channel, ts: input.ts, skipped: 'Slack is not configured (MODELGATE_SLACK_BOT_TOKEN unset)' };
      if (!input.ts) return { channel: input.channel, skipped: 'no Slack message to update (notifyStaging did not post)' };
      try {
        await updateLifecycleMessage(slack, { channel: input.channel, ts: input.ts }, input.state, links);
        return { channel: input.channel, ts: input.ts };
      } catch (err) {
        throw classify(err);
      }
    },
  };
}

export type NotifyActivities = ReturnType<typeof createNotifyActivities>;
