// The function app's user-assigned managed identity: storage, queues, tables, Key Vault, Application
// Insights and (as a federated credential of the Entra app) Microsoft Graph are all reached with it.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
