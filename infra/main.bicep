// graph-connector: everything `azd up` deploys.
//
// Subscription scope (azd convention): creates the resource group, then the modules under core/ and app/.
// Raw resources only (no registry modules), so `bicep build` needs nothing but the compiler and the
// Microsoft Graph extension types (only when createEntraApp = true).
//
// Security defaults: no storage keys (allowSharedKeyAccess: false, identity-based AzureWebJobsStorage__*),
// Key Vault in RBAC mode with purge protection and 90-day soft delete, Application Insights with local auth
// disabled, HTTPS only, TLS 1.2, FTPS off, one user-assigned managed identity with the least roles it needs
// (blob roles per container, none on the account), audit logs of the vault, storage and the app to Log
// Analytics, and no key or secret in any output.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Azure region for all resources (must offer Flex Consumption).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the deploying user or principal: gets Key Vault Secrets Officer (to set secrets) and data roles on the storage account (to run the CLI against Azure). Empty to skip.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
@description('Principal type of principalId.')
param principalType string = 'User'

@description('Entra tenant of the Graph app registration (default: this subscription\'s tenant).')
param graphTenantId string = tenant().tenantId

@description('Application (client) id of an existing Graph app registration. Ignored when createEntraApp is true.')
param graphClientId string = ''

@allowed([
  'workloadIdentity'
  'certificate'
  'clientSecret'
  'managedIdentity'
])
@description('How the function authenticates to Microsoft Graph. workloadIdentity: the managed identity is a federated credential of the app (no secret to store or rotate).')
param graphCredential string = 'workloadIdentity'

@description('Create the Entra app registration, its service principal, the two OwnedBy Graph app roles and the federated credential with the Microsoft Graph Bicep extension. Needs Application.ReadWrite.All + AppRoleAssignment.ReadWrite.All (or an admin) for the deploying identity.')
param createEntraApp bool = false

@description('Display name of the Entra app when createEntraApp is true.')
param entraAppDisplayName string = 'graph-connector (${environmentName})'

@description('Blob containers the connector reads attachments from (mapping.attachments.container and containers in connector.json). Each is created, and the function identity gets Storage Blob Data Reader on it and on nothing else.')
param attachmentContainers array = []

@description('Key Vault purge protection (irreversible; a deleted vault keeps its name for 90 days). Set false only for throwaway environments.')
param keyVaultPurgeProtection bool = true

@description('Crawl timer schedule: 6-field NCRONTAB.')
param crawlSchedule string = '0 0 */6 * * *'

@allowed([
  'full'
  'incremental'
])
@description('What the crawl timer starts (CRAWL_TIMER_MODE): a full crawl (enumerate everything, then sweep) or an incremental one (changes since the watermark; no sweep).')
param crawlTimerMode string = 'full'

@description('Microsoft Graph base URL (override only for a sovereign cloud).')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('Path of the connector definition inside the deployed package.')
param connectorConfig string = 'connector.json'

@description('Largest share of the ledger one sweep may delete without force.')
param sweepMaxDeleteRatio string = '0.1'

@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

// ---------------------------------------------------------------------------------------------------------
// Concurrency budget. Graph allows 25 concurrent operations per app per connection (connectors API overview,
// "Known limitations"). Every item-queue invocation does one Graph operation at a time, so the number of
// concurrent Graph operations is (instances running the item function) x (concurrent invocations per instance).
//
// On Flex Consumption the queue trigger's per-instance concurrency is NOT a site setting:
// functionAppConfig.scaleAndConcurrency.triggers only has http.perInstanceConcurrency. The queue trigger
// reads host.json extensions.queues: it runs up to batchSize + newBatchThreshold messages at once per
// instance. host.json ships batchSize 8 + newBatchThreshold 4 = 12; the app settings
// AzureFunctionsJobHost__extensions__queues__* below pin the same values so this file is the single place
// to change them. Flex scales each non-HTTP function in its own set of instances ("per-function scaling"),
// and maximumInstanceCount caps every set, so the item function runs on at most maximumInstanceCount
// instances: 2 x 12 = 24 <= 25. Raise one of the three only if the product stays <= 25.
// ---------------------------------------------------------------------------------------------------------
@minValue(1)
@maxValue(1000)
@description('Flex Consumption maximumInstanceCount (per function scale group). Keep maximumInstanceCount * (queueBatchSize + queueNewBatchThreshold) <= 25.')
param maximumInstanceCount int = 2

@minValue(1)
@maxValue(32)
@description('Queue messages fetched per batch per instance (host.json extensions.queues.batchSize).')
param queueBatchSize int = 8

@minValue(0)
@description('Fetch a new batch when this many of the current batch are still running (host.json extensions.queues.newBatchThreshold).')
param queueNewBatchThreshold int = 4

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

