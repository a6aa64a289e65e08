// Key Vault in Azure RBAC mode (no access policies). The app identity may read secrets (Key Vault Secrets
// User); the deploying principal may set them (Key Vault Secrets Officer) for the certificate/secret
// credential options. Soft delete keeps a deleted secret (or the vault) recoverable for 90 days, and purge
// protection (on by default) means nobody — not even an owner — can destroy them before that. It is
// irreversible: a vault deleted by `azd down` keeps its name for 90 days, so throwaway environments set
// keyVaultPurgeProtection=false in main.bicep. Audit events (every secret read, by whom) go to Log Analytics.
param name string
param location string
param tags object = {}
@description('Principal id of the function app identity (Key Vault Secrets User).')
param appPrincipalId string
@description('Deploying principal (Key Vault Secrets Officer); empty to skip.')
param userPrincipalId string = ''
param userPrincipalType string = 'User'
@description('Irreversible: once on, deleted secrets and the vault cannot be purged before retention ends (90 days).')
param enablePurgeProtection bool = true
@description('Resource id of the Log Analytics workspace that receives the vault\'s audit events.')
param logAnalyticsWorkspaceId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(vault.id, userPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
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

output name string = vault.name
output uri string = vault.properties.vaultUri
