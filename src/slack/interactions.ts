/**
 * Slack interactivity: Approve/Reject buttons and the reject-reason modal. The route acknowledges at once (Slack
 * gives 3 s) and hands the work to `handle…` functions here, which run in the background and report through
 * the payload's response_url (message replace or ephemeral) or chat.update.
 */
import { request } from 'undici';
import type { WebClient } from '@slack/web-api';
import type { Logger } from '../observability/log.js';
import type { Caller } from '../identity/types.js';
import type { Decisions } from '../api/decisions.js';
import { ModelgateError } from '../client.js';
import {
  APPROVE_ACTION,
  REASON_BLOCK,
  REASON_INPUT,
  REJECT_ACTION,
  REJECT_VIEW,
  rejectModal,
  renderLifecycleMessage,
  type ActionValue,
  type NotifyLinks,
} from './blocks.js';
import { slackActions } from '../api/metrics.js';

export interface SlackInteractionDeps {
  decisions: Decisions;
  /** Slack user id → modelgate identity, through the identity directory. */
  identities: { bySlackUser(userId: string): Caller | undefined };
  /** Bot client for views.open / chat.update; without it Reject cannot ask for a reason. */
  slack?: WebClient;
  links: NotifyLinks;
  responseUrlPrefixes: string[];
  logger: Logger;
}

/** The fields of Slack's interaction payloads modelgate reads. */
export interface SlackPayload {
  type: string;
  user?: { id?: string; username?: string };
  trigger_id?: string;
  response_url?: string;
  actions?: Array<{ action_id?: string; value?: string }>;
  channel?: { id?: string };
  container?: { channel_id?: string; message_ts?: string };
  message?: { ts?: string };
  view?: {
    callback_id?: string;
    private_metadata?: string;
    state?: { values?: Record<string, Record<string, { value?: string | null }>> };
  };
}

/** What the route answers synchronously (within Slack's 3 s) and what it runs after answering. */
export interface Plan {
  body?: Record<string, unknown>;
  background?: () => Promise<void>;
}

export function parseActionValue(value: string | undefined): ActionValue | undefined {
  try {
    const v = JSON.parse(value ?? '') as Partial<ActionValue>;
    if (typeof v.model === 'string' && v.model && Number.isInteger(v.version) && (v.version as number) > 0) {
      return { model: v.model, version: v.version as number };
    }
  } catch {
    // fall through
  }
  return undefined;
}

export function unmappedMessage(userId: string): string {
  return `Your Slack account (<@${userId}>) is not linked to a modelgate approver, so nothing was changed. Ask an administrator to add \`slack: ${userId}\` to your identity in the modelgate identity directory.`;
}

export async function postToResponseUrl(deps: Pick<SlackInteractionDeps, 'responseUrlPrefixes' | 'logger'>, url: string | undefined, body: Record<string, unknown>): Promise<boolean> {
  if (!url) return false;
  if (!deps.responseUrlPrefixes.some((p) => url.startsWith(p))) {
    deps.logger.warn({ host: safeHost(url) }, 'slack: response_url outside MODELGATE_SLACK_RESPONSE_URL_PREFIXES; not called');
    return false;
  }
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    await res.body.dump();
    if (res.statusCode >= 300) deps.logger.warn({ status: res.statusCode, host: safeHost(url) }, 'slack: response_url refused the message');
    return res.statusCode < 300;
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, host: safeHost(url) }, 'slack: response_url not reachable');
    return false;
  }
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'invalid-url';
  }
}

function ephemeral(text: string): Record<string, unknown> {
  return { response_type: 'ephemeral', replace_original: false, text };
}

function errorText(err: unknown): string {
  if (err instanceof ModelgateError) return `${err.message}. Nothing was changed.`;
  return 'modelgate could not reach Temporal to record this; nothing was changed. Please try again in a minute.';
}

/** Decide what to do with one verified interaction payload. */
export function planInteraction(deps: SlackInteractionDeps, p: SlackPayload): Plan {
  if (p.type === 'block_actions') return planBlockAction(deps, p);
  if (p.type === 'view_submission' && p.view?.callback_id === REJECT_VIEW) return planRejectSubmission(deps, p);
  // Other interactions (shortcuts, view_closed…) are acknowledged and ignored.
  return {};
}