// The names the connector uses (defaults of ITEMS_QUEUE, CRAWL_QUEUE, PROVISION_QUEUE, LEDGER_TABLE_PREFIX,
// CLAIMS_CONTAINER, STATE_CONTAINER); all are created here so nothing is created at run time. The Functions host moves a
// message to <queue>-poison after maxDequeueCount attempts. The functions bind these queues through the app
// settings (%ITEMS_QUEUE%, %ITEMS_QUEUE%-poison, %CRAWL_QUEUE%, %PROVISION_QUEUE%), so every one of them
// must also be an app setting below.
var itemsQueue = 'graph-items'
var crawlQueue = 'graph-crawl'
var provisionQueue = 'graph-provision'
var ledgerTablePrefix = 'gc'
var claimsContainer = 'graph-claims'
// Snapshots of what Graph holds (item id → hash), crawl checkpoints' seen bitmaps and synced group ids.
var stateContainer = 'graph-state'
// Every blob container, with the one blob role the function identity gets on it (it has none on the account):
// the Functions host's own containers (keys, locks, timer state: it takes blob leases there), the Flex package,
// the claims container (item bodies too large for a queue message), the state container (snapshots and crawl
// checkpoints), and the attachments containers (read only).
var storageContainers = concat(
  [
    {
      name: 'azure-webjobs-hosts'
      appRole: 'Owner'
    }
    {
      name: 'azure-webjobs-secrets'
      appRole: 'Owner'
    }
    {
      name: deploymentContainerName
      appRole: 'Contributor'
    }
    {
      name: claimsContainer
      appRole: 'Contributor'
    }
    {
      name: stateContainer
      appRole: 'Contributor'
    }
  ],
  map(attachmentContainers, c => {
    name: c
    appRole: 'Reader'
  })
)
var queueNames = [
  'graph-items'
  'graph-items-poison'
  'graph-crawl'
  'graph-crawl-poison'
  'graph-provision'
  'graph-provision-poison'
]
var tableNames = [
  'gcitems'
  'gcjobs'
  'gccursors'
  'gcdeadletters'
  'gcleases'
  'gcprovision'
]

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'core/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    displayName: 'graph-connector (${environmentName})'
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

module storage 'core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containers: storageContainers
    queueNames: queueNames
    tableNames: tableNames
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

module vault 'core/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    enablePurgeProtection: keyVaultPurgeProtection
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
  }
}

module entraApp 'app/entra-app.bicep' = if (createEntraApp) {
  name: 'entra-app'
  scope: rg
  params: {
    displayName: entraAppDisplayName
    uniqueName: 'graph-connector-${resourceToken}'
    tenantId: graphTenantId
    managedIdentityPrincipalId: identity.outputs.principalId
  }
}

var effectiveGraphClientId = createEntraApp ? entraApp!.outputs.appId : graphClientId

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsName: monitoring.outputs.appInsightsName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsId
    appSettings: {
      // Graph and credentials (see docs/deploy.md for the three credential options)
      GRAPH_BASE_URL: graphBaseUrl
      GRAPH_API_VERSION: 'v1.0'
      GRAPH_AUTHORITY_HOST: environment().authentication.loginEndpoint
      GRAPH_TENANT_ID: graphTenantId
      GRAPH_CLIENT_ID: effectiveGraphClientId
      GRAPH_CREDENTIAL: graphCredential
      GRAPH_CLIENT_SECRET_NAME: 'graph-client-secret'
      GRAPH_CERTIFICATE_SECRET_NAME: 'graph-certificate'
      AZURE_CLIENT_ID: identity.outputs.clientId
      KEY_VAULT_URL: vault.outputs.uri
      // Connector behaviour
      CONNECTOR_CONFIG: connectorConfig
      CRAWL_SCHEDULE: crawlSchedule
      CRAWL_TIMER_MODE: crawlTimerMode
      ITEMS_QUEUE: itemsQueue
      CRAWL_QUEUE: crawlQueue
      PROVISION_QUEUE: provisionQueue
      LEDGER_TABLE_PREFIX: ledgerTablePrefix
      CLAIMS_CONTAINER: claimsContainer
      STATE_CONTAINER: stateContainer
      SWEEP_MAX_DELETE_RATIO: sweepMaxDeleteRatio
      LOG_LEVEL: logLevel
      // Queue concurrency per instance (overrides host.json; see the budget comment above)
      AzureFunctionsJobHost__extensions__queues__batchSize: string(queueBatchSize)
      AzureFunctionsJobHost__extensions__queues__newBatchThreshold: string(queueNewBatchThreshold)
    }
  }
}

// Outputs become azd environment values. Names and URLs only: never a key, secret or connection string.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = api.outputs.name
output AZURE_FUNCTION_URL string = api.outputs.uri
output AZURE_CLIENT_ID string = identity.outputs.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = vault.outputs.name
output KEY_VAULT_URL string = vault.outputs.uri
output GRAPH_TENANT_ID string = graphTenantId
output GRAPH_CLIENT_ID string = effectiveGraphClientId
output GRAPH_CREDENTIAL string = graphCredential
output GRAPH_CONCURRENCY_BUDGET int = maximumInstanceCount * (queueBatchSize + queueNewBatchThreshold)
