#!/bin/sh
# azd hook (azure.yaml: postprovision and postdeploy). Prints the admin-consent URL of the Graph app and, once the
# consent is there, provisions the connection. It never fails the deployment: when something is missing it says
# what to do. docs/deploy.md §6 walks through it. azd passes the environment's values (azd env get-values).
#   scripts/postprovision.sh            after azd provision
#   scripts/postprovision.sh --deployed after azd deploy (the function can provision with its own identity)
set -u
PHASE="${1:-}"
TENANT="${AZURE_TENANT_ID:-}"
CLIENT="${GRAPH_CLIENT_ID:-}"
CREDENTIAL="${GRAPH_CREDENTIAL:-workloadIdentity}"
# ExternalConnection.ReadWrite.OwnedBy and ExternalItem.ReadWrite.OwnedBy (docs/deploy.md §4)
ROLE_CONNECTION=f431331c-49a6-499f-be1c-62af19c34a9d
ROLE_ITEM=8116ae0f-55c2-452d-9944-d18420f5b2c8

say() { printf '%s\n' "graph-connector: $*"; }

if [ -z "$TENANT" ] || [ -z "$CLIENT" ]; then
  say "GRAPH_CLIENT_ID or AZURE_TENANT_ID is not set in the azd environment: nothing to consent to yet."
  say "set GRAPH_CLIENT_ID (azd env set GRAPH_CLIENT_ID <app id>) or CREATE_ENTRA_APP=true, then run azd provision again."
  exit 0
fi

say "admin consent for the Graph app $CLIENT (a Global or Privileged Role Administrator opens it once):"
say "  https://login.microsoftonline.com/$TENANT/adminconsent?client_id=$CLIENT"

if ! command -v az >/dev/null 2>&1; then
  say "the Azure CLI (az) is not installed, so consent cannot be checked here. After consenting, run:"
  say "  npx graph-connector provision   (or POST \$AZURE_FUNCTION_URL/api/provision with a function key)"
  exit 0
fi

# Consent = both application permissions are granted to the app's service principal (app role assignments).
SP=$(az ad sp show --id "$CLIENT" --query id -o tsv 2>/dev/null || true)
GRANTED=""
if [ -n "$SP" ]; then
  GRANTED=$(az rest --method GET \
    --url "https://graph.microsoft.com/v1.0/servicePrincipals/$SP/appRoleAssignments?\$select=appRoleId" \
    --query "value[].appRoleId" -o tsv 2>/dev/null || true)
fi
case "$GRANTED" in *"$ROLE_CONNECTION"*) ;; *) GRANTED="" ;; esac
case "$GRANTED" in *"$ROLE_ITEM"*) ;; *) GRANTED="" ;; esac
if [ -z "$GRANTED" ]; then
  if [ -z "$SP" ]; then
    say "the app has no service principal in tenant $TENANT yet (or az cannot read it): consent with the URL above."
  else
    say "consent is missing: the app does not hold both ExternalConnection.ReadWrite.OwnedBy and ExternalItem.ReadWrite.OwnedBy."
  fi
  say "after consenting, run: azd hooks run postdeploy   (or npx graph-connector provision)"
  say "or turn the connector on from the Microsoft 365 admin center with the app package (npm run package:app)."
  exit 0
fi
say "consent is present."

case "$CREDENTIAL" in
  clientSecret | certificate)
    # The CLI reads the secret from Key Vault (KEY_VAULT_URL) with your az login identity.
    say "provisioning the connection from here (graph-connector provision, $CREDENTIAL)..."
    if npm run build --silent && node bin/graph-connector.js provision; then
      say "the connection is provisioned."
    else
      say "provisioning did not finish (see above); run npx graph-connector provision again once it is fixed."
    fi
    exit 0
    ;;
esac

# workloadIdentity / managedIdentity: only the function's identity can get the Graph token, so ask it.
if [ "$PHASE" != "--deployed" ] || [ -z "${AZURE_FUNCTION_NAME:-}" ] || [ -z "${AZURE_FUNCTION_URL:-}" ]; then
  say "the function provisions the connection with its managed identity once it is deployed (the postdeploy hook asks it)."
  exit 0
fi
KEY=$(az functionapp keys list -g "${AZURE_RESOURCE_GROUP:-rg-${AZURE_ENV_NAME:-}}" -n "$AZURE_FUNCTION_NAME" --query "functionKeys.default" -o tsv 2>/dev/null || true)
if [ -z "$KEY" ]; then
  say "cannot read a function key of $AZURE_FUNCTION_NAME; start provisioning with: POST $AZURE_FUNCTION_URL/api/provision (x-functions-key)."
  exit 0
fi
if curl -fsS -X POST -H "x-functions-key: $KEY" -H 'content-length: 0' "$AZURE_FUNCTION_URL/api/provision" >/dev/null; then
  say "provisioning started in the function; watch it: GET $AZURE_FUNCTION_URL/api/status"
else
  say "POST $AZURE_FUNCTION_URL/api/provision failed (the app may still be starting); run azd hooks run postdeploy again."
fi
exit 0
