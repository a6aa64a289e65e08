/** External groups (G1–G4) and their members (M1, M2) (reference §2.6). */
import { requireState } from './access.js';
import { notFound } from './connections.js';
import type { Emu } from './context.js';
import { ALNUM_RE, GUID_RE, GraphError, isObject, type Reply } from './http.js';
import type { Connection, ExternalGroup, GroupMember } from './store.js';

function checkGroupId(id: unknown, what = 'External group id'): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 128 || !ALNUM_RE.test(id))
    throw new GraphError(400, 'InvalidRequest', 'The request is malformed or incorrect.', {
      code: 'InvalidGroupId',
      message: `${what} ${JSON.stringify(id)} is invalid: it must be 1–128 characters, letters and digits only.`,
    });
  return id;
}

function checkText(body: Record<string, unknown>, field: string): void {
  const v = body[field];
  if (v !== undefined && v !== null && typeof v !== 'string')
    throw new GraphError(400, 'BadRequest', `${field} must be a string.`);
}

function renderGroup(emu: Emu, c: Connection, g: ExternalGroup, version: string): Record<string, unknown> {
  return {
    '@odata.context': `${emu.baseUrl}/${version}/$metadata#external/connections('${c.id}')/groups/$entity`,
    id: g.id,
    displayName: g.displayName ?? null,
    description: g.description ?? null,
  };
}

function group(c: Connection, gid: string): ExternalGroup {
  const g = c.groups.get(gid);
  if (!g) throw notFound(`The external group '${gid}' of connection '${c.id}'`);
  return g;
}

export function createGroup(emu: Emu, c: Connection, body: Record<string, unknown>, version: string): Reply {
  requireState(c, 'groups');
  for (const k of Object.keys(body))
    if (!['id', 'displayName', 'description', '@odata.type'].includes(k))
      throw new GraphError(
        400,
        'BadRequest',
        `The property '${k}' does not exist on type 'microsoft.graph.externalConnectors.externalGroup'.`,
      );
  const id = checkGroupId(body.id);
  checkText(body, 'displayName');
  checkText(body, 'description');
  if (c.groups.has(id))
    throw new GraphError(
      409,
      'Conflict',
      `An external group with the id '${id}' already exists in connection '${c.id}'.`,
      {
        code: 'GroupAlreadyExists',
      },
    );
  const g: ExternalGroup = {
    id,
    displayName: (body.displayName as string | undefined) ?? undefined,
    description: (body.description as string | undefined) ?? undefined,
    members: [],
  };
  c.groups.set(id, g);
  emu.changed();
  return { status: 201, body: renderGroup(emu, c, g, version) };
}

export function getGroup(emu: Emu, c: Connection, gid: string, version: string): Reply {
  return { status: 200, body: renderGroup(emu, c, group(c, gid), version) };
}

export function updateGroup(emu: Emu, c: Connection, gid: string, body: Record<string, unknown>): Reply {
  requireState(c, 'groups');
  const g = group(c, gid);
  for (const k of Object.keys(body))
    if (!['id', 'displayName', 'description', '@odata.type'].includes(k))
      throw new GraphError(
        400,
        'BadRequest',
        `The property '${k}' does not exist on type 'microsoft.graph.externalConnectors.externalGroup'.`,
      );
  if (body.id !== undefined && body.id !== gid)
    throw new GraphError(
      400,
      'BadRequest',
      `The external group id cannot be changed (body id ${JSON.stringify(body.id)} ≠ '${gid}').`,
    );
  checkText(body, 'displayName');
  checkText(body, 'description');
  if (body.displayName !== undefined) g.displayName = (body.displayName as string | null) ?? undefined;
  if (body.description !== undefined) g.description = (body.description as string | null) ?? undefined;
  emu.changed();
  return { status: 204 };
}

export function deleteGroup(emu: Emu, c: Connection, gid: string): Reply {
  requireState(c, 'groups');
  group(c, gid);
  c.groups.delete(gid);
  emu.changed();
  return { status: 204 };
}

export function addMember(emu: Emu, c: Connection, gid: string, body: Record<string, unknown>, version: string): Reply {
  requireState(c, 'groups');
  const g = group(c, gid);
  for (const k of Object.keys(body))
    if (!['id', 'type', '@odata.type', ...(version === 'beta' ? ['identitySource'] : [])].includes(k))
      throw new GraphError(
        400,
        'BadRequest',
        `The property '${k}' does not exist on type 'microsoft.graph.externalConnectors.identity'.`,
      );
  if (typeof body.id !== 'string' || body.id.length === 0)
    throw new GraphError(400, 'BadRequest', 'The member id is required.');
  let type = body.type as string;
  // Beta externalGroupMember: a nested external group is type "group" with identitySource "external".
  if (version === 'beta' && type === 'group' && body.identitySource === 'external') type = 'externalGroup';
  if (!['user', 'group', 'externalGroup'].includes(type))
    throw new GraphError(
      400,
      'BadRequest',
      `The member type ${JSON.stringify(body.type)} must be user, group or externalGroup.`,
    );
  if (type === 'externalGroup') {
    checkGroupId(body.id, 'Nested external group id');
    if (body.id === gid)
      throw new GraphError(400, 'BadRequest', `External group '${gid}' cannot be a member of itself.`);
  } else if (!GUID_RE.test(body.id))
    throw new GraphError(
      400,
      'BadRequest',
      `A ${type} member needs an Entra object id (GUID); '${body.id}' is not one. Resolve UPNs and names through the directory first.`,
    );
  const member: GroupMember = {
    id: type === 'externalGroup' ? body.id : body.id.toLowerCase(),
    type: type as GroupMember['type'],
  };
  if (g.members.some((m) => m.id.toLowerCase() === member.id.toLowerCase() && m.type === member.type))
    throw new GraphError(409, 'Conflict', `'${member.id}' is already a member of external group '${gid}'.`, {
      code: 'MemberAlreadyExists',
    });
  g.members.push(member);
  emu.changed();
  return {
    status: 201,
    body: {
      '@odata.context': `${emu.baseUrl}/${version}/$metadata#external/connections('${c.id}')/groups('${gid}')/members/$entity`,
      id: member.id,
      type: version === 'beta' && member.type === 'externalGroup' ? 'group' : member.type,
      ...(version === 'beta'
        ? { identitySource: member.type === 'externalGroup' ? 'external' : 'azureActiveDirectory' }
        : {}),
    },
  };
}

export function removeMember(emu: Emu, c: Connection, gid: string, memberId: string): Reply {
  requireState(c, 'groups');
  const g = group(c, gid);
  const i = g.members.findIndex((m) => m.id.toLowerCase() === memberId.toLowerCase());
  if (i < 0) throw notFound(`The member '${memberId}' of external group '${gid}'`);
  g.members.splice(i, 1);
  emu.changed();
  return { status: 204 };
}

export function isGroupMember(body: unknown): body is GroupMember {
  return isObject(body) && typeof body.id === 'string';
}
