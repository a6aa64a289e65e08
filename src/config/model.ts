/**
 * The Microsoft Graph connectors wire model (v1.0, namespace microsoft.graph.externalConnectors),
 * shared by the connector definition, the mapping and the Graph client. Types only.
 * As documented in https://learn.microsoft.com/graph/api/resources/externalconnectors-api-overview (the connection,
 * schema, item, ACL and external group resources linked from there).
 */

export const PROPERTY_TYPES = [
  'string',
  'int64',
  'double',
  'dateTime',
  'boolean',
  'stringCollection',
  'int64Collection',
  'doubleCollection',
  'dateTimeCollection',
  'principal',
  'principalCollection',
] as const;
export type PropertyType = (typeof PROPERTY_TYPES)[number];

export const LABELS = [
  'title',
  'url',
  'createdBy',
  'lastModifiedBy',
  'authors',
  'createdDateTime',
  'lastModifiedDateTime',
  'fileName',
  'fileExtension',
  'containerName',
  'containerUrl',
  'iconUrl',
  'assignedToPeople',
  'closedBy',
  'closedDate',
  'priority',
  'sprintName',
  'tags',
  'severity',
  'state',
  'dueDate',
  'itemParentId',
  'itemPath',
  'itemType',
  'numberOfReactions',
  'parentUrl',
  'priorityNormalized',
  'reportedBy',
  'secondaryId',
] as const;
export type Label = (typeof LABELS)[number];

export const CONTENT_CATEGORIES = [
  'uncategorized',
  'knowledgeBase',
  'wikis',
  'fileRepository',
  'qna',
  'crm',
  'dashboard',
  'people',
  'media',
  'email',
  'messaging',
  'meetingTranscripts',
  'taskManagement',
  'learningManagement',
] as const;
export type ContentCategory = (typeof CONTENT_CATEGORIES)[number];

export interface SchemaProperty {
  name: string;
  type: PropertyType;
  isSearchable?: boolean;
  isQueryable?: boolean;
  isRetrievable?: boolean;
  isRefinable?: boolean;
  labels?: Label[];
  aliases?: string[];
  description?: string;
}

export interface Schema {
  baseType: 'microsoft.graph.externalItem';
  properties: SchemaProperty[];
}

export type AclType = 'user' | 'group' | 'everyone' | 'everyoneExceptGuests' | 'externalGroup';
export type AccessType = 'grant' | 'deny';

export interface AclEntry {
  type: AclType;
  value: string;
  accessType: AccessType;
}

export interface ExternalItemContent {
  type: 'text' | 'html';
  value: string;
}

/** Property values as sent on the wire, including `<name>@odata.type` annotations. */
export type ExternalItemProperties = Record<string, string | number | boolean | null | string[] | number[]>;

export interface ExternalItem {
  id: string;
  acl: AclEntry[];
  properties: ExternalItemProperties;
  content?: ExternalItemContent;
}

export type ConnectionState = 'draft' | 'ready' | 'obsolete' | 'limitExceeded' | 'unknownFutureValue';
export type OperationStatus = 'unspecified' | 'inprogress' | 'completed' | 'failed' | 'unknownFutureValue';

export interface ExternalGroupMember {
  id: string;
  type: 'user' | 'group' | 'externalGroup';
}

export interface ExternalGroup {
  id: string;
  displayName?: string;
  description?: string;
  members: ExternalGroupMember[];
}
