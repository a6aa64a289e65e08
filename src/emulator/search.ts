/**
 * ACL-aware search over stored items: which items may a user see, and which match all query words.
 * Rules (reference §5): deny beats grant; everyone = every directory user (guests too); everyoneExceptGuests
 * excludes guests; Entra groups count with nesting; external groups count with nested external groups and
 * with Entra groups (and their nesting) as members.
 */
import type { AclEntry, Connection, Directory, DirectoryUser, StoredItem } from './store.js';

export interface UserView {
  user: DirectoryUser;
  /** Entra group ids (lowercase) the user is in, transitively. */
  groups: Set<string>;
}

const lc = (s: string) => s.toLowerCase();

export function findUser(dir: Directory, idOrUpn: string): DirectoryUser | undefined {
  const key = lc(idOrUpn);
  return dir.users.find((u) => lc(u.id) === key || lc(u.userPrincipalName) === key);
}

/** Entra groups containing the user, directly or through nested groups. */
export function entraGroupsOf(dir: Directory, userId: string): Set<string> {
  const memberOf = new Map<string, string[]>(); // member id → group ids
  for (const g of dir.groups)
    for (const m of g.members) {
      const k = lc(m);
      memberOf.set(k, [...(memberOf.get(k) ?? []), lc(g.id)]);
    }
  const out = new Set<string>();
  const queue = [lc(userId)];
  while (queue.length) {
    const cur = queue.shift()!;
    for (const g of memberOf.get(cur) ?? [])
      if (!out.has(g)) {
        out.add(g);
        queue.push(g);
      }
  }
  return out;
}

/** External groups of the connection containing the user, directly, via Entra groups, or via nested external groups. */
export function externalGroupsOf(c: Connection, view: UserView): Set<string> {
  const out = new Set<string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const g of c.groups.values()) {
      if (out.has(g.id)) continue;
      const isMember = g.members.some((m) =>
        m.type === 'user'
          ? lc(m.id) === lc(view.user.id)
          : m.type === 'group'
            ? view.groups.has(lc(m.id))
            : out.has(m.id),
      );
      if (isMember) {
        out.add(g.id);
        grew = true;
      }
    }
  }
  return out;
}

function entryMatches(e: AclEntry, view: UserView, external: Set<string>): boolean {
  switch (e.type) {
    case 'user':
      return lc(e.value) === lc(view.user.id);
    case 'group':
      return view.groups.has(lc(e.value));
    case 'everyone':
      return true;
    case 'everyoneExceptGuests':
      return !view.user.guest;
    case 'externalGroup':
      return external.has(e.value);
    default:
      return false;
  }
}

/** Whether the user may see the item: some grant matches and no deny matches. */
export function canSee(item: StoredItem, view: UserView, external: Set<string>): boolean {
  let granted = false;
  for (const e of item.acl) {
    if (!entryMatches(e, view, external)) continue;
    if (e.accessType === 'deny') return false;
    if (e.accessType === 'grant') granted = true;
  }
  return granted;
}

function stripHtml(s: string): string {
  return s.replace(/<[^>]*>/g, ' ');
}

/** The text a query matches against: content plus searchable properties. */
export function searchableText(c: Connection, item: StoredItem): string {
  const parts: string[] = [];
  if (item.content) parts.push(item.content.type === 'html' ? stripHtml(item.content.value) : item.content.value);
  for (const p of c.schema?.properties ?? []) {
    if (!p.isSearchable) continue;
    const v = item.properties[p.name];
    if (typeof v === 'string') parts.push(v);
    else if (Array.isArray(v)) parts.push(...v.filter((x): x is string => typeof x === 'string'));
  }
  return parts.join('\n').toLowerCase();
}

export function matchesQuery(text: string, q: string): boolean {
  const words = q
    .toLowerCase()
    .split(/\s+/)
    .filter((w) => w.length > 0);
  return words.every((w) => text.includes(w));
}
