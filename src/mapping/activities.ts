/**
 * mapping.activities → the user activities of one record: who created, modified, viewed or commented on the item,
 * and when. Users are Entra object ids, or UPNs / emails resolved through the directory exactly as ACL users are
 * (./acl.ts); an activity whose user or time cannot be read is skipped with a warning, never a reason to reject the
 * record. The ingest sends them with addActivities after the item's PUT
 * (https://learn.microsoft.com/graph/api/externalconnectors-externalitem-addactivities).
 */
import { createHash } from 'node:crypto';
import type { ActivityMapping, ActivityType } from '../config/mapping-definition.js';
import { parseFieldPath } from '../config/mapping-template.js';
import { resolvePrincipal, type AclContext } from './acl.js';
import { isMissingValue, normaliseDateTime, readFieldPath, stringifyForTemplate } from './values.js';

/** One activity, ready for Graph: `type`, `startDateTime` (UTC ISO 8601) and the user's Entra object id. */
export interface ItemActivity {
  type: ActivityType;
  startDateTime: string;
  userId: string;
}

/**
 * The most activities one record carries to the ingest (the newest): they travel in the item's queue message,
 * which the queue caps at 64 KiB.
 */
export const MAX_ACTIVITIES_PER_ITEM = 200;

interface CompiledActivityRule {
  index: number;
  type: ActivityType;
  user: string[];
  time: string[];
  from?: string[];
}

export function compileActivityRules(rules: readonly ActivityMapping[]): CompiledActivityRule[] {
  return rules.map((r, index) => ({
    index,
    type: r.type,
    user: parseFieldPath(r.user),
    time: parseFieldPath(r.time),
    ...(r.from !== undefined ? { from: parseFieldPath(r.from) } : {}),
  }));
}

/**
 * The activities of one record, oldest first, without duplicates, at most {@link MAX_ACTIVITIES_PER_ITEM} (the
 * newest). `warnings` say which were skipped and why (no record content beyond the user value).
 */
export function buildActivities(
  rules: readonly CompiledActivityRule[],
  data: unknown,
  directory: AclContext['directory'],
): { activities: ItemActivity[]; warnings: string[] } {
  const warnings: string[] = [];
  const byKey = new Map<string, ItemActivity>();
  const ctx: AclContext = { directory, everyoneValue: '', allowEveryone: false };
  for (const r of rules) {
    let elements: unknown[];
    let where: (i: number) => string;
    if (r.from) {
      const list = readFieldPath(data, r.from);
      if (isMissingValue(list)) continue;
      if (!Array.isArray(list)) {
        warnings.push(`activities[${r.index}]: "${r.from.join('.')}" is not an array; no ${r.type} activity read`);
        continue;
      }
      elements = list;
      where = (i) => `activities[${r.index}] (${r.from!.join('.')}[${i}])`;
    } else {
      elements = [data];
      where = () => `activities[${r.index}]`;
    }
    elements.forEach((el, i) => {
      const rawUser = readFieldPath(el, r.user);
      const rawTime = readFieldPath(el, r.time);
      if (isMissingValue(rawUser) && isMissingValue(rawTime)) return; // no such activity in this record
      if (isMissingValue(rawUser)) {
        warnings.push(`${where(i)}: no user in "${r.user.join('.')}"; ${r.type} activity skipped`);
        return;
      }
      if (isMissingValue(rawTime)) {
        warnings.push(`${where(i)}: no time in "${r.time.join('.')}"; ${r.type} activity skipped`);
        return;
      }
      const user = resolvePrincipal('user', stringifyForTemplate(rawUser), ctx);
      if ('why' in user) {
        warnings.push(`${where(i)}: ${user.why}; ${r.type} activity skipped`);
        return;
      }
      const time = normaliseDateTime(rawTime);
      if (!time.ok || !('value' in time)) {
        const why = time.ok ? 'no value' : time.message;
        warnings.push(`${where(i)}: "${r.time.join('.')}": ${why}; ${r.type} activity skipped`);
        return;
      }
      const a: ItemActivity = { type: r.type, startDateTime: String(time.value), userId: user.value };
      byKey.set(activityKey(a), a);
    });
  }
  const activities = [...byKey.values()].sort(compareActivities);
  if (activities.length > MAX_ACTIVITIES_PER_ITEM) {
    warnings.push(
      `${activities.length} activities; only the newest ${MAX_ACTIVITIES_PER_ITEM} are sent (mapping.activities)`,
    );
    return { activities: activities.slice(-MAX_ACTIVITIES_PER_ITEM), warnings };
  }
  return { activities, warnings };
}

/** Oldest first; ties in a fixed order (type, then user), so equal sets always list alike. */
export function compareActivities(a: ItemActivity, b: ItemActivity): number {
  if (a.startDateTime !== b.startDateTime) return a.startDateTime < b.startDateTime ? -1 : 1;
  const ka = activityKey(a);
  const kb = activityKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** What makes an activity itself: its type, user and time. */
export function activityKey(a: ItemActivity): string {
  return `${a.startDateTime}|${a.type}|${a.userId}`;
}

/** A short fingerprint of one activity (for the ledger's record of what was sent at the newest time). */
export function activityTag(a: ItemActivity): string {
  return createHash('sha256').update(activityKey(a)).digest('base64url').slice(0, 8);
}

/** A digest of a record's activities: part of the item's hash, so a new activity makes the item changed. */
export function activitiesDigest(list: readonly ItemActivity[]): string {
  const h = createHash('sha256');
  for (const a of list) h.update(activityKey(a)).update('\n');
  return h.digest('base64url').slice(0, 22);
}

/**
 * What the ledger keeps of the activities sent for an item (the `activityMark` of its row): the newest time sent and
 * the fingerprints of the activities at exactly that time, `"<iso>|<tag>,<tag>"`. An activity is new when it is
 * later than that time, or at that time with a fingerprint not listed. (An activity that appears later in the
 * source with an earlier time than one already sent is therefore not sent: see docs/mapping.md "Activities".)
 */
export interface ActivityMark {
  at: string;
  tags: string[];
}

/** Fingerprints kept for the newest time (activities sharing one timestamp beyond this are compared by time only). */
const MAX_MARK_TAGS = 64;

export function parseActivityMark(text: string | undefined): ActivityMark | undefined {
  if (!text) return undefined;
  const i = text.indexOf('|');
  if (i <= 0) return undefined;
  return { at: text.slice(0, i), tags: text.slice(i + 1) ? text.slice(i + 1).split(',') : [] };
}

export function formatActivityMark(mark: ActivityMark): string {
  return `${mark.at}|${mark.tags.slice(0, MAX_MARK_TAGS).join(',')}`;
}

/**
 * The activities of `list` (oldest first) that `mark` does not cover, and the mark once they are sent. `mark`
 * undefined: nothing was sent for the item yet.
 */
export function newActivities(
  list: readonly ItemActivity[],
  markText: string | undefined,
): { fresh: ItemActivity[]; mark: string | undefined } {
  const mark = parseActivityMark(markText);
  const fresh = mark
    ? list.filter(
        (a) => a.startDateTime > mark.at || (a.startDateTime === mark.at && !mark.tags.includes(activityTag(a))),
      )
    : [...list];
  if (!fresh.length) return { fresh, mark: markText };
  const newest = fresh[fresh.length - 1]!.startDateTime;
  const at = mark && mark.at > newest ? mark.at : newest;
  const tags = new Set(mark && mark.at === at ? mark.tags : []);
  for (const a of list) if (a.startDateTime === at) tags.add(activityTag(a));
  return { fresh, mark: formatActivityMark({ at, tags: [...tags] }) };
}
