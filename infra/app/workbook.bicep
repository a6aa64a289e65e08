// Azure Monitor workbook over the connector's telemetry in Application Insights: the OpenTelemetry metrics per
// connection (customMetrics: graph_connector.items.*, graph_connector.graph.*, graph_connector.queue.depth,
// graph_connector.crawl.duration), its warnings and errors, and its Graph calls. The workbook itself is
// graph-connector.workbook.json beside this file (Notebook/1.0, the format the portal's Advanced Editor shows).
// https://learn.microsoft.com/azure/azure-monitor/visualize/workbooks-automate
param displayName string
param location string
param tags object = {}
@description('Resource id of the Application Insights component the workbook reads.')
param appInsightsId string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID: stable per resource group and component, so a redeploy updates it.
  name: guid(resourceGroup().id, appInsightsId, 'graph-connector-workbook')
  location: location
  tags: union(tags, {
    'hidden-title': displayName
  })
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: appInsightsId
    version: 'Notebook/1.0'
    serializedData: loadTextContent('graph-connector.workbook.json')
  }
}

output id string = workbook.id
output name string = workbook.name
