// Optional (main.bicep createEntraApp = true): the Entra app registration the connector uses for Microsoft
// Graph, created with the Microsoft Graph Bicep extension (types: see bicepconfig.json).
//
// - The app gets the two application permissions the connector needs, granted (admin consent) as app role
//   assignments on the Microsoft Graph service principal:
//     ExternalConnection.ReadWrite.OwnedBy  f431331c-49a6-499f-be1c-62af19c34a9d
//     ExternalItem.ReadWrite.OwnedBy        8116ae0f-55c2-452d-9944-d18420f5b2c8
// - Workload identity federation: the function's user-assigned managed identity is a federated credential
//   of the app, so the connector exchanges a managed identity token (audience api://AzureADTokenExchange)
//   for a Graph token of the app. There is no secret or certificate to store or rotate.
//
// Deploying this needs Application.ReadWrite.All and AppRoleAssignment.ReadWrite.All (delegated, for a user
// running azd) or an admin role (Cloud Application Administrator cannot grant app roles on Microsoft Graph;
// Privileged Role Administrator or Global Administrator can). See docs/deploy.md for the manual alternative.
extension microsoftGraphV1

param displayName string
@description('Immutable unique name of the app registration (idempotent redeploys).')
param uniqueName string
param tenantId string
@description('Principal (object) id of the user-assigned managed identity trusted as federated credential.')
param managedIdentityPrincipalId string

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'
var externalConnectionReadWriteOwnedBy = 'f431331c-49a6-499f-be1c-62af19c34a9d'
var externalItemReadWriteOwnedBy = '8116ae0f-55c2-452d-9944-d18420f5b2c8'

resource graphSp 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

resource app 'Microsoft.Graph/applications@v1.0' = {
  displayName: displayName
  uniqueName: uniqueName
  signInAudience: 'AzureADMyOrg'
  requiredResourceAccess: [
    {
      resourceAppId: microsoftGraphAppId
      resourceAccess: [
        {
          id: externalConnectionReadWriteOwnedBy
          type: 'Role'
        }
        {
          id: externalItemReadWriteOwnedBy
          type: 'Role'
        }
      ]
    }
  ]

  resource managedIdentityCredential 'federatedIdentityCredentials@v1.0' = {
    name: '${app.uniqueName}/function-managed-identity'
    description: 'The graph-connector function app user-assigned managed identity'
    issuer: '${environment().authentication.loginEndpoint}${tenantId}/v2.0'
    subject: managedIdentityPrincipalId
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

resource sp 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
}

resource grantConnections 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: externalConnectionReadWriteOwnedBy
  principalId: sp.id
  resourceId: graphSp.id
}

resource grantItems 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: externalItemReadWriteOwnedBy
  principalId: sp.id
  resourceId: graphSp.id
}

output appId string = app.appId
output servicePrincipalId string = sp.id
