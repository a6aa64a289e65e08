// The storage account behind AzureWebJobsStorage, the Flex deployment package, the item/crawl/provision queues,
// the ledger tables, the claims container and the attachments containers. Shared keys are disabled: every caller
// uses Entra ID. The function identity holds no blob role on the account: each container gets the one role it
// needs (Owner for the host's own containers, Contributor for the claims and package containers, Reader for the
// attachments containers), so a record naming another container gets a 403 even past the code's own check.
param name string
param location string
param tags object = {}
@description('Blob containers to create, each with the blob role the function identity gets on it alone: [{ name, appRole }] with appRole Owner, Contributor or Reader.')
param containers array
@description('Queues to create, including the -poison queues the Functions host writes to.')
param queueNames array
@description('Tables to create (the ledger).')
param tableNames array
@description('Principal id of the function app identity.')
param appPrincipalId string
@description('Deploying principal (data roles for running the CLI against this account); empty to skip.')
param userPrincipalId string = ''
param userPrincipalType string = 'User'
@description('Resource id of the Log Analytics workspace that receives the blob, queue and table audit logs.')
param logAnalyticsWorkspaceId string

// Storage Blob Data Owner, Contributor and Reader, by the name a container entry uses.
var blobRoles = {
  Owner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  Contributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  Reader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
}
// Storage Blob Data Owner: the deploying principal (runs the CLI, uploads the package).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Storage Queue Data Contributor: queue trigger, output, poison queue, re-enqueue with visibility delay.
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Storage Table Data Contributor: the ledger.
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// The identity's account-wide roles: queues and tables only; blobs are per container (below).
var appAccountRoles = [
  storageQueueDataContributor
  storageTableDataContributor
]
var userRoles = [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'
    resource blobContainers 'containers' = [
      for c in containers: {
        name: c.name
        properties: {
          publicAccess: 'None'
        }
      }
    ]
  }

  resource queueServices 'queueServices' = {
    name: 'default'
    resource queues 'queues' = [
      for q in queueNames: {
        name: q
      }
    ]
  }

  resource tableServices 'tableServices' = {
    name: 'default'
    resource tables 'tables' = [
      for t in tableNames: {
        name: t
      }
    ]
  }
}

resource appRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in appAccountRoles: {
    name: guid(storage.id, appPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource appContainerRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (c, i) in containers: {
    name: guid(storage::blobServices::blobContainers[i].id, appPrincipalId, blobRoles[c.appRole])
    scope: storage::blobServices::blobContainers[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobRoles[c.appRole])
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource userRoleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in userRoles: if (!empty(userPrincipalId)) {
    name: guid(storage.id, userPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: userPrincipalId
      principalType: userPrincipalType
    }
  }
]

// Audit logs (reads, writes, deletes, with the caller's identity) of each data service, to Log Analytics.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: storage::blobServices
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: storage::queueServices
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: storage::tableServices
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
