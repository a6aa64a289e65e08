// The storage account behind AzureWebJobsStorage, the Flex deployment package, the item/crawl/provision queues,
// the ledger tables and the claims container. Shared keys are disabled: every caller uses Entra ID.
param name string
param location string
param tags object = {}
@description('Blob containers to create (the deployment package container and the claims container).')
param containerNames array
@description('Queues to create, including the -poison queues the Functions host writes to.')
param queueNames array
@description('Tables to create (the ledger).')
param tableNames array
@description('Principal id of the function app identity.')
param appPrincipalId string
@description('Deploying principal (data roles for running the CLI against this account); empty to skip.')
param userPrincipalId string = ''
param userPrincipalType string = 'User'

// Storage Blob Data Owner: the host (AzureWebJobsStorage: leases, timers) and Flex deployment need it.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Storage Queue Data Contributor: queue trigger, output, poison queue, re-enqueue with visibility delay.
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Storage Table Data Contributor: the ledger.
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var roles = [
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
    resource containers 'containers' = [
      for c in containerNames: {
        name: c
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
  for role in roles: {
    name: guid(storage.id, appPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource userRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in roles: if (!empty(userPrincipalId)) {
    name: guid(storage.id, userPrincipalId, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: userPrincipalId
      principalType: userPrincipalType
    }
  }
]

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