function planBlockAction(deps: SlackInteractionDeps, p: SlackPayload): Plan {
  const action = p.actions?.[0];
  const actionId = action?.action_id;
  if (actionId !== APPROVE_ACTION && actionId !== REJECT_ACTION) return {};
  const value = parseActionValue(action?.value);
  const userId = p.user?.id ?? '';
  const linked = deps.identities.bySlackUser(userId);
  // A Slack click decides only for an identity whose credentials may approve (a service identity may not).
  const caller = linked?.scopes.includes('approve') ? linked : undefined;
  const identity = caller?.identity;
  const url = p.response_url;
  if (!value) {
    slackActions.inc({ action: actionId, outcome: 'invalid' });
    return { background: async () => void (await postToResponseUrl(deps, url, ephemeral('This button does not name a model version; nothing was changed.'))) };
  }
  if (!identity) {
    slackActions.inc({ action: actionId, outcome: 'unmapped_user' });
    // Audited in the log (never the workflow history): who tried, on what.
    deps.logger.warn({ slackUser: userId, linked: linked?.identity, action: actionId, model: value.model, version: value.version }, 'slack: decision refused, user not linked to an identity that may approve');
    return { background: async () => void (await postToResponseUrl(deps, url, ephemeral(unmappedMessage(userId)))) };
  }
  if (actionId === APPROVE_ACTION) {
    return {
      background: async () => {
        try {
          const { state, already } = await deps.decisions.decide('approve', value.model, value.version, { by: caller.identity, groups: caller.groups, via: 'slack' });
          if (already) {
            slackActions.inc({ action: 'approve', outcome: 'already' });
            await postToResponseUrl(deps, url, ephemeral(`${value.model} version ${value.version} is already approved by ${identity}; nothing changed.`));
          } else {
            slackActions.inc({ action: 'approve', outcome: 'ok' });
            const msg = renderLifecycleMessage(state, deps.links);
            await postToResponseUrl(deps, url, { replace_original: true, text: msg.text, blocks: msg.blocks });
          }
        } catch (err) {
          slackActions.inc({ action: 'approve', outcome: err instanceof ModelgateError ? err.code : 'error' });
          if (!(err instanceof ModelgateError)) deps.logger.error({ err, model: value.model, version: value.version }, 'slack approve failed');
          await postToResponseUrl(deps, url, ephemeral(errorText(err)));
        }
      },
    };
  }
  // Reject: ask for a reason in a modal; the decision happens on view_submission.
  return {
    background: async () => {
      if (!deps.slack) {
        slackActions.inc({ action: 'reject', outcome: 'no_bot_token' });
        await postToResponseUrl(
          deps,
          url,
          ephemeral(`Rejecting needs a reason and this modelgate has no Slack bot token to ask for one. Use \`modelgate reject ${value.model} ${value.version} --reason …\` instead.`),
        );
        return;
      }
      try {
        await deps.slack.views.open({
          trigger_id: p.trigger_id ?? '',
          view: rejectModal(value, {
            responseUrl: url,
            channel: p.channel?.id ?? p.container?.channel_id,
            ts: p.message?.ts ?? p.container?.message_ts,
          }) as never,
        });
        slackActions.inc({ action: 'reject', outcome: 'modal_opened' });
      } catch (err) {
        slackActions.inc({ action: 'reject', outcome: 'modal_failed' });
        deps.logger.warn({ err: (err as Error).message }, 'slack: views.open failed');
        await postToResponseUrl(deps, url, ephemeral('Could not open the rejection form (it must open within 3 s of the click); please click Reject again.'));
      }
    },
  };
}

interface RejectMeta extends ActionValue {
  responseUrl?: string;
  channel?: string;
  ts?: string;
}

function planRejectSubmission(deps: SlackInteractionDeps, p: SlackPayload): Plan {
  let meta: RejectMeta | undefined;
  try {
    const m = JSON.parse(p.view?.private_metadata ?? '') as RejectMeta;
    if (parseActionValue(JSON.stringify({ model: m.model, version: m.version }))) meta = m;
  } catch {
    meta = undefined;
  }
  if (!meta) return {};
  const reason = (p.view?.state?.values?.[REASON_BLOCK]?.[REASON_INPUT]?.value ?? '').trim();
  if (reason.length < 3) {
    // Answered synchronously: Slack shows it under the input and keeps the modal open.
    return { body: { response_action: 'errors', errors: { [REASON_BLOCK]: 'Please give a reason (at least 3 characters).' } } };
  }
  const userId = p.user?.id ?? '';
  const linked = deps.identities.bySlackUser(userId);
  // A Slack click decides only for an identity whose credentials may approve (a service identity may not).
  const caller = linked?.scopes.includes('approve') ? linked : undefined;
  const identity = caller?.identity;
  const m = meta;
  const report = async (text: string): Promise<void> => {
    if (await postToResponseUrl(deps, m.responseUrl, ephemeral(text))) return;
    if (deps.slack && m.channel) {
      await deps.slack.chat.postEphemeral({ channel: m.channel, user: userId, text }).catch(() => undefined);
    }
  };
  if (!identity) {
    slackActions.inc({ action: 'reject', outcome: 'unmapped_user' });
    deps.logger.warn({ slackUser: userId, linked: linked?.identity, action: 'reject', model: m.model, version: m.version }, 'slack: decision refused, user not linked to an identity that may approve');
    return { background: () => report(unmappedMessage(userId)) };
  }
  return {
    background: async () => {
      try {
        const { state, already } = await deps.decisions.decide('reject', m.model, m.version, { by: caller.identity, groups: caller.groups, via: 'slack', reason });
        if (already) {
          slackActions.inc({ action: 'reject', outcome: 'already' });
          await report(`${m.model} version ${m.version} is already rejected by ${identity}; nothing changed.`);
          return;
        }
        slackActions.inc({ action: 'reject', outcome: 'ok' });
        const msg = renderLifecycleMessage(state, deps.links);
        // The decision is recorded; a failed message update is only reported through the other channel.
        const updated =
          deps.slack && m.channel && m.ts
            ? await deps.slack.chat.update({ channel: m.channel, ts: m.ts, text: msg.text, blocks: msg.blocks as never }).then(
                () => true,
                (err: unknown) => {
                  deps.logger.warn({ err: (err as Error).message }, 'slack: chat.update after reject failed');
                  return false;
                },
              )
            : false;
        if (!updated) await postToResponseUrl(deps, m.responseUrl, { replace_original: true, text: msg.text, blocks: msg.blocks });
      } catch (err) {
        slackActions.inc({ action: 'reject', outcome: err instanceof ModelgateError ? err.code : 'error' });
        if (!(err instanceof ModelgateError)) deps.logger.error({ err, model: m.model, version: m.version }, 'slack reject failed');
        await report(errorText(err));
      }
    },
  };
}
